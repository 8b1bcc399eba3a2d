//! Known answers of the faithfulness audits (deletion, insertion, average drop, increase in
//! confidence): a closed form on a linear model, PASS for the trained digits CNN's gradient
//! and CAM maps against a random order, no PASS for the model-blind controls.
mod common;

use common::{digits_pre, fixture, load, suite};
use tch::Kind;
use xaudit::attribution::{Aggregate, Method, MethodKind, Score};
use xaudit::audit::{Finding, RunCtx};
use xaudit::check::{self, Outcome, Plan};
use xaudit::config::Config;
use xaudit::data::Dataset;
use xaudit::gate::Verdict;

fn measure(ctx: &RunCtx, audit: &str, method: &Method, params: &str) -> Finding {
    let entry = xaudit::audit::find(audit).unwrap();
    let t: toml::Table = params.parse().unwrap();
    let mut f = (entry.measure)(ctx, method, &t).unwrap().remove(0);
    // Aggregates over images (curves, summaries) are built once every image is in.
    xaudit::audit::finish(entry, &mut f);
    f
}

fn column(f: &Finding, metric: &str) -> Vec<f64> {
    f.metrics[metric].iter().map(|v| v.unwrap()).collect()
}

/// On a linear model the logit after deleting (to model-space 0) a set S of pixels is
/// z - sum_{p in S} a_p with a_p = sum_c W[t,c,p] x[c,p], so removing pixels in decreasing
/// a_p gives the lowest logit at every step: the IG map (zero baseline, logit, summed over
/// channels) is exactly a_p and its deletion AUC is the minimum over all orders, computed
/// here in closed form; saliency's order and random orders cannot do better.
#[test]
fn on_a_linear_model_the_ig_order_is_the_optimal_deletion_order() {
    let m = load("models/oracle/linear.pt", [3, 8, 8]);
    let data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    let mut data = data;
    data.items.truncate(24);
    let pre = common::preprocess(3, 8, 0.5, 0.5);
    let tick = |_: usize| {};
    let ctx = RunCtx::new(&m, &data, &pre, 0, 8, 64, &tick);
    let ig = Method {
        score: Score::Logit,
        aggregate: Aggregate::Sum,
        ..Method::defaults(MethodKind::IntegratedGradients)
    };
    let sal = Method {
        score: Score::Logit,
        ..Method::defaults(MethodKind::Saliency)
    };
    let steps = 16;
    let params =
        format!("steps = {steps}\nscore = \"logit\"\nbaseline = \"zero\"\nrandom-orders = 4");
    let f_ig = measure(&ctx, "deletion", &ig, &params);
    let f_sal = measure(&ctx, "deletion", &sal, &params);

    // Closed form.
    let w = common::npy("models/oracle/linear_W.npy").view([3, 3, 64]);
    let bias = common::npy("models/oracle/linear_b.npy");
    let b = data.load_batch(0..24, &pre, tch::Device::Cpu).unwrap();
    let x = b.x.view([24, 3, 64]);
    let auc_ig = column(&f_ig, "auc");
    for i in 0..24i64 {
        let xi = x.get(i);
        let z: Vec<f64> = (0..3)
            .map(|k| (w.get(k) * &xi).sum(Kind::Double).double_value(&[]) + bias.double_value(&[k]))
            .collect();
        let t = (0..3).max_by(|a, b| z[*a].total_cmp(&z[*b])).unwrap();
        let a = (w.get(t as i64) * &xi).sum_dim_intlist(0, false, Kind::Double);
        let mut a: Vec<f64> = Vec::try_from(a).unwrap();
        a.sort_by(|p, q| q.total_cmp(p));
        let curve: Vec<f64> = (0..=steps)
            .map(|s| {
                let k = ((s as f64 / steps as f64) * 64.0).round() as usize;
                z[t] - a[..k].iter().sum::<f64>()
            })
            .collect();
        let want = (curve.iter().sum::<f64>() - (curve[0] + curve[steps]) / 2.0) / steps as f64;
        let got = auc_ig[i as usize];
        assert!(
            (got - want).abs() < 1e-4,
            "image {i}: IG order AUC {got} vs closed form {want}"
        );
    }
    let auc_sal = column(&f_sal, "auc");
    let auc_rand = column(&f_ig, "auc-random");
    for i in 0..24 {
        assert!(
            auc_ig[i] <= auc_sal[i] + 1e-4,
            "image {i}: saliency's order beat the optimum"
        );
        assert!(
            auc_ig[i] <= auc_rand[i] + 1e-4,
            "image {i}: a random order beat the optimum"
        );
    }
    let gain = column(&f_ig, "gain");
    assert!(gain.iter().all(|g| *g >= -1e-4));
    eprintln!(
        "linear: median AUC IG {:.3}, saliency {:.3}, random {:.3}",
        xaudit::stats::median(&auc_ig),
        xaudit::stats::median(&auc_sal),
        xaudit::stats::median(&auc_rand)
    );
}

