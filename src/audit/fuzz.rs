//! XA301 fuzz: proptest searches semantically neutral input changes for one that breaks
//! the explanation, and shrinks what it finds to a minimal counterexample.
use super::run::{eval_id, to_vecs, vec_panel, RunCtx};
use super::{AuditDoc, AuditEntry, Direction, Finding};
use crate::attribution::{aggregate, MethodSpec};
use crate::error::{Error, Result};
use crate::perturb::{self, Budget, Op};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use tch::{Kind, Tensor};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA301",
    name: "fuzz",
    title: "Property-based search for neutral input changes that break the explanation",
    what: "Whether small, semantically neutral changes to an image (brightness and contrast shifts, sensor noise, one- or two-pixel shifts, slight rotations, JPEG-like quantisation, a tiny occluding patch, and compositions of them, each within a budget declared in the suite) that keep the predicted class can still make the explanation dissimilar to the original.",
    why: "Random-sample audits report averages; a reviewer also wants to see the worst case, concretely. A minimal counterexample (the smallest, simplest change that breaks the explanation) shows exactly which nuisance the explanation is fragile to and can be replayed while fixing it.",
    how: "For each image, proptest strategies generate `cases` perturbation programs (1..max-ops operations, parameters uniform within the budget) from a runner seeded by --seed and the image. Each program is applied in [0,1] pixel space (clamped), the model predicts and the method explains the clean predicted class; the property is: if the prediction is unchanged, similarity(explanation, original explanation) >= min-similarity (Spearman with average ranks on the method's channel-reduced map, or Pearson). Programs that change the prediction are not neutral and are excluded. The first violation of an image is shrunk with proptest's value trees (fewer operations, smaller magnitudes) for up to shrink-iters evaluations; up to max-counterexamples are reported with the program, its parameters, pictures and a replay record (`xaudit replay report.json`). The violation rate over all cases is reported with a Clopper-Pearson interval. Bounded by the case count and time-budget-s.",
    pass: "Default gate: violation rate < 0.05, exact one-sided binomial test, Holm-adjusted with the other tests of the run (xaudit convention).",
    references: &[
        "Claessen, Hughes. QuickCheck: a lightweight tool for random testing of Haskell programs. ICFP 2000",
        "proptest (Rust): strategies, value trees and shrinking, docs.rs/proptest",
        "Clopper, Pearson. The use of confidence or fiducial limits illustrated in the case of the binomial. Biometrika 1934",
    ],
    default_metric: "violation-rate",
    default_direction: Direction::Lower,
    metrics: &["violation-rate", "min-similarity"],
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Programs tried per image.
    #[serde(default = "d_cases")]
    pub cases: usize,
    /// The property: similarity must stay at or above this.
    #[serde(default = "d_sim")]
    pub min_similarity: f64,
    /// `spearman` or `pearson`.
    #[serde(default = "d_metric")]
    pub similarity: String,
    #[serde(default = "d_max_ce")]
    pub max_counterexamples: usize,
    #[serde(default = "d_shrink")]
    pub shrink_iters: usize,
    /// Stop starting new images after this many seconds (remaining images are excluded).
    #[serde(default = "d_time")]
    pub time_budget_s: f64,
    #[serde(default)]
    pub budget: Budget,
}

fn d_cases() -> usize {
    16
}
fn d_sim() -> f64 {
    0.5
}
fn d_metric() -> String {
    "spearman".into()
}
fn d_max_ce() -> usize {
    3
}
fn d_shrink() -> usize {
    128
}
fn d_time() -> f64 {
    600.0
}

/// Everything needed to re-run one counterexample exactly (`xaudit replay`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counterexample {
    pub index: usize,
    pub path: String,
    pub method: String,
    pub program: Vec<Op>,
    pub description: String,
    /// The program before shrinking.
    pub original_program: Vec<Op>,
    pub similarity: f64,
    pub similarity_metric: String,
    pub min_similarity: f64,
    pub predicted: i64,
    pub seed: u64,
    /// Key of the perturbed explanation's random draws.
    pub eval_id: u64,
    pub shrink_steps: usize,
    pub preprocess: crate::config::Preprocess,
}

