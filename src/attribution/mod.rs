//! Attribution methods. One file per method; this module holds what they share:
//! targets, scores, batching of perturbations, channel aggregation and normalisation.
pub mod config;
pub mod edge;
pub mod fixed_random;
pub mod grad_cam;
pub mod grad_cam_plus_plus;
pub mod gradient_x_input;
pub mod integrated_gradients;
pub mod occlusion;
pub mod random;
pub mod rise;
pub mod saliency;
pub mod score_cam;
pub mod second_order;
pub mod sidu;
pub mod smoothgrad;
pub mod sobol;

use crate::error::{Error, Result};
use crate::model::Model;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which model output is explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Score {
    /// Pre-softmax logit of the target class.
    Logit,
    /// Softmax probability of the target class.
    Softmax,
}

/// Reduction of a `[C,H,W]` attribution to an `[H,W]` map (Simonyan: max |a|; PAIR and Ghorbani: sum |a|).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    /// max_c |a_c| (Simonyan et al.)
    MaxAbs,
    /// Σ_c |a_c| (PAIR, Ghorbani)
    SumAbs,
    /// Σ_c a_c, signed
    Sum,
}

/// Per-image normalisation of the aggregated map (Quantus normalise_by_max; Binder et al. 2023 second moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    None,
    /// (a - min)/(max - min), 0 for a constant map.
    Minmax,
    /// a / max|a| (Quantus normalise_by_max).
    MaxAbs,
    /// a / sqrt(mean(a²)) (Binder et al. 2023).
    SecondMoment,
}

/// Everything a method needs besides its own parameters.
pub struct Ctx<'a> {
    pub model: &'a Model,
    pub seed: u64,
    /// Most samples (images x perturbations) per forward pass.
    pub internal_batch: usize,
    pub score: Score,
}

/// Raw attribution plus per-image diagnostics (e.g. IG completeness error).
pub struct Attribution {
    /// `[B,C,H,W]` for pixel methods, `[B,1,H,W]` for single-map methods.
    pub maps: Tensor,
    pub diagnostics: Vec<(String, Vec<f64>)>,
    /// The model's logits `[B,K]` at exactly the explained inputs, when the method's own
    /// forward pass produced them: callers then need no separate prediction pass.
    pub logits: Option<Tensor>,
}

impl Attribution {
    pub fn plain(maps: Tensor) -> Self {
        Attribution {
            maps,
            diagnostics: Vec::new(),
            logits: None,
        }
    }

    pub fn with_logits((maps, logits): (Tensor, Tensor)) -> Self {
        Attribution {
            maps,
            diagnostics: Vec::new(),
            logits: Some(logits),
        }
    }
}

/// Target-class score `[B]` from logits `[B,K]`.
pub fn target_score(logits: &Tensor, targets: &Tensor, score: Score) -> Tensor {
    let out = match score {
        Score::Logit => logits.shallow_clone(),
        Score::Softmax => logits.softmax(-1, Kind::Float),
    };
    out.gather(1, &targets.view([-1, 1]), false).view([-1])
}

/// d score(g(v_i))[t_i] / d v_i for every sample, in one backward pass, where `g` maps a
/// fresh leaf copy of `v` to logits (the model's forward for inputs, `head` for features).
pub fn leaf_grads(
    v: &Tensor,
    targets: &Tensor,
    score: Score,
    g: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    leaf_grads_logits(v, targets, score, g).map(|(grads, _)| grads)
}

