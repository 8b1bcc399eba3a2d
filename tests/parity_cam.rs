//! Parity of the feature-map methods beyond Grad-CAM with their references
//! (fixtures/peers/cam/, written by fixtures/cam_golden.py on the Captum goldens' inputs and
//! targets): Grad-CAM++ and Score-CAM against pytorch-grad-cam 1.5.7, Score-CAM's `official`
//! mode against haofanwang/Score-CAM's algorithm, SIDU and Sobol against the official codes
//! re-expressed in numpy/torch (Sobol with scipy's unscrambled sequence, which the `sobol`
//! crate reproduces point for point). Threshold: relative L2 < 1e-4, the bar for deterministic
//! methods, both for the feature-grid map and for pytorch-grad-cam's final output (ReLU,
//! min-max, bilinear resize, min-max), which the test re-applies to xaudit's raw map.
//! Measured: 2e-6 at worst.
mod common;
use common::*;
use tch::{Kind, Tensor};
use xaudit::attribution::grad_cam::Upsample;
use xaudit::attribution::{
    extremal_perturbation as ep, grad_cam_plus_plus as gpp, meaningful_perturbation as mp,
    score_cam, MethodSpec, Score,
};
use xaudit::model::Model;

fn inputs(set: &str) -> (Tensor, Tensor) {
    (
        npy(&format!("golden/{set}_inputs.npy")),
        npy_i64(&format!("golden/{set}_targets.npy")),
    )
}

fn model(set: &str) -> Model {
    match set {
        "digits" => digits(),
        _ => load("models/onet_face.pt", [3, 48, 48]),
    }
}

/// pytorch-grad-cam's `scale_cam_image`: per image (x − min) / (max(x − min) + 1e-7).
fn scale(m: &Tensor) -> Tensor {
    let dims = [1i64, 2, 3].as_slice();
    let m = m - m.amin(dims, true);
    &m / (m.amax(dims, true) + 1e-7)
}

/// The library's output from a feature-grid map that already went through ReLU.
fn library_output(low: &Tensor, x: &Tensor) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    scale(&scale(low).upsample_bilinear2d([h, w], false, None, None))
}

fn assert_close(got: &Tensor, golden: &str, tol: f64) -> f64 {
    let want = npy(&format!("peers/cam/{golden}.npy"));
    assert_eq!(got.size(), want.size(), "{golden}: shape");
    let err = rel_l2(got, &want);
    assert!(err < tol, "{golden}: relative L2 {err:e} >= {tol:e}");
    eprintln!("{golden}: relative L2 {err:.1e}");
    err
}

#[test]
fn grad_cam_plus_plus_matches_pytorch_grad_cam() {
    for set in ["digits", "faces"] {
        let m = model(set);
        let (x, t) = inputs(set);
        let c = ctx(&m, Score::Logit);
        let p = gpp::Params::default();
        let low = gpp::lowres(&c, &p, &x, &t).unwrap();
        let golden_low = npy(&format!("peers/cam/{set}_gradcampp_lowres.npy")).relu();
        let err = rel_l2(&low, &golden_low);
        assert!(err < 1e-4, "{set} low-res Grad-CAM++: {err:e}");
        eprintln!("{set} low-res Grad-CAM++: relative L2 {err:.1e}");
        assert_close(&library_output(&low, &x), &format!("{set}_gradcampp"), 1e-4);
        // The method as registered returns the bilinear upsampling of the same map.
        let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
        let full = MethodSpec::GradCamPlusPlus(p)
            .attribute(&c, &x, &t, &ids)
            .unwrap()
            .maps;
        let (h, w) = (x.size()[2], x.size()[3]);
        assert!(rel_l2(&full, &low.upsample_bilinear2d([h, w], false, None, None)) < 1e-7);
    }
}

#[test]
fn grad_cam_plus_plus_official_code_variant_differs_from_the_paper_only_in_alpha() {
    let m = digits();
    let (x, t) = inputs("digits");
    let c = ctx(&m, Score::Logit);
    let paper = gpp::lowres(&c, &gpp::Params::default(), &x, &t).unwrap();
    let code = gpp::lowres(
        &c,
        &gpp::Params {
            variant: gpp::Variant::OfficialCode,
            upsample: Upsample::Bilinear,
        },
        &x,
        &t,
    )
    .unwrap();
    // Different maps (α is rescaled per channel), both non-trivial and non-negative.
    let d = rel_l2(&scale(&code), &scale(&paper));
    assert!(d > 1e-3, "variants should differ: {d:e}");
    assert!(code.min().double_value(&[]) >= 0.0 && code.max().double_value(&[]) > 0.0);
}

