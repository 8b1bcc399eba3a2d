//! Entropy and sparseness summaries of a single map.
//!
//! Convention for a zero map (the salience distribution `|a|/Σ|a|` is 0/0, scipy gives NaN):
//! it is read as "no information", i.e. uniform. Hence `normalized_entropy = 1`,
//! `complexity = ln n`, `entropy_bits = log2 n`, and `gini = 0`. Empty maps give 0.

/// Salience entropy in nats, `-Σ P ln P` with `P = |a| / Σ|a|` and `0 ln 0 = 0`
/// (`scipy.stats.entropy(|a|)`). Zero map: `ln n` (uniform).
fn salience_entropy_nats(a: &[f32]) -> f64 {
    let total: f64 = a.iter().map(|&v| (v as f64).abs()).sum();
    if total == 0.0 {
        return (a.len().max(1) as f64).ln();
    }
    a.iter()
        .map(|&v| {
            let p = (v as f64).abs() / total;
            if p > 0.0 {
                -p * p.ln()
            } else {
                0.0
            }
        })
        .sum()
}

/// Salience entropy divided by its maximum `ln n`, in [0, 1] (clamped against rounding).
/// Zero map -> 1.0 (uniform: no information); `n <= 1` -> 0.0.
pub fn normalized_entropy(a: &[f32]) -> f64 {
    if a.len() <= 1 {
        return 0.0;
    }
    (salience_entropy_nats(a) / (a.len() as f64).ln()).clamp(0.0, 1.0)
}

/// Shannon entropy in bits of `P = |a| / Σ|a|`, `-Σ P log2 P` (Crum et al. salience entropy;
/// `scipy.stats.entropy(|a|, base=2)`). Zero map -> `log2 n` (uniform); empty -> 0.
pub fn entropy_bits(a: &[f32]) -> f64 {
    salience_entropy_nats(a) / std::f64::consts::LN_2
}

/// Quantus Complexity (Bhatt et al. 2020): `scipy.stats.entropy(|a| / Σ|a|)` in nats.
/// Zero map -> `ln n` (uniform; Quantus gives NaN); empty -> 0.
pub fn complexity(a: &[f32]) -> f64 {
    salience_entropy_nats(a)
}

/// Gini index of `|a|` as in Quantus Sparseness (Chalasani et al. 2020): with `x` sorted
/// ascending, `G = Σ_i (2i - n - 1) x_(i) / (n Σ x)`, i = 1..n. Quantus adds 1e-7 to every
/// value before this; the plain formula is used here. Zero or empty map -> 0. In
/// `[0, 1 - 1/n]`; clamped to [0, 1] against rounding.
pub fn gini(a: &[f32]) -> f64 {
    let n = a.len();
    let mut x: Vec<f64> = a.iter().map(|&v| (v as f64).abs()).collect();
    x.sort_unstable_by(f64::total_cmp);
    let total: f64 = x.iter().sum();
    if n == 0 || total == 0.0 {
        return 0.0;
    }
    let nf = n as f64;
    let weighted: f64 = x
        .iter()
        .enumerate()
        .map(|(i, &v)| (2.0 * (i + 1) as f64 - nf - 1.0) * v)
        .sum();
    (weighted / (nf * total)).clamp(0.0, 1.0)
}

/// Entropy in nats of the bin counts of `np.histogram(a, bins=n_bins)` (`scipy.stats.entropy`
/// of the counts), as eMPRT uses. Bins are numpy's: `n_bins` equal bins over `[min, max]`
/// (widened to `[v-0.5, v+0.5]` for a constant map), edges from `np.linspace`, right-closed
/// last bin, including numpy's one-ulp correction at the edges. `n_bins == 0` or empty -> 0.
pub fn histogram_entropy(a: &[f32], n_bins: usize) -> f64 {
    if a.is_empty() || n_bins == 0 {
        return 0.0;
    }
    let counts = histogram(a, n_bins);
    let total = a.len() as f64;
    counts
        .iter()
        .filter(|&&k| k > 0)
        .map(|&k| {
            let p = k as f64 / total;
            -p * p.ln()
        })
        .sum()
}

