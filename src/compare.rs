//! `xaudit compare A.json B.json [C.json ...]`: which of several runs (models or methods on
//! the same images) has the better explanations, audit by audit?
//!
//! Every pair of runs is compared per result exactly as a baseline comparison
//! ([`crate::baseline`]): paired on the images both runs saw (same file sha256), the exact
//! sign test of the median per-image difference by default, a two-sample test otherwise.
//! Each comparison makes two claims (the second run better, the first run better); all
//! claims of all pairs and audits form one Holm family at alpha, so the probability of
//! naming any wrong "better" run is at most alpha. A run is ranked by its significant wins
//! minus losses over all audits and pairs.
use crate::baseline::{self, Prepared};
use crate::claim::TestChoice;
use crate::error::{Error, Result};
use crate::gate::{self, Settings, Verdict};
use crate::report::{fmt, AuditResult, Report};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One run being compared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub label: String,
    pub path: String,
    pub model: String,
    pub model_sha256: String,
    pub methods: Vec<String>,
    pub suite: String,
    pub seed: u64,
    pub data_sha256: String,
    pub images: usize,
}

/// One pair of runs on one result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairResult {
    /// Indices into `runs` (first, second).
    pub a: usize,
    pub b: usize,
    /// `paired` or `two-sample`, and why.
    pub design: String,
    pub design_reason: String,
    pub n: usize,
    /// Second minus first in the metric's units (median per-image difference when paired,
    /// difference of medians when two-sample).
    pub difference: Option<f64>,
    pub bound_low: Option<f64>,
    pub bound_high: Option<f64>,
    pub bound_of: String,
    pub level: Option<f64>,
    /// Holm-adjusted p of the decisive claim (the smaller one when undecided).
    pub p_adjusted: Option<f64>,
    /// The significantly better run, if any.
    pub better: Option<usize>,
    pub reason: String,
}

/// One result (audit, method, variant) across the runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparedAudit {
    pub code: String,
    pub name: String,
    /// The method, or each run's when the runs compare methods.
    pub method: String,
    pub variant: String,
    pub metric: String,
    /// `higher` or `lower` is better.
    pub better_when: String,
    /// Each run's median and verdict.
    pub medians: Vec<Option<f64>>,
    pub verdicts: Vec<String>,
    pub pairs: Vec<PairResult>,
    /// The run significantly better than every other one, if any.
    pub best: Option<usize>,
}

/// A run's place in the ranking.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rank {
    pub run: usize,
    pub label: String,
    pub wins: usize,
    pub losses: usize,
    pub score: i64,
    pub rank: usize,
}

/// The whole comparison (`comparison.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub alpha: f64,
    pub test: String,
    pub family_size: usize,
    pub decision_rule: String,
    pub runs: Vec<RunInfo>,
    pub audits: Vec<ComparedAudit>,
    pub ranking: Vec<Rank>,
    /// The ranking's top run when it is clear: the unique highest score and no significant
    /// loss to any run.
    pub clear_winner: Option<usize>,
    pub notes: Vec<String>,
}

fn stem(p: &str) -> String {
    Path::new(p)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.to_string())
}

/// Labels for the runs: the given ones, else the model file's stem, else the report's folder.
fn labels(paths: &[String], reports: &[Report], given: &[String]) -> Vec<String> {
    let mut out: Vec<String> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            given.get(i).cloned().unwrap_or_else(|| {
                let methods: Vec<&String> = r.methods.keys().collect();
                let model = stem(&r.model.path);
                let same_model = reports.iter().all(|o| o.model.sha256 == r.model.sha256);
                if same_model && methods.len() == 1 {
                    methods[0].clone()
                } else {
                    model
                }
            })
        })
        .collect();
    for i in 0..out.len() {
        if out.iter().filter(|l| **l == out[i]).count() > 1 {
            let dir = Path::new(&paths[i])
                .parent()
                .and_then(|d| d.file_name())
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("run {}", i + 1));
            out[i] = format!("{} ({dir})", out[i]);
        }
    }
    out
}

