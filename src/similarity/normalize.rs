//! Per-map normalisations and the PAIR saliency visualisation scalings.
//! All arithmetic in f64, results rounded to f32.

/// Min-max scaling `(a - min) / (max - min)` to [0, 1]; all zeros when the range is 0.
pub fn minmax(a: &[f32]) -> Vec<f32> {
    let (lo, hi) = a
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v as f64), h.max(v as f64))
        });
    let range = hi - lo;
    if range.is_nan() || range <= 0.0 {
        return vec![0.0; a.len()];
    }
    a.iter()
        .map(|&v| ((v as f64 - lo) / range) as f32)
        .collect()
}

/// `a / max|a|` (Quantus `normalise_by_max`), in [-1, 1]; all zeros for a zero map.
pub fn max_abs(a: &[f32]) -> Vec<f32> {
    let m = a.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
    scale(a, m)
}

/// `a / sqrt(mean(a²))` (unit second moment); all zeros for a zero (or empty) map.
pub fn second_moment(a: &[f32]) -> Vec<f32> {
    let ms = a.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / a.len().max(1) as f64;
    scale(a, ms.sqrt())
}

/// `a / d`, or zeros when `d` is 0.
fn scale(a: &[f32], d: f64) -> Vec<f32> {
    if d == 0.0 {
        return vec![0.0; a.len()];
    }
    a.iter().map(|&v| (v as f64 / d) as f32).collect()
}

/// PAIR saliency `VisualizeImageGrayscale` on a channel-first `[c][h][w]` map:
/// `s = Σ_c |a_c|`, `clip((s - min s) / (P_pct(s) - min s), 0, 1)` with `P_pct` numpy's
/// default (`'linear'`) percentile; `pct` is clamped to [0, 100] (numpy raises outside).
/// When `P_pct(s) == min s` (e.g. a ReLU map whose zeros exceed `pct` percent), numpy divides
/// by zero; here the limit is taken: pixels above the minimum -> 1, the others -> 0.
/// Returns `h*w` values. `a.len() != c*h*w`: see [`channel_sum`].
pub fn pair_gray(a: &[f32], c: usize, h: usize, w: usize, pct: f64) -> Vec<f32> {
    let s = channel_sum(a, c, h, w, f64::abs);
    if s.is_empty() {
        return Vec::new();
    }
    let vmin = s.iter().copied().fold(f64::INFINITY, f64::min);
    let vmax = percentile(&s, pct);
    let span = vmax - vmin;
    s.iter()
        .map(|&v| {
            let t = if span > 0.0 {
                ((v - vmin) / span).clamp(0.0, 1.0)
            } else if v > vmin {
                1.0
            } else {
                0.0
            };
            t as f32
        })
        .collect()
}

/// PAIR saliency `VisualizeImageDiverging` on a `[c][h][w]` map: `s = Σ_c a_c`,
/// `span = |P_pct(s)|`, `clip((s + span) / (2 span), -1, 1)`. When `span == 0` numpy
/// divides by zero; the limit span -> 0+ is used: `s > 0` -> 1, `s < 0` -> -1, `s = 0` -> 0.5.
/// Returns `h*w` values.
pub fn pair_diverging(a: &[f32], c: usize, h: usize, w: usize, pct: f64) -> Vec<f32> {
    let s = channel_sum(a, c, h, w, |v| v);
    if s.is_empty() {
        return Vec::new();
    }
    let span = percentile(&s, pct).abs();
    s.iter()
        .map(|&v| {
            let t = if span > 0.0 {
                ((v + span) / (2.0 * span)).clamp(-1.0, 1.0)
            } else if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.5
            };
            t as f32
        })
        .collect()
}

/// `Σ_c f(a[c][p])` for each pixel `p`, in channel order (numpy's reduction order).
/// `a.len() != c*h*w` is a caller bug (debug_assert); release builds sum the channels `a`
/// holds completely.
fn channel_sum(a: &[f32], c: usize, h: usize, w: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
    debug_assert_eq!(a.len(), c * h * w, "pair visualisation: map is not c*h*w");
    let plane = h * w;
    let mut s = vec![0.0f64; plane];
    if plane == 0 {
        return s;
    }
    for channel in a.chunks_exact(plane).take(c) {
        for (acc, &v) in s.iter_mut().zip(channel) {
            *acc += f(v as f64);
        }
    }
    s
}

