//! The check pipeline runs one way and every output agrees: seeds are keyed by what they are
//! for (adding an audit changes no other audit's numbers), every format prints the same
//! verdicts, statistics and p-values, method parameters from the configuration reach every
//! audit and the report, and every suite and configuration value is checked at load.
mod common;
use common::{digits_pre, fixture, load};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use xaudit::attribution::MethodKind;
use xaudit::audit::RunCtx;
use xaudit::check::{self, Outcome, Plan};
use xaudit::config::Config;
use xaudit::data::Dataset;
use xaudit::report::{fmt, Format, ModelInfo, Provenance, Report, ReportInputs};
use xaudit::suite::Suite;

use common::suite;

fn run(s: &Suite, cfg: &Config, methods: &[MethodKind], n: usize) -> (Plan, Outcome) {
    let m = load("models/digits_cnn_s0.pt", [1, 28, 28]);
    let mut data = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    data.items = data.items.iter().step_by(9).take(n).cloned().collect();
    let pre = digits_pre();
    let tick = |_: usize| {};
    let ctx = RunCtx::new(&m, &data, &pre, 7, 40, 256, &tick);
    let plan = Plan::new(s, cfg, methods, 7, "2026-01-01").unwrap();
    let o = check::run(&ctx, &plan, |_, _| {}).unwrap();
    (plan, o)
}

const SENS: &str =
    "[[audit]]\nid = \"sensitivity-max\"\nthreshold = 0.5\nparams = { samples = 4 }\n";

#[test]
fn adding_an_audit_changes_no_other_audits_numbers() {
    let a = suite(&format!("name = \"t\"\n{SENS}"));
    let b = suite(&format!(
        "name = \"t\"\n[[audit]]\nid = \"random-logit\"\nthreshold = 0.5\n{SENS}"
    ));
    let (_, oa) = run(&a, &Config::default(), &[MethodKind::Saliency], 36);
    let (_, ob) = run(&b, &Config::default(), &[MethodKind::Saliency], 36);
    let pick = |o: &Outcome| {
        let r = o.audits.iter().find(|r| r.code == "XA004").unwrap().clone();
        // Values, claim and the bootstrap interval (seeded); the adjusted p and level depend
        // on the family, which did grow.
        serde_json::to_string(&(&r.per_sample, &r.claim, &r.descriptive)).unwrap()
    };
    assert_eq!(pick(&oa), pick(&ob));
}

fn report_of(plan: &Plan, o: Outcome) -> Report {
    check::report(
        plan,
        o,
        ReportInputs {
            model: ModelInfo {
                path: "m.pt".into(),
                sha256: "0".repeat(64),
                num_classes: 10,
                embedding: None,
                frames: None,
                num_parameters: 1,
            },
            provenance: Provenance {
                xaudit_version: "t".into(),
                libtorch_version: "t".into(),
                device: "cpu".into(),
                threads: 1,
                command_line: vec!["xaudit".into()],
                suite: "t".into(),
                suite_origin: "t".into(),
                suite_sha256: "0".into(),
                config: None,
                config_sha256: None,
                data: "d".into(),
                data_count: 40,
                data_sha256: "0".into(),
                random_label_model: None,
                out_of_set: None,
                started: String::new(),
                finished: String::new(),
                internal_batch: None,
            },
            exit_code: 1,
            warnings: Vec::new(),
        },
    )
}

