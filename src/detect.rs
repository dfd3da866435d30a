//! First scorer: how surprising is this minute for this entity and signal?
//!
//! Counts are compared with a Poisson expectation: the series' own exponentially weighted rate
//! once it has an hour of history, and before that the population rate of the signal (what one
//! entity usually produces in a minute it is active), so a never-seen attacker IP is judged against
//! what a typical IP does. Gauges (disk, CPU) are compared with their own weighted mean and
//! spread. The surprise `s` is −log10 of the tail probability (for gauges, of the normal tail), and
//! the score is `s / (s + 6)`: 0.5 at one-in-a-million, 0.7 at 1e-14. Volume signals are capped
//! below any sane threshold. Every score carries what was observed and what was expected, which is
//! the explanation the console shows.
//!
//! Minutes stay open for [`LATENESS_MIN`] minutes of event time before they join the baseline, so a
//! burst does not raise its own expectation and late deliveries (CloudTrail, S3) still count.

use crate::window::{Observation, Signal, SignalClass};
use std::collections::VecDeque;

/// Minutes of event time a bucket stays open for late events before it joins the baseline.
pub const LATENESS_MIN: i64 = 15;
/// Half-life of the per-series baseline, in minutes.
const HALF_LIFE_MIN: f64 = 60.0;
/// Minutes of history before a series is judged against itself rather than its population.
const ESTABLISHED_MIN: u64 = 60;
/// Lowest expected count per minute: nothing is so quiet that one event is a miracle.
const FLOOR_RATE: f64 = 0.5;
const FLOOR_NEW_RATE: f64 = 1.0;
/// Smallest spread assumed for a gauge, in its own units (percentage points). Disks move in whole
/// percent and a healthy one barely moves, so a few points of fill are news; CPU wanders.
fn gauge_sd_floor(signal: Signal) -> f64 {
    match signal {
        Signal::DiskUsedPct => 0.75,
        _ => 2.0,
    }
}
/// Smallest spread assumed for a gauge's rise over [`TREND_MIN`] minutes: a disk that fills fast
/// is news long before it is full.
const TREND_SD_FLOOR: f64 = 1.0;
const TREND_MIN: i64 = 5;
/// Minutes of history before a gauge is judged at all. Short, because an instance that scaled out
/// twenty minutes ago can fill its disk too; the spread floor keeps a short history from being
/// over-trusted.
const GAUGE_MIN_HISTORY_MIN: u64 = 10;
/// Relative extra-Poisson variation of real traffic: busy series (hundreds of requests a minute)
/// swing by tens of percent for no reason, which a pure Poisson test would call a miracle.
const OVERDISPERSION: f64 = 0.2;
/// Volume signals never reach an incident threshold by themselves.
pub const VOLUME_CAP: f64 = 0.45;

/// A scored observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub score: f64,
    pub observed: f64,
    pub expected: f64,
    /// Which window the surprise came from: 1 or 5 minutes (0 for gauges).
    pub window_min: u8,
}

