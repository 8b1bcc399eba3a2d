//! The model's own speed on this machine (`xaudit throughput`): forward and forward+backward
//! images per second per batch size. The best of these is the ceiling an audit's model passes
//! are measured against (`make bench`, bench/RESULTS.md), and the curve shows which
//! `--internal-batch-size` the machine likes.
use crate::attribution::{input_grads, Score};
use crate::error::Result;
use crate::model::Model;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Default inputs per model pass: 256 for small images, fewer for large ones so a pass holds
/// about 2^24 input values (64 MiB of float32 input; activations scale with it), never below 8.
/// A memory-aware default needs no probe run: on the bench machine throughput is flat from
/// 64 to 512 for small CNNs (bench/RESULTS.md), and large inputs are bound by memory.
pub fn auto_batch(input_shape: [i64; 3]) -> usize {
    let per_image = input_shape.iter().product::<i64>().max(1) as usize;
    let fit = (1usize << 24) / per_image;
    let pow2 = if fit == 0 { 1 } else { 1usize << fit.ilog2() };
    pow2.clamp(8, 256)
}

/// Throughput at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub batch: usize,
    /// Images per second through `forward` without autograd.
    pub forward_per_s: f64,
    /// Images per second through `forward` with autograd plus the backward pass to the input.
    pub backward_per_s: f64,
}

/// Seeded N(0,1) inputs of the model's input shape (the content does not change the cost of
/// dense convolutional networks).
fn probe(model: &Model, n: usize) -> Tensor {
    let [c, h, w] = model.input_shape;
    let mut rng = crate::rng::stream(0, "throughput", n as u64, 0);
    let v: Vec<f32> = (0..n * (c * h * w) as usize)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_slice(&v)
        .view([n as i64, c, h, w])
        .to_device(model.device)
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Runs `f` once to warm up, then repeatedly until `min_time` seconds (and 3 runs) have
/// passed; returns runs per second.
fn rate(
    device: Device,
    min_time: f64,
    min_runs: u32,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    f()?;
    sync(device);
    let start = Instant::now();
    let mut runs = 0u32;
    loop {
        f()?;
        runs += 1;
        crate::interrupt::check()?;
        if runs >= min_runs && start.elapsed().as_secs_f64() >= min_time {
            break;
        }
        if runs % 8 == 0 {
            sync(device);
        }
    }
    sync(device);
    Ok(f64::from(runs) / start.elapsed().as_secs_f64())
}

/// `[n, C, H, W]` from `images` (model space, any count >= 1), repeated to fill `n`, or the
/// seeded probe when `images` is None.
fn inputs(model: &Model, images: Option<&Tensor>, n: usize) -> Tensor {
    match images {
        Some(x) => {
            let have = x.size()[0].max(1);
            let idx: Vec<i64> = (0..n as i64).map(|i| i % have).collect();
            x.index_select(0, &Tensor::from_slice(&idx).to_device(x.device()))
        }
        None => probe(model, n),
    }
}

/// Forward and forward+backward throughput at each batch size in `batches`, the best of
/// `repeats` timings each (a ceiling is the best the machine did, not its average). With
/// `images` (model space, on the model's device) the passes run on those real inputs, which
/// matters a little on CPUs (sparsity of activations, denormals); else on seeded noise.
pub fn measure(
    model: &Model,
    images: Option<&Tensor>,
    batches: &[usize],
    min_time: f64,
    repeats: usize,
) -> Result<Vec<Point>> {
    let mut out: Vec<Point> = batches
        .iter()
        .map(|&b| Point {
            batch: b.max(1),
            forward_per_s: 0.0,
            backward_per_s: 0.0,
        })
        .collect();
    // Repeats sweep all batch sizes in turn so a slow spell of the machine hits one sweep,
    // not every timing of one batch size.
    for _ in 0..repeats.max(1) {
        for p in out.iter_mut() {
            let b = p.batch;
            let x = inputs(model, images, b);
            let t = Tensor::zeros([b as i64], (Kind::Int64, model.device));
            let fwd = rate(model.device, min_time, 3, || {
                // Reading one value back forces the pass to finish, as an audit's scalars do.
                let _ = model.logits(&x)?.sum(Kind::Float);
                Ok(())
            })?;
            let bwd = rate(model.device, min_time, 3, || {
                let _ = input_grads(model, &x, &t, Score::Logit)?;
                Ok(())
            })?;
            p.forward_per_s = p.forward_per_s.max(fwd * b as f64);
            p.backward_per_s = p.backward_per_s.max(bwd * b as f64);
        }
    }
    Ok(out)
}

/// One batch size of the tuning probe: forward+backward images per second.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ProbePoint {
    pub batch: usize,
    pub images_per_s: f64,
}

