//! The fuzz audit: finds and shrinks counterexamples where they exist, finds none where the
//! explanation is invariant by construction, and replays what it reports.
mod common;
use common::{digits_pre, fixture, load};
use std::io::Write;
use std::process::Command;
use xaudit::attribution::MethodKind;
use xaudit::audit::fuzz::Counterexample;
use xaudit::audit::RunCtx;
use xaudit::check::{self, Outcome, Plan};
use xaudit::config::{Config, Preprocess};
use xaudit::data::Dataset;
use xaudit::gate::Verdict;
use xaudit::model::Model;
use xaudit::perturb::Op;
use xaudit::suite::Suite;

fn suite(text: &str) -> Suite {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    Suite::load(f.path().to_str().unwrap()).unwrap()
}

const FUZZ: &str = r#"name = "f"
[[audit]]
id = "fuzz"
threshold = 0.05
params = { cases = 12, max-counterexamples = 2 }
"#;

fn go(model: &Model, pre: &Preprocess, n: usize, methods: &[MethodKind], batch: usize) -> Outcome {
    let mut data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    data.items = data.items.iter().step_by(7).take(n).cloned().collect();
    let tick = |_: usize| {};
    let ctx = RunCtx::new(model, &data, pre, 3, batch, 64, &tick);
    let plan = Plan::new(&suite(FUZZ), &Config::default(), methods, 3, "2026-01-01").unwrap();
    check::run(&ctx, &plan, |_, _| {}, |_| {}).unwrap()
}

fn counterexamples(o: &Outcome, method: &str) -> Vec<Counterexample> {
    let a = o.audits.iter().find(|a| a.method == method).unwrap();
    serde_json::from_value(a.summary["counterexamples"].clone()).unwrap()
}

fn magnitude(op: &Op) -> f64 {
    match *op {
        Op::Brightness { delta } | Op::Contrast { delta } => delta.abs(),
        Op::Noise { sigma, .. } => sigma,
        Op::Translate { dx, dy } => (dx.abs() + dy.abs()) as f64,
        Op::Rotate { degrees } => degrees.abs(),
        Op::Quantize { step } => step as f64,
        Op::Patch { size, .. } => size as f64,
    }
}

#[test]
fn random_explainer_yields_a_shrunk_single_operation_counterexample() {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let o = go(&m, &digits_pre(), 8, &[MethodKind::Random], 8);
    let a = &o.audits[0];
    assert_eq!(a.verdict, Verdict::Fail, "{}", a.reason);
    let ces = counterexamples(&o, "random");
    assert_eq!(ces.len(), 2);
    for ce in &ces {
        assert_eq!(
            ce.program.len(),
            1,
            "not shrunk to one operation: {}",
            ce.description
        );
        assert!(
            magnitude(&ce.program[0]) <= 1e-3 || matches!(ce.program[0], Op::Noise { .. }),
            "not shrunk to a small magnitude: {}",
            ce.description
        );
        assert!(ce.original_program.len() >= ce.program.len());
        assert!(ce.similarity < ce.min_similarity);
    }
    // Pictures for the report.
    assert!(a.examples.iter().any(|e| e.panels.len() == 4));
}

#[test]
fn explanation_invariant_by_construction_has_no_counterexample() {
    // Saliency of a linear model is its weight vector whatever the input: every neutral
    // change leaves the explanation identical.
    let m = load("models/oracle/linear.pt", [3, 8, 8]);
    let pre = common::preprocess(3, 8, 0.5, 0.5);
    let o = go(&m, &pre, 10, &[MethodKind::Saliency], 4);
    let a = &o.audits[0];
    assert!(counterexamples(&o, "saliency").is_empty());
    assert_eq!(a.summary["violations"], 0);
    assert!(a.n >= 60, "cases {}", a.n);
    assert_eq!(a.verdict, Verdict::Pass, "{}", a.reason);
    assert_eq!(a.median, Some(0.0));
}

#[test]
fn same_seed_same_counterexamples_whatever_the_batch_size() {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let a = go(&m, &digits_pre(), 6, &[MethodKind::Saliency], 6);
    let b = go(&m, &digits_pre(), 6, &[MethodKind::Saliency], 4);
    let ja = serde_json::to_string(&a.audits[0].summary).unwrap();
    let jb = serde_json::to_string(&b.audits[0].summary).unwrap();
    assert_eq!(ja, jb);
}

#[test]
fn replay_reproduces_a_reported_counterexample() {
    let t = tempfile::tempdir().unwrap();
    let s = t.path().join("s.toml");
    std::fs::write(&s, FUZZ).unwrap();
    let out = t.path().join("out");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xaudit"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CI", "1")
            .output()
            .unwrap()
    };
    let o = run(&[
        "check",
        "fixtures/models/digits_cnn_s0.pt",
        "--suite",
        s.to_str().unwrap(),
        "--config",
        "fixtures/digits.toml",
        "--data",
        "fixtures/data/digits/test",
        "--max-images",
        "6",
        "--method",
        "random",
        "--method",
        "smoothgrad",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.code().unwrap() <= 1,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report = out.join("report.json");
    for case in ["0", "1"] {
        let r = run(&["replay", report.to_str().unwrap(), "--case", case]);
        let text = String::from_utf8_lossy(&r.stdout);
        assert_eq!(
            r.status.code(),
            Some(1),
            "{text}\n{}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(text.contains("violation reproduced"), "{text}");
        // The recorded similarity is reproduced to the printed precision.
        let line = text.lines().find(|l| l.contains("similarity")).unwrap();
        let nums: Vec<&str> = line
            .split([' ', ',', '('])
            .filter(|w| w.parse::<f64>().is_ok() && w.contains('.'))
            .collect();
        assert!(nums.len() >= 2 && nums[0] == nums[1], "{line}");
    }
    let r = run(&["replay", report.to_str().unwrap(), "--case", "99"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("does not exist"));
}
