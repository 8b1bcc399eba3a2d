//! docs/ci/: the GitHub Actions workflow and the GitLab CI job parse as YAML, have the structure
//! the recipes promise (JUnit, SARIF, step summary, artifacts, baseline), keep going past a
//! failed gate and fail at the end on exit 1 and 2 alike, and every `xaudit` command in their
//! shell blocks parses with the binary's own command-line definition (src/cli/, included here).
//! docs/scale/: the Slurm job array and the Kubernetes Indexed Job agree with their `--shard
//! I/N` and merge every partial they write, and their commands parse the same way.

// The binary's CLI module, compiled into this test so commands are checked against the real
// clap definition; `run` and the sub-command bodies are unused here.
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "../src/cli/mod.rs"]
mod cli;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

const GITHUB: &str = "docs/ci/github-actions.yml";
const GITLAB: &str = "docs/ci/gitlab-ci.yml";

type Env = BTreeMap<String, String>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One YAML document, or the parser's message naming `what`.
fn load_yaml(text: &str, what: &str) -> Result<Yaml, String> {
    let mut docs =
        YamlLoader::load_from_str(text).map_err(|e| format!("{what}: invalid YAML: {e}"))?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        n => Err(format!("{what}: expected one YAML document, found {n}")),
    }
}

fn load(rel: &str) -> Yaml {
    load_yaml(&read(rel), rel).unwrap_or_else(|e| panic!("{e}"))
}

/// A scalar as text (numbers and booleans as YAML wrote them); None for anything else.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}

fn text(y: &Yaml) -> String {
    scalar(y).unwrap_or_default()
}

fn entries(y: &Yaml) -> Vec<(String, &Yaml)> {
    y.as_hash()
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((scalar(k)?, v)))
                .collect()
        })
        .unwrap_or_default()
}

/// Strings of a GitLab `script`-like value: one string or a (nested) list of them.
fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().flat_map(strings).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Variables and expressions

/// A placeholder that names what it stands for and survives shell splitting.
fn placeholder(what: &str) -> String {
    let clean: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("@{clean}@")
}

/// GitHub `${{ expr }}`: `env.NAME` takes the value of NAME, anything else a placeholder.
fn github_expressions(s: &str, env: &Env) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = after[..end].trim();
        let value = expr
            .strip_prefix("env.")
            .and_then(|n| env.get(n).cloned())
            .unwrap_or_else(|| placeholder(expr));
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Shell `$NAME`, `${NAME}` and `${NAME:-word}`: known variables take their value, the rest a
/// placeholder (special parameters `$?`, `$1`... too); `$(` and `$((` are left alone.
fn shell_vars(s: &str, env: &Env) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' || i + 1 == chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let next = chars[i + 1];
        if next == '{' {
            let Some(len) = chars[i + 2..].iter().position(|&c| c == '}') else {
                out.push('$');
                i += 1;
                continue;
            };
            let inner: String = chars[i + 2..i + 2 + len].iter().collect();
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (inner.clone(), None),
            };
            let value = match (env.get(&name), default) {
                (Some(v), _) if !v.is_empty() => v.clone(),
                (_, Some(d)) => shell_vars(&d, env),
                (Some(v), None) => v.clone(),
                (None, None) => placeholder(&name),
            };
            out.push_str(&value);
            i += 3 + len;
        } else if next.is_ascii_alphabetic() || next == '_' {
            let len = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            let name: String = chars[i + 1..i + 1 + len].iter().collect();
            out.push_str(
                &env.get(&name)
                    .cloned()
                    .unwrap_or_else(|| placeholder(&name)),
            );
            i += 1 + len;
        } else if next.is_ascii_digit() || "?#@*!$-".contains(next) {
            out.push_str(&placeholder(&next.to_string()));
            i += 2;
        } else {
            out.push('$');
            i += 1;
        }
    }
    out
}

/// Resolves a variables map in order: each value may use the ones before it (and `${{ }}`).
fn resolve_env(y: &Yaml, base: &Env) -> Env {
    let mut env = base.clone();
    for (k, v) in entries(y) {
        // GitLab also allows `NAME: { value: ..., description: ... }`.
        let raw = scalar(v).unwrap_or_else(|| text(&v["value"]));
        let value = shell_vars(&github_expressions(&raw, &env), &env);
        env.insert(k, value);
    }
    env
}

// ---------------------------------------------------------------------------------------------
// Shell: logical lines, simple commands, words

