//! XA205 salience-degradation: does degrading what the map shows hurt the model more than
//! degrading an equal region elsewhere?
use super::faithfulness::{chunked_scores, pixel_maps, shifted, top_area, CurveScore};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA205",
    name: "salience-degradation",
    title: "Salience-guided degradation against an equal region elsewhere (Crum et al. 2023, measure (e), reconstructed)",
    what: "Whether the model uses what its map shows: the image is degraded (blurred, or noised) at increasing strength inside the map's most salient region and, separately, inside the same region moved to a random place; the model should lose confidence faster when its salient region is degraded. How the map itself responds is recorded too.",
    why: "A map can be stable, focused and plausible while the model's decision rests elsewhere. Degrading the salient region is the direct test: if blurring what the map highlights hurts no more than blurring an equal area at random, the map is not showing the evidence the model uses. Crum et al. list salience-guided degradation among their five salience-at-scale measures.",
    how: "Per image, the method's map of the predicted class, reduced to one value per pixel, gives the salient region: its top `area` fraction of pixels (default 0.2; ties broken by a seeded permutation). The control region is the same mask cyclically shifted by a seeded random offset (same shape and size, another place). At each level of `strengths`, the image is degraded inside each region: `kind = \"blur\"` (default) replaces it by a Gaussian blur of sigma = level x min(H, W) pixels (default levels 0.01, 0.02, 0.04, 0.08); `kind = \"noise\"` adds Gaussian noise of standard deviation = level in 0-255 pixel units (default levels 8, 16, 32, 64 when noise is chosen and strengths are not given), the same draw for both regions (seeded by --seed, the image and the level), clamped to valid pixels. The softmax probability of the clean predicted class is recorded at each level for both regions; gain = mean over levels of (p(control) - p(salient)), positive when degrading the salient region hurts more. The map's response: 1 - Spearman (abs, PAIR grayscale) between the map of the clean image and the map of the image degraded inside its salient region at the strongest level (map-shift; one explanation per image). Reconstructed from the paper's abstract, which names the measure but not its protocol.",
    pass: "Default gate: the median gain is above 0 (exact binomial test of the median in the run's error budget; xaudit convention, relative to an equal region elsewhere rather than an absolute drop).",
    references: &[
        "Crum, Dhar, Piland, Czajka, Sweet, Flynn, Bowyer. Explain To Me: Salience-Based Explainability for Synthetic Face Detection Models. IEEE TAI 2023, arXiv:2303.11969 (measure (e), reconstructed)",
        "Hooker, Erhan, Kindermans, Kim. A Benchmark for Interpretability Methods in Deep Neural Networks. NeurIPS 2019 (why degradation, not deletion to a constant)",
    ],
    default_metric: "gain",
    default_direction: Direction::Higher,
    metrics: &["gain", "probability-salient", "probability-control", "map-shift"],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind2 {
    Blur,
    Noise,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Fraction of the image degraded.
    pub area: f64,
    pub kind: Kind2,
    /// Blur: sigma as a fraction of min(H, W); noise: std in 0-255 units (absent: defaults).
    pub strengths: Option<Vec<f64>>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            area: 0.2,
            kind: Kind2::Blur,
            strengths: None,
        }
    }
}

