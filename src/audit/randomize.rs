//! In-place parameter randomisation for the sanity checks (Adebayo et al.), with a guard
//! that restores the trained weights bit-exactly, even when an audit fails midway.
//!
//! Groups are the modules owning parameters (`conv1`, `body.0`...), from `named_parameters`
//! in registration order; "from the output back to the input" is that order reversed, which
//! matches Quantus' reverse module order. Re-initialisation follows PyTorch's defaults by
//! parameter shape: weights with >= 2 dims and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
//! (kaiming_uniform with a = sqrt(5) reduces to this bound); 1-D weights (normalisation
//! layers) 1 and their biases 0. Only parameters are reset, as in Adebayo et al.'s code
//! (TF trainable variables): BatchNorm running statistics are buffers tch cannot reach.
use crate::error::{Error, Result};
use crate::model::Model;
use rand::Rng;
use tch::Tensor;

/// Parameters of one module, in registration order.
pub struct Group {
    pub name: String,
    pub params: Vec<(String, Tensor)>,
}

/// Parameter groups from the input side to the output side.
pub fn groups(model: &Model) -> Result<Vec<Group>> {
    let mut out: Vec<Group> = Vec::new();
    for (name, p) in model.module.named_parameters()? {
        let owner = name
            .rsplit_once('.')
            .map(|(l, _)| l.to_string())
            .unwrap_or_else(|| "(root)".into());
        match out.last_mut() {
            Some(g) if g.name == owner => g.params.push((name, p)),
            _ => out.push(Group {
                name: owner,
                params: vec![(name, p)],
            }),
        }
    }
    if out.is_empty() {
        return Err(Error::model(
            &model.path,
            "the model has no parameters to randomise",
            "export an unfrozen TorchScript model (docs/model-contract.md)",
        ));
    }
    Ok(out)
}

/// Re-initialises every parameter group of `model` (the cascading test's last stage: each
/// group keyed by its index) and returns the guard that restores the trained weights.
pub fn randomize_all(model: &Model, init: Init, seed: u64) -> Result<Restore<'_>> {
    let guard = Restore::new(model)?;
    for (gi, g) in groups(model)?.iter().enumerate().rev() {
        reinit_with(init, g, seed, gi)?;
    }
    Ok(guard)
}

/// Restores every parameter from a snapshot when dropped.
pub struct Restore<'a> {
    model: &'a Model,
    saved: Vec<(String, Tensor)>,
}

impl<'a> Restore<'a> {
    pub fn new(model: &'a Model) -> Result<Self> {
        let _g = tch::no_grad_guard();
        let saved = model
            .module
            .named_parameters()?
            .into_iter()
            .map(|(n, p)| (n, p.detach().copy()))
            .collect();
        Ok(Restore { model, saved })
    }

    /// Copies the snapshot back into the live parameters.
    pub fn restore(&self) -> Result<()> {
        let _g = tch::no_grad_guard();
        let live = self.model.module.named_parameters()?;
        for ((n1, mut p), (n2, s)) in live.into_iter().zip(&self.saved) {
            debug_assert_eq!(&n1, n2);
            p.f_copy_(s)?;
        }
        Ok(())
    }

    /// Restores and verifies: an error if any parameter differs from the snapshot.
    pub fn finish(&self) -> Result<()> {
        self.restore()?;
        if !self.is_intact()? {
            return Err(Error::model(
                &self.model.path,
                "trained weights could not be restored after randomisation",
                "this is a bug in xaudit; please report it",
            ));
        }
        Ok(())
    }

    /// True when every live parameter equals its snapshot bit for bit.
    pub fn is_intact(&self) -> Result<bool> {
        let live = self.model.module.named_parameters()?;
        Ok(live.len() == self.saved.len()
            && live
                .iter()
                .zip(&self.saved)
                .all(|((_, p), (_, s))| p.equal(s)))
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        // Best effort on the error path; the success path calls restore() and checks it.
        let _ = self.restore();
    }
}

/// Where re-initialised weights come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// PyTorch's default distributions, drawn from xaudit's own per-group streams (the same
    /// weights on every device and thread count).
    #[default]
    Xaudit,
    /// Bit-for-bit what `module.reset_parameters()` draws after `torch.manual_seed(seed + 1)`
    /// (Quantus MPRT's procedure), from libtorch's CPU generator.
    Torch,
}

