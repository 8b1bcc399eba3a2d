//! Geometric transforms of image batches `[B,C,H,W]` and maps, with the region where the
//! transformed result is defined. Flips and 90-degree rotations are exact index
//! permutations; rotations, translations and scalings resample bilinearly
//! (`grid_sample`, align_corners = false) and mark pixels that came from outside the
//! image as invalid.
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// One transform with its magnitude.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Transform {
    HFlip,
    VFlip,
    /// Counter-clockwise quarter turns (1, 2, 3); square inputs only.
    Rot90 {
        turns: i64,
    },
    /// Rotation by degrees (counter-clockwise on screen), about the image centre.
    Rotate {
        degrees: f64,
    },
    /// Shift by pixels (positive: right / down).
    Translate {
        dx: f64,
        dy: f64,
    },
    /// Zoom about the centre by `factor` (> 1 enlarges the content).
    Scale {
        factor: f64,
    },
}

impl Transform {
    /// Short label for reports, e.g. `rotate 10°`.
    pub fn label(&self) -> String {
        match self {
            Transform::HFlip => "hflip".into(),
            Transform::VFlip => "vflip".into(),
            Transform::Rot90 { turns } => format!("rot{}", 90 * turns),
            Transform::Rotate { degrees } => format!("{degrees}°"),
            Transform::Translate { dx, dy } => format!("({dx},{dy})px"),
            Transform::Scale { factor } => format!("x{factor}"),
        }
    }

    /// The inverse transform (exact for flips and quarter turns).
    pub fn inverse(&self) -> Transform {
        match *self {
            Transform::Rot90 { turns } => Transform::Rot90 {
                turns: (4 - turns.rem_euclid(4)) % 4,
            },
            Transform::Rotate { degrees } => Transform::Rotate { degrees: -degrees },
            Transform::Translate { dx, dy } => Transform::Translate { dx: -dx, dy: -dy },
            Transform::Scale { factor } => Transform::Scale {
                factor: 1.0 / factor,
            },
            t => t,
        }
    }

    /// Whether the transform is an exact pixel permutation.
    pub fn is_exact(&self) -> bool {
        matches!(
            self,
            Transform::HFlip | Transform::VFlip | Transform::Rot90 { .. }
        )
    }

