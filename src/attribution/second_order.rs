//! Exact gradients of an explanation with respect to the input (double backpropagation), as
//! the attribution attacks of Ghorbani et al. (2019) and Dombrowski et al. (2019) use them.
//!
//! The attacks need dD/dx for a dissimilarity D of the explanation a(x). xaudit splits it:
//! u = dD/da is computed on the (small) explanation, then the vector-Jacobian product
//! d<a(x), u>/dx is taken through the method, chunk by chunk: the explanation of every
//! method here is a sum over rows (IG path points, SmoothGrad samples, or the image itself),
//! so each chunk's graph is built, differentiated and freed before the next, and memory does
//! not grow with the number of IG steps or SmoothGrad samples.
//!
//! It works through TorchScript when the model is twice differentiable (softplus, GELU,
//! SiLU, sigmoid, tanh...). For piecewise-linear models (ReLU, max-pool) the result is zero
//! almost everywhere: [`probe`] tells, and the attacks then use a smooth surrogate or the
//! zeroth-order estimator. The TorchScript graph optimiser returns NaN from the second
//! double-backward call on (measured on PyTorch 2.13); `Model::load` turns it off.
use super::{accumulate_runs, target_score, Ctx, MethodSpec};
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

fn backward(root: &Tensor, input: &Tensor, create_graph: bool) -> Result<Tensor> {
    let mut g = Tensor::f_run_backward(&[root], &[input], create_graph, create_graph)?;
    g.pop().filter(Tensor::defined).ok_or_else(|| {
        Error::method(
            "second-order gradient",
            "libtorch returned no gradient through the explanation",
            "make forward (and features/head) use their input through differentiable operations",
        )
    })
}

/// Model input of rows: `(leaf rows, row numbers)`.
type PointFn<'a> = &'a dyn Fn(&Tensor, &[usize]) -> Result<Tensor>;
/// A row's contribution to the attribution: `(leaf rows, grads at the point, row numbers)`.
type PostFn<'a> = &'a dyn Fn(&Tensor, &Tensor, &[usize]) -> Result<Tensor>;

/// How one chunk of rows is explained: the point the model sees and the row's contribution
/// to the explanation, both as functions of the leaf copy of the row's image.
struct Rows<'a> {
    /// Rows per image (IG steps, SmoothGrad samples; 1 for saliency).
    per: usize,
    /// Model input of each row: `(leaf rows, row numbers)`; row r is sample r % per of image
    /// r / per.
    point: PointFn<'a>,
    /// Contribution of each row to the raw attribution: `(leaf rows, grads at the point,
    /// row numbers)`.
    post: PostFn<'a>,
}