#[test]
fn every_format_agrees_on_every_verdict_statistic_and_p_value() {
    let s = suite(
        r#"name = "t"
[[audit]]
id = "cascading-randomization"
threshold = 0.5
params = { mode = "full-only" }
[[audit]]
id = "salience-entropy"
threshold = 0.9
[[audit]]
id = "out-of-set"
threshold = 0.3
params = { kinds = ["gaussian-noise", "patch-shuffle"] }
[[audit]]
id = "equivariance"
threshold = 0.7
quantile = 0.8
params = { transforms = ["hflip"] }
"#,
    );
    let (plan, o) = run(
        &s,
        &Config::default(),
        &[MethodKind::Saliency, MethodKind::Edge],
        40,
    );
    let r = report_of(&plan, o);
    let decided: Vec<_> = r.audits.iter().filter(|a| a.claim.is_some()).collect();
    assert!(decided.len() >= 8);
    let verdicts: std::collections::BTreeSet<&str> =
        decided.iter().map(|a| a.verdict.label()).collect();
    assert!(verdicts.len() >= 2, "want several verdicts: {verdicts:?}");

    let json: serde_json::Value = serde_json::from_str(&Format::Json.render(&r)).unwrap();
    let sarif: serde_json::Value = serde_json::from_str(&Format::Sarif.render(&r)).unwrap();
    let junit = Format::Junit.render(&r);
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let md = Format::Markdown.render(&r);
    let html = Format::Html.render(&r);
    let table = Format::Table.render(&r);
    let gh = Format::Github.render(&r);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    for (i, a) in r.audits.iter().enumerate() {
        let p = a.decisive_p();
        // JSON: the model itself.
        let j = &json["audits"][i];
        assert_eq!(j["verdict"], serde_json::to_value(a.verdict).unwrap());
        assert_eq!(j["p_pass_adjusted"].as_f64(), a.p_pass_adjusted);
        assert_eq!(j["bound_low"].as_f64(), a.bound_low);
        // SARIF: same order, the decisive adjusted p (not the raw or the PASS claim's).
        let sp = &results[i]["properties"];
        assert_eq!(sp["verdict"], a.verdict.label());
        assert_eq!(sp["p_adjusted"].as_f64(), p);
        assert_eq!(sp["bound_low"].as_f64(), a.bound_low);
        assert_eq!(sp["bound_high"].as_f64(), a.bound_high);
        assert_eq!(
            sp["estimate"].as_f64(),
            a.claim.as_ref().and_then(|c| c.estimate)
        );
        let text = results[i]["message"]["text"].as_str().unwrap();
        assert!(text.contains(&a.stats_line()), "SARIF: {text}");
        // JUnit: the test case's properties.
        let case = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .find(|n| {
                n.attribute("name").is_some_and(|x| {
                    x.starts_with(&format!("{} {}", a.code, a.name))
                        && x.ends_with(&format!("/ {}", a.method))
                        && (a.variant.is_empty() || x.contains(&format!("[{}]", a.variant)))
                })
            })
            .unwrap_or_else(|| panic!("JUnit has no case for {} {}", a.code, a.method));
        let prop = |k: &str| {
            case.descendants()
                .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(k))
                .and_then(|n| n.attribute("value"))
                .unwrap_or("?")
                .to_string()
        };
        assert_eq!(prop("verdict"), a.verdict.label());
        assert_eq!(prop("p_adjusted"), fmt::p(p));
        assert_eq!(prop("bound_low"), fmt::num(a.bound_low));
        assert_eq!(prop("bound_high"), fmt::num(a.bound_high));
        assert_eq!(
            prop("estimate"),
            fmt::num(a.claim.as_ref().and_then(|c| c.estimate))
        );
        if a.claim.is_none() {
            continue;
        }
        // Markdown, HTML and the terminal table print the same texts.
        let row = md
            .lines()
            .find(|l| {
                l.contains(&format!(" {} ", a.code))
                    && l.contains(&format!("| {} |", a.method))
                    && (a.variant.is_empty() || l.contains(&format!("\\[{}\\]", a.variant)))
            })
            .unwrap_or_else(|| panic!("markdown row for {} {}", a.code, a.method));
        for piece in [
            a.verdict_text(),
            a.bound_text(),
            fmt::p(p),
            fmt::num(a.claim.as_ref().and_then(|c| c.estimate)),
        ] {
            assert!(row.contains(&piece), "markdown row lacks {piece}: {row}");
            assert!(html.contains(&piece), "HTML lacks {piece}");
        }
        assert!(table.contains(&fmt::p(p)), "table lacks {}", fmt::p(p));
        assert!(
            table.contains(&a.bound_text()),
            "table lacks {}",
            a.bound_text()
        );
        if a.verdict == xaudit::gate::Verdict::Fail {
            // Workflow commands percent-encode `%` (the runner decodes it).
            let line = a.stats_line().replace('%', "%25");
            assert!(gh.contains(&line), "GitHub: {line}");
        }
    }
    assert!(
        html.contains("so the probability of any wrong PASS or FAIL in this run is at most 0.05")
    );
    assert!(md.contains("One error budget"));
}

