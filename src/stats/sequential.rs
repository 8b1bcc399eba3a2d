//! Anytime-valid quantile test: the sequential counterpart of [`super::quantile_test`], for
//! verdicts that may stop as soon as they are decided (optional stopping).
//!
//! Claims, as in the fixed-n test: PASS = "P(X on the good side of tau) > q", FAIL =
//! "P(X on the bad side of tau) > 1 - q"; values equal to tau count on neither side.
//!
//! Each claim has a test martingale over the indicator "this observation is on the claimed
//! side": M_n = the likelihood ratio of the counts under success rate p against rate r0
//! (r0 = q for PASS, 1 - q for FAIL), mixed over p uniform on [r0, 1]:
//!
//!   M_n = (1 / (1 - r0)) * ∫_{r0}^1 (p / r0)^S ((1 - p) / (1 - r0))^(n - S) dp,
//!
//! S = observations on the claimed side among n. Under the null (true rate <= r0; ties only
//! lower it) every factor has expectation <= 1, so M is a non-negative supermartingale with
//! M_0 = 1, and Ville's inequality gives P(sup_n M_n >= 1/a) <= a. The p-value
//! min(1, 1 / max_{looks} M) is therefore valid at any stopping time, however the looks and
//! the stop were chosen (Howard, Ramdas, McAuliffe & Sekhon 2021, "Time-uniform, nonparametric,
//! nonasymptotic confidence sequences"; Ramdas et al. 2023, "Game-theoretic statistics and
//! safe anytime-valid inference"). The price against the fixed-n exact test is a larger n at
//! a fixed effect; the gain is stopping early when the effect is clear.
//!
//! The integral is a regularised incomplete beta: ∫_{r0}^1 p^S (1-p)^(n-S) dp =
//! B(S+1, n-S+1) · I_{1-r0}(n-S+1, S+1), evaluated in logs.
use super::Good;
use statrs::function::beta::{beta_reg, ln_beta};

/// ln M_n for `s` observations on the claimed side among `n`, null rate `r0` in (0, 1).
pub fn ln_mixture_martingale(s: u64, n: u64, r0: f64) -> f64 {
    if !(r0 > 0.0 && r0 < 1.0) || s > n {
        return f64::NEG_INFINITY;
    }
    let (s, f) = (s as f64, (n - s) as f64);
    let tail = beta_reg(f + 1.0, s + 1.0, 1.0 - r0);
    if tail <= 0.0 {
        return f64::NEG_INFINITY;
    }
    ln_beta(s + 1.0, f + 1.0) + tail.ln() - (1.0 - r0).ln() - s * r0.ln() - f * (1.0 - r0).ln()
}

/// A running sequential quantile test: `push` observations, `look` when a decision may be
/// taken (e.g. after each batch), read the anytime-valid p-values.
#[derive(Debug, Clone)]
pub struct SequentialQuantile {
    pub tau: f64,
    pub q: f64,
    pub good: Good,
    /// Observations pushed (NaN ignored), and those strictly on each side.
    pub n: u64,
    pub n_good: u64,
    pub n_bad: u64,
    /// Largest ln M over the looks so far, per claim.
    ln_max_good: f64,
    ln_max_bad: f64,
}

impl SequentialQuantile {
    pub fn new(tau: f64, q: f64, good: Good) -> Self {
        SequentialQuantile {
            tau,
            q,
            good,
            n: 0,
            n_good: 0,
            n_bad: 0,
            ln_max_good: 0.0,
            ln_max_bad: 0.0,
        }
    }

    pub fn push(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.n += 1;
        let (good, bad) = match self.good {
            Good::Higher => (x > self.tau, x < self.tau),
            Good::Lower => (x < self.tau, x > self.tau),
        };
        self.n_good += u64::from(good);
        self.n_bad += u64::from(bad);
    }

    /// Takes a look: the martingales at the current counts enter the running maxima.
    pub fn look(&mut self) {
        if !(self.q > 0.0 && self.q < 1.0) {
            return;
        }
        self.ln_max_good = self
            .ln_max_good
            .max(ln_mixture_martingale(self.n_good, self.n, self.q));
        self.ln_max_bad =
            self.ln_max_bad
                .max(ln_mixture_martingale(self.n_bad, self.n, 1.0 - self.q));
    }

    /// Anytime-valid p-value of the PASS claim, min(1, 1 / max M) over the looks.
    pub fn p_good(&self) -> f64 {
        (-self.ln_max_good).exp().min(1.0)
    }

    /// Anytime-valid p-value of the FAIL claim.
    pub fn p_bad(&self) -> f64 {
        (-self.ln_max_bad).exp().min(1.0)
    }
}

