//! L-CAM (Gkartzonika, Gkalelis & Mezaris 2022, ECCV Workshops, arXiv:2209.11189): a learned
//! attention module on the model's last feature maps, trained once with the classifier frozen,
//! then used with one forward pass. Shared by `l-cam-img` and `l-cam-fm`, which differ only in
//! how the module was trained (the official code, `bmezaris/L-CAM`):
//!
//! * module: one 1×1 convolution from the C feature channels to the K classes (with bias);
//!   `c = conv(features(x))`, `a = sigmoid(c)`;
//! * `img` training: the input masked by `a_y` (bilinearly upsampled) goes through the whole
//!   frozen classifier; `fm`: the feature maps masked by `a_y` go through `head`;
//! * loss: `1.5·CE(logits, y) + 2·mean((a_y + 0.0005)^0.3) + 0.01·TV(a_y)`, with
//!   `TV = [Σ|Δx a|² + Σ|Δy a|² + 0.3·Σ_border a²] / (2·B)`;
//! * labels: the classifier's own predictions (the official training lists are the backbone's
//!   predicted labels); SGD with Nesterov momentum 0.9 and weight decay 5e-4, lr 1e-4 (bias
//!   2×), ×0.95 per epoch for the first 12 epochs, 26 epochs, batch 64;
//! * inference: `cam = c[:, class]` (before the sigmoid), min-max normalised over the map,
//!   bilinearly upsampled (align_corners = false).
//!
//! Deviation, named: the official `img` variant masks the [0,1] image before normalising it;
//! xaudit masks in model space, as its other masking methods (RISE, Score-CAM, SIDU) do.
//!
//! The trained module is a safetensors file (`weight` `[K,C,1,1]`, `bias` `[K]`) whose metadata
//! records the variant, the sha256 of the model file it was trained for, C, K and the training
//! settings; explaining with it checks them against the model.
use super::Ctx;
use crate::error::{Error, Result};
use crate::model::Model;
use rand::seq::SliceRandom;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The masked image goes through the whole classifier.
    Img,
    /// The masked feature maps go through `head`.
    Fm,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Img, Variant::Fm];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Img => "img",
            Variant::Fm => "fm",
        }
    }
}

/// Parameters of `l-cam-img` / `l-cam-fm`: the trained module.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// The safetensors file written by `xaudit train l-cam`.
    pub weights: Option<PathBuf>,
}

impl super::Validate for Params {}

