//! Loading a user's TorchScript classifier and checking it against the model contract
//! (docs/model-contract.md) before any explanation is computed.
use crate::error::{torch_msg, Error, Result};
use rand_distr::{Distribution, StandardNormal};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{CModule, Device, Kind, Tensor};

const EXPORT_FIX: &str = "export with `torch.jit.script(model.eval()).save(\"model.pt\")` (or torch.jit.trace of a wrapper); see docs/model-contract.md";

/// Whether CAM methods can run, and why not.
#[derive(Debug, Clone, PartialEq)]
pub enum CamSupport {
    Available { feature_shape: Vec<i64> },
    Unavailable(String),
}

/// A loaded, checked classifier.
pub struct Model {
    pub module: CModule,
    pub path: PathBuf,
    pub device: Device,
    /// Input shape [C, H, W] the model was checked with.
    pub input_shape: [i64; 3],
    pub num_classes: i64,
    pub num_parameter_tensors: usize,
    pub num_parameters: i64,
    pub cam: CamSupport,
    /// Images pushed through the model, for efficiency accounting (`xaudit throughput`).
    pub passes: Passes,
    /// For an embedding model: the references its scores compare with. Every output of
    /// `logits`, `forward_grad` and `head` is then the `[N,K]` similarity to them.
    pub embedding: Option<crate::embedding::References>,
    /// For a video model: its clip length. Inputs travel as contact sheets `[N,C,H,T·W]`
    /// (`crate::clip`) and are unpacked to `[N,C,T,H,W]` for every pass.
    pub clip: Option<ClipShape>,
}

/// A video model's time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipShape {
    /// Frames T of the input clip.
    pub frames: i64,
    /// Frames T' of its `features` `[N,C',T',h,w]`, when it exports them.
    pub feature_frames: Option<i64>,
}

/// Counts of images the model processed: plain forward passes, and forward passes recorded
/// for a backward pass to the input. `head`-only passes (Grad-CAM) are not counted: they are a
/// small part of a full pass, so efficiencies derived from these counts err on the low side.
#[derive(Debug, Default)]
pub struct Passes {
    forward: std::sync::atomic::AtomicU64,
    backward: std::sync::atomic::AtomicU64,
}

impl Passes {
    fn add_forward(&self, x: &Tensor) {
        self.forward
            .fetch_add(batch_len(x), std::sync::atomic::Ordering::Relaxed);
    }
    fn add_backward(&self, x: &Tensor) {
        self.backward
            .fetch_add(batch_len(x), std::sync::atomic::Ordering::Relaxed);
    }
    /// (forward images, forward+backward images) so far.
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.forward.load(std::sync::atomic::Ordering::Relaxed),
            self.backward.load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}

fn batch_len(x: &Tensor) -> u64 {
    x.size().first().copied().unwrap_or(0).max(0) as u64
}

/// What kind of file this is, judged from its bytes before libtorch sees it.
fn sniff(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::model(path, format!("cannot open: {e}"), "check the model path"))?;
    let mut head = [0u8; 4];
    let n = f
        .read(&mut head)
        .map_err(|e| Error::model(path, format!("cannot read: {e}"), "check the file"))?;
    if n == 0 {
        return Err(Error::model(path, "file is empty", EXPORT_FIX));
    }
    if head[..n.min(4)] != b"PK\x03\x04"[..n.min(4)] || n < 4 {
        let what = if head[0] == 0x80 {
            "a plain Python pickle (torch.save with the legacy format, or pickle.dump), not TorchScript"
        } else {
            "not a TorchScript archive (TorchScript files are zip archives)"
        };
        return Err(Error::model(path, format!("file is {what}"), EXPORT_FIX));
    }
    let archive =
        zip::ZipArchive::new(std::fs::File::open(path).map_err(|e| {
            Error::model(path, format!("cannot open: {e}"), "check the model path")
        })?)
        .map_err(|e| {
            Error::model(
                path,
                format!("zip archive is truncated or corrupt ({e})"),
                "re-export or re-download the model; compare its sha256 with the original",
            )
        })?;
    let has_code = archive
        .file_names()
        .any(|n| n.contains("/code/") || n.starts_with("code/"));
    if !has_code {
        return Err(Error::model(
            path,
            "file is a torch.save checkpoint (weights only, no TorchScript code)",
            EXPORT_FIX,
        ));
    }
    Ok(())
}

