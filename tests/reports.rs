//! Reports: one canonical report.json, every other format a pure rendering of it; schemas,
//! shapes, self-containment and escaping of hostile user text.
mod common;
use common::fixture;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use xaudit::report::{Format, Report};

fn xaudit_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args(args)
        .current_dir(dir)
        .env("CI", "1")
        .output()
        .expect("run xaudit")
}

fn p(rel: &str) -> String {
    fixture(rel).to_string_lossy().into_owned()
}

const SUITE: &str = r#"name = "evidence"
[[audit]]
id = "cascading-randomization"
threshold = 0.5
[[audit]]
id = "equivariance"
threshold = 0.7
params = { transforms = ["hflip", "rotate"], rotate-degrees = [5.0, 10.0] }
[[audit]]
id = "attack-top-k"
threshold = 0.5
params = { iterations = 2, zo-directions = 1 }
[[audit]]
id = "data-randomization"
threshold = 0.5
"#;

/// One `xaudit check` run with every file format, shared by the tests.
fn run() -> &'static (tempfile::TempDir, PathBuf, i32) {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf, i32)> = OnceLock::new();
    RUN.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let suite = t.path().join("suite.toml");
        std::fs::write(&suite, SUITE).unwrap();
        let out = t.path().join("out");
        let o = xaudit_in(
            t.path(),
            &[
                "check",
                &p("models/digits_cnn_s0.pt"),
                "--suite",
                suite.to_str().unwrap(),
                "--config",
                &p("digits.toml"),
                "--data",
                &p("data/digits/test"),
                "--max-images",
                "32",
                "--method",
                "saliency",
                "--method",
                "edge",
                "--out-dir",
                out.to_str().unwrap(),
            ],
        );
        let code = o.status.code().unwrap();
        assert!(code <= 1, "{}", String::from_utf8_lossy(&o.stderr));
        (t, out, code)
    })
}

fn read(name: &str) -> String {
    std::fs::read_to_string(run().1.join(name)).unwrap()
}

fn report() -> Report {
    serde_json::from_str(&read("report.json")).unwrap()
}

fn validate(schema: &Value, doc: &Value, what: &str) {
    let v = jsonschema::validator_for(schema).unwrap();
    let errs: Vec<String> = v
        .iter_errors(doc)
        .take(5)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errs.is_empty(),
        "{what} does not match its schema: {errs:#?}"
    );
}

