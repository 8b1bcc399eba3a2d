//! glibc allocator settings for batched tensor work.
//!
//! libtorch's CPU tensors come from malloc. With glibc's defaults, every freed batch buffer
//! above the mmap threshold (or at the top of the heap beyond the trim threshold) goes back
//! to the kernel, and the next pass faults its pages in again: on the 2-core bench machine
//! that was a fifth of all CPU time and cost 35-75% of the model's own throughput
//! (bench/RESULTS.md). Keeping freed memory in the heap is what PyTorch's own performance
//! guide gets by swapping in jemalloc or tcmalloc; it raises peak RSS only by the batch
//! buffers already used. `MALLOC_*` environment variables set by the user still win, since
//! these calls are skipped when any is set.

/// Applies the settings once at start-up (no-op off glibc).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = std::env::vars_os().any(|(k, _)| {
            k.to_str()
                .is_some_and(|k| k.starts_with("MALLOC_") && k.ends_with('_'))
        });
        if user_set {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; called before other threads start.
        unsafe {
            // The largest mmap threshold glibc accepts on 64-bit (32 MiB).
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        }
    }
}
