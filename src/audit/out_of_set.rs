//! XA202 out-of-set: is salience on out-of-set inputs distinguishable from in-set salience?
use super::run::{eval_id, to_vecs};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::{aggregate, Method};
use crate::error::Result;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA202",
    name: "out-of-set",
    title: "Salience response to out-of-set inputs (Crum et al. 2023, reconstructed)",
    what: "Whether the model's salience on inputs outside its task (noise, constant images, patch-shuffled images, or a folder of the user's out-of-set images) differs from its salience on in-set images.",
    why: "A model with a well-formed task representation focuses on task evidence when it is present and has nothing coherent to focus on when it is not. If out-of-set salience looks like in-set salience, the maps say little about the task, and confident predictions on such inputs are a warning in their own right (the confidence is reported too).",
    how: "Per image, salience S = the method's map for the predicted class (the method's channel reduction, absolute values), P = S / sum S, normalised Shannon entropy H = -sum P ln P / ln(HW). A map that is zero everywhere has no salience distribution: its entropy is undefined, and the image is excluded and counted (it is not scored as uniform). Out-of-set sets are generated with the same count as the in-set data (seeded): Gaussian noise N(0.5, 0.25^2) clipped to [0,1], uniform noise, constant images (random grey level), in-set images with 4x4 patches randomly permuted; plus --out-of-set DIR when given. For each set the effect is the rank-biserial correlation r = 2 P(H_out > H_in) + P(H_out = H_in) - 1 (the direction is stated: out-of-set maps are expected to be MORE diffuse, so r > 0), bounded with Hoeffding's inequality for two-sample U-statistics (distribution-free, valid for any sample size, conservative). Also recorded: the distance between the mean salience maps (1 - Pearson) and the mean confidence on each set.",
    pass: "Default gate per out-of-set kind: PASS when the one-sided lower confidence bound of r (at the claim's Holm level in the run's error budget) is above 0.3, i.e. out-of-set maps are shown to be more diffuse by at least a moderate effect; FAIL when the upper bound is below 0.3; otherwise INCONCLUSIVE. The 0.3 is an xaudit convention (a moderate effect), not a paper value.",
    references: &[
        "Crum, Tinsley, Boyd, Piland, Sweet, Kelley, Bowyer, Czajka. Explain To Me: Salience-Based Explainability for Synthetic Face Detection Models. IEEE TAI 2023, arXiv:2303.11969 (reconstructed)",
        "Mann, Whitney. On a test of whether one of two random variables is stochastically larger than the other. Ann. Math. Stat. 1947",
        "Kerby. The simple difference formula: an approach to teaching nonparametric correlation. 2014 (rank-biserial r)",
    ],
    default_metric: "entropy",
    default_direction: Direction::Higher,
    metrics: &["entropy", "confidence"],
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Generated kinds: gaussian-noise, uniform-noise, constant, patch-shuffle.
    #[serde(default = "d_kinds")]
    pub kinds: Vec<String>,
    /// Images per generated set (0: as many as in-set images).
    #[serde(default)]
    pub count: usize,
    /// Patch grid for patch-shuffle.
    #[serde(default = "d_grid")]
    pub patch_grid: usize,
}
fn d_kinds() -> Vec<String> {
    [
        "gaussian-noise",
        "uniform-noise",
        "constant",
        "patch-shuffle",
    ]
    .map(String::from)
    .to_vec()
}
fn d_grid() -> usize {
    4
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        for k in &self.kinds {
            if !KINDS.contains(&k.as_str()) {
                let hint = crate::suggest::closest(k, &KINDS)
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown out-of-set kind `{k}`: {hint}use some of {}",
                    KINDS.join(", ")
                ));
            }
        }
        if self.patch_grid < 2 {
            return Err("patch-grid must be >= 2".into());
        }
        Ok(())
    }
}

const KINDS: [&str; 4] = [
    "gaussian-noise",
    "uniform-noise",
    "constant",
    "patch-shuffle",
];