fn similarity(metric: &str, a: &[f32], b: &[f32]) -> f64 {
    if metric == "pearson" {
        crate::similarity::pearson(a, b)
    } else {
        crate::similarity::spearman(a, b)
    }
}

/// Model-space image from model space via pixels: denormalise, perturb, normalise.
pub fn perturbed(run_pre: &crate::config::Preprocess, x: &Tensor, ops: &[Op]) -> Tensor {
    let dev = x.device();
    let m = Tensor::from_slice(&run_pre.mean())
        .view([-1, 1, 1])
        .to_device(dev);
    let s = Tensor::from_slice(&run_pre.std())
        .view([-1, 1, 1])
        .to_device(dev);
    let px = (x * &s + &m).clamp(0.0, 1.0);
    (perturb::apply(ops, &px) - m) / s
}

/// Outcome of explaining one perturbed input: (prediction, explanation map).
fn evaluate(
    run: &RunCtx,
    m: &MethodSpec,
    xs: &[Tensor],
    target: &[i64],
    ids: &[u64],
) -> Result<(Vec<i64>, Vec<Vec<f32>>)> {
    let x = Tensor::stack(xs, 0).to_kind(Kind::Float);
    let (maps, pred, _) = run.attribute_predict(run.model, m, &x, target, ids)?;
    let maps = to_vecs(&aggregate(&maps, m.kind().default_aggregate()).abs())?;
    Ok((pred, maps))
}

fn runner(seed: u64, index: usize) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    bytes[16..24].copy_from_slice(&crate::rng::tag("fuzz").to_le_bytes());
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