#[test]
fn score_cam_matches_pytorch_grad_cam_and_the_official_algorithm() {
    for set in ["digits", "faces"] {
        let m = model(set);
        let (x, t) = inputs(set);
        // Batches that split images' channel sets must not change anything.
        let mut c = ctx(&m, Score::Logit);
        c.internal_batch = 7;
        let p = score_cam::Params::default();
        let low = score_cam::raw(&c, &p, &x, &t).unwrap();
        let golden_low = npy(&format!("peers/cam/{set}_scorecam_lowres.npy")).relu();
        let err = rel_l2(&low, &golden_low);
        assert!(err < 1e-4, "{set} low-res Score-CAM: {err:e}");
        eprintln!("{set} low-res Score-CAM: relative L2 {err:.1e}");
        assert_close(&library_output(&low, &x), &format!("{set}_scorecam"), 1e-4);

        let official = score_cam::Params {
            mode: score_cam::Mode::Official,
            upsample: Upsample::Bilinear,
        };
        let c = ctx(&m, Score::Softmax);
        let got = score_cam::attribute(&c, &official, &x, &t).unwrap();
        assert_close(&got, &format!("{set}_scorecam_official"), 1e-4);
        assert_eq!(got.kind(), Kind::Float);
    }
}

#[test]
fn sidu_matches_the_official_algorithm() {
    for set in ["digits", "faces"] {
        let m = model(set);
        let (x, t) = inputs(set);
        let mut c = ctx(&m, Score::Softmax);
        c.internal_batch = 50;
        let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
        let got = MethodSpec::Sidu(Default::default())
            .attribute(&c, &x, &t, &ids)
            .unwrap()
            .maps;
        assert_close(&got, &format!("{set}_sidu"), 1e-4);
    }
}

#[test]
fn sobol_matches_the_official_torch_explainer() {
    for set in ["digits", "faces"] {
        let m = model(set);
        let (x, t) = inputs(set);
        let mut c = ctx(&m, Score::Logit);
        c.internal_batch = 1000;
        let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
        let got = MethodSpec::Sobol(Default::default())
            .attribute(&c, &x, &t, &ids)
            .unwrap()
            .maps;
        assert_close(&got, &format!("{set}_sobol_g8_n32"), 1e-4);
    }
}

#[test]
fn extremal_perturbation_matches_torchray() {
    for set in ["digits", "faces"] {
        let m = model(set);
        let (x, t) = inputs(set);
        let c = ctx(&m, Score::Logit);
        let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
        // digits: xaudit's defaults (TorchRay's 224-pixel step, sigma and blur scaled to 28
        // pixels); faces: TorchRay's own values, set explicitly.
        let p = if set == "digits" {
            ep::Params::default()
        } else {
            ep::Params {
                step: Some(7),
                sigma: Some(21.0),
                max_blur: Some(20.0),
                ..Default::default()
            }
        };
        let got = MethodSpec::ExtremalPerturbation(p)
            .attribute(&c, &x, &t, &ids)
            .unwrap()
            .maps;
        // Per image: the masks after 800 float32 optimisation steps. Measured: faces 1.6e-4 at
        // worst; digits 2e-7 on images 0, 2 and 3, while image 1 (class 3) ends 0.23 away:
        // its trajectory parts from TorchRay's somewhere in the 800 steps (a likely place:
        // mask values pinned at 0 and 1 by the clamp tie in the area regulariser's sort, whose
        // gradient then depends on the order of equal values; not traced further). Rust runs
        // of that image agree with each other whatever the batch size. So: every face and 3
        // of the 4 digits within 1e-3, and the gap is printed.
        //
        // The 800 steps also amplify the CPU's last-bit kernel differences: TorchRay itself,
        // rerun with the same torch 2.13.0 on an AMD EPYC Zen 3 CPU, ends 0.34, 1.2e-4, 0.17
        // and 0.61 away from its digits golden (xaudit there: the same four numbers to two
        // digits). That rerun is a second golden (`_zen3`); the digits must match TorchRay run
        // on one of the two CPUs.
        let goldens: &[&str] = if set == "faces" {
            &["faces_extremal_a10"]
        } else {
            &["digits_extremal_a10", "digits_extremal_a10_zen3"]
        };
        let need = if set == "faces" { 4 } else { 3 };
        let mut matched = false;
        for g in goldens {
            let want = npy(&format!("peers/cam/{g}.npy"));
            let errs: Vec<f64> = (0..4).map(|i| rel_l2(&got.get(i), &want.get(i))).collect();
            eprintln!("{g} per image relative L2: {errs:?}");
            matched |= errs.iter().filter(|e| **e < 1e-3).count() >= need;
        }
        assert!(
            matched,
            "{set}: no TorchRay golden matched (errors printed above)"
        );
    }
}

