//! Known-answer tests: each audit gives the right verdict on a case built to have one.
mod common;

use common::{digits_pre, fixture, load};
use xaudit::attribution::MethodKind;
use xaudit::audit::RunCtx;
use xaudit::check::{self, Outcome, Plan};
use xaudit::config::Config;
use xaudit::data::Dataset;
use xaudit::gate::Verdict;
use xaudit::model::Model;
use xaudit::suite::Suite;

const DIGITS: [i64; 3] = [1, 28, 28];

use common::suite;

fn digits_data(n: usize) -> Dataset {
    // Every 9th image: all ten classes among the first n.
    common::digits_every(9, n)
}

struct Run<'a> {
    model: &'a Model,
    random_label: Option<&'a Model>,
    n: usize,
    batch: usize,
    internal: usize,
    seed: u64,
}

impl<'a> Run<'a> {
    fn new(model: &'a Model) -> Self {
        Run {
            model,
            random_label: None,
            n: 40,
            batch: 32,
            internal: 256,
            seed: 0,
        }
    }

    fn go(&self, s: &Suite, methods: &[MethodKind]) -> Outcome {
        let data = digits_data(self.n);
        let pre = digits_pre();
        let tick = |_: usize| {};
        let mut ctx = RunCtx::new(
            self.model,
            &data,
            &pre,
            self.seed,
            self.batch,
            self.internal,
            &tick,
        );
        ctx.random_label_model = self.random_label;
        let plan = Plan::new(s, &Config::default(), methods, self.seed, "2026-01-01").unwrap();
        check::run(&ctx, &plan, |_, _| {}).unwrap()
    }
}

fn verdict(o: &Outcome, code: &str, method: &str, variant: &str) -> Verdict {
    o.audits
        .iter()
        .find(|a| a.code == code && a.method == method && a.variant == variant)
        .unwrap_or_else(|| panic!("no result {code} {method} {variant}"))
        .verdict
}

fn logits(m: &Model) -> tch::Tensor {
    let data = digits_data(8);
    let b = data
        .load_batch(0..8, &digits_pre(), tch::Device::Cpu)
        .unwrap();
    m.logits(&b.x).unwrap()
}

#[test]
fn cascading_randomization_fails_edge_passes_saliency_and_restores_weights() {
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let before = logits(&m);
    let s = suite(
        r#"name = "t"
[[audit]]
id = "cascading-randomization"
threshold = 0.5
[[audit]]
id = "independent-randomization"
threshold = 0.5
"#,
    );
    let o = Run::new(&m).go(&s, &[MethodKind::Saliency, MethodKind::Edge]);
    assert_eq!(verdict(&o, "XA101", "edge", ""), Verdict::Fail);
    assert_eq!(verdict(&o, "XA101", "saliency", ""), Verdict::Pass);
    assert_eq!(verdict(&o, "XA102", "edge", ""), Verdict::Fail);
    // The layer curve starts at the original (1.0) and has one point per parameter group.
    let r = o
        .audits
        .iter()
        .find(|a| a.code == "XA101" && a.method == "saliency")
        .unwrap();
    let curve = &r.curves[0];
    assert_eq!(curve.x.len(), 1 + 4, "{:?}", curve.x);
    assert_eq!(curve.x[1], "fc");
    assert!(
        logits(&m).equal(&before),
        "weights not restored bit-exactly"
    );
    assert_eq!(o.exit_code, 1);
}

#[test]
fn random_explainer_fails_attacks_and_sensitivity() {
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let s = suite(
        r#"name = "t"
[[audit]]
id = "attack-random-sign"
threshold = 0.5
params = { iterations = 5 }
[[audit]]
id = "attack-top-k"
threshold = 0.5
params = { iterations = 5, zo-directions = 1 }
[[audit]]
id = "sensitivity-max"
threshold = 0.5
params = { samples = 8, radius = 8.0 }
[[audit]]
id = "local-lipschitz"
threshold = 0.5
params = { samples = 8 }
"#,
    );
    let o = Run::new(&m).go(&s, &[MethodKind::Random]);
    for code in ["XA001", "XA002", "XA004"] {
        assert_eq!(verdict(&o, code, "random", ""), Verdict::Fail, "{code}");
    }
    let topk = o.audits.iter().find(|a| a.code == "XA002").unwrap();
    assert!(topk.median().unwrap() < 0.2, "{:?}", topk.median());
    assert_eq!(topk.summary["estimator"], "zeroth-order");
}

#[test]
fn targeted_attack_beats_the_random_sign_baseline_on_saliency() {
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let s = suite(
        r#"name = "t"
[[audit]]
id = "attack-random-sign"
threshold = 0.5
params = { iterations = 20 }
[[audit]]
id = "attack-top-k"
threshold = 0.5
params = { iterations = 20 }
"#,
    );
    let mut r = Run::new(&m);
    r.n = 12;
    let o = r.go(&s, &[MethodKind::Saliency]);
    let med = |c: &str| {
        o.audits
            .iter()
            .find(|a| a.code == c)
            .unwrap()
            .median()
            .unwrap()
    };
    assert!(
        med("XA002") < med("XA001"),
        "top-k {} vs random-sign {}",
        med("XA002"),
        med("XA001")
    );
    // Every kept iterate stays inside the budget (8 pixel units).
    let a = o.audits.iter().find(|a| a.code == "XA002").unwrap();
    assert!(a.secondary["linf-pixels"].median.unwrap() <= 8.0 + 1e-3);
}