pub fn probe_input(shape: [i64; 3], n: i64, device: Device) -> Tensor {
    let mut rng = crate::rng::stream(0, "model-probe", 0, 0);
    let numel = (n * shape[0] * shape[1] * shape[2]) as usize;
    let v: Vec<f32> = (0..numel)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_slice(&v)
        .view([n, shape[0], shape[1], shape[2]])
        .to_device(device)
}

impl Model {
    /// Loads `path` on `device` and checks the contract with a probe batch of `input_shape`.
    pub fn load(path: &Path, device: Device, input_shape: [i64; 3]) -> Result<Model> {
        Model::load_with(path, device, input_shape, None)
    }

    /// As `load`; with `frames`, a video model whose input is checked as clips
    /// `[N,C,T,H,W]` of the contact sheets `input_shape = [C,H,T·W]`.
    pub fn load_with(
        path: &Path,
        device: Device,
        input_shape: [i64; 3],
        frames: Option<i64>,
    ) -> Result<Model> {
        sniff(path)?;
        // The profiling executor's graph optimiser returns NaN from the second double-backward
        // call on (gradients of explanations, measured on PyTorch 2.13); turning it off costs
        // nothing measurable on forward and backward passes. The setting is per thread, and
        // every model pass of xaudit runs on the thread that loads the model.
        tch::jit::set_graph_executor_optimize(false);
        let mut module = CModule::load_on_device(path, device).map_err(|e| {
            Error::model(
                path,
                format!("libtorch cannot load it: {}", torch_msg(&e)),
                EXPORT_FIX,
            )
        })?;
        module.set_eval();
        let params = module.named_parameters().map_err(|e| {
            Error::model(
                path,
                format!("cannot list parameters: {}", torch_msg(&e)),
                EXPORT_FIX,
            )
        })?;
        if params.is_empty() {
            return Err(Error::model(
                path,
                "model has no parameters: it looks frozen (torch.jit.freeze / optimize_for_inference), which inlines the weights and drops exported methods, so randomisation audits and CAM methods cannot work",
                "save the scripted module WITHOUT freezing: `torch.jit.script(model.eval()).save(\"model.pt\")`",
            ));
        }
        let num_parameters = params.iter().map(|(_, t)| t.numel() as i64).sum();
        let num_parameter_tensors = params.len();
        drop(params);

        let x = probe_input(input_shape, 2, device);
        let shape_fix = if frames.is_some() {
            "check `channels`, `size` and `frames` under [preprocess] in xaudit.toml: they must match the clips [N,C,T,H,W] the model consumes"
        } else {
            "check `channels` and `size` under [preprocess] in xaudit.toml (or --channels/--size): they must match what the model consumes"
        };
        let fed = match frames {
            Some(t) => crate::clip::to_clip(&x, t),
            None => x.shallow_clone(),
        };
        let logits = tch::no_grad(|| module.forward_ts(&[&fed])).map_err(|e| {
            let m = torch_msg(&e);
            if m.contains("did not return a tensor") {
                Error::model(path, "forward returned a tuple or other value, not a [N,K] logits tensor", "make forward return only the logits tensor; export feature maps through a separate `features` method")
            } else {
                Error::model(path, format!("forward failed on a probe input of shape {:?}: {m}", fed.size()), shape_fix)
            }
        })?;
        let osize = logits.size();
        if osize.len() != 2 || osize[0] != 2 || osize[1] < 1 {
            return Err(Error::model(
                path,
                format!("forward returned shape {osize:?} for a batch of 2; the contract is [N,K] logits"),
                "make forward return a 2-D tensor [batch, classes] (flatten or squeeze the output in the exported wrapper)",
            ));
        }
        if logits.kind() != Kind::Float && logits.kind() != Kind::Double {
            return Err(Error::model(
                path,
                format!("forward returned {:?}, not float logits", logits.kind()),
                "return float32 logits",
            ));
        }
        if !bool::try_from(logits.isfinite().all()).unwrap_or(false) {
            return Err(Error::model(
                path,
                "forward returned NaN or infinite logits on a probe input",
                "fix the model (check for division by zero, log of 0, uninitialised weights) and re-export it",
            ));
        }
        let num_classes = osize[1];
        let cam = check_cam(&module, &fed, &logits, frames.is_some());
        let clip = frames.map(|t| ClipShape {
            frames: t,
            feature_frames: match &cam {
                CamSupport::Available { feature_shape } if feature_shape.len() == 4 => {
                    Some(feature_shape[1])
                }
                _ => None,
            },
        });
        Ok(Model {
            module,
            path: path.to_path_buf(),
            device,
            input_shape,
            num_classes,
            num_parameter_tensors,
            num_parameters,
            cam,
            passes: Passes::default(),
            embedding: None,
            clip,
        })
    }