/// A trained attention module, as loaded.
#[derive(Debug, Clone)]
pub struct Module {
    pub variant: Variant,
    pub model_sha256: String,
    pub channels: i64,
    pub classes: i64,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Module {
    fn tensors(&self, dev: tch::Device) -> (Tensor, Tensor) {
        (
            Tensor::from_slice(&self.weight)
                .view([self.classes, self.channels, 1, 1])
                .to_device(dev),
            Tensor::from_slice(&self.bias).to_device(dev),
        )
    }
}

/// sha256 of a file, hex.
pub fn file_sha256(p: &Path) -> Result<String> {
    let bytes = std::fs::read(p).map_err(|e| bad(p, format!("cannot read: {e}")))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

fn bad(p: &Path, what: impl Into<String>) -> Error {
    Error::model(
        p,
        what,
        "train the module for this model with `xaudit train l-cam MODEL --data DIR --variant img|fm --out FILE.safetensors`",
    )
}

/// Loads (once per path) and checks a module against `model` and the method's variant.
pub fn load(p: &Path, model: &Model, variant: Variant) -> Result<Module> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let cached = cache.lock().map(|c| c.get(p).cloned()).unwrap_or_default();
    let m = match cached {
        Some(m) => m,
        None => {
            let bytes = std::fs::read(p).map_err(|e| bad(p, format!("cannot read: {e}")))?;
            let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
                .map_err(|e| bad(p, format!("not a safetensors file: {e}")))?;
            let st = safetensors::SafeTensors::deserialize(&bytes)
                .map_err(|e| bad(p, format!("not a safetensors file: {e}")))?;
            let meta = meta.metadata().clone().unwrap_or_default();
            let get = |k: &str| {
                meta.get(k).cloned().ok_or_else(|| {
                    bad(
                        p,
                        format!("no `{k}` in the file's metadata: not an xaudit L-CAM module"),
                    )
                })
            };
            let f32s = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
                let t = st
                    .tensor(name)
                    .map_err(|_| bad(p, format!("no `{name}` tensor")))?;
                if t.dtype() != safetensors::Dtype::F32 {
                    return Err(bad(p, format!("`{name}` is not float32")));
                }
                let v = t
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok((t.shape().to_vec(), v))
            };
            let (ws, weight) = f32s("weight")?;
            let (_, bias) = f32s("bias")?;
            let variant = match get("variant")?.as_str() {
                "img" => Variant::Img,
                "fm" => Variant::Fm,
                v => return Err(bad(p, format!("unknown variant `{v}`"))),
            };
            if ws.len() != 4 || bias.len() != ws[0] {
                return Err(bad(
                    p,
                    format!("weight shape {ws:?} is not [K,C,1,1] with K biases"),
                ));
            }
            let m = Module {
                variant,
                model_sha256: get("model_sha256")?,
                channels: ws[1] as i64,
                classes: ws[0] as i64,
                weight,
                bias,
            };
            if let Ok(mut c) = cache.lock() {
                c.insert(p.to_path_buf(), m.clone());
            }
            m
        }
    };
    if m.variant != variant {
        return Err(Error::model(
            p,
            format!("this module was trained as l-cam-{}", m.variant.name()),
            format!(
                "explain with --method l-cam-{}, or train an l-cam-{} module",
                m.variant.name(),
                variant.name()
            ),
        ));
    }
    if m.classes != model.num_classes {
        return Err(bad(
            p,
            format!(
                "the module has {} classes, the model {}",
                m.classes, model.num_classes
            ),
        ));
    }
    // Hashed once per model file and process: the check runs on every batch.
    static HASHES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let hashes = HASHES.get_or_init(|| Mutex::new(HashMap::new()));
    let known = hashes
        .lock()
        .map(|h| h.get(&model.path).cloned())
        .unwrap_or_default();
    let sha = match known {
        Some(s) => s,
        None => {
            let s = file_sha256(&model.path)?;
            if let Ok(mut h) = hashes.lock() {
                h.insert(model.path.clone(), s.clone());
            }
            s
        }
    };
    if sha != m.model_sha256 {
        return Err(bad(
            p,
            format!(
                "trained for the model with sha256 {}, not {} (sha256 {sha})",
                &m.model_sha256[..12.min(m.model_sha256.len())],
                model.path.display()
            ),
        ));
    }
    Ok(m)
}

/// The class maps `c` `[B,K,h,w]` (before the sigmoid).
fn class_maps(feats: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    feats.conv2d(weight, Some(bias), [1, 1], [0, 0], [1, 1], 1)
}

/// `[B,1,H,W]`: min-max of `c[:, target]`, upsampled bilinearly.
pub fn attribute(
    ctx: &Ctx,
    p: &Params,
    variant: Variant,
    x: &Tensor,
    targets: &Tensor,
) -> Result<Tensor> {
    let name = format!("l-cam-{}", variant.name());
    ctx.model.require_cam(&name)?;
    let path = p.weights.as_ref().ok_or_else(|| {
        Error::method(
            &name,
            "needs a trained attention module",
            format!("train one with `xaudit train l-cam MODEL --data DIR --variant {} --out lcam.safetensors`, then set [methods.{name}] weights = \"lcam.safetensors\" (or --param weights=lcam.safetensors)", variant.name()),
        )
    })?;
    let m = load(path, ctx.model, variant)?;
    let feats = ctx.model.features(x)?;
    if feats.size()[1] != m.channels {
        return Err(bad(
            path,
            format!(
                "the module expects {} feature channels, the model's features have {}",
                m.channels,
                feats.size()[1]
            ),
        ));
    }
    let (w, b) = m.tensors(x.device());
    let c = class_maps(&feats, &w, &b);
    let (bsz, hh, ww) = (c.size()[0], c.size()[2], c.size()[3]);
    let idx = targets.view([bsz, 1, 1, 1]).expand([bsz, 1, hh, ww], false);
    let cam = c.gather(1, &idx, false);
    let dims = [1i64, 2, 3].as_slice();
    let mn = cam.amin(dims, true);
    let range = cam.amax(dims, true) - &mn;
    let safe = range.where_self(&range.gt(0.0), &range.ones_like());
    let cam = (cam - mn) / safe;
    let (h, w) = (x.size()[2], x.size()[3]);
    Ok(cam.upsample_bilinear2d([h, w], false, None, None))
}