fn run(text: &str, methods: &[MethodKind], n: usize) -> Outcome {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let data = common::digits_every((360 / n).max(1), n);
    let pre = digits_pre();
    let tick = |_: usize| {};
    let ctx = RunCtx::new(&m, &data, &pre, 0, 40, 256, &tick);
    let plan = Plan::new(&suite(text), &Config::default(), methods, 0, "2026-01-01").unwrap();
    check::run(&ctx, &plan, |_, _| {}).unwrap()
}

fn verdicts(o: &Outcome, code: &str) -> Vec<(String, Verdict, f64)> {
    o.audits
        .iter()
        .filter(|a| a.code == code)
        .map(|a| {
            let est = a
                .claim
                .as_ref()
                .and_then(|c| c.estimate)
                .unwrap_or(f64::NAN);
            (a.method.clone(), a.verdict, est)
        })
        .collect()
}

fn verdict(o: &Outcome, code: &str, method: &str) -> Verdict {
    o.audits
        .iter()
        .find(|a| a.code == code && a.method == method)
        .unwrap_or_else(|| panic!("no result {code} {method}"))
        .verdict
}

#[test]
fn trained_cnn_maps_beat_a_random_order_and_model_blind_maps_do_not() {
    let text = "name = \"t\"\n\
        [[audit]]\nid = \"deletion\"\nthreshold = 0.0\n\
        [[audit]]\nid = \"insertion\"\nthreshold = 0.0\n\
        [[audit]]\nid = \"average-drop\"\nthreshold = 0.0\nparams = { area = 0.5 }\n\
        [[audit]]\nid = \"increase-in-confidence\"\nthreshold = 0.5\n";
    let real = [
        MethodKind::Saliency,
        MethodKind::IntegratedGradients,
        MethodKind::GradCam,
    ];
    let controls = [MethodKind::Edge, MethodKind::FixedRandom];
    let all: Vec<MethodKind> = real.iter().chain(&controls).copied().collect();
    let o = run(text, &all, 60);
    for code in ["XA401", "XA402", "XA403", "XA404"] {
        eprintln!("{code}: {:?}", verdicts(&o, code));
    }
    for a in o
        .audits
        .iter()
        .filter(|a| a.code == "XA403" || a.code == "XA404")
    {
        eprintln!("{} {}: {:?}", a.code, a.method, a.summary);
    }
    for m in real {
        assert_eq!(
            verdict(&o, "XA401", m.name()),
            Verdict::Pass,
            "deletion, {}",
            m.name()
        );
    }
    for code in ["XA401", "XA402", "XA403", "XA404"] {
        assert_ne!(
            verdict(&o, code, "fixed-random"),
            Verdict::Pass,
            "{code}: fixed-random passed"
        );
    }
    // Average Drop at the L-CAM paper's 50% area. With the whole map (Chattopadhay's AD) the
    // confident CNN loses its prediction under every mask (AD about 90% for the map and the
    // shifted map alike), and the audit rightly stays INCONCLUSIVE. Increase in Confidence
    // has almost no discordant image on this saturated model (p about 1 before masking);
    // its known answer is on the linear model below.
    assert_eq!(
        verdict(&o, "XA403", "grad-cam"),
        Verdict::Pass,
        "average drop, grad-cam"
    );
    assert_ne!(
        verdict(&o, "XA401", "edge"),
        Verdict::Pass,
        "deletion, edge"
    );
    assert_ne!(
        verdict(&o, "XA403", "edge"),
        Verdict::Pass,
        "average drop, edge"
    );
}