/// Per map: normalised entropy (`None` for an all-zero map) and the distribution P.
type Entropies = (Vec<Option<f64>>, Vec<Vec<f32>>);

/// Normalised entropy (`None` for an all-zero map: no distribution) and the distribution P
/// of each map.
fn entropies(m: &Method, raw: &Tensor) -> Result<Entropies> {
    let maps = to_vecs(&aggregate(raw, m.aggregate).abs())?;
    let e = maps
        .iter()
        .map(|v| {
            v.iter()
                .any(|x| *x > 0.0)
                .then(|| crate::similarity::normalized_entropy(v))
        })
        .collect();
    let p = maps
        .into_iter()
        .map(|v| {
            let s: f64 = v.iter().map(|x| *x as f64).sum();
            if s > 0.0 {
                v.iter().map(|x| (*x as f64 / s) as f32).collect()
            } else {
                vec![1.0 / v.len() as f32; v.len()]
            }
        })
        .collect();
    Ok((e, p))
}

fn add(acc: &mut Vec<f64>, p: &[f32]) {
    if acc.is_empty() {
        acc.resize(p.len(), 0.0);
    }
    for (a, v) in acc.iter_mut().zip(p) {
        *a += *v as f64;
    }
}

/// Generated out-of-set images `[n,C,H,W]` in [0,1] for positions `js`.
fn generate(kind: &str, run: &RunCtx, js: &[usize]) -> Tensor {
    let [c, h, w] = run.model.input_shape;
    let numel = (c * h * w) as usize;
    let mut v = Vec::with_capacity(js.len() * numel);
    for &j in js {
        let mut rng = crate::rng::stream(run.seed, kind, j as u64, 0);
        match kind {
            "gaussian-noise" => {
                let n = Normal::new(0.5f32, 0.25).expect("valid normal");
                v.extend((0..numel).map(|_| n.sample(&mut rng).clamp(0.0, 1.0)))
            }
            "uniform-noise" => v.extend((0..numel).map(|_| rng.random::<f32>())),
            _ => {
                let g: f32 = rng.random();
                v.extend(std::iter::repeat_n(g, numel))
            }
        }
    }
    Tensor::from_slice(&v)
        .view([js.len() as i64, c, h, w])
        .to_device(run.device())
}

