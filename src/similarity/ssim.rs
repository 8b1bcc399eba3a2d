//! Structural similarity (Wang et al. 2004) as computed by scikit-image.

/// Gaussian window standard deviation, as skimage's `sigma=1.5`.
const SIGMA: f64 = 1.5;
/// Full window: skimage uses `truncate=3.5`, radius `int(3.5*1.5 + 0.5) = 5`, 11 taps.
const FULL_RADIUS: usize = 5;
const K1: f64 = 0.01;
const K2: f64 = 0.03;

/// Mean SSIM of two `[c][h][w]` maps, matching scikit-image 0.26
/// `structural_similarity(a, b, data_range=data_range, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=True, channel_axis=0 if c > 1)` run on float64 arrays:
/// * local moments from an 11×11 separable Gaussian (sigma 1.5, truncate 3.5, weights
///   normalised to sum 1), covariances scaled by `NP/(NP-1)` with `NP = 11²`;
/// * `S = (2 ux uy + C1)(2 vxy + C2) / ((ux² + uy² + C1)(vx + vy + C2))`,
///   `C1 = (0.01 R)²`, `C2 = (0.03 R)²`, `R = data_range`;
/// * mean of `S` over the map with `(win-1)/2 = 5` pixels cropped from every border, then
///   the mean over channels.
///
/// Because the crop equals the filter radius, every averaged pixel's window lies inside the
/// map: skimage's `'reflect'` boundary mode never reaches the result, so none is needed here.
///
/// Extension (skimage raises `win_size exceeds image extent`): when `min(h, w) < 11` the
/// window shrinks to the largest odd size `win <= min(h, w)`; sigma stays 1.5, the Gaussian
/// is truncated at radius `(win-1)/2` and renormalised, `NP = win²` (factor 1 when
/// `NP = 1`) and the crop is `(win-1)/2`. For `min(h, w) >= 11` this is exactly skimage.
///
/// Other choices: a pixel whose denominator is 0 (only possible with `data_range == 0`,
/// where skimage gives NaN) counts as 1; empty maps (`c`, `h` or `w` = 0) -> 1.0.
/// `a`, `b` shorter or longer than `c*h*w` is a caller bug (debug_assert); release builds
/// use the channels both maps hold completely.
pub fn ssim(a: &[f32], b: &[f32], c: usize, h: usize, w: usize, data_range: f64) -> f64 {
    let plane = h * w;
    debug_assert_eq!(a.len(), c * plane, "ssim: a is not c*h*w");
    debug_assert_eq!(b.len(), c * plane, "ssim: b is not c*h*w");
    if plane == 0 {
        return 1.0;
    }
    let channels = c.min(a.len() / plane).min(b.len() / plane);
    if channels == 0 {
        return 1.0;
    }
    let window = Window::fitting(h, w);
    let consts = (K1 * data_range).powi(2);
    let consts = (consts, (K2 * data_range).powi(2));
    let mut scratch = Scratch::new(h, w);
    let total: f64 = (0..channels)
        .map(|ch| {
            let range = ch * plane..(ch + 1) * plane;
            channel_ssim(
                &a[range.clone()],
                &b[range],
                h,
                w,
                &window,
                consts,
                &mut scratch,
            )
        })
        .sum();
    total / channels as f64
}

/// The Gaussian window used for one map size.
struct Window {
    radius: usize,
    /// `weights[j]` for offset ±j, j = 0..=radius; the full kernel sums to 1.
    weights: Vec<f64>,
    /// Sample-covariance factor `NP/(NP-1)`, `NP = win²` (1 when `NP = 1`).
    cov_norm: f64,
}

impl Window {
    /// skimage's window when it fits, else the shrunken one (see [`ssim`]).
    fn fitting(h: usize, w: usize) -> Self {
        let side = h.min(w);
        let radius = FULL_RADIUS.min((side - 1) / 2);
        // scipy.ndimage._gaussian_kernel1d: exp(-x²/(2σ²)) normalised over -r..=r.
        let raw: Vec<f64> = (0..=radius)
            .map(|j| (-0.5 / (SIGMA * SIGMA) * (j * j) as f64).exp())
            .collect();
        let sum = raw[0] + 2.0 * raw[1..].iter().sum::<f64>();
        let win = (2 * radius + 1) as f64;
        let np = win * win;
        Window {
            radius,
            weights: raw.iter().map(|v| v / sum).collect(),
            cov_norm: if np > 1.0 { np / (np - 1.0) } else { 1.0 },
        }
    }

    /// Symmetric correlation at `centre` of the sequence `at(k)`; same summation order as
    /// scipy's `correlate1d` for symmetric kernels: centre first, then pairs outermost first.
    #[inline]
    fn apply(&self, centre: usize, at: impl Fn(usize) -> f64) -> f64 {
        let mut acc = at(centre) * self.weights[0];
        for j in (1..=self.radius).rev() {
            acc += (at(centre - j) + at(centre + j)) * self.weights[j];
        }
        acc
    }
}

