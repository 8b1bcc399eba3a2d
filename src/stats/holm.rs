//! Holm-Bonferroni step-down adjustment (same as statsmodels `multipletests(method="holm")`).

/// Adjusted p-values in input order: sorting p ascending, p~_(i) = max_{j<=i} min(1, (m-j+1) p_(j)).
/// NaN (not allowed) is treated as 1, which is conservative.
pub fn holm(p: &[f64]) -> Vec<f64> {
    debug_assert!(p.iter().all(|v| !v.is_nan()), "holm: NaN p-value");
    let m = p.len();
    let clean: Vec<f64> = p
        .iter()
        .map(|v| if v.is_nan() { 1.0 } else { *v })
        .collect();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| clean[a].total_cmp(&clean[b]));
    let mut adj = vec![0.0; m];
    let mut running = 0.0_f64;
    for (j, &i) in idx.iter().enumerate() {
        running = running.max(((m - j) as f64 * clean[i]).min(1.0));
        adj[i] = running;
    }
    adj
}
