//! xaudit: audits how robust the saliency explanations of a TorchScript image classifier are.
//!
//! Library layout: `model` loads and checks a classifier, `data` streams images,
//! `attribution` holds one file per explanation method, `explain` runs a method over a
//! data set, `render` turns maps into pictures.
pub mod attribution;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod explain;
pub mod model;
pub mod npy;
pub mod render;
pub mod rng;

pub use error::{Error, Result};
