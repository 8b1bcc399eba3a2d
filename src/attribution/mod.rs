//! Attribution methods. One file per method; this module holds what they share:
//! targets, scores, batching of perturbations, channel aggregation and normalisation.
pub mod averaged_transforms;
pub mod config;
pub mod context_agnostic_occlusion;
pub mod edge;
pub mod extremal_perturbation;
pub mod fixed_random;
pub mod grad_cam;
pub mod grad_cam_plus_plus;
pub mod gradient_x_input;
pub mod integrated_gradients;
pub mod interaction_cam;
pub mod l_cam;
pub mod l_cam_fm;
pub mod l_cam_img;
pub mod meaningful_perturbation;
pub mod occlusion;
pub mod pairwise_occlusion;
pub mod pixel_invariance;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Score {
    /// Pre-softmax logit of the target class.
    Logit,
    /// Softmax probability of the target class.
    Softmax,
}

impl Score {
    pub const ALL: [Score; 2] = [Score::Logit, Score::Softmax];
}

/// Reduction of a `[C,H,W]` attribution to an `[H,W]` map (Simonyan: max |a|; PAIR and Ghorbani: sum |a|).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregate {
    /// max_c |a_c| (Simonyan et al.)
    MaxAbs,
    /// Σ_c |a_c| (PAIR, Ghorbani)
    SumAbs,
    /// Σ_c a_c, signed
    Sum,
}

impl Aggregate {
    pub const ALL: [Aggregate; 3] = [Aggregate::MaxAbs, Aggregate::SumAbs, Aggregate::Sum];
}

/// Per-image normalisation of the aggregated map (Quantus normalise_by_max; Binder et al. 2023 second moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl Normalize {
    pub const ALL: [Normalize; 4] = [
        Normalize::None,
        Normalize::Minmax,
        Normalize::MaxAbs,
        Normalize::SecondMoment,
    ];
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

/// Refuses maps `[B,...]` with a NaN or infinite value, naming up to five of the inputs
/// (`name(i)` for row i). `explain` and every audit run it, so neither writes nor averages
/// a broken map.
pub fn check_finite(method: &str, maps: &Tensor, name: impl Fn(usize) -> String) -> Result<()> {
    let ok: Vec<bool> = Vec::try_from(
        maps.isfinite()
            .flatten(1, -1)
            .all_dim(1, false)
            .to_device(tch::Device::Cpu),
    )?;
    let bad: Vec<usize> = (0..ok.len()).filter(|i| !ok[*i]).collect();
    if bad.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = bad.iter().take(5).map(|i| name(*i)).collect();
    Err(Error::method(
        method,
        format!(
            "produced NaN or infinite attributions for {} input(s), e.g. {}",
            bad.len(),
            names.join(", ")
        ),
        "check the model for numerical problems on these images, or use another method",
    ))
}

/// An optimised explanation (meaningful, extremal perturbation): checks the parameters, then
/// runs `optimise` on groups of exactly `group` images per device pass.
///
/// Why slots: hundreds of optimiser steps amplify last-bit differences into different maps,
/// and a kernel's last bits depend on the batch shape and on where in the batch an image
/// sits (vectorised loops and thread splits), not on the other images' values. So every
/// image is always optimised in a batch of `group` rows at row `(image + evaluation) mod
/// group`, empty rows padded with zeros: its map is then the same whatever the call's batch
/// size, the other images in it, their order or the sharding.
pub fn optimise_grouped<P: Validate>(
    method: &str,
    p: &P,
    group: Option<usize>,
    x: &Tensor,
    targets: &Tensor,
    ids: &[u64],
    mut optimise: impl FnMut(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    p.validate()
        .map_err(|e| Error::method(method, e, format!("fix [methods.{method}]")))?;
    let n = x.size()[0] as usize;
    let group = group.unwrap_or_else(|| auto_group(x)).max(1);
    if ids.len() != n {
        return Err(Error::method(
            method,
            format!("got {} image ids for {n} images", ids.len()),
            "this is a bug in xaudit: please report it",
        ));
    }
    // Greedy packing: each image goes into the first open group whose slot is free.
    let mut groups: Vec<Vec<Option<usize>>> = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let slot = (image_of(id).wrapping_add(id >> IMAGE_BITS) % group as u64) as usize;
        match groups.iter_mut().find(|g| g[slot].is_none()) {
            Some(g) => g[slot] = Some(i),
            None => {
                let mut g = vec![None; group];
                g[slot] = Some(i);
                groups.push(g);
            }
        }
    }
    let pad_x = x.narrow(0, 0, 1).zeros_like();
    let pad_t = targets.narrow(0, 0, 1).zeros_like();
    let mut out: Vec<Option<Tensor>> = (0..n).map(|_| None).collect();
    for g in &groups {
        let rows = |src: &Tensor, pad: &Tensor| {
            let parts: Vec<Tensor> = g
                .iter()
                .map(|r| match r {
                    Some(i) => src.narrow(0, *i as i64, 1),
                    None => pad.shallow_clone(),
                })
                .collect();
            Tensor::cat(&parts, 0)
        };
        let maps = optimise(&rows(x, &pad_x), &rows(targets, &pad_t))?;
        for (slot, r) in g.iter().enumerate() {
            if let Some(i) = r {
                out[*i] = Some(maps.narrow(0, slot as i64, 1));
            }
        }
    }
    let parts: Vec<Tensor> = out.into_iter().flatten().collect();
    Ok(Tensor::cat(&parts, 0))
}

