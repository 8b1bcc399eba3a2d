//! Median, mean and quantiles with numpy's conventions (`np.median`, `np.mean`,
//! `np.quantile(x, q, method="linear")`). Empty input gives NaN.

use super::without_nan;

fn sorted(x: &[f64]) -> Vec<f64> {
    let mut v = without_nan(x);
    v.sort_by(f64::total_cmp);
    v
}

/// Median; the average of the two middle values for even n. NaN for empty input.
pub fn median(x: &[f64]) -> f64 {
    median_sorted(&sorted(x))
}

/// Median of an already sorted slice.
pub(crate) fn median_sorted(s: &[f64]) -> f64 {
    let n = s.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Arithmetic mean. NaN for empty input.
pub fn mean(x: &[f64]) -> f64 {
    let v = without_nan(x);
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Quantile with numpy's default 'linear' rule: index h = (n-1) q, interpolated between
/// neighbours. NaN for empty input or q outside [0, 1].
pub fn quantile(x: &[f64], q: f64) -> f64 {
    quantile_sorted(&sorted(x), q)
}

/// Linear-interpolation quantile of an already sorted slice.
pub(crate) fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    if s.is_empty() || !(0.0..=1.0).contains(&q) {
        return f64::NAN;
    }
    let h = (s.len() - 1) as f64 * q;
    let lo = (h.floor() as usize).min(s.len() - 1);
    let hi = (lo + 1).min(s.len() - 1);
    lerp(s[lo], s[hi], h - lo as f64)
}

/// numpy's `_lerp`: a + t (b - a), computed from the nearer end for t >= 0.5.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}
