//! Ranking helpers: average ranks (for Spearman) and a total descending order (for top-k).
use std::cmp::Ordering;

/// 1-based ranks with ties given the mean of the positions they span, as
/// `scipy.stats.rankdata(method='average')`. Values tie when `==` holds, so `-0.0` ties
/// with `0.0` as in numpy; a NaN (not expected, maps are finite) ties with nothing.
/// O(n log n): one sort of the indices.
pub(crate) fn average_ranks(a: &[f32]) -> Vec<f64> {
    let n = a.len();
    let mut order: Vec<usize> = (0..n).collect();
    // total_cmp keeps -0.0 and 0.0 adjacent (nothing lies between), so `==` groups them.
    order.sort_unstable_by(|&i, &j| a[i].total_cmp(&a[j]));
    let mut ranks = vec![0.0; n];
    let mut start = 0;
    while start < n {
        let v = a[order[start]];
        let mut end = start + 1;
        while end < n && a[order[end]] == v {
            end += 1;
        }
        // Positions start+1 ..= end share their mean rank.
        let r = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = r;
        }
        start = end;
    }
    ranks
}

/// Order of flat indices `i`, `j` by descending value, ties by ascending index: the order of
/// numpy's `np.argsort(-a, kind='stable')`. `-0.0 == 0.0` tie; NaN sorts last (as numpy
/// puts NaN at the end). A strict total order, so unstable sorts and selection are exact.
#[inline]
pub(crate) fn descending(a: &[f32], i: usize, j: usize) -> Ordering {
    let (x, y) = (a[i], a[j]);
    let by_value = match (x.is_nan(), y.is_nan()) {
        (false, false) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (true, true) => Ordering::Equal,
    };
    by_value.then(i.cmp(&j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_ranks_match_rankdata() {
        // scipy.stats.rankdata([3, 1, 4, 1, 5, 9, 2, 6, 5]) -> [4, 1.5, 5, 1.5, 6.5, 9, 3, 8, 6.5]
        let r = average_ranks(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0]);
        assert_eq!(r, vec![4.0, 1.5, 5.0, 1.5, 6.5, 9.0, 3.0, 8.0, 6.5]);
        assert_eq!(average_ranks(&[0.0, -0.0, 0.0]), vec![2.0, 2.0, 2.0]);
        assert!(average_ranks(&[]).is_empty());
    }

    #[test]
    fn descending_breaks_ties_by_index() {
        let a = [1.0, 2.0, 2.0, -0.0, 0.0, f32::NAN];
        let mut idx: Vec<usize> = (0..a.len()).collect();
        idx.sort_by(|&i, &j| descending(&a, i, j));
        assert_eq!(idx, vec![1, 2, 0, 3, 4, 5]);
    }
}
