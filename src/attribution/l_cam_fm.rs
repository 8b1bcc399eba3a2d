//! L-CAM-Fm (Gkartzonika et al. 2022): the attention module trained on masked feature maps.
//! Everything but the registry entry lives in `l_cam`.
use super::l_cam::{self, Variant};

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "l-cam-fm",
    summary: "learned class attention on the feature maps, trained on masked feature maps; one forward pass",
    reference: "Gkartzonika, Gkalelis & Mezaris 2022 (ECCV Workshops), arXiv:2209.11189",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Features,
    stochastic: false,
    control: false,
    clips: false,
    cost: "1 forward pass to `features` (after training with `xaudit train l-cam`)",
};

pub type Params = l_cam::Params;

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &tch::Tensor,
    targets: &tch::Tensor,
    _ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    l_cam::attribute(ctx, p, Variant::Fm, x, targets).map(super::Attribution::plain)
}