#[test]
fn meaningful_perturbation_matches_its_torch_reference() {
    for set in ["digits", "faces"] {
        let m = model(set);
        let (x, t) = inputs(set);
        let c = ctx(&m, Score::Softmax);
        let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
        let got = MethodSpec::MeaningfulPerturbation(Default::default())
            .attribute(&c, &x, &t, &ids)
            .unwrap()
            .maps;
        let want = npy(&format!("peers/cam/{set}_meaningful.npy"));
        let errs: Vec<f64> = (0..4).map(|i| rel_l2(&got.get(i), &want.get(i))).collect();
        eprintln!("{set}_meaningful per image relative L2: {errs:?}");
        if set == "digits" {
            // Same masks to float precision (measured: 0 on three images, 4e-7 on one).
            assert!(errs.iter().all(|e| *e < 1e-4), "{errs:?}");
            continue;
        }
        // faces: the ONet is confident (softmax near 1), its gradients are near rounding
        // level, and Adam's normalised steps amplify last-bit differences between torch's
        // Python and Rust call paths over 300 steps: masks part (measured relative L2 up to
        // 0.05). The test then compares what the optimisation achieves, the objective's two
        // terms: the class probability after deleting (blurring) the map's region and the
        // deleted area, within 0.05 and 0.02.
        let blur = mp::gaussian_blur(&x, 10.0 * 48.0 / 224.0);
        let terms = |map: &Tensor| -> Vec<(f64, f64)> {
            let keep = -map + 1.0;
            let phi = &x * &keep + &blur * map;
            let p = m.logits(&phi).unwrap().softmax(-1, Kind::Float);
            (0..4)
                .map(|i| {
                    let c = t.int64_value(&[i]);
                    (
                        p.double_value(&[i, c]),
                        map.get(i).mean(Kind::Double).double_value(&[]),
                    )
                })
                .collect()
        };
        for (i, ((pg, ag), (pw, aw))) in terms(&got).into_iter().zip(terms(&want)).enumerate() {
            eprintln!(
                "faces image {i}: p after deletion {pg:.4} vs {pw:.4}, area {ag:.4} vs {aw:.4}"
            );
            assert!(
                (pg - pw).abs() < 0.05 && (ag - aw).abs() < 0.02,
                "image {i}"
            );
        }
    }
}

#[test]
fn optimised_methods_give_each_image_the_same_map_whatever_the_batch_size() {
    // Maps come out of batched optimisation (8 rows per pass); an image must get the same
    // map bit for bit whether it is explained alone, with the others, in another order, or
    // as a later evaluation of itself (another id row), as `--internal-batch-size`,
    // sharding and the audits' perturbation batches arrange it.
    // The smooth (softplus) digits model: its elementwise kernels give a row's last bits
    // depending on where it sits in the batch, which the fixed rows must absorb.
    for (name, score) in [("faces", Score::Logit), ("digits", Score::Softmax)] {
        let m = match name {
            "faces" => model(name),
            _ => load("models/digits_smooth.pt", [1, 28, 28]),
        };
        let (x, t) = inputs(name);
        for spec in [
            MethodSpec::MeaningfulPerturbation(Default::default()),
            MethodSpec::ExtremalPerturbation(Default::default()),
        ] {
            let c = ctx(&m, score);
            let all = spec.attribute(&c, &x, &t, &[0, 1, 2, 3]).unwrap().maps;
            let alone = Tensor::cat(
                &(0..4)
                    .map(|i| {
                        spec.attribute(&c, &x.narrow(0, i, 1), &t.narrow(0, i, 1), &[i as u64])
                            .unwrap()
                            .maps
                    })
                    .collect::<Vec<_>>(),
                0,
            );
            let order = Tensor::from_slice(&[3i64, 1, 0, 2]);
            let shuffled = spec
                .attribute(
                    &c,
                    &x.index_select(0, &order),
                    &t.index_select(0, &order),
                    &[3, 1, 0, 2],
                )
                .unwrap()
                .maps;
            let back = Tensor::zeros_like(&shuffled).index_copy(0, &order, &shuffled);
            let d_alone = (&all - &alone).abs().max().double_value(&[]);
            let d_order = (&all - &back).abs().max().double_value(&[]);
            // Image 0 explained twice in one call (clean and as evaluation 1): two rows.
            let twice = spec
                .attribute(
                    &c,
                    &Tensor::cat(&[x.narrow(0, 0, 1), x.narrow(0, 0, 1)], 0),
                    &Tensor::cat(&[t.narrow(0, 0, 1), t.narrow(0, 0, 1)], 0),
                    &[0, xaudit::audit::run::eval_id(0, 1)],
                )
                .unwrap()
                .maps;
            let d_twice = (twice.get(0) - all.get(0)).abs().max().double_value(&[]);
            let other_row = rel_l2(&twice.get(1), &all.get(0));
            eprintln!(
                "{name} {:?}: max |Δ| alone {d_alone:e}, reordered {d_order:e}, repeated {d_twice:e}; \
                 the same image at another row: relative L2 {other_row:.1e}",
                spec.kind()
            );
            assert_eq!(
                (d_alone, d_order, d_twice),
                (0.0, 0.0, 0.0),
                "{name} {:?}",
                spec.kind()
            );
        }
    }
}
