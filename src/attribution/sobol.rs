//! Sobol attribution (Fel et al. 2021, NeurIPS, arXiv:2111.04138), as the authors' PyTorch
//! explainer computes it (fel-thomas/Sobol-Attribution-Method, `torch_explainer.py`; xplique's
//! `SobolAttributionMethod` with its scipy sampler is the same estimator). Black-box: needs only
//! `forward`.
//!
//! 1. `N` points (`designs`, a power of two) of the unscrambled Sobol sequence in `2d`
//!    dimensions, `d = grid²` (Joe–Kuo direction numbers, Gray-code order, the origin first:
//!    identical to `scipy.stats.qmc.Sobol(2d, scramble=False)`). `A` = first d columns,
//!    `B` = last d, and `C⁽ⁱ⁾` = `A` with column i taken from `B`: `N(d+2)` real-valued masks.
//! 2. Each mask is upsampled to the input with nearest neighbour (torch `interpolate`'s
//!    default) and the input is inpainted, `x ⊙ M` (model space, as the code).
//! 3. `y` = the explained score (the code uses the raw output: logits) of every masked input.
//! 4. Jansen's total-order estimator, `ST_i = Σ_j (y_Aj − y_C⁽ⁱ⁾j)² / (2 N V)` with
//!    `V = Σ_j (y_Aj − mean y_A)² / (N − 1)`, reshaped to grid × grid and upsampled bicubically
//!    (cv2 `INTER_CUBIC` in the code: a = −0.75, half-pixel centres, which torch's bicubic is).
//!
//! A model whose score does not vary over the `A` masks has V = 0 and no index to estimate;
//! the code divides by zero there, xaudit returns a zero map.
use super::{target_score, Ctx};
use crate::error::{Error, Result};
use serde::Serialize;
use std::sync::OnceLock;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Side of the grid of perturbed cells (d = grid² indices).
    pub grid: usize,
    /// Sobol design points N, a power of two; the method costs N(grid² + 2) forward passes.
    pub designs: usize,
}

impl Default for Params {
    fn default() -> Self {
        // xplique's defaults (the authors' torch class uses 64 designs; the paper 32).
        Params {
            grid: 8,
            designs: 32,
        }
    }
}

/// Largest Sobol dimension the bundled Joe–Kuo table covers.
pub const MAX_DIMS: usize = 21201;

impl Params {
    pub fn check(&self) -> std::result::Result<(), String> {
        if !self.designs.is_power_of_two() || self.designs < 2 {
            return Err(format!(
                "designs must be a power of two >= 2 (got {}); the paper uses 32",
                self.designs
            ));
        }
        if self.grid == 0 || 2 * self.grid * self.grid > MAX_DIMS {
            return Err(format!(
                "grid must be between 1 and 102 (2·grid² Sobol dimensions; got {})",
                self.grid
            ));
        }
        Ok(())
    }
}

fn joe_kuo() -> &'static sobol::params::JoeKuoD6 {
    static P: OnceLock<sobol::params::JoeKuoD6> = OnceLock::new();
    P.get_or_init(sobol::params::JoeKuoD6::extended)
}

/// The replicated design `[A; B; C⁽¹⁾; …; C⁽ᵈ⁾]` as `[N(d+2), d]` values in [0,1).
pub fn design(grid: usize, designs: usize) -> Vec<f32> {
    let d = grid * grid;
    let ab: Vec<Vec<f64>> = sobol::Sobol::<f64>::new(2 * d, joe_kuo())
        .take(designs)
        .collect();
    let mut out = Vec::with_capacity(designs * (d + 2) * d);
    for row in &ab {
        out.extend(row[..d].iter().map(|v| *v as f32));
    }
    for row in &ab {
        out.extend(row[d..].iter().map(|v| *v as f32));
    }
    for i in 0..d {
        for row in &ab {
            out.extend((0..d).map(|k| if k == i { row[d + i] } else { row[k] } as f32));
        }
    }
    out
}