impl Params {
    fn levels(&self) -> Vec<f64> {
        self.strengths.clone().unwrap_or_else(|| match self.kind {
            Kind2::Blur => vec![0.01, 0.02, 0.04, 0.08],
            Kind2::Noise => vec![8.0, 16.0, 32.0, 64.0],
        })
    }
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !(self.area > 0.0 && self.area < 1.0) {
            return Err("area is a fraction of the image in (0, 1)".into());
        }
        let l = self.levels();
        if l.is_empty() || l.iter().any(|v| !super::positive(*v)) {
            return Err("strengths must be a non-empty list of values > 0".into());
        }
        Ok(())
    }
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let levels = p.levels();
    let cp = super::compare::CompareParams::default();
    let mut f = Finding::new("");
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let t = Tensor::from_slice(&targets).to_device(run.device());
        let idx: Vec<usize> = b.indices.clone().collect();
        let maps = pixel_maps(run, m, b)?;
        let s = b.x.size();
        let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
        let salient = top_area(&maps, p.area, run.seed, DOC.name, &idx).view([n, h, w]);
        let control = shifted(&salient, run.seed, DOC.name, &idx);
        let region = |r: &Tensor| {
            r.view([n, 1, h, w])
                .expand([n, c, h, w], false)
                .to_kind(Kind::Bool)
        };
        let (rs, rc) = (region(&salient), region(&control));
        let mut per: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
        let mut strongest = None;
        for (l, level) in levels.iter().enumerate() {
            let degraded = match p.kind {
                Kind2::Blur => crate::attribution::meaningful_perturbation::gaussian_blur(
                    &b.x,
                    level * h.min(w) as f64,
                ),
                Kind2::Noise => {
                    let noise: Vec<Tensor> = idx
                        .iter()
                        .map(|&i| {
                            use rand_distr::{Distribution, StandardNormal};
                            let mut rng =
                                crate::rng::stream(run.seed, DOC.name, i as u64, l as u64);
                            let v: Vec<f32> = (0..c * h * w)
                                .map(|_| StandardNormal.sample(&mut rng))
                                .collect();
                            Tensor::from_slice(&v).view([1, c, h, w])
                        })
                        .collect();
                    let noise = Tensor::cat(&noise, 0).to_device(run.device());
                    run.clamp_valid(&(&b.x + noise * run.pixel_scale(*level)))
                }
            };
            let xs = Tensor::cat(
                &[
                    b.x.where_self(&rs.logical_not(), &degraded),
                    b.x.where_self(&rc.logical_not(), &degraded),
                ],
                0,
            );
            let tt = Tensor::cat(&[&t, &t], 0);
            let probs = chunked_scores(run, &xs, &tt, CurveScore::Probability)?;
            per.push((probs[..n as usize].to_vec(), probs[n as usize..].to_vec()));
            if l + 1 == levels.len() {
                strongest = Some(xs.narrow(0, 0, n));
            }
        }
        let orig = super::run::to_vecs(&run.clean_maps(m, b)?)?;
        let ids: Vec<u64> = idx.iter().map(|&i| super::run::eval_id(i, 1)).collect();
        let xs = strongest.expect("at least one level");
        let moved = super::run::to_vecs(&run.attribute(run.model, m, &xs, &targets, &ids)?)?;
        let ms = run.clean_maps(m, b)?.size();
        let (mc, mh, mw) = (ms[1] as usize, ms[2] as usize, ms[3] as usize);
        for (j, &i) in idx.iter().enumerate() {
            let ps: Vec<f64> = per.iter().map(|v| v.0[j]).collect();
            let pc: Vec<f64> = per.iter().map(|v| v.1[j]).collect();
            let gain = pc.iter().zip(&ps).map(|(a, b)| a - b).sum::<f64>() / ps.len() as f64;
            let sim = super::compare::similarities(&orig[j], &moved[j], mc, mh, mw, &cp)[0].1;
            f.example(
                i,
                vec![
                    run.image_panel(&b.x.get(j as i64), "original")?,
                    super::run::map_panel(&maps.get(j as i64), "explanation")?,
                    run.image_panel(&xs.get(j as i64), "salient region degraded")?,
                ],
            );
            f.push(
                i,
                &[
                    ("gain", gain),
                    ("probability-salient", crate::stats::mean(&ps)),
                    ("probability-control", crate::stats::mean(&pc)),
                    ("map-shift", 1.0 - sim),
                ],
                None,
            );
            let with_clean = |v: &[f64]| {
                let mut out = vec![clean[j].prob];
                out.extend_from_slice(v);
                out
            };
            f.keep("curve:probability", i, &with_clean(&ps));
            f.keep("curve:probability:reference", i, &with_clean(&pc));
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    let x: Vec<String> = std::iter::once(0.0)
        .chain(levels.iter().copied())
        .map(|level| format!("{level}"))
        .collect();
    let x_label = match p.kind {
        Kind2::Blur => "blur sigma (fraction of the image side)",
        Kind2::Noise => "noise std (0-255 units)",
    };
    f.defer_curve_with_reference(
        "probability",
        x_label,
        "probability of the predicted class (salient region degraded)",
        x,
        "equal region elsewhere",
    );
    f.summary("model_passes_per_image", 2 * levels.len() + 1);
    Ok(vec![f])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "salience",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: None,
    shardable: true,
    clips: false,
};