/// As `leaf_grads`, also returning the (detached) logits of the same forward pass.
pub fn leaf_grads_logits(
    v: &Tensor,
    targets: &Tensor,
    score: Score,
    g: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<(Tensor, Tensor)> {
    // Grad mode is thread-local in libtorch; force it on whatever the caller did.
    tch::with_grad(|| {
        let leaf = v.detach().set_requires_grad(true);
        let logits = g(&leaf)?;
        let s = target_score(&logits, targets, score);
        // Seeds every root with 1, i.e. the gradient of Σ_i s_i: samples are independent in eval mode.
        let mut grads = Tensor::f_run_backward(&[&s], &[&leaf], false, false)?;
        let grads = grads.pop().filter(Tensor::defined).ok_or_else(|| {
            Error::method(
                "gradient",
                "libtorch returned no gradient with respect to the input or features",
                "make sure forward (and head) use their input through differentiable operations",
            )
        })?;
        Ok((grads, logits.detach()))
    })
}

/// d score(x_i)[t_i] / d x_i for every sample.
pub fn input_grads(model: &Model, x: &Tensor, targets: &Tensor, score: Score) -> Result<Tensor> {
    leaf_grads(x, targets, score, |leaf| model.forward_grad(leaf))
}

/// As `input_grads`, also returning the logits at `x`.
pub fn input_grads_logits(
    model: &Model,
    x: &Tensor,
    targets: &Tensor,
    score: Score,
) -> Result<(Tensor, Tensor)> {
    leaf_grads_logits(x, targets, score, |leaf| model.forward_grad(leaf))
}

/// The model's logits `[B,K,classes]` at `x_b ⊙ masks_{b,k}` for masks `[B,K,H,W]` shared by
/// the channels, B·K inputs in passes of at most `ctx.internal_batch` (which may split an
/// image's masks: every input is independent in eval mode).
pub fn masked_logits(ctx: &Ctx, x: &Tensor, masks: &Tensor) -> Result<Tensor> {
    let ms = masks.size();
    let (b, k) = (ms[0], ms[1]);
    let flat = masks.reshape([b * k, 1, ms[2], ms[3]]);
    let mut parts = Vec::new();
    for_chunks((b * k) as usize, ctx.internal_batch, |r| {
        let idx = Tensor::arange_start(r.start as i64, r.end as i64, (Kind::Int64, x.device()));
        let img = idx.divide_scalar_mode(k, "floor");
        let xs = x.index_select(0, &img) * flat.index_select(0, &idx);
        parts.push(ctx.model.logits(&xs)?.to_kind(Kind::Float));
        Ok(())
    })?;
    let out = Tensor::cat(&parts, 0);
    let classes = out.size()[1];
    Ok(out.view([b, k, classes]))
}

/// Evaluates `f` on consecutive sample ranges of at most `chunk` items.
pub fn for_chunks(
    total: usize,
    chunk: usize,
    mut f: impl FnMut(std::ops::Range<usize>) -> Result<()>,
) -> Result<()> {
    let chunk = chunk.max(1);
    let mut start = 0;
    while start < total {
        crate::interrupt::check()?;
        let end = (start + chunk).min(total);
        f(start..end)?;
        start = end;
    }
    Ok(())
}

/// Adds `values[j]` into `acc[owner[j]]`, summing each contiguous run of one owner in order,
/// so the result is deterministic on every device (no atomics as in index_add on CUDA).
pub fn accumulate_runs(acc: &mut Tensor, owner: &[usize], values: &Tensor) {
    let mut j = 0;
    while j < owner.len() {
        let o = owner[j];
        let mut k = j;
        while k < owner.len() && owner[k] == o {
            k += 1;
        }
        let part =
            values
                .narrow(0, j as i64, (k - j) as i64)
                .sum_dim_intlist(0, false, values.kind());
        let mut row = acc.get(o as i64);
        row += part;
        j = k;
    }
}

/// `[B,C,H,W]` → `[B,H,W]`.
pub fn aggregate(maps: &Tensor, how: Aggregate) -> Tensor {
    match how {
        Aggregate::MaxAbs => maps.abs().amax([1i64].as_slice(), false),
        Aggregate::SumAbs => maps.abs().sum_dim_intlist(1, false, Kind::Float),
        Aggregate::Sum => maps.sum_dim_intlist(1, false, Kind::Float),
    }
}

/// Per-image normalisation of `[B,H,W]` maps.
pub fn normalize(maps: &Tensor, how: Normalize) -> Tensor {
    let dims = [1i64, 2].as_slice();
    match how {
        Normalize::None => maps.shallow_clone(),
        Normalize::Minmax => {
            let mn = maps.amin(dims, true);
            let range = maps.amax(dims, true) - &mn;
            let safe = range.where_self(&range.gt(0.0), &range.ones_like());
            ((maps - &mn) / safe) * range.gt(0.0).to_kind(Kind::Float)
        }
        Normalize::MaxAbs => {
            let m = maps.abs().amax(dims, true);
            let safe = m.where_self(&m.gt(0.0), &m.ones_like());
            maps / safe
        }
        Normalize::SecondMoment => {
            let m = maps.square().mean_dim(dims, true, Kind::Float).sqrt();
            let safe = m.where_self(&m.gt(0.0), &m.ones_like());
            maps / safe
        }
    }
}

/// The methods xaudit implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MethodKind {
    Saliency,
    GradientXInput,
    IntegratedGradients,
    Smoothgrad,
    GradCam,
    GradCamPlusPlus,
    ScoreCam,
    Sidu,
    Sobol,
    Occlusion,
    Rise,
    /// Control: seeded uniform noise, ignores model and input.
    Random,
    /// Control: Sobel edge magnitude of the input, ignores the model.
    Edge,
    /// Control: one seeded uniform noise map per image that never moves (ignores the model,
    /// the class, the input's content and any perturbation).
    FixedRandom,
}

