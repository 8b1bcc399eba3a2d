//! Fault injection (its own test binary: it raises the process-wide stop flag). A run
//! stopped in the middle of cascading randomisation must leave the trained weights intact.
mod common;
use common::{digits_pre, fixture, load};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use xaudit::attribution::MethodKind;
use xaudit::audit::RunCtx;
use xaudit::check::{self, Plan};
use xaudit::config::Config;
use xaudit::data::Dataset;
use xaudit::suite::Suite;

#[test]
fn weights_are_restored_when_randomisation_fails_midway() {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let mut data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    data.items.truncate(40);
    let pre = digits_pre();
    let probe = data.load_batch(0..8, &pre, tch::Device::Cpu).unwrap();
    let before = m.logits(&probe.x).unwrap();
    let params_before: Vec<tch::Tensor> = m
        .module
        .named_parameters()
        .unwrap()
        .into_iter()
        .map(|(_, p)| p.copy())
        .collect();

    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(b"name = \"t\"\n[[audit]]\nid = \"cascading-randomization\"\nthreshold = 0.5\n")
        .unwrap();
    let suite = Suite::load(f.path().to_str().unwrap()).unwrap();
    // The first progress report comes from a sweep over a randomised model: stop there.
    let calls = AtomicUsize::new(0);
    let tick = |_: usize| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            xaudit::interrupt::request();
        }
    };
    let ctx = RunCtx::new(&m, &data, &pre, 0, 8, 64, &tick);
    let plan = Plan::new(
        &suite,
        &Config::default(),
        &[MethodKind::Saliency],
        0,
        "2026-01-01",
    )
    .unwrap();
    let r = check::run(&ctx, &plan, |_, _| {});
    assert!(
        matches!(r, Err(xaudit::Error::Interrupted)),
        "the injected stop must surface"
    );
    assert!(calls.load(Ordering::SeqCst) >= 1);

    let after: Vec<tch::Tensor> = m
        .module
        .named_parameters()
        .unwrap()
        .into_iter()
        .map(|(_, p)| p.copy())
        .collect();
    for (a, b) in params_before.iter().zip(&after) {
        assert!(a.equal(b), "a parameter was left randomised");
    }
    assert!(m.logits(&probe.x).unwrap().equal(&before));
}