/// Jansen's total-order indices `[d]` from the scores `y` `[N(d+2)]` of the design's rows.
pub fn jansen(y: &Tensor, designs: usize, d: usize) -> Tensor {
    let y = y.to_kind(Kind::Double);
    let n = designs as i64;
    let a = y.narrow(0, 0, n);
    let c = y.narrow(0, 2 * n, n * d as i64).view([d as i64, n]);
    let f0 = a.mean(Kind::Double);
    let var = (&a - f0).square().sum(Kind::Double) / (n - 1) as f64;
    let num = (c - a.view([1, n]))
        .square()
        .sum_dim_intlist(1, false, Kind::Double);
    let var_v = var.double_value(&[]);
    if var_v > 0.0 {
        (num / (2.0 * n as f64 * var_v)).to_kind(Kind::Float)
    } else {
        Tensor::zeros([d as i64], (Kind::Float, y.device()))
    }
}

/// Returns `[B,1,H,W]`.
pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    p.check()
        .map_err(|e| Error::method("sobol", e, "fix [methods.sobol]"))?;
    let size = x.size();
    let (b, h, w) = (size[0], size[2], size[3]);
    let dev = x.device();
    let d = p.grid * p.grid;
    let rows = (p.designs * (d + 2)) as i64;
    let g = p.grid as i64;
    let low = Tensor::from_slice(&design(p.grid, p.designs))
        .view([rows, 1, g, g])
        .to_device(dev);
    let mut scores = Vec::new();
    super::for_chunks((b * rows) as usize, ctx.internal_batch, |r| {
        let idx = Tensor::arange_start(r.start as i64, r.end as i64, (Kind::Int64, dev));
        let img = idx.divide_scalar_mode(rows, "floor");
        let row = idx.remainder(rows);
        let m = low
            .index_select(0, &row)
            .upsample_nearest2d([h, w], None, None);
        let xs = x.index_select(0, &img) * m;
        let t = targets.index_select(0, &img);
        scores.push(target_score(&ctx.model.logits(&xs)?, &t, ctx.score).to_kind(Kind::Float));
        Ok(())
    })?;
    let y = Tensor::cat(&scores, 0).view([b, rows]);
    let maps: Vec<Tensor> = (0..b)
        .map(|i| jansen(&y.get(i), p.designs, d).view([1, 1, g, g]))
        .collect();
    Ok(Tensor::cat(&maps, 0).upsample_bicubic2d([h, w], false, None, None))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "sobol",
    summary: "total-order Sobol indices of grid cells under quasi-Monte Carlo masks, black-box",
    reference: "Fel et al. 2021 (NeurIPS), arXiv:2111.04138",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Forward,
    stochastic: false,
    control: false,
    clips: false,
    cost: "designs · (grid² + 2) forward passes (2112 at the defaults)",
};

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        self.check()
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
    use super::Attribution;
    attribute(ctx, p, x, targets).map(Attribution::plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_replaces_one_column_per_block() {
        let (grid, n) = (2, 4);
        let d = grid * grid;
        let m = design(grid, n);
        assert_eq!(m.len(), n * (d + 2) * d);
        let row = |r: usize| &m[r * d..(r + 1) * d];
        // The origin first, then (0.5, ...), as scipy's unscrambled sequence.
        assert!(row(0).iter().all(|v| *v == 0.0));
        assert!(row(1).iter().all(|v| *v == 0.5));
        for i in 0..d {
            for j in 0..n {
                let c = row(2 * n + i * n + j);
                for (k, v) in c.iter().enumerate() {
                    let want = if k == i { row(n + j)[k] } else { row(j)[k] };
                    assert_eq!(*v, want);
                }
            }
        }
    }

    #[test]
    fn jansen_on_an_additive_function_is_its_variance_share() {
        // y = 2·m0 + m1 over the design (m2, m3 unused): ST ∝ the coefficients' variance share
        // (4 : 1 : 0 : 0) up to quasi-Monte Carlo error.
        let (grid, n) = (2, 64);
        let d = grid * grid;
        let m = design(grid, n);
        let y: Vec<f32> = m.chunks(d).map(|r| 2.0 * r[0] + r[1]).collect();
        let st = jansen(&Tensor::from_slice(&y), n, d);
        let st: Vec<f64> = (0..d as i64).map(|i| st.double_value(&[i])).collect();
        assert!((st[0] - 0.8).abs() < 0.05, "{st:?}");
        assert!((st[1] - 0.2).abs() < 0.05, "{st:?}");
        assert_eq!((st[2], st[3]), (0.0, 0.0));
    }
}