#[test]
fn the_faithfulness_suite_runs_and_draws_the_curve_against_the_random_order() {
    let s = xaudit::suite::Suite::load("faithfulness").unwrap();
    let names: Vec<&str> = s.gates.iter().map(|a| a.entry.doc.name).collect();
    for a in [
        "deletion",
        "insertion",
        "average-drop",
        "increase-in-confidence",
    ] {
        assert!(
            names.contains(&a),
            "{a} missing from the faithfulness suite"
        );
    }
    let full = xaudit::suite::Suite::load("full").unwrap();
    assert!(full.gates.iter().any(|a| a.entry.doc.name == "deletion"));
    let o = run(
        "name = \"t\"\n[[audit]]\nid = \"deletion\"\nthreshold = 0.0\nparams = { steps = 10 }\n",
        &[MethodKind::GradCam],
        20,
    );
    let a = &o.audits[0];
    let c = &a.curves[0];
    assert_eq!(c.x.len(), 11);
    let r = c.reference.as_ref().expect("random-order curve");
    // Both curves start from the clean image.
    assert!((c.mean[0].unwrap() - r[0].unwrap()).abs() < 1e-9);
    assert_eq!(a.summary["model_passes_per_image"], 22);
}

/// Increase in Confidence on the linear model: the IG map there is each pixel's contribution
/// to the target logit, so masking by it keeps the pixels that support the class and dims the
/// ones that argue against it, which raises the target's probability on many images; the same
/// mask shifted elsewhere does so by chance only.
#[test]
fn on_a_linear_model_masking_by_the_contributions_raises_confidence_more_often() {
    let m = load("models/oracle/linear.pt", [3, 8, 8]);
    let mut data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    data.items.truncate(120);
    let pre = common::preprocess(3, 8, 0.5, 0.5);
    let tick = |_: usize| {};
    let ctx = RunCtx::new(&m, &data, &pre, 0, 40, 256, &tick);
    let text = "name = \"t\"\n[[audit]]\nid = \"increase-in-confidence\"\nthreshold = 0.5\n\
        [[audit]]\nid = \"average-drop\"\nthreshold = 0.0\n";
    // Signed contributions (IG's default reduction is the absolute sum).
    let cfg = Config::parse(
        "[methods.integrated-gradients]\naggregate = \"sum\"\n",
        "xaudit.toml",
    )
    .unwrap();
    let plan = Plan::new(
        &suite(text),
        &cfg,
        &[MethodKind::IntegratedGradients, MethodKind::FixedRandom],
        0,
        "2026-01-01",
    )
    .unwrap();
    let o = check::run(&ctx, &plan, |_, _| {}).unwrap();
    for a in &o.audits {
        eprintln!("{} {}: {:?} {:?}", a.code, a.method, a.verdict, a.summary);
    }
    let v = |code: &str, m: &str| verdict(&o, code, m);
    assert_eq!(v("XA404", "integrated-gradients"), Verdict::Pass);
    assert_ne!(v("XA404", "fixed-random"), Verdict::Pass);
}

