//! Pointwise distances between two maps (numpy definitions).
use super::paired_len;

/// Sum of squared differences and of squares of `a`, over the common prefix.
fn sums(a: &[f32], b: &[f32]) -> (f64, f64, usize) {
    let n = paired_len(a, b);
    let (mut dd, mut aa) = (0.0f64, 0.0f64);
    for (&x, &y) in a[..n].iter().zip(&b[..n]) {
        let (x, y) = (x as f64, y as f64);
        dd += (x - y) * (x - y);
        aa += x * x;
    }
    (dd, aa, n)
}

/// Mean squared error `mean((a - b)²)`; 0 for empty maps.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    let (dd, _, n) = sums(a, b);
    if n == 0 {
        0.0
    } else {
        dd / n as f64
    }
}

/// Euclidean distance `||a - b||₂` (`np.linalg.norm(a - b)`).
pub fn l2_distance(a: &[f32], b: &[f32]) -> f64 {
    sums(a, b).0.sqrt()
}

/// Relative L2 difference `||a - b||₂ / max(||a||₂, 1e-12)`, as in Yeh et al. 2019
/// max-sensitivity (`a` is the reference explanation). The floor keeps a zero reference
/// finite: 0 when `b` is also zero, otherwise `||b||₂ · 1e12`.
pub fn relative_l2(a: &[f32], b: &[f32]) -> f64 {
    let (dd, aa, _) = sums(a, b);
    dd.sqrt() / aa.sqrt().max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::super::golden::{assert_close, cases, f32s, num};
    use super::*;

    #[test]
    fn golden_numpy() {
        for c in cases("distance") {
            let name = c["name"].as_str().unwrap();
            let (a, b) = (f32s(&c["a"]), f32s(&c["b"]));
            assert_close(mse(&a, &b), num(&c["mse"]), 1e-9, name);
            assert_close(l2_distance(&a, &b), num(&c["l2"]), 1e-9, name);
            assert_close(relative_l2(&a, &b), num(&c["relative_l2"]), 1e-9, name);
        }
    }

    #[test]
    fn degenerate() {
        assert_eq!(mse(&[], &[]), 0.0);
        assert_eq!(relative_l2(&[0.0; 3], &[0.0; 3]), 0.0);
        assert_eq!(relative_l2(&[0.0, 0.0], &[3.0, 4.0]), 5e12);
        assert_eq!(l2_distance(&[1.0, 1.0], &[4.0, 5.0]), 5.0);
    }
}
