//! Rendering of maps for people. One module per output kind.
pub mod heatmap;
pub mod panel;
