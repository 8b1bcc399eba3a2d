//! Sequential `check` (the default): images in a seeded random order, each audit with an
//! anytime-valid test stops as soon as its verdict is decided, and the report says how far
//! every audit went and why it stopped. Clear verdicts stop at the first look with the same
//! verdicts as `--fixed-n` and far fewer model passes; a model-blind control fails early;
//! tests without a sequential form measure every image; an undecidable result runs to the
//! cap and is INCONCLUSIVE; the same seed gives the same report.
mod common;
use common::{fixture, output_text as text, xaudit as run};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `check` on the digits CNN with `extra` arguments; returns the exit code and report.json.
fn check(out: &Path, suite: &str, extra: &[&str]) -> (i32, Value) {
    let mut a: Vec<String> = vec![
        "check".into(),
        s(&fixture("models/digits_cnn_s0.pt")),
        "--config".into(),
        s(&fixture("digits.toml")),
        "--suite".into(),
        suite.into(),
        "--threads".into(),
        "1".into(),
        "--out-dir".into(),
        s(out),
        "--write".into(),
        "json".into(),
    ];
    a.extend(extra.iter().map(|x| x.to_string()));
    let o = run(&a);
    let code = o.status.code().unwrap_or(-1);
    assert!(code <= 1, "{}", text(&o));
    let r =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    (code, r)
}

fn audit<'a>(r: &'a Value, code: &str) -> &'a Value {
    r["audits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == code)
        .unwrap_or_else(|| panic!("no {code}"))
}

/// Images through the model, all audits together.
fn passes(r: &Value) -> u64 {
    r["audits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["summary"]["model_forward_images"].as_u64().unwrap_or(0)
                + a["summary"]["model_backward_images"].as_u64().unwrap_or(0)
        })
        .sum()
}

/// The report without provenance and wall times.
fn comparable(r: &Value) -> Value {
    let mut r = r.clone();
    r.as_object_mut().unwrap().remove("provenance");
    for a in r["audits"].as_array_mut().unwrap() {
        a["duration_s"] = Value::Null;
    }
    r
}

const SANITY: [&str; 5] = ["XA101", "XA102", "XA103", "XA105", "XA106"];