/// numpy's uniform-bin histogram (`_histograms_impl.histogram` fast path), in f64.
fn histogram(a: &[f32], n_bins: usize) -> Vec<usize> {
    let (mut lo, mut hi) = a
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v as f64), h.max(v as f64))
        });
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    // np.linspace(lo, hi, n_bins + 1): i*step + lo, last edge exactly hi.
    let step = (hi - lo) / n_bins as f64;
    let mut edges: Vec<f64> = (0..=n_bins).map(|i| i as f64 * step + lo).collect();
    edges[n_bins] = hi;
    let mut counts = vec![0usize; n_bins];
    for &v in a {
        let v = v as f64;
        let f = (v - lo) / (hi - lo) * n_bins as f64;
        let mut i = (f as usize).min(n_bins - 1);
        // The index formula can be one off within an ulp of an edge; fix as numpy does.
        if v < edges[i] && i > 0 {
            i -= 1;
        }
        if v >= edges[i + 1] && i != n_bins - 1 {
            i += 1;
        }
        counts[i] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::super::golden::{assert_close, cases, doc, f32s, num, uint};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_scipy_entropy() {
        for c in cases("entropy") {
            let name = c["name"].as_str().unwrap();
            let a = f32s(&c["a"]);
            assert_close(complexity(&a), num(&c["complexity"]), 1e-9, name);
            let ne = normalized_entropy(&a);
            assert_close(ne, num(&c["normalized_entropy"]).min(1.0), 1e-9, name);
            assert_close(entropy_bits(&a), num(&c["entropy_bits"]), 1e-9, name);
            assert_close(gini(&a), num(&c["gini"]).max(0.0), 1e-9, name);
            for hcase in c["hist"].as_array().unwrap() {
                let nb = uint(&hcase["n_bins"]);
                let what = format!("{name} bins={nb}");
                assert_close(histogram_entropy(&a, nb), num(&hcase["value"]), 1e-9, &what);
            }
        }
        let hc = &doc()["hist_constant"];
        let a = f32s(&hc["a"]);
        assert_close(
            histogram_entropy(&a, uint(&hc["n_bins"])),
            num(&hc["value"]),
            0.0,
            "const",
        );
    }

    #[test]
    fn edge_histogram_counts() {
        // np.histogram(np.arange(11.), bins=10)[0] -> [1]*9 + [2]
        let a: Vec<f32> = (0..11).map(|i| i as f32).collect();
        let mut want = vec![1; 10];
        want[9] = 2;
        assert_eq!(histogram(&a, 10), want);
    }

    #[test]
    fn conventions() {
        let z = [0.0f32; 8];
        assert_eq!(normalized_entropy(&z), 1.0);
        assert!((complexity(&z) - 8f64.ln()).abs() < 1e-15);
        assert!((entropy_bits(&z) - 3.0).abs() < 1e-15);
        assert_eq!(gini(&z), 0.0);
        assert_eq!(normalized_entropy(&[5.0]), 0.0);
        for f in [normalized_entropy, entropy_bits, complexity, gini] {
            assert_eq!(f(&[]), 0.0);
        }
        assert_eq!(histogram_entropy(&[1.0, 2.0], 0), 0.0);
        assert_eq!(histogram_entropy(&[], 4), 0.0);
        // One-hot: gini = 1 - 1/n.
        let mut one_hot = [0.0f32; 4];
        one_hot[2] = -3.0;
        assert!((gini(&one_hot) - 0.75).abs() < 1e-15);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn bounded(a in prop::collection::vec(-10.0f32..10.0, 1..300), v in 0.01f32..100.0) {
            let ne = normalized_entropy(&a);
            prop_assert!((0.0..=1.0).contains(&ne));
            let g = gini(&a);
            prop_assert!((0.0..=1.0).contains(&g));
            let uniform = vec![v; a.len().max(2)];
            prop_assert!((normalized_entropy(&uniform) - 1.0).abs() < 1e-12);
            prop_assert!(gini(&uniform) < 1e-12);
            prop_assert!(histogram_entropy(&a, 10) <= 10f64.ln() + 1e-12);
        }
    }
}