/// Run-to-run stability: the digits CNN trained with three seeds. Grad-CAM maps of the
/// replicas agree far more than the `random` control's maps (fresh noise per model); the
/// `edge` detector is identical across replicas by construction, which is why the report
/// marks such a pass as not credited when the model-dependence prerequisite fails.
#[test]
fn replicas_agree_on_grad_cam_maps_and_random_maps_do_not() {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let r1 = load("models/digits_cnn_s1.pt", [1, 28, 28]);
    let r2 = load("models/digits_cnn_s2.pt", [1, 28, 28]);
    let data = common::digits_every(9, 40);
    let pre = digits_pre();
    let tick = |_: usize| {};
    let mut ctx = RunCtx::new(&m, &data, &pre, 0, 40, 256, &tick);
    ctx.replicas = vec![&r1, &r2];
    let text = "name = \"t\"\n[[audit]]\nid = \"run-to-run-stability\"\nthreshold = 0.5\n";
    let plan = Plan::new(
        &suite(text),
        &Config::default(),
        &[MethodKind::GradCam, MethodKind::Random, MethodKind::Edge],
        0,
        "2026-01-01",
    )
    .unwrap();
    let o = check::run(&ctx, &plan, |_, _| {}).unwrap();
    let get = |m: &str| o.audits.iter().find(|a| a.method == m).unwrap();
    for a in &o.audits {
        eprintln!(
            "{}: {:?} median {:?}, label agreement {:?}",
            a.method,
            a.verdict,
            a.claim.as_ref().and_then(|c| c.estimate),
            a.secondary.get("label-agreement").and_then(|s| s.mean)
        );
    }
    assert_eq!(get("grad-cam").verdict, Verdict::Pass);
    assert_eq!(get("random").verdict, Verdict::Fail);
    assert_eq!(
        get("edge").verdict,
        Verdict::Pass,
        "identical maps: trivially stable"
    );
    // Without replicas the audit is not run, and says how to give them.
    let ctx = RunCtx::new(&m, &data, &pre, 0, 40, 256, &tick);
    let o = check::run(&ctx, &plan, |_, _| {}).unwrap();
    assert_eq!(o.audits[0].verdict, Verdict::NotRun);
    assert!(
        o.audits[0].reason.contains("--replica"),
        "{}",
        o.audits[0].reason
    );
}

/// Salience-guided degradation: blurring the region the trained CNN's maps point at costs
/// more confidence than blurring the same region moved elsewhere; a fixed random map's
/// region is no better than its shifted copy.
#[test]
fn degrading_the_salient_region_hurts_more_than_an_equal_region_elsewhere() {
    let text = "name = \"t\"\n[[audit]]\nid = \"salience-degradation\"\nthreshold = 0.0\n\
        [[audit]]\nid = \"salience-degradation\"\nthreshold = 0.0\nparams = { kind = \"noise\" }\n";
    let o = run(
        text,
        &[
            MethodKind::Saliency,
            MethodKind::GradCam,
            MethodKind::FixedRandom,
        ],
        120,
    );
    for a in &o.audits {
        eprintln!(
            "{} {:?}: {:?} median gain {:?}, map-shift {:?}",
            a.method,
            a.params.get("kind"),
            a.verdict,
            a.claim.as_ref().and_then(|c| c.estimate),
            a.secondary.get("map-shift").and_then(|s| s.median)
        );
    }
    for a in &o.audits {
        match a.method.as_str() {
            "fixed-random" => assert_ne!(a.verdict, Verdict::Pass, "{:?}", a.params),
            _ => assert_eq!(a.verdict, Verdict::Pass, "{} {:?}", a.method, a.params),
        }
    }
    assert!(o.audits[0].curves[0].reference.is_some());
}

