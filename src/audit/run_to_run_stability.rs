//! XA204 run-to-run-stability: do independently trained copies of the model explain the same
//! image the same way?
use super::compare::{self, CompareParams};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA204",
    name: "run-to-run-stability",
    title: "Run-to-run stability across independently trained replicas (Crum et al. 2023, measure (d), reconstructed)",
    what: "Whether the explanation is a property of the task and the architecture or an accident of one training run: the maps of the audited model are compared, image by image, with the maps of independently trained copies (same architecture and data, different seeds), given with `--replica FILE` (repeatable) or `[model] replicas` in xaudit.toml.",
    why: "A reviewer who reads a saliency map as \"the model looks at the lesion\" assumes that retraining would give the same answer. If replicas with the same accuracy look at different evidence, the map describes one run's idiosyncrasies, and a release that only changes the seed can change every explanation in a report. Crum et al. list run-to-run stability among their five salience-at-scale measures.",
    how: "Per image, every replica explains the class the audited model predicts (the same question to every model), and its map is compared with the audited model's map by the similarities the randomisation audits use: Spearman rank correlation with absolute values on PAIR's grayscale map (99th-percentile clip), Spearman on the diverging map and SSIM on the min-max normalised mask. The per-image value is the mean over every pair of models (the audited model and each replica: (k + 1) k / 2 pairs for k replicas). Also recorded: the share of replicas that predict the same class (label-agreement), so a low similarity on an image the replicas classify differently is visible as such. Stochastic methods share their Monte Carlo draws between the models. A model-blind map (edge detector, fixed random map) is trivially identical across replicas: that is no evidence of stability, which is why the built-in suite gates on model dependence first and reports such passes as not credited. Reconstructed from the paper's abstract: the paper's exact similarity and aggregation are not public.",
    pass: "Default gate: the median over images of the mean Spearman (abs) across replicas is above 0.5 (exact binomial test of the median in the run's error budget; xaudit convention, halfway between unrelated maps and identical ones). Without replicas the audit is not run and says how to give them.",
    references: &[
        "Crum, Dhar, Piland, Czajka, Sweet, Flynn, Bowyer. Explain To Me: Salience-Based Explainability for Synthetic Face Detection Models. IEEE TAI 2023, arXiv:2303.11969 (measure (d), reconstructed)",
        "Adebayo et al. Sanity Checks for Saliency Maps. NeurIPS 2018 (the similarity measures)",
    ],
    default_metric: "spearman-abs",
    default_direction: Direction::Higher,
    metrics: &["spearman-abs", "spearman", "ssim", "label-agreement"],
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Percentile of PAIR's visualisation clip.
    pub percentile: f64,
    /// SSIM data range (1 for [0,1] maps).
    pub ssim_data_range: f64,
}

impl Default for Params {
    fn default() -> Self {
        let c = CompareParams::default();
        Params {
            percentile: c.percentile,
            ssim_data_range: c.ssim_data_range,
        }
    }
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        compare::check(self.percentile, self.ssim_data_range)
    }
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let cp = CompareParams {
        percentile: p.percentile,
        ssim_data_range: p.ssim_data_range,
    };
    if run.replicas.is_empty() {
        return Err(Error::NotApplicable(
            "no replicas were given: train copies of the model with other seeds and pass them with --replica FILE (repeatable) or [model] replicas".into(),
        ));
    }
    for replica in &run.replicas {
        if replica.num_classes != run.model.num_classes {
            return Err(Error::model(
                &replica.path,
                format!(
                    "replica has {} classes but the audited model has {}",
                    replica.num_classes, run.model.num_classes
                ),
                "give replicas of the same architecture trained on the same classes",
            ));
        }
        if m.kind().needs_cam() {
            replica.require_cam(m.kind().name())?;
        }
    }
    let mut f = Finding::new("");
    let k = run.replicas.len();
    let pairs = (k + 1) * k / 2;
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let idx: Vec<usize> = b.indices.clone().collect();
        let own = run.clean_maps(m, b)?;
        let s = own.size();
        let (c, h, w) = (s[1] as usize, s[2] as usize, s[3] as usize);
        let mut maps = vec![super::run::to_vecs(&own)?];
        let mut agree = vec![0usize; idx.len()];
        let mut first = None;
        for (r, replica) in run.replicas.iter().enumerate() {
            let (pred, _) = run.predict(replica, &b.x)?;
            for (j, p) in pred.iter().enumerate() {
                agree[j] += usize::from(*p == targets[j]);
            }
            let ids: Vec<u64> = idx
                .iter()
                .map(|&i| super::run::eval_id(i, 1 + r as u64))
                .collect();
            // Every replica explains the class the audited model predicts.
            let t = run.attribute(replica, m, &b.x, &targets, &ids)?;
            if r == 0 {
                first = Some(t.shallow_clone());
            }
            maps.push(super::run::to_vecs(&t)?);
        }
        let gray = |t: &tch::Tensor| {
            crate::attribution::aggregate(t, crate::attribution::Aggregate::SumAbs)
        };
        let (g0, g1) = (gray(&own), first.as_ref().map(gray));
        for (j, &i) in idx.iter().enumerate() {
            let mut sum = [0.0f64; 3];
            for a in 0..=k {
                for bb in a + 1..=k {
                    let v = compare::similarities(&maps[a][j], &maps[bb][j], c, h, w, &cp);
                    for (acc, (_, x)) in sum.iter_mut().zip(v) {
                        *acc += x;
                    }
                }
            }
            let n = pairs as f64;
            f.push(
                i,
                &[
                    ("spearman-abs", sum[0] / n),
                    ("spearman", sum[1] / n),
                    ("ssim", sum[2] / n),
                    ("label-agreement", agree[j] as f64 / k as f64),
                ],
                None,
            );
            if let Some(g1) = &g1 {
                f.example(
                    i,
                    vec![
                        run.image_panel(&b.x.get(j as i64), "original")?,
                        super::run::map_panel(&g0.get(j as i64), "audited model")?,
                        super::run::map_panel(&g1.get(j as i64), "replica 1")?,
                    ],
                );
            }
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    let names: Vec<String> = run
        .replicas
        .iter()
        .map(|r| r.path.display().to_string())
        .collect();
    f.summary("replicas", names);
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
    clips: true,
};