#[test]
fn invariant_model_passes_flip_equivariance_and_random_fails() {
    let m = load("models/invariant_d4.pt", DIGITS);
    let s = suite(
        r#"name = "t"
[[audit]]
id = "equivariance"
threshold = 0.7
params = { transforms = ["hflip", "vflip", "rot90"] }
"#,
    );
    let o = Run::new(&m).go(
        &s,
        &[
            MethodKind::Saliency,
            MethodKind::GradCam,
            MethodKind::Random,
        ],
    );
    for v in ["hflip", "vflip", "rot90"] {
        assert_eq!(verdict(&o, "XA201", "saliency", v), Verdict::Pass, "{v}");
        assert_eq!(verdict(&o, "XA201", "grad-cam", v), Verdict::Pass, "{v}");
        assert_eq!(verdict(&o, "XA201", "random", v), Verdict::Fail, "{v}");
        let r = o
            .audits
            .iter()
            .find(|a| a.method == "saliency" && a.variant == v)
            .unwrap();
        assert!(r.median().unwrap() > 0.999, "{v}: {:?}", r.median());
        assert_eq!(
            r.excluded, 0,
            "invariant model changed its prediction under {v}"
        );
    }
}

#[test]
fn noise_is_out_of_set_for_the_trained_digits_model() {
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let s = suite(
        r#"name = "t"
[[audit]]
id = "out-of-set"
threshold = 0.3
params = { kinds = ["gaussian-noise", "uniform-noise"] }
[[audit]]
id = "salience-entropy"
threshold = 0.99
"#,
    );
    let o = Run::new(&m).go(&s, &[MethodKind::Saliency]);
    assert_eq!(
        verdict(&o, "XA202", "saliency", "gaussian-noise"),
        Verdict::Pass
    );
    assert_eq!(
        verdict(&o, "XA202", "saliency", "uniform-noise"),
        Verdict::Pass
    );
    assert_eq!(verdict(&o, "XA203", "saliency", ""), Verdict::Pass);
}

#[test]
fn data_randomization_separates_saliency_from_edge() {
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let shuffled = load("models/digits_cnn_shuffled.pt", DIGITS);
    let s = suite(
        r#"name = "t"
[[audit]]
id = "data-randomization"
threshold = 0.5
[[audit]]
id = "random-logit"
threshold = 0.5
"#,
    );
    let mut r = Run::new(&m);
    let o = r.go(&s, &[MethodKind::Edge]);
    assert_eq!(
        verdict(&o, "XA104", "edge", ""),
        Verdict::NotRun,
        "no random-label model given"
    );
    r.random_label = Some(&shuffled);
    let o = r.go(&s, &[MethodKind::Saliency, MethodKind::Edge]);
    assert_eq!(verdict(&o, "XA104", "saliency", ""), Verdict::Pass);
    assert_eq!(verdict(&o, "XA104", "edge", ""), Verdict::Fail);
    assert_eq!(verdict(&o, "XA103", "edge", ""), Verdict::Fail);
}

#[test]
fn too_few_images_is_inconclusive_not_pass() {
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let s = suite("name = \"t\"\n[[audit]]\nid = \"cascading-randomization\"\nthreshold = 0.5\n");
    let mut r = Run::new(&m);
    r.n = 10;
    let o = r.go(&s, &[MethodKind::Saliency]);
    let a = &o.audits[0];
    assert_eq!(a.verdict, Verdict::Inconclusive);
    assert!(a.reason.contains("minimum"), "{}", a.reason);
    assert_eq!(o.exit_code, 1, "INCONCLUSIVE fails the gate by default");
}