/// Infidelity on the linear model: the gradient is the weight row, so the output change
/// under any perturbation is exactly I . w: zero infidelity, with or without the optimal
/// scaling, while the shifted weights leave most of it unexplained. On the digits CNN the
/// gradient beats its shifted copy and the fixed random map does not. (IG is INCONCLUSIVE
/// there: its completeness holds for its own baseline, model-space 0 = the mean colour, not
/// for the official code's noisy black baseline.)
#[test]
fn infidelity_is_zero_for_the_gradient_of_a_linear_model() {
    let m = load("models/oracle/linear.pt", [3, 8, 8]);
    let mut data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    data.items.truncate(16);
    let pre = common::preprocess(3, 8, 0.5, 0.5);
    let tick = |_: usize| {};
    let ctx = RunCtx::new(&m, &data, &pre, 0, 8, 64, &tick);
    let sal = Method {
        score: Score::Logit,
        ..Method::defaults(MethodKind::Saliency)
    };
    for scaled in [true, false] {
        let f = measure(
            &ctx,
            "infidelity",
            &sal,
            &format!("samples = 200\nscaled = {scaled}"),
        );
        let inf = column(&f, "infidelity");
        let gain = column(&f, "gain");
        eprintln!(
            "linear, scaled {scaled}: max infidelity {:e}",
            inf.iter().cloned().fold(0.0, f64::max)
        );
        assert!(inf.iter().all(|v| *v < 1e-8), "scaled {scaled}: {inf:?}");
        assert!(gain.iter().all(|g| *g > 0.05), "scaled {scaled}: {gain:?}");
    }
    let o = run(
        "name = \"t\"\n[[audit]]\nid = \"infidelity\"\nthreshold = 0.0\nparams = { samples = 200 }\n",
        &[
            MethodKind::Saliency,
            MethodKind::IntegratedGradients,
            MethodKind::FixedRandom,
        ],
        40,
    );
    for a in &o.audits {
        eprintln!(
            "digits {}: {:?} median gain {:?} normalised {:?}",
            a.method,
            a.verdict,
            a.claim.as_ref().and_then(|c| c.estimate),
            a.secondary.get("normalised").and_then(|s| s.median)
        );
    }
    let v = |m: &str| verdict(&o, &o.audits[0].code, m);
    assert_eq!(v("saliency"), Verdict::Pass);
    assert_ne!(v("fixed-random"), Verdict::Pass);
}

/// sMPRT and eMPRT (Hedström et al. 2024): saliency of the trained CNN changes once the
/// model is randomised, even after denoising, and its explanations get more complex; the
/// edge detector does not depend on the weights: identical maps (Spearman 1) and a rise of
/// exactly 0.
#[test]
fn revised_randomisation_tests_pass_saliency_and_fail_the_edge_detector() {
    let text = "name = \"t\"\n[[audit]]\nid = \"smooth-mprt\"\nthreshold = 0.5\nparams = { samples = 10 }\n\
        [[audit]]\nid = \"efficient-mprt\"\nthreshold = 0.01\n";
    let o = run(text, &[MethodKind::Saliency, MethodKind::Edge], 40);
    for a in &o.audits {
        eprintln!(
            "{} {}: {:?} median {:?}",
            a.code,
            a.method,
            a.verdict,
            a.claim.as_ref().and_then(|c| c.estimate)
        );
    }
    let v = |code: &str, m: &str| verdict(&o, code, m);
    assert_eq!(v("XA105", "saliency"), Verdict::Pass);
    assert_eq!(v("XA106", "saliency"), Verdict::Pass);
    assert_eq!(v("XA105", "edge"), Verdict::Fail);
    assert_eq!(v("XA106", "edge"), Verdict::Fail);
}

/// ROAD's noisy linear imputation (noise 0) matches the official algorithm as Quantus 0.6.0
/// ships it (scipy's direct sparse solver; fixtures/road_golden.py) on the golden digits
/// (1 channel) and faces (3 channels) at 10%, 50% and 90% of the pixels removed.
#[test]
fn road_imputation_matches_the_official_solver() {
    for set in ["digits", "faces"] {
        let x = common::npy(&format!("golden/{set}_inputs.npy"));
        let masks = common::npy(&format!("peers/road/{set}_masks.npy"));
        let want = common::npy(&format!("peers/road/{set}_imputed.npy"));
        for s in 0..3 {
            let removed = masks.get(s).unsqueeze(1).gt(0.5);
            let got = xaudit::audit::road::impute(&x, &removed);
            let err = common::max_abs_diff(&got, &want.get(s));
            eprintln!("{set}, share {s}: max |xaudit - official| {err:.1e}");
            assert!(err < 1e-5, "{set} share {s}: {err:e}");
        }
    }
}