/// The sanity suite on saliency: every result is clear, so every one stops at the first look
/// (30 of 120 images) with the verdict the fixed-n run gives on all 120, for a fraction of the
/// model passes; the report says so; a second run is identical.
#[test]
fn clear_verdicts_stop_at_the_first_look_with_the_fixed_n_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--data",
        "fixtures/data/digits/test",
        "--max-images",
        "120",
        "--method",
        "saliency",
    ];
    let data = s(&fixture("data/digits/test"));
    let args: Vec<&str> = args
        .iter()
        .map(|a| {
            if a.starts_with("fixtures/") {
                data.as_str()
            } else {
                a
            }
        })
        .collect();
    let (code, seq) = check(&dir.path().join("seq"), "sanity", &args);
    let mut fixed_args = args.clone();
    fixed_args.push("--fixed-n");
    let (fixed_code, fixed) = check(&dir.path().join("fixed"), "sanity", &fixed_args);
    assert_eq!(code, fixed_code);
    assert_eq!(seq["sequential"], true);
    assert_eq!(fixed["sequential"], false);
    for c in SANITY {
        let (a, b) = (audit(&seq, c), audit(&fixed, c));
        assert_eq!(a["verdict"], "pass", "{c}: {}", a["reason"]);
        assert_eq!(a["verdict"], b["verdict"], "{c}");
        let st = &a["sequential"];
        assert_eq!(st["stopped"], "decided", "{c}: {st}");
        assert_eq!(st["images"], 30, "{c}: {st}");
        assert_eq!(st["available"], 120, "{c}: {st}");
        assert_eq!(st["looks"], serde_json::json!([30]), "{c}: {st}");
        assert_eq!(a["claim"]["test"], "quantile-anytime");
        assert!(a["reason"].as_str().unwrap().contains("anytime-valid"));
        // The confidence-sequence bound lies on the verdict's side of the threshold.
        let t = a["threshold"].as_f64().unwrap();
        match a["direction"].as_str().unwrap() {
            "lower" => assert!(a["bound_high"].as_f64().unwrap() < t, "{c}"),
            _ => assert!(a["bound_low"].as_f64().unwrap() > t, "{c}"),
        }
        assert!(b.get("sequential").is_none());
        assert_eq!(b["n"], 120);
    }
    let (p_seq, p_fixed) = (passes(&seq), passes(&fixed));
    eprintln!("model passes: sequential {p_seq}, fixed n {p_fixed}");
    assert!(3 * p_seq < p_fixed, "{p_seq} vs {p_fixed}");
    // Same seed, same report.
    let (_, again) = check(&dir.path().join("again"), "sanity", &args);
    assert_eq!(comparable(&seq), comparable(&again));
    // The images are a seeded random sample, not the first folders: another seed draws
    // others.
    let mut other = args.clone();
    other.extend(["--seed", "7"]);
    let (_, r7) = check(&dir.path().join("seed7"), "sanity", &other);
    let firsts = |r: &Value| -> Vec<String> {
        r["images"].as_array().unwrap()[..30]
            .iter()
            .map(|i| i["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_ne!(firsts(&seq), firsts(&r7));
    let classes: std::collections::BTreeSet<String> = firsts(&seq)
        .iter()
        .map(|p| Path::new(p).parent().unwrap().display().to_string())
        .collect();
    assert!(
        classes.len() >= 5,
        "the first look spans the classes: {classes:?}"
    );
}

/// A map that ignores the model (`fixed-random`) fails the randomisation prerequisite at the
/// first look.
#[test]
fn a_model_blind_control_fails_early() {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&fixture("data/digits/test"));
    let (code, r) = check(
        dir.path(),
        "sanity",
        &[
            "--data",
            &data,
            "--max-images",
            "120",
            "--method",
            "fixed-random",
        ],
    );
    assert_eq!(code, 1);
    let a = audit(&r, "XA101");
    assert_eq!(a["verdict"], "fail", "{}", a["reason"]);
    assert_eq!(a["sequential"]["stopped"], "decided");
    assert_eq!(a["sequential"]["images"], 30);
}

/// `n` digits listed in a CSV, classes interleaved.
fn digits_csv(dir: &Path, n: usize) -> PathBuf {
    let root = fixture("data/digits/test");
    let mut csv = String::from("path,label\n");
    for k in 0..n {
        let c = k % 8;
        let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(c.to_string()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        csv.push_str(&format!("{},{c}\n", v[k / 8].display()));
    }
    let path = dir.join("digits.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// A Wilcoxon test has no sequential form here, so its audit measures every image; a
/// quantile claim whose threshold is the sample median cannot be decided, so it runs to the
/// cap (every look taken) and is INCONCLUSIVE.
#[test]
fn undecided_results_run_to_the_cap_and_other_tests_measure_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let data = digits_csv(dir.path(), 40);
    let data = s(&data);
    // The median SSIM of random-logit on these 40 images, at fixed n.
    let one = dir.path().join("one.toml");
    std::fs::write(
        &one,
        "name = \"t\"\n[[audit]]\nid = \"random-logit\"\nthreshold = 0.5\n",
    )
    .unwrap();
    let (_, fixed) = check(
        &dir.path().join("fixed"),
        &s(&one),
        &["--data", &data, "--method", "saliency", "--fixed-n"],
    );
    let median = audit(&fixed, "XA103")["claim"]["estimate"]
        .as_f64()
        .unwrap();
    let suite = dir.path().join("two.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"t\"\n[[audit]]\nid = \"random-logit\"\nthreshold = {median}\n[[audit]]\nid = \"cascading-randomization\"\nthreshold = 0.5\ntest = \"wilcoxon\"\n"
        ),
    )
    .unwrap();
    let (_, r) = check(
        &dir.path().join("seq"),
        &s(&suite),
        &["--data", &data, "--method", "saliency"],
    );
    let a = audit(&r, "XA103");
    assert_eq!(a["verdict"], "inconclusive", "{}", a["reason"]);
    assert_eq!(a["sequential"]["stopped"], "cap");
    assert_eq!(a["sequential"]["images"], 40);
    assert_eq!(a["sequential"]["looks"], serde_json::json!([30, 40]));
    assert!(
        a["reason"].as_str().unwrap().contains("still undecided"),
        "{}",
        a["reason"]
    );
    let b = audit(&r, "XA101");
    assert!(
        b["sequential"]["stopped"]
            .as_str()
            .unwrap()
            .starts_with("fixed-n: Wilcoxon"),
        "{}",
        b["sequential"]
    );
    assert_eq!(b["sequential"]["images"], 40);
    assert_eq!(b["n"], 40);
    assert_eq!(b["claim"]["test"], "wilcoxon-signed-rank");
}
