//! The internal batch size is measured, cached per model, device, shape and threads, and
//! recorded in the report; the flag overrides it; a broken cache only costs a new probe.
mod common;
use common::{first_values as values, fixture};
use serde_json::Value;
use std::process::Command;

fn run(cache: &std::path::Path, extra: &[&str]) -> (Value, String) {
    let t = tempfile::tempdir().unwrap();
    let suite = t.path().join("s.toml");
    std::fs::write(
        &suite,
        "name = \"t\"\n[[audit]]\nid = \"random-logit\"\nthreshold = 0.5\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args([
            "check",
            &fixture("models/digits_cnn_s0.pt").to_string_lossy(),
            "--suite",
            &suite.to_string_lossy(),
            "--config",
            &fixture("digits.toml").to_string_lossy(),
            "--data",
            &fixture("data/digits/test").to_string_lossy(),
            "--max-images",
            "32",
            "--method",
            "saliency",
            "--format",
            "json",
        ])
        .args(extra)
        .env("XAUDIT_CACHE_DIR", cache)
        .env("CI", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.code().unwrap() <= 1, "{err}");
    (serde_json::from_slice(&o.stdout).unwrap(), err)
}

#[test]
fn the_internal_batch_is_probed_once_cached_and_recorded() {
    let cache = tempfile::tempdir().unwrap();
    let (first, err) = run(cache.path(), &[]);
    let b = &first["provenance"]["internal_batch"];
    assert_eq!(b["source"], "probe", "{b}");
    assert!(err.contains("note: internal batch size"), "{err}");
    let size = b["size"].as_u64().unwrap();
    assert!(size.is_power_of_two() && size <= 256, "{size}");
    let points = b["points"].as_array().unwrap();
    assert!(points.len() >= 4, "{b}");
    assert!(points.iter().any(|p| p["batch"] == size));
    let key = b["key"].as_str().unwrap();
    assert!(
        key.starts_with(first["model"]["sha256"].as_str().unwrap())
            && key.contains("1x28x28")
            && key.contains("threads="),
        "{key}"
    );
    let file = cache.path().join("batch-tuning.json");
    assert!(std::fs::read_to_string(&file).unwrap().contains(key));

    // Second run: from the cache, same size, no probe.
    let (second, err) = run(cache.path(), &[]);
    assert_eq!(second["provenance"]["internal_batch"]["source"], "cache");
    assert_eq!(second["provenance"]["internal_batch"]["size"], size);
    assert!(!err.contains("note: internal batch size"), "{err}");
    assert_eq!(
        values(&first),
        values(&second),
        "same batch size, same numbers"
    );

    // The flag overrides; the numbers agree to float rounding.
    let (flagged, _) = run(cache.path(), &["--internal-batch-size", "4"]);
    let c = &flagged["provenance"]["internal_batch"];
    assert_eq!(c["source"], "flag");
    assert_eq!(c["size"], 4);
    for (a, b) in values(&first).iter().zip(values(&flagged)) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }

    // A corrupt cache is replaced by a new probe, never an error.
    std::fs::write(&file, "{not json").unwrap();
    let (again, _) = run(cache.path(), &[]);
    assert_eq!(again["provenance"]["internal_batch"]["source"], "probe");
}
