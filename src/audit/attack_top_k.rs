//! XA002 attack-top-k: Ghorbani et al.'s iterative top-k attribution attack.
use super::attack::{self, Objective, Params};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;

pub static DOC: AuditDoc = AuditDoc {
    code: "XA002",
    name: "attack-top-k",
    title: "Explanation fragility under the targeted top-k attack (Ghorbani et al.)",
    what: "Whether an adversary who may change every pixel by at most eps (imperceptibly) without changing the predicted class can move the explanation's most important pixels elsewhere.",
    why: "An explanation that a tiny, label-preserving change can rewrite cannot be trusted as evidence of what the model looked at: a reviewer could be shown any story. Ghorbani et al. showed this for gradient, IG and DeepLIFT maps on ImageNet and skin-lesion models.",
    how: "Iterative attack (official code): x_t = clip(x + clip(x_t + alpha*sign(grad D) - x, -eps, eps)) with D = -(mass of the ORIGINAL top-k pixels in the map of x_t), P iterations, best label-preserving iterate kept. The map is the sum over channels of |a|, normalised to sum H*W. The step direction sign(grad D) comes from the estimator (recorded with its reason and its cost in model passes per image): exact double backpropagation through the explanation when the model is twice differentiable (a probe checks it at the start; the paper's method), the same through a smooth surrogate of a piecewise-linear model (--surrogate; acceptance and metrics on the model, as the paper's NET2), else antithetic finite differences along random sign patterns (zo-directions pairs per step in one device pass) of zo-grid x zo-grid pixel blocks; the default zo-grid = 0 alternates 8 x 8 blocks, which carry the information on large inputs, and full resolution, which finds the fine structure of ReLU saliency on small ones. The same images are also attacked with random-sign steps in the same passes; a PASS needs the targeted attack to be significantly stronger (paired one-sided sign test at alpha), otherwise the attack was too weak to show robustness and the result is INCONCLUSIVE. Budgets in 0-255 pixel units, divided by 255*std_c per channel. Images misclassified before the attack are skipped. Recorded per image: top-k intersection (k = 2% of pixels), Spearman rank correlation, centre-of-mass shift (pixels and relative to the diagonal), realised L-inf (pixels), confidence; plus the attack success rate. Images where every iterate changed the predicted class have no label-preserving attack: they are excluded and counted (never scored as perfectly robust). Top-k intersection is tie-aware: ties at the k-th value (ReLU plateaus, upsampled CAM cells) are counted as the expected intersection under random tie-breaking, not broken by pixel index. Stochastic methods share their Monte Carlo draws between the clean and every attacked evaluation, and their noise floor (the metric between two clean explanations with different seeds) is reported.",
    pass: "Default gate: the median top-k intersection after the attack is above 0.5 (exact binomial test of the median in the run's error budget; xaudit convention). A PASS means the attack failed within the budget; how much that shows depends on the estimator the report names: exact is the paper's attack, surrogate an attack found on a smooth copy and replayed on the model, zeroth-order a sampled search (the weakest; give a surrogate for ReLU models).",
    references: &[
        "Ghorbani, Abid, Zou. Interpretation of Neural Networks is Fragile. AAAI 2019, arXiv:1710.10547",
        "Official code: github.com/amiratag/InterpretationFragility (utils.py SimpleGradientAttack, topK)",
        "Spall. Multivariate stochastic approximation using a simultaneous perturbation gradient approximation. IEEE TAC 1992",
    ],
    default_metric: "top-k-intersection",
    default_direction: Direction::Higher,
    metrics: attack::METRICS,
};

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    attack::run(run, m, &p, Objective::TopK, DOC.code)
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
