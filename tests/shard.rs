//! Sharded runs: `check --shard I/N` in separate processes, then `merge`, must give the
//! report of a single `--fixed-n` run on the same data, byte for byte apart from provenance and
//! timings (wall time and the model-pass accounting, which counts each shard's own probes).
//! `--device cpu,cpu` runs the shards itself and must agree too. A merge refuses partials
//! that are not one whole run.
mod common;
use common::{fixture, output_text as text, xaudit as run};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `n` digits, classes interleaved (0, 1, ..., 7, 0, 1, ...) so every shard holds several
/// classes and the targeted attack finds targets, as a CSV manifest.
fn mixed_digits(dir: &Path, n: usize) -> PathBuf {
    let root = fixture("data/digits/test");
    let mut per_class: Vec<Vec<PathBuf>> = (0..8)
        .map(|c| {
            let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(c.to_string()))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            v.sort();
            v
        })
        .collect();
    let mut csv = String::from("path,label\n");
    for k in 0..n {
        let c = k % 8;
        let p = per_class[c].remove(0);
        csv.push_str(&format!("{},{c}\n", p.display()));
    }
    let path = dir.join("mixed.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// report.json without what may differ between a single run and a merge: provenance, wall
/// times and model-pass counts.
fn comparable(path: &Path) -> String {
    let mut r: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    r.as_object_mut().unwrap().remove("provenance");
    for a in r["audits"].as_array_mut().unwrap() {
        a["duration_s"] = Value::Null;
        let summary = a["summary"].as_object_mut().unwrap();
        for k in [
            "model_forward_images",
            "model_backward_images",
            "model_passes_per_image",
        ] {
            summary.remove(k);
        }
    }
    serde_json::to_string_pretty(&r).unwrap()
}

/// A single run, then `shards` shard processes and a merge; returns both comparable reports.
fn single_and_merged(dir: &Path, args: &[String], shards: usize) -> (String, String, Value) {
    let single = dir.join("single");
    let mut a = args.to_vec();
    // Shards are fixed-n runs: the reference is one too.
    a.extend([
        "--fixed-n".into(),
        "--out-dir".into(),
        s(&single),
        "--write".into(),
        "json".into(),
    ]);
    let o = run(&a);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    let parts = dir.join("parts");
    let mut partials = Vec::new();
    for i in 0..shards {
        let mut a = args.to_vec();
        a.extend([
            "--shard".into(),
            format!("{i}/{shards}"),
            "--out-dir".into(),
            s(&parts),
        ]);
        let o = run(&a);
        assert_eq!(o.status.code(), Some(0), "shard {i}: {}", text(&o));
        let p = parts.join(format!("partial-{i}-of-{shards}.json"));
        assert!(p.exists(), "{}", text(&o));
        partials.push(s(&p));
    }
    let merged = dir.join("merged");
    let mut m = vec!["merge".to_string()];
    m.extend(partials.iter().rev().cloned());
    m.extend([
        "--out-dir".into(),
        s(&merged),
        "--write".into(),
        "json".into(),
    ]);
    let o = run(&m);
    assert_eq!(
        o.status.code(),
        run_exit(&single.join("report.json")),
        "{}",
        text(&o)
    );
    let full: Value =
        serde_json::from_str(&std::fs::read_to_string(single.join("report.json")).unwrap())
            .unwrap();
    (
        comparable(&single.join("report.json")),
        comparable(&merged.join("report.json")),
        full,
    )
}

fn run_exit(report: &Path) -> Option<i32> {
    let r: Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    r["exit_code"].as_i64().map(|c| c as i32)
}

fn base_args(model: &str, data: &Path, suite: &str, methods: &[&str], n: usize) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "check".into(),
        s(&fixture(model)),
        "--config".into(),
        s(&fixture("digits.toml")),
        "--data".into(),
        s(data),
        "--suite".into(),
        suite.into(),
        "--max-images".into(),
        n.to_string(),
        // Whole batches of 4: 12 images are three batches, one per shard.
        "--batch-size".into(),
        "4".into(),
        "--internal-batch-size".into(),
        "64".into(),
        "--seed".into(),
        "3".into(),
        // The tests run side by side and each spawns processes: one intra-op thread each
        // keeps OpenMP from spinning on oversubscribed cores (results do not depend on it).
        "--threads".into(),
        "1".into(),
    ];
    for m in methods {
        a.extend(["--method".into(), (*m).into()]);
    }
    a
}

