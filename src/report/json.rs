//! `report.json`: the canonical result, pretty-printed.
use super::Report;

pub fn render(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
}
