//! L-CAM: trained on the digits fixture in CI time, then one forward pass per map. Known
//! answer: its maps must be more faithful than a map that ignores the model, measured by the
//! L-CAM paper's Average Drop (Chattopadhay et al. 2018): the mean over images of
//! max(0, p_c(x) − p_c(x ⊙ m)) / p_c(x), with m the map min-max normalised to [0,1]; lower is
//! better; it must beat Grad-CAM's and the fixed-random control's. The module file is checked
//! against the model it was trained for.
mod common;
use common::*;
use tch::{Kind, Tensor};
use xaudit::attribution::l_cam::{self, Training, Variant};
use xaudit::attribution::{normalize, MethodKind, MethodSpec, Normalize, Score};

/// Digits test images: even positions train, odd positions evaluate.
fn split() -> (Tensor, Tensor) {
    let data = digits_every(1, 360);
    let pre = digits_pre();
    let x = data
        .load_batch(0..data.len(), &pre, tch::Device::Cpu)
        .unwrap()
        .x;
    let even = Tensor::arange_start_step(0, 360, 2, (Kind::Int64, tch::Device::Cpu));
    (x.index_select(0, &even), x.index_select(0, &(even + 1)))
}

fn average_drop(m: &xaudit::model::Model, x: &Tensor, maps: &Tensor) -> f64 {
    let p = m.logits(x).unwrap().softmax(-1, Kind::Float);
    let (pc, c) = p.max_dim(1, false);
    let mask = normalize(&maps.squeeze_dim(1), Normalize::Minmax).unsqueeze(1);
    let q = m.logits(&(x * mask)).unwrap().softmax(-1, Kind::Float);
    let qc = q.gather(1, &c.view([-1, 1]), false).view([-1]);
    ((&pc - qc).clamp_min(0.0) / &pc)
        .mean(Kind::Double)
        .double_value(&[])
}

fn maps(m: &xaudit::model::Model, spec: MethodSpec, x: &Tensor) -> Tensor {
    let t = m.logits(x).unwrap().argmax(1, false);
    let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
    spec.attribute(&ctx(m, Score::Logit), x, &t, &ids)
        .unwrap()
        .maps
}

#[test]
fn l_cam_trains_on_the_digits_and_beats_a_model_blind_map_on_average_drop() {
    let m = digits();
    let (train, eval) = split();
    let dir = tempfile::tempdir().unwrap();
    for variant in [Variant::Img, Variant::Fm] {
        let t = Training {
            variant,
            epochs: 15,
            batch_size: 32,
            learning_rate: 0.05,
            seed: 0,
        };
        let mut losses = Vec::new();
        let (w, b) = l_cam::train(&m, &train, &t, |_, l| losses.push(l)).unwrap();
        assert!(
            losses.last().unwrap() < &losses[0],
            "{variant:?}: the loss fell: {losses:?}"
        );
        let file = dir
            .path()
            .join(format!("lcam-{}.safetensors", variant.name()));
        l_cam::save(&file, &w, &b, &m, &t).unwrap();
        let spec = |kind: MethodKind| {
            let mut table = toml::Table::new();
            table.insert(
                "weights".into(),
                toml::Value::String(file.display().to_string()),
            );
            MethodSpec::from_table(kind, &table).unwrap()
        };
        let kind = match variant {
            Variant::Img => MethodKind::LCamImg,
            Variant::Fm => MethodKind::LCamFm,
        };
        let lcam = average_drop(&m, &eval, &maps(&m, spec(kind), &eval));
        let blind = average_drop(
            &m,
            &eval,
            &maps(
                &m,
                MethodSpec::with_defaults(MethodKind::FixedRandom),
                &eval,
            ),
        );
        let gradcam = average_drop(
            &m,
            &eval,
            &maps(&m, MethodSpec::with_defaults(MethodKind::GradCam), &eval),
        );
        eprintln!(
            "{variant:?}: Average Drop L-CAM {lcam:.3}, Grad-CAM {gradcam:.3}, fixed-random {blind:.3}; loss by epoch {losses:.3?}"
        );
        // Measured: 0.74 (img) and 0.75 (fm) against Grad-CAM 0.86 and fixed-random 0.83.
        assert!(lcam < blind - 0.05, "{variant:?}: {lcam} vs {blind}");
        assert!(
            lcam < gradcam - 0.05,
            "{variant:?}: {lcam} vs Grad-CAM {gradcam}"
        );
        // Same file, the other variant's method: refused with the reason.
        let other = match variant {
            Variant::Img => MethodKind::LCamFm,
            Variant::Fm => MethodKind::LCamImg,
        };
        let t0 = m.logits(&eval.narrow(0, 0, 2)).unwrap().argmax(1, false);
        let e = spec(other)
            .attribute(&ctx(&m, Score::Logit), &eval.narrow(0, 0, 2), &t0, &[0, 1])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("was trained as"), "{e}");
    }
    // A module trained for another model is refused.
    let other = load("models/digits_cnn_s1.pt", [1, 28, 28]);
    let file = dir.path().join("lcam-img.safetensors");
    let mut table = toml::Table::new();
    table.insert(
        "weights".into(),
        toml::Value::String(file.display().to_string()),
    );
    let t0 = other
        .logits(&eval.narrow(0, 0, 2))
        .unwrap()
        .argmax(1, false);
    let e = MethodSpec::from_table(MethodKind::LCamImg, &table)
        .unwrap()
        .attribute(
            &ctx(&other, Score::Logit),
            &eval.narrow(0, 0, 2),
            &t0,
            &[0, 1],
        )
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("trained for the model with sha256"), "{e}");
}

#[test]
fn train_then_explain_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lcam.safetensors");
    let f = |p: &str| fixture(p).display().to_string();
    let bin = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_xaudit"));
        c.env("CI", "1");
        c
    };
    let o = bin()
        .args(["train", "l-cam", &f("models/digits_cnn_s0.pt"), "--data"])
        .arg(f("data/digits_demo.csv"))
        .args([
            "--config",
            &f("digits.toml"),
            "--variant",
            "fm",
            "--epochs",
            "2",
        ])
        .args(["--lr", "0.05", "--out", &out.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("epoch 2/2"));
    let maps = dir.path().join("maps");
    let o = bin()
        .args([
            "explain",
            &f("models/digits_cnn_s0.pt"),
            &f("data/digits_demo.csv"),
        ])
        .args([
            "--config",
            &f("digits.toml"),
            "--method",
            "l-cam-fm",
            "--lcam",
        ])
        .arg(&out)
        .args(["--out", &maps.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let n = std::fs::read_dir(&maps)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "npy")
        })
        .count();
    assert_eq!(n, 20);
    // Without a module: exit 2 with the command that makes one.
    let o = bin()
        .args([
            "explain",
            &f("models/digits_cnn_s0.pt"),
            &f("data/digits_demo.csv"),
        ])
        .args(["--config", &f("digits.toml"), "--method", "l-cam-img"])
        .args(["--out", &dir.path().join("none").display().to_string()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("xaudit train l-cam"));
}
