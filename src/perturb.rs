//! Semantically neutral input changes for the fuzz audit: small programs of brightness,
//! contrast, noise, translation, rotation, quantisation and occlusion operations, each
//! bounded by a budget, generated and shrunk by proptest strategies. Operations act on
//! pixels in [0,1] and the result is clamped to the valid range.
use crate::transform::Transform;
use proptest::prelude::*;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One operation; every parameter's neutral value (0, or an empty patch) is what shrinking
/// moves towards, so a minimal counterexample has the smallest magnitudes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// x + delta.
    Brightness { delta: f64 },
    /// 0.5 + (1 + delta)(x - 0.5).
    Contrast { delta: f64 },
    /// x + sigma·N(0,1), noise drawn from `seed`.
    Noise { sigma: f64, seed: u64 },
    /// Shift by whole pixels (black fill).
    Translate { dx: i64, dy: i64 },
    /// Rotation about the centre (bilinear, black fill).
    Rotate { degrees: f64 },
    /// Round to multiples of `step`/255 (JPEG-like loss of precision); 0 = none.
    Quantize { step: u32 },
    /// A grey square of `size` pixels at (`row`, `col`) (fractions of the image); 0 = none.
    Patch {
        size: u32,
        row: f64,
        col: f64,
        value: f64,
    },
}

/// Budgets declared in the suite (pixel units: [0,1] intensities unless stated).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Budget {
    #[serde(default = "d_bright")]
    pub brightness: f64,
    #[serde(default = "d_contrast")]
    pub contrast: f64,
    /// Noise σ in 0-255 pixel units.
    #[serde(default = "d_noise")]
    pub noise: f64,
    /// Largest shift in pixels.
    #[serde(default = "d_shift")]
    pub translate: i64,
    #[serde(default = "d_rot")]
    pub rotate_degrees: f64,
    /// Largest quantisation step in 0-255 units.
    #[serde(default = "d_quant")]
    pub quantize: u32,
    /// Largest occluding patch side in pixels.
    #[serde(default = "d_patch")]
    pub patch: u32,
    /// Most operations per program.
    #[serde(default = "d_ops")]
    pub max_ops: usize,
}

fn d_bright() -> f64 {
    0.05
}
fn d_contrast() -> f64 {
    0.1
}
fn d_noise() -> f64 {
    4.0
}
fn d_shift() -> i64 {
    2
}
fn d_rot() -> f64 {
    5.0
}
fn d_quant() -> u32 {
    16
}
fn d_patch() -> u32 {
    3
}
fn d_ops() -> usize {
    3
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            brightness: d_bright(),
            contrast: d_contrast(),
            noise: d_noise(),
            translate: d_shift(),
            rotate_degrees: d_rot(),
            quantize: d_quant(),
            patch: d_patch(),
            max_ops: d_ops(),
        }
    }
}

impl Budget {
    pub fn validate(&self) -> Result<(), String> {
        let nonneg = [
            self.brightness,
            self.contrast,
            self.noise,
            self.rotate_degrees,
        ];
        if nonneg.iter().any(|v| !v.is_finite() || *v < 0.0) || self.translate < 0 {
            return Err("budgets must be finite and >= 0".into());
        }
        if self.contrast >= 1.0 {
            return Err("contrast budget must be < 1 (a factor in (0, 2))".into());
        }
        if self.max_ops == 0 {
            return Err("max-ops must be >= 1".into());
        }
        Ok(())
    }

    /// Strategy for one operation within the budget.
    pub fn op(&self) -> BoxedStrategy<Op> {
        let b = self.clone();
        let mut ops: Vec<BoxedStrategy<Op>> = Vec::new();
        if b.brightness > 0.0 {
            ops.push(
                (-b.brightness..=b.brightness)
                    .prop_map(|delta| Op::Brightness { delta })
                    .boxed(),
            );
        }
        if b.contrast > 0.0 {
            ops.push(
                (-b.contrast..=b.contrast)
                    .prop_map(|delta| Op::Contrast { delta })
                    .boxed(),
            );
        }
        if b.noise > 0.0 {
            ops.push(
                (0.0..=b.noise / 255.0, any::<u64>())
                    .prop_map(|(sigma, seed)| Op::Noise { sigma, seed })
                    .boxed(),
            );
        }
        if b.translate > 0 {
            ops.push(
                (-b.translate..=b.translate, -b.translate..=b.translate)
                    .prop_map(|(dx, dy)| Op::Translate { dx, dy })
                    .boxed(),
            );
        }
        if b.rotate_degrees > 0.0 {
            ops.push(
                (-b.rotate_degrees..=b.rotate_degrees)
                    .prop_map(|degrees| Op::Rotate { degrees })
                    .boxed(),
            );
        }
        if b.quantize > 0 {
            ops.push(
                (0..=b.quantize)
                    .prop_map(|step| Op::Quantize { step })
                    .boxed(),
            );
        }
        if b.patch > 0 {
            ops.push(
                (0..=b.patch, 0.0..1.0f64, 0.0..1.0f64, 0.0..=1.0f64)
                    .prop_map(|(size, row, col, value)| Op::Patch {
                        size,
                        row,
                        col,
                        value,
                    })
                    .boxed(),
            );
        }
        if ops.is_empty() {
            return Just(Op::Brightness { delta: 0.0 }).boxed();
        }
        proptest::strategy::Union::new(ops).boxed()
    }

