//! Changepoints in a count series (one template's lines per minute): Bayesian online changepoint
//! detection (Adams & MacKay, 2007) with a Poisson likelihood and a Gamma prior on the rate.
//!
//! After each minute it holds a posterior over the *run length*, the minutes since the rate last
//! changed. The evidence it reports is how unlikely it is that the rate has stayed the same over
//! the last [`RECENT_MIN`] minutes: `−log10 P(run length > RECENT_MIN)`, the same tail-probability
//! scale every scorer uses. It sees drops as well as rises: a template that stops (a health check
//! that no longer logs, a consumer that went quiet) is a change too.
//!
//! Run lengths beyond [`MAX_RUN`] are merged into the last slot, so a series costs a fixed
//! `MAX_RUN` slots however long it runs: "changed in the last few minutes" needs only the
//! first slots to be exact.

use crate::detect::{is_whole, ln_factorial};

/// Longest run length tracked separately; longer runs share the last slot. It must leave room
/// past [`RECENT_MIN`] for the runs that began a few minutes before a change, or the shared slot
/// mixes the old regime with the new one (at 8 slots a jump's "before" rate read as the new one).
const MAX_RUN: usize = 12;
/// Prior probability that the rate changes in any given minute (one change in about 8 hours).
const HAZARD: f64 = 1.0 / 480.0;
/// "Changed recently" means within this many minutes. Wider than the few minutes a clear change
/// takes to show, because the runs that began a minute or two before the change still hold most
/// of the old regime's probability until then.
pub const RECENT_MIN: usize = 5;
/// Gamma prior on a new regime's rate: shape and rate (mean 2 lines a minute, broad).
const PRIOR_SHAPE: f64 = 1.0;
// `Bocpd::ln_fact_sums` relies on it.
const _: () = assert!(PRIOR_SHAPE == 1.0);
const PRIOR_RATE: f64 = 0.5;

/// Run-length posterior and per-run sufficient statistics.
#[derive(Debug, Clone)]
pub struct Bocpd {
    /// P(run length = r | data), r = 0..len, normalised after every minute. Kept as plain
    /// probabilities (not logs): the hazard keeps every slot far from underflow, and it saves a
    /// logarithm per slot on a path that runs for every busy template every minute.
    probs: Vec<f64>,
    /// Sum of counts in the run of length r, and how many minutes that sum covers (r itself,
    /// except in the shared last slot, whose runs keep growing).
    sums: Vec<f64>,
    spans: Vec<f64>,
    /// ln(sums[i]!) when the sum is whole: with the prior's shape of 1, the predictive's
    /// ln Γ(shape + x) − ln Γ(shape) is ln((sum + x)!) − ln(sum!), and the first term becomes the
    /// grown run's second, so each slot looks up one factorial a minute instead of two.
    ln_fact_sums: Vec<f64>,
    minutes: u64,
}

/// What the detector says after a minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// −log10 of the probability that the rate did not change in the last [`RECENT_MIN`] minutes.
    pub surprise: f64,
    /// Mean rate of the regime before (the most probable long run) and in the recent one.
    pub before: f64,
    pub after: f64,
}

impl Default for Bocpd {
    fn default() -> Self {
        Self::new()
    }
}

impl Bocpd {
    pub fn new() -> Self {
        Bocpd {
            probs: Vec::with_capacity(MAX_RUN),
            sums: Vec::with_capacity(MAX_RUN),
            spans: Vec::with_capacity(MAX_RUN),
            ln_fact_sums: Vec::with_capacity(MAX_RUN),
            minutes: 0,
        }
    }