/// Compares `reports` (read from `paths`) at `alpha` (default: the first report's).
pub fn compare(
    paths: &[String],
    reports: &[Report],
    given_labels: &[String],
    alpha: Option<f64>,
    test: TestChoice,
) -> Result<Comparison> {
    if reports.len() < 2 {
        return Err(Error::data(
            Path::new(paths.first().map(String::as_str).unwrap_or("")),
            "compare needs at least two reports",
            "pass two or more report.json files: xaudit compare A.json B.json [C.json ...]",
        ));
    }
    let settings = Settings {
        alpha: alpha.unwrap_or(reports[0].alpha),
        min_n: reports[0].min_n,
        ..Settings::default()
    };
    let labels = labels(paths, reports, given_labels);
    let mut notes = Vec::new();
    // Runs of the same methods match by (audit, method, variant); runs of different methods
    // (one per run) match by (audit, variant).
    let method_sets: Vec<Vec<&String>> =
        reports.iter().map(|r| r.methods.keys().collect()).collect();
    let by_method = method_sets.iter().all(|m| *m == method_sets[0]);
    if !by_method {
        notes.push("the runs audit different methods: results are matched by audit and variant, each run's own method".into());
    }
    let key = |r: &AuditResult| -> (String, String, String) {
        if by_method {
            baseline::key(r)
        } else {
            (r.code.clone(), String::new(), r.variant.clone())
        }
    };
    let decided = |r: &&AuditResult| r.claim.is_some();
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for r in reports[0].audits.iter().filter(decided) {
        let k = key(r);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // Per matched result: each run's result.
    let mut rows: Vec<Vec<&AuditResult>> = Vec::new();
    for k in keys {
        let found: Vec<Vec<&AuditResult>> = reports
            .iter()
            .map(|rep| {
                rep.audits
                    .iter()
                    .filter(decided)
                    .filter(|r| key(r) == k)
                    .collect()
            })
            .collect();
        if found.iter().all(|f| f.len() == 1) {
            rows.push(found.into_iter().map(|f| f[0]).collect());
        } else {
            notes.push(format!(
                "{} {}: not in every run exactly once, not compared",
                k.0,
                if k.1.is_empty() { &k.2 } else { &k.1 }
            ));
        }
    }
    let n = reports.len();
    let mut prepared: Vec<(usize, usize, usize, Prepared)> = Vec::new();
    for (row, rs) in rows.iter().enumerate() {
        for a in 0..n {
            for b in a + 1..n {
                if let Some(p) = baseline::prepare(
                    rs[b],
                    &reports[b].images,
                    rs[a],
                    &reports[a].images,
                    0.0,
                    test,
                    settings.min_n,
                ) {
                    prepared.push((row, a, b, p));
                }
            }
        }
    }
    let evals: Vec<Option<&gate::Evaluation>> = prepared
        .iter()
        .map(|(_, _, _, p)| Some(&p.evaluation))
        .collect();
    let decisions = gate::decide(&evals, &settings);
    let family_size = prepared
        .iter()
        .filter(|(_, _, _, p)| {
            p.evaluation.n >= settings.min_n
                && p.evaluation.reference_n.is_none_or(|r| r >= settings.min_n)
        })
        .count()
        * 2;
    let mut audits: Vec<ComparedAudit> = rows
        .iter()
        .map(|rs| {
            let r0 = rs[0];
            ComparedAudit {
                code: r0.code.clone(),
                name: r0.name.clone(),
                method: if by_method {
                    r0.method.clone()
                } else {
                    rs.iter()
                        .map(|r| r.method.as_str())
                        .collect::<Vec<_>>()
                        .join(" / ")
                },
                variant: r0.variant.clone(),
                metric: r0.metric.clone(),
                better_when: match r0.direction {
                    crate::claim::Direction::Higher => "higher",
                    crate::claim::Direction::Lower => "lower",
                }
                .into(),
                medians: rs.iter().map(|r| r.median()).collect(),
                verdicts: rs.iter().map(|r| r.verdict_text()).collect(),
                pairs: Vec::new(),
                best: None,
            }
        })
        .collect();
    let mut wins = vec![0usize; n];
    let mut losses = vec![0usize; n];
    for ((row, a, b, p), d) in prepared.into_iter().zip(decisions) {
        let g = p.decided(d);
        // PASS: the second run is not worse by 0, i.e. better; FAIL: it is worse.
        let better = match g.verdict {
            Verdict::Pass => Some(b),
            Verdict::Fail => Some(a),
            _ => None,
        };
        if let Some(w) = better {
            wins[w] += 1;
            losses[if w == a { b } else { a }] += 1;
        }
        let p_adjusted = g.decisive_p();
        audits[row].pairs.push(PairResult {
            a,
            b,
            design: g.design.clone(),
            design_reason: g.design_reason.clone(),
            n: if g.paired_n > 0 {
                g.paired_n
            } else {
                g.current_n.min(g.baseline_n)
            },
            difference: g.difference,
            bound_low: g.bound_low,
            bound_high: g.bound_high,
            bound_of: g.bound_of.clone(),
            level: g.level,
            p_adjusted,
            better,
            reason: g.reason.clone(),
        });
    }
    for a in &mut audits {
        a.best = (0..n).find(|&i| {
            (0..n).filter(|&j| j != i).all(|j| {
                a.pairs
                    .iter()
                    .any(|p| p.better == Some(i) && (p.a == j || p.b == j))
            })
        });
    }
    let mut ranking: Vec<Rank> = (0..n)
        .map(|i| Rank {
            run: i,
            label: labels[i].clone(),
            wins: wins[i],
            losses: losses[i],
            score: wins[i] as i64 - losses[i] as i64,
            rank: 0,
        })
        .collect();
    let scores: Vec<i64> = ranking.iter().map(|r| r.score).collect();
    for r in &mut ranking {
        r.rank = 1 + scores.iter().filter(|s| **s > r.score).count();
    }
    ranking.sort_by_key(|r| (r.rank, r.run));
    let clear_winner = ranking.first().and_then(|top| {
        (ranking.iter().filter(|r| r.rank == 1).count() == 1 && top.losses == 0 && top.wins > 0)
            .then_some(top.run)
    });
    let runs = reports
        .iter()
        .zip(paths)
        .zip(&labels)
        .map(|((r, p), l)| RunInfo {
            label: l.clone(),
            path: p.clone(),
            model: r.model.path.clone(),
            model_sha256: r.model.sha256.clone(),
            methods: r.methods.keys().cloned().collect(),
            suite: r.provenance.suite.clone(),
            seed: r.seed,
            data_sha256: r.provenance.data_sha256.clone(),
            images: r.provenance.data_count,
        })
        .collect::<Vec<_>>();
    if runs.iter().any(|r| r.data_sha256 != runs[0].data_sha256) {
        notes.push("the runs used different image sets: results on images not shared by a pair are compared as two independent groups (see each pair's design)".into());
    }
    let test_name = match test {
        TestChoice::Quantile => "exact sign test of the median per-image difference",
        TestChoice::Wilcoxon => {
            "Wilcoxon signed-rank test of the pseudo-median per-image difference"
        }
    };
    Ok(Comparison {
        alpha: settings.alpha,
        test: test_name.into(),
        family_size,
        decision_rule: format!(
            "Every pair of runs is compared on every result both hold: paired on the images both runs saw (matched by file sha256; {test_name}), or as two independent groups (Hoeffding bound on the rank-biserial effect) when fewer than {} images are shared. Each comparison makes two claims (the second run better, the first run better); all {family_size} claims form one Holm family at alpha = {}, so the probability of naming any wrong better run is at most {}. Runs are ranked by significant wins minus losses; a winner is clear when it alone has the top score and lost no comparison.",
            settings.min_n, settings.alpha, settings.alpha
        ),
        runs,
        audits,
        ranking,
        clear_winner,
        notes,
    })
}

/// Reads the reports and compares them.
pub fn compare_files(
    paths: &[std::path::PathBuf],
    labels: &[String],
    alpha: Option<f64>,
    test: TestChoice,
) -> Result<Comparison> {
    let reports = paths
        .iter()
        .map(|p| baseline::read(p))
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    compare(&names, &reports, labels, alpha, test)
}

fn pair_text(c: &Comparison, p: &PairResult) -> String {
    let l = |i: usize| c.runs[i].label.as_str();
    let winner = match p.better {
        Some(w) => format!("**{}** better", l(w)),
        None => "no significant difference".into(),
    };
    format!(
        "{} vs {}: {winner} ({} {}, bound {} on the {}, adj. p = {}, {} n = {})",
        l(p.a),
        l(p.b),
        if p.design == "paired" {
            "median difference"
        } else {
            "difference of medians"
        },
        fmt::signed(p.difference),
        bound(p),
        p.bound_of,
        fmt::p(p.p_adjusted),
        p.design,
        p.n
    )
}

fn bound(p: &PairResult) -> String {
    fmt::bounds(p.bound_low, p.bound_high)
}

/// Markdown: the ranking, then one table per audit with each run's median and the pairs.
pub fn markdown(c: &Comparison) -> String {
    let esc = crate::report::markdown::esc;
    let mut o = String::from("## xaudit compare\n\n");
    o.push_str("| run | model | methods | suite | seed | images |\n|---|---|---|---|---|---|\n");
    for r in &c.runs {
        o.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            esc(&r.label),
            esc(&r.model),
            esc(&r.methods.join(", ")),
            esc(&r.suite),
            r.seed,
            r.images
        ));
    }
    o.push_str("\n**Ranking** (significant wins minus losses over every audit and pair)\n\n| rank | run | wins | losses |\n|---|---|---|---|\n");
    for r in &c.ranking {
        o.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.rank,
            esc(&r.label),
            r.wins,
            r.losses
        ));
    }
    o.push_str(&match c.clear_winner {
        Some(w) => format!("\nClear winner: **{}**.\n", esc(&c.runs[w].label)),
        None => "\nNo clear winner.\n".into(),
    });
    let mut head = String::from("| audit | method | metric |");
    let mut rule = String::from("|---|---|---|");
    for r in &c.runs {
        head.push_str(&format!(" {} |", esc(&r.label)));
        rule.push_str("---|");
    }
    o.push_str(&format!("\n**Medians per run** (best per audit in bold when it beats every other run significantly)\n\n{head} best |\n{rule}---|\n"));
    for a in &c.audits {
        let mut line = format!(
            "| {} {}{} | {} | {} ({} is better) |",
            esc(&a.code),
            esc(&a.name),
            if a.variant.is_empty() {
                String::new()
            } else {
                format!(" [{}]", esc(&a.variant))
            },
            esc(&a.method),
            esc(&a.metric),
            a.better_when
        );
        for (i, m) in a.medians.iter().enumerate() {
            if a.best == Some(i) {
                line.push_str(&format!(" **{}** |", fmt::num(*m)));
            } else {
                line.push_str(&format!(" {} |", fmt::num(*m)));
            }
        }
        line.push_str(&format!(
            " {} |\n",
            a.best
                .map(|b| esc(&c.runs[b].label))
                .unwrap_or_else(|| "-".into())
        ));
        o.push_str(&line);
    }
    o.push_str("\n**Pairs**\n\n");
    for a in &c.audits {
        for p in &a.pairs {
            o.push_str(&format!(
                "- {} {} ({}): {}\n",
                esc(&a.code),
                esc(&a.name),
                esc(&a.method),
                esc(&pair_text(c, p)).replace("\\*\\*", "**")
            ));
        }
    }
    for n in &c.notes {
        o.push_str(&format!("\n> {}\n", esc(n)));
    }
    o.push_str(&format!("\n**Decision rule.** {}\n", esc(&c.decision_rule)));
    o
}