/// Training settings (defaults: the official code's).
#[derive(Debug, Clone, Serialize)]
pub struct Training {
    pub variant: Variant,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

/// The loss terms of one batch: (total, CE, area, TV) as scalars `[]`.
fn loss(
    model: &Model,
    variant: Variant,
    x: &Tensor,
    feats: &Tensor,
    y: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
) -> Result<(Tensor, f64)> {
    let c = class_maps(feats, weight, bias);
    let (b, hh, ww) = (c.size()[0], c.size()[2], c.size()[3]);
    let idx = y.view([b, 1, 1, 1]).expand([b, 1, hh, ww], false);
    let a = c.gather(1, &idx, false).sigmoid();
    let logits = match variant {
        Variant::Img => {
            let (h, w) = (x.size()[2], x.size()[3]);
            let up = a.upsample_bilinear2d([h, w], false, None, None);
            model.forward_grad(&(x * up))?
        }
        Variant::Fm => model.head(&(feats * &a))?,
    };
    let ce = logits.cross_entropy_for_logits(y);
    let area = (&a + 0.0005).pow_tensor_scalar(0.3).mean(Kind::Float);
    let dx = (a.narrow(3, 1, ww - 1) - a.narrow(3, 0, ww - 1))
        .square()
        .sum(Kind::Float);
    let dy = (a.narrow(2, 1, hh - 1) - a.narrow(2, 0, hh - 1))
        .square()
        .sum(Kind::Float);
    let border = a.narrow(2, 0, 1).square().sum(Kind::Float)
        + a.narrow(2, hh - 1, 1).square().sum(Kind::Float)
        + a.narrow(3, 0, 1).square().sum(Kind::Float)
        + a.narrow(3, ww - 1, 1).square().sum(Kind::Float);
    let tv = (dx + dy + border * 0.3) / (2.0 * b as f64);
    let total = ce * 1.5 + area * 2.0 + tv * 0.01;
    let v = total.double_value(&[]);
    Ok((total, v))
}

/// Trains a module on images `x_all` `[N,C,H,W]` (model space); `on_epoch(epoch, mean loss)`.
/// Returns (weight, bias) as `[K,C,1,1]`, `[K]`.
pub fn train(
    model: &Model,
    x_all: &Tensor,
    t: &Training,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<(Tensor, Tensor)> {
    model.require_cam("l-cam")?;
    let n = x_all.size()[0];
    let dev = x_all.device();
    let labels = model.logits(x_all)?.argmax(1, false);
    let feats_all = model.features(x_all)?;
    let (ch, k) = (feats_all.size()[1], model.num_classes);
    // PyTorch's default Conv2d initialisation: U(±1/sqrt(fan_in)) for weight and bias.
    let bound = 1.0 / (ch as f64).sqrt();
    let mut rng = crate::rng::stream(t.seed, "l-cam-init", 0, 0);
    let mut uni = |len: usize| -> Vec<f32> {
        use rand::Rng;
        (0..len)
            .map(|_| (rng.random::<f64>() * 2.0 - 1.0) as f32 * bound as f32)
            .collect()
    };
    let mut weight = Tensor::from_slice(&uni((k * ch) as usize))
        .view([k, ch, 1, 1])
        .to_device(dev);
    let mut bias = Tensor::from_slice(&uni(k as usize)).to_device(dev);
    let (mut vw, mut vb) = (weight.zeros_like(), bias.zeros_like());
    let mut lr = t.learning_rate;
    let mut order: Vec<i64> = (0..n).collect();
    let mut shuffle = crate::rng::stream(t.seed, "l-cam-shuffle", 0, 0);
    for epoch in 0..t.epochs {
        order.shuffle(&mut shuffle);
        let mut total = 0.0;
        let mut batches = 0usize;
        for chunk in order.chunks(t.batch_size.max(1)) {
            crate::interrupt::check()?;
            let idx = Tensor::from_slice(chunk).to_device(dev);
            let (x, f, y) = (
                x_all.index_select(0, &idx),
                feats_all.index_select(0, &idx),
                labels.index_select(0, &idx),
            );
            let (gw, gb, v) = tch::with_grad(|| -> Result<(Tensor, Tensor, f64)> {
                let w = weight.detach().set_requires_grad(true);
                let b = bias.detach().set_requires_grad(true);
                let (l, v) = loss(model, t.variant, &x, &f, &y, &w, &b)?;
                let g = Tensor::f_run_backward(&[&l], &[&w, &b], false, false)?;
                Ok((g[0].shallow_clone(), g[1].shallow_clone(), v))
            })?;
            total += v;
            batches += 1;
            // SGD, Nesterov momentum 0.9, weight decay 5e-4 (torch.optim.SGD's rule); bias 2× lr.
            let gw = gw + &weight * 5e-4;
            let gb = gb + &bias * 5e-4;
            vw = &vw * 0.9 + &gw;
            vb = &vb * 0.9 + &gb;
            weight = &weight - (gw + &vw * 0.9) * lr;
            bias = &bias - (gb + &vb * 0.9) * (2.0 * lr);
        }
        if epoch < 12 {
            lr *= 0.95;
        }
        on_epoch(epoch + 1, total / batches.max(1) as f64);
    }
    Ok((weight, bias))
}

/// Writes the module with its metadata (all strings).
pub fn save(
    path: &Path,
    weight: &Tensor,
    bias: &Tensor,
    model: &Model,
    t: &Training,
) -> Result<()> {
    let to_bytes = |t: &Tensor| -> Result<Vec<u8>> {
        let v: Vec<f32> = Vec::try_from(
            t.to_kind(Kind::Float)
                .to_device(tch::Device::Cpu)
                .flatten(0, -1),
        )?;
        Ok(v.iter().flat_map(|f| f.to_le_bytes()).collect())
    };
    let (wb, bb) = (to_bytes(weight)?, to_bytes(bias)?);
    let ws: Vec<usize> = weight.size().iter().map(|v| *v as usize).collect();
    let bs: Vec<usize> = bias.size().iter().map(|v| *v as usize).collect();
    let views = vec![
        (
            "weight",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, ws, &wb)
                .map_err(|e| bad(path, e.to_string()))?,
        ),
        (
            "bias",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, bs, &bb)
                .map_err(|e| bad(path, e.to_string()))?,
        ),
    ];
    let meta: HashMap<String, String> = [
        ("format", "xaudit l-cam 1".to_string()),
        ("variant", t.variant.name().to_string()),
        ("model_sha256", file_sha256(&model.path)?),
        ("model_file", model.path.display().to_string()),
        ("epochs", t.epochs.to_string()),
        ("batch_size", t.batch_size.to_string()),
        ("learning_rate", t.learning_rate.to_string()),
        ("seed", t.seed.to_string()),
        ("xaudit", env!("CARGO_PKG_VERSION").to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // Written beside the target and renamed: no half-written module.
    let tmp = path.with_extension("safetensors.partial");
    safetensors::serialize_to_file(views, &Some(meta), &tmp)
        .map_err(|e| bad(path, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::output(path, e.to_string()))?;
    Ok(())
}