#[test]
fn same_numbers_whatever_the_batch_sizes() {
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let s = suite(
        r#"name = "t"
[[audit]]
id = "attack-top-k"
threshold = 0.5
params = { iterations = 3, zo-directions = 2 }
[[audit]]
id = "sensitivity-max"
threshold = 0.5
params = { samples = 6 }
[[audit]]
id = "cascading-randomization"
threshold = 0.5
[[audit]]
id = "equivariance"
threshold = 0.7
params = { transforms = ["hflip", "rotate"], rotate-degrees = [10.0] }
[[audit]]
id = "out-of-set"
threshold = 0.3
params = { kinds = ["gaussian-noise", "patch-shuffle"] }
"#,
    );
    let methods = [MethodKind::Saliency, MethodKind::Smoothgrad];
    let mut r = Run::new(&m);
    r.n = 14;
    let a = r.go(&s, &methods);
    r.batch = 5;
    r.internal = 7;
    let b = r.go(&s, &methods);
    r.batch = 32;
    r.internal = 256;
    let c = r.go(&s, &methods);
    assert_eq!(a.audits.len(), b.audits.len());
    for (x, y) in a.audits.iter().zip(&b.audits) {
        let vx: Vec<Option<f64>> = x.per_sample.iter().map(|s| s.value).collect();
        let vy: Vec<Option<f64>> = y.per_sample.iter().map(|s| s.value).collect();
        for (p, q) in vx.iter().zip(&vy) {
            match (p, q) {
                (Some(p), Some(q)) => assert!(
                    (p - q).abs() <= 1e-5 * (1.0 + p.abs()),
                    "{} {} {}: {p} vs {q}",
                    x.code,
                    x.method,
                    x.variant
                ),
                _ => assert_eq!(p, q, "{} {}", x.code, x.method),
            }
        }
    }
    // Same seed, same settings: identical JSON.
    let ja = serde_json::to_string(
        &a.audits
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.duration_s = 0.0;
                r
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let jc = serde_json::to_string(
        &c.audits
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.duration_s = 0.0;
                r
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(ja, jc);
}

#[test]
fn grad_cam_on_a_model_without_features_is_not_run() {
    let m = load("models/oracle/linear.pt", [3, 8, 8]);
    let s = suite("name = \"t\"\n[[audit]]\nid = \"salience-entropy\"\nthreshold = 0.9\n");
    let data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    let pre = common::preprocess(3, 8, 0.5, 0.5);
    let tick = |_: usize| {};
    let ctx = RunCtx::new(&m, &data, &pre, 0, 8, 64, &tick);
    let plan = Plan::new(
        &s,
        &Config::default(),
        &[MethodKind::GradCam],
        0,
        "2026-01-01",
    )
    .unwrap();
    let o = check::run(&ctx, &plan, |_, _| {}).unwrap();
    assert_eq!(o.audits[0].verdict, Verdict::NotRun);
    assert!(
        o.audits[0].reason.contains("features"),
        "{}",
        o.audits[0].reason
    );
}

#[test]
fn an_audit_left_without_methods_is_reported_not_dropped() {
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let s = suite(
        "name = \"t\"\n[[audit]]\nid = \"attack-top-k\"\nthreshold = 0.5\nmethods = [\"grad-cam\"]\n[[audit]]\nid = \"salience-entropy\"\nthreshold = 0.99\n",
    );
    let o = Run::new(&m).go(&s, &[MethodKind::Saliency]);
    let a = o
        .audits
        .iter()
        .find(|a| a.code == "XA002")
        .expect("attack-top-k reported");
    assert_eq!(a.verdict, Verdict::NotRun);
    assert!(a.reason.contains("grad-cam"), "{}", a.reason);
    assert_eq!(verdict(&o, "XA203", "saliency", ""), Verdict::Pass);
}

fn result<'o>(o: &'o Outcome, code: &str, method: &str) -> &'o xaudit::report::AuditResult {
    o.audits
        .iter()
        .find(|a| a.code == code && a.method == method)
        .unwrap_or_else(|| panic!("no result {code} {method}"))
}

#[test]
fn pass_counts_are_the_passes_the_audit_needs() {
    // 12 images x 5 samples: one clean prediction and one clean map per image, then one
    // forward+backward per sample, whose logits also give the perturbed prediction.
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let s = suite(
        r#"name = "t"
[[audit]]
id = "sensitivity-max"
threshold = 0.5
params = { samples = 5 }
"#,
    );
    let mut run = Run::new(&m);
    run.n = 12;
    run.internal = 7;
    let o = run.go(&s, &[MethodKind::Saliency, MethodKind::IntegratedGradients]);
    let sal = &result(&o, "XA004", "saliency").summary;
    assert_eq!(sal["model_forward_images"], 12);
    assert_eq!(sal["model_backward_images"], 12 + 12 * 5);
    // IG: 51 path points per explanation, plus its completeness check's forward pass at x and
    // at the baseline, which also gives the prediction (clean predictions are cached).
    let ig = &result(&o, "XA004", "integrated-gradients").summary;
    assert_eq!(ig["model_backward_images"], 51 * (12 + 12 * 5));
    assert_eq!(ig["model_forward_images"], 2 * (12 + 12 * 5));
}

#[test]
fn sensitivity_clip_parameter_changes_the_perturbed_inputs() {
    // Digits have many pixels at 0, the lower bound: clamping changes the perturbation there.
    let m = load("models/digits_cnn_s0.pt", DIGITS);
    let values = |clip: bool| {
        let s = suite(&format!(
            "name = \"t\"\n[[audit]]\nid = \"sensitivity-max\"\nthreshold = 0.5\nparams = {{ samples = 3, radius = 10.0, clip = {clip} }}\n"
        ));
        let mut run = Run::new(&m);
        run.n = 6;
        let o = run.go(&s, &[MethodKind::Saliency]);
        result(&o, "XA004", "saliency")
            .per_sample
            .iter()
            .map(|v| v.value.expect("a sample kept the prediction"))
            .collect::<Vec<f64>>()
    };
    let (a, b) = (values(true), values(false));
    assert!(a.iter().zip(&b).all(|(x, y)| x != y), "{a:?} vs {b:?}");
    assert_eq!(values(true), a, "same seed, same numbers");
}