impl MethodKind {
    pub const ALL: [MethodKind; 14] = [
        MethodKind::Saliency,
        MethodKind::GradientXInput,
        MethodKind::IntegratedGradients,
        MethodKind::Smoothgrad,
        MethodKind::GradCam,
        MethodKind::GradCamPlusPlus,
        MethodKind::ScoreCam,
        MethodKind::Sidu,
        MethodKind::Sobol,
        MethodKind::Occlusion,
        MethodKind::Rise,
        MethodKind::Random,
        MethodKind::Edge,
        MethodKind::FixedRandom,
    ];

    /// The model-blind controls: explanations that do not look at the model.
    pub const CONTROLS: [MethodKind; 3] = [
        MethodKind::Edge,
        MethodKind::FixedRandom,
        MethodKind::Random,
    ];

    /// Whether the method ignores the model (a control).
    pub fn is_control(self) -> bool {
        Self::CONTROLS.contains(&self)
    }

    /// Whether the method reads the model's `features`/`head` (the CAM family).
    pub fn needs_cam(self) -> bool {
        matches!(
            self,
            MethodKind::GradCam
                | MethodKind::GradCamPlusPlus
                | MethodKind::ScoreCam
                | MethodKind::Sidu
        )
    }

    /// Whether the method's map is a Monte Carlo estimate (its own noise floor is reported).
    pub fn is_stochastic(self) -> bool {
        matches!(self, MethodKind::Smoothgrad | MethodKind::Rise)
    }