#[test]
fn schema_file_is_current_and_reports_validate() {
    let committed = std::fs::read_to_string(fixture("../docs/report.schema.json")).unwrap();
    assert_eq!(
        committed,
        xaudit::report::schema(),
        "docs/report.schema.json is stale: run `target/release/xaudit schema > docs/report.schema.json`"
    );
    let schema: Value = serde_json::from_str(&committed).unwrap();
    let doc: Value = serde_json::from_str(&read("report.json")).unwrap();
    validate(&schema, &doc, "report.json");
    assert_eq!(doc["schema_version"], xaudit::report::SCHEMA_VERSION);
    // Provenance is complete.
    let pr = &doc["provenance"];
    for k in [
        "xaudit_version",
        "libtorch_version",
        "device",
        "threads",
        "command_line",
        "suite_sha256",
        "config_sha256",
        "data_count",
        "data_sha256",
        "started",
        "finished",
    ] {
        assert!(!pr[k].is_null(), "provenance lacks {k}");
    }
    assert_eq!(pr["data_count"], 32);
    assert_eq!(doc["model"]["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn stored_report_rerenders_identically() {
    let dir = &run().1;
    for (fmt, file) in [
        ("html", "report.html"),
        ("junit", "junit.xml"),
        ("sarif", "report.sarif"),
        ("markdown", "report.md"),
        ("json", "report.json"),
    ] {
        let o = xaudit_in(dir, &["report", "report.json", "--format", fmt]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim_end(),
            read(file).trim_end(),
            "{fmt} is not a pure rendering"
        );
    }
    let o = xaudit_in(dir, &["report", "missing.json"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/sarif-schema-2.1.0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&read("report.sarif")).unwrap();
    validate(&schema, &doc, "report.sarif");
    let run0 = &doc["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r["id"] == "XA101"
        && r["help"]["text"]
            .as_str()
            .unwrap()
            .contains("## What it checks")));
    let results = run0["results"].as_array().unwrap();
    let r = report();
    assert_eq!(results.len(), r.audits.len());
    assert!(results
        .iter()
        .any(|x| x["kind"] == "pass" && x["level"] == "none"));
    assert!(results.iter().any(|x| x["kind"] == "fail"
        && x["level"] == "error"
        && x["message"]["text"].as_str().unwrap().contains("threshold")));
    assert!(
        results.iter().any(|x| x["kind"] == "notApplicable"),
        "data-randomization without a model is not applicable"
    );
}

#[test]
fn junit_has_the_usual_shape() {
    let xml = read("junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    let s = suites[0];
    assert_eq!(s.attribute("name"), Some("evidence"));
    let cases: Vec<_> = s
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let r = report();
    assert_eq!(cases.len(), r.audits.len());
    let failures = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .count();
    let fails = r
        .audits
        .iter()
        .filter(|a| {
            a.gated
                && (a.verdict == xaudit::gate::Verdict::Fail
                    || (a.verdict == xaudit::gate::Verdict::Inconclusive && r.fail_on_inconclusive))
        })
        .count();
    assert_eq!(failures, fails);
    assert_eq!(
        s.attribute("failures").unwrap().parse::<usize>().unwrap(),
        fails
    );
    assert!(
        cases
            .iter()
            .any(|c| c.children().any(|n| n.has_tag_name("skipped"))),
        "not-run audit is skipped"
    );
    let names: std::collections::HashSet<_> = cases
        .iter()
        .map(|c| (c.attribute("classname"), c.attribute("name")))
        .collect();
    assert_eq!(names.len(), cases.len(), "classname+name must be unique");
    assert!(s
        .descendants()
        .any(|n| n.has_tag_name("property") && n.attribute("name") == Some("model_sha256")));
}

#[test]
fn html_is_self_contained_and_complete() {
    let html = read("report.html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.to_lowercase().contains("<script"), "no JavaScript");
    for bad in ["src=\"http", "href=\"http", "url(http", "@import", "<link"] {
        assert!(!html.contains(bad), "external reference `{bad}`");
    }
    for section in [
        "1. Summary",
        "2. Audits",
        "3. Audits not run or ignored",
        "4. Limitations",
        "5. Where this evidence fits",
        "6. Reproducibility",
        "7. Sign-off",
        "Art. 9(6)",
        "Annex IV 2(g)",
        "Art. 13(3)(b)",
        "Art. 15",
        "Prepared by",
        "Reviewed by",
        "What it checks",
        "Why it matters",
        "How it is measured",
    ] {
        assert!(html.contains(section), "missing `{section}`");
    }
    // Charts with axes and labels, and example pictures as data URIs.
    assert!(html.matches("<svg").count() >= 4);
    assert!(html.contains("per image") && html.contains("<text"));
    assert!(html.contains("src=\"data:image/png;base64,"));
    assert!(
        html.contains("randomised up to layer"),
        "cascading curve present"
    );
    assert!(html.contains("magnitude"), "equivariance curve present");
    let r = report();
    assert!(
        r.audits
            .iter()
            .filter(|a| a.n > 0)
            .all(|a| !a.examples.is_empty()),
        "every evaluated audit has example images"
    );
    assert!(
        html.contains("not a claim of compliance")
            || html.contains("it is not a claim of compliance")
    );
}

#[test]
fn markdown_and_github_annotations() {
    let md = read("report.md");
    let r = report();
    assert!(md.starts_with("## xaudit evidence: gate"));
    // Failures first.
    let first_row = md
        .lines()
        .find(|l| l.starts_with("| ") && !l.starts_with("| verdict"))
        .unwrap();
    if r.counts.fail > 0 {
        assert!(first_row.starts_with("| FAIL"), "{first_row}");
    }
    // Each attack says how it was found, what it cost and how it compares with random-sign.
    let attack = r
        .audits
        .iter()
        .find(|a| a.code == "XA002" && a.method == "saliency")
        .unwrap()
        .attack_text()
        .expect("an attack describes itself");
    assert!(attack.starts_with("estimator zeroth-order ("), "{attack}");
    assert!(attack.contains("model passes per image"), "{attack}");
    assert!(attack.contains("stronger than random-sign on"), "{attack}");
    assert!(md.contains("**Attacks**") && md.contains("XA002 / saliency: estimator zeroth-order"));
    let html = read("report.html");
    assert!(html.contains("<th>Attack</th>"));
    let gh = Format::Github.render(&r);
    assert!(gh.lines().all(|l| l.starts_with("::")), "{gh}");
    assert_eq!(
        gh.lines().filter(|l| l.starts_with("::error")).count(),
        r.audits
            .iter()
            .filter(|a| a.gated
                && matches!(
                    a.verdict,
                    xaudit::gate::Verdict::Fail
                        | xaudit::gate::Verdict::Error
                        | xaudit::gate::Verdict::Inconclusive
                ))
            .count()
    );
}

const HOSTILE: &str = "<script>alert(\"x&y\")</script> '|*_`[a](b)\n%0A::error::x,y: ü🦀\u{1b}[31m";

/// Replaces every user-facing string of the report with hostile text.
fn poison(v: &mut Value, key: &str) {
    match v {
        Value::String(s)
            if !["verdict", "direction", "png", "schema_version", "role"].contains(&key) =>
        {
            *s = format!("{HOSTILE}{s}");
        }
        Value::Array(a) => a.iter_mut().for_each(|x| poison(x, key)),
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                let mut x = o.remove(&k).unwrap();
                poison(&mut x, &k);
                // Keys of free-form maps (summary, secondary, excluded reasons) are user-facing too.
                let nk = if ["summary", "secondary", "excluded_reasons"].contains(&key) {
                    format!("{HOSTILE}{k}")
                } else {
                    k
                };
                o.insert(nk, x);
            }
        }
        _ => {}
    }
}

#[test]
fn hostile_strings_are_escaped_in_every_format() {
    let mut doc: Value = serde_json::from_str(&read("report.json")).unwrap();
    poison(&mut doc, "");
    let r: Report = serde_json::from_value(doc).unwrap();
    assert!(r.model.path.contains("<script>"));

    let html = Format::Html.render(&r);
    assert!(!html.contains("<script"), "raw <script> in HTML");
    assert!(html.contains("&lt;script&gt;"));

    let xml = Format::Junit.render(&r);
    let doc = roxmltree::Document::parse(&xml).expect("JUnit stays well-formed");
    assert!(
        doc.descendants().any(|n| n
            .attribute("value")
            .is_some_and(|v| v.contains("<script>alert(\"x&y\")"))),
        "text round-trips through XML escaping"
    );

    let sarif: Value = serde_json::from_str(&Format::Sarif.render(&r)).expect("SARIF stays JSON");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/sarif-schema-2.1.0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    validate(&schema, &sarif, "hostile SARIF");

    let json: Value = serde_json::from_str(&Format::Json.render(&r)).expect("JSON stays JSON");
    assert!(json["model"]["path"]
        .as_str()
        .unwrap()
        .starts_with("<script>"));

    let md = Format::Markdown.render(&r);
    assert!(!md.contains("<script"), "raw HTML in Markdown");
    for line in md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("|---"))
    {
        let cells = line.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 10, "a hostile `|` broke the table: {line}");
    }

    let gh = Format::Github.render(&r);
    for line in gh.lines() {
        assert!(
            line.starts_with("::error ")
                || line.starts_with("::warning ")
                || line.starts_with("::notice "),
            "injected command: {line}"
        );
        // The properties (before the message separator) hold no raw `:` and one raw `,`.
        let props = line[2..].split_once("::").map(|(p, _)| p).unwrap_or("");
        assert!(!props.contains(':'), "unescaped `:` in properties: {line}");
        assert!(
            props.matches(',').count() <= 1,
            "unescaped `,` in properties: {line}"
        );
    }

    let table = Format::Table.render(&r);
    assert!(table.contains("gate"));
    assert!(
        !table.contains('\u{1b}'),
        "ANSI escape reached the terminal"
    );
}

