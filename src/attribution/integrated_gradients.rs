//! Integrated Gradients (Sundararajan, Taly & Yan 2017, arXiv:1703.01365).
//!
//! `IG = (x - x') ⊙ Σ_k w_k ∇F(x' + α_k (x - x'))`. Defaults follow the official code
//! (ankurtaly/Integrated-Gradients): zero baseline in model space, 50 steps, trapezoid rule,
//! softmax probability. `gauss-legendre` reproduces Captum's default quadrature.
use super::{accumulate_runs, input_grads, target_score, Attribution, Ctx};
use crate::error::Result;
use serde::Serialize;
use tch::{Kind, Tensor};

/// Quadrature rule along the straight-line path (see the IG rules in the README: official code, Captum, PAIR, Ghorbani).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// m+1 points k/m, end weights 1/(2m): the official implementation (default).
    Trapezoid,
    /// k/m for k = 0..m-1.
    Left,
    /// k/m for k = 1..m (Ghorbani, Dombrowski).
    Right,
    /// (k + 1/2)/m.
    Middle,
    /// linspace(0,1,m), weights 1/m (PAIR saliency).
    PairLinspace,
    /// Gauss-Legendre nodes on [0,1] (Captum's default).
    GaussLegendre,
    /// Captum's riemann_trapezoid: linspace(0,1,m), weights 1/m with halved ends (sum (m-1)/m).
    CaptumTrapezoid,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    pub steps: usize,
    pub rule: Rule,
    /// Baseline value in model-input space (0 = the dataset mean after normalisation).
    pub baseline: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            steps: 50,
            rule: Rule::Trapezoid,
            baseline: 0.0,
        }
    }
}

/// Gauss-Legendre nodes and weights on [-1,1] (Newton on P_n, as numpy's leggauss refines).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut xs = vec![0.0; n];
    let mut ws = vec![0.0; n];
    for i in 0..n {
        // Tricomi's initial guess for the i-th root (descending), then Newton.
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, z);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * z * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let pn = if n == 0 { 1.0 } else { p1 };
            let pnm1 = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (z * pn - pnm1) / (z * z - 1.0);
            let dz = pn / dp;
            z -= dz;
            if dz.abs() < 1e-16 {
                break;
            }
        }
        xs[n - 1 - i] = z;
        ws[n - 1 - i] = 2.0 / ((1.0 - z * z) * dp * dp);
    }
    (xs, ws)
}

/// Path positions α_k in [0,1] and weights w_k for `rule` with `m` steps.
pub fn quadrature(rule: Rule, m: usize) -> (Vec<f64>, Vec<f64>) {
    let m = m.max(1);
    let mf = m as f64;
    let linspace = |n: usize| -> Vec<f64> {
        if n == 1 {
            vec![0.0]
        } else {
            (0..n).map(|k| k as f64 / (n - 1) as f64).collect()
        }
    };
    match rule {
        Rule::Left => ((0..m).map(|k| k as f64 / mf).collect(), vec![1.0 / mf; m]),
        Rule::Right => ((1..=m).map(|k| k as f64 / mf).collect(), vec![1.0 / mf; m]),
        Rule::Middle => (
            (0..m).map(|k| (k as f64 + 0.5) / mf).collect(),
            vec![1.0 / mf; m],
        ),
        Rule::Trapezoid => {
            let a = (0..=m).map(|k| k as f64 / mf).collect();
            let mut w = vec![1.0 / mf; m + 1];
            w[0] = 0.5 / mf;
            w[m] = 0.5 / mf;
            (a, w)
        }
        Rule::PairLinspace => (linspace(m), vec![1.0 / mf; m]),
        Rule::CaptumTrapezoid => {
            let mut w = vec![1.0 / mf; m];
            w[0] *= 0.5;
            w[m - 1] *= 0.5;
            if m == 1 {
                w[0] = 1.0;
            }
            (linspace(m), w)
        }
        Rule::GaussLegendre => {
            let (x, w) = gauss_legendre(m);
            (
                x.iter().map(|v| 0.5 * (v + 1.0)).collect(),
                w.iter().map(|v| 0.5 * v).collect(),
            )
        }
    }
}

pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Attribution> {
    let (alphas, weights) = quadrature(p.rule, p.steps);
    let m = alphas.len();
    let b = x.size()[0] as usize;
    let dev = x.device();
    let x0 = x.full_like(p.baseline);
    let diff = x - &x0;
    let mut acc = x.zeros_like();
    super::for_chunks(b * m, ctx.internal_batch, |r| {
        let owner: Vec<usize> = r.clone().map(|s| s / m).collect();
        let img: Vec<i64> = owner.iter().map(|&i| i as i64).collect();
        let a: Vec<f64> = r.clone().map(|s| alphas[s % m]).collect();
        let w: Vec<f64> = r.clone().map(|s| weights[s % m]).collect();
        let img = Tensor::from_slice(&img).to_device(dev);
        // Nodes and weights in the input's precision (float64 models get float64 quadrature).
        let a = Tensor::from_slice(&a)
            .to_kind(x.kind())
            .to_device(dev)
            .view([-1, 1, 1, 1]);
        let w = Tensor::from_slice(&w)
            .to_kind(x.kind())
            .to_device(dev)
            .view([-1, 1, 1, 1]);
        let path = x0.index_select(0, &img) + a * diff.index_select(0, &img);
        let g = input_grads(ctx.model, &path, &targets.index_select(0, &img), ctx.score)?;
        accumulate_runs(&mut acc, &owner, &(g * w));
        Ok(())
    })?;
    let attr = &diff * acc;
    // Completeness: Σ IG should equal F(x) - F(x'); report the relative error per image.
    let ends = ctx.model.logits(&Tensor::cat(&[x, &x0], 0))?;
    let t2 = Tensor::cat(&[targets, targets], 0);
    let s = target_score(&ends, &t2, ctx.score).to_kind(Kind::Double);
    let delta = s.narrow(0, 0, b as i64) - s.narrow(0, b as i64, b as i64);
    let total =
        attr.to_kind(Kind::Double)
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Double);
    let delta: Vec<f64> = Vec::<f64>::try_from(delta.to_device(tch::Device::Cpu))?;
    let total: Vec<f64> = Vec::<f64>::try_from(total.to_device(tch::Device::Cpu))?;
    let err = delta
        .iter()
        .zip(&total)
        .map(|(d, t)| (t - d).abs() / d.abs().max(1e-12))
        .collect();
    Ok(Attribution {
        maps: attr,
        diagnostics: vec![("completeness_error".into(), err)],
        // The completeness check's forward pass at x doubles as the prediction there.
        logits: Some(ends.narrow(0, 0, b as i64)),
    })
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "integrated-gradients",
    summary: "path integral of gradients from a baseline",
    reference: "Sundararajan, Taly & Yan 2017 (ICML), arXiv:1703.01365",
    score: super::Score::Softmax,
    aggregate: super::Aggregate::SumAbs,
    needs: super::Needs::Gradients,
    stochastic: false,
    control: false,
    clips: true,
    cost: "steps (+1) forward + backward passes",
};

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.steps == 0 {
            return Err("steps must be >= 1".into());
        }
        if !self.baseline.is_finite() {
            return Err("give a finite baseline (model space)".into());
        }
        Ok(())
    }
}

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &tch::Tensor,
    targets: &tch::Tensor,
    _ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    attribute(ctx, p, x, targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_matches_known_values() {
        let (x, w) = gauss_legendre(3);
        let r = (0.6f64).sqrt();
        assert!((x[0] + r).abs() < 1e-14 && x[1].abs() < 1e-14 && (x[2] - r).abs() < 1e-14);
        assert!((w[0] - 5.0 / 9.0).abs() < 1e-14 && (w[1] - 8.0 / 9.0).abs() < 1e-14);
        let (_, w) = gauss_legendre(50);
        assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-13);
    }

    #[test]
    fn weights_sum_to_one_except_captum_trapezoid() {
        for rule in [
            Rule::Trapezoid,
            Rule::Left,
            Rule::Right,
            Rule::Middle,
            Rule::PairLinspace,
            Rule::GaussLegendre,
        ] {
            let (_, w) = quadrature(rule, 7);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{rule:?}");
        }
        let (_, w) = quadrature(Rule::CaptumTrapezoid, 7);
        assert!((w.iter().sum::<f64>() - 6.0 / 7.0).abs() < 1e-12);
    }
}