#[derive(Debug, Default)]
struct Series {
    /// Latest event-time minute observed.
    last_minute: i64,
    open: VecDeque<(i64, f64)>,
    folded_through: Option<i64>,
    minutes: u64,
    rate: f64,
    var: f64,
    /// The expectations of a minute and of five at the rate last scored against.
    expected: Option<(Expectation, Expectation)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Prior {
    active_mean: f64,
    samples: u64,
}

#[derive(Debug, Default)]
pub struct Detector {
    /// Indexed by signal (`Signal as usize`), then by entity: one hash lookup of a borrowed entity
    /// name per observation, which allocates nothing, and nearly every observation is for a series
    /// that exists.
    by_signal: Vec<SignalSeries>,
}

#[derive(Debug, Default)]
struct SignalSeries {
    // hashbrown for `entry_ref`: one lookup by a borrowed name, allocating only a new series' key.
    series: hashbrown::HashMap<String, Series>,
    prior: Prior,
}

/// Weight of the newest minute in the baseline's moving average.
fn alpha() -> f64 {
    static ALPHA: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *ALPHA.get_or_init(|| 1.0 - 0.5f64.powf(1.0 / HALF_LIFE_MIN))
}

impl Detector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one observation and scores the minute (and the five minutes) it falls in.
    pub fn observe(&mut self, obs: &Observation) -> Score {
        let gauge = obs.signal.is_gauge();
        let at = obs.signal as usize;
        if self.by_signal.len() <= at {
            self.by_signal.resize_with(at + 1, SignalSeries::default);
        }
        let SignalSeries {
            series: by_entity,
            prior,
        } = &mut self.by_signal[at];
        let series = by_entity.entry_ref(obs.entity.as_str()).or_default();
        series.last_minute = series.last_minute.max(obs.minute);
        // Fold minutes that can no longer receive late events into the baseline.
        while let Some(&(m, v)) = series.open.front() {
            if m >= obs.minute - LATENESS_MIN {
                break;
            }
            series.open.pop_front();
            fold(series, prior, m, v, gauge);
        }
        if series.folded_through.is_some_and(|f| obs.minute <= f) {
            // Too late to change a minute already in the baseline: count it there, score nothing.
            return Score {
                score: 0.0,
                observed: obs.value,
                expected: series.rate,
                window_min: 0,
            };
        }
        // Open minutes are in order: the first at or after this one.
        let at = series.open.partition_point(|(m, _)| *m < obs.minute);
        let pos = (at < series.open.len()).then_some(at);
        let current = match pos {
            Some(i) if series.open[i].0 == obs.minute => {
                let slot = &mut series.open[i].1;
                *slot = if gauge {
                    slot.max(obs.value)
                } else {
                    *slot + obs.value
                };
                *slot
            }
            Some(i) => {
                series.open.insert(i, (obs.minute, obs.value));
                obs.value
            }
            None => {
                series.open.push_back((obs.minute, obs.value));
                obs.value
            }
        };
        let mut score = if gauge {
            let low = series
                .open
                .iter()
                .filter(|(m, _)| *m >= obs.minute - TREND_MIN && *m < obs.minute)
                .map(|(_, v)| *v)
                .reduce(f64::min);
            score_gauge(series, current, low, gauge_sd_floor(obs.signal))
        } else {
            let lambda = if series.minutes >= ESTABLISHED_MIN {
                series.rate.max(FLOOR_RATE)
            } else {
                prior.active_mean.max(FLOOR_NEW_RATE)
            };
            let five: f64 = series
                .open
                .iter()
                .rev()
                .skip_while(|(m, _)| *m > obs.minute)
                .take_while(|(m, _)| *m > obs.minute - 5)
                .map(|(_, v)| v)
                .sum();
            let (one, five_min) = match series.expected {
                Some(e) if e.0.asked == lambda => e,
                _ => {
                    let e = (Expectation::new(lambda), Expectation::new(lambda * 5.0));
                    series.expected = Some(e);
                    e
                }
            };
            let s1 = one.surprise(current);
            let s5 = five_min.surprise(five);
            if s5 > s1 {
                Score {
                    score: to_score(s5),
                    observed: five,
                    expected: lambda * 5.0,
                    window_min: 5,
                }
            } else {
                Score {
                    score: to_score(s1),
                    observed: current,
                    expected: lambda,
                    window_min: 1,
                }
            }
        };
        if obs.signal.class() == SignalClass::Volume {
            score.score = score.score.min(VOLUME_CAP);
        }
        score
    }

    /// Forgets series not seen since `before_minute`. A scanner's IP seen once would otherwise be
    /// kept forever; after hours of silence its weighted rate has decayed to nothing anyway, and a
    /// returning entity is judged against its population like a new one.
    pub fn forget_idle(&mut self, before_minute: i64) {
        for s in &mut self.by_signal {
            s.series.retain(|_, s| s.last_minute >= before_minute);
        }
    }

    /// Number of series tracked (for memory figures).
    pub fn series_count(&self) -> usize {
        self.by_signal.iter().map(|s| s.series.len()).sum()
    }
}

fn fold(series: &mut Series, prior: &mut Prior, minute: i64, value: f64, gauge: bool) {
    let a = alpha();
    if gauge {
        if series.minutes == 0 {
            series.rate = value;
        } else {
            let d = value - series.rate;
            series.rate += a * d;
            series.var = (1.0 - a) * (series.var + a * d * d);
        }
        series.minutes += 1;
        series.folded_through = Some(minute);
        return;
    }
    let gap = series.folded_through.map_or(0, |f| (minute - f - 1).max(0)) as f64;
    series.rate *= (1.0 - a).powf(gap);
    series.rate = (1.0 - a) * series.rate + a * value;
    // A new series starts at the first minute it was seen, not at zero history.
    series.minutes += gap as u64 + 1;
    series.folded_through = Some(minute);
    if value > 0.0 {
        prior.samples += 1;
        let pa = 1.0 / (prior.samples as f64).min(200.0);
        prior.active_mean += pa * (value - prior.active_mean);
    }
}

