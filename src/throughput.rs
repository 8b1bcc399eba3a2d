//! The model's own speed on this machine (`xaudit throughput`): forward and forward+backward
//! images per second per batch size. The best of these is the ceiling an audit's model passes
//! are measured against (`make bench`, bench/RESULTS.md), and the curve shows which
//! `--internal-batch-size` the machine likes.
use crate::attribution::{input_grads, Score};
use crate::error::Result;
use crate::model::Model;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Default inputs per model pass: 256 for small images, fewer for large ones so a pass holds
/// about 2^24 input values (64 MiB of float32 input; activations scale with it), never below 8.
/// A memory-aware default needs no probe run: on the bench machine throughput is flat from
/// 64 to 512 for small CNNs (bench/RESULTS.md), and large inputs are bound by memory.
pub fn auto_batch(input_shape: [i64; 3]) -> usize {
    let per_image = input_shape.iter().product::<i64>().max(1) as usize;
    let fit = (1usize << 24) / per_image;
    let pow2 = if fit == 0 { 1 } else { 1usize << fit.ilog2() };
    pow2.clamp(8, 256)
}

/// Throughput at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub batch: usize,
    /// Images per second through `forward` without autograd.
    pub forward_per_s: f64,
    /// Images per second through `forward` with autograd plus the backward pass to the input.
    pub backward_per_s: f64,
}

/// Seeded N(0,1) inputs of the model's input shape (the content does not change the cost of
/// dense convolutional networks).
fn probe(model: &Model, n: usize) -> Tensor {
    let [c, h, w] = model.input_shape;
    let mut rng = crate::rng::stream(0, "throughput", n as u64, 0);
    let v: Vec<f32> = (0..n * (c * h * w) as usize)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_slice(&v)
        .view([n as i64, c, h, w])
        .to_device(model.device)
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Runs `f` once to warm up, then repeatedly until `min_time` seconds (and 3 runs) have
/// passed; returns runs per second.
fn rate(device: Device, min_time: f64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    sync(device);
    let start = Instant::now();
    let mut runs = 0u32;
    loop {
        f()?;
        runs += 1;
        crate::interrupt::check()?;
        if runs >= 3 && start.elapsed().as_secs_f64() >= min_time {
            break;
        }
        if runs % 8 == 0 {
            sync(device);
        }
    }
    sync(device);
    Ok(f64::from(runs) / start.elapsed().as_secs_f64())
}

/// `[n, C, H, W]` from `images` (model space, any count >= 1), repeated to fill `n`, or the
/// seeded probe when `images` is None.
fn inputs(model: &Model, images: Option<&Tensor>, n: usize) -> Tensor {
    match images {
        Some(x) => {
            let have = x.size()[0].max(1);
            let idx: Vec<i64> = (0..n as i64).map(|i| i % have).collect();
            x.index_select(0, &Tensor::from_slice(&idx).to_device(x.device()))
        }
        None => probe(model, n),
    }
}

/// Forward and forward+backward throughput at each batch size in `batches`, the best of
/// `repeats` timings each (a ceiling is the best the machine did, not its average). With
/// `images` (model space, on the model's device) the passes run on those real inputs, which
/// matters a little on CPUs (sparsity of activations, denormals); else on seeded noise.
pub fn measure(
    model: &Model,
    images: Option<&Tensor>,
    batches: &[usize],
    min_time: f64,
    repeats: usize,
) -> Result<Vec<Point>> {
    let mut out: Vec<Point> = batches
        .iter()
        .map(|&b| Point {
            batch: b.max(1),
            forward_per_s: 0.0,
            backward_per_s: 0.0,
        })
        .collect();
    // Repeats sweep all batch sizes in turn so a slow spell of the machine hits one sweep,
    // not every timing of one batch size.
    for _ in 0..repeats.max(1) {
        for p in out.iter_mut() {
            let b = p.batch;
            let x = inputs(model, images, b);
            let t = Tensor::zeros([b as i64], (Kind::Int64, model.device));
            let fwd = rate(model.device, min_time, || {
                // Reading one value back forces the pass to finish, as an audit's scalars do.
                let _ = model.logits(&x)?.sum(Kind::Float);
                Ok(())
            })?;
            let bwd = rate(model.device, min_time, || {
                let _ = input_grads(model, &x, &t, Score::Logit)?;
                Ok(())
            })?;
            p.forward_per_s = p.forward_per_s.max(fwd * b as f64);
            p.backward_per_s = p.backward_per_s.max(bwd * b as f64);
        }
    }
    Ok(out)
}

/// The best throughput over `points`: (forward, forward+backward) images/s.
pub fn ceiling(points: &[Point]) -> (f64, f64) {
    points.iter().fold((0.0, 0.0), |(f, b), p| {
        (f.max(p.forward_per_s), b.max(p.backward_per_s))
    })
}

#[cfg(test)]
mod tests {
    use super::auto_batch;

    #[test]
    fn auto_batch_shrinks_with_the_input() {
        assert_eq!(auto_batch([1, 28, 28]), 256);
        assert_eq!(auto_batch([3, 224, 224]), 64);
        assert_eq!(auto_batch([3, 512, 512]), 16);
        assert_eq!(auto_batch([3, 4096, 4096]), 8);
    }
}
