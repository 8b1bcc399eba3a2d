//! xaudit: audits how robust the saliency explanations of a TorchScript image classifier are.
//!
//! Library layout: `model` loads and checks a classifier, `data` streams images,
//! `attribution` holds one file per explanation method, `explain` runs a method over a
//! data set, `render` turns maps into pictures. `audit` holds one file per audit (measuring
//! only), `suite` loads the suites, `gate` and `stats` decide verdicts, `check` runs a suite,
//! `report` holds the canonical result and its renderings.
pub mod alloc;
pub mod attribution;
pub mod audit;
pub mod baseline;
pub mod calibrate;
pub mod check;
pub mod claim;
pub mod clip;
pub mod compare;
pub mod config;
pub mod data;
pub mod device;
pub mod embedding;
pub mod error;
pub mod explain;
pub mod fmt;
pub mod gate;
pub mod interrupt;
pub mod model;
pub mod npy;
pub mod output;
pub mod perturb;
pub mod render;
pub mod report;
pub mod rng;
pub mod shard;
pub mod similarity;
pub mod stats;
pub mod suggest;
pub mod suite;
pub mod throughput;
pub mod tomlfile;
pub mod transform;

pub use error::{Error, Result};
