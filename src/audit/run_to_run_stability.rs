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
    how: "Per image, every replica explains the class the audited model predicts (the same question to every model), and its map is compared with the audited model's map by the similarities the randomisation audits use: Spearman rank correlation with absolute values on PAIR's grayscale map (99th-percentile clip), Spearman on the diverging map and SSIM on the min-max normalised mask. The per-image value is the mean over replicas (each replica is one pair with the audited model). Also recorded: the share of replicas that predict the same class (label-agreement), so a low similarity on an image the replicas classify differently is visible as such. Stochastic methods share their Monte Carlo draws between the models. A model-blind map (edge detector, fixed random map) is trivially identical across replicas: that is no evidence of stability, which is why the built-in suite gates on model dependence first and reports such passes as not credited. Reconstructed from the paper's abstract: the paper's exact similarity and aggregation are not public.",
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
    let mut sums: std::collections::BTreeMap<usize, ([f64; 3], f64)> = Default::default();
    let mut pictures = std::collections::BTreeMap::new();
    for (r, replica) in run.replicas.iter().enumerate() {
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
        let agree = std::sync::Mutex::new(std::collections::BTreeMap::new());
        let (sims, pics) = compare::sweep(
            run,
            m,
            replica,
            &cp,
            1 + r as u64,
            &format!("replica {}", r + 1),
            |i, pred, replica_pred| {
                agree
                    .lock()
                    .expect("agreement map")
                    .insert(i, f64::from(u8::from(pred == replica_pred)));
                pred
            },
        )?;
        let agree = agree.into_inner().expect("agreement map");
        for (i, v) in sims {
            let e = sums.entry(i).or_insert(([0.0; 3], 0.0));
            for (acc, x) in e.0.iter_mut().zip(v) {
                *acc += x;
            }
            e.1 += agree.get(&i).copied().unwrap_or(0.0);
        }
        if r == 0 {
            pictures = pics;
        }
    }
    let k = run.replicas.len() as f64;
    let mut f = Finding::new("");
    f.examples = pictures;
    for (i, (s, a)) in sums {
        f.push(
            i,
            &[
                ("spearman-abs", s[0] / k),
                ("spearman", s[1] / k),
                ("ssim", s[2] / k),
                ("label-agreement", a / k),
            ],
            None,
        );
    }
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
};
