//! Closed-form oracles (algorithms.md, Appendix 2) on tiny TorchScript models whose true
//! weights are committed beside them (fixtures/models/oracle).
mod common;
use common::*;
use tch::{Kind, Tensor};
use xaudit::attribution::{
    grad_cam, integrated_gradients as ig, occlusion, rise, smoothgrad, MethodKind, MethodSpec,
    Score,
};

const SHAPE: [i64; 3] = [3, 8, 8];

/// Four seeded 3x8x8 inputs.
fn inputs() -> Tensor {
    tch::manual_seed(11);
    Tensor::randn([4, 3, 8, 8], (Kind::Float, tch::Device::Cpu))
}

fn ids() -> Vec<u64> {
    vec![0, 1, 2, 3]
}

fn targets() -> Tensor {
    Tensor::from_slice(&[0i64, 1, 2, 1])
}

/// W[t_i] as a [4,3,8,8] tensor.
fn linear_w_rows() -> Tensor {
    npy("models/oracle/linear_W.npy").index_select(0, &targets())
}

#[test]
fn linear_gradient_equals_weights() {
    let m = load("models/oracle/linear.pt", SHAPE);
    let x = inputs();
    let g = MethodSpec::with_defaults(MethodKind::Saliency)
        .attribute(&ctx(&m, Score::Logit), &x, &targets(), &ids())
        .unwrap()
        .maps;
    assert!(max_abs_diff(&g, &linear_w_rows()) < 1e-6);
    let gx = MethodSpec::with_defaults(MethodKind::GradientXInput)
        .attribute(&ctx(&m, Score::Logit), &x, &targets(), &ids())
        .unwrap()
        .maps;
    assert!(max_abs_diff(&gx, &(linear_w_rows() * &x)) < 1e-6);
}

#[test]
fn linear_smoothgrad_equals_weights() {
    let m = load("models/oracle/linear.pt", SHAPE);
    let spec = MethodSpec::Smoothgrad(smoothgrad::Params {
        samples: 10,
        noise_level: 0.2,
        magnitude: false,
    });
    let g = spec
        .attribute(&ctx(&m, Score::Logit), &inputs(), &targets(), &ids())
        .unwrap()
        .maps;
    assert!(max_abs_diff(&g, &linear_w_rows()) < 1e-5);
}

#[test]
fn linear_integrated_gradients_is_w_times_x_for_every_rule() {
    let m = load("models/oracle/linear.pt", SHAPE);
    let x = inputs();
    let want = linear_w_rows() * &x;
    for rule in [
        ig::Rule::Trapezoid,
        ig::Rule::Left,
        ig::Rule::Right,
        ig::Rule::Middle,
        ig::Rule::PairLinspace,
        ig::Rule::GaussLegendre,
    ] {
        let spec = MethodSpec::IntegratedGradients(ig::Params {
            steps: 20,
            rule,
            baseline: 0.0,
        });
        let a = spec
            .attribute(&ctx(&m, Score::Logit), &x, &targets(), &ids())
            .unwrap();
        assert!(max_abs_diff(&a.maps, &want) < 1e-5, "{rule:?}");
        // Linear model: completeness holds exactly.
        assert!(
            a.diagnostics[0].1.iter().all(|e| *e < 1e-4),
            "{rule:?}: {:?}",
            a.diagnostics
        );
    }
    // Captum's riemann_trapezoid weights sum to (m-1)/m.
    let spec = MethodSpec::IntegratedGradients(ig::Params {
        steps: 20,
        rule: ig::Rule::CaptumTrapezoid,
        baseline: 0.0,
    });
    let a = spec
        .attribute(&ctx(&m, Score::Logit), &x, &targets(), &ids())
        .unwrap();
    assert!(max_abs_diff(&a.maps, &(want * (19.0 / 20.0))) < 1e-5);
}

#[test]
fn integrated_gradients_completeness_on_smooth_model() {
    let m = load("models/oracle/softplus_mlp.pt", SHAPE);
    for score in [Score::Logit, Score::Softmax] {
        let spec = MethodSpec::IntegratedGradients(ig::Params {
            steps: 300,
            rule: ig::Rule::Trapezoid,
            baseline: 0.0,
        });
        let a = spec
            .attribute(&ctx(&m, score), &inputs(), &targets(), &ids())
            .unwrap();
        let errs = &a.diagnostics[0].1;
        assert!(
            errs.iter().all(|e| *e < 0.01),
            "{score:?}: completeness errors {errs:?}"
        );
        // The reported error is a measurement: it must be computed from the map.
        let total: f64 = a.maps.sum(Kind::Double).double_value(&[]);
        assert!(total.is_finite() && total != 0.0);
    }
}