fn measure(run: &RunCtx, m: &MethodSpec, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let bad = |msg: String| {
        Error::config(
            format!("parameters of {}", DOC.code),
            msg,
            format!("see `xaudit docs {}`", DOC.code),
        )
    };
    p.budget.validate().map_err(bad)?;
    if p.cases == 0
        || !(0.0..=1.0).contains(&p.min_similarity)
        || !["spearman", "pearson"].contains(&p.similarity.as_str())
    {
        return Err(bad(
            "cases must be >= 1, min-similarity in [0, 1], similarity spearman or pearson".into(),
        ));
    }
    let strategy = p.budget.program();
    let start = Instant::now();
    let mut f = Finding::new("");
    let (mut violations, mut cases, mut changed) = (0u64, 0u64, 0u64);
    let mut found: Vec<Counterexample> = Vec::new();
    let mut stopped_at: Option<usize> = None;
    run.for_batches(|b| {
        let idx: Vec<usize> = b.indices.clone().collect();
        if start.elapsed().as_secs_f64() > p.time_budget_s {
            stopped_at.get_or_insert(idx[0]);
            for &i in &idx {
                f.push(i, &[], Some("time budget reached".into()));
            }
            return Ok(());
        }
        let clean = run.clean(b)?;
        let base = to_vecs(&aggregate(&run.clean_maps(m, b)?, m.kind().default_aggregate()).abs())?;
        let (h, w) = (b.x.size()[2] as usize, b.x.size()[3] as usize);
        // Generate every image's programs (value trees kept for shrinking).
        let mut trees = Vec::with_capacity(idx.len());
        for &i in &idx {
            let mut r = runner(run.seed, i);
            let ts: Vec<_> = (0..p.cases)
                .map(|_| {
                    strategy
                        .new_tree(&mut r)
                        .map_err(|e| bad(format!("cannot generate programs: {e}")))
                })
                .collect::<Result<_>>()?;
            trees.push(ts);
        }
        let jobs: Vec<(usize, usize)> = (0..idx.len())
            .flat_map(|j| (0..p.cases).map(move |k| (j, k)))
            .collect();
        let mut outcome = vec![vec![(0i64, 0f64); p.cases]; idx.len()];
        crate::attribution::for_chunks(jobs.len(), run.internal_batch, |r| {
            let chunk = &jobs[r];
            let xs: Vec<Tensor> = chunk
                .iter()
                .map(|&(j, k)| perturbed(run.pre, &b.x.get(j as i64), &trees[j][k].current()))
                .collect();
            let target: Vec<i64> = chunk.iter().map(|&(j, _)| clean[j].pred).collect();
            let ids: Vec<u64> = chunk
                .iter()
                .map(|&(j, k)| eval_id(idx[j], 1 + k as u64))
                .collect();
            let (pred, maps) = evaluate(run, m, &xs, &target, &ids)?;
            for (c, &(j, k)) in chunk.iter().enumerate() {
                outcome[j][k] = (pred[c], similarity(&p.similarity, &base[j], &maps[c]));
            }
            Ok(())
        })?;
        for (j, &i) in idx.iter().enumerate() {
            let (mut v, mut n, mut worst) = (0u64, 0u64, f64::INFINITY);
            let mut first: Option<usize> = None;
            for (k, &(pred, sim)) in outcome[j].iter().enumerate() {
                if pred != clean[j].pred {
                    changed += 1;
                    continue;
                }
                n += 1;
                worst = worst.min(sim);
                if sim < p.min_similarity {
                    v += 1;
                    first.get_or_insert(k);
                }
            }
            violations += v;
            cases += n;
            if n == 0 {
                f.push(i, &[], Some("every program changed the prediction".into()));
                continue;
            }
            f.push(
                i,
                &[
                    ("violation-rate", v as f64 / n as f64),
                    ("min-similarity", worst),
                ],
                None,
            );
            let Some(k0) = first else { continue };
            if found.len() >= p.max_counterexamples {
                continue;
            }
            // Shrink: proptest's simplify/complicate walk, one evaluation per step.
            let tree = &mut trees[j][k0];
            let original = tree.current();
            let mut best = (
                original.clone(),
                outcome[j][k0].1,
                eval_id(i, 1 + k0 as u64),
            );
            let x0 = b.x.get(j as i64);
            let mut steps = 0usize;
            let mut last_failed = true;
            while steps < p.shrink_iters {
                let moved = if last_failed {
                    tree.simplify()
                } else {
                    tree.complicate()
                };
                if !moved {
                    break;
                }
                steps += 1;
                let cand = tree.current();
                let id = eval_id(i, 1 + (p.cases + steps) as u64);
                let (pred, maps) = evaluate(
                    run,
                    m,
                    &[perturbed(run.pre, &x0, &cand)],
                    &[clean[j].pred],
                    &[id],
                )?;
                let sim = similarity(&p.similarity, &base[j], &maps[0]);
                last_failed = pred[0] == clean[j].pred && sim < p.min_similarity;
                if last_failed {
                    best = (cand, sim, id);
                }
            }
            let (prog, sim, id) = best;
            let xp = perturbed(run.pre, &x0, &prog);
            let (_, maps) = evaluate(run, m, std::slice::from_ref(&xp), &[clean[j].pred], &[id])?;
            f.example(
                i,
                vec![
                    run.image_panel(&x0, "original")?,
                    vec_panel(&base[j], h, w, "explanation")?,
                    run.image_panel(&xp, "counterexample")?,
                    vec_panel(&maps[0], h, w, "its explanation")?,
                ],
            );
            found.push(Counterexample {
                index: i,
                path: b.paths[j].display().to_string(),
                method: m.kind().name().into(),
                description: perturb::describe(&prog),
                program: prog,
                original_program: original,
                similarity: sim,
                similarity_metric: p.similarity.clone(),
                min_similarity: p.min_similarity,
                predicted: clean[j].pred,
                seed: run.seed,
                eval_id: id,
                shrink_steps: steps,
                preprocess: run.pre.clone(),
            });
        }
        (run.progress)(idx.len());
        Ok(())
    })?;
    f.counts = Some((violations, cases));
    f.summary("cases", cases);
    f.summary("violations", violations);
    f.summary("programs_changing_the_prediction", changed);
    f.summary("counterexamples", &found);
    if let Some(i) = stopped_at {
        f.summary("time_budget_reached_at_image", i);
    }
    Ok(vec![f])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "fuzz",
    design: super::Design::Proportion,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
};