    /// Adds one minute's count. Slot `i` holds the runs whose span is `spans[i]` minutes, this
    /// one included: a new run starts with this minute's count under the prior, and every older
    /// run grows by it. Updated in place, longest run first, so no slot is overwritten before it
    /// is read and nothing is allocated once the series has [`MAX_RUN`] slots.
    pub fn observe(&mut self, count: f64) -> Change {
        let x = count.max(0.0);
        let whole = is_whole(x);
        let ln_x_fact = if whole {
            ln_factorial(x)
        } else {
            ln_gamma(x + 1.0)
        };
        let n = self.probs.len();
        if n < MAX_RUN {
            self.probs.push(0.0);
            self.sums.push(0.0);
            self.spans.push(0.0);
            self.ln_fact_sums.push(0.0);
        }
        let last = self.probs.len() - 1;
        let mut longest_best = -1.0;
        for i in (0..n).rev() {
            let shape = PRIOR_SHAPE + self.sums[i];
            let rate = PRIOR_RATE + self.spans[i];
            let grown = self.sums[i] + x;
            let ln_fact_grown = if whole && is_whole(grown) {
                ln_factorial(grown)
            } else {
                f64::NAN
            };
            let rising = if ln_fact_grown.is_nan() || self.ln_fact_sums[i].is_nan() {
                ln_rising(shape, x)
            } else {
                ln_fact_grown - self.ln_fact_sums[i]
            };
            let stay = self.probs[i]
                * ln_neg_binomial(rising, x, shape, rate, ln_x_fact).exp()
                * (1.0 - HAZARD);
            let slot = (i + 1).min(last);
            let moves = if i + 1 < last || (i + 1 == last && n < MAX_RUN) {
                self.probs[slot] = stay;
                true
            } else {
                // The longest runs share the last slot; it keeps the statistics of the more
                // probable one.
                let merged = if i == last { 0.0 } else { self.probs[slot] };
                self.probs[slot] = merged + stay;
                let better = stay > longest_best;
                if better {
                    longest_best = stay;
                }
                better
            };
            if moves {
                self.sums[slot] = grown;
                self.spans[slot] = self.spans[i] + 1.0;
                self.ln_fact_sums[slot] = ln_fact_grown;
            }
        }
        let fresh = if n == 0 { 1.0 } else { HAZARD };
        let rising = ln_rising(PRIOR_SHAPE, x);
        self.probs[0] =
            fresh * ln_neg_binomial(rising, x, PRIOR_SHAPE, PRIOR_RATE, ln_x_fact).exp();
        self.sums[0] = x;
        self.spans[0] = 1.0;
        self.ln_fact_sums[0] = if whole { ln_x_fact } else { f64::NAN };
        let total: f64 = self.probs.iter().sum();
        if total > 0.0 && total.is_finite() {
            for v in &mut self.probs {
                *v /= total;
            }
        } else {
            // Every run found the count impossible (far outside any rate seen): start over
            // rather than divide by zero.
            self.probs.iter_mut().for_each(|v| *v = 0.0);
            self.probs[0] = 1.0;
        }
        self.minutes += 1;
        self.summary()
    }

    fn summary(&self) -> Change {
        let recent = |i: usize| self.spans[i] <= RECENT_MIN as f64;
        let old: f64 = (0..self.probs.len())
            .filter(|&i| !recent(i))
            .map(|i| self.probs[i])
            .sum();
        let surprise = if self.minutes <= (RECENT_MIN as u64 + 1) * 4 {
            // Too little history for "before" to mean anything.
            0.0
        } else {
            (-old.max(1e-300).log10()).max(0.0)
        };
        let mean = |i: usize| (PRIOR_SHAPE + self.sums[i]) / (PRIOR_RATE + self.spans[i]);
        // Before: the longest run, the regime the series had settled in.
        let before = if self.probs.is_empty() {
            0.0
        } else {
            mean(self.probs.len() - 1)
        };
        let after = (0..self.probs.len())
            .filter(|&i| recent(i))
            .max_by(|&a, &b| self.probs[a].total_cmp(&self.probs[b]))
            .map_or(0.0, mean);
        Change {
            surprise,
            before,
            after,
        }
    }
}

/// ln of the negative binomial predictive of a Poisson count under a Gamma(shape, rate) posterior;
/// `rising` is ln Γ(shape + x) − ln Γ(shape).
fn ln_neg_binomial(rising: f64, x: f64, shape: f64, rate: f64, ln_x_fact: f64) -> f64 {
    let (ln_rate, ln_rate_1) = (ln_of_rate(rate), ln_of_rate(rate + 1.0));
    rising - ln_x_fact + shape * (ln_rate - ln_rate_1) - x * ln_rate_1
}