/// How a run's internal batch size (inputs per model pass) was chosen; recorded in the
/// report.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BatchChoice {
    pub size: usize,
    /// `flag` (`--internal-batch-size`), `probe` (measured now) or `cache` (measured by an
    /// earlier run on the same model, device, input shape and threads).
    pub source: String,
    /// The cache key: model sha256, device, input shape, threads.
    pub key: Option<String>,
    pub points: Vec<ProbePoint>,
    /// Wall time of the probe (source `probe`).
    pub probe_seconds: Option<f64>,
}

impl BatchChoice {
    pub fn flag(size: usize) -> BatchChoice {
        BatchChoice {
            size: size.max(1),
            source: "flag".into(),
            key: None,
            points: Vec::new(),
            probe_seconds: None,
        }
    }
}

/// The smallest batch size within 5% of the best forward+backward throughput: larger ones
/// only cost memory and padding, and the probe's timing noise is a few percent.
pub fn choose(points: &[ProbePoint]) -> usize {
    let best = points.iter().map(|p| p.images_per_s).fold(0.0, f64::max);
    points
        .iter()
        .filter(|p| p.images_per_s >= 0.95 * best)
        .map(|p| p.batch)
        .min()
        .unwrap_or(1)
}

/// Where measured batch sizes are kept: `$XAUDIT_CACHE_DIR`, else `$XDG_CACHE_HOME/xaudit`,
/// else `~/.cache/xaudit`.
pub fn cache_file() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("XAUDIT_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| std::path::PathBuf::from(d).join("xaudit"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/xaudit"))
        })?;
    Some(dir.join("batch-tuning.json"))
}

/// Seconds the batch-size probe may take: larger sizes whose projected cost would overrun it
/// are not tried (a 64-image forward+backward pass of EfficientNet-Lite0 at 224x224 takes
/// about 6 s on 2 CPU cores, and rates there are far below the best).
pub const PROBE_BUDGET_S: f64 = 10.0;

/// The internal batch size that runs forward+backward fastest on this device, measured by a
/// short probe over powers of two up to the memory bound [`auto_batch`] (stopping once the
/// rate falls below 70% of the best, or before a size whose projected cost would take the
/// probe past [`PROBE_BUDGET_S`]), and cached per (model sha256, device, input shape,
/// threads). A cache that cannot be read or written only costs a new probe.
pub fn tuned_batch(model: &Model, model_sha256: &str, threads: i32) -> Result<BatchChoice> {
    let [c, h, w] = model.input_shape;
    let key = format!(
        "{model_sha256} {} {c}x{h}x{w} threads={threads}",
        crate::device::describe(model.device)
    );
    let file = cache_file();
    let cache: std::collections::BTreeMap<String, BatchChoice> = file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(hit) = cache.get(&key) {
        let mut hit = hit.clone();
        hit.source = "cache".into();
        hit.probe_seconds = None;
        return Ok(hit);
    }
    let start = Instant::now();
    let top = auto_batch(model.input_shape);
    let mut points: Vec<ProbePoint> = Vec::new();
    let mut b = 1usize;
    while b <= top {
        let best = points.iter().map(|p| p.images_per_s).fold(0.0, f64::max);
        // A point costs a warm-up pass and at least one timed pass: skip the larger sizes
        // once they would overrun the budget (large models on CPUs, where they are slow).
        let projected = if best > 0.0 {
            2.0 * b as f64 / best
        } else {
            0.0
        };
        if points.len() >= 3 && start.elapsed().as_secs_f64() + projected > PROBE_BUDGET_S {
            break;
        }
        let x = probe(model, b);
        let t = Tensor::zeros([b as i64], (Kind::Int64, model.device));
        let time = || {
            rate(model.device, 0.05, 1, || {
                let _ = input_grads(model, &x, &t, Score::Logit)?;
                Ok(())
            })
            .map(|r| r * b as f64)
        };
        let mut r = time()?;
        let best = points.iter().map(|p| p.images_per_s).fold(0.0, f64::max);
        if b >= 8 && r < 0.7 * best {
            // A drop stops the probe and its choice is cached for good: confirm it with a
            // second timing first, so one slice of a busy machine does not cap the size
            // (a cached probe that stopped at 32 on a momentary drop kept the digits CNN
            // at 16, 22% below its peak, in every later run).
            r = r.max(time()?);
        }
        points.push(ProbePoint {
            batch: b,
            images_per_s: r,
        });
        let best = points.iter().map(|p| p.images_per_s).fold(0.0, f64::max);
        if b >= 8 && r < 0.7 * best {
            break;
        }
        b *= 2;
    }
    let choice = BatchChoice {
        size: choose(&points),
        source: "probe".into(),
        key: Some(key.clone()),
        points,
        probe_seconds: Some(start.elapsed().as_secs_f64()),
    };
    Ok(match file {
        Some(f) => store(&f, &key, choice),
        None => choice,
    })
}

