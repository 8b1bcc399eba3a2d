//! The attacks find the worst case: the exact estimator (double backpropagation) on a smooth
//! model, the surrogate on a ReLU model, the zeroth-order fallback, each against the
//! random-sign baseline; a targeted attack too weak to beat random-sign cannot PASS; and
//! Dombrowski et al.'s targeted manipulation steers real explanations but not a fixed map.
mod common;
use common::{digits_every, digits_pre, load, suite};
use xaudit::attribution::MethodKind;
use xaudit::audit::RunCtx;
use xaudit::check::{self, Outcome, Plan};
use xaudit::config::Config;
use xaudit::gate::Verdict;
use xaudit::model::Model;
use xaudit::report::AuditResult;

fn go(model: &Model, surrogate: Option<&Model>, text: &str, methods: &[MethodKind]) -> Outcome {
    let data = digits_every(9, 40);
    let pre = digits_pre();
    let tick = |_: usize| {};
    let mut ctx = RunCtx::new(model, &data, &pre, 0, 40, 256, &tick);
    ctx.surrogate = surrogate;
    let plan = Plan::new(&suite(text), &Config::default(), methods, 0, "2026-01-01").unwrap();
    check::run(&ctx, &plan, |_, _| {}).unwrap()
}

fn top_k(estimator: &str, grid: usize) -> String {
    format!(
        "name = \"t\"\n[[audit]]\nid = \"attack-top-k\"\nthreshold = 0.5\nparams = {{ iterations = 20, estimator = \"{estimator}\", zo-grid = {grid} }}\n"
    )
}

fn result<'a>(o: &'a Outcome, code: &str, method: &str) -> &'a AuditResult {
    o.audits
        .iter()
        .find(|a| a.code == code && a.method == method)
        .unwrap_or_else(|| panic!("no {code} {method}"))
}

fn medians(a: &AuditResult) -> (f64, f64) {
    (
        a.median().unwrap(),
        a.secondary["random-sign-top-k-intersection"]
            .median
            .unwrap(),
    )
}

#[test]
fn exact_gradients_on_a_smooth_model_beat_random_sign_and_zeroth_order_follows() {
    let m = load("models/digits_smooth.pt", [1, 28, 28]);
    let o = go(&m, None, &top_k("auto", 0), &[MethodKind::Saliency]);
    let a = result(&o, "XA002", "saliency");
    assert_eq!(
        a.summary["estimator"], "exact",
        "{:?}",
        a.summary["estimator_reason"]
    );
    let (exact, random) = medians(a);
    // Measured: 0.44 against 0.94 at 20 iterations on these 40 images; zeroth-order (auto
    // grid) 0.75, 44% of the exact damage.
    eprintln!("exact {exact}, random-sign {random}");
    assert!(exact < 0.6 * random, "exact {exact}, random-sign {random}");
    assert_ne!(a.verdict, Verdict::Pass, "{}", a.reason);
    let z = go(&m, None, &top_k("zeroth-order", 0), &[MethodKind::Saliency]);
    let za = result(&z, "XA002", "saliency");
    assert_eq!(za.summary["estimator"], "zeroth-order");
    let (zo, _) = medians(za);
    let fraction = (1.0 - zo) / (1.0 - exact);
    eprintln!("zeroth-order {zo}: {fraction} of the exact damage");
    assert!(
        (0.3..1.0).contains(&fraction),
        "zeroth-order reached {fraction} of the exact damage"
    );
    // The report says how strong and how costly each was.
    for r in [a, za] {
        assert!(r.summary["model_passes_per_image"].as_f64().unwrap() > 20.0);
        assert!(
            r.summary["strength_vs_random_sign"]["p_one_sided_sign_test"]
                .as_f64()
                .unwrap()
                < 1e-6
        );
    }
}