/// d/dx Σ_rows <post(x_r, ∇ score(point(x_r))), u_owner> in chunks of `ctx.internal_batch`.
fn rows_vjp(ctx: &Ctx, x: &Tensor, targets: &Tensor, u: &Tensor, rows: Rows) -> Result<Tensor> {
    let b = x.size()[0] as usize;
    let dev = x.device();
    let mut acc = x.zeros_like();
    super::for_chunks(b * rows.per, ctx.internal_batch, |r| {
        let owner: Vec<usize> = r.clone().map(|s| s / rows.per).collect();
        let ks: Vec<usize> = r.clone().collect();
        let sel =
            Tensor::from_slice(&owner.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(dev);
        let gx = tch::with_grad(|| -> Result<Tensor> {
            let leaf = x.index_select(0, &sel).detach().set_requires_grad(true);
            let p = (rows.point)(&leaf, &ks)?;
            let logits = ctx.model.forward_grad(&p)?;
            let s =
                target_score(&logits, &targets.index_select(0, &sel), ctx.score).sum(Kind::Float);
            let g = backward(&s, &p, true)?;
            let c = (rows.post)(&leaf, &g, &ks)?;
            let l = (c.to_kind(Kind::Float) * u.index_select(0, &sel)).sum(Kind::Float);
            backward(&l, &leaf, false)
        })?;
        let kind = acc.kind();
        accumulate_runs(&mut acc, &owner, &gx.to_kind(kind));
        Ok(())
    })?;
    Ok(acc)
}

impl MethodSpec {
    /// d<a(x), u>/dx for the raw attribution a (same shape as `u`), or `None` when the
    /// method has no exact second-order path (occlusion, RISE, the noise controls).
    pub fn explanation_vjp(
        &self,
        ctx: &Ctx,
        x: &Tensor,
        targets: &Tensor,
        ids: &[u64],
        u: &Tensor,
    ) -> Result<Option<Tensor>> {
        let id = |l: &Tensor, _: &[usize]| -> Result<Tensor> { Ok(l.shallow_clone()) };
        Ok(Some(match self {
            MethodSpec::Saliency(_) => rows_vjp(
                ctx,
                x,
                targets,
                u,
                Rows {
                    per: 1,
                    point: &id,
                    post: &|_, g, _| Ok(g.shallow_clone()),
                },
            )?,
            MethodSpec::GradientXInput(_) => rows_vjp(
                ctx,
                x,
                targets,
                u,
                Rows {
                    per: 1,
                    point: &id,
                    post: &|l, g, _| Ok(l * g),
                },
            )?,
            MethodSpec::IntegratedGradients(p) => {
                let (alphas, weights) = super::integrated_gradients::quadrature(p.rule, p.steps);
                let per = alphas.len();
                let col = |v: &[f64], rows: &[usize], like: &Tensor| {
                    let c: Vec<f64> = rows.iter().map(|&r| v[r % per]).collect();
                    Tensor::from_slice(&c)
                        .to_kind(like.kind())
                        .to_device(like.device())
                        .view([-1, 1, 1, 1])
                };
                let base = p.baseline;
                rows_vjp(
                    ctx,
                    x,
                    targets,
                    u,
                    Rows {
                        per,
                        point: &|l, ks| Ok(col(&alphas, ks, l) * (l - base) + base),
                        post: &|l, g, ks| Ok(col(&weights, ks, l) * (l - base) * g),
                    },
                )?
            }
            MethodSpec::Smoothgrad(p) => {
                let n = p.samples.max(1);
                let size = x.size();
                let numel = (size[1] * size[2] * size[3]) as usize;
                let dims = [1i64, 2, 3].as_slice();
                // The noise scale follows the clean image (as the explanation does); it is
                // treated as a constant of the input.
                let sigma = (x.amax(dims, false) - x.amin(dims, false)) * p.noise_level;
                let magnitude = p.magnitude;
                let point = |l: &Tensor, rows: &[usize]| -> Result<Tensor> {
                    let mut v = Vec::with_capacity(rows.len() * numel);
                    let owners: Vec<i64> = rows.iter().map(|&r| (r / n) as i64).collect();
                    for &r in rows {
                        v.extend(super::smoothgrad::unit_noise(
                            ctx.seed,
                            ids[r / n],
                            (r % n) as u64,
                            numel,
                        ));
                    }
                    let sel = Tensor::from_slice(&owners).to_device(l.device());
                    let noise = Tensor::from_slice(&v)
                        .view([rows.len() as i64, size[1], size[2], size[3]])
                        .to_device(l.device());
                    Ok(l + noise * sigma.index_select(0, &sel).view([-1, 1, 1, 1]))
                };
                rows_vjp(
                    ctx,
                    x,
                    targets,
                    u,
                    Rows {
                        per: n,
                        point: &point,
                        post: &|_, g, _| {
                            Ok(if magnitude {
                                g.square()
                            } else {
                                g.shallow_clone()
                            } / n as f64)
                        },
                    },
                )?
            }
            MethodSpec::GradCam(p) => grad_cam_vjp(ctx, p, x, targets, u)?,
            MethodSpec::Edge(_) => {
                // The Sobel map is a function of the input alone: its gradient is exact.
                tch::with_grad(|| -> Result<Tensor> {
                    let leaf = x.detach().set_requires_grad(true);
                    let map = match ctx.model.clip {
                        Some(c) => crate::clip::per_frame(
                            &leaf,
                            c.frames,
                            super::edge::attribute_differentiable,
                        ),
                        None => super::edge::attribute_differentiable(&leaf),
                    };
                    let l = (map * u).sum(Kind::Float);
                    backward(&l, &leaf, false)
                })?
            }
            // Maps that ignore the input have a zero gradient.
            MethodSpec::FixedRandom(_) | MethodSpec::Random(_) => x.zeros_like(),
            // Every other method (black-box maps; Grad-CAM++, whose α is not differentiated
            // here): no exact path, the attacks fall back to zeroth order. A new method needs
            // no line here unless it has an exact explanation gradient.
            _ => return Ok(None),
        }))
    }
}

/// Grad-CAM: a = upsample(relu(Σ_k α_k A_k)), α = mean of d score / d A, A = features(x).
fn grad_cam_vjp(
    ctx: &Ctx,
    p: &super::grad_cam::Params,
    x: &Tensor,
    targets: &Tensor,
    u: &Tensor,
) -> Result<Tensor> {
    ctx.model.require_cam("grad-cam")?;
    let b = x.size()[0] as usize;
    let mut out = Vec::new();
    super::for_chunks(b, ctx.internal_batch, |r| {
        let xs = x.narrow(0, r.start as i64, r.len() as i64);
        let ts = targets.narrow(0, r.start as i64, r.len() as i64);
        let us = u.narrow(0, r.start as i64, r.len() as i64);
        let g = tch::with_grad(|| -> Result<Tensor> {
            let leaf = xs.detach().set_requires_grad(true);
            let feats = ctx.model.features_grad(&leaf)?;
            let s = target_score(&ctx.model.head(&feats)?, &ts, ctx.score).sum(Kind::Float);
            let ga = backward(&s, &feats, true)?;
            let alpha = ga.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
            let cam = (alpha * &feats).sum_dim_intlist(1, true, Kind::Float);
            let cam = if p.relu { cam.relu() } else { cam };
            let up = super::grad_cam::upsample_in(ctx, &cam, &xs, p.upsample);
            backward(&(up * us).sum(Kind::Float), &leaf, false)
        })?;
        out.push(g);
        Ok(())
    })?;
    Ok(Tensor::cat(&out, 0))
}

/// Whether the exact path gives a usable (non-zero, finite) gradient for `method` on this
/// model: a vector-Jacobian product through the explanation of `x` with a seeded random
/// cotangent, taken twice (the TorchScript executor trap returns NaN on the second call).
pub fn probe(
    spec: &MethodSpec,
    ctx: &Ctx,
    x: &Tensor,
    targets: &Tensor,
    ids: &[u64],
) -> Result<bool> {
    let shape = spec.attribute(ctx, x, targets, ids)?.maps.size();
    let numel: i64 = shape.iter().product();
    let mut rng = crate::rng::stream(ctx.seed, "second-order-probe", 0, 0);
    let v: Vec<f32> = (0..numel)
        .map(|_| rand::Rng::random_range(&mut rng, -1.0f32..1.0))
        .collect();
    let u = Tensor::from_slice(&v)
        .view(shape.as_slice())
        .to_device(x.device());
    let mut norms = Vec::new();
    for _ in 0..2 {
        let Some(g) = spec.explanation_vjp(ctx, x, targets, ids, &u)? else {
            return Ok(false);
        };
        if !bool::try_from(g.isfinite().all()).unwrap_or(false) {
            return Ok(false);
        }
        norms.push(g.abs().max().double_value(&[]));
    }
    Ok(norms.iter().all(|n| *n > 1e-12)
        && (norms[0] - norms[1]).abs() <= 1e-6 * norms[0].max(1e-30))
}