/// ROAD on the digits CNN: the gradient and CAM maps' order still removes the evidence
/// faster than a random order once removed pixels are imputed; the fixed random map does not.
/// The edge detector does here (median gain 0.19): on stroke images the edges are the
/// evidence, and imputation removes strokes whatever ranked them; the faithfulness suite's
/// model-dependence prerequisite is what fails it (tests/controls.rs).
#[test]
fn road_passes_trained_cnn_maps_and_not_model_blind_ones() {
    let o = run(
        "name = \"t\"\n[[audit]]\nid = \"road\"\nthreshold = 0.0\n",
        &[
            MethodKind::Saliency,
            MethodKind::GradCam,
            MethodKind::Edge,
            MethodKind::FixedRandom,
        ],
        40,
    );
    for a in &o.audits {
        eprintln!(
            "road {}: {:?} median gain {:?} auc {:?} random {:?}",
            a.method,
            a.verdict,
            a.claim.as_ref().and_then(|c| c.estimate),
            a.secondary.get("auc").and_then(|s| s.median),
            a.secondary.get("auc-random").and_then(|s| s.median)
        );
    }
    let v = |m: &str| verdict(&o, &o.audits[0].code, m);
    assert_eq!(v("saliency"), Verdict::Pass);
    assert_eq!(v("grad-cam"), Verdict::Pass);
    assert_ne!(v("fixed-random"), Verdict::Pass);
}