/// Level against the baseline, and rise against the lowest value of the last few minutes; the
/// larger surprise wins.
fn score_gauge(series: &Series, current: f64, recent_low: Option<f64>, sd_floor: f64) -> Score {
    if series.minutes < GAUGE_MIN_HISTORY_MIN {
        return Score {
            score: 0.0,
            observed: current,
            expected: series.rate,
            window_min: 0,
        };
    }
    let sd = series.var.sqrt().max(sd_floor);
    let z_level = ((current - series.rate) / sd).max(0.0);
    // A rise is judged against the series' own minute-to-minute spread: CPU jumps, disks creep.
    let rise_sd = (series.var.sqrt() * 1.5).max(TREND_SD_FLOOR);
    let z_rise = recent_low.map_or(0.0, |low| ((current - low) / rise_sd).max(0.0));
    let z = z_level.max(z_rise);
    let s = z * z / (2.0 * std::f64::consts::LN_10);
    Score {
        score: to_score(s),
        observed: current,
        expected: if z_rise > z_level {
            recent_low.unwrap_or(series.rate)
        } else {
            series.rate
        },
        window_min: if z_rise > z_level { TREND_MIN as u8 } else { 0 },
    }
}

/// Maps a surprise (−log10 p) to 0..1.
pub fn to_score(s: f64) -> f64 {
    if s <= 0.0 { 0.0 } else { s / (s + 6.0) }
}

/// Quasi-Poisson surprise: counts and expectation shrink by the variance inflation
/// `1 + φ²λ`, so a variance of `λ + (φλ)²` is treated like a Poisson one. Quiet series are
/// judged as Poisson; busy ones allow their natural swings.
pub(crate) fn count_surprise(k: f64, lambda: f64) -> f64 {
    Expectation::new(lambda).surprise(k)
}

/// A Poisson expectation with real traffic's extra variation folded in (counts and rate both
/// scaled down), and the rate's logarithm, which every tail against it needs: a series keeps
/// one while its rate holds, which saves that logarithm on nearly every observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Expectation {
    /// The rate asked for, before scaling: what the cache is keyed on.
    asked: f64,
    inflation: f64,
    lambda: f64,
    ln_lambda: f64,
}

impl Expectation {
    pub(crate) fn new(lambda: f64) -> Self {
        let inflation = 1.0 + OVERDISPERSION * OVERDISPERSION * lambda;
        let scaled = lambda / inflation;
        Expectation {
            asked: lambda,
            inflation,
            lambda: scaled,
            ln_lambda: scaled.ln(),
        }
    }

    /// −log10 P(X ≥ k).
    pub(crate) fn surprise(&self, k: f64) -> f64 {
        poisson_tail(k / self.inflation, self.lambda, self.ln_lambda)
    }
}

/// −log10 P(X ≥ k) for X ~ Poisson(λ).
pub fn poisson_surprise(k: f64, lambda: f64) -> f64 {
    poisson_tail(k, lambda, lambda.ln())
}

/// −log10 P(X ≥ k) for X ~ Poisson(λ) given ln λ, using the leading term of the upper tail, which
/// is tight when k is well above λ (the only case that matters here).
fn poisson_tail(k: f64, lambda: f64, ln_lambda: f64) -> f64 {
    if k <= lambda || lambda <= 0.0 {
        return 0.0;
    }
    let ln_pmf = k * ln_lambda - lambda - ln_factorial(k);
    let ratio = lambda / (k + 1.0);
    let ln_tail = ln_pmf - (1.0 - ratio).ln();
    (-ln_tail / std::f64::consts::LN_10).max(0.0)
}

/// Factorials tabled: the count scorer asks for one on nearly every line and the changepoint
/// detector for dozens a minute per template, and logarithms summed per call were a visible
/// share of the engine's time.
const TABLED_FACTORIALS: usize = 1024;

/// ln(n!) for n < [`TABLED_FACTORIALS`], summed once.
fn ln_factorials() -> &'static [f64; TABLED_FACTORIALS] {
    static TABLE: std::sync::OnceLock<[f64; TABLED_FACTORIALS]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0.0; TABLED_FACTORIALS];
        let mut acc = 0.0;
        for (n, slot) in t.iter_mut().enumerate().skip(2) {
            acc += f64::ln(n as f64);
            *slot = acc;
        }
        t
    })
}

/// A whole number ≥ 0. A round trip through an integer, because `floor` is a library call on the
/// baseline x86-64 target and this is asked several times per template and minute.
pub(crate) fn is_whole(x: f64) -> bool {
    (0.0..9.0e15).contains(&x) && (x as u64) as f64 == x
}