/// Images per optimisation pass when not set: 8 on a GPU; on the CPU the most (a power of
/// two up to 8) that keep 64 Ki pixels per pass. Measured on the 2-core CPU: 8 digits (28 px)
/// per pass halve meaningful perturbation's time, while 8 images of 224 px per pass made
/// extremal perturbation several times slower per image than one (its mask generator's
/// memory traffic grows with the batch). A function of the device and the input size only,
/// so every image of a run gets the same group.
pub fn auto_group(x: &Tensor) -> usize {
    if x.device() != tch::Device::Cpu {
        return 8;
    }
    let s = x.size();
    let pixels = (s[2] * s[3]).max(1) as usize;
    let mut g = 8;
    while g > 1 && g * pixels > 65536 {
        g /= 2;
    }
    g
}

/// The references of an embedding model, for the methods of Sammani et al. that explain the
/// similarity of a pair; a classifier is refused with the fix.
pub fn references<'a>(model: &'a Model, method: &str) -> Result<&'a crate::embedding::References> {
    model.embedding.as_ref().ok_or_else(|| {
        Error::method(
            method,
            "explains the similarity of two images' embeddings, and this model is a classifier",
            "declare the model as an embedding model ([model] kind = \"embedding\", docs/model-contract.md), or pick a classifier method",
        )
    })
}

/// The other image of each pair `[B,C,H,W]` (model space, on `device`), for the methods
/// that perturb both images; class prototypes are no image and are refused with the fix.
pub fn partners(model: &Model, method: &str, targets: &Tensor) -> Result<Tensor> {
    references(model, method)?
        .partner_pixels(targets, model.device)
        .ok_or_else(|| {
            Error::method(
                method,
                "perturbs both images of a pair, and class prototypes are no image",
                "pair each image with its second view or a partner image ([embedding] reference = \"view\" or \"image\", docs/model-contract.md)",
            )
        })
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

/// What a method needs from the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Needs {
    /// Nothing: a control that ignores the model.
    Nothing,
    /// `forward` only (black-box).
    Forward,
    /// Gradients of `forward` with respect to the input.
    Gradients,
    /// The exported `features` (and `head`), no gradients.
    Features,
    /// `features`/`head` and gradients through `head`.
    FeaturesAndGradients,
}

/// A method's registry entry: everything about it besides its parameters and code. Each
/// method file declares one as `pub const INFO`.
#[derive(Debug, Clone, Copy)]
pub struct MethodInfo {
    /// The name in config files, `--method` and reports (kebab-case of the variant).
    pub name: &'static str,
    pub summary: &'static str,
    /// The paper (and arXiv id) the implementation follows.
    pub reference: &'static str,
    /// The score the reference implementation explains.
    pub score: Score,
    /// Default channel reduction: the paper's for saliency, PAIR/Ghorbani's Σ|a| for products
    /// with the input; single-map methods are left as they are (signed sum).
    pub aggregate: Aggregate,
    pub needs: Needs,
    /// The map is a Monte Carlo estimate (its own noise floor is reported).
    pub stochastic: bool,
    /// A model-blind control explanation.
    pub control: bool,
    /// Runs on video models (clips as contact sheets, `crate::clip`): per-pixel methods,
    /// and those whose windows, masks or feature grids know the frames.
    pub clips: bool,
    /// Model passes per image, as the method's structure fixes them.
    pub cost: &'static str,
}

/// Parameters of a method without any.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl Validate for NoParams {}

/// Checks of a method's parameter values beyond their types (ranges); run when a config or
/// suite file loads and when `explain --param` is parsed.
pub trait Validate {
    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// The method registry: one line per method, `module => Variant`. The module provides
/// `INFO`, `Params` (Default + serde, kebab-case keys, unknown keys denied; `NoParams` when it
/// has none) with `Validate`, and `explain(ctx, &Params, x, targets, ids)`. Order = the order
/// of `xaudit methods`.
macro_rules! registry {
    ($($module:ident => $Variant:ident),* $(,)?) => {
        /// The methods xaudit implements.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum MethodKind {
            $($Variant),*
        }

        impl MethodKind {
            pub const ALL: &'static [MethodKind] = &[$(MethodKind::$Variant),*];

            pub fn info(self) -> &'static MethodInfo {
                match self {
                    $(MethodKind::$Variant => &$module::INFO),*
                }
            }
        }

