//! XA103 random-logit: explanation of the predicted class vs a random other class.
use super::compare::{self, CompareParams};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::{Error, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA103",
    name: "random-logit",
    title: "Class sensitivity: predicted class vs a random other class (Sixt et al.; Quantus RandomLogit)",
    what: "Whether the explanation depends on which class is explained: the map for the predicted class is compared with the map for a randomly chosen other class.",
    why: "If every class gets the same map, the explanation cannot say why the model chose this class over another; it only shows where the input has structure. Sixt et al. showed that many modified backpropagation methods collapse to class-insensitive maps.",
    how: "For each image a class other than the predicted one is drawn uniformly (seeded by --seed and the image). Both maps are computed on the trained model and compared with SSIM on min-max normalised masks (Gaussian window sigma 1.5, data range 1; Quantus RandomLogit uses SSIM) and with Spearman rank correlations (abs on PAIR grayscale, signed on PAIR diverging maps).",
    pass: "Default gate: the median SSIM is below 0.5 (exact binomial test of the median in the run's error budget; xaudit convention, not a paper value).",
    references: &[
        "Sixt, Granz, Landgraf. When Explanations Lie: Why Many Modified BP Attributions Fail. ICML 2020, arXiv:1912.09818",
        "Quantus RandomLogit (Hedström et al. 2023, JMLR)",
    ],
    default_metric: "ssim",
    default_direction: Direction::Lower,
    metrics: &["ssim", "spearman-abs", "spearman"],
};

/// Similarity settings (the model is not randomised, so the randomisation audits' `init`
/// and `target` do not apply).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    #[serde(default = "d_pct")]
    pub percentile: f64,
    #[serde(default = "d_dr")]
    pub ssim_data_range: f64,
}
fn d_pct() -> f64 {
    99.0
}
fn d_dr() -> f64 {
    1.0
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
    let k = run.model.num_classes;
    if k < 2 {
        return Err(Error::NotApplicable("the model has a single class".into()));
    }
    let seed = run.seed;
    let (sims, pics) = compare::sweep(
        run,
        m,
        run.model,
        &cp,
        1,
        "random other class",
        |i, pred, _| {
            let mut rng = crate::rng::stream(seed, "random-logit", i as u64, 0);
            let r = rng.random_range(0..k - 1);
            if r >= pred {
                r + 1
            } else {
                r
            }
        },
    )?;
    let mut f = Finding::new("");
    f.examples = pics;
    for (i, v) in sims {
        f.push(
            i,
            &[("spearman-abs", v[0]), ("spearman", v[1]), ("ssim", v[2])],
            None,
        );
    }
    Ok(vec![f])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "sanity",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: None,
    shardable: true,
    clips: true,
};
