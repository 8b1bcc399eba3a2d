//! Same seed, same maps, whatever the batch sizes; a different seed changes random methods.
mod common;
use common::*;
use tch::Tensor;
use xaudit::attribution::{rise, smoothgrad, Aggregate, MethodKind, MethodSpec, Normalize, Score};
use xaudit::data::Dataset;
use xaudit::explain::{Request, Target};

fn run(
    spec: &MethodSpec,
    seed: u64,
    batch: usize,
    internal: usize,
    out: &std::path::Path,
) -> Vec<Vec<f32>> {
    let m = digits();
    let ds = Dataset::from_inputs(&[fixture("data/digits_demo.csv")]).unwrap();
    let req = Request {
        method: spec.clone(),
        target: Target::Predicted,
        score: Score::Logit,
        aggregate: Aggregate::Sum,
        normalize: Normalize::None,
        batch_size: batch,
        internal_batch: internal,
        seed,
        out_dir: out.to_path_buf(),
        write_raw: false,
        png_min_side: 28,
    };
    let s = xaudit::explain::run(&m, &ds, &digits_pre(), None, &req, None, |_| {}).unwrap();
    s.images
        .iter()
        .map(|r| xaudit::npy::read_f32(&out.join(&r.map_file)).unwrap().1)
        .collect()
}

fn max_rel(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let (x, y) = (Tensor::from_slice(x), Tensor::from_slice(y));
            rel_l2(&x, &y)
        })
        .fold(0.0, f64::max)
}

#[test]
fn random_methods_are_seeded_and_batch_size_independent() {
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        MethodSpec::Smoothgrad(smoothgrad::Params {
            samples: 8,
            noise_level: 0.15,
            magnitude: false,
        }),
        MethodSpec::Rise(rise::Params {
            masks: 64,
            grid: 4,
            p: 0.5,
            norm: rise::Norm::Official,
            ..Default::default()
        }),
        MethodSpec::with_defaults(MethodKind::Random),
    ];
    for (k, spec) in specs.iter().enumerate() {
        let d = |n: &str| dir.path().join(format!("{k}-{n}"));
        let a = run(spec, 5, 20, 256, &d("a"));
        let a2 = run(spec, 5, 20, 256, &d("a2"));
        assert_eq!(
            a, a2,
            "{spec:?}: same seed and batch sizes must be bit-identical"
        );
        let b = run(spec, 5, 3, 7, &d("b"));
        let e = max_rel(&a, &b);
        // Only float summation order may differ between batchings.
        assert!(e < 1e-5, "{spec:?}: batch size changed maps by {e:e}");
        let c = run(spec, 6, 20, 256, &d("c"));
        assert!(max_rel(&a, &c) > 1e-2, "{spec:?}: seed had no effect");
    }
}

#[test]
fn deterministic_methods_do_not_depend_on_batching() {
    let dir = tempfile::tempdir().unwrap();
    for (k, spec) in [
        MethodSpec::with_defaults(MethodKind::Saliency),
        MethodSpec::IntegratedGradients(Default::default()),
        MethodSpec::GradCam(Default::default()),
    ]
    .iter()
    .enumerate()
    {
        let a = run(spec, 0, 20, 512, &dir.path().join(format!("{k}-a")));
        let b = run(spec, 0, 1, 5, &dir.path().join(format!("{k}-b")));
        let e = max_rel(&a, &b);
        assert!(e < 1e-5, "{spec:?}: {e:e}");
    }
}
