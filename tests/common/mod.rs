//! Helpers shared by the integration tests: fixture paths, golden files, comparisons.
#![allow(dead_code)]
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};
use xaudit::attribution::{Ctx, Score};
use xaudit::config::{Filter, Preprocess};
use xaudit::model::Model;

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

pub fn npy(rel: &str) -> Tensor {
    let (shape, data) = xaudit::npy::read_f32(&fixture(rel)).expect("golden file");
    let shape: Vec<i64> = shape.iter().map(|v| *v as i64).collect();
    Tensor::from_slice(&data).view(shape.as_slice())
}

pub fn npy_i64(rel: &str) -> Tensor {
    let (_, data) = xaudit::npy::read_i64(&fixture(rel)).expect("golden file");
    Tensor::from_slice(&data)
}

pub fn load(rel: &str, shape: [i64; 3]) -> Model {
    Model::load(&fixture(rel), Device::Cpu, shape).expect("fixture model loads")
}

pub fn digits() -> Model {
    load("models/digits_cnn_s0.pt", [1, 28, 28])
}

pub fn ctx(model: &Model, score: Score) -> Ctx<'_> {
    Ctx {
        model,
        seed: 0,
        internal_batch: 64,
        score,
    }
}

/// ‖a − b‖₂ / ‖b‖₂ over the whole tensor.
pub fn rel_l2(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    let num = (&a - &b)
        .square()
        .sum(Kind::Double)
        .sqrt()
        .double_value(&[]);
    let den = b.square().sum(Kind::Double).sqrt().double_value(&[]);
    num / den.max(1e-300)
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// Preprocessing of the fixture models (fixtures/digits.toml, fixtures/faces.toml).
pub fn preprocess(channels: usize, side: usize, mean: f32, std: f32) -> Preprocess {
    Preprocess {
        channels,
        size: [side, side],
        resize: None,
        filter: Filter::Bilinear,
        mean: Some(vec![mean; channels]),
        std: Some(vec![std; channels]),
        max_pixels: xaudit::config::DEFAULT_MAX_PIXELS,
        frames: None,
        frame_stride: 1,
    }
}

pub fn digits_pre() -> Preprocess {
    preprocess(1, 28, 0.5, 0.5)
}

pub fn faces_pre() -> Preprocess {
    preprocess(3, 48, 0.5, 0.501_960_8)
}

/// A suite from TOML text (written to a temporary file, as users pass them).
pub fn suite(text: &str) -> xaudit::suite::Suite {
    use std::io::Write;
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    xaudit::suite::Suite::load(f.path().to_str().unwrap()).unwrap()
}

/// Every `step`-th digits test image, the first `n` of them.
pub fn digits_every(step: usize, n: usize) -> xaudit::data::Dataset {
    let mut d = xaudit::data::Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    d.items = d.items.iter().step_by(step).take(n).cloned().collect();
    d
}

/// Runs the xaudit binary with `args` (CI=1: no progress bars).
pub fn xaudit(args: &[String]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args(args)
        .env("CI", "1")
        .output()
        .expect("run xaudit")
}

/// A process's stdout then stderr, for assertion messages.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The per-image values of a report's first result.
pub fn first_values(r: &serde_json::Value) -> Vec<f64> {
    r["audits"][0]["per_sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .collect()
}