    /// Output-to-input affine map in normalised coordinates, `[2,3]` row-major.
    fn theta(&self, h: i64, w: i64) -> [f32; 6] {
        let (h, w) = (h as f64, w as f64);
        let t = match *self {
            Transform::Rotate { degrees } => {
                // Pixel-space rotation expressed in normalised coordinates (aspect aware).
                let a = degrees.to_radians();
                let (s, c) = a.sin_cos();
                [c, -s * h / w, 0.0, s * w / h, c, 0.0]
            }
            Transform::Translate { dx, dy } => [1.0, 0.0, -2.0 * dx / w, 0.0, 1.0, -2.0 * dy / h],
            Transform::Scale { factor } => [1.0 / factor, 0.0, 0.0, 0.0, 1.0 / factor, 0.0],
            _ => [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        };
        t.map(|v| v as f32)
    }

    /// Applies the transform to `[B,C,H,W]`; resampled pixels from outside are `fill`.
    pub fn apply(&self, x: &Tensor, fill: &Tensor) -> Tensor {
        match *self {
            Transform::HFlip => x.flip([3]),
            Transform::VFlip => x.flip([2]),
            Transform::Rot90 { turns } => x.rot90(turns, [2, 3]),
            _ => {
                let s = x.size();
                let theta = Tensor::from_slice(&self.theta(s[2], s[3]))
                    .view([1, 2, 3])
                    .expand([s[0], 2, 3], false)
                    .to_device(x.device());
                let grid = Tensor::affine_grid_generator(&theta, s.as_slice(), false);
                let shifted = x - fill;
                Tensor::grid_sampler(&shifted, &grid, 0, 0, false) + fill
            }
        }
    }

    /// `[H,W]` boolean mask of output pixels that are fully inside the source image.
    pub fn valid(&self, h: i64, w: i64, device: Device) -> Tensor {
        if self.is_exact() {
            return Tensor::ones([h, w], (Kind::Bool, device));
        }
        let ones = Tensor::ones([1, 1, h, w], (Kind::Float, device));
        let zero = Tensor::zeros([1, 1, 1, 1], (Kind::Float, device));
        self.apply(&ones, &zero).view([h, w]).ge(0.999)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Flips and quarter turns are exact permutations: T⁻¹(T(x)) == x bit for bit.
        #[test]
        fn exact_transforms_round_trip(side in 2i64..12, c in 1i64..4, seed in any::<u64>(), which in 0usize..4) {
            tch::manual_seed(seed as i64);
            let x = Tensor::rand([2, c, side, side], (Kind::Float, Device::Cpu));
            let z = Tensor::zeros([1, c, 1, 1], (Kind::Float, Device::Cpu));
            let t = [Transform::HFlip, Transform::VFlip, Transform::Rot90 { turns: 1 }, Transform::Rot90 { turns: 2 }][which];
            prop_assert!(t.inverse().apply(&t.apply(&x, &z), &z).equal(&x));
        }

        /// Whole-pixel shifts invert on the region that stayed inside the image.
        #[test]
        fn translations_round_trip_on_the_valid_region(h in 4i64..14, w in 4i64..14, dx in -3i64..4, dy in -3i64..4, seed in any::<u64>()) {
            tch::manual_seed(seed as i64);
            let x = Tensor::rand([1, 1, h, w], (Kind::Float, Device::Cpu));
            let z = Tensor::zeros([1, 1, 1, 1], (Kind::Float, Device::Cpu));
            let t = Transform::Translate { dx: dx as f64, dy: dy as f64 };
            let back = t.inverse().apply(&t.apply(&x, &z), &z);
            // Output pixels of T⁻¹ whose source lies inside the image are the ones T kept.
            let valid = t.inverse().valid(h, w, Device::Cpu);
            let diff = (back - &x).abs().view([h, w]).masked_select(&valid);
            if diff.numel() > 0 {
                prop_assert!(diff.max().double_value(&[]) < 1e-5);
            }
        }
    }

    fn img() -> Tensor {
        Tensor::arange(2 * 3 * 6 * 6, (Kind::Float, Device::Cpu)).view([2, 3, 6, 6])
    }

    #[test]
    fn exact_transforms_invert() {
        let x = img();
        let z = Tensor::zeros([1, 3, 1, 1], (Kind::Float, Device::Cpu));
        for t in [
            Transform::HFlip,
            Transform::VFlip,
            Transform::Rot90 { turns: 1 },
            Transform::Rot90 { turns: 3 },
        ] {
            let back = t.inverse().apply(&t.apply(&x, &z), &z);
            assert!(back.equal(&x), "{t:?}");
        }
    }

    #[test]
    fn integer_translation_is_a_shift_with_invalid_border() {
        let x = img();
        let z = Tensor::zeros([1, 3, 1, 1], (Kind::Float, Device::Cpu));
        let t = Transform::Translate { dx: 1.0, dy: 0.0 };
        let y = t.apply(&x, &z);
        let a = y.narrow(3, 1, 5);
        let b = x.narrow(3, 0, 5);
        assert!(f64::try_from((a - b).abs().max()).unwrap() < 1e-4);
        let v = t.valid(6, 6, Device::Cpu);
        assert_eq!(i64::try_from(v.sum(Kind::Int64)).unwrap(), 30);
    }

    #[test]
    fn quarter_turn_matches_rotate_90() {
        let x = img();
        let z = Tensor::zeros([1, 3, 1, 1], (Kind::Float, Device::Cpu));
        let a = Transform::Rot90 { turns: 1 }.apply(&x, &z);
        let b = Transform::Rotate { degrees: 90.0 }.apply(&x, &z);
        assert!(f64::try_from((a - b).abs().max()).unwrap() < 1e-3);
    }
}