#[test]
fn method_parameters_from_the_configuration_reach_every_audit_and_the_report() {
    let cfg = Config::parse(
        "[methods.integrated-gradients]\nsteps = 8\nbaseline = -1.0\n",
        "xaudit.toml",
    )
    .unwrap();
    let s = suite(&format!(
        "name = \"t\"\nmethods = [\"saliency\"]\n{SENS}[[audit]]\nid = \"salience-entropy\"\nthreshold = 0.99\n"
    ));
    let (plan, o) = run(&s, &cfg, &[], 6);
    // The table form of `methods` also chooses the methods audited.
    assert_eq!(plan.methods, vec![MethodKind::IntegratedGradients]);
    let sens = o.audits.iter().find(|a| a.code == "XA004").unwrap();
    // 9 path points (8 steps, trapezoid) per explanation: 6 clean + 6 x 4 perturbed.
    assert_eq!(sens.summary["model_backward_images"], 9 * (6 + 6 * 4));
    let r = report_of(&plan, o);
    let ig = &r.methods["integrated-gradients"];
    assert_eq!(ig["steps"], 8);
    assert_eq!(ig["baseline"], -1.0);
    assert_eq!(ig["score"], "softmax");
}

fn xaudit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CI", "1")
        .output()
        .unwrap()
}

#[test]
fn bad_values_are_refused_when_the_files_load() {
    // Ranges of audit parameters: at suite load, before any model work.
    for (params, what) in [
        (
            "id = \"sensitivity-max\"\nthreshold = 0.5\nparams = { radius = 300.0 }",
            "radius",
        ),
        (
            "id = \"equivariance\"\nthreshold = 0.7\nparams = { transforms = [\"hflp\"] }",
            "hflip",
        ),
        (
            "id = \"out-of-set\"\nthreshold = 0.3\nparams = { kinds = [\"noise\"] }",
            "out-of-set kind",
        ),
        (
            "id = \"attack-top-k\"\nthreshold = 0.5\nparams = { top-k-fraction = 2.0 }",
            "top-k-fraction",
        ),
        (
            "id = \"fuzz\"\nthreshold = 0.1\nparams = { cases = 0 }",
            "cases",
        ),
        (
            "id = \"cascading-randomization\"\nthreshold = 0.5\nparams = { percentile = 0.0 }",
            "percentile",
        ),
        (
            "id = \"attack-top-k\"\nthreshold = 0.5\nquantile = 1.5",
            "quantile",
        ),
        (
            "id = \"out-of-set\"\nthreshold = 0.3\ntest = \"wilcoxon\"",
            "do not apply",
        ),
        (
            "id = \"random-logit\"\nthreshold = 0.5\ntest = \"wilcoxon\"\nquantile = 0.9",
            "wilcoxon",
        ),
        (
            "id = \"out-of-set\"\nthreshold = 0.3\ndirection = \"different\"",
            "different",
        ),
    ] {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        write!(f, "name = \"t\"\n[[audit]]\n{params}\n").unwrap();
        let e = match Suite::load(f.path().to_str().unwrap()) {
            Ok(_) => panic!("accepted: {params}"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(what), "{what}: {e}");
    }
    // Method parameters in xaudit.toml: exit 2 naming the file and the line, nothing written.
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("x.toml");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(fixture("digits.toml")).unwrap()
            + "\n[methods.smoothgrad]\nsamples = 10\nnoise-level = 3.0\n",
    )
    .unwrap();
    let out = t.path().join("out");
    let o = xaudit(&[
        "check",
        "fixtures/models/digits_cnn_s0.pt",
        "--suite",
        "sanity",
        "--config",
        cfg.to_str().unwrap(),
        "--data",
        "fixtures/data/digits/test",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let line = std::fs::read_to_string(&cfg)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("noise-level"))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("line {line}")), "{err}");
    assert!(err.contains("noise-level") && err.contains("fix:"), "{err}");
    assert!(!Path::new(&out).exists());
    // A key that belongs to another method.
    std::fs::write(&cfg, "[methods.saliency]\nsteps = 4\n").unwrap();
    let o = xaudit(&[
        "check",
        "fixtures/models/digits_cnn_s0.pt",
        "--suite",
        "sanity",
        "--config",
        cfg.to_str().unwrap(),
        "--data",
        "fixtures/data/digits/test",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 2") && err.contains("no parameter `steps`"),
        "{err}"
    );
}