/// The robustness and sanity suites (every attack, the sampling audits, all randomisation
/// tests with their curves and per-layer summaries) on saliency, in three shard processes.
#[test]
fn three_shard_processes_merge_into_the_single_run_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed_digits(dir.path(), 12);
    let suite = dir.path().join("both.toml");
    std::fs::write(
        &suite,
        "name = \"robustness-and-sanity\"\ninclude = [\"robustness\", \"sanity\"]\n",
    )
    .unwrap();
    let mut args = base_args(
        "models/digits_cnn_s0.pt",
        &data,
        &s(&suite),
        &["saliency"],
        12,
    );
    args.extend([
        "--random-label-model".into(),
        s(&fixture("models/digits_cnn_shuffled.pt")),
    ]);
    let (single, merged, full) = single_and_merged(dir.path(), &args, 3);
    // The run measured something in every family, and the targeted attack had targets.
    let audits = full["audits"].as_array().unwrap();
    for code in [
        "XA001", "XA002", "XA003", "XA004", "XA005", "XA006", "XA101", "XA102", "XA103", "XA104",
        "XA105", "XA106",
    ] {
        let a = audits
            .iter()
            .find(|a| a["code"] == code)
            .unwrap_or_else(|| panic!("{code} missing"));
        assert!(a["n"].as_u64().unwrap() > 0, "{code}: {a}");
    }
    let targeted = audits.iter().find(|a| a["code"] == "XA006").unwrap();
    assert!(targeted["summary"]["strength_vs_random_sign"]["images"]
        .as_u64()
        .is_some_and(|n| n > 0));
    assert!(single.contains("\"curves\""));
    assert_eq!(
        single, merged,
        "the merged report differs from the single run"
    );
}

/// A stochastic method (noise floors kept per image), with a shard of its own per device:
/// `--device cpu,cpu` runs two shard processes and merges them itself.
#[test]
fn a_stochastic_method_and_a_device_list_merge_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed_digits(dir.path(), 12);
    let args = base_args(
        "models/digits_cnn_s0.pt",
        &data,
        "sanity",
        &["smoothgrad"],
        12,
    );
    let (single, merged, full) = single_and_merged(dir.path(), &args, 3);
    let floor = full["audits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "XA101")
        .unwrap()["summary"]["noise_floor"]["n"]
        .as_u64();
    assert_eq!(floor, Some(12), "the noise floor covers every image");
    assert_eq!(single, merged);
    let out = dir.path().join("devices");
    let mut a = args.clone();
    a.extend([
        "--device".into(),
        "cpu,cpu".into(),
        "--out-dir".into(),
        s(&out),
        "--write".into(),
        "json".into(),
    ]);
    let o = run(&a);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    assert!(text(&o).contains("2 shards in parallel"), "{}", text(&o));
    assert_eq!(single, comparable(&out.join("report.json")));
    // The scratch partials are cleaned up.
    assert!(!out.join(".shards").exists());
}

