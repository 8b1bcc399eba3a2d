//! "Did you mean ...?" for unknown names in suites, configs and flags.

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `key` when it is plausibly a typo (distance <= a third of it).
pub fn closest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&key, c), *c))
        .filter(|(d, c)| *d <= c.len().max(3) / 3 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_near_names_only() {
        let c = ["attack-top-k", "equivariance", "random-logit"];
        assert_eq!(super::closest("atack-top-k", &c), Some("attack-top-k"));
        assert_eq!(super::closest("equivarianse", &c), Some("equivariance"));
        assert_eq!(super::closest("zzz", &c), None);
    }
}
