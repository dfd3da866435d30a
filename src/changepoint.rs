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

use crate::detect::ln_factorial_of;

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
/// Gamma prior on a new regime's rate: shape 1 and rate 1/2 (mean 2 lines a minute, broad).
/// With a shape of 1 and whole counts, every posterior shape is whole, so the predictive's
/// ln Γ(shape + x) − ln Γ(shape) is ln((sum + x)!) − ln(sum!): tabled factorials, and the first
/// becomes the grown run's second, so a slot looks up one factorial a minute.
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
    sums: Vec<u64>,
    spans: Vec<u32>,
    /// ln(sums[i]!).
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
    pub fn observe(&mut self, count: u32) -> Change {
        let x = u64::from(count);
        let xf = x as f64;
        let ln_x_fact = ln_factorial_of(x);
        let n = self.probs.len();
        if n < MAX_RUN {
            self.probs.push(0.0);
            self.sums.push(0);
            self.spans.push(0);
            self.ln_fact_sums.push(0.0);
        }
        let last = self.probs.len() - 1;
        let mut longest_best = -1.0;
        for i in (0..n).rev() {
            let grown = self.sums[i] + x;
            let ln_fact_grown = ln_factorial_of(grown);
            // The negative binomial predictive of a Poisson count under the run's Gamma(shape,
            // rate) posterior, shape = 1 + sum and rate = 1/2 + span.
            let (ln_rate, ln_rate_1) = (ln_rate(self.spans[i]), ln_rate(self.spans[i] + 1));
            let shape = 1.0 + self.sums[i] as f64;
            let ln_predictive = ln_fact_grown - self.ln_fact_sums[i] - ln_x_fact
                + shape * (ln_rate - ln_rate_1)
                - xf * ln_rate_1;
            let stay = self.probs[i] * ln_predictive.exp() * (1.0 - HAZARD);
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
                self.spans[slot] = self.spans[i] + 1;
                self.ln_fact_sums[slot] = ln_fact_grown;
            }
        }
        // A new run under the prior: shape 1, rate 1/2, whose predictive is (1/3)(2/3)^x.
        let fresh = if n == 0 { 1.0 } else { HAZARD };
        self.probs[0] = fresh * (-(3f64.ln()) - xf * ln_rate(1)).exp();
        self.sums[0] = x;
        self.spans[0] = 1;
        self.ln_fact_sums[0] = ln_x_fact;
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
        let recent = |i: usize| self.spans[i] as usize <= RECENT_MIN;
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
        let mean = |i: usize| (1.0 + self.sums[i] as f64) / (PRIOR_RATE + f64::from(self.spans[i]));
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

/// Posterior rates are the prior rate plus whole minutes.
const TABLED_RATES: usize = 512;

/// ln(1/2 + minutes), the log of a posterior's rate, from a table for the rates a posterior takes
/// in its first [`TABLED_RATES`] minutes.
fn ln_rate(minutes: u32) -> f64 {
    static TABLE: std::sync::OnceLock<[f64; TABLED_RATES]> = std::sync::OnceLock::new();
    match usize::try_from(minutes) {
        Ok(m) if m < TABLED_RATES => {
            TABLE.get_or_init(|| std::array::from_fn(|k| (PRIOR_RATE + k as f64).ln()))[m]
        }
        _ => (PRIOR_RATE + f64::from(minutes)).ln(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabled_rates_match_their_logarithms() {
        for minutes in [0, 1, 100, 511, 512, 9000] {
            let rate = PRIOR_RATE + f64::from(minutes);
            assert!((ln_rate(minutes) - rate.ln()).abs() < 1e-12, "{minutes}");
        }
    }

    /// The predictive the update computes from tables, against the negative binomial written
    /// out term by term.
    #[test]
    fn a_new_runs_predictive_is_the_priors_negative_binomial() {
        let mut d = Bocpd::new();
        d.observe(0);
        // With one slot after the first minute, the second minute's fresh run is the only
        // term not taken from a grown run; check it through the normalised posterior.
        let x = 3u32;
        let nb = |shape: f64, rate: f64, x: u32| {
            let mut ln = shape * (rate / (rate + 1.0)).ln() - f64::from(x) * (rate + 1.0).ln();
            for k in 0..x {
                ln += (shape + f64::from(k)).ln() - f64::from(k + 1).ln();
            }
            ln.exp()
        };
        d.observe(x);
        let grown = d.probs[1];
        let fresh = d.probs[0];
        let expected = (HAZARD * nb(1.0, PRIOR_RATE, x))
            / (HAZARD * nb(1.0, PRIOR_RATE, x) + (1.0 - HAZARD) * nb(1.0, PRIOR_RATE + 1.0, x));
        assert!((fresh - expected).abs() < 1e-12, "{fresh} {expected}");
        assert!((fresh + grown - 1.0).abs() < 1e-12);
    }

    /// A steady Poisson-like series with a deterministic wobble, then a jump.
    #[test]
    fn a_rate_change_is_seen_within_minutes_and_steady_noise_is_not() {
        let mut d = Bocpd::new();
        let steady = [4, 6, 5, 3, 7, 5, 4, 6, 5, 5];
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
            let c = d.observe(40 + i);
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
            d.observe(if i % 2 == 0 { 9 } else { 11 });
        }
        // The change is reported while the new run is recent: within RECENT_MIN minutes.
        let c = (0..RECENT_MIN)
            .map(|_| d.observe(0))
            .max_by(|a, b| a.surprise.total_cmp(&b.surprise))
            .expect("observed");
        assert!(c.surprise > 6.0, "{c:?}");
        assert!(c.after < 1.0 && c.before > 8.0, "{c:?}");
    }
}