    /// Makes this model an embedding model scored against `refs` (`crate::embedding`).
    pub fn with_references(mut self, refs: crate::embedding::References) -> Model {
        self.num_classes = refs.names.len() as i64;
        self.embedding = Some(refs);
        self
    }

    /// The classifier's logits, or an embedding model's similarity scores.
    fn out(&self, raw: Tensor) -> Tensor {
        match &self.embedding {
            Some(r) => r.scores(&raw),
            None => raw,
        }
    }

    /// What the module consumes: the input itself, or a video model's clips unpacked from
    /// their contact sheets.
    fn fed(&self, x: &Tensor) -> Tensor {
        match &self.clip {
            Some(c) => crate::clip::to_clip(x, c.frames),
            None => x.shallow_clone(),
        }
    }

    /// A video model's features `[N,C',T',h,w]` as sheets `[N,C',h,T'·w]`, so every CAM
    /// method treats them as one feature grid; `head` unpacks them again.
    fn features_out(&self, a: Tensor) -> Tensor {
        match &self.clip {
            Some(_) => crate::clip::to_sheet(&a),
            None => a,
        }
    }

    fn head_in(&self, a: &Tensor) -> Tensor {
        match self.clip.and_then(|c| c.feature_frames) {
            Some(t) => crate::clip::to_clip(a, t),
            None => a.shallow_clone(),
        }
    }

    /// The raw `forward` output without building a graph (an embedding model's embeddings).
    pub fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        self.passes.add_forward(x);
        Ok(self.module.forward_ts(&[self.fed(x)])?)
    }

    /// The raw `forward` output with autograd recording (x should require grad).
    pub fn embed_grad(&self, x: &Tensor) -> Result<Tensor> {
        self.passes.add_backward(x);
        Ok(self.module.forward_ts(&[self.fed(x)])?)
    }

    /// Logits without building a graph.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        self.passes.add_forward(x);
        Ok(self.out(self.module.forward_ts(&[self.fed(x)])?))
    }

    /// Logits with autograd recording (x should require grad).
    pub fn forward_grad(&self, x: &Tensor) -> Result<Tensor> {
        self.passes.add_backward(x);
        Ok(self.out(self.module.forward_ts(&[self.fed(x)])?))
    }

    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        self.passes.add_forward(x);
        Ok(self.features_out(self.module.method_ts("features", &[self.fed(x)])?))
    }

    /// `features` with autograd recording (second-order gradients of CAM maps).
    pub fn features_grad(&self, x: &Tensor) -> Result<Tensor> {
        self.passes.add_backward(x);
        Ok(self.features_out(self.module.method_ts("features", &[self.fed(x)])?))
    }

    pub fn head(&self, a: &Tensor) -> Result<Tensor> {
        Ok(self.out(self.module.method_ts("head", &[self.head_in(a)])?))
    }

    /// Top-1 class and its softmax probability for each row of `logits` `[B,K]`, refusing
    /// NaN or infinite logits (`what` names the inputs in the message). `explain` and every
    /// audit predict through this, so both refuse the same inputs the same way.
    pub fn decide(&self, logits: &Tensor, what: &str) -> Result<(Vec<i64>, Vec<f64>)> {
        if !bool::try_from(logits.isfinite().all()).unwrap_or(false) {
            return Err(Error::model(
                &self.path,
                format!("forward returned NaN or infinite logits for {what}"),
                "check the model and the preprocessing (mean/std) in xaudit.toml",
            ));
        }
        let (p, c) = logits.softmax(-1, Kind::Float).max_dim(1, false);
        Ok((
            Vec::<i64>::try_from(c.to_device(Device::Cpu))?,
            Vec::<f64>::try_from(p.to_kind(Kind::Double).to_device(Device::Cpu))?,
        ))
    }

    /// Errors with the reason when CAM methods cannot run.
    pub fn require_cam(&self, method: &str) -> Result<()> {
        match &self.cam {
            CamSupport::Available { .. } => Ok(()),
            CamSupport::Unavailable(why) => Err(Error::method(
                method,
                format!("needs the model's `features`/`head` methods: {why}"),
                "export `features(x) -> [N,C',h,w]` and `head(a) -> [N,K]` with forward(x) == head(features(x)) (docs/model-contract.md), or pick a gradient or perturbation method",
            )),
        }
    }
}

