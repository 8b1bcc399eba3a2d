//! Link libtorch so the binary runs without LD_LIBRARY_PATH and finds CUDA when present.
//!
//! torch-sys's own rpath only reaches its object files, and the default `--as-needed`
//! drops libtorch_cuda.so because nothing references its symbols; without it
//! `tch::Cuda::is_available()` is false even on a GPU host (tch-rs #907/#980).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        if let Some(lib) = &lib {
            // DT_RPATH (not RUNPATH) also applies to libtorch's own dependencies.
            println!("cargo:rustc-link-arg=-Wl,--disable-new-dtags");
            // Installed from the wheel (pyproject.toml), the binary sits in PREFIX/bin and
            // torch==2.13.0 in PREFIX/lib/python3.X/{site,dist}-packages (venv, conda,
            // --user, Debian): that torch's libtorch comes first. The build venv's absolute
            // path stays last, for target/release/xaudit in the checkout. torch 2.13.0 has
            // wheels for CPython 3.10-3.14 and free-threaded 3.14t.
            for py in ["3.10", "3.11", "3.12", "3.13", "3.14", "3.14t"] {
                for dir in ["site-packages", "dist-packages"] {
                    println!(
                        "cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib/python{py}/{dir}/torch/lib"
                    );
                }
            }
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.to_string_lossy());
        }
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    // The PyTorch wheel records its version beside lib/; `xaudit doctor` reports it.
    let version = lib
        .as_ref()
        .map(std::path::PathBuf::from)
        .and_then(|l| std::fs::read_to_string(l.parent()?.join("version.py")).ok())
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("__version__"))
                .and_then(|l| l.split('\'').nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=XAUDIT_LIBTORCH_VERSION={version}");
    println!(
        "cargo:rustc-env=XAUDIT_LIBTORCH_LIB={}",
        lib.map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
}
