//! The one number formatter of every output (report renderers, verdict reasons), so every
//! format prints the same digits for the same statistic (a test renders one report in every
//! format and compares them).

/// A statistic: 4 significant decimals, `-` when absent or not finite.
pub fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let s = format!("{v:.4}");
            if s == "-0.0000" {
                "0.0000".into()
            } else {
                s
            }
        }
        _ => "-".into(),
    }
}

/// A difference: like [`num`] with an explicit sign (`+0.0123`, `-0.0040`, `0.0000`).
pub fn signed(v: Option<f64>) -> String {
    let s = num(v);
    match v {
        Some(x) if x.is_finite() && s != "0.0000" && x > 0.0 => format!("+{s}"),
        _ => s,
    }
}

/// A confidence bound (or two): `[0.41, 0.62]`, `≥ 0.41`, `≤ 0.62`, `-` when none.
pub fn bounds(low: Option<f64>, high: Option<f64>) -> String {
    match (low, high) {
        (Some(l), Some(h)) => format!("[{}, {}]", num(Some(l)), num(Some(h))),
        (Some(l), None) => format!("≥ {}", num(Some(l))),
        (None, Some(h)) => format!("≤ {}", num(Some(h))),
        (None, None) => "-".into(),
    }
}

/// A p-value or a level: scientific with 2 decimals (`1.23e-4`), `-` when absent.
pub fn p(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.2e}"),
        _ => "-".into(),
    }
}

/// A confidence as a percentage with at most 3 decimals (`99.583%`, `95%`).
pub fn percent(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let s = format!("{:.3}", 100.0 * v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// A threshold as written in the suite.
pub fn threshold(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::num(Some(0.12345)), "0.1235");
        assert_eq!(super::num(Some(-0.00001)), "0.0000");
        assert_eq!(super::num(None), "-");
        assert_eq!(super::signed(Some(0.01)), "+0.0100");
        assert_eq!(super::signed(Some(-0.01)), "-0.0100");
        assert_eq!(super::signed(Some(1e-7)), "0.0000");
        assert_eq!(super::p(Some(0.000123)), "1.23e-4");
    }
}
