//! `xaudit check` end to end: exit codes, report.json, configuration, ignores, threads.
mod common;
use common::fixture;
use std::path::Path;
use std::process::{Command, Output};

fn xaudit_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args(args)
        .current_dir(dir)
        .env("CI", "1")
        .output()
        .expect("run xaudit")
}

fn xaudit(args: &[&str]) -> Output {
    xaudit_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn p(rel: &str) -> String {
    fixture(rel).to_string_lossy().into_owned()
}

const CASCADE: &str =
    "name = \"t\"\n[[audit]]\nid = \"cascading-randomization\"\nthreshold = 0.5\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f.to_string_lossy().into_owned()
}

fn digits_config(extra: &str) -> String {
    std::fs::read_to_string(fixture("digits.toml")).unwrap() + extra
}

fn check(dir: &Path, suite: &str, config: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "check".to_string(),
        p("models/digits_cnn_s0.pt"),
        "--suite".into(),
        suite.into(),
        "--config".into(),
        config.into(),
        "--data".into(),
        p("data/digits/test"),
        "--max-images".into(),
        "40".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    xaudit_in(dir, &argv)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn gate_exit_codes_and_report_json() {
    let t = tempfile::tempdir().unwrap();
    let suite = write(t.path(), "s.toml", CASCADE);
    let cfg = write(t.path(), "x.toml", &digits_config(""));
    let out = t.path().join("out");
    let o = check(
        t.path(),
        &suite,
        &cfg,
        &[
            "--method",
            "edge",
            "--method",
            "saliency",
            "--out-dir",
            out.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}\n{}", stderr(&o));
    assert!(text.contains("FAIL") && text.contains("PASS"), "{text}");
    assert!(text.contains("gate FAILED (exit 1)"), "{text}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["exit_code"], 1);
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["seed"], 0);
    assert_eq!(r["model"]["sha256"].as_str().unwrap().len(), 64);
    let a = &r["audits"][0];
    for k in [
        "code",
        "name",
        "suite",
        "method",
        "n",
        "excluded",
        "claim",
        "descriptive",
        "bound_low",
        "bound_high",
        "level",
        "threshold",
        "direction",
        "p_pass_adjusted",
        "p_fail_adjusted",
        "verdict",
        "per_sample",
        "params",
    ] {
        assert!(a.get(k).is_some(), "report lacks {k}");
    }
    // Sequential by default: the values of the images the audit used (30 or all 40).
    assert_eq!(r["sequential"], true);
    let used = a["sequential"]["images"].as_u64().unwrap() as usize;
    assert!(used == 30 || used == 40, "{}", a["sequential"]);
    assert_eq!(a["per_sample"].as_array().unwrap().len(), used);
    assert!(r["decision_rule"]
        .as_str()
        .unwrap()
        .contains("one Holm family"));
    assert!(
        r["methods"]["saliency"]["score"] == "logit",
        "{}",
        r["methods"]
    );
    assert!(r["docs"]["XA101"]["what"].as_str().unwrap().len() > 40);
    assert!(!out.join(".report.json.tmp").exists());

    // Saliency alone passes: exit 0; JSON on stdout agrees with the exit code.
    let o = check(
        t.path(),
        &suite,
        &cfg,
        &["--method", "saliency", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["audits"][0]["verdict"], "pass");

    // --exit-zero reports but never fails the gate.
    let o = check(t.path(), &suite, &cfg, &["--method", "edge", "--exit-zero"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn ignores_need_a_reason_and_expire() {
    let t = tempfile::tempdir().unwrap();
    let suite = write(t.path(), "s.toml", CASCADE);
    let ok = write(
        t.path(),
        "ok.toml",
        &digits_config("\n[[ignore]]\naudit = \"XA101\"\nmethod = \"edge\"\nreason = \"control explainer, fails by design\"\nexpires = \"2999-01-01\"\n"),
    );
    let o = check(t.path(), &suite, &ok, &["--method", "edge"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(ignored)"));
    let old = write(
        t.path(),
        "old.toml",
        &digits_config("\n[[ignore]]\naudit = \"cascading-randomization\"\nreason = \"was accepted once\"\nexpires = \"2001-01-01\"\n"),
    );
    let o = check(t.path(), &suite, &old, &["--method", "edge"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an expired ignore is a configuration error"
    );
    assert!(
        stderr(&o).contains("expired on 2001-01-01"),
        "{}",
        stderr(&o)
    );
    let bad = write(
        t.path(),
        "bad.toml",
        &digits_config("\n[[ignore]]\naudit = \"XA101\"\nreason = \"\"\n"),
    );
    let o = check(t.path(), &suite, &bad, &["--method", "edge"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("empty reason"), "{}", stderr(&o));
}

#[test]
fn threshold_override_from_config_changes_the_verdict() {
    let t = tempfile::tempdir().unwrap();
    let suite = write(t.path(), "s.toml", CASCADE);
    // Saliency's fully randomised Spearman is ~0.1: a threshold of 0.01 cannot be met.
    let cfg = write(
        t.path(),
        "x.toml",
        &digits_config("\n[audits.cascading-randomization]\nthreshold = 0.01\n"),
    );
    let o = check(
        t.path(),
        &suite,
        &cfg,
        &["--method", "saliency", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["audits"][0]["threshold"], 0.01);
    assert_eq!(r["audits"][0]["verdict"], "fail");
}

#[test]
fn configuration_and_suite_errors_exit_2_with_the_fix() {
    let t = tempfile::tempdir().unwrap();
    let suite = write(t.path(), "s.toml", CASCADE);
    let cases: Vec<(String, String, &[&str])> = vec![
        (suite.clone(), write(t.path(), "a.toml", &digits_config("\nsead = 3\n")), &["sead", "line 11"]),
        (suite.clone(), write(t.path(), "b.toml", &digits_config("\n[audits.atack-top-k]\nthreshold = 0.2\n")), &["did you mean `attack-top-k`"]),
        (suite.clone(), write(t.path(), "c.toml", &digits_config("\nalpha = 2.0\n")), &["alpha"]),
        (write(t.path(), "s2.toml", "name = \"t\"\n[[audit]]\nid = \"cascading-randomisation\"\nthreshold = 0.5\n"), write(t.path(), "d.toml", &digits_config("")), &["did you mean `cascading-randomization`"]),
        (write(t.path(), "s3.toml", "name = \"t\"\n[[audit]]\nid = \"attack-top-k\"\nthreshold = 0.5\nparams = { iteratons = 5 }\n"), write(t.path(), "e.toml", &digits_config("")), &["did you mean `iterations`", "XA002"]),
        (write(t.path(), "s4.toml", "name = \"t\"\n[[audit]]\nid = \"attack-top-k\"\nthreshold = 0.5\nparams = { epsilon = -1.0 }\n"), write(t.path(), "f.toml", &digits_config("")), &["epsilon"]),
        (write(t.path(), "s5.toml", "name = \"t\"\nmethods = [\"salency\"]\n"), write(t.path(), "g.toml", &digits_config("")), &["did you mean `saliency`"]),
        ("robustnes".to_string(), write(t.path(), "h.toml", &digits_config("")), &["did you mean `robustness`"]),
    ];
    for (suite, cfg, needles) in cases {
        let out = t.path().join("out");
        let o = check(
            t.path(),
            &suite,
            &cfg,
            &["--method", "saliency", "--out-dir", out.to_str().unwrap()],
        );
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{suite} {cfg}: {e}");
        assert!(!e.contains("panicked"), "{e}");
        for n in needles {
            assert!(e.contains(n), "`{n}` not in: {e}");
        }
        assert!(!out.exists(), "report written despite the error");
    }
}

#[test]
fn pyproject_tool_section_is_read() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "s.toml", CASCADE);
    let pre = std::fs::read_to_string(fixture("digits.toml"))
        .unwrap()
        .replace("[preprocess]", "[tool.xaudit.preprocess]")
        .replace("[model]", "[tool.xaudit.model]");
    let text = format!("[project]\nname = \"demo\"\n\n[tool.xaudit]\nsuite = \"s.toml\"\ndata = \"{}\"\nseed = 5\nmethods = [\"saliency\"]\n\n{pre}", p("data/digits/test"));
    write(t.path(), "pyproject.toml", &text);
    let o = xaudit_in(
        t.path(),
        &[
            "check",
            &p("models/digits_cnn_s0.pt"),
            "--max-images",
            "40",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["seed"], 5);
    assert!(r["provenance"]["config"]
        .as_str()
        .unwrap()
        .ends_with("pyproject.toml"));
}

#[test]
fn thread_count_does_not_change_the_report() {
    let t = tempfile::tempdir().unwrap();
    let suite = write(
        t.path(),
        "s.toml",
        "name = \"t\"\n[[audit]]\nid = \"sensitivity-max\"\nthreshold = 0.5\nparams = { samples = 5 }\n[[audit]]\nid = \"attack-top-k\"\nthreshold = 0.5\nparams = { iterations = 2, zo-directions = 2 }\n",
    );
    let cfg = write(t.path(), "x.toml", &digits_config(""));
    let run = |threads: &str| {
        let o = check(
            t.path(),
            &suite,
            &cfg,
            &[
                "--method",
                "saliency",
                "--method",
                "smoothgrad",
                "--threads",
                threads,
                // The measured default is keyed by threads; equal batches, equal bits.
                "--internal-batch-size",
                "64",
                "--format",
                "json",
            ],
        );
        assert!(o.status.code().unwrap() <= 1, "{}", stderr(&o));
        let mut r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        r.as_object_mut().unwrap().remove("provenance");
        for a in r["audits"].as_array_mut().unwrap() {
            a.as_object_mut().unwrap().remove("duration_s");
        }
        r
    };
    assert_eq!(run("1"), run("2"));
}

#[test]
fn docs_and_list() {
    let o = xaudit(&["docs", "XA101"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    for h in [
        "## What it checks",
        "## Why it matters",
        "## How it is measured",
        "## Pass criterion",
        "## References",
        "## Parameters",
    ] {
        assert!(text.contains(h), "{h} missing");
    }
    let o = xaudit(&["docs", "atack-top-k"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("did you mean `attack-top-k`"));
    let o = xaudit(&["list"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for w in [
        "XA001",
        "XA203",
        "robustness",
        "sanity",
        "salience",
        "full",
        "grad-cam",
    ] {
        assert!(text.contains(w), "{w} missing from list");
    }
}

#[test]
fn check_on_the_faces_model_with_grad_cam() {
    let t = tempfile::tempdir().unwrap();
    let suite = write(t.path(), "s.toml", "name = \"t\"\n[[audit]]\nid = \"cascading-randomization\"\nthreshold = 0.5\n[[audit]]\nid = \"salience-entropy\"\nthreshold = 0.99\n");
    let o = xaudit_in(
        t.path(),
        &[
            "check",
            &p("models/onet_face.pt"),
            "--suite",
            &suite,
            "--config",
            &p("faces.toml"),
            "--data",
            &p("data/faces"),
            "--max-images",
            "200",
            "--method",
            "grad-cam",
            "--method",
            "saliency",
            "--format",
            "json",
        ],
    );
    assert!(o.status.code().unwrap() <= 1, "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let audits = r["audits"].as_array().unwrap();
    assert_eq!(audits.len(), 4);
    for a in audits {
        assert!(a["n"].as_u64().unwrap() >= 30, "{a}");
        assert_ne!(a["verdict"], "error");
    }
}

#[test]
fn the_new_methods_run_through_check_with_their_configured_parameters() {
    let t = tempfile::tempdir().unwrap();
    let module = t.path().join("lcam.safetensors");
    let o = xaudit(&[
        "train",
        "l-cam",
        &p("models/digits_cnn_s0.pt"),
        "--data",
        &p("data/digits_demo.csv"),
        "--config",
        &p("digits.toml"),
        "--variant",
        "fm",
        "--epochs",
        "3",
        "--lr",
        "0.05",
        "--out",
        module.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Cheap settings: the point is that each method is audited with exactly these.
    let cfg = write(
        t.path(),
        "x.toml",
        &digits_config(&format!(
            "\n[methods.sobol]\ndesigns = 8\ngrid = 4\n\
             [methods.extremal-perturbation]\niterations = 10\n\
             [methods.meaningful-perturbation]\niterations = 10\n\
             [methods.l-cam-fm]\nweights = {:?}\n\
             [methods.grad-cam-plus-plus]\n[methods.score-cam]\n[methods.sidu]\n",
            module.display().to_string()
        )),
    );
    let suite = write(
        t.path(),
        "s.toml",
        "name = \"t\"\n[[audit]]\nid = \"random-logit\"\nthreshold = 0.5\n",
    );
    let out = t.path().join("out");
    let o = check(
        t.path(),
        &suite,
        &cfg,
        &["--out-dir", out.to_str().unwrap()],
    );
    assert_ne!(o.status.code(), Some(2), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let audits = r["audits"].as_array().unwrap();
    for m in [
        "sobol",
        "extremal-perturbation",
        "meaningful-perturbation",
        "l-cam-fm",
        "grad-cam-plus-plus",
        "score-cam",
        "sidu",
    ] {
        let a = audits
            .iter()
            .find(|a| a["method"] == m)
            .unwrap_or_else(|| panic!("{m} not audited"));
        let v = a["verdict"].as_str().unwrap();
        assert!(
            ["pass", "fail", "inconclusive"].contains(&v),
            "{m}: {v}: {}",
            a["reason"]
        );
        // Sequential: 30 images when the first look decided it, else all 40.
        let used = a["sequential"]["images"].as_u64().unwrap();
        assert!(used == 30 || used == 40, "{m}: {}", a["sequential"]);
        assert_eq!(
            a["per_sample"].as_array().unwrap().len() as u64,
            used,
            "{m}"
        );
    }
    // The report records every method as audited.
    assert_eq!(r["methods"]["sobol"]["designs"], 8, "{}", r["methods"]);
    assert_eq!(r["methods"]["extremal-perturbation"]["iterations"], 10);
    assert!(r["methods"]["l-cam-fm"]["weights"]
        .as_str()
        .unwrap()
        .ends_with("lcam.safetensors"));
}