/// Terminal table: one row per audit with each run's median and the best run.
pub fn table(c: &Comparison) -> String {
    let mut b = tabled::builder::Builder::default();
    let mut head = vec![
        "code".to_string(),
        "audit".into(),
        "method".into(),
        "metric".into(),
    ];
    head.extend(c.runs.iter().map(|r| r.label.clone()));
    head.push("significantly best".into());
    b.push_record(head);
    for a in &c.audits {
        let mut row = vec![
            a.code.clone(),
            if a.variant.is_empty() {
                a.name.clone()
            } else {
                format!("{} [{}]", a.name, a.variant)
            },
            a.method.clone(),
            format!("{} ({} better)", a.metric, a.better_when),
        ];
        row.extend(a.medians.iter().map(|m| fmt::num(*m)));
        row.push(
            a.best
                .map(|i| c.runs[i].label.clone())
                .unwrap_or_else(|| "-".into()),
        );
        b.push_record(row);
    }
    let mut t = b.build();
    t.with(tabled::settings::Style::rounded());
    let mut o = format!("{t}\n");
    for r in &c.ranking {
        o.push_str(&format!(
            "rank {}: {} ({} significant wins, {} losses)\n",
            r.rank, r.label, r.wins, r.losses
        ));
    }
    o.push_str(&match c.clear_winner {
        Some(w) => format!("clear winner: {}\n", c.runs[w].label),
        None => "no clear winner\n".into(),
    });
    for n in &c.notes {
        o.push_str(&format!("note: {n}\n"));
    }
    o
}

