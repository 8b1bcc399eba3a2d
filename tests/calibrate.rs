//! `xaudit calibrate`: thresholds land between the accepted reference model and the
//! model-blind controls, with the numbers in their rationale; the written suite loads, gates
//! what was advisory, and still fails the controls.
mod common;
use common::{digits_pre, fixture, load};
use xaudit::attribution::MethodKind;
use xaudit::audit::{Direction, RunCtx};
use xaudit::calibrate::{self, Context};
use xaudit::check::{self, Plan};
use xaudit::config::Config;
use xaudit::data::Dataset;
use xaudit::gate::Verdict;
use xaudit::suite::Suite;

#[test]
fn calibrated_thresholds_sit_between_the_reference_and_the_controls() {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let mut data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    data.items = data.items.iter().step_by(9).take(40).cloned().collect();
    let pre = digits_pre();
    let tick = |_: usize| {};
    let ctx = RunCtx::new(&m, &data, &pre, 0, 40, 256, &tick);
    let suite = Suite::load("salience").unwrap();
    let plan = calibrate::plan(
        &suite,
        &Config::default(),
        &[MethodKind::Saliency, MethodKind::GradCam],
        0,
        "2026-01-01",
    )
    .unwrap();
    let outcome = check::run(&ctx, &plan, |_, _| {}).unwrap();
    let facts = Context {
        model: "digits_cnn_s0.pt".into(),
        model_sha256: "ab".repeat(32),
        images: 40,
        date: "2026-01-01".into(),
        suite: "salience".into(),
    };
    let entries = calibrate::thresholds(&plan, &outcome, &facts);
    // Every non-prerequisite audit that ran x reference method, none for the controls
    // (run-to-run stability is not run without replicas).
    assert_eq!(entries.len(), 4 * 2, "{entries:#?}");
    for e in &entries {
        assert!(!["edge", "fixed-random", "random"].contains(&e.method.as_str()));
        let good = |v: f64| match e.direction {
            Direction::Lower => v < e.threshold,
            Direction::Higher => v > e.threshold,
        };
        assert!(good(e.reference), "{e:#?}");
        if let Some(c) = &e.closest {
            let v = e.controls.iter().find(|(n, _)| n == c).unwrap().1;
            assert!(!good(v), "control {c} on the good side: {e:#?}");
            assert!(e.rationale.contains(c) && e.rationale.contains("halfway"));
        }
        assert!(e.rationale.contains("40 images"), "{}", e.rationale);
    }
    // The file loads; the entropy placeholder now gates; the prerequisite stays.
    let text = calibrate::suite_toml(&plan, &entries, &facts);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cal.toml");
    std::fs::write(&path, &text).unwrap();
    let cal = Suite::load(path.to_str().unwrap()).unwrap();
    assert!(cal.gates.iter().all(|g| !g.advisory));
    assert!(cal.gates.iter().any(|g| g.prerequisite));
    assert_eq!(
        cal.gates
            .iter()
            .filter(|g| g.entry.doc.code == "XA203")
            .count(),
        2
    );
    // The reference passes its own calibrated entropy threshold; the controls still fail.
    let plan = Plan::new(
        &cal,
        &Config::default(),
        &[
            MethodKind::Saliency,
            MethodKind::Edge,
            MethodKind::FixedRandom,
        ],
        0,
        "2026-01-01",
    )
    .unwrap();
    let o = check::run(&ctx, &plan, |_, _| {}).unwrap();
    let ent = o
        .audits
        .iter()
        .find(|a| a.code == "XA203" && a.method == "saliency")
        .unwrap();
    assert!(ent.gated && !ent.advisory);
    assert_ne!(ent.verdict, Verdict::Fail, "{}", ent.reason);
    for c in ["edge", "fixed-random"] {
        assert!(o
            .audits
            .iter()
            .any(|a| a.method == c && a.prerequisite && a.verdict == Verdict::Fail));
    }
    assert_eq!(o.exit_code, 1);
}

#[test]
fn the_command_writes_a_suite_that_check_accepts() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("cal.toml");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_xaudit"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CI", "1")
            .output()
            .unwrap()
    };
    let o = run(&[
        "calibrate",
        "fixtures/models/digits_cnn_s0.pt",
        "--suite",
        "salience",
        "--config",
        "fixtures/digits.toml",
        "--data",
        "fixtures/data/digits/test",
        "--max-images",
        "30",
        "--method",
        "saliency",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("salience-entropy") && text.contains("wrote"),
        "{text}"
    );
    assert!(!t.path().join(".cal.toml.tmp").exists());
    let o = run(&[
        "check",
        "fixtures/models/digits_cnn_s0.pt",
        "--suite",
        out.to_str().unwrap(),
        "--config",
        "fixtures/digits.toml",
        "--data",
        "fixtures/data/digits/test",
        "--max-images",
        "30",
        "--method",
        "edge",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