pub(crate) fn ln_factorial(k: f64) -> f64 {
    if k < 20.0 {
        ln_factorials()[k.max(0.0) as usize]
    } else if k < TABLED_FACTORIALS as f64 && is_whole(k) {
        ln_factorials()[k as usize]
    } else {
        stirling(k)
    }
}

/// ln(k!) of a whole `k`.
pub(crate) fn ln_factorial_of(k: u64) -> f64 {
    match usize::try_from(k) {
        Ok(i) if i < TABLED_FACTORIALS => ln_factorials()[i],
        _ => stirling(k as f64),
    }
}

/// Stirling's series for ln(k!), k ≥ 20: (k + ½)·ln k − k + ½·ln 2π + 1/(12k), one logarithm.
fn stirling(k: f64) -> f64 {
    const HALF_LN_TWO_PI: f64 = 0.918_938_533_204_672_8;
    (k + 0.5) * k.ln() - k + HALF_LN_TWO_PI + 1.0 / (12.0 * k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(signal: Signal, entity: &str, minute: i64, value: f64) -> Observation {
        Observation {
            signal,
            entity: entity.into(),
            links: vec![],
            value,
            minute,
        }
    }

    #[test]
    fn factorials_agree_inside_and_beyond_the_table() {
        let mut exact = 0.0;
        for k in 1..=5000u64 {
            exact += (k as f64).ln();
            if [1, 19, 20, 21, 1023, 1024, 1025, 5000].contains(&k) {
                let err = (ln_factorial_of(k) - exact).abs() / exact.max(1.0);
                assert!(err < 1e-12, "{k}: {} vs {exact}", ln_factorial_of(k));
                assert!(
                    (ln_factorial(k as f64) - ln_factorial_of(k)).abs() < 1e-9,
                    "{k}"
                );
            }
        }
        assert_eq!(ln_factorial_of(0), 0.0);
    }

    #[test]
    fn poisson_surprise_matches_known_tails() {
        // P(X >= 10 | 1) ≈ 1.1e-7
        let s = poisson_surprise(10.0, 1.0);
        assert!((s - 6.96).abs() < 0.1, "{s}");
        assert_eq!(poisson_surprise(1.0, 2.0), 0.0);
        assert!(poisson_surprise(200.0, 5.0) > 100.0);
    }

    #[test]
    fn a_burst_from_a_new_ip_scores_high_and_background_does_not() {
        let mut d = Detector::new();
        // Background: many IPs, each 1-3 failures in one minute.
        for i in 0..300 {
            let ip = format!("198.51.100.{i}");
            for _ in 0..(1 + i % 3) {
                d.observe(&obs(Signal::SshAuthFailure, &ip, i, 1.0));
            }
        }
        let mut last = None;
        for _ in 0..60 {
            last = Some(d.observe(&obs(Signal::SshAuthFailure, "45.83.12.7", 320, 1.0)));
        }
        let s = last.unwrap();
        assert!(s.score > 0.8, "{s:?}");
        let calm = d.observe(&obs(Signal::SshAuthFailure, "203.0.113.9", 321, 1.0));
        assert!(calm.score < 0.1, "{calm:?}");
    }

    #[test]
    fn gauges_score_rises_with_deviation_and_volume_is_capped() {
        let mut d = Detector::new();
        for m in 0..120 {
            d.observe(&obs(Signal::DiskUsedPct, "i-1", m, 40.0 + (m % 3) as f64));
            d.observe(&obs(Signal::CpuUtil, "i-1", m, 20.0 + (m % 5) as f64));
        }
        assert!(d.observe(&obs(Signal::DiskUsedPct, "i-1", 121, 42.0)).score < 0.2);
        assert!(d.observe(&obs(Signal::DiskUsedPct, "i-1", 122, 95.0)).score > 0.8);
        assert!(d.observe(&obs(Signal::CpuUtil, "i-1", 122, 99.0)).score <= VOLUME_CAP);
    }

    #[test]
    fn idle_series_are_forgotten() {
        let mut d = Detector::new();
        d.observe(&obs(Signal::VpcReject, "198.51.100.1", 10, 1.0));
        d.observe(&obs(Signal::VpcReject, "198.51.100.2", 500, 1.0));
        d.forget_idle(400);
        assert_eq!(d.series_count(), 1);
    }

    #[test]
    fn late_minutes_do_not_move_the_baseline_twice() {
        let mut d = Detector::new();
        for m in 0..100 {
            d.observe(&obs(Signal::LambdaError, "f", m, 1.0));
        }
        let late = d.observe(&obs(Signal::LambdaError, "f", 10, 1.0));
        assert_eq!(late.score, 0.0);
    }
}
