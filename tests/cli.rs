//! The `xaudit` binary end to end: the happy path, and every kind of bad input exiting 2
//! with a message naming the file and the fix, no panic and no half-written output.
mod common;
use common::fixture;
use std::path::Path;
use std::process::{Command, Output};

fn xaudit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run xaudit")
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Runs explain on the digits model and asserts exit 2, a message with `needles`, no panic,
/// and that the output folder was not left behind.
fn expect_input_error(model: &str, inputs: &[String], extra: &[&str], needles: &[&str]) {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("o");
    let mut args = vec!["explain".to_string(), model.to_string()];
    args.extend(inputs.iter().cloned());
    args.extend([
        "--out".into(),
        s(&out),
        "--config".into(),
        s(&fixture("digits.toml")),
    ]);
    args.extend(extra.iter().map(|e| e.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = xaudit(&argv);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "args {argv:?}\nstderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`:\n{err}");
    }
    assert!(err.contains("fix:"), "no fix suggested:\n{err}");
    assert!(!out.exists(), "output folder left behind after an error");
}

fn first_file(rel: &str) -> std::path::PathBuf {
    let mut v: Vec<_> = std::fs::read_dir(fixture(rel))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.remove(0)
}

fn demo_csv() -> Vec<String> {
    vec![s(&fixture("data/digits_demo.csv"))]
}

