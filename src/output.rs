//! The output formats a run can write. The names live here, low in the crate, so the
//! configuration can validate `formats = [...]` at load; the renderings live in `report`.
use serde::{Deserialize, Serialize};

/// Output formats; every one is a pure rendering of the report model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Table,
    Json,
    Junit,
    Sarif,
    Markdown,
    Github,
    Html,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Table,
        Format::Json,
        Format::Junit,
        Format::Sarif,
        Format::Markdown,
        Format::Github,
        Format::Html,
    ];
}

impl Format {
    /// File written for this format under `--out-dir` (`None`: terminal only).
    pub fn file_name(self) -> Option<&'static str> {
        match self {
            Format::Table | Format::Github => None,
            Format::Json => Some("report.json"),
            Format::Junit => Some("junit.xml"),
            Format::Sarif => Some("report.sarif"),
            Format::Markdown => Some("report.md"),
            Format::Html => Some("report.html"),
        }
    }
}