/// ln Γ(a + x) − ln Γ(a). Counts are whole and so is the posterior shape (a whole prior plus
/// summed counts), which makes it a difference of two tabled factorials almost always.
fn ln_rising(a: f64, x: f64) -> f64 {
    if a >= 1.0 && is_whole(a) && is_whole(x) {
        ln_factorial(a + x - 1.0) - ln_factorial(a - 1.0)
    } else if is_whole(x) && x <= 16.0 {
        let mut prod = 1.0;
        let mut i = 0.0;
        while i < x {
            prod *= a + i;
            i += 1.0;
        }
        prod.ln()
    } else {
        ln_gamma(a + x) - ln_gamma(a)
    }
}

/// Posterior rates are the prior rate plus whole minutes.
const TABLED_RATES: usize = 512;

/// ln(rate), from a table for the rates a posterior takes in its first [`TABLED_RATES`] minutes.
fn ln_of_rate(rate: f64) -> f64 {
    static TABLE: std::sync::OnceLock<[f64; TABLED_RATES]> = std::sync::OnceLock::new();
    let minutes = rate - PRIOR_RATE;
    if minutes < TABLED_RATES as f64 && is_whole(minutes) {
        let table = TABLE.get_or_init(|| std::array::from_fn(|k| (PRIOR_RATE + k as f64).ln()));
        table[minutes as usize]
    } else {
        rate.ln()
    }
}

/// Lanczos approximation (g = 7, 9 terms), accurate to about 1e-13 for x > 0.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut acc = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        acc += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + acc.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(6.0) - 120f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
        assert!((ln_rising(2.5, 3.0) - (ln_gamma(5.5) - ln_gamma(2.5))).abs() < 1e-10);
        // The tabled paths agree with the general one, inside and beyond the tables.
        for (a, x) in [
            (1.0, 0.0),
            (3.0, 7.0),
            (40.0, 25.0),
            (900.0, 300.0),
            (5000.0, 60.0),
        ] {
            let general = ln_gamma(a + x) - ln_gamma(a);
            assert!((ln_rising(a, x) - general).abs() < 1e-6, "{a} {x}");
        }
        for rate in [0.5, 1.5, 100.5, 511.5, 512.5, 9000.5, 2.25] {
            assert!((ln_of_rate(rate) - f64::ln(rate)).abs() < 1e-12, "{rate}");
        }
    }

    /// A steady Poisson-like series with a deterministic wobble, then a jump.
    #[test]
    fn a_rate_change_is_seen_within_minutes_and_steady_noise_is_not() {
        let mut d = Bocpd::new();
        let steady = [4.0, 6.0, 5.0, 3.0, 7.0, 5.0, 4.0, 6.0, 5.0, 5.0];
        let mut worst_steady: f64 = 0.0;
        for i in 0..300 {
            let c = d.observe(steady[i % steady.len()]);
            if i > 60 {
                worst_steady = worst_steady.max(c.surprise);
            }
        }
        assert!(
            worst_steady < 1.0,
            "steady series looked changed: {worst_steady}"
        );
        let mut seen = None;
        for i in 0..5 {
            let c = d.observe(40.0 + i as f64);
            if c.surprise > 6.0 && seen.is_none() {
                seen = Some((i, c));
            }
        }
        let (minute, c) = seen.expect("jump not seen");
        assert!(minute <= 2, "seen only after {minute} minutes");
        assert!((4.0..6.5).contains(&c.before), "{c:?}");
        assert!(c.after > 20.0, "{c:?}");
    }

    #[test]
    fn a_template_that_stops_is_a_change() {
        let mut d = Bocpd::new();
        for i in 0..200 {
            d.observe(if i % 2 == 0 { 9.0 } else { 11.0 });
        }
        // The change is reported while the new run is recent: within RECENT_MIN minutes.
        let c = (0..RECENT_MIN)
            .map(|_| d.observe(0.0))
            .max_by(|a, b| a.surprise.total_cmp(&b.surprise))
            .expect("observed");
        assert!(c.surprise > 6.0, "{c:?}");
        assert!(c.after < 1.0 && c.before > 8.0, "{c:?}");
    }
}