/// SpRAy on the planted-shortcut model (fixtures/build_shortcut.py: a white corner square on
/// 60% of the training 3s): its maps of predicted 3s split into two strategies that separate
/// the patched test images from the clean ones; the clean digits CNN explains the same
/// images with one strategy per class.
#[test]
fn strategy_clusters_separate_the_shortcut_images() {
    let data = Dataset::from_inputs(&[fixture("data/digits_shortcut")]).unwrap();
    let pre = digits_pre();
    let tick = |_: usize| {};
    let text = "name = \"t\"\n[[audit]]\nid = \"strategy-clusters\"\nthreshold = 0.05\n";
    let analyse = |model: &str| {
        let m = load(model, [1, 28, 28]);
        let ctx = RunCtx::new(&m, &data, &pre, 0, 64, 256, &tick);
        let plan = Plan::new(
            &suite(text),
            &Config::default(),
            &[MethodKind::GradCam],
            0,
            "2026-01-01",
        )
        .unwrap();
        check::run(&ctx, &plan, |_, _| {}).unwrap().audits.remove(0)
    };
    let shortcut = analyse("models/digits_shortcut.pt");
    let clean = analyse("models/digits_cnn_s0.pt");
    for a in [&shortcut, &clean] {
        eprintln!("flagged {:?}", a.summary["flagged_classes"]);
        eprintln!("class 3: {}", a.summary["classes"]["3"]);
    }
    assert!(shortcut.summary["flagged_classes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "3"));
    assert!(!clean.summary["flagged_classes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "3"));
    // The shortcut model's class-3 minority strategy is the patched images (or the clean
    // ones): purity of the split against the planted square.
    let patched = |p: &str| p.contains("_patched");
    let threes: Vec<_> = shortcut
        .per_sample
        .iter()
        .filter(|s| s.path.contains("/3/") && s.value.is_some())
        .collect();
    let agree = threes
        .iter()
        .filter(|s| (s.value == Some(1.0)) == patched(&s.path))
        .count();
    let purity = agree.max(threes.len() - agree) as f64 / threes.len() as f64;
    eprintln!("class 3: {} images, split purity {purity:.3}", threes.len());
    assert!(purity >= 0.9, "purity {purity}");
    // The HTML report's per-strategy grids.
    assert!(shortcut
        .examples
        .iter()
        .any(|e| e.role.starts_with("class 3 · strategy")));
}

/// Through the command line, as a user sees it: the HTML report draws the deletion curve with
/// its interquartile band against the random order, and shows the strategy grids of the
/// planted-shortcut model's class 3.
#[test]
fn the_html_report_shows_the_curves_and_the_strategy_grids() {
    let dir = tempfile::tempdir().unwrap();
    let suite_path = dir.path().join("s.toml");
    std::fs::write(
        &suite_path,
        "name = \"s\"\n[[audit]]\nid = \"deletion\"\nthreshold = 0.0\n\
         [[audit]]\nid = \"strategy-clusters\"\nthreshold = 0.05\nadvisory = true\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args([
            "check",
            &fixture("models/digits_shortcut.pt").to_string_lossy(),
        ])
        .args(["--data", &fixture("data/digits_shortcut").to_string_lossy()])
        .args(["--config", &fixture("digits.toml").to_string_lossy()])
        .args(["--suite", &suite_path.to_string_lossy()])
        .args(["--method", "grad-cam", "--write", "html", "--no-progress"])
        .args(["--out-dir", &out.to_string_lossy()])
        .output()
        .unwrap();
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in [
        "random order (mean)",
        "25-75% of images",
        "class 3 · strategy 1 of 2",
        "class 3 · strategy 2 of 2",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
}

/// Yeh et al.'s square perturbation: removing a square changes the linear model's logit by
/// exactly the gradient times (x - black) over the square, so the gradient has zero
/// infidelity there too.
#[test]
fn square_infidelity_is_zero_for_the_gradient_of_a_linear_model() {
    let m = load("models/oracle/linear.pt", [3, 8, 8]);
    let mut data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    data.items.truncate(8);
    let pre = common::preprocess(3, 8, 0.5, 0.5);
    let tick = |_: usize| {};
    let ctx = RunCtx::new(&m, &data, &pre, 0, 8, 64, &tick);
    let sal = Method {
        score: Score::Logit,
        ..Method::defaults(MethodKind::Saliency)
    };
    let f = measure(
        &ctx,
        "infidelity",
        &sal,
        "perturbation = \"square\"\nsamples = 300\nsquare-max = 4",
    );
    let inf = column(&f, "infidelity");
    assert!(inf.iter().all(|v| *v < 1e-8), "{inf:?}");
    assert!(column(&f, "gain").iter().all(|g| *g > 0.0));
}

/// The terminal table and the markdown report say why images were left out, with a count per
/// reason, not only how many.
#[test]
fn exclusion_reasons_are_counted_in_the_table_and_the_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let suite_path = dir.path().join("s.toml");
    std::fs::write(
        &suite_path,
        "name = \"s\"\n[[audit]]\nid = \"strategy-clusters\"\nthreshold = 0.05\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args([
            "check",
            &fixture("models/digits_cnn_s0.pt").to_string_lossy(),
        ])
        .args(["--data", &fixture("data/digits_demo.csv").to_string_lossy()])
        .args(["--config", &fixture("digits.toml").to_string_lossy()])
        .args(["--suite", &suite_path.to_string_lossy()])
        .args([
            "--method",
            "saliency",
            "--write",
            "markdown",
            "--no-progress",
        ])
        .args(["--out-dir", &out.to_string_lossy()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    // 20 demo images, 2 per class: every class is below min-images.
    let why = "20 its predicted class has fewer than min-images (10) images";
    assert!(
        stdout.contains(&format!(
            "excluded from XA206 strategy-clusters (saliency): {why}"
        )),
        "{stdout}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("**Excluded images**") && md.contains(why),
        "{md}"
    );
}