/// Adds `choice` to the cache at `f` under an exclusive lock, unless a concurrent run stored
/// this key first: then that run's choice is used, so every run of one model on one machine
/// uses the same batch size (and gives the same bits).
fn store(f: &std::path::Path, key: &str, choice: BatchChoice) -> BatchChoice {
    use std::os::fd::AsRawFd;
    let Some(dir) = f.parent() else { return choice };
    if std::fs::create_dir_all(dir).is_err() {
        return choice;
    }
    let Ok(lock) = std::fs::File::create(f.with_extension("lock")) else {
        return choice;
    };
    // SAFETY: flock on a file descriptor this function owns; released when `lock` closes.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return choice;
    }
    let mut cache: std::collections::BTreeMap<String, BatchChoice> = std::fs::read_to_string(f)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if let Some(first) = cache.get(key) {
        let mut first = first.clone();
        first.source = "probe".into();
        first.points = choice.points;
        first.probe_seconds = choice.probe_seconds;
        return first;
    }
    cache.insert(key.to_string(), choice.clone());
    // Written to a temporary name and renamed: a reader never sees half a file.
    let tmp = f.with_extension(format!("tmp{}", std::process::id()));
    if serde_json::to_string_pretty(&cache)
        .ok()
        .is_some_and(|t| std::fs::write(&tmp, t).is_ok())
    {
        let _ = std::fs::rename(&tmp, f);
    }
    choice
}

/// The best throughput over `points`: (forward, forward+backward) images/s.
pub fn ceiling(points: &[Point]) -> (f64, f64) {
    points.iter().fold((0.0, 0.0), |(f, b), p| {
        (f.max(p.forward_per_s), b.max(p.backward_per_s))
    })
}

#[cfg(test)]
mod tests {
    use super::{auto_batch, choose, ProbePoint};

    #[test]
    fn the_smallest_batch_within_5_percent_of_the_best_is_chosen() {
        let p = |batch: usize, images_per_s: f64| ProbePoint {
            batch,
            images_per_s,
        };
        // A large model on a CPU: the rate peaks at 8 and falls after (the case).
        assert_eq!(
            choose(&[
                p(1, 10.0),
                p(2, 20.0),
                p(4, 30.0),
                p(8, 34.2),
                p(16, 33.0),
                p(32, 25.0)
            ]),
            8
        );
        // Flat from 64 on: the smallest of the plateau.
        assert_eq!(
            choose(&[p(32, 900.0), p(64, 1000.0), p(128, 1010.0), p(256, 1005.0)]),
            64
        );
        assert_eq!(choose(&[]), 1);
    }

    #[test]
    fn auto_batch_shrinks_with_the_input() {
        assert_eq!(auto_batch([1, 28, 28]), 256);
        assert_eq!(auto_batch([3, 224, 224]), 64);
        assert_eq!(auto_batch([3, 512, 512]), 16);
        assert_eq!(auto_batch([3, 4096, 4096]), 8);
    }
}
