//! XA301 fuzz: proptest searches semantically neutral input changes for one that breaks
//! the explanation, and shrinks what it finds to a minimal counterexample.
use super::run::{eval_id, to_vecs, vec_panel, RunCtx};
use super::{AuditDoc, AuditEntry, Direction, Finding};
use crate::attribution::{aggregate, Method};
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
    how: "For each image, proptest strategies generate `cases` perturbation programs (1..max-ops operations, parameters uniform within the budget) from a runner seeded by --seed and the image. Each program is applied in [0,1] pixel space (clamped), the model predicts and the method explains the clean predicted class. The explanation of the perturbed image S(P x) is compared with the original explanation moved by the program's geometric operations, T S(x) (shifts and rotations in order; the identity for photometric programs), over the valid region (pixels whose source stayed inside the image), as the equivariance audit does: an explanation that follows the content is not a violation. The property: if the prediction is unchanged, similarity >= min-similarity (Spearman with average ranks on the method's channel-reduced map, or Pearson). Programs that change the prediction are not neutral and are excluded. The unit of analysis is the image: an image is violated when at least one of its neutral programs breaks the property (its 16 programs are not independent trials). The first violation of an image is shrunk with proptest's value trees (fewer operations, smaller magnitudes) for up to shrink-iters evaluations; up to max-counterexamples are reported with the program, its parameters, pictures and a replay record (`xaudit replay report.json`). Also recorded per image: the share of its programs that violate and the lowest similarity. Bounded by the case count and time-budget-s.",
    pass: "Default gate: the share of images with a violation is below the threshold (0.1): exact one-sided binomial test over images with a Clopper-Pearson bound, in the run's single error budget (xaudit convention). min-n counts images.",
    references: &[
        "Claessen, Hughes. QuickCheck: a lightweight tool for random testing of Haskell programs. ICFP 2000",
        "proptest (Rust): strategies, value trees and shrinking, docs.rs/proptest",
        "Clopper, Pearson. The use of confidence or fiducial limits illustrated in the case of the binomial. Biometrika 1934",
    ],
    default_metric: "violated",
    default_direction: Direction::Lower,
    metrics: &["violated", "violation-rate", "min-similarity"],
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
    /// The method exactly as audited (parameters, score, aggregation).
    #[serde(default)]
    pub method_config: Option<crate::attribution::Method>,
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

/// Similarity of the perturbed explanation `pert` (`[H*W]`) with the original `base`
/// (`[H*W]`, an `h`×`w` map) moved by the program's geometric operations, over the pixels
/// whose source stayed inside the image.
pub fn aligned_similarity(
    metric: &str,
    base: &[f32],
    h: usize,
    w: usize,
    ops: &[Op],
    pert: &[f32],
) -> f64 {
    if perturb::geometry(ops).is_empty() {
        return similarity(metric, base, pert);
    }
    let t = Tensor::from_slice(base).view([1, 1, h as i64, w as i64]);
    let (moved, valid) = perturb::align(ops, &t);
    let moved: Vec<f32> = Vec::try_from(moved.view([-1])).unwrap_or_default();
    let (a, b): (Vec<f32>, Vec<f32>) = moved
        .iter()
        .zip(pert)
        .zip(&valid)
        .filter(|(_, v)| **v)
        .map(|((x, y), _)| (*x, *y))
        .unzip();
    similarity(metric, &a, &b)
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
    m: &Method,
    xs: &[Tensor],
    target: &[i64],
    ids: &[u64],
) -> Result<(Vec<i64>, Vec<Vec<f32>>)> {
    let x = Tensor::stack(xs, 0).to_kind(Kind::Float);
    let (maps, pred, _) = run.attribute_predict(run.model, m, &x, target, ids)?;
    let maps = to_vecs(&aggregate(&maps, m.aggregate).abs())?;
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

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        self.budget.validate()?;
        if self.cases == 0
            || !(0.0..=1.0).contains(&self.min_similarity)
            || !["spearman", "pearson"].contains(&self.similarity.as_str())
            || !super::positive(self.time_budget_s)
        {
            return Err(
                "cases must be >= 1, min-similarity in [0, 1], similarity spearman or pearson, time-budget-s > 0".into(),
            );
        }
        Ok(())
    }
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let bad = |msg: String| {
        Error::config(
            format!("parameters of {}", DOC.code),
            msg,
            format!("see `xaudit docs {}`", DOC.code),
        )
    };
    let strategy = p.budget.program();
    let start = Instant::now();
    let mut f = Finding::new("");
    let mut floor: Vec<(usize, f64)> = Vec::new();
    let (mut violations, mut cases, mut changed) = (0u64, 0u64, 0u64);
    let (mut violated_images, mut tested_images) = (0u64, 0u64);
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
        let base = to_vecs(&aggregate(&run.clean_maps(m, b)?, m.aggregate).abs())?;
        let (h, w) = (b.x.size()[2] as usize, b.x.size()[3] as usize);
        if let Some(alt) = run.noise_maps(m, b)? {
            let alt = to_vecs(&aggregate(&alt, m.aggregate).abs())?;
            floor.extend(
                base.iter()
                    .zip(&alt)
                    .zip(&idx)
                    .map(|((a, b), &i)| (i, similarity(&p.similarity, a, b))),
            );
        }
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
                let ops = trees[j][k].current();
                outcome[j][k] = (
                    pred[c],
                    aligned_similarity(&p.similarity, &base[j], h, w, &ops, &maps[c]),
                );
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
            tested_images += 1;
            violated_images += u64::from(v > 0);
            f.push(
                i,
                &[
                    ("violated", f64::from(u8::from(v > 0))),
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
                let sim = aligned_similarity(&p.similarity, &base[j], h, w, &cand, &maps[0]);
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
                method_config: Some(m.clone()),
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
    f.counts = Some((violated_images, tested_images));
    f.summary("images_tested", tested_images);
    f.summary("images_violated", violated_images);
    f.summary("cases", cases);
    f.summary("violations", violations);
    f.summary(
        "comparison",
        "S(P x) against T S(x) on the valid region, T = the program's shifts and rotations",
    );
    super::run::keep_noise_floors(&mut f, &p.similarity, &floor);
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
    finish: None,
    shardable: false,
    clips: false,
};
