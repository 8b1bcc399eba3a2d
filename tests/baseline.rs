//! Release-to-release gating (`--baseline`, `[baseline]`) and `xaudit compare`, end to end on
//! the digits CNN, with answers known by construction: a baseline whose per-image values
//! were made better by a known shift must make the current run REGRESSED (and fail the
//! gate) unless the allowed regression exceeds the shift; an identical run never regresses;
//! a model-blind method loses a comparison to a real one.
mod common;
use common::fixture;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A one-audit suite that runs in seconds: random-logit (the map must change with the
/// explained class; a fixed map scores SSIM 1).
const SUITE: &str = "name = \"t\"\n[[audit]]\nid = \"random-logit\"\nthreshold = 0.5\n";

fn p(rel: &str) -> String {
    fixture(rel).to_string_lossy().into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args(args)
        .env("CI", "1")
        .output()
        .expect("run xaudit")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn check(dir: &Path, model: &str, method: &str, out: &str, extra: &[&str]) -> Output {
    let suite = dir.join("s.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let suite = suite.to_string_lossy().into_owned();
    let out = dir.join(out).to_string_lossy().into_owned();
    let model = p(model);
    let config = p("digits.toml");
    let data = p("data/digits/test");
    let mut args = vec![
        "check",
        &model,
        "--suite",
        &suite,
        "--config",
        &config,
        "--data",
        &data,
        "--max-images",
        "40",
        "--method",
        method,
        "--out-dir",
        &out,
        // Baselines are full measurements (a sequential run keeps only the images it used).
        "--fixed-n",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The baseline with every per-image value of every result moved by `shift`.
fn shifted(src: &Path, dst: &Path, shift: f64) -> PathBuf {
    let mut r = json(src);
    for a in r["audits"].as_array_mut().unwrap() {
        for s in a["per_sample"].as_array_mut().unwrap() {
            if let Some(v) = s["value"].as_f64() {
                s["value"] = (v + shift).into();
            }
        }
    }
    std::fs::write(dst, serde_json::to_string(&r).unwrap()).unwrap();
    dst.to_path_buf()
}

fn regression(report: &Value) -> &Value {
    let a = report["audits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "XA103")
        .unwrap();
    &a["regression"]
}

#[test]
fn a_baseline_gates_a_regression_and_every_format_shows_the_delta() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let o = check(d, "models/digits_cnn_s0.pt", "saliency", "base", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let base = d.join("base/report.json");
    let b = base.to_string_lossy().into_owned();

    // The same run against itself: every per-image difference is 0, never a regression.
    let o = check(
        d,
        "models/digits_cnn_s0.pt",
        "saliency",
        "same",
        &["--baseline", &b],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&d.join("same/report.json"));
    let g = regression(&r);
    assert_eq!(g["verdict"], "inconclusive", "{g}");
    assert_eq!(g["design"], "paired");
    assert_eq!(g["paired_n"], 40);
    assert_eq!(g["difference"].as_f64(), Some(0.0));
    assert_eq!(r["baseline"]["compared"], 1);
    assert_eq!(r["baseline"]["regressed"], 0);
    assert!(
        r["baseline"]["differences"].as_array().unwrap().is_empty(),
        "{}",
        r["baseline"]
    );

    // A baseline 0.3 better on every image (SSIM: lower is better): REGRESSED, gate fails.
    let better = shifted(&base, &d.join("better.json"), -0.3);
    let bb = better.to_string_lossy().into_owned();
    let o = check(
        d,
        "models/digits_cnn_s0.pt",
        "saliency",
        "worse",
        &["--baseline", &bb],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = d.join("worse");
    let r = json(&out.join("report.json"));
    let g = regression(&r);
    assert_eq!(g["verdict"], "fail", "{g}");
    assert_eq!(g["gated"], true);
    assert!(
        (g["difference"].as_f64().unwrap() - 0.3).abs() < 1e-9,
        "{g}"
    );
    // The bound is a lower bound on the worsening, above the allowance 0.
    assert!(g["bound_low"].as_f64().unwrap() > 0.0, "{g}");
    assert_eq!(g["pairs"].as_array().unwrap().len(), 40);
    assert_eq!(r["counts"]["regressed"], 1);
    assert_eq!(r["verdict"], "fail");
    // The absolute verdict is unchanged: only the regression failed the gate.
    assert_eq!(r["audits"][0]["verdict"], "pass");
    assert!(text(&o).contains("REGRESSED"), "{}", text(&o));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("Against baseline") && md.contains("REGRESSED") && md.contains("+0.3000"),
        "{md}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Against the baseline") && html.contains("REGRESSED"));
    assert!(
        html.contains("Per-image paired differences"),
        "the HTML draws the paired differences"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("vs baseline") && junit.contains("type=\"regression\""),
        "{junit}"
    );
    let sarif = std::fs::read_to_string(out.join("report.sarif")).unwrap();
    assert!(sarif.contains("vs baseline") && sarif.contains("REGRESSED"));
    let o = run(&[
        "report",
        &out.join("report.json").to_string_lossy(),
        "--format",
        "github",
    ]);
    assert!(
        text(&o).contains("::error") && text(&o).contains("vs baseline"),
        "{}",
        text(&o)
    );

    // The same worsening within an allowance of 0.5 is shown NOT WORSE and passes.
    let cfg = d.join("allow.toml");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(fixture("digits.toml")).unwrap()
            + &format!(
                "\n[baseline]\npath = {:?}\n\n[audits.random-logit]\nmax-regression = 0.5\n",
                bb
            ),
    )
    .unwrap();
    let o = {
        let suite = d.join("s.toml").to_string_lossy().into_owned();
        run(&[
            "check",
            &p("models/digits_cnn_s0.pt"),
            "--suite",
            &suite,
            "--config",
            &cfg.to_string_lossy(),
            "--data",
            &p("data/digits/test"),
            "--max-images",
            "40",
            "--method",
            "saliency",
            "--out-dir",
            &d.join("allowed").to_string_lossy(),
        ])
    };
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = json(&d.join("allowed/report.json"));
    let g = regression(&r);
    assert_eq!(g["verdict"], "pass", "{g}");
    assert_eq!(g["max_regression"], 0.5);
    assert!(g["bound_high"].as_f64().unwrap() < 0.5, "{g}");
}

#[test]
fn baselines_on_other_images_other_settings_or_schemas_are_handled() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let o = check(
        d,
        "models/digits_cnn_s0.pt",
        "saliency",
        "base",
        &["--seed", "3"],
    );
    assert!(o.status.code().unwrap() <= 1, "{}", text(&o));
    let base = d.join("base/report.json");
    // Other images (no file hash in common): a two-sample comparison that says so.
    let mut r = json(&base);
    for im in r["images"].as_array_mut().unwrap() {
        im["sha256"] = format!("other-{}", im["index"]).into();
    }
    let other = d.join("other.json");
    std::fs::write(&other, serde_json::to_string(&r).unwrap()).unwrap();
    let o = check(
        d,
        "models/digits_cnn_s1.pt",
        "saliency",
        "cur",
        &["--baseline", &other.to_string_lossy()],
    );
    assert!(o.status.code().unwrap() <= 1, "{}", text(&o));
    let r = json(&d.join("cur/report.json"));
    let g = regression(&r);
    assert_eq!(g["design"], "two-sample", "{g}");
    assert!(
        g["design_reason"]
            .as_str()
            .unwrap()
            .contains("only 0 images shared"),
        "{g}"
    );
    // Model and seed differences are listed.
    let diffs = r["baseline"]["differences"].to_string();
    assert!(
        diffs.contains("model sha256") && diffs.contains("seed"),
        "{diffs}"
    );

    // A baseline of another schema major version: exit 2 before any model pass, with the fix.
    let mut old = json(&base);
    old["schema_version"] = "1.0".into();
    let oldp = d.join("old.json");
    std::fs::write(&oldp, serde_json::to_string(&old).unwrap()).unwrap();
    let o = check(
        d,
        "models/digits_cnn_s0.pt",
        "saliency",
        "x",
        &["--baseline", &oldp.to_string_lossy()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = text(&o);
    assert!(
        e.contains("old.json") && e.contains("schema 1.0") && e.contains("re-run"),
        "{e}"
    );
    assert!(!d.join("x").exists(), "no half-written output");
    let o = check(
        d,
        "models/digits_cnn_s0.pt",
        "saliency",
        "y",
        &["--baseline", "/nonexistent/report.json"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("/nonexistent/report.json"),
        "{}",
        text(&o)
    );
}

#[test]
fn compare_names_the_better_run_and_ranks_them() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // A real method against a model-blind map (a fixed random map does not change with the
    // explained class: SSIM 1), on the same model and images: saliency must win.
    let o = check(d, "models/digits_cnn_s0.pt", "saliency", "sal", &[]);
    assert!(o.status.code().unwrap() <= 1, "{}", text(&o));
    let o = check(d, "models/digits_cnn_s0.pt", "fixed-random", "fixed", &[]);
    assert!(o.status.code().unwrap() <= 1, "{}", text(&o));
    let sal = d.join("sal/report.json");
    let fixed = d.join("fixed/report.json");
    // And a run known to be worse than saliency by construction (its values + 0.2).
    let worse = shifted(&sal, &d.join("worse.json"), 0.2);
    let out = d.join("cmp");
    let o = run(&[
        "compare",
        &fixed.to_string_lossy(),
        &sal.to_string_lossy(),
        &worse.to_string_lossy(),
        "--label",
        "fixed-random",
        "--label",
        "saliency",
        "--label",
        "saliency-worse",
        "--format",
        "json",
        "--out-dir",
        &out.to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["runs"].as_array().unwrap().len(), 3);
    let a = &c["audits"][0];
    assert_eq!(a["code"], "XA103");
    assert_eq!(a["pairs"].as_array().unwrap().len(), 3);
    assert_eq!(a["best"], 1, "saliency beats both: {a}");
    for p in a["pairs"].as_array().unwrap() {
        assert_eq!(p["design"], "paired", "{p}");
    }
    assert_eq!(c["clear_winner"], 1, "{c}");
    let ranks: Vec<&str> = c["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(ranks[0], "saliency", "{ranks:?}");
    for f in ["comparison.json", "comparison.md", "comparison.html"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(md.contains("Clear winner: **saliency**"), "{md}");
    let html = std::fs::read_to_string(out.join("comparison.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    let o = run(&["compare", &sal.to_string_lossy()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "one report is not a comparison: {}",
        text(&o)
    );
}

/// An ImageFolder tree whose class folders are named by the model's class index but are not
/// 0..K-1 (the ImageNet-subset case): folders 3, 5 and 7 of the digits test set.
fn integer_folders(dir: &Path) -> PathBuf {
    let root = dir.join("subset");
    for c in ["3", "5", "7"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
        let src = fixture("data/digits/test").join(c);
        for e in std::fs::read_dir(&src).unwrap().take(12) {
            let e = e.unwrap();
            std::fs::copy(e.path(), root.join(c).join(e.file_name())).unwrap();
        }
    }
    root
}

fn preprocess_only() -> String {
    // The digits preprocessing without class_names.
    std::fs::read_to_string(fixture("digits.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("class_names") && !l.starts_with("[model]"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn labels_that_do_not_fit_the_model_are_caught_and_mapped() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let data = integer_folders(d).to_string_lossy().into_owned();
    let suite = d.join("s.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let go = |cfg_extra: &str, out: &str| {
        let cfg = d.join(format!("{out}.toml"));
        std::fs::write(&cfg, preprocess_only() + cfg_extra).unwrap();
        let o = run(&[
            "check",
            &p("models/digits_cnn_s0.pt"),
            "--suite",
            &suite.to_string_lossy(),
            "--config",
            &cfg.to_string_lossy(),
            "--data",
            &data,
            "--method",
            "saliency",
            "--out-dir",
            &d.join(out).to_string_lossy(),
        ]);
        (o, d.join(out))
    };
    // Default rule (torchvision's folder-index): folders 3, 5, 7 become classes 0, 1, 2 and
    // nothing matches; the rule is named, and the warning gives the other rule's accuracy.
    let (o, out) = go("", "index");
    let e = text(&o);
    assert!(o.status.code().unwrap() <= 1, "{e}");
    assert!(
        e.contains("note:") && e.contains("folder `3` -> class 0"),
        "{e}"
    );
    assert!(
        e.contains("warning: the model's accuracy on the given labels is 0%"),
        "{e}"
    );
    assert!(
        e.contains("labels = \"folder-name\" the accuracy would be"),
        "{e}"
    );
    let r = json(&out.join("report.json"));
    let w = r["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    // First thing in every format.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let first_table = md.find("| verdict").unwrap();
    assert!(md[..first_table].contains("Warning"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.find("Warning.").unwrap() < html.find("id=\"summary\"").unwrap());
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(table.starts_with("warning: "), "{table}");
    assert!(std::fs::read_to_string(out.join("junit.xml"))
        .unwrap()
        .contains("name=\"warning\""));
    assert!(std::fs::read_to_string(out.join("report.sarif"))
        .unwrap()
        .contains("toolExecutionNotifications"));

    // The folder names are class indices: no warning.
    let (o, out) = go("[model]\nlabels = \"folder-name\"\n", "name");
    assert!(o.status.code().unwrap() <= 1, "{}", text(&o));
    assert!(!text(&o).contains("warning:"), "{}", text(&o));
    assert!(json(&out.join("report.json"))["warnings"]
        .as_array()
        .unwrap()
        .is_empty());

    // class_names map the folders by name.
    let names = "[model]\nclass_names = [\"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]\n";
    let (o, _) = go(names, "names");
    assert!(o.status.code().unwrap() <= 1, "{}", text(&o));
    assert!(
        text(&o).contains("mapped to [model] class_names by name"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("warning:"), "{}", text(&o));

    // Some folders named in class_names, some not: an error with the fix.
    let (o, _) = go("[model]\nclass_names = [\"3\", \"5\", \"x\"]\n", "partial");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not 7") && text(&o).contains("folder-index"),
        "{}",
        text(&o)
    );
}