    pub fn name(self) -> &'static str {
        match self {
            MethodKind::Saliency => "saliency",
            MethodKind::GradientXInput => "gradient-x-input",
            MethodKind::IntegratedGradients => "integrated-gradients",
            MethodKind::Smoothgrad => "smoothgrad",
            MethodKind::GradCam => "grad-cam",
            MethodKind::GradCamPlusPlus => "grad-cam-plus-plus",
            MethodKind::ScoreCam => "score-cam",
            MethodKind::Sidu => "sidu",
            MethodKind::Sobol => "sobol",
            MethodKind::Occlusion => "occlusion",
            MethodKind::Rise => "rise",
            MethodKind::Random => "random",
            MethodKind::Edge => "edge",
            MethodKind::FixedRandom => "fixed-random",
        }
    }

    /// The score the reference implementation explains (softmax for IG, occlusion, RISE; logit otherwise).
    pub fn default_score(self) -> Score {
        match self {
            MethodKind::IntegratedGradients
            | MethodKind::Occlusion
            | MethodKind::Rise
            | MethodKind::Sidu => Score::Softmax,
            _ => Score::Logit,
        }
    }

    /// Default channel aggregation: the paper's for saliency, PAIR/Ghorbani's Σ|a| for
    /// products with the input; single-map methods are left as they are (signed).
    pub fn default_aggregate(self) -> Aggregate {
        match self {
            MethodKind::Saliency | MethodKind::Smoothgrad => Aggregate::MaxAbs,
            MethodKind::GradientXInput | MethodKind::IntegratedGradients => Aggregate::SumAbs,
            _ => Aggregate::Sum,
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            MethodKind::Saliency => "vanilla gradient of the score w.r.t. the input (Simonyan et al. 2014)",
            MethodKind::GradientXInput => "input ⊙ gradient (Shrikumar et al. 2016)",
            MethodKind::IntegratedGradients => "path integral of gradients from a baseline (Sundararajan et al. 2017)",
            MethodKind::Smoothgrad => "gradients averaged over Gaussian-noised copies (Smilkov et al. 2017)",
            MethodKind::GradCam => "gradient-weighted class activation map on the `features` output (Selvaraju et al. 2017)",
            MethodKind::GradCamPlusPlus => "Grad-CAM with pixel-weighted positive gradients (Chattopadhay et al. 2018)",
            MethodKind::ScoreCam => "feature channels weighted by the score of the input they mask, gradient-free (Wang et al. 2020)",
            MethodKind::Sidu => "feature-channel masks weighted by score similarity and uniqueness, gradient-free (Muddamsetty et al. 2022)",
            MethodKind::Sobol => "total-order Sobol indices of grid cells under quasi-Monte Carlo masks, black-box (Fel et al. 2021)",
            MethodKind::Occlusion => "score drop when sliding a baseline patch over the input (Zeiler & Fergus 2014)",
            MethodKind::Rise => "score-weighted random masks (Petsiuk et al. 2018)",
            MethodKind::Random => "control: seeded uniform noise map",
            MethodKind::Edge => "control: Sobel edge magnitude of the input, model-independent",
            MethodKind::FixedRandom => "control: one seeded noise map per image that never moves",
        }
    }
}

/// A method with all its parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum MethodSpec {
    Saliency,
    GradientXInput,
    IntegratedGradients(integrated_gradients::Params),
    Smoothgrad(smoothgrad::Params),
    GradCam(grad_cam::Params),
    GradCamPlusPlus(grad_cam_plus_plus::Params),
    ScoreCam(score_cam::Params),
    Sidu(sidu::Params),
    Sobol(sobol::Params),
    Occlusion(occlusion::Params),
    Rise(rise::Params),
    Random,
    Edge,
    FixedRandom,
}

impl MethodSpec {
    pub fn kind(&self) -> MethodKind {
        match self {
            MethodSpec::Saliency => MethodKind::Saliency,
            MethodSpec::GradientXInput => MethodKind::GradientXInput,
            MethodSpec::IntegratedGradients(_) => MethodKind::IntegratedGradients,
            MethodSpec::Smoothgrad(_) => MethodKind::Smoothgrad,
            MethodSpec::GradCam(_) => MethodKind::GradCam,
            MethodSpec::GradCamPlusPlus(_) => MethodKind::GradCamPlusPlus,
            MethodSpec::ScoreCam(_) => MethodKind::ScoreCam,
            MethodSpec::Sidu(_) => MethodKind::Sidu,
            MethodSpec::Sobol(_) => MethodKind::Sobol,
            MethodSpec::Occlusion(_) => MethodKind::Occlusion,
            MethodSpec::Rise(_) => MethodKind::Rise,
            MethodSpec::Random => MethodKind::Random,
            MethodSpec::Edge => MethodKind::Edge,
            MethodSpec::FixedRandom => MethodKind::FixedRandom,
        }
    }

    /// The method with its reference defaults.
    pub fn with_defaults(kind: MethodKind) -> MethodSpec {
        match kind {
            MethodKind::Saliency => MethodSpec::Saliency,
            MethodKind::GradientXInput => MethodSpec::GradientXInput,
            MethodKind::IntegratedGradients => MethodSpec::IntegratedGradients(Default::default()),
            MethodKind::Smoothgrad => MethodSpec::Smoothgrad(Default::default()),
            MethodKind::GradCam => MethodSpec::GradCam(Default::default()),
            MethodKind::GradCamPlusPlus => MethodSpec::GradCamPlusPlus(Default::default()),
            MethodKind::ScoreCam => MethodSpec::ScoreCam(Default::default()),
            MethodKind::Sidu => MethodSpec::Sidu(Default::default()),
            MethodKind::Sobol => MethodSpec::Sobol(Default::default()),
            MethodKind::Occlusion => MethodSpec::Occlusion(Default::default()),
            MethodKind::Rise => MethodSpec::Rise(Default::default()),
            MethodKind::Random => MethodSpec::Random,
            MethodKind::Edge => MethodSpec::Edge,
            MethodKind::FixedRandom => MethodSpec::FixedRandom,
        }
    }