/// Re-initialises `group` as `init` says.
pub fn reinit_with(init: Init, group: &Group, seed: u64, group_index: usize) -> Result<()> {
    match init {
        Init::Xaudit => reinit(group, seed, group_index),
        Init::Torch => reinit_torch(group, seed.wrapping_add(1) as i64),
    }
}

/// PyTorch's Conv/Linear `reset_parameters` (kaiming_uniform_ with a = sqrt(5) on the weight,
/// then U(+-1/sqrt(fan_in)) on the bias) and normalisation layers' (weight 1, bias 0), with the
/// generator reseeded to `torch_seed` first, as Quantus does before every layer. The bounds
/// are computed with the same double-precision steps as torch.nn.init so the draws match.
pub fn reinit_torch(group: &Group, torch_seed: i64) -> Result<()> {
    let _g = tch::no_grad_guard();
    tch::manual_seed(torch_seed);
    let weight = group.params.iter().find(|(n, _)| n.ends_with("weight"));
    let fan_in = weight
        .filter(|(_, p)| p.dim() >= 2)
        .map(|(_, p)| p.size()[1..].iter().product::<i64>());
    // Weight first, then bias: the order of reset_parameters' draws.
    let mut ordered: Vec<&(String, Tensor)> = group.params.iter().collect();
    ordered.sort_by_key(|(n, _)| !n.ends_with("weight"));
    for (name, p) in ordered {
        let cpu = p.to_device(tch::Device::Cpu).to_kind(tch::Kind::Float);
        let mut fresh = cpu.empty_like();
        match fan_in {
            Some(fan) if name.ends_with("weight") => {
                let a = 5f64.sqrt();
                let gain = (2.0 / (1.0 + a * a)).sqrt();
                let std = gain / (fan as f64).sqrt();
                let bound = 3f64.sqrt() * std;
                let _ = fresh.uniform_(-bound, bound);
            }
            Some(fan) => {
                let bound = if fan > 0 {
                    1.0 / (fan as f64).sqrt()
                } else {
                    0.0
                };
                let _ = fresh.uniform_(-bound, bound);
            }
            None if name.ends_with("weight") => {
                let _ = fresh.fill_(1.0);
            }
            None => {
                let _ = fresh.fill_(0.0);
            }
        }
        let mut live = p.shallow_clone();
        live.f_copy_(&fresh.to_kind(p.kind()).to_device(p.device()))?;
    }
    Ok(())
}

/// Re-initialises one group in place with PyTorch's default initialisers, drawing from the
/// stream keyed by (`seed`, `group_index`).
pub fn reinit(group: &Group, seed: u64, group_index: usize) -> Result<()> {
    let _g = tch::no_grad_guard();
    let mut rng = crate::rng::stream(seed, "randomize", group_index as u64, 0);
    let fan_in = group
        .params
        .iter()
        .find(|(_, p)| p.dim() >= 2)
        .map(|(_, p)| p.size()[1..].iter().product::<i64>())
        .unwrap_or(0);
    for (name, p) in &group.params {
        let n = p.numel();
        let is_bias = name.ends_with("bias");
        let values: Vec<f32> = if p.dim() >= 2 || (is_bias && fan_in > 0) {
            let bound = if fan_in > 0 {
                1.0 / (fan_in as f64).sqrt()
            } else {
                1.0 / (p.size()[1..].iter().product::<i64>().max(1) as f64).sqrt()
            } as f32;
            (0..n).map(|_| rng.random_range(-bound..=bound)).collect()
        } else if is_bias {
            vec![0.0; n]
        } else {
            vec![1.0; n]
        };
        let t = Tensor::from_slice(&values)
            .view(p.size().as_slice())
            .to_kind(p.kind())
            .to_device(p.device());
        let mut live = p.shallow_clone();
        live.f_copy_(&t)?;
    }
    Ok(())
}

/// Kind of a parameter tensor (for the report's layer table).
pub fn describe(group: &Group) -> String {
    let shapes: Vec<String> = group
        .params
        .iter()
        .map(|(n, p)| format!("{}{:?}", n.rsplit('.').next().unwrap_or(n), p.size()))
        .collect();
    shapes.join(" ")
}
