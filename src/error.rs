//! Library error type. Every variant names the offending file or setting and the fix,
//! because users meet these in CI logs without a debugger.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file is missing, unreadable, not TorchScript, frozen, or breaks the contract.
    #[error("model {path}: {msg}\n  fix: {fix}")]
    Model {
        path: PathBuf,
        msg: String,
        fix: String,
    },
    /// An image could not be read or decoded.
    #[error("image {path}: {msg}\n  fix: {fix}")]
    Image {
        path: PathBuf,
        msg: String,
        fix: String,
    },
    /// The data set (folder or manifest) is unusable.
    #[error("data {path}: {msg}\n  fix: {fix}")]
    Data {
        path: PathBuf,
        msg: String,
        fix: String,
    },
    /// Configuration file or flag is invalid.
    #[error("config {origin}: {msg}\n  fix: {fix}")]
    Config {
        origin: String,
        msg: String,
        fix: String,
    },
    /// An attribution method cannot run with these settings on this model.
    #[error("method {method}: {msg}\n  fix: {fix}")]
    Method {
        method: String,
        msg: String,
        fix: String,
    },
    /// Writing an output file failed.
    #[error("output {path}: {msg}")]
    Output { path: PathBuf, msg: String },
    /// Ctrl-C or SIGTERM: the run stopped and wrote nothing.
    #[error("interrupted: stopped before finishing; no report or output was written")]
    Interrupted,
    /// The audit does not apply to this model, method or data (reported as not run, with
    /// the reason; not an error).
    #[error("not applicable: {0}")]
    NotApplicable(String),
    /// libtorch reported an error while running the model (first line only: the rest is a
    /// C++ backtrace).
    #[error("libtorch: {}\n  fix: check that the model accepts the configured input shape for every batch size (a trace may freeze the batch size)", torch_msg(.0))]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn model(path: impl Into<PathBuf>, msg: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            msg: msg.into(),
            fix: fix.into(),
        }
    }
    pub fn image(path: impl Into<PathBuf>, msg: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Image {
            path: path.into(),
            msg: msg.into(),
            fix: fix.into(),
        }
    }
    pub fn data(path: impl Into<PathBuf>, msg: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            msg: msg.into(),
            fix: fix.into(),
        }
    }
    pub fn config(
        origin: impl Into<String>,
        msg: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::Config {
            origin: origin.into(),
            msg: msg.into(),
            fix: fix.into(),
        }
    }
    pub fn method(
        method: impl Into<String>,
        msg: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::Method {
            method: method.into(),
            msg: msg.into(),
            fix: fix.into(),
        }
    }
    pub fn output(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Output {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// First line of a libtorch error: the rest is a C++ backtrace nobody can act on.
pub fn torch_msg(e: &tch::TchError) -> String {
    let s = e.to_string();
    let s = s.trim_start_matches("Internal torch error: ");
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown libtorch error")
        .to_string()
}