#[test]
fn a_smooth_surrogate_beats_the_zeroth_order_estimator_on_a_relu_model() {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let s = load("models/digits_cnn_s0_softplus.pt", [1, 28, 28]);
    let o = go(&m, Some(&s), &top_k("auto", 0), &[MethodKind::Saliency]);
    let a = result(&o, "XA002", "saliency");
    assert_eq!(
        a.summary["estimator"], "surrogate",
        "{:?}",
        a.summary["estimator_reason"]
    );
    let z = go(&m, None, &top_k("auto", 0), &[MethodKind::Saliency]);
    let za = result(&z, "XA002", "saliency");
    assert_eq!(
        za.summary["estimator"], "zeroth-order",
        "a ReLU model has no exact path"
    );
    let (sur, _) = medians(a);
    let (zo, _) = medians(za);
    // Measured on these 40 images at 20 iterations: 0.22 against 0.34 (zeroth-order, auto
    // grid), with 84 against 684 model passes per image.
    eprintln!(
        "surrogate {sur} ({} passes/image), zeroth-order {zo} ({})",
        a.summary["model_passes_per_image"], za.summary["model_passes_per_image"]
    );
    assert!(sur < zo, "surrogate {sur}, zeroth-order {zo}");
    assert!(
        a.summary["model_passes_per_image"].as_f64().unwrap()
            < za.summary["model_passes_per_image"].as_f64().unwrap()
    );
    // Asking for the exact estimator on a ReLU model is refused with the reason.
    let e = go(&m, None, &top_k("exact", 0), &[MethodKind::Saliency]);
    let ea = result(&e, "XA002", "saliency");
    assert_eq!(ea.verdict, Verdict::NotRun);
    assert!(ea.reason.contains("surrogate"), "{}", ea.reason);
}

#[test]
fn an_attack_no_stronger_than_random_sign_cannot_pass() {
    // One zeroth-order step along one direction with a tiny budget moves the map no more than
    // random noise does (measured: stronger on 8 images, weaker on 22): the claim "top-k
    // intersection above 0.05" holds, but that shows nothing about robustness.
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let o = go(
        &m,
        None,
        "name = \"t\"\n[[audit]]\nid = \"attack-top-k\"\nthreshold = 0.05\nparams = { iterations = 1, epsilon = 0.5, step = 0.5, zo-directions = 1, estimator = \"zeroth-order\" }\n",
        &[MethodKind::Saliency],
    );
    let a = result(&o, "XA002", "saliency");
    assert_eq!(a.verdict, Verdict::Inconclusive, "{}", a.reason);
    assert!(
        a.reason.contains("stronger than the random-sign baseline"),
        "{}",
        a.reason
    );
    assert!(a.bound_low.unwrap() > 0.05, "the claim itself held");
}

#[test]
fn targeted_manipulation_steers_real_explanations_not_a_fixed_map() {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let s = load("models/digits_cnn_s0_softplus.pt", [1, 28, 28]);
    let text = "name = \"t\"\n[[audit]]\nid = \"attack-targeted\"\nthreshold = 0.3\nparams = { iterations = 30 }\n";
    let o = go(
        &m,
        Some(&s),
        text,
        &[
            MethodKind::Saliency,
            MethodKind::FixedRandom,
            MethodKind::Edge,
        ],
    );
    let sal = result(&o, "XA006", "saliency");
    assert_eq!(sal.summary["estimator"], "surrogate");
    let gains: Vec<f64> = sal.per_sample.iter().filter_map(|v| v.value).collect();
    // Similarity to the target rises on (almost) every image: measured median gain 0.15.
    let up = gains.iter().filter(|g| **g > 0.0).count();
    assert!(up >= 35 && gains.len() >= 38, "{up} of {}", gains.len());
    assert!(sal.median().unwrap() > 0.05, "{:?}", sal.median());
    // Similarity to the target recorded before and after on all three measures.
    let med = |k: &str| sal.secondary[k].median.unwrap();
    assert!(med("pcc-after") > med("pcc-before"));
    assert!(med("mse-after") < med("mse-before"));
    assert!(med("ssim-after").is_finite() && med("ssim-before").is_finite());
    // Output preserved (the paper's second term) and inside the budget.
    assert!(sal.secondary["output-change"].median.unwrap() < 0.05);
    assert!(sal.secondary["linf-pixels"].median.unwrap() <= 8.0 + 1e-3);
    assert!(sal.summary.contains_key("beta_smoothing_defence"));
    // Steering beats random-sign steps of the same size on the same images.
    let st = &sal.summary["strength_vs_random_sign"];
    assert!(st["targeted_stronger"].as_u64().unwrap() >= 35, "{st}");
    assert!(st["p_one_sided_sign_test"].as_f64().unwrap() < 1e-6, "{st}");
    assert_eq!(sal.verdict, Verdict::Pass, "{}", sal.reason);
    // A map that ignores the input cannot be steered at all.
    let fixed = result(&o, "XA006", "fixed-random");
    assert!(fixed
        .per_sample
        .iter()
        .filter_map(|v| v.value)
        .all(|g| g == 0.0));
    // ...and neither can random steps, so nothing is shown and the control does not PASS.
    assert_eq!(fixed.verdict, Verdict::Inconclusive, "{}", fixed.reason);
    // The edge detector ignores the model, not the input: it is steered through the input
    // (its gain is recorded; the model-dependence prerequisite is what rejects it).
    let edge = result(&o, "XA006", "edge");
    assert_eq!(edge.summary["estimator"], "exact");
    assert!(edge.median().unwrap() > 0.0);
}

