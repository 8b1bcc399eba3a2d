//! Average ranks and tie bookkeeping, as in `scipy.stats.rankdata(x, method="average")`.

use std::cmp::Ordering;

/// Stable sort order of `x` (ascending; NaN, which is not allowed, sorts last).
fn order(x: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| {
        x[a].partial_cmp(&x[b])
            .unwrap_or_else(|| nan_last(x[a], x[b]))
    });
    idx
}

fn nan_last(a: f64, b: f64) -> Ordering {
    a.is_nan().cmp(&b.is_nan())
}

/// 1-based ranks; tied values get the average of the ranks they span
/// (= `scipy.stats.rankdata(x, method="average")`). Ranks sum to n(n+1)/2.
pub fn rank_average(x: &[f64]) -> Vec<f64> {
    let idx = order(x);
    let mut ranks = vec![0.0; x.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && x[idx[end]] == x[idx[start]] {
            end += 1;
        }
        // positions start..end hold ranks start+1..=end
        let avg = (start + 1 + end) as f64 / 2.0;
        for &i in &idx[start..end] {
            ranks[i] = avg;
        }
        start = end;
    }
    ranks
}

/// Sizes of the groups of equal values (singletons included).
pub(crate) fn tie_groups(x: &[f64]) -> Vec<usize> {
    let idx = order(x);
    let mut sizes = Vec::new();
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && x[idx[end]] == x[idx[start]] {
            end += 1;
        }
        sizes.push(end - start);
        start = end;
    }
    sizes
}

/// Tie term sum(t^3 - t) over tie groups, used by the normal approximations.
pub(crate) fn tie_term(groups: &[usize]) -> f64 {
    groups
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum()
}
