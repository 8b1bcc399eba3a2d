//! XA104 data-randomization: true-label model vs a model trained on shuffled labels.
use super::cascading_randomization::{compare_params, d_dr, d_pct, Target};
use super::compare;
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA104",
    name: "data-randomization",
    title: "Data randomisation test (Adebayo et al.)",
    what: "Whether the explanation depends on the relation between images and labels: explanations of the audited model are compared with those of the same architecture trained on randomly permuted labels (given with --random-label-model).",
    why: "A model trained on shuffled labels can only memorise; it has learned nothing about the task. If its explanations look like the real model's, the explanation method reflects the input or the architecture, not the learned task, and cannot support claims about what the model learned.",
    how: "Both models explain the same images, each for its own predicted class. Maps are compared as in the cascading test: Spearman with abs on PAIR grayscale maps (gated), Spearman without abs on PAIR diverging maps, SSIM on min-max masks. The random-label model must have memorised its training set (>= 95% training accuracy in the paper's protocol); xaudit cannot check that from the weights, so state it when filing the report. Not run when no random-label model is given.",
    pass: "Default gate: the median Spearman (abs) is below 0.5 (exact binomial test of the median in the run's error budget; xaudit convention).",
    references: &[
        "Adebayo et al. Sanity Checks for Saliency Maps. NeurIPS 2018, arXiv:1810.03292 (data randomization test)",
        "Zhang et al. Understanding deep learning requires rethinking generalization. ICLR 2017",
    ],
    default_metric: "spearman-abs",
    default_direction: Direction::Lower,
    metrics: compare::METRICS,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    #[serde(default = "d_pct")]
    pub percentile: f64,
    #[serde(default = "d_dr")]
    pub ssim_data_range: f64,
    /// Which class the random-label model explains.
    #[serde(default)]
    pub target: Target,
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        compare::check(self.percentile, self.ssim_data_range)
    }
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let cp = compare_params(p.percentile, p.ssim_data_range);
    let Some(other) = run.random_label_model else {
        return Err(Error::NotApplicable(
            "no model trained on shuffled labels was given (--random-label-model FILE)".into(),
        ));
    };
    if other.num_classes != run.model.num_classes {
        return Err(Error::model(
            &other.path,
            format!(
                "random-label model has {} classes but the audited model has {}",
                other.num_classes, run.model.num_classes
            ),
            "train the random-label model with the same architecture and class count",
        ));
    }
    if m.kind().needs_cam() {
        other.require_cam(m.kind().name())?;
    }
    let floor = compare::noise_floor(run, m, &cp)?;
    let (sims, pics) =
        compare::sweep(run, m, other, &cp, 1, "random-label model", p.target.pick())?;
    let mut f = Finding::new("");
    super::run::keep_noise_floors(&mut f, "spearman-abs", &floor);
    f.examples = pics;
    for (i, v) in sims {
        f.push(
            i,
            &[("spearman-abs", v[0]), ("spearman", v[1]), ("ssim", v[2])],
            None,
        );
    }
    f.summary("random_label_model", other.path.display().to_string());
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
