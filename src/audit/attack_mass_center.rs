//! XA003 attack-mass-center: Ghorbani et al.'s centre-of-mass attack.
use super::attack::{self, Objective, Params};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;

pub static DOC: AuditDoc = AuditDoc {
    code: "XA003",
    name: "attack-mass-center",
    title: "Explanation fragility under the centre-of-mass attack (Ghorbani et al.)",
    what: "Whether a label-preserving perturbation inside a small L-infinity ball can drag the explanation's centre of mass away from where it was.",
    why: "Reviewers read saliency maps as 'the model looked here'. If an imperceptible change moves the centre of the map across the image while the prediction stays put, that reading is unreliable.",
    how: "Same iterative attack as XA002 with D = ||C(x_t) - C(x)||^2, where C is the attribution-weighted mean pixel position (Ghorbani: map = sum over channels of |a|, normalised to sum H*W). Both centres are compared unrounded: the official code integer-casts only the original centre, which on small inputs adds up to 1.4 px of shift that the attack did not cause. The step direction sign(grad D) comes from the estimator (recorded with its reason and its cost in model passes per image): exact double backpropagation through the explanation when the model is twice differentiable (a probe checks it at the start; the paper's method), the same through a smooth surrogate of a piecewise-linear model (--surrogate; acceptance and metrics on the model, as the paper's NET2), else antithetic finite differences along random sign patterns (zo-directions pairs per step in one device pass) of zo-grid x zo-grid pixel blocks; the default zo-grid = 0 alternates 8 x 8 blocks, which carry the information on large inputs, and full resolution, which finds the fine structure of ReLU saliency on small ones. The same images are also attacked with random-sign steps in the same passes; a PASS needs the targeted attack to be significantly stronger (paired one-sided sign test at alpha), otherwise the attack was too weak to show robustness and the result is INCONCLUSIVE. The kept iterate is the label-preserving one with the largest shift. Recorded per image: centre-of-mass shift in pixels and relative to the image diagonal, top-k intersection, Spearman, realised L-inf, confidence; plus the attack success rate. Images where every iterate changed the predicted class have no label-preserving attack: they are excluded and counted (never scored as perfectly robust). Top-k intersection is tie-aware: ties at the k-th value (ReLU plateaus, upsampled CAM cells) are counted as the expected intersection under random tie-breaking, not broken by pixel index. Stochastic methods share their Monte Carlo draws between the clean and every attacked evaluation, and their noise floor (the metric between two clean explanations with different seeds) is reported.",
    pass: "Default gate: the median relative centre-of-mass shift is below 0.1 of the image diagonal (exact binomial test of the median in the run's error budget). The 0.1 is an xaudit convention, not a paper value. A PASS means the attack failed within the budget; how much that shows depends on the estimator the report names: exact is the paper's attack, surrogate an attack found on a smooth copy and replayed on the model, zeroth-order a sampled search (the weakest; give a surrogate for ReLU models).",
    references: &[
        "Ghorbani, Abid, Zou. Interpretation of Neural Networks is Fragile. AAAI 2019, arXiv:1710.10547",
        "Official code: github.com/amiratag/InterpretationFragility (utils.py, mass_center)",
    ],
    default_metric: "center-of-mass-shift-relative",
    default_direction: Direction::Lower,
    metrics: attack::METRICS,
};

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    attack::run(run, m, &p, Objective::MassCenter, DOC.code)
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
    clips: false,
};
