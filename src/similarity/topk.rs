//! Top-k feature agreement (Ghorbani et al. 2019, "Interpretation of neural networks is fragile").
use super::paired_len;
use super::rank::descending;

/// Flat indices of the `min(k, len)` largest values, largest first; ties by ascending flat
/// index. Same as numpy `np.argsort(-a, kind='stable')[:k]`. O(n + k log k): selection,
/// then a sort of the k winners (the order is total, so the result is exact).
pub fn top_k_indices(a: &[f32], k: usize) -> Vec<usize> {
    let k = k.min(a.len());
    if k == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..a.len()).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, |&i, &j| descending(a, i, j));
        idx.truncate(k);
    }
    idx.sort_unstable_by(|&i, &j| descending(a, i, j));
    idx
}

/// `|topk(a) ∩ topk(b)| / k` with `k` clamped to `[1, len]` (Ghorbani et al. 2019 top-k
/// intersection). In [0, 1]; 1 for identical maps. Empty maps -> 1.0 (vacuously identical).
pub fn top_k_intersection(a: &[f32], b: &[f32], k: usize) -> f64 {
    let n = paired_len(a, b);
    if n == 0 {
        return 1.0;
    }
    let k = k.clamp(1, n);
    let mut in_a = vec![false; n];
    for i in top_k_indices(&a[..n], k) {
        in_a[i] = true;
    }
    let common = top_k_indices(&b[..n], k)
        .into_iter()
        .filter(|&i| in_a[i])
        .count();
    common as f64 / k as f64
}

#[cfg(test)]
mod tests {
    use super::super::golden::{assert_close, cases, f32s, num, uint};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_numpy_stable_argsort() {
        for c in cases("topk") {
            let name = c["name"].as_str().unwrap();
            let (a, b, k) = (f32s(&c["a"]), f32s(&c["b"]), uint(&c["k"]));
            let want: Vec<usize> = c["top_a"].as_array().unwrap().iter().map(uint).collect();
            assert_eq!(top_k_indices(&a, k.clamp(1, a.len())), want, "{name}");
            assert_close(
                top_k_intersection(&a, &b, k),
                num(&c["intersection"]),
                1e-12,
                name,
            );
        }
    }

    #[test]
    fn edge_cases() {
        assert!(top_k_indices(&[1.0, 2.0], 0).is_empty());
        assert_eq!(top_k_indices(&[1.0, 2.0], 5), vec![1, 0]);
        assert_eq!(top_k_intersection(&[], &[], 3), 1.0);
        // k = 0 is clamped to 1.
        assert_eq!(top_k_intersection(&[1.0, 0.0], &[0.0, 1.0], 0), 0.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn bounded_and_one_on_identical(
            (a, b) in (1usize..150).prop_flat_map(|n| {
                let v = prop::collection::vec(-5.0f32..5.0, n);
                (v.clone(), v)
            }),
            k in 0usize..200,
        ) {
            let r = top_k_intersection(&a, &b, k);
            prop_assert!((0.0..=1.0).contains(&r));
            prop_assert_eq!(top_k_intersection(&a, &a, k), 1.0);
            // Selection path agrees with a full stable sort.
            let mut full: Vec<usize> = (0..a.len()).collect();
            full.sort_by(|&i, &j| descending(&a, i, j));
            full.truncate(k.min(a.len()));
            prop_assert_eq!(top_k_indices(&a, k), full);
        }
    }
}
