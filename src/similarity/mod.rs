//! Similarity, distance and summary measures for explanation maps.
//!
//! Maps are row-major `f32` slices: a 2-D map is `h*w` long, a multi-channel map is
//! channel-first `[c][h][w]`. Everything is computed in `f64` and returned as `f64`
//! (normalisations return a new `f32` map).
//!
//! Each function names the reference it matches (scipy, scikit-image, numpy, Quantus, PAIR);
//! `fixtures/similarity_golden.py` produces the golden values the tests compare against.
//!
//! Conventions shared by all functions:
//! * Two maps passed together must have the same length. A mismatch is a caller bug: debug
//!   builds panic (`debug_assert`), release builds compare the common prefix.
//! * Any finite input is accepted without panicking. Where a reference is undefined
//!   (constant maps, zero maps, empty maps) the function documents the value it returns
//!   instead of the reference's NaN or exception.
//!
//! One file per job: `rank` (ranking), `correlation`, `topk`, `mass` (centre of mass),
//! `ssim`, `entropy` (entropies and sparseness), `normalize` (per-map normalisations and
//! PAIR visualisation scaling), `distance` (MSE and L2 distances).
mod correlation;
mod distance;
mod entropy;
mod mass;
mod normalize;
mod rank;
mod ssim;
mod topk;

pub use correlation::{pearson, spearman};
pub use distance::{l2_distance, mse, relative_l2};
pub use entropy::{complexity, entropy_bits, gini, histogram_entropy, normalized_entropy};
pub use mass::{center_of_mass, center_of_mass_shift};
pub use normalize::{max_abs, minmax, pair_diverging, pair_gray, second_moment};
pub use ssim::ssim;
pub use topk::{top_k_indices, top_k_intersection, top_k_intersection_tie_aware, top_k_membership};

/// Length of the part two maps have in common. Unequal lengths are a caller bug: debug
/// builds panic here, release builds use the common prefix.
#[inline]
fn paired_len(a: &[f32], b: &[f32]) -> usize {
    debug_assert_eq!(a.len(), b.len(), "similarity: maps of different lengths");
    a.len().min(b.len())
}

/// Test helpers: the golden JSON written by `fixtures/similarity_golden.py`.
#[cfg(test)]
mod golden {
    use serde_json::Value;
    use std::sync::OnceLock;

    const PATH: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/golden/similarity.json"
    );

    /// The parsed golden document (read once per test binary).
    pub fn doc() -> &'static Value {
        static DOC: OnceLock<Value> = OnceLock::new();
        DOC.get_or_init(|| {
            let text =
                std::fs::read_to_string(PATH).unwrap_or_else(|e| panic!("cannot read {PATH}: {e}"));
            serde_json::from_str(&text).expect("golden JSON parses")
        })
    }

    /// The cases of one section.
    pub fn cases(section: &str) -> &'static [Value] {
        doc()[section]
            .as_array()
            .unwrap_or_else(|| panic!("golden section {section} missing"))
    }

    pub fn num(v: &Value) -> f64 {
        v.as_f64().expect("golden number")
    }

    pub fn uint(v: &Value) -> usize {
        v.as_u64().expect("golden integer") as usize
    }

    pub fn f64s(v: &Value) -> Vec<f64> {
        v.as_array()
            .expect("golden array")
            .iter()
            .map(num)
            .collect()
    }

    /// Inputs are float32 values stored as exact float64 literals.
    pub fn f32s(v: &Value) -> Vec<f32> {
        f64s(v).into_iter().map(|x| x as f32).collect()
    }

    /// `|got - want| <= tol * max(1, |want|)` (absolute near 0, relative elsewhere).
    pub fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
        let err = (got - want).abs();
        assert!(
            err <= tol * want.abs().max(1.0),
            "{what}: got {got:.17e}, want {want:.17e} (err {err:.3e}, tol {tol:.0e})"
        );
    }

    /// Element-wise [`assert_close`] on `f32` outputs against float64 references. An `f32`
    /// result cannot be closer than half an ulp (6e-8 relative), so the tolerance is 1.2e-7.
    pub fn assert_close_f32(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert_close(g as f64, w, 1.2e-7, &format!("{what}[{i}]"));
        }
    }
}