/// `xaudit doctor` tells the user which estimator the attacks can use: second order is
/// unavailable on the ReLU model, available on its surrogate, and the two are compared.
#[test]
fn doctor_reports_second_order_and_surrogate_agreement() {
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_xaudit"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run xaudit");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let common = [
        "--config",
        "fixtures/digits.toml",
        "--data",
        "fixtures/data/digits_demo.csv",
    ];
    let mut args = vec!["doctor", "fixtures/models/digits_cnn_s0.pt"];
    args.extend(["--surrogate", "fixtures/models/digits_cnn_s0_softplus.pt"]);
    args.extend(common);
    let out = run(&args);
    assert!(
        out.contains("exact attack gradients (second order, saliency): not available"),
        "{out}"
    );
    let (_, sur) = out.split_once("surrogate: ").expect(&out);
    assert!(
        sur.contains("agreement on 20 images: top-1 100.0%"),
        "{sur}"
    );
    assert!(sur.contains("second-order gradients: available"), "{sur}");
    assert!(!sur.contains("warning"), "{sur}");

    // A surrogate that is neither the same network nor smooth is called out on both counts.
    let mut args = vec!["doctor", "fixtures/models/digits_cnn_s0.pt"];
    args.extend(["--surrogate", "fixtures/models/digits_cnn_untrained.pt"]);
    args.extend(common);
    let out = run(&args);
    assert!(
        out.contains("second-order gradients: NOT available"),
        "{out}"
    );
    assert!(
        out.contains("warning: the surrogate disagrees with the model"),
        "{out}"
    );

    let mut args = vec!["doctor", "fixtures/models/digits_smooth.pt"];
    args.extend(common);
    let out = run(&args);
    assert!(
        out.contains("exact attack gradients (second order, saliency): available"),
        "{out}"
    );
}

/// Attacks keep labels: with a budget that saturates the image, iterates change the label;
/// an image with no label-preserving iterate is excluded and counted, never scored.
#[test]
fn attacks_score_only_label_preserving_iterates() {
    let smooth = load("models/digits_smooth.pt", [1, 28, 28]);
    let o = go(
        &smooth,
        None,
        "name = \"t\"\n[[audit]]\nid = \"attack-top-k\"\nthreshold = 0.5\nparams = { epsilon = 255.0, step = 255.0, iterations = 2, estimator = \"exact\" }\n[[audit]]\nid = \"attack-targeted\"\nthreshold = 0.3\nparams = { epsilon = 255.0, lr = 255.0, output-weight = 0.0, iterations = 2, estimator = \"exact\" }\n",
        &[MethodKind::Saliency],
    );
    for code in ["XA002", "XA006"] {
        let a = result(&o, code, "saliency");
        assert_eq!(a.summary["estimator"], "exact");
        let n = a.summary["images_excluded_label_changed_at_every_iterate"]
            .as_u64()
            .unwrap();
        assert!(n >= 10, "{code}: {:?}", a.excluded_reasons);
        assert!(
            a.excluded_reasons
                .iter()
                .any(|(k, v)| k.contains("label changed at every iterate") && *v as u64 == n),
            "{code}: {:?}",
            a.excluded_reasons
        );
        assert_eq!(a.n + a.excluded, 40, "{code}");
    }
}