/// How closely two models (a model and its surrogate) agree on inputs `x`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Agreement {
    pub inputs: usize,
    /// Share of inputs with the same top-1 class.
    pub top1: f64,
    /// Largest difference of any softmax probability, and of any logit.
    pub max_probability_difference: f64,
    pub max_logit_difference: f64,
}

/// Compares the predictions of `a` and `b` on `x` (`[N, C, H, W]`, model space).
pub fn agreement(a: &Model, b: &Model, x: &Tensor) -> Result<Agreement> {
    let (la, lb) = (a.logits(x)?, b.logits(x)?);
    if la.size() != lb.size() {
        return Err(Error::model(
            &b.path,
            format!(
                "returns {:?} logits where the model returns {:?}",
                lb.size(),
                la.size()
            ),
            "a surrogate must be the same network (same classes) with smooth activations",
        ));
    }
    let top1 = la.argmax(-1, false).eq_tensor(&lb.argmax(-1, false));
    let scalar = |t: Tensor| t.to_kind(Kind::Double).double_value(&[]);
    Ok(Agreement {
        inputs: x.size()[0] as usize,
        top1: scalar(top1.to_kind(Kind::Double).mean(Kind::Double)),
        max_probability_difference: scalar(
            (la.softmax(-1, Kind::Float) - lb.softmax(-1, Kind::Float))
                .abs()
                .max(),
        ),
        max_logit_difference: scalar((&la - &lb).abs().max()),
    })
}

fn check_cam(module: &CModule, x: &Tensor, logits: &Tensor, video: bool) -> CamSupport {
    let _g = tch::no_grad_guard();
    let feats = match module.method_ts("features", &[x]) {
        Ok(f) => f,
        Err(e) => {
            let m = torch_msg(&e);
            return CamSupport::Unavailable(
                if m.contains("not defined") || m.contains("not found") {
                    "the model exports no `features` method".into()
                } else {
                    format!("`features` failed: {m}")
                },
            );
        }
    };
    let want = if video { 5 } else { 4 };
    if feats.dim() != want {
        return CamSupport::Unavailable(format!(
            "`features` returned shape {:?}, expected {}",
            feats.size(),
            if video { "[N,C',T',h,w]" } else { "[N,C',h,w]" }
        ));
    }
    let out = match module.method_ts("head", &[&feats]) {
        Ok(o) => o,
        Err(e) => {
            let m = torch_msg(&e);
            return CamSupport::Unavailable(
                if m.contains("not defined") || m.contains("not found") {
                    "the model exports `features` but no `head` method".into()
                } else {
                    format!("`head` failed: {m}")
                },
            );
        }
    };
    if out.size() != logits.size() {
        return CamSupport::Unavailable(format!(
            "head(features(x)) has shape {:?} but forward(x) has {:?}",
            out.size(),
            logits.size()
        ));
    }
    let diff = (&out - logits).abs().max().double_value(&[]);
    let scale = logits.abs().max().double_value(&[]).max(1.0);
    if diff.is_nan() || diff > 1e-4 * scale {
        return CamSupport::Unavailable(format!(
            "forward(x) != head(features(x)) on a probe input (max abs difference {diff:.3e})"
        ));
    }
    CamSupport::Available {
        feature_shape: feats.size()[1..].to_vec(),
    }
}