#[test]
fn formats_from_config_and_flags() {
    let t = tempfile::tempdir().unwrap();
    let suite = t.path().join("s.toml");
    std::fs::write(
        &suite,
        "name = \"t\"\n[[audit]]\nid = \"salience-entropy\"\nthreshold = 0.99\n",
    )
    .unwrap();
    let cfg = t.path().join("x.toml");
    let text = std::fs::read_to_string(fixture("digits.toml"))
        .unwrap()
        .replace(
            "[preprocess]",
            "formats = [\"json\", \"junit\"]\nout-dir = \"cfg-out\"\n\n[preprocess]",
        );
    std::fs::write(&cfg, text).unwrap();
    let base = |extra: &[&str]| {
        let mut a = vec![
            "check".to_string(),
            p("models/digits_cnn_s0.pt"),
            "--suite".into(),
            suite.to_string_lossy().into(),
            "--config".into(),
            cfg.to_string_lossy().into(),
            "--data".into(),
            p("data/digits/test"),
            "--max-images".into(),
            "30".into(),
            "--method".into(),
            "saliency".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = a.iter().map(String::as_str).collect();
        xaudit_in(t.path(), &argv)
    };
    let o = base(&["--format", "github"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("::notice"));
    let names = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(t.path().join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("cfg-out"), vec!["junit.xml", "report.json"]);
    let o = base(&[
        "--out-dir",
        "flag-out",
        "--write",
        "html",
        "--write",
        "sarif",
        "--format",
        "markdown",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("## xaudit"));
    assert_eq!(names("flag-out"), vec!["report.html", "report.sarif"]);
}
