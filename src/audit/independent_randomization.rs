//! XA102 independent-randomization: one parameter group at a time (Adebayo et al.).
use super::cascading_randomization::{finish, Params};
use super::compare;
use super::randomize::{self, Restore};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::MethodSpec;
use crate::error::Result;

pub static DOC: AuditDoc = AuditDoc {
    code: "XA102",
    name: "independent-randomization",
    title: "Model parameter randomisation test, one layer at a time (Adebayo et al.)",
    what: "Whether the explanation reacts to each layer's weights: every parameter group is re-initialised on its own, the rest of the model staying trained, and the explanation must change.",
    why: "Cascading randomisation can be dominated by the first layers it reaches; randomising one layer at a time shows which layers an explanation ignores. A method insensitive to a layer cannot reveal what that layer learned.",
    how: "For each parameter group (module owning parameters, reverse registration order): restore the trained weights, re-initialise only that group with PyTorch's default initialisers (seeded), explain the class predicted by the modified model and compare with the original explanation (Spearman with abs on PAIR grayscale maps, Spearman without abs on PAIR diverging maps, SSIM on min-max masks). The per-layer curve is recorded; the per-image gated value is the mean over groups (Quantus return_average_correlation). Weights are restored bit-exactly afterwards (checked).",
    pass: "Default gate: median of the per-image mean Spearman (abs) over layers < 0.5 (one-sided Wilcoxon signed-rank, Holm-adjusted; xaudit convention).",
    references: &[
        "Adebayo et al. Sanity Checks for Saliency Maps. NeurIPS 2018, arXiv:1810.03292 (independent randomization)",
        "Official code: github.com/adebayoj/sanity_checks_saliency",
        "Quantus MPRT layer_order=independent (Hedström et al. 2023, JMLR)",
    ],
    default_metric: "spearman-abs",
    default_direction: Direction::Lower,
    metrics: compare::METRICS,
};

fn measure(run: &RunCtx, m: &MethodSpec, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let cp = p.compare(DOC.code)?;
    compare::warm(run, m)?;
    let groups = randomize::groups(run.model)?;
    let guard = Restore::new(run.model)?;
    let mut stages = Vec::new();
    let mut pictures = compare::Pictures::new();
    for (k, (gi, g)) in groups.iter().enumerate().rev().enumerate() {
        guard.restore()?;
        randomize::reinit_with(p.init, g, run.seed, gi)?;
        let label = &format!("only {} randomised", g.name);
        // Pictures of the last stage only; the gated value is the mean over stages, not that
        // sweep's similarity, so all of them.
        let keep = if k + 1 == groups.len() {
            compare::Keep::All
        } else {
            compare::Keep::None
        };
        let (sims, pics) = compare::sweep_pictures(
            run,
            m,
            run.model,
            &cp,
            1 + k as u64,
            label,
            p.target.pick(),
            keep,
        )?;
        stages.push((g.name.clone(), sims));
        pictures = pics;
    }
    guard.finish()?;
    let mut f = Finding::new("");
    f.examples = pictures;
    f.summary(
        "layer_order",
        stages.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
    );
    f.summary("weights_restored_bit_exact", true);
    let mean_over = |st: &[compare::Sims], row: usize| {
        let mut acc = [0.0; 3];
        for s in st {
            for (a, v) in acc.iter_mut().zip(s[row].1) {
                *a += v / st.len() as f64;
            }
        }
        acc
    };
    Ok(vec![finish(
        f,
        stages,
        mean_over,
        "randomised layer (alone)",
    )])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "sanity",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
};