/// `np.percentile(x, pct)` with the default `'linear'` method: virtual index
/// `(n-1)·pct/100`, interpolated with numpy's two-sided `_lerp` (from the upper neighbour
/// when the fraction is >= 0.5), so results agree to the last bit. `x` must be non-empty.
fn percentile(x: &[f64], pct: f64) -> f64 {
    let mut sorted = x.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    let q = if pct.is_nan() {
        1.0
    } else {
        pct.clamp(0.0, 100.0) / 100.0
    };
    let virtual_index = (n - 1) as f64 * q;
    let lower = virtual_index.floor();
    let i = (lower as usize).min(n - 1);
    let next = (i + 1).min(n - 1);
    let t = virtual_index - lower;
    let (lo, hi) = (sorted[i], sorted[next]);
    let diff = hi - lo;
    if t >= 0.5 {
        hi - diff * (1.0 - t)
    } else {
        lo + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::super::golden::{assert_close_f32, cases, f32s, f64s, num, uint};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_numpy_normalisations() {
        for c in cases("normalize") {
            let name = c["name"].as_str().unwrap();
            let a = f32s(&c["a"]);
            assert_close_f32(&minmax(&a), &f64s(&c["minmax"]), name);
            assert_close_f32(&max_abs(&a), &f64s(&c["max_abs"]), name);
            assert_close_f32(&second_moment(&a), &f64s(&c["second_moment"]), name);
        }
    }

    #[test]
    fn golden_pair_visualisations() {
        for c in cases("pair") {
            let name = c["name"].as_str().unwrap();
            let a = f32s(&c["a"]);
            let (ch, h, w, pct) = (uint(&c["c"]), uint(&c["h"]), uint(&c["w"]), num(&c["pct"]));
            assert_close_f32(&pair_gray(&a, ch, h, w, pct), &f64s(&c["gray"]), name);
            assert_close_f32(
                &pair_diverging(&a, ch, h, w, pct),
                &f64s(&c["diverging"]),
                name,
            );
        }
    }

    #[test]
    fn percentile_matches_numpy() {
        // np.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) -> [1, 1.75, 2.5, 3.7, 4]
        let x = [4.0, 1.0, 3.0, 2.0];
        for (p, want) in [
            (0.0, 1.0),
            (25.0, 1.75),
            (50.0, 2.5),
            (90.0, 3.7),
            (100.0, 4.0),
        ] {
            assert_eq!(percentile(&x, p), want, "p={p}");
        }
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn degenerate_conventions() {
        assert_eq!(minmax(&[3.0; 4]), vec![0.0; 4]);
        assert_eq!(max_abs(&[0.0; 3]), vec![0.0; 3]);
        assert_eq!(second_moment(&[0.0; 3]), vec![0.0; 3]);
        assert!(minmax(&[]).is_empty() && second_moment(&[]).is_empty());
        // 75% zeros, median = min = 0 -> limit rule.
        let relu = [0.0, 0.0, 0.0, 2.0];
        assert_eq!(pair_gray(&relu, 1, 2, 2, 50.0), vec![0.0, 0.0, 0.0, 1.0]);
        let signed = [0.0, -1.0, 0.0, 2.0];
        assert_eq!(
            pair_diverging(&signed, 1, 2, 2, 50.0),
            vec![0.5, -1.0, 0.5, 1.0]
        );
        assert!(pair_gray(&[], 3, 0, 4, 99.0).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn ranges(a in prop::collection::vec(-50.0f32..50.0, 1..200), pct in 0.0f64..100.0) {
            prop_assert!(minmax(&a).iter().all(|v| (0.0..=1.0).contains(v)));
            prop_assert!(max_abs(&a).iter().all(|v| (-1.0..=1.0).contains(v)));
            let n = a.len();
            prop_assert!(pair_gray(&a, 1, 1, n, pct).iter().all(|v| (0.0..=1.0).contains(v)));
            prop_assert!(pair_diverging(&a, 1, n, 1, pct).iter().all(|v| (-1.0..=1.0).contains(v)));
        }
    }
}