/// A self-contained HTML page (inline CSS, no scripts, no external requests).
pub fn html(c: &Comparison) -> String {
    let e = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut o = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>xaudit compare</title>\n<style>\nbody { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1.5em; color: #1d1d1f; }\ntable { border-collapse: collapse; width: 100%; font-size: .92em; margin: .6em 0; }\nth, td { border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }\nth { background: #f3f3f5; } .best { background: #d8f3dc; font-weight: 700; } .small { font-size: .85em; color: #555; } code { font-family: ui-monospace, monospace; }\n</style>\n</head>\n<body>\n<h1>xaudit compare</h1>\n");
    o.push_str("<table><tr><th>Run</th><th>Model</th><th>Methods</th><th>Suite</th><th>Seed</th><th>Images</th></tr>\n");
    for r in &c.runs {
        o.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            e(&r.label), e(&r.model), e(&r.methods.join(", ")), e(&r.suite), r.seed, r.images
        ));
    }
    o.push_str("</table>\n<h2>Ranking</h2>\n<table><tr><th>Rank</th><th>Run</th><th>Significant wins</th><th>Losses</th></tr>\n");
    for r in &c.ranking {
        o.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            r.rank,
            e(&r.label),
            r.wins,
            r.losses
        ));
    }
    o.push_str("</table>\n");
    o.push_str(&match c.clear_winner {
        Some(w) => format!("<p>Clear winner: <b>{}</b>.</p>\n", e(&c.runs[w].label)),
        None => "<p>No clear winner.</p>\n".into(),
    });
    o.push_str("<h2>Per audit</h2>\n<table><tr><th>Audit</th><th>Method</th><th>Metric</th>");
    for r in &c.runs {
        o.push_str(&format!("<th>{}</th>", e(&r.label)));
    }
    o.push_str("<th>Pairs</th></tr>\n");
    for a in &c.audits {
        o.push_str(&format!(
            "<tr><td>{} {}{}</td><td>{}</td><td>{} <span class=\"small\">({} is better)</span></td>",
            e(&a.code),
            e(&a.name),
            if a.variant.is_empty() { String::new() } else { format!(" [{}]", e(&a.variant)) },
            e(&a.method),
            e(&a.metric),
            a.better_when
        ));
        for (i, m) in a.medians.iter().enumerate() {
            let cls = if a.best == Some(i) {
                " class=\"best\""
            } else {
                ""
            };
            o.push_str(&format!("<td{cls}>{}</td>", fmt::num(*m)));
        }
        let pairs: Vec<String> = a
            .pairs
            .iter()
            .map(|p| e(&pair_text(c, p).replace("**", "")))
            .collect();
        o.push_str(&format!(
            "<td class=\"small\">{}</td></tr>\n",
            pairs.join("<br>")
        ));
    }
    o.push_str("</table>\n");
    for n in &c.notes {
        o.push_str(&format!("<p class=\"small\">{}</p>\n", e(n)));
    }
    o.push_str(&format!(
        "<p class=\"small\"><b>Decision rule.</b> {}</p>\n</body>\n</html>\n",
        e(&c.decision_rule)
    ));
    o
}