#[test]
fn explain_writes_npy_png_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("maps");
    let o = xaudit(&[
        "explain",
        &s(&fixture("models/digits_cnn_s0.pt")),
        &s(&fixture("data/digits/test/3")),
        &s(&first_file("data/digits/test/7")),
        "--config",
        &s(&fixture("digits.toml")),
        "--method",
        "grad-cam",
        "--device",
        "cpu",
        "--out",
        &s(&out),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let n_images = std::fs::read_dir(fixture("data/digits/test/3"))
        .unwrap()
        .count()
        + 1;
    assert_eq!(stdout.lines().count(), n_images);
    assert!(stdout.contains("predicted=3"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let images = summary["images"].as_array().unwrap();
    assert_eq!(images.len(), n_images);
    for im in images {
        let (shape, data) =
            xaudit::npy::read_f32(&out.join(im["map_file"].as_str().unwrap())).unwrap();
        assert_eq!(shape, vec![28, 28]);
        assert!(data.iter().all(|v| v.is_finite() && *v >= 0.0));
        let png = image::open(out.join(im["png_file"].as_str().unwrap())).unwrap();
        assert!(png.width() >= 224);
    }
    // Grad-CAM of a correctly classified 3 should not be a blank map.
    let (_, d) = xaudit::npy::read_f32(&out.join(images[0]["map_file"].as_str().unwrap())).unwrap();
    assert!(d.iter().cloned().fold(0.0f32, f32::max) > 0.0);
    assert!(!out.read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".xaudit")));
}

#[test]
fn doctor_reports_and_checks_model() {
    let o = xaudit(&[
        "doctor",
        &s(&fixture("models/digits_cnn_s0.pt")),
        "--config",
        &s(&fixture("digits.toml")),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for n in [
        "libtorch 2.13.0",
        "cuda:",
        "threads:",
        "classes: 10",
        "features/head: ok",
        "contract: ok",
    ] {
        assert!(out.contains(n), "doctor output lacks `{n}`:\n{out}");
    }
    let o = xaudit(&[
        "doctor",
        &s(&fixture("models/bad/inconsistent_head.pt")),
        "--config",
        &s(&fixture("digits.toml")),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("CAM methods unavailable"));
}

#[test]
fn binary_links_libtorch_with_rpath() {
    let o = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_xaudit")])
        .output()
        .expect("readelf (binutils)");
    let d = String::from_utf8_lossy(&o.stdout);
    assert!(d.contains("(RPATH)") && d.contains("torch/lib"), "{d}");
    assert!(d.contains("[libtorch.so]"), "{d}");
}

#[test]
fn bad_models_exit_2_with_a_fix() {
    let csv = demo_csv();
    let cases: &[(&str, &[&str])] = &[
        (
            "models/does_not_exist.pt",
            &["does_not_exist.pt", "cannot open"],
        ),
        (
            "models/bad/truncated.pt",
            &["truncated.pt", "truncated or corrupt"],
        ),
        (
            "models/bad/state_dict.pt",
            &["state_dict.pt", "torch.save checkpoint", "torch.jit.script"],
        ),
        ("models/bad/plain_pickle.pt", &["plain_pickle.pt", "pickle"]),
        (
            "models/bad/frozen.pt",
            &["frozen.pt", "frozen", "WITHOUT freezing"],
        ),
        ("models/bad/wrong_output.pt", &["wrong_output.pt", "[N,K]"]),
        ("models/bad/nan_output.pt", &["nan_output.pt", "NaN"]),
    ];
    for (model, needles) in cases {
        expect_input_error(&s(&fixture(model)), &csv, &[], needles);
    }
    // Wrong channel count: a 3-channel config for the 1-channel digits model.
    expect_input_error(
        &s(&fixture("models/digits_cnn_s0.pt")),
        &csv,
        &[
            "--channels",
            "3",
            "--mean",
            "0.5,0.5,0.5",
            "--std",
            "0.5,0.5,0.5",
        ],
        &["digits_cnn_s0.pt", "channels"],
    );
    // CAM on a model whose head is inconsistent with forward.
    expect_input_error(
        &s(&fixture("models/bad/inconsistent_head.pt")),
        &csv,
        &["--method", "grad-cam"],
        &["grad-cam", "head(features(x))"],
    );
}

#[test]
fn bad_images_and_data_exit_2_naming_the_file() {
    let model = s(&fixture("models/digits_cnn_s0.pt"));
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(first_file("data/digits/test/3")).unwrap();
    let zero = dir.path().join("zero.png");
    std::fs::write(&zero, b"").unwrap();
    let trunc = dir.path().join("trunc.png");
    std::fs::write(&trunc, &good[..good.len() / 2]).unwrap();
    let text = dir.path().join("text.png");
    std::fs::write(&text, b"hello, not an image").unwrap();
    let good_path = dir.path().join("good.png");
    std::fs::write(&good_path, &good).unwrap();
    for (bad, needle) in [(&zero, "empty"), (&trunc, "decode"), (&text, "decode")] {
        // A good image first: the error must still leave no output.
        expect_input_error(&model, &[s(&good_path), s(bad)], &[], &[&s(bad), needle]);
    }
    let empty = dir.path().join("empty_folder");
    std::fs::create_dir(&empty).unwrap();
    expect_input_error(
        &model,
        &[s(&empty)],
        &[],
        &["empty_folder", "no PNG or JPEG"],
    );
    expect_input_error(
        &model,
        &[s(&dir.path().join("missing.png"))],
        &[],
        &["missing.png", "cannot open"],
    );
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "file,label\na.png,1\n").unwrap();
    expect_input_error(&model, &[s(&csv)], &[], &["bad.csv", "path"]);
    let csv = dir.path().join("badlabel.csv");
    std::fs::write(&csv, format!("path,label\n{},x\n", s(&good_path))).unwrap();
    expect_input_error(&model, &[s(&csv)], &[], &["badlabel.csv", "line 2"]);
}

#[test]
fn bad_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = s(&fixture("models/digits_cnn_s0.pt"));
    for (name, text, needle) in [
        ("syntax.toml", "[preprocess\nchannels = 1", "syntax.toml"),
        (
            "unknown.toml",
            "[preprocess]\nchannels = 1\nsize = [28, 28]\nmeen = [0.5]\n",
            "meen",
        ),
        (
            "channels.toml",
            "[preprocess]\nchannels = 2\nsize = [28, 28]\n",
            "channels",
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let o = xaudit(&[
            "explain",
            &model,
            &s(&fixture("data/digits_demo.csv")),
            "--config",
            &s(&p),
            "--out",
            &s(&dir.path().join("o")),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(needle) && !err.contains("panicked"), "{err}");
    }
}

#[test]
fn label_target_needs_labels() {
    let dir = tempfile::tempdir().unwrap();
    let first = first_file("data/digits/test/3");
    expect_input_error(
        &s(&fixture("models/digits_cnn_s0.pt")),
        &[s(&first)],
        &["--target", "label"],
        &["no label"],
    );
    // With an ImageFolder tree the label target works and explains the folder's class.
    let o = xaudit(&[
        "explain",
        &s(&fixture("models/digits_cnn_s0.pt")),
        &s(&fixture("data/digits/test")),
        "--config",
        &s(&fixture("digits.toml")),
        "--target",
        "label",
        "--batch-size",
        "64",
        "--out",
        &s(&dir.path().join("o")),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    for line in out.lines() {
        let class = line
            .split("/test/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        assert!(line.ends_with(&format!("target={class}")), "{line}");
    }
}

#[test]
fn throughput_reports_each_batch_size_and_the_best() {
    let model = s(&fixture("models/digits_cnn_s0.pt"));
    let cfg = s(&fixture("digits.toml"));
    let o = xaudit(&[
        "throughput",
        &model,
        "--config",
        &cfg,
        "--batch-sizes",
        "1,4",
        "--min-time",
        "0.01",
        "--repeats",
        "2",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let points = v["points"].as_array().unwrap();
    let batches: Vec<u64> = points
        .iter()
        .map(|p| p["batch"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [1, 4]);
    for key in ["forward_per_s", "backward_per_s"] {
        let best = points
            .iter()
            .map(|p| p[key].as_f64().unwrap())
            .fold(0.0f64, f64::max);
        assert!(best > 0.0);
        assert_eq!(v[format!("ceiling_{key}")].as_f64().unwrap(), best);
    }
    assert_eq!(v["input_shape"], serde_json::json!([1, 28, 28]));
    // On real images (20, cycled to fill a batch of 32).
    let demo = s(&fixture("data/digits_demo.csv"));
    let o = xaudit(&[
        "throughput",
        &model,
        "--config",
        &cfg,
        "--batch-sizes",
        "32",
        "--min-time",
        "0.01",
        "--data",
        &demo,
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["inputs"].as_str().unwrap().ends_with("digits_demo.csv"));
    assert!(v["ceiling_backward_per_s"].as_f64().unwrap() > 0.0);
    // A bad argument is an input error naming the flag.
    let o = xaudit(&["throughput", &model, "--config", &cfg, "--batch-sizes", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--batch-sizes"));
}