/// In-set images with their `g`×`g` patches permuted (seeded per image).
fn patch_shuffle(run: &RunCtx, x: &Tensor, idx: &[usize], g: usize) -> Tensor {
    let s = x.size();
    let (ph, pw) = (s[2] / g as i64, s[3] / g as i64);
    let out = x.copy();
    for (j, &i) in idx.iter().enumerate() {
        let mut order: Vec<usize> = (0..g * g).collect();
        order.shuffle(&mut crate::rng::stream(
            run.seed,
            "patch-shuffle",
            i as u64,
            0,
        ));
        let src = x.get(j as i64);
        let dst = out.get(j as i64);
        for (to, from) in order.iter().enumerate() {
            let (tr, tc) = ((to / g) as i64, (to % g) as i64);
            let (fr, fc) = ((from / g) as i64, (from % g) as i64);
            let patch = src.narrow(1, fr * ph, ph).narrow(2, fc * pw, pw);
            dst.narrow(1, tr * ph, ph)
                .narrow(2, tc * pw, pw)
                .copy_(&patch);
        }
    }
    out
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    // In-set reference (images with an all-zero map have no entropy and are left out).
    let (mut ent_in, mut conf_in, mut mean_in) = (Vec::new(), Vec::new(), Vec::new());
    let mut zero_in = 0usize;
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let (e, ps) = entropies(m, &run.clean_maps(m, b)?)?;
        zero_in += e.iter().filter(|v| v.is_none()).count();
        ent_in.extend(e.into_iter().flatten());
        conf_in.extend(clean.iter().map(|c| c.prob));
        for q in &ps {
            add(&mut mean_in, q);
        }
        Ok(())
    })?;
    let n_in = ent_in.len();
    let count = if p.count == 0 { n_in } else { p.count };
    let mut out = Vec::new();
    let mut sets: Vec<String> = p.kinds.clone();
    if run.out_of_set.is_some() {
        sets.push("user".into());
    }
    for (si, kind) in sets.iter().enumerate() {
        let mut f = Finding::new(kind);
        let mut mean_out = Vec::new();
        let mut conf_out = Vec::new();
        let mut explain = |x: &Tensor, js: &[usize], f: &mut Finding| -> Result<()> {
            let (pred, prob) = run.predict(run.model, x)?;
            let ids: Vec<u64> = js.iter().map(|&j| eval_id(j, 1 + si as u64)).collect();
            let raw = run.attribute(run.model, m, x, &pred, &ids)?;
            let (e, ps) = entropies(m, &raw)?;
            let shown = aggregate(&raw, m.aggregate).abs();
            for (k, &j) in js.iter().enumerate() {
                match e[k] {
                    Some(ent) => f.push(j, &[("entropy", ent), ("confidence", prob[k])], None),
                    None => f.push(
                        j,
                        &[],
                        Some("all-zero map: no salience distribution, entropy undefined".into()),
                    ),
                }
                f.example(
                    j,
                    vec![
                        run.image_panel(&x.get(k as i64), "out-of-set image")?,
                        super::run::map_panel(&shown.get(k as i64), "explanation")?,
                    ],
                );
                add(&mut mean_out, &ps[k]);
                conf_out.push(prob[k]);
            }
            Ok(())
        };
        match kind.as_str() {
            "user" => {
                let ds = run.out_of_set.expect("checked above");
                for r in ds.batch_ranges(run.batch_size) {
                    let b = ds.load_batch(r, run.pre, run.device())?;
                    let js: Vec<usize> = b.indices.clone().collect();
                    for (k, &j) in js.iter().enumerate() {
                        f.names.insert(j, b.paths[k].display().to_string());
                    }
                    explain(&b.x, &js, &mut f)?;
                }
            }
            "patch-shuffle" => run.for_batches(|b| {
                let js: Vec<usize> = b.indices.clone().collect();
                for (k, &j) in js.iter().enumerate() {
                    f.names
                        .insert(j, format!("patch-shuffled {}", b.paths[k].display()));
                }
                let x = patch_shuffle(run, &b.x, &js, p.patch_grid);
                explain(&x, &js, &mut f)
            })?,
            _ => {
                let all: Vec<usize> = (0..count).collect();
                for js in all.chunks(run.batch_size) {
                    for &j in js {
                        f.names.insert(j, format!("generated {kind} #{j}"));
                    }
                    let x = run.from_unit(&generate(kind, run, js)).to_kind(Kind::Float);
                    explain(&x, js, &mut f)?;
                }
            }
        }
        let mi: Vec<f32> = mean_in.iter().map(|v| *v as f32).collect();
        let mo: Vec<f32> = mean_out.iter().map(|v| *v as f32).collect();
        f.summary(
            "mean_map_distance",
            1.0 - crate::similarity::pearson(&mi, &mo),
        );
        f.summary("mean_confidence_in_set", crate::stats::mean(&conf_in));
        f.summary("mean_confidence_out_of_set", crate::stats::mean(&conf_out));
        f.summary("median_entropy_in_set", crate::stats::median(&ent_in));
        f.summary("in_set_images_with_all_zero_maps", zero_in);
        f.summary(
            "direction",
            "out-of-set maps expected MORE diffuse (higher entropy) than in-set maps",
        );
        f.reference.insert("entropy".into(), ent_in.clone());
        f.reference.insert("confidence".into(), conf_in.clone());
        (run.progress)(n_in);
        out.push(f);
    }
    Ok(out)
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "salience",
    design: super::Design::TwoSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: None,
    shardable: false,
    clips: true,
};