#[test]
fn grad_cam_on_gap_linear_head_is_cam() {
    let m = load("models/oracle/gap_linear.pt", SHAPE);
    let x = inputs();
    let t = targets();
    let p = grad_cam::Params::default();
    let got = grad_cam::lowres(&ctx(&m, Score::Logit), &p, &x, &t).unwrap();
    let a = m.features(&x).unwrap(); // [4,4,8,8]
    let z = 64.0;
    let w = npy("models/oracle/gap_linear_fc_W.npy").index_select(0, &t) / z; // [4,4]
    let want = (w.view([4, 4, 1, 1]) * a)
        .sum_dim_intlist(1, true, Kind::Float)
        .relu();
    assert!(max_abs_diff(&got, &want) < 1e-6);
}

#[test]
fn constant_model_occlusion_is_zero_and_rise_is_constant() {
    let m = load("models/oracle/constant.pt", SHAPE);
    let x = inputs();
    let t = targets();
    let occ = MethodSpec::Occlusion(occlusion::Params {
        window: 3,
        stride: 2,
        baseline: 0.0,
        ..Default::default()
    });
    for score in [Score::Logit, Score::Softmax] {
        let o = occ.attribute(&ctx(&m, score), &x, &t, &ids()).unwrap().maps;
        assert_eq!(o.abs().max().double_value(&[]), 0.0);
    }
    let c = npy("models/oracle/constant_c.npy");
    let p_t = c
        .softmax(-1, Kind::Float)
        .index_select(0, &t)
        .view([4, 1, 1, 1]);
    // Mask-sum normalisation is a ratio estimator: exact for a constant model.
    let spec = MethodSpec::Rise(rise::Params {
        masks: 200,
        grid: 3,
        p: 0.5,
        norm: rise::Norm::MaskSum,
        ..Default::default()
    });
    let r = spec
        .attribute(&ctx(&m, Score::Softmax), &x, &t, &ids())
        .unwrap()
        .maps;
    assert!(max_abs_diff(&r, &p_t.expand_as(&r)) < 1e-5);
    // Official N·p normalisation: constant up to Monte Carlo error of the mask mean.
    let spec = MethodSpec::Rise(rise::Params {
        masks: 2000,
        grid: 3,
        p: 0.5,
        norm: rise::Norm::Official,
        ..Default::default()
    });
    let r = spec
        .attribute(&ctx(&m, Score::Softmax), &x, &t, &ids())
        .unwrap()
        .maps;
    let ratio = &r / p_t.expand_as(&r);
    let dev = (ratio - 1.0).abs().max().double_value(&[]);
    assert!(
        dev < 0.06,
        "official RISE on a constant model deviates by {dev}"
    );
}

#[test]
fn edge_control_ignores_the_model_and_finds_edges() {
    // A vertical step between columns 3 and 4.
    let x = Tensor::zeros([1, 3, 8, 8], (Kind::Float, tch::Device::Cpu));
    let _ = x.narrow(3, 4, 4).fill_(1.0);
    let e = MethodSpec::with_defaults(MethodKind::Edge)
        .attribute(
            &ctx(&load("models/oracle/linear.pt", SHAPE), Score::Logit),
            &x,
            &Tensor::from_slice(&[0i64]),
            &[0],
        )
        .unwrap()
        .maps;
    let e2 = MethodSpec::with_defaults(MethodKind::Edge)
        .attribute(
            &ctx(&load("models/oracle/constant.pt", SHAPE), Score::Logit),
            &x,
            &Tensor::from_slice(&[0i64]),
            &[0],
        )
        .unwrap()
        .maps;
    assert_eq!(max_abs_diff(&e, &e2), 0.0);
    let col = |c: i64| e.narrow(3, c, 1).abs().max().double_value(&[]);
    assert!(col(3) > 0.0 && col(4) > 0.0);
    assert_eq!(col(0), 0.0);
    assert_eq!(col(7), 0.0);
}
