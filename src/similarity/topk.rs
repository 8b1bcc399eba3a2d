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

/// Probability that each pixel is in the top-k of `a` when ties at the k-th largest value
/// are broken uniformly at random: 1 above that value, r/t for the t pixels equal to it that
/// share the r remaining places, 0 below. Sums to k (clamped to `[1, len]`).
pub fn top_k_membership(a: &[f32], k: usize) -> Vec<f64> {
    let n = a.len();
    if n == 0 {
        return Vec::new();
    }
    let k = k.clamp(1, n);
    let mut v: Vec<f32> = a.to_vec();
    v.select_nth_unstable_by(k - 1, |x, y| y.total_cmp(x));
    let kth = v[k - 1];
    let above = a.iter().filter(|&&x| x > kth).count();
    let tied = a.iter().filter(|&&x| x == kth).count().max(1);
    let share = (k - above) as f64 / tied as f64;
    a.iter()
        .map(|&x| {
            if x > kth {
                1.0
            } else if x == kth {
                share
            } else {
                0.0
            }
        })
        .collect()
}

/// Tie-aware top-k intersection: the expected `|topk(a) ∩ topk(b)| / k` when ties at the
/// k-th value of each map are broken uniformly at random and independently,
/// `Σ_i P(i ∈ topk(a)) P(i ∈ topk(b)) / k`. Without ties at the k-th value it equals
/// [`top_k_intersection`]. Breaking ties by index instead (numpy's stable argsort) makes two
/// maps with the same plateau (ReLU zeros, upsampled CAM cells) agree on whichever pixels
/// come first, inflating the intersection.
pub fn top_k_intersection_tie_aware(a: &[f32], b: &[f32], k: usize) -> f64 {
    let n = paired_len(a, b);
    if n == 0 {
        return 1.0;
    }
    let k = k.clamp(1, n);
    let ma = top_k_membership(&a[..n], k);
    let mb = top_k_membership(&b[..n], k);
    let s: f64 = ma.iter().zip(&mb).map(|(x, y)| x * y).sum();
    (s / k as f64).clamp(0.0, 1.0)
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

    #[test]
    fn ties_do_not_inflate_the_intersection() {
        // Two maps that are flat (a ReLU plateau) except for different peaks: index order
        // would call their top-4 identical; the expectation under random tie-breaking is low.
        let mut a = vec![0f32; 100];
        let mut b = vec![0f32; 100];
        a[50] = 1.0;
        b[70] = 1.0;
        assert_eq!(top_k_intersection(&a, &b, 4), 0.75);
        let t = top_k_intersection_tie_aware(&a, &b, 4);
        assert!(t < 0.05, "{t}");
        // Membership sums to k.
        let m = top_k_membership(&a, 4);
        assert!((m.iter().sum::<f64>() - 4.0).abs() < 1e-12);
        assert_eq!(top_k_intersection_tie_aware(&a, &a, 1), 1.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Without ties the tie-aware value is the plain intersection; it is always in [0, 1].
        #[test]
        fn tie_aware_matches_plain_without_ties(n in 2usize..80, k in 1usize..90, seed in any::<u64>()) {
            let perm = |s: u64| -> Vec<f32> {
                let mut v: Vec<f32> = (0..n).map(|i| i as f32).collect();
                let mut x = s | 1;
                for i in (1..n).rev() {
                    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                    v.swap(i, (x % (i as u64 + 1)) as usize);
                }
                v
            };
            let (a, b) = (perm(seed), perm(seed.rotate_left(7) ^ 0x9e37));
            let t = top_k_intersection_tie_aware(&a, &b, k);
            prop_assert!((t - top_k_intersection(&a, &b, k)).abs() < 1e-12);
            let flat = vec![0f32; n];
            let u = top_k_intersection_tie_aware(&a, &flat, k);
            prop_assert!((0.0..=1.0).contains(&u));
        }

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
