//! The fuzz audit: finds and shrinks counterexamples where they exist, finds none where the
//! explanation follows the input by construction (invariant to photometric changes,
//! equivariant to shifts), tests at the image level, and replays what it reports.
mod common;
use common::{digits_pre, fixture, load};
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

use common::suite;

const FUZZ: &str = r#"name = "f"
min-n = 5
[[audit]]
id = "fuzz"
threshold = 0.1
params = { cases = 12, max-counterexamples = 2 }
"#;

fn go(model: &Model, pre: &Preprocess, n: usize, methods: &[MethodKind], batch: usize) -> Outcome {
    go_with(FUZZ, model, pre, n, methods, batch)
}

fn go_with(
    text: &str,
    model: &Model,
    pre: &Preprocess,
    n: usize,
    methods: &[MethodKind],
    batch: usize,
) -> Outcome {
    let mut data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    data.items = data.items.iter().step_by(5).take(n).cloned().collect();
    let tick = |_: usize| {};
    let ctx = RunCtx::new(model, &data, pre, 3, batch, 64, &tick);
    let plan = Plan::new(&suite(text), &Config::default(), methods, 3, "2026-01-01").unwrap();
    check::run(&ctx, &plan, |_, _| {}).unwrap()
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
    // Saliency of a linear model is its weight vector whatever the input: every photometric
    // change (brightness, contrast, noise, quantisation, patches) leaves it identical.
    let m = load("models/oracle/linear.pt", [3, 8, 8]);
    let pre = common::preprocess(3, 8, 0.5, 0.5);
    let text = r#"name = "f"
[[audit]]
id = "fuzz"
threshold = 0.1
params = { cases = 4, budget = { translate = 0, rotate-degrees = 0.0 } }
"#;
    let o = go_with(text, &m, &pre, 60, &[MethodKind::Saliency], 16);
    let a = &o.audits[0];
    assert!(counterexamples(&o, "saliency").is_empty());
    assert_eq!(a.summary["violations"], 0);
    // The unit is the image: 60 images (not 240 programs), none violated.
    assert_eq!(a.n, 60, "{}", a.reason);
    assert_eq!(a.verdict, Verdict::Pass, "{}", a.reason);
    assert_eq!(a.claim.as_ref().and_then(|c| c.estimate), Some(0.0));
}

#[test]
fn an_explanation_that_follows_a_shift_is_not_a_violation() {
    // The edge control moves exactly with whole-pixel shifts of digits on a black
    // background (the fill): S(T x) = T S(x) on the valid region. Compared with the
    // unshifted S(x), as the audit did before, a shift of 2 px halves the similarity.
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let text = r#"name = "f"
min-n = 5
[[audit]]
id = "fuzz"
threshold = 0.1
params = { cases = 6, min-similarity = 0.9, budget = { brightness = 0.0, contrast = 0.0, noise = 0.0, rotate-degrees = 0.0, quantize = 0, patch = 0, translate = 2, max-ops = 1 } }
"#;
    let o = go_with(text, &m, &digits_pre(), 12, &[MethodKind::Edge], 12);
    let a = &o.audits[0];
    assert!(
        a.summary["cases"].as_u64().unwrap() >= 40,
        "{:?}",
        a.summary
    );
    assert_eq!(a.summary["violations"], 0, "{:?}", a.summary);
    // The same maps compared without alignment disagree: the old comparison was wrong.
    let data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    let b = data
        .load_batch(0..4, &digits_pre(), tch::Device::Cpu)
        .unwrap();
    let e = xaudit::attribution::edge::attribute(&b.x);
    let shifted_x = xaudit::transform::Transform::Translate { dx: 2.0, dy: 1.0 }.apply(
        &b.x,
        &tch::Tensor::from_slice(&[-1.0f32]).view([1, 1, 1, 1]),
    );
    let es = xaudit::attribution::edge::attribute(&shifted_x);
    let v = |t: &tch::Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    let mut unaligned = Vec::new();
    for j in 0..4 {
        let (a0, b0) = (v(&e.get(j)), v(&es.get(j)));
        unaligned.push(xaudit::similarity::spearman(&a0, &b0));
        let ops = [Op::Translate { dx: 2, dy: 1 }];
        let aligned = xaudit::audit::fuzz::aligned_similarity("spearman", &a0, 28, 28, &ops, &b0);
        // Not exactly 1: Sobel differs on the one-pixel ring next to the filled border.
        assert!(aligned > 0.9, "aligned {aligned}");
    }
    // Measured: 0.44-0.50 unaligned against 0.94-0.97 aligned.
    assert!(unaligned.iter().all(|s| *s < 0.6), "{unaligned:?}");
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