/// Partials that are not one whole run are refused with exit 2 and the reason; audits that
/// need every image in one process refuse --shard.
#[test]
fn a_merge_refuses_what_is_not_one_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed_digits(dir.path(), 8);
    let suite = dir.path().join("one.toml");
    std::fs::write(
        &suite,
        "name = \"t\"\n[[audit]]\nid = \"random-logit\"\nthreshold = 0.5\n",
    )
    .unwrap();
    let args = base_args(
        "models/digits_cnn_s0.pt",
        &data,
        &s(&suite),
        &["saliency"],
        8,
    );
    let shard = |i: usize, n: usize, seed: &str, out: &str| -> String {
        let mut a = args.clone();
        let k = a.iter().position(|x| x == "--seed").unwrap();
        a[k + 1] = seed.into();
        let o = dir.path().join(out);
        a.extend([
            "--shard".into(),
            format!("{i}/{n}"),
            "--out-dir".into(),
            s(&o),
        ]);
        let r = run(&a);
        assert_eq!(r.status.code(), Some(0), "{}", text(&r));
        s(&o.join(format!("partial-{i}-of-{n}.json")))
    };
    let p0 = shard(0, 2, "3", "a");
    let p1 = shard(1, 2, "3", "a");
    let other_seed = shard(1, 2, "4", "b");
    let merge = |files: &[&str]| -> std::process::Output {
        let mut m = vec!["merge".to_string()];
        m.extend(files.iter().map(|f| f.to_string()));
        run(&m)
    };
    let o = merge(&[&p0]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("1/2 missing"), "{}", text(&o));
    let o = merge(&[&p0, &p0, &p1]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("also in"), "{}", text(&o));
    let o = merge(&[&p0, &other_seed]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("not the same run") && text(&o).contains("seed"),
        "{}",
        text(&o)
    );
    let not_partial = dir.path().join("x.json");
    std::fs::write(&not_partial, "{\"schema_version\": \"2.1\"}").unwrap();
    let o = merge(&[&s(&not_partial)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a partial report"), "{}", text(&o));
    // The two halves do merge.
    let o = merge(&[&p1, &p0]);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));
    assert!(text(&o).contains("random-logit"), "{}", text(&o));
    // A bad shard spec and an audit that needs every image.
    let mut a = args.clone();
    a.extend([
        "--shard".into(),
        "2/2".into(),
        "--out-dir".into(),
        s(dir.path()),
    ]);
    let o = run(&a);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let mut a = base_args(
        "models/digits_cnn_s0.pt",
        &data,
        "salience",
        &["saliency"],
        8,
    );
    a.extend([
        "--shard".into(),
        "0/2".into(),
        "--out-dir".into(),
        s(dir.path()),
    ]);
    let o = run(&a);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("strategy-clusters"), "{}", text(&o));
}

/// The faithfulness suite (deletion, insertion and ROAD curves with their random-order
/// references, Average Drop and Increase in Confidence, infidelity) and the salience audits
/// that shard (entropy per class, degradation curves, equivariance per transform family with
/// its per-magnitude counts) merge exactly too.
#[test]
fn faithfulness_curves_and_salience_summaries_merge_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = mixed_digits(dir.path(), 12);
    let suite = dir.path().join("fs.toml");
    std::fs::write(
        &suite,
        "name = \"fs\"\ninclude = [\"faithfulness\"]\n[[audit]]\nid = \"salience-entropy\"\nthreshold = 0.9\n[[audit]]\nid = \"salience-degradation\"\nthreshold = 0.0\n[[audit]]\nid = \"equivariance\"\nthreshold = 0.5\n",
    )
    .unwrap();
    let args = base_args(
        "models/digits_cnn_s0.pt",
        &data,
        &s(&suite),
        &["grad-cam"],
        12,
    );
    let (single, merged, full) = single_and_merged(dir.path(), &args, 3);
    let audits = full["audits"].as_array().unwrap();
    let with_curves = audits
        .iter()
        .filter(|a| {
            a["curves"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["reference"].is_array()))
        })
        .count();
    assert!(with_curves >= 4, "deletion, insertion, ROAD, degradation");
    let entropy = audits.iter().find(|a| a["code"] == "XA203").unwrap();
    assert!(entropy["summary"]["median_entropy_per_predicted_class"]
        .as_object()
        .is_some_and(|m| m.len() >= 2));
    assert_eq!(single, merged);
}
