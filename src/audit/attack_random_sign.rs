//! XA001 attack-random-sign: Ghorbani et al.'s random-sign perturbation baseline.
use super::attack::{self, Objective, Params};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;

pub static DOC: AuditDoc = AuditDoc {
    code: "XA001",
    name: "attack-random-sign",
    title: "Explanation stability under random-sign perturbations (Ghorbani et al. baseline)",
    what: "Whether the explanation of an image keeps its most important pixels when the image is moved by random-sign steps inside a small L-infinity ball (imperceptible noise), while the predicted class stays the same.",
    why: "If imperceptible random noise already reshuffles the explanation, the explanation describes noise rather than the model's reasoning, and any targeted attack will do worse. It is the baseline that the targeted attacks (XA002, XA003) are compared with.",
    how: "For each correctly classified image, P iterations of x_t = clip(x + clip(x_t + alpha*sign(N(0,I)) - x, -eps, eps)) in the valid pixel range (fresh draw per step, seeded by --seed and the image). Among iterates that keep the predicted class, the one whose map has the smallest top-k intersection with the original map is kept. Maps use the Ghorbani reduction (sum over channels of |a|, normalised to sum H*W). Budgets are given in 0-255 pixel units and divided by 255*std_c per channel. Recorded per image: top-k intersection (k = 2% of pixels), Spearman rank correlation (average ranks), centre-of-mass shift in pixels and relative to the image diagonal, realised L-inf in pixel units, and confidence. Images where every iterate changed the predicted class have no label-preserving attack: they are excluded and counted (never scored as perfectly robust). Top-k intersection is tie-aware: ties at the k-th value (ReLU plateaus, upsampled CAM cells) are counted as the expected intersection under random tie-breaking, not broken by pixel index. Stochastic methods share their Monte Carlo draws between the clean and every attacked evaluation, and their noise floor (the metric between two clean explanations with different seeds) is reported.",
    pass: "Default gate: the median top-k intersection is above 0.5 (exact binomial test of the median in the run's error budget; xaudit convention). The threshold lives in the suite file.",
    references: &[
        "Ghorbani, Abid, Zou. Interpretation of Neural Networks is Fragile. AAAI 2019, arXiv:1710.10547",
        "Official code: github.com/amiratag/InterpretationFragility (utils.py, random sign baseline)",
    ],
    default_metric: "top-k-intersection",
    default_direction: Direction::Higher,
    metrics: attack::METRICS,
};

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    attack::run(run, m, &p, Objective::RandomSign, DOC.code)
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "robustness",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: Some(super::attack::finish),
    shardable: true,
    clips: true,
};
