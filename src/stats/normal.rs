//! Standard normal CDF, survival function and quantile (statrs), shared by the approximations.

use statrs::distribution::{ContinuousCDF, Normal};

/// P(Z <= z).
pub(crate) fn cdf(z: f64) -> f64 {
    Normal::standard().cdf(z)
}

/// P(Z > z), computed directly so small upper tails keep their precision.
pub(crate) fn sf(z: f64) -> f64 {
    Normal::standard().sf(z)
}

/// Quantile; NaN outside [0, 1] instead of statrs' panic.
pub(crate) fn ppf(p: f64) -> f64 {
    if (0.0..=1.0).contains(&p) {
        Normal::standard().inverse_cdf(p)
    } else {
        f64::NAN
    }
}
