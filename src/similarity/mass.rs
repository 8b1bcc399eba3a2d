//! Centre of mass of a saliency map (Ghorbani et al. 2019, "centre of mass" dissimilarity).
use super::paired_len;

/// Centre of mass `(Σ I_ij·i / Σ I, Σ I_ij·j / Σ I)` in pixel units `(row, col)` of an
/// `h×w` map, as `scipy.ndimage.center_of_mass`. The reference formula is for non-negative
/// maps; values are taken in absolute value (a no-op for them), so any map gives a point
/// inside the image. A zero map returns the image centre `((h-1)/2, (w-1)/2)`. The result
/// is clamped to `[0, h-1] × [0, w-1]` (this only removes rounding excursions).
/// `a.len() != h*w` is a caller bug (debug_assert); release builds use the common prefix.
pub fn center_of_mass(a: &[f32], h: usize, w: usize) -> (f64, f64) {
    debug_assert_eq!(a.len(), h * w, "center_of_mass: map is not h*w");
    let centre = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let n = a.len().min(h * w);
    let (mut total, mut sr, mut sc) = (0.0f64, 0.0f64, 0.0f64);
    for (row, line) in a[..n].chunks(w.max(1)).enumerate() {
        let mut line_total = 0.0f64;
        for (col, &v) in line.iter().enumerate() {
            let m = (v as f64).abs();
            line_total += m;
            sc += m * col as f64;
        }
        total += line_total;
        sr += line_total * row as f64;
    }
    if total == 0.0 {
        return centre;
    }
    let clamp = |x: f64, len: usize| x.clamp(0.0, (len as f64 - 1.0).max(0.0));
    (clamp(sr / total, h), clamp(sc / total, w))
}

/// Euclidean distance in pixels between the centres of mass of `|a|` and `|b|`
/// (Ghorbani et al. 2019). Unequal lengths: see the module docs.
pub fn center_of_mass_shift(a: &[f32], b: &[f32], h: usize, w: usize) -> f64 {
    let n = paired_len(a, b);
    let (ra, ca) = center_of_mass(&a[..n], h, w);
    let (rb, cb) = center_of_mass(&b[..n], h, w);
    (ra - rb).hypot(ca - cb)
}

#[cfg(test)]
mod tests {
    use super::super::golden::{assert_close, cases, f32s, f64s, num, uint};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_scipy_ndimage() {
        for c in cases("center_of_mass") {
            let name = c["name"].as_str().unwrap();
            let (h, w) = (uint(&c["h"]), uint(&c["w"]));
            let (a, b) = (f32s(&c["a"]), f32s(&c["b"]));
            for (map, key) in [(&a, "com_a"), (&b, "com_b")] {
                let want = f64s(&c[key]);
                let (r, col) = center_of_mass(map, h, w);
                assert_close(r, want[0], 1e-9, name);
                assert_close(col, want[1], 1e-9, name);
            }
            assert_close(
                center_of_mass_shift(&a, &b, h, w),
                num(&c["shift"]),
                1e-9,
                name,
            );
        }
    }

    #[test]
    fn degenerate_maps() {
        assert_eq!(center_of_mass(&[0.0; 6], 2, 3), (0.5, 1.0));
        assert_eq!(center_of_mass(&[0.0, 0.0, 5.0], 1, 3), (0.0, 2.0));
        assert_eq!(center_of_mass(&[], 0, 0), (-0.5, -0.5));
        assert_eq!(center_of_mass_shift(&[1.0, 0.0], &[0.0, 1.0], 2, 1), 1.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn inside_the_image(
            (h, w, a) in (1usize..20, 1usize..20).prop_flat_map(|(h, w)| {
                (Just(h), Just(w), prop::collection::vec(-3.0f32..10.0, h * w))
            })
        ) {
            let (r, c) = center_of_mass(&a, h, w);
            prop_assert!(r >= 0.0 && r <= (h - 1) as f64);
            prop_assert!(c >= 0.0 && c <= (w - 1) as f64);
            prop_assert_eq!(center_of_mass_shift(&a, &a, h, w), 0.0);
        }
    }
}