/// The test of a whole sequential run: `x` holds (arrival position, value) in arrival order,
/// and the run looked after every position count in `looks` (a look at `e` sees the values
/// at positions below `e`). Looks past the last value add nothing.
pub fn replay(
    x: &[(usize, f64)],
    looks: &[usize],
    tau: f64,
    q: f64,
    good: Good,
) -> SequentialQuantile {
    let mut t = SequentialQuantile::new(tau, q, good);
    let mut it = x.iter().peekable();
    for &e in looks {
        while let Some(&&(pos, v)) = it.peek() {
            if pos >= e {
                break;
            }
            t.push(v);
            it.next();
        }
        t.look();
        if it.peek().is_none() {
            break;
        }
    }
    t
}

/// The confidence-sequence bound of a sequential run (same arguments as [`replay`]): the
/// value beyond which the claim (PASS when `pass`, else FAIL) is shown at level `a`, so that,
/// as for the fixed-n bound, the claim holds at a threshold tau iff the bound lies strictly on
/// the claimed side of tau. `None` when the claim is shown at no threshold.
///
/// The claim "P(X < t) > r0" (the quantile lies below t) is shown at t iff the martingale
/// of the counts #{x < t} reached 1/a at some look; the counts, and so the p-value, are
/// monotone in t, so the bound is found by bisection over the sorted values.
pub fn anytime_bound(
    x: &[(usize, f64)],
    looks: &[usize],
    q: f64,
    good: Good,
    pass: bool,
    a: f64,
) -> Option<f64> {
    if !(q > 0.0 && q < 1.0 && a > 0.0 && a < 1.0) {
        return None;
    }
    let r0 = if pass { q } else { 1.0 - q };
    // PASS of lower-is-better and FAIL of higher-is-better claim the values lie below.
    let below = (good == Good::Lower) == pass;
    let mut sorted: Vec<f64> = x.iter().map(|p| p.1).filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    // Shown when the claimed side is "at or below v" (or "at or above v").
    let shown = |v: f64| {
        let mut ln_max = 0.0f64;
        let (mut n, mut s) = (0u64, 0u64);
        let mut it = x.iter().filter(|p| !p.1.is_nan()).peekable();
        for &e in looks {
            while let Some(&&(pos, y)) = it.peek() {
                if pos >= e {
                    break;
                }
                n += 1;
                s += u64::from(if below { y <= v } else { y >= v });
                it.next();
            }
            ln_max = ln_max.max(ln_mixture_martingale(s, n, r0));
            if it.peek().is_none() {
                break;
            }
        }
        (-ln_max).exp() <= a
    };
    if below {
        // Smallest v that is shown (shown is monotone non-decreasing in v).
        let k = sorted.partition_point(|&v| !shown(v));
        sorted.get(k).copied()
    } else {
        // Largest v that is shown (monotone non-increasing in v).
        let k = sorted.partition_point(|&v| shown(v));
        k.checked_sub(1).map(|k| sorted[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Exp, Normal};

    /// The martingale against a direct numerical integral (midpoint rule, fine grid).
    #[test]
    fn the_mixture_martingale_matches_its_integral() {
        for &(s, n, r0) in &[(0u64, 0u64, 0.5), (7, 10, 0.5), (3, 20, 0.3), (40, 50, 0.8)] {
            let k = 200_000;
            let h = (1.0 - r0) / k as f64;
            let direct: f64 = (0..k)
                .map(|i| {
                    let p = r0 + (i as f64 + 0.5) * h;
                    (p / r0).powf(s as f64) * ((1.0 - p) / (1.0 - r0)).powf((n - s) as f64)
                })
                .sum::<f64>()
                * h
                / (1.0 - r0);
            let ours = ln_mixture_martingale(s, n, r0).exp();
            assert!(
                (ours - direct).abs() <= 1e-6 * direct.max(1.0),
                "s={s} n={n} r0={r0}: {ours} vs {direct}"
            );
        }
        // No observation: M_0 = 1.
        assert!(ln_mixture_martingale(0, 0, 0.5).abs() < 1e-12);
    }

    /// Optional stopping with a look after every 5 observations, up to 300: under nulls
    /// exactly at the threshold (median = tau; skewed, discrete with ties, symmetric) each
    /// claim is wrongly accepted at most alpha of the time (within 3 standard errors), and a
    /// run that stops at the first p <= alpha/2 of either claim is wrong at most alpha.
    #[test]
    fn optional_stopping_holds_alpha_at_the_threshold() {
        let alpha = 0.05;
        let trials = 1000;
        let se = (alpha * (1.0 - alpha) / trials as f64).sqrt();
        type Draw = Box<dyn Fn(&mut rand::rngs::StdRng) -> f64>;
        let nulls: Vec<(&str, Draw)> = vec![
            (
                "symmetric",
                Box::new(|r| Normal::new(0.0, 1.0).unwrap().sample(r)),
            ),
            (
                "skewed",
                Box::new(|r| Exp::new(1.0).unwrap().sample(r) - std::f64::consts::LN_2),
            ),
            (
                "discrete",
                Box::new(|r| match r.random_range(0..10) {
                    0..=3 => -1.0,
                    4..=5 => 0.0,
                    _ => 1.0,
                }),
            ),
        ];
        for (name, draw) in &nulls {
            let mut rng = rand::rngs::StdRng::seed_from_u64(20261204);
            let (mut wrong_pass, mut wrong_fail, mut wrong_any) = (0, 0, 0);
            for _ in 0..trials {
                let mut t = SequentialQuantile::new(0.0, 0.5, Good::Higher);
                let (mut pass, mut fail, mut any) = (false, false, false);
                for i in 1..=300 {
                    t.push(draw(&mut rng));
                    if i % 5 == 0 {
                        t.look();
                        pass |= t.p_good() <= alpha;
                        fail |= t.p_bad() <= alpha;
                        if t.p_good() <= alpha / 2.0 || t.p_bad() <= alpha / 2.0 {
                            any = true;
                            break;
                        }
                    }
                }
                wrong_pass += usize::from(pass);
                wrong_fail += usize::from(fail);
                wrong_any += usize::from(any);
            }
            let rate = |k: usize| k as f64 / trials as f64;
            eprintln!(
                "{name}: wrong PASS {:.3}, wrong FAIL {:.3}, wrong verdict {:.3} (alpha {alpha})",
                rate(wrong_pass),
                rate(wrong_fail),
                rate(wrong_any)
            );
            for (claim, k) in [
                ("PASS", wrong_pass),
                ("FAIL", wrong_fail),
                ("any", wrong_any),
            ] {
                assert!(
                    rate(k) <= alpha + 3.0 * se,
                    "{name}: wrong {claim} rate {} > {alpha} + 3 SE",
                    rate(k)
                );
            }
        }
    }

    /// A clear effect (median 0.8 standard deviations above tau) is decided with a fraction of
    /// the 300-image cap, and never the wrong way.
    #[test]
    fn a_clear_effect_stops_early() {
        let alpha = 0.05;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let normal = Normal::new(0.8, 1.0).unwrap();
        let mut used = Vec::new();
        for _ in 0..200 {
            let mut t = SequentialQuantile::new(0.0, 0.5, Good::Higher);
            let mut stop = 300;
            for i in 1..=300 {
                t.push(normal.sample(&mut rng));
                if i % 5 == 0 {
                    t.look();
                    assert!(t.p_bad() > alpha, "decided the wrong way at {i}");
                    if t.p_good() <= alpha {
                        stop = i;
                        break;
                    }
                }
            }
            used.push(stop as f64);
        }
        let mean = used.iter().sum::<f64>() / used.len() as f64;
        eprintln!("clear effect: mean images to a PASS {mean:.1} of a 300-image cap");
        assert!(mean < 0.25 * 300.0, "mean images to a verdict {mean}");
        assert!(used.iter().all(|u| *u < 300.0), "some run never decided");
    }

    /// The bound's duality with the p-values: the claim holds at tau iff the bound lies
    /// strictly on the claimed side of tau, at every tau between and around the values.
    #[test]
    fn the_anytime_bound_is_dual_to_the_p_values() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let normal = Normal::<f64>::new(0.6, 1.0).unwrap();
        let x: Vec<(usize, f64)> = (0..120)
            .map(|i| (i, (normal.sample(&mut rng) * 4.0).round() / 4.0))
            .collect();
        let looks: Vec<usize> = vec![10, 15, 23, 35, 53, 80, 120];
        let a = 0.01;
        for good in [Good::Higher, Good::Lower] {
            for pass in [true, false] {
                let b = anytime_bound(&x, &looks, 0.5, good, pass, a);
                for k in -20..20 {
                    let tau = k as f64 / 8.0;
                    let t = replay(&x, &looks, tau, 0.5, good);
                    let p = if pass { t.p_good() } else { t.p_bad() };
                    let below = (good == Good::Lower) == pass;
                    let holds = b.is_some_and(|b| if below { b < tau } else { b > tau });
                    assert_eq!(
                        p <= a,
                        holds,
                        "{good:?} pass={pass} tau={tau} p={p} b={b:?}"
                    );
                }
            }
        }
    }

    /// `replay` equals pushing and looking by hand.
    #[test]
    fn replay_follows_the_looks() {
        let x: Vec<(usize, f64)> = (0..30)
            .map(|i| (i, if i % 4 == 0 { -1.0 } else { 1.0 }))
            .collect();
        let mut t = SequentialQuantile::new(0.0, 0.5, Good::Higher);
        for (k, (_, v)) in x.iter().enumerate() {
            t.push(*v);
            if [9, 19, 29].contains(&k) {
                t.look();
            }
        }
        let r = replay(&x, &[10, 20, 40], 0.0, 0.5, Good::Higher);
        assert_eq!(r.p_good(), t.p_good());
        assert_eq!(r.p_bad(), t.p_bad());
    }
}