    /// Raw attributions for images `x` `[B,C,H,W]` (model space) and `targets` `[B]`;
    /// `ids` are the images' data-set positions, which key every random draw.
    pub fn attribute(
        &self,
        ctx: &Ctx,
        x: &Tensor,
        targets: &Tensor,
        ids: &[u64],
    ) -> Result<Attribution> {
        match self {
            MethodSpec::Saliency => {
                saliency::attribute_logits(ctx, x, targets).map(Attribution::with_logits)
            }
            MethodSpec::GradientXInput => {
                gradient_x_input::attribute_logits(ctx, x, targets).map(Attribution::with_logits)
            }
            MethodSpec::IntegratedGradients(p) => {
                integrated_gradients::attribute(ctx, p, x, targets)
            }
            MethodSpec::Smoothgrad(p) => {
                smoothgrad::attribute(ctx, p, x, targets, ids).map(Attribution::plain)
            }
            MethodSpec::GradCam(p) => {
                grad_cam::attribute(ctx, p, x, targets).map(Attribution::plain)
            }
            MethodSpec::GradCamPlusPlus(p) => {
                grad_cam_plus_plus::attribute(ctx, p, x, targets).map(Attribution::plain)
            }
            MethodSpec::ScoreCam(p) => {
                score_cam::attribute(ctx, p, x, targets).map(Attribution::plain)
            }
            MethodSpec::Sidu(p) => sidu::attribute(ctx, p, x, targets).map(Attribution::plain),
            MethodSpec::Sobol(p) => sobol::attribute(ctx, p, x, targets).map(Attribution::plain),
            MethodSpec::Occlusion(p) => {
                occlusion::attribute(ctx, p, x, targets).map(Attribution::plain)
            }
            MethodSpec::Rise(p) => rise::attribute(ctx, p, x, targets).map(Attribution::plain),
            MethodSpec::Random => Ok(Attribution::plain(random::attribute(ctx, x, ids))),
            MethodSpec::Edge => Ok(Attribution::plain(edge::attribute(x))),
            MethodSpec::FixedRandom => Ok(Attribution::plain(fixed_random::attribute(ctx, x, ids))),
        }
    }
}

/// Bits of an evaluation id that hold the image's position (the rest number the evaluation).
pub const IMAGE_BITS: u32 = 40;

/// The image position encoded in an evaluation id (see `audit::run::eval_id`). Methods with
/// Monte Carlo draws key them by this alone, so the clean and every perturbed or randomised
/// evaluation of one image share their draws (common random numbers): differences between
/// them are then the model's, not fresh Monte Carlo noise.
pub fn image_of(id: u64) -> u64 {
    id & ((1u64 << IMAGE_BITS) - 1)
}

/// A method as it is audited: its parameters, the explained score and the channel reduction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Method {
    #[serde(flatten)]
    pub spec: MethodSpec,
    pub score: Score,
    pub aggregate: Aggregate,
}

impl Method {
    /// The method with its reference defaults.
    pub fn defaults(kind: MethodKind) -> Method {
        Method {
            spec: MethodSpec::with_defaults(kind),
            score: kind.default_score(),
            aggregate: kind.default_aggregate(),
        }
    }

    pub fn kind(&self) -> MethodKind {
        self.spec.kind()
    }
}

impl std::ops::Deref for Method {
    type Target = MethodSpec;

    /// `attribute` and the rest of the parameters' API (the score comes from the `Ctx`).
    fn deref(&self) -> &MethodSpec {
        &self.spec
    }
}