    /// Strategy for a program of 1..=max_ops operations (shrinks to fewer, smaller ones).
    pub fn program(&self) -> BoxedStrategy<Vec<Op>> {
        proptest::collection::vec(self.op(), 1..=self.max_ops).boxed()
    }
}

/// Applies `ops` to `[C,H,W]` pixels in [0,1]; returns pixels in [0,1].
pub fn apply(ops: &[Op], x01: &Tensor) -> Tensor {
    let mut x = x01.shallow_clone();
    let s = x.size();
    let (c, h, w) = (s[0], s[1], s[2]);
    let black = Tensor::zeros([1, c, 1, 1], (Kind::Float, x.device()));
    for op in ops {
        // Neutral parameters are skipped, so they are the identity exactly (not up to rounding).
        if is_neutral(op) {
            continue;
        }
        x = match *op {
            Op::Brightness { delta } => &x + delta,
            Op::Contrast { delta } => (&x - 0.5) * (1.0 + delta) + 0.5,
            Op::Noise { sigma, seed } => {
                let mut rng = crate::rng::stream(seed, "fuzz-noise", 0, 0);
                let v: Vec<f32> = (0..(c * h * w) as usize)
                    .map(|_| {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        z
                    })
                    .collect();
                &x + Tensor::from_slice(&v).view([c, h, w]).to_device(x.device()) * sigma
            }
            Op::Translate { dx, dy } => Transform::Translate {
                dx: dx as f64,
                dy: dy as f64,
            }
            .apply(&x.unsqueeze(0), &black)
            .squeeze_dim(0),
            Op::Rotate { degrees } => Transform::Rotate { degrees }
                .apply(&x.unsqueeze(0), &black)
                .squeeze_dim(0),
            Op::Quantize { step } if step > 0 => {
                let q = step as f64 / 255.0;
                (&x / q).round() * q
            }
            Op::Patch {
                size,
                row,
                col,
                value,
            } if size > 0 => {
                let sz = (size as i64).min(h).min(w);
                let r0 = ((row * (h - sz + 1) as f64) as i64).clamp(0, h - sz);
                let c0 = ((col * (w - sz + 1) as f64) as i64).clamp(0, w - sz);
                let y = x.copy();
                let _ = y.narrow(1, r0, sz).narrow(2, c0, sz).fill_(value);
                y
            }
            _ => x,
        }
        .clamp(0.0, 1.0);
    }
    x
}

/// The geometric part of a program: its non-neutral shifts and rotations, in order. The
/// photometric operations do not move content, so the explanation of the perturbed image
/// should match the original explanation moved by exactly these transforms.
pub fn geometry(ops: &[Op]) -> Vec<Transform> {
    ops.iter()
        .filter(|o| !is_neutral(o))
        .filter_map(|o| match *o {
            Op::Translate { dx, dy } => Some(Transform::Translate {
                dx: dx as f64,
                dy: dy as f64,
            }),
            Op::Rotate { degrees } => Some(Transform::Rotate { degrees }),
            _ => None,
        })
        .collect()
}

/// `T S(x)`: a map `[1,1,H,W]` moved by the program's geometric transforms (zero fill), and
/// the `[H*W]` mask of pixels whose source stayed inside the image through all of them
/// (every pixel when the program has no geometric operation).
pub fn align(ops: &[Op], map: &Tensor) -> (Tensor, Vec<bool>) {
    let s = map.size();
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    let geo = geometry(ops);
    let dev = map.device();
    let zero = Tensor::zeros([1, 1, 1, 1], (Kind::Float, dev));
    let mut m = map.to_kind(Kind::Float).view([1, 1, h, w]);
    let mut inside = Tensor::ones([1, 1, h, w], (Kind::Float, dev));
    for t in &geo {
        m = t.apply(&m, &zero);
        inside = t.apply(&inside, &zero);
    }
    let valid: Vec<bool> =
        Vec::try_from(inside.ge(0.999).view([-1]).to_device(tch::Device::Cpu)).unwrap_or_default();
    (m, valid)
}

