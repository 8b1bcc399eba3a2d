//! The vocabulary of a claim about per-image values, shared by audits (their default
//! direction), suites and configuration (what they declare) and the decision (`gate`): which
//! side of a threshold is good and which test decides.
use serde::{Deserialize, Serialize};

/// Which side of the threshold is good. Two-sample audits: `Higher` means the audited group
/// tends to be larger than the reference group by a rank-biserial effect above the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// PASS when the values lie above the threshold.
    Higher,
    /// PASS when the values lie below the threshold.
    Lower,
}

impl Direction {
    pub fn symbol(self) -> &'static str {
        match self {
            Direction::Higher => ">",
            Direction::Lower => "<",
        }
    }
}

/// How a one-sample audit's values are tested.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum TestChoice {
    /// Exact binomial test of a quantile (the median by default); distribution-free.
    #[default]
    Quantile,
    /// Wilcoxon signed-rank test: a claim about the pseudo-median, assumes symmetry.
    Wilcoxon,
}
