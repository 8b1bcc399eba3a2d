//! The pip wheel as a user installs it: scripts/wheel-test.sh builds it (`make wheel`), checks
//! it holds the binary and metadata only, installs it with pip into a fresh venv that has
//! torch==2.13.0 from the wheel cache under ~/.cache/xaudit (filled from PyPI on first use),
//! runs `xaudit doctor` and a small `xaudit check` with a clean environment (no VIRTUAL_ENV,
//! no LD_LIBRARY_PATH), and checks that the libtorch loaded is that venv's. Never skipped.
use std::path::Path;
use std::process::Command;

#[test]
fn wheel_installs_into_a_fresh_venv_and_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new("bash")
        .arg("-c")
        .arg("exec bash scripts/wheel-test.sh 2>&1")
        .current_dir(root)
        .output()
        .expect("run bash scripts/wheel-test.sh");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "scripts/wheel-test.sh failed ({}):\n{out}",
        o.status
    );
    println!("{out}");
}