/// Reused buffers: the five moment planes and one vertically filtered row of each.
struct Scratch {
    /// x, y, x², y², xy, each `h*w`.
    planes: Vec<[f64; 5]>,
    /// Vertically filtered row of each plane, `w` long.
    row: Vec<[f64; 5]>,
}

impl Scratch {
    fn new(h: usize, w: usize) -> Self {
        Scratch {
            planes: vec![[0.0; 5]; h * w],
            row: vec![[0.0; 5]; w],
        }
    }
}

/// Mean SSIM of one `h×w` channel over the cropped interior.
fn channel_ssim(
    a: &[f32],
    b: &[f32],
    h: usize,
    w: usize,
    win: &Window,
    (c1, c2): (f64, f64),
    s: &mut Scratch,
) -> f64 {
    for ((p, &x), &y) in s.planes.iter_mut().zip(a).zip(b) {
        let (x, y) = (x as f64, y as f64);
        *p = [x, y, x * x, y * y, x * y];
    }
    let r = win.radius;
    let mut sum = 0.0f64;
    // Only interior pixels are averaged, and their windows never leave the map.
    for i in r..h - r {
        // Vertical pass (scipy filters axis 0 first) for every column of row i, row-wise
        // for contiguous access; same summation order as `Window::apply`.
        let line = |k: usize| &s.planes[k * w..(k + 1) * w];
        for (out, p) in s.row.iter_mut().zip(line(i)) {
            for q in 0..5 {
                out[q] = p[q] * win.weights[0];
            }
        }
        for j in (1..=r).rev() {
            let wj = win.weights[j];
            for ((out, up), down) in s.row.iter_mut().zip(line(i - j)).zip(line(i + j)) {
                for q in 0..5 {
                    out[q] += (up[q] + down[q]) * wj;
                }
            }
        }
        // Horizontal pass at the interior columns, then the SSIM formula.
        for j in r..w - r {
            let m = |q: usize| win.apply(j, |k| s.row[k][q]);
            let (ux, uy, uxx, uyy, uxy) = (m(0), m(1), m(2), m(3), m(4));
            let vx = win.cov_norm * (uxx - ux * ux);
            let vy = win.cov_norm * (uyy - uy * uy);
            let vxy = win.cov_norm * (uxy - ux * uy);
            let num = (2.0 * ux * uy + c1) * (2.0 * vxy + c2);
            let den = (ux * ux + uy * uy + c1) * (vx + vy + c2);
            sum += if den == 0.0 { 1.0 } else { num / den };
        }
    }
    sum / ((h - 2 * r) * (w - 2 * r)) as f64
}

#[cfg(test)]
mod tests {
    use super::super::golden::{assert_close, cases, f32s, num, uint};
    use super::*;
    use proptest::prelude::*;

    fn check(section: &str, tol: f64) {
        for c in cases(section) {
            let name = c["name"].as_str().unwrap();
            let (a, b) = (f32s(&c["a"]), f32s(&c["b"]));
            let (ch, h, w) = (uint(&c["c"]), uint(&c["h"]), uint(&c["w"]));
            let got = ssim(&a, &b, ch, h, w, num(&c["data_range"]));
            assert_close(got, num(&c["ssim"]), tol, name);
        }
    }

    /// skimage runs in float64 on the widened f32 inputs, as this code does, so the values
    /// agree to rounding; 1e-9 (tighter than the 1e-7 budget for f32 inputs) holds.
    #[test]
    fn golden_skimage() {
        check("ssim", 1e-9);
    }

    /// The small-map extension against its numpy/scipy.ndimage reference.
    #[test]
    fn golden_small_window() {
        check("ssim_small", 1e-9);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(ssim(&[], &[], 1, 0, 5, 1.0), 1.0);
        assert_eq!(ssim(&[0.0; 4], &[0.0; 4], 1, 2, 2, 0.0), 1.0);
        assert_eq!(ssim(&[0.3; 4], &[0.3; 4], 1, 1, 4, 1.0), 1.0);
        let z = [0.0f32; 144];
        assert!(ssim(&z, &[1.0; 144], 1, 12, 12, 1.0) < 1e-3);
    }

    fn maps() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>, Vec<f32>)> {
        (1usize..4, 1usize..24, 1usize..24).prop_flat_map(|(c, h, w)| {
            let v = prop::collection::vec(0.0f32..1.0, c * h * w);
            (Just(c), Just(h), Just(w), v.clone(), v)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn identity_and_symmetry((c, h, w, a, b) in maps()) {
            prop_assert!((ssim(&a, &a, c, h, w, 1.0) - 1.0).abs() < 1e-12);
            let s = ssim(&a, &b, c, h, w, 1.0);
            prop_assert!((s - ssim(&b, &a, c, h, w, 1.0)).abs() < 1e-12);
            prop_assert!(s.is_finite() && s <= 1.0 + 1e-12);
        }
    }
}
