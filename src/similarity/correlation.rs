//! Rank and linear correlation between two maps.
use super::paired_len;
use super::rank::average_ranks;

/// Spearman rank correlation, matching the statistic of `scipy.stats.spearmanr`: Pearson
/// correlation of average ranks (ties share the mean rank, as `scipy.stats.rankdata`).
///
/// Undefined cases (scipy returns NaN with a warning), chosen here instead:
/// * exactly one map constant -> `0.0` (it carries no rank information: unrelated);
/// * both maps constant (including empty and single-pixel maps) -> `1.0` (identical: all tied).
///
/// Result is clamped to [-1, 1]. Unequal lengths: see the module docs.
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let n = paired_len(a, b);
    let ra = average_ranks(&a[..n]);
    let rb = average_ranks(&b[..n]);
    pearson_core(&ra, &rb)
}

/// Pearson correlation, matching the statistic of `scipy.stats.pearsonr` (to rounding),
/// with the same constant-map convention as [`spearman`] (scipy: NaN). "Constant" means all
/// values compare equal, as scipy tests it. Sums are centred in two passes in `f64` so
/// near-constant maps keep their precision. Clamped to [-1, 1]; for two points the result
/// is rounded to exactly ±1 as scipy does.
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = paired_len(a, b);
    pearson_core(&a[..n], &b[..n])
}

/// Pearson correlation of equal-length slices (f32 maps or f64 ranks).
fn pearson_core<T: Copy + Into<f64>>(x: &[T], y: &[T]) -> f64 {
    match (is_constant(x), is_constant(y)) {
        (true, true) => return 1.0,
        (true, false) | (false, true) => return 0.0,
        (false, false) => {}
    }
    let (mx, my) = (mean(x), mean(y));
    let (mut sxx, mut syy, mut sxy) = (0.0f64, 0.0f64, 0.0f64);
    for (&xi, &yi) in x.iter().zip(y) {
        let dx = xi.into() - mx;
        let dy = yi.into() - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    // Unreachable for non-constant finite maps; kept so the convention holds regardless.
    if sxx == 0.0 || syy == 0.0 {
        return if sxx == syy { 1.0 } else { 0.0 };
    }
    let r = (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0);
    if x.len() == 2 {
        r.round()
    } else {
        r
    }
}

/// All values equal (`==`, so -0.0 equals 0.0); true for empty slices.
fn is_constant<T: Copy + Into<f64>>(x: &[T]) -> bool {
    match x.first() {
        None => true,
        Some(&first) => {
            let f: f64 = first.into();
            x.iter().all(|&v| v.into() == f)
        }
    }
}

/// Mean with one correction pass (the residual sum), accurate for large offsets.
fn mean<T: Copy + Into<f64>>(x: &[T]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().map(|&v| v.into()).sum::<f64>() / n;
    m + x.iter().map(|&v| v.into() - m).sum::<f64>() / n
}

#[cfg(test)]
mod tests {
    use super::super::golden::{assert_close, cases, f32s, num};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_scipy() {
        for c in cases("correlation") {
            let name = c["name"].as_str().unwrap();
            let (a, b) = (f32s(&c["a"]), f32s(&c["b"]));
            assert_close(spearman(&a, &b), num(&c["spearman"]), 1e-9, name);
            assert_close(pearson(&a, &b), num(&c["pearson"]), 1e-9, name);
        }
    }

    #[test]
    fn oracle_ties() {
        let r = spearman(&[1.0, 1.0, 2.0], &[1.0, 2.0, 3.0]);
        assert!((r - 0.75f64.sqrt()).abs() < 1e-15, "{r}");
    }

    #[test]
    fn constant_conventions() {
        let c = [2.0f32; 5];
        let v = [1.0f32, 3.0, 2.0, 5.0, 4.0];
        for f in [spearman, pearson] {
            assert_eq!(f(&c, &v), 0.0);
            assert_eq!(f(&v, &c), 0.0);
            assert_eq!(f(&c, &[7.0; 5]), 1.0);
            assert_eq!(f(&[], &[]), 1.0);
            assert_eq!(f(&[1.0], &[3.0]), 1.0);
            assert_eq!(f(&[0.0, -0.0], &[1.0, 2.0]), 0.0);
        }
    }

    fn pair() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (1usize..120).prop_flat_map(|n| {
            let v = prop::collection::vec(-100.0f32..100.0, n);
            (v.clone(), v)
        })
    }

    /// Integer-valued maps, so 3x+1 and exp(x/100) stay strictly increasing in f32.
    fn grid_map() -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec((-1000i32..1000).prop_map(|i| i as f32), 2..120)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn bounded_and_symmetric((a, b) in pair()) {
            for f in [spearman, pearson] {
                let r = f(&a, &b);
                prop_assert!((-1.0..=1.0).contains(&r));
                prop_assert!((r - f(&b, &a)).abs() < 1e-12);
            }
        }

        #[test]
        fn self_correlation_is_one(a in grid_map()) {
            prop_assume!(a.iter().any(|&v| v != a[0]));
            prop_assert!((spearman(&a, &a) - 1.0).abs() < 1e-12);
            prop_assert!((pearson(&a, &a) - 1.0).abs() < 1e-12);
        }

        #[test]
        fn spearman_invariant_to_increasing_maps(a in grid_map(), b in grid_map()) {
            let n = a.len().min(b.len());
            let (a, b) = (&a[..n], &b[..n]);
            let r = spearman(a, b);
            let affine: Vec<f32> = a.iter().map(|&v| 3.0 * v + 1.0).collect();
            let exp: Vec<f32> = a.iter().map(|&v| (v / 100.0).exp()).collect();
            prop_assert_eq!(spearman(&affine, b), r);
            prop_assert_eq!(spearman(&exp, b), r);
        }
    }
}