        /// A method with all its parameters.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "method", rename_all = "kebab-case")]
        pub enum MethodSpec {
            $($Variant($module::Params)),*
        }

        impl MethodSpec {
            pub fn kind(&self) -> MethodKind {
                match self {
                    $(MethodSpec::$Variant(_) => MethodKind::$Variant),*
                }
            }

            /// The method with its reference defaults.
            pub fn with_defaults(kind: MethodKind) -> MethodSpec {
                match kind {
                    $(MethodKind::$Variant => MethodSpec::$Variant(Default::default())),*
                }
            }

            /// The method with the parameters of a `[methods.NAME]` table (keys other than
            /// `score`/`aggregate`), typed and validated; the message names what is wrong.
            pub fn from_table(
                kind: MethodKind,
                table: &toml::Table,
            ) -> std::result::Result<MethodSpec, String> {
                match kind {
                    $(MethodKind::$Variant => {
                        let p: $module::Params = toml::Value::Table(table.clone())
                            .try_into()
                            .map_err(|e: toml::de::Error| e.message().trim().to_string())?;
                        p.validate()?;
                        Ok(MethodSpec::$Variant(p))
                    })*
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
                let info = self.kind().info();
                if ctx.model.clip.is_some() && !info.clips {
                    let ok: Vec<&str> = MethodKind::ALL
                        .iter()
                        .filter(|k| k.info().clips)
                        .map(|k| k.info().name)
                        .collect();
                    return Err(Error::method(
                        info.name,
                        "does not run on video models: its masks or feature maps are those of single images",
                        format!("pick a method that knows clips: {}", ok.join(", ")),
                    ));
                }
                match self {
                    $(MethodSpec::$Variant(p) => $module::explain(ctx, p, x, targets, ids)),*
                }
            }
        }
    };
}

registry! {
    saliency => Saliency,
    gradient_x_input => GradientXInput,
    integrated_gradients => IntegratedGradients,
    smoothgrad => Smoothgrad,
    grad_cam => GradCam,
    grad_cam_plus_plus => GradCamPlusPlus,
    interaction_cam => InteractionCam,
    context_agnostic_occlusion => ContextAgnosticOcclusion,
    pairwise_occlusion => PairwiseOcclusion,
    averaged_transforms => AveragedTransforms,
    pixel_invariance => PixelInvariance,
    score_cam => ScoreCam,
    sidu => Sidu,
    sobol => Sobol,
    meaningful_perturbation => MeaningfulPerturbation,
    extremal_perturbation => ExtremalPerturbation,
    l_cam_img => LCamImg,
    l_cam_fm => LCamFm,
    occlusion => Occlusion,
    rise => Rise,
    edge => Edge,
    fixed_random => FixedRandom,
    random => Random,
}

impl MethodKind {
    /// The model-blind controls: explanations that do not look at the model.
    pub fn controls() -> impl Iterator<Item = MethodKind> {
        Self::ALL.iter().copied().filter(|k| k.info().control)
    }

    /// Whether the method ignores the model (a control).
    pub fn is_control(self) -> bool {
        self.info().control
    }

    /// Whether the method reads the model's `features`/`head` (the CAM family).
    pub fn needs_cam(self) -> bool {
        matches!(
            self.info().needs,
            Needs::Features | Needs::FeaturesAndGradients
        )
    }

    /// Whether the method's map is a Monte Carlo estimate (its own noise floor is reported).
    pub fn is_stochastic(self) -> bool {
        self.info().stochastic
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The score the reference implementation explains (softmax for IG, occlusion, RISE, SIDU;
    /// logit otherwise).
    pub fn default_score(self) -> Score {
        self.info().score
    }

    pub fn default_aggregate(self) -> Aggregate {
        self.info().aggregate
    }

    pub fn summary(self) -> &'static str {
        self.info().summary
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

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn every_method_has_one_name_everywhere_and_valid_defaults() {
        for k in MethodKind::ALL {
            let info = k.info();
            // --method (parsed by name), the serialised kind, `method = "..."` in reports
            // and INFO agree.
            assert_eq!(serde_json::to_value(k).unwrap(), info.name);
            let spec = MethodSpec::with_defaults(*k);
            assert_eq!(serde_json::to_value(&spec).unwrap()["method"], info.name);
            assert_eq!(spec.kind(), *k);
            // The defaults pass the method's own checks, and an empty table gives them.
            let again = MethodSpec::from_table(*k, &toml::Table::new()).unwrap();
            assert_eq!(
                serde_json::to_value(&again).unwrap(),
                serde_json::to_value(&spec).unwrap()
            );
        }
    }
}