/// Lines of a script with backslash-newline continuations joined.
fn logical_lines(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in script.lines() {
        let t = line.trim_end();
        match t.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// Splits a shell line at `;`, `&&`, `||`, `|` and `&` outside quotes and drops a `#`
/// comment; the `&` of `2>&1` stays with its redirection.
fn simple_commands(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if single {
            single = c != '\'';
        } else if double {
            if c == '\\' && i + 1 < chars.len() {
                cur.push(c);
                cur.push(chars[i + 1]);
                i += 2;
                continue;
            }
            double = c != '"';
        } else {
            match c {
                '\\' if i + 1 < chars.len() => {
                    cur.push(c);
                    cur.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                '\'' => single = true,
                '"' => double = true,
                '#' if cur.is_empty() || cur.ends_with(char::is_whitespace) => break,
                '&' if cur.ends_with('>') || cur.ends_with('<') => {}
                ';' | '&' | '|' => {
                    out.push(std::mem::take(&mut cur));
                    if chars.get(i + 1) == Some(&c) {
                        i += 1;
                    }
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        cur.push(c);
        i += 1;
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// Whether a word is a redirection, and whether it takes the next word as its target.
fn redirection(word: &str) -> Option<bool> {
    let op = word.trim_start_matches(|c: char| c.is_ascii_digit());
    if !(op.starts_with('>') || op.starts_with('<')) {
        return None;
    }
    let target = op.trim_start_matches(['>', '<', '&']);
    Some(target.is_empty() && !op.ends_with('&'))
}

/// The words of a simple command with shell keywords, leading assignments and redirections
/// removed; None when quotes do not balance.
fn command_words(simple: &str) -> Option<Vec<String>> {
    let words = shlex::split(simple)?;
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        if let Some(takes_target) = redirection(&w) {
            skip_next = takes_target;
            continue;
        }
        let leading = out.is_empty();
        let keyword = [
            "if", "then", "else", "elif", "do", "while", "until", "!", "time", "{", "(", "exec",
        ]
        .contains(&w.as_str());
        let assignment = w.split_once('=').is_some_and(|(n, _)| {
            !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if leading && (keyword || assignment) {
            continue;
        }
        out.push(w);
    }
    Some(out)
}

/// An `xaudit` invocation found in a recipe.
#[derive(Debug, Clone)]
struct Invocation {
    file: String,
    place: String,
    /// The logical line as written (continuations joined).
    line: String,
    /// argv after substitution, `xaudit` first.
    args: Vec<String>,
}

impl Invocation {
    fn subcommand(&self) -> &str {
        self.args.get(1).map(String::as_str).unwrap_or("")
    }
    fn has(&self, flag: &str) -> bool {
        self.args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    }
    fn value(&self, flag: &str) -> Option<&str> {
        let eq = format!("{flag}=");
        self.args.iter().enumerate().find_map(|(i, a)| {
            if a == flag {
                self.args.get(i + 1).map(String::as_str)
            } else {
                a.strip_prefix(&eq)
            }
        })
    }
}

/// Every `xaudit` command of a shell script, with variables substituted. A line that names
/// xaudit but cannot be split (unbalanced quotes) is returned as an error.
fn xaudit_commands(
    script: &str,
    env: &Env,
    file: &str,
    place: &str,
) -> (Vec<Invocation>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for line in logical_lines(script) {
        let substituted = shell_vars(&github_expressions(&line, env), env);
        for simple in simple_commands(&substituted) {
            match command_words(&simple) {
                Some(words) => {
                    let is_xaudit = words
                        .first()
                        .is_some_and(|w| w == "xaudit" || w.ends_with("/xaudit"));
                    if is_xaudit {
                        let mut args = words;
                        args[0] = "xaudit".into();
                        found.push(Invocation {
                            file: file.into(),
                            place: place.into(),
                            line: line.split_whitespace().collect::<Vec<_>>().join(" "),
                            args,
                        });
                    }
                }
                None if simple.contains("xaudit") => errors.push(format!(
                    "{file}: {place}: cannot split `{}` into shell words (unbalanced quotes?)",
                    simple.trim()
                )),
                None => {}
            }
        }
    }
    (found, errors)
}

// ---------------------------------------------------------------------------------------------
// The two recipe formats

/// A GitHub Actions step with the environment it runs in.
struct Step<'a> {
    job: String,
    index: usize,
    y: &'a Yaml,
    env: Env,
}

impl Step<'_> {
    fn name(&self) -> String {
        let n = text(&self.y["name"]);
        if !n.is_empty() {
            n
        } else if !text(&self.y["uses"]).is_empty() {
            text(&self.y["uses"])
        } else {
            format!("#{}", self.index + 1)
        }
    }
    fn place(&self) -> String {
        format!("job `{}`, step `{}`", self.job, self.name())
    }
    fn uses(&self) -> String {
        text(&self.y["uses"])
    }
    fn run(&self) -> String {
        text(&self.y["run"])
    }
    fn cond(&self) -> String {
        text(&self.y["if"])
    }
    /// A `with:` input, `${{ }}` resolved.
    fn with(&self, key: &str) -> String {
        github_expressions(&text(&self.y["with"][key]), &self.env)
    }
}

fn github_steps(doc: &Yaml) -> Vec<Step<'_>> {
    let top = resolve_env(&doc["env"], &Env::new());
    let mut out = Vec::new();
    for (job, j) in entries(&doc["jobs"]) {
        let job_env = resolve_env(&j["env"], &top);
        for (index, y) in j["steps"].as_vec().into_iter().flatten().enumerate() {
            let env = resolve_env(&y["env"], &job_env);
            out.push(Step {
                job: job.clone(),
                index,
                y,
                env,
            });
        }
    }
    out
}

fn github_commands(doc: &Yaml) -> (Vec<Invocation>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for step in github_steps(doc) {
        let (f, e) = xaudit_commands(&step.run(), &step.env, GITHUB, &step.place());
        found.extend(f);
        errors.extend(e);
    }
    (found, errors)
}

/// Keys of a .gitlab-ci.yml that are not jobs.
const GITLAB_RESERVED: &[&str] = &[
    "stages",
    "variables",
    "default",
    "include",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
];

fn gitlab_jobs(doc: &Yaml) -> Vec<(String, &Yaml, Env)> {
    let top = resolve_env(&doc["variables"], &Env::new());
    entries(doc)
        .into_iter()
        .filter(|(k, v)| {
            !GITLAB_RESERVED.contains(&k.as_str()) && !k.starts_with('.') && v.is_hash()
        })
        .map(|(k, v)| {
            let env = resolve_env(&v["variables"], &top);
            (k, v, env)
        })
        .collect()
}

fn gitlab_commands(doc: &Yaml) -> (Vec<Invocation>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (name, job, env) in gitlab_jobs(doc) {
        for key in ["before_script", "script", "after_script"] {
            let mut blocks = strings(&job[key]);
            blocks.extend(strings(&doc["default"][key]));
            for block in blocks {
                let place = format!("job `{name}`, {key}");
                let (f, e) = xaudit_commands(&block, &env, GITLAB, &place);
                found.extend(f);
                errors.extend(e);
            }
        }
    }
    (found, errors)
}

// ---------------------------------------------------------------------------------------------
// Validation against the CLI

/// `--suite` takes a built-in suite (which must load) or a suite TOML file (loaded when it is
/// in this repository; a team's own file lives in its repository).
fn check_suite(suite: &str) -> Result<(), String> {
    use xaudit::suite::{Suite, BUILT_IN};
    let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
    if names.contains(&suite) {
        return Suite::load(suite)
            .map(|_| ())
            .map_err(|e| format!("built-in suite `{suite}` does not load: {e:#}"));
    }
    if suite.ends_with(".toml") {
        let here = root().join(suite);
        if here.is_file() {
            return Suite::load(&here.to_string_lossy())
                .map(|_| ())
                .map_err(|e| format!("suite file `{suite}` does not load: {e:#}"));
        }
        return Ok(());
    }
    Err(format!(
        "`--suite {suite}` is neither a built-in suite ({}) nor a suite TOML file",
        names.join(", ")
    ))
}

/// Parses an invocation with the real CLI; the error names the file, the place and the command.
fn validate(c: &Invocation) -> Result<(), String> {
    let context = || format!("{}: {}: `{}`", c.file, c.place, c.line);
    match cli::Cli::try_parse_from(&c.args) {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            return Ok(())
        }
        Err(e) => {
            let msg: Vec<String> = e
                .to_string()
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
            return Err(format!(
                "{}: does not parse: {}",
                context(),
                msg.join(" / ")
            ));
        }
    }
    let matches = cli::Cli::command()
        .try_get_matches_from(&c.args)
        .map_err(|e| format!("{}: {e}", context()))?;
    let mut sub = matches.subcommand();
    while let Some((_, m)) = sub {
        if let Ok(Some(values)) = m.try_get_raw("suite") {
            for v in values {
                check_suite(&v.to_string_lossy()).map_err(|e| format!("{}: {e}", context()))?;
            }
        }
        sub = m.subcommand();
    }
    Ok(())
}

fn validate_all(commands: &[Invocation]) -> Vec<String> {
    commands.iter().filter_map(|c| validate(c).err()).collect()
}

fn report(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// The recipes

#[test]
fn every_xaudit_command_in_the_recipes_parses() {
    let (mut commands, mut problems) = github_commands(&load(GITHUB));
    let (gl, gl_errors) = gitlab_commands(&load(GITLAB));
    commands.extend(gl);
    problems.extend(gl_errors);
    for (file, min) in [(GITHUB, 6), (GITLAB, 5)] {
        let n = commands.iter().filter(|c| c.file == file).count();
        assert!(
            n >= min,
            "{file}: found {n} xaudit commands, expected at least {min}: {commands:#?}"
        );
    }
    problems.extend(validate_all(&commands));
    report(&problems);
}

#[test]
fn github_workflow_has_the_promised_steps() {
    let doc = load(GITHUB);
    let mut problems = Vec::new();
    let mut need = |ok: bool, what: &str| {
        if !ok {
            problems.push(format!("{GITHUB}: {what}"));
        }
    };
    need(!doc["on"].is_badvalue(), "no `on:` triggers");
    need(
        !entries(&doc["on"]).is_empty() || doc["on"].is_array(),
        "`on:` is empty",
    );
    let jobs = entries(&doc["jobs"]);
    need(!jobs.is_empty(), "no jobs");
    for (name, j) in &jobs {
        need(
            !text(&j["runs-on"]).is_empty(),
            &format!("job `{name}` has no runs-on"),
        );
        need(
            j["steps"].as_vec().is_some_and(|s| !s.is_empty()),
            &format!("job `{name}` has no steps"),
        );
    }
    let steps = github_steps(&doc);
    let (commands, _) = github_commands(&doc);

    // Actions pinned by major version (or a full commit SHA).
    for s in steps.iter().filter(|s| !s.uses().is_empty()) {
        let uses = s.uses();
        let pinned = uses.split_once('@').is_some_and(|(_, r)| {
            (r.len() > 1
                && r.starts_with('v')
                && r[1..]
                    .split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
                || (r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit()))
        });
        need(
            pinned,
            &format!("{}: `{uses}` is not pinned to a version", s.place()),
        );
    }

    // The gate: `xaudit check` with --baseline and --out-dir; the out dir is the one published.
    let checks: Vec<&Invocation> = commands
        .iter()
        .filter(|c| c.subcommand() == "check")
        .collect();
    need(!checks.is_empty(), "no `xaudit check`");
    need(
        checks.iter().any(|c| c.has("--baseline")),
        "no `xaudit check --baseline`",
    );
    let out = checks
        .first()
        .and_then(|c| c.value("--out-dir"))
        .unwrap_or("")
        .to_string();
    need(!out.is_empty(), "`xaudit check` without --out-dir");
    for c in &checks {
        need(
            c.value("--out-dir") == Some(out.as_str()),
            &format!("`{}`: another --out-dir", c.line),
        );
    }

    let gate = steps.iter().find(|s| s.run().contains("xaudit check"));
    need(gate.is_some(), "no step runs `xaudit check`");
    if let Some(gate) = gate {
        let id = text(&gate.y["id"]);
        need(
            !id.is_empty(),
            "the gate step has no id (its exit code is a step output)",
        );
        need(
            gate.run().contains("$GITHUB_OUTPUT"),
            "the gate step does not write its exit code to $GITHUB_OUTPUT",
        );
        // Every later step of the job runs whatever the gate said.
        let later: Vec<&Step> = steps
            .iter()
            .filter(|s| s.job == gate.job && s.index > gate.index)
            .collect();
        for s in &later {
            need(
                s.cond().contains("always()") || s.cond().contains("!cancelled()"),
                &format!(
                    "{}: would be skipped when the gate fails (no `if: always()`)",
                    s.place()
                ),
            );
        }
        let last = later.last();
        need(
            last.is_some_and(|s| {
                let all = format!(
                    "{}{}",
                    s.run(),
                    entries(&s.y["env"])
                        .iter()
                        .map(|(_, v)| text(v))
                        .collect::<String>()
                );
                all.contains(&format!("steps.{id}.outputs.")) && s.run().contains("exit 1")
            }),
            "the last step of the gate job does not fail on the gate's exit code",
        );
    }

    // The baseline from the latest release.
    need(
        steps.iter().any(|s| {
            s.run().contains("gh release download")
                && s.run().contains("--pattern report.json")
                && s.env.contains_key("GH_TOKEN")
        }),
        "no `gh release download --pattern report.json` step with GH_TOKEN",
    );
    // Published on release as the next baseline.
    need(
        steps
            .iter()
            .any(|s| s.run().contains("gh release upload") && s.run().contains("report.json")),
        "report.json is not attached to the release (`gh release upload`)",
    );

    // JUnit as a test report.
    const JUNIT_ACTIONS: &[&str] = &[
        "mikepenz/action-junit-report@",
        "dorny/test-reporter@",
        "EnricoMi/publish-unit-test-result-action@",
    ];
    need(
        steps.iter().any(|s| {
            JUNIT_ACTIONS.iter().any(|a| s.uses().starts_with(a))
                && entries(&s.y["with"])
                    .iter()
                    .any(|(k, _)| s.with(k) == format!("{out}/junit.xml"))
        }),
        &format!("no JUnit report step reading {out}/junit.xml"),
    );

    // SARIF to code scanning, with the permission it needs.
    let sarif = steps
        .iter()
        .find(|s| s.uses().starts_with("github/codeql-action/upload-sarif@"));
    need(sarif.is_some(), "no github/codeql-action/upload-sarif step");
    if let Some(s) = sarif {
        need(
            s.with("sarif_file") == format!("{out}/report.sarif"),
            &format!("upload-sarif does not upload {out}/report.sarif"),
        );
        let job_perm = text(&doc["jobs"][s.job.as_str()]["permissions"]["security-events"]);
        let top_perm = text(&doc["permissions"]["security-events"]);
        need(
            job_perm == "write" || (job_perm.is_empty() && top_perm == "write"),
            "no `security-events: write` for the SARIF upload",
        );
    }

    // Markdown to the step summary.
    need(
        steps
            .iter()
            .any(|s| s.run().contains("$GITHUB_STEP_SUMMARY") && s.run().contains("report.md")),
        "report.md is not appended to $GITHUB_STEP_SUMMARY",
    );

    // The HTML and the whole report folder as artifacts.
    let artifacts: Vec<String> = steps
        .iter()
        .filter(|s| s.uses().starts_with("actions/upload-artifact@"))
        .map(|s| s.with("path"))
        .collect();
    need(
        artifacts
            .iter()
            .any(|p| p.contains(&format!("{out}/report.html"))),
        "report.html is not uploaded as an artifact",
    );
    need(
        artifacts.iter().any(|p| p.trim_end_matches('/') == out),
        "the report folder is not uploaded as an artifact",
    );

    // pip install of xaudit, with a pip cache.
    need(
        steps
            .iter()
            .any(|s| s.run().contains("pip install") && s.run().contains("xaudit")),
        "xaudit is not installed with pip",
    );
    need(
        steps.iter().any(|s| {
            (s.uses().starts_with("actions/cache@") && s.with("path").contains("pip"))
                || (s.uses().starts_with("actions/setup-python@") && s.with("cache") == "pip")
        }),
        "no pip cache",
    );
    report(&problems);
}

#[test]
fn gitlab_job_has_the_promised_artifacts() {
    let doc = load(GITLAB);
    let mut problems = Vec::new();
    let mut need = |ok: bool, what: &str| {
        if !ok {
            problems.push(format!("{GITLAB}: {what}"));
        }
    };
    let stages = strings(&doc["stages"]);
    let jobs = gitlab_jobs(&doc);
    let (commands, _) = gitlab_commands(&doc);
    let gate = jobs.iter().find(|(_, j, _)| {
        strings(&j["script"])
            .iter()
            .any(|s| s.contains("xaudit check"))
    });
    let (name, job, env) = gate.expect("no job runs `xaudit check`");
    let stage = text(&job["stage"]);
    need(
        stage.is_empty() || stages.is_empty() || stages.contains(&stage),
        &format!("job `{name}`: stage `{stage}` is not in `stages`"),
    );
    need(
        text(&job["image"]).contains("python") || text(&job["image"]["name"]).contains("python"),
        "the job does not use a python image",
    );
    let all_scripts: Vec<String> = ["before_script", "script"]
        .iter()
        .flat_map(|k| strings(&job[*k]))
        .collect();
    need(
        all_scripts
            .iter()
            .any(|s| s.contains("pip install") && s.contains("xaudit")),
        "xaudit is not installed with pip",
    );
    need(
        text(&job["allow_failure"]) != "true",
        "allow_failure: true would let a failed gate pass",
    );

    let checks: Vec<&Invocation> = commands
        .iter()
        .filter(|c| c.subcommand() == "check")
        .collect();
    need(
        checks.iter().any(|c| c.has("--baseline")),
        "no `xaudit check --baseline`",
    );
    let out = checks
        .first()
        .and_then(|c| c.value("--out-dir"))
        .unwrap_or("")
        .to_string();
    need(!out.is_empty(), "`xaudit check` without --out-dir");
    need(
        env.get("XAUDIT_OUT").is_none_or(|v| *v == out),
        "--out-dir is not $XAUDIT_OUT",
    );

    let artifacts = &job["artifacts"];
    need(
        text(&artifacts["when"]) == "always",
        "artifacts are not kept `when: always`",
    );
    let junit = strings(&artifacts["reports"]["junit"]);
    need(
        junit.iter().any(|p| *p == format!("{out}/junit.xml")),
        &format!("artifacts:reports:junit is not {out}/junit.xml"),
    );
    let paths = strings(&artifacts["paths"]);
    need(
        paths.iter().any(|p| p.trim_end_matches('/') == out),
        &format!("artifacts:paths does not keep {out}/"),
    );
    report(&problems);
}

// ---------------------------------------------------------------------------------------------
// Behaviour of the gate scripts (bash, with a stand-in `xaudit`)

/// A folder with a stand-in `xaudit` that logs its arguments, writes report.json for `check`
/// (into $XAUDIT_OUT) and exits with $FAKE_XAUDIT_EXIT for `check`, 0 otherwise.
fn fake_xaudit() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let script = "#!/bin/sh\n\
        echo \"$*\" >> \"$FAKE_XAUDIT_LOG\"\n\
        if [ \"$1\" = check ]; then\n\
          mkdir -p \"$XAUDIT_OUT\" && echo '{}' > \"$XAUDIT_OUT/report.json\"\n\
          exit \"${FAKE_XAUDIT_EXIT:-0}\"\n\
        fi\n\
        exit 0\n";
    let path = bin.join("xaudit");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

struct Ran {
    code: i32,
    log: String,
    output: String,
}

/// Runs a script with bash `flags` in a fresh folder under `fake`, with `env` and a stand-in xaudit.
fn run_bash(
    fake: &Path,
    flags: &[&str],
    script: &str,
    env: &Env,
    exit: i32,
    baseline: Option<&str>,
) -> Ran {
    let work = fake.join(format!("work-{exit}-{}", baseline.is_some()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    if let Some(b) = baseline {
        let p = work.join(b);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{}").unwrap();
    }
    let log = work.join("xaudit.log");
    let output = work.join("github_output");
    let path = format!(
        "{}:{}",
        fake.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new("bash")
        .args(flags)
        .arg("-c")
        .arg(script)
        .current_dir(&work)
        .env_clear()
        .envs(env)
        .env("PATH", path)
        .env("FAKE_XAUDIT_LOG", &log)
        .env("FAKE_XAUDIT_EXIT", exit.to_string())
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", work.join("summary.md"))
        .output()
        .expect("bash");
    Ran {
        code: status.status.code().unwrap_or(-1),
        log: std::fs::read_to_string(&log).unwrap_or_default(),
        output: std::fs::read_to_string(&output).unwrap_or_default(),
    }
}

/// GitHub: the gate step succeeds whatever xaudit exits with and records the code; the last
/// step fails the job on 1 and 2 (and on a missing code), passes on 0.
#[test]
fn github_gate_records_the_exit_code_and_fails_last() {
    let doc = load(GITHUB);
    let steps = github_steps(&doc);
    let gate = steps
        .iter()
        .find(|s| s.run().contains("xaudit check"))
        .expect("gate step");
    let id = text(&gate.y["id"]);
    let last = steps
        .iter()
        .rfind(|s| s.job == gate.job)
        .expect("last step");
    let fake = fake_xaudit();
    // `shell: bash` runs `bash --noprofile --norc -eo pipefail`.
    let flags = ["--noprofile", "--norc", "-eo", "pipefail"];
    let baseline = format!("{}/report.json", gate.env["BASELINE_DIR"]);
    for code in [0, 1, 2] {
        for with_baseline in [false, true] {
            let b = with_baseline.then_some(baseline.as_str());
            let ran = run_bash(fake.path(), &flags, &gate.run(), &gate.env, code, b);
            assert_eq!(
                ran.code, 0,
                "gate step must not stop the job (xaudit exit {code})"
            );
            assert!(
                ran.output.contains(&format!("exit-code={code}")),
                "exit-code={code} not in $GITHUB_OUTPUT: {:?}",
                ran.output
            );
            assert_eq!(
                ran.log.contains("--baseline"),
                with_baseline,
                "--baseline given iff a baseline exists: {}",
                ran.log
            );
        }
    }
    // The last step reads the code through its env (`${{ steps.ID.outputs.exit-code }}`).
    let code_var = entries(&last.y["env"])
        .into_iter()
        .find(|(_, v)| text(v).contains(&format!("steps.{id}.outputs.exit-code")))
        .map(|(k, _)| k)
        .expect("the last step takes the gate's exit code in its env");
    for (code, want) in [("0", 0), ("1", 1), ("2", 1), ("", 1)] {
        let mut env = last.env.clone();
        env.insert(code_var.clone(), code.into());
        let ran = run_bash(fake.path(), &flags, &last.run(), &env, 0, None);
        assert_eq!(ran.code, want, "last step with gate exit code `{code}`");
    }
}

/// GitLab: the gate script exits with xaudit's code (1 and 2 fail the job), runs the comparison
/// with a baseline, and passes --baseline only when there is one.
#[test]
fn gitlab_gate_exits_with_the_gate_code() {
    let doc = load(GITLAB);
    let jobs = gitlab_jobs(&doc);
    let (_, job, env) = jobs
        .iter()
        .find(|(_, j, _)| {
            strings(&j["script"])
                .iter()
                .any(|s| s.contains("xaudit check"))
        })
        .expect("gate job");
    let script = strings(&job["script"])
        .into_iter()
        .find(|s| s.contains("xaudit check"))
        .unwrap();
    let fake = fake_xaudit();
    // GitLab's bash runs job scripts with errexit and pipefail.
    let flags = ["-eo", "pipefail"];
    for code in [0, 1, 2] {
        for with_baseline in [false, true] {
            let b = with_baseline.then(|| env["BASELINE"].as_str());
            let ran = run_bash(fake.path(), &flags, &script, env, code, b);
            assert_eq!(ran.code, code, "job exit for xaudit exit {code}");
            assert_eq!(ran.log.contains("--baseline"), with_baseline, "{}", ran.log);
            assert_eq!(ran.log.contains("compare"), with_baseline, "{}", ran.log);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Negative controls: the checks above can fail

#[test]
fn validator_rejects_bad_commands() {
    let workflow = r#"
name: bad
on: push
env:
  OUT: out
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - name: Typo in a flag
        run: |
          echo start
          xaudit check model.pt --suite robustness \
            --out-dir "$OUT" \
            --no-such-flag
      - name: Unknown suite
        run: xaudit check model.pt --suite robustnes --out-dir ${{ env.OUT }}
      - name: Unknown sub-command
        run: xaudit chek model.pt || true
      - name: Fine
        run: |
          if [ -f "$OUT/report.json" ]; then xaudit report "$OUT/report.json" --format github 2>&1; fi
          xaudit check model.pt --suite audits/robustness.toml --out-dir "$OUT" >> "$GITHUB_STEP_SUMMARY"
"#;
    let doc = load_yaml(workflow, "bad.yml").expect("valid YAML");
    let (commands, errors) = github_commands(&doc);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(commands.len(), 5, "{commands:#?}");
    let problems = validate_all(&commands);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].contains("step `Typo in a flag`") && problems[0].contains("--no-such-flag"),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].starts_with(GITHUB),
        "names the file: {}",
        problems[0]
    );
    assert!(
        problems[1].contains("robustnes") && problems[1].contains("neither a built-in suite"),
        "{}",
        problems[1]
    );
    assert!(problems[2].contains("chek"), "{}", problems[2]);
    // The continuation lines were joined and the variables substituted.
    assert_eq!(
        commands[0].args,
        [
            "xaudit",
            "check",
            "model.pt",
            "--suite",
            "robustness",
            "--out-dir",
            "out",
            "--no-such-flag"
        ]
    );
    assert_eq!(
        commands[3].args,
        ["xaudit", "report", "out/report.json", "--format", "github"]
    );
    assert_eq!(
        commands[4].args,
        [
            "xaudit",
            "check",
            "model.pt",
            "--suite",
            "audits/robustness.toml",
            "--out-dir",
            "out"
        ]
    );
}

#[test]
fn invalid_yaml_and_unbalanced_quotes_are_reported() {
    for bad in [
        "jobs:\n  gate:\n    steps: [\n      - run: xaudit check m.pt\n",
        "jobs:\n  gate:\n   steps:\n  - run: x\n",
        "key: \"unterminated\n",
    ] {
        assert!(
            load_yaml(bad, "bad.yml").is_err(),
            "accepted invalid YAML:\n{bad}"
        );
    }
    let (found, errors) = xaudit_commands(
        "xaudit check \"m.pt --suite robustness\n",
        &Env::new(),
        "f",
        "p",
    );
    assert!(
        found.is_empty() && errors.len() == 1,
        "{found:?} {errors:?}"
    );
}

#[test]
fn shell_extraction() {
    let env: Env = [
        ("A".to_string(), "a dir".to_string()),
        ("B".to_string(), "b".to_string()),
    ]
    .into();
    let script = "set +e\n\
        FOO=1 xaudit check m.pt --out-dir \"$A\" --seed ${SEED:-7} \\\n  --suite ${B} # comment --bogus\n\
        echo 'xaudit check is not run here' && xaudit list | head\n\
        pip install xaudit\n\
        code=$(some command) ; xaudit report \"${{ env.B }}/r.json\" --format markdown > \"$OUT/x.md\" 2>/dev/null\n";
    let (found, errors) = xaudit_commands(script, &env, "f", "p");
    assert!(errors.is_empty(), "{errors:?}");
    let args: Vec<Vec<String>> = found.into_iter().map(|c| c.args).collect();
    assert_eq!(
        args,
        [
            vec![
                "xaudit",
                "check",
                "m.pt",
                "--out-dir",
                "a dir",
                "--seed",
                "7",
                "--suite",
                "b"
            ],
            vec!["xaudit", "list"],
            vec!["xaudit", "report", "b/r.json", "--format", "markdown"],
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// docs/scale: Slurm and Kubernetes

/// `NAME=value` lines of a script, resolved in order (defaults `${X:-y}` included).
fn script_env(script: &str, base: &Env) -> Env {
    let mut env = base.clone();
    for line in logical_lines(script) {
        let t = line.trim();
        if let Some((name, value)) = t.split_once('=') {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                let words = shlex::split(value).unwrap_or_default();
                let v = words.first().cloned().unwrap_or_default();
                let resolved = shell_vars(&v, &env);
                env.insert(name.to_string(), resolved);
            }
        }
    }
    env
}

/// (index, count) of a `--shard` value such as `@SLURM_ARRAY_TASK_ID@/8`.
fn shard_parts(c: &Invocation) -> (String, usize) {
    let v = c.value("--shard").unwrap_or_default();
    let (i, n) = v.split_once('/').unwrap_or(("", ""));
    (i.to_string(), n.parse().unwrap_or(0))
}

/// The folder and shard count of a merge's `partial-*-of-N.json` argument.
fn merge_input(c: &Invocation) -> (String, usize) {
    let arg = c.args.get(2).cloned().unwrap_or_default();
    let (dir, file) = arg.rsplit_once('/').unwrap_or(("", &arg));
    let n = file
        .strip_prefix("partial-*-of-")
        .and_then(|r| r.strip_suffix(".json"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (dir.to_string(), n)
}

#[test]
fn slurm_array_shards_and_merges_after_every_task() {
    const DIR: &str = "docs/scale/slurm";
    let shard = read(&format!("{DIR}/shard.sbatch"));
    let merge = read(&format!("{DIR}/merge.sbatch"));
    let submit = read(&format!("{DIR}/submit.sh"));
    let mut problems = Vec::new();
    let array = shard
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --array="))
        .unwrap_or_default()
        .to_string();
    let (lo, hi) = array.split_once('-').unwrap_or(("", ""));
    let tasks = hi.parse::<usize>().unwrap_or(0) + 1;
    assert_eq!(lo, "0", "the array counts from 0 like --shard");
    let (cmds, errs) = xaudit_commands(
        &shard,
        &script_env(&shard, &Env::new()),
        DIR,
        "shard.sbatch",
    );
    problems.extend(errs);
    let (merges, errs) = xaudit_commands(
        &merge,
        &script_env(&merge, &Env::new()),
        DIR,
        "merge.sbatch",
    );
    problems.extend(errs);
    assert_eq!((cmds.len(), merges.len()), (1, 1), "{cmds:#?} {merges:#?}");
    let (c, m) = (&cmds[0], &merges[0]);
    problems.extend(validate_all(std::slice::from_ref(m)));
    // Every task's command line parses, with its own index.
    for task in 0..tasks {
        let env = script_env(
            &shard,
            &Env::from([("SLURM_ARRAY_TASK_ID".to_string(), task.to_string())]),
        );
        let (found, _) = xaudit_commands(&shard, &env, DIR, &format!("task {task}"));
        problems.extend(validate_all(&found));
    }
    assert_eq!(c.subcommand(), "check");
    assert_eq!(m.subcommand(), "merge");
    let (index, n) = shard_parts(c);
    assert_eq!(
        index, "@SLURM_ARRAY_TASK_ID@",
        "the task id is the shard index"
    );
    assert_eq!(n, tasks, "--shard count = array size");
    let (dir, merged_n) = merge_input(m);
    assert_eq!(merged_n, n, "the merge reads every partial of the run");
    assert_eq!(
        Some(dir.as_str()),
        c.value("--out-dir"),
        "merge reads where shards write"
    );
    for flag in ["--batch-size", "--internal-batch-size", "--seed"] {
        assert!(c.has(flag), "shards fix {flag}");
    }
    assert!(
        submit.contains("sbatch --parsable shard.sbatch"),
        "{submit}"
    );
    assert!(
        submit.contains("--dependency=afterok:") && submit.contains("merge.sbatch"),
        "the merge waits for every task: {submit}"
    );
    report(&problems);
}

#[test]
fn kubernetes_indexed_job_shards_and_merge_job_share_the_volume() {
    const DIR: &str = "docs/scale/kubernetes";
    let shards = YamlLoader::load_from_str(&read(&format!("{DIR}/shards.yaml"))).unwrap();
    let merge = load(&format!("{DIR}/merge.yaml"));
    let kinds: Vec<String> = shards.iter().map(|d| text(&d["kind"])).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Job"]);
    let (pvc, job) = (&shards[0], &shards[1]);
    assert!(strings(&pvc["spec"]["accessModes"]).contains(&"ReadWriteMany".to_string()));
    let spec = &job["spec"];
    assert_eq!(text(&spec["completionMode"]), "Indexed");
    let completions: usize = text(&spec["completions"]).parse().unwrap();
    assert_eq!(text(&spec["parallelism"]), completions.to_string());
    let command = |doc: &Yaml, place: &str, env: &Env| -> (Invocation, String, String) {
        let pod = &doc["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let script = strings(&c["args"]).join("\n");
        let (found, errs) = xaudit_commands(&script, env, DIR, place);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(found.len(), 1, "{script}");
        let mount = text(&c["volumeMounts"][0]["mountPath"]);
        let claim = text(&pod["volumes"][0]["persistentVolumeClaim"]["claimName"]);
        assert_eq!(text(&pod["restartPolicy"]), "Never");
        (found[0].clone(), mount, claim)
    };
    let (c, mount, claim) = command(job, "shards.yaml", &Env::new());
    let (m, merge_mount, merge_claim) = command(&merge, "merge.yaml", &Env::new());
    let mut problems = validate_all(std::slice::from_ref(&m));
    // Every pod's command line parses, with its own index.
    for index in 0..completions {
        let env = Env::from([("JOB_COMPLETION_INDEX".to_string(), index.to_string())]);
        let (pod, _, _) = command(job, &format!("shards.yaml, pod {index}"), &env);
        problems.extend(validate_all(&[pod]));
    }
    let (index, n) = shard_parts(&c);
    assert_eq!(index, "@JOB_COMPLETION_INDEX@");
    assert_eq!(n, completions, "--shard count = completions");
    assert_eq!(claim, text(&pvc["metadata"]["name"]));
    assert_eq!((merge_claim, merge_mount.clone()), (claim, mount.clone()));
    let (dir, merged_n) = merge_input(&m);
    assert_eq!(merged_n, n);
    assert_eq!(Some(dir.as_str()), c.value("--out-dir"));
    assert!(dir.starts_with(&mount), "partials on the shared volume");
    assert_eq!(text(&merge["spec"]["backoffLimit"]), "0");
    // Bad input (exit 2) fails the Job instead of retrying.
    let rule = &spec["podFailurePolicy"]["rules"][0];
    assert_eq!(text(&rule["action"]), "FailJob");
    assert!(strings(&rule["onExitCodes"]["values"]).contains(&"2".to_string()));
    if c.value("--batch-size").is_none() || c.value("--internal-batch-size").is_none() {
        problems.push("shards must fix --batch-size and --internal-batch-size".into());
    }
    report(&problems);
}