/// Whether an operation leaves the image unchanged.
pub fn is_neutral(op: &Op) -> bool {
    match *op {
        Op::Brightness { delta } | Op::Contrast { delta } => delta == 0.0,
        Op::Noise { sigma, .. } => sigma == 0.0,
        Op::Translate { dx, dy } => dx == 0 && dy == 0,
        Op::Rotate { degrees } => degrees == 0.0,
        Op::Quantize { step } => step == 0,
        Op::Patch { size, .. } => size == 0,
    }
}

/// One line per operation, for reports.
pub fn describe(ops: &[Op]) -> String {
    ops.iter()
        .map(|o| match o {
            Op::Brightness { delta } => format!("brightness {delta:+.4}"),
            Op::Contrast { delta } => format!("contrast x{:.4}", 1.0 + delta),
            Op::Noise { sigma, .. } => format!("noise sigma {:.3}/255", sigma * 255.0),
            Op::Translate { dx, dy } => format!("translate ({dx},{dy}) px"),
            Op::Rotate { degrees } => format!("rotate {degrees:+.3} deg"),
            Op::Quantize { step } => format!("quantize step {step}/255"),
            Op::Patch { size, .. } => format!("patch {size}x{size} px"),
        })
        .collect::<Vec<_>>()
        .join(" ; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::{Config, TestRunner};
    use tch::Device;

    fn img() -> Tensor {
        Tensor::rand([3, 12, 12], (Kind::Float, Device::Cpu))
    }

    proptest! {
        #![proptest_config(Config::with_cases(64))]
        #[test]
        fn programs_stay_in_the_pixel_range(ops in Budget::default().program()) {
            let y = apply(&ops, &img());
            prop_assert!(f64::try_from(y.min()).unwrap() >= 0.0);
            prop_assert!(f64::try_from(y.max()).unwrap() <= 1.0);
            prop_assert!(ops.len() <= Budget::default().max_ops);
        }

        #[test]
        fn brightness_and_noise_stay_inside_their_budget(delta in -0.05..0.05f64, sigma in 0.0..0.01f64, seed in any::<u64>()) {
            // Away from the clamp, the change is exactly the budgeted shift.
            let x = Tensor::full([1, 4, 4], 0.5, (Kind::Float, Device::Cpu));
            let y = apply(&[Op::Brightness { delta }], &x);
            prop_assert!((f64::try_from((&y - &x).abs().max()).unwrap() - delta.abs()).abs() < 1e-6);
            let a = apply(&[Op::Noise { sigma, seed }], &x);
            let b = apply(&[Op::Noise { sigma, seed }], &x);
            prop_assert!(a.equal(&b), "seeded noise is reproducible");
        }
    }

    #[test]
    fn alignment_moves_the_map_with_the_image() {
        // A blob shifted by (2, 1) px: the aligned original matches the shifted map exactly
        // on the valid region, and photometric operations do not move anything.
        let m = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
        let _ = m.narrow(2, 3, 2).narrow(3, 3, 2).fill_(1.0);
        let ops = [
            Op::Brightness { delta: 0.01 },
            Op::Translate { dx: 2, dy: 1 },
        ];
        let (a, valid) = align(&ops, &m);
        let shifted = Transform::Translate { dx: 2.0, dy: 1.0 }
            .apply(&m, &Tensor::zeros([1, 1, 1, 1], (Kind::Float, Device::Cpu)));
        assert!(f64::try_from((&a - &shifted).abs().max()).unwrap() < 1e-5);
        assert_eq!(valid.iter().filter(|v| !**v).count(), 2 * 8 + 8 - 2);
        let (b, all) = align(&[Op::Contrast { delta: 0.1 }], &m);
        assert!(b.equal(&m) && all.iter().all(|v| *v));
    }

    #[test]
    fn neutral_parameters_are_the_identity() {
        let x = img();
        let id = [
            Op::Brightness { delta: 0.0 },
            Op::Contrast { delta: 0.0 },
            Op::Translate { dx: 0, dy: 0 },
            Op::Rotate { degrees: 0.0 },
            Op::Noise {
                sigma: 0.0,
                seed: 9,
            },
            Op::Quantize { step: 0 },
            Op::Patch {
                size: 0,
                row: 0.5,
                col: 0.5,
                value: 0.0,
            },
        ];
        assert!(apply(&id, &x).equal(&x));
        let mut r = TestRunner::deterministic();
        let t = Budget::default().program().new_tree(&mut r).unwrap();
        assert!(!t.current().is_empty());
    }
}
