//! TOML files (suites, xaudit.toml) with errors that name the file and the line.
use crate::error::{Error, Result};

/// 1-based line of byte offset `byte` in `text`.
pub fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// Parses TOML with errors that name the line.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
    fix: &str,
) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" (line {})", line_of(text, s.start)))
            .unwrap_or_default();
        Error::config(origin, format!("{}{at}", e.message().trim()), fix)
    })
}
