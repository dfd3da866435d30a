//! One score from several scorers, and a threshold per source that adapts to its false alarms.
//!
//! **One scale.** Every scorer states its finding as a surprise `s = −log10 p`, where `p` is the
//! probability of seeing something at least this extreme under that scorer's model of normal
//! (Poisson or normal tails for counts and gauges, the run-length posterior for changepoints, the
//! training scores for the isolation forest), and maps it with [`crate::detect::to_score`] to
//! `s / (s + 6)`. A score of 0.7 means one in 10^14 whichever scorer said it, which is what makes
//! blending them meaningful.
//!
//! **Failure signals and context.** Failure signals (auth failures, timeouts, errors, a filling
//! disk...) can open incidents. Source-wide evidence (a template's rate jumping or stopping, a
//! changepoint, a minute the isolation forest finds unlike the last hours) is *context*: it never
//! opens an incident by itself, because a burst of ordinary work is not an incident, but it makes a
//! failure signal in the same source and the same minutes more credible:
//! `blended = 1 − (1 − failure) · (1 − w · context)`, a noisy-OR in which the context counts for
//! [`CONTEXT_WEIGHT`] of its own strength. Context is capped at [`CONTEXT_CAP`], below every
//! sane threshold.
//!
//! **Adaptive threshold.** Each source starts at the configured threshold. It rises when the
//! source opens more incidents in an hour than the alarm budget allows, and when the operator
//! labels one of its alarms *normal* (to just above that alarm's score); a label *anomaly* halves
//! the rise. The rise decays with a half-life of [`RAISE_HALF_LIFE_MS`], so a source is not muted
//! forever. A raised threshold only gates *new* incidents: a signal above the configured threshold
//! still joins an incident that is already open.

use crate::template::TemplateId;
use std::collections::VecDeque;

/// How much of a context score counts towards a failure signal's.
pub const CONTEXT_WEIGHT: f64 = 0.5;
/// Highest score context evidence can have.
pub const CONTEXT_CAP: f64 = 0.6;
/// Smallest surprise worth keeping as context: one in a million per template and minute, so a
/// source with a hundred busy templates shows about one chance finding a week.
pub const CONTEXT_MIN_SURPRISE: f64 = 6.0;
/// Minutes before a failure signal that the source's context may come from.
pub const CONTEXT_REACH_MIN: i64 = 5;

const RAISE_STEP: f64 = 0.03;
const MAX_RAISE: f64 = 0.25;
const RAISE_HALF_LIFE_MS: f64 = 2.0 * 3_600_000.0;
const HOUR_MS: i64 = 3_600_000;

/// Which scorer found something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scorer {
    /// A template's lines in a minute against its own rate.
    TemplateRate,
    /// A template's rate changed (BOCPD).
    Changepoint,
    /// The source's whole minute (isolation forest).
    Forest,
}

impl Scorer {
    pub fn name(self) -> &'static str {
        match self {
            Scorer::TemplateRate => "template rate",
            Scorer::Changepoint => "changepoint",
            Scorer::Forest => "isolation forest",
        }
    }
}

/// One piece of source-wide evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub scorer: Scorer,
    /// Event-time minute it is about.
    pub minute: i64,
    pub score: f64,
    /// The template it is about, if any; its text is looked up when shown.
    pub template: Option<TemplateId>,
    pub what: String,
}

/// Context evidence as a score in 0..[`CONTEXT_CAP`].
pub fn context_score(surprise: f64) -> f64 {
    crate::detect::to_score(surprise).min(CONTEXT_CAP)
}

/// A failure signal's score lifted by the source's context.
pub fn blend(failure: f64, context: f64) -> f64 {
    1.0 - (1.0 - failure) * (1.0 - CONTEXT_WEIGHT * context.clamp(0.0, 1.0))
}

/// One source's threshold state.
#[derive(Debug, Clone, Default)]
pub struct SourceThreshold {
    raise: f64,
    raised_at_ms: i64,
    opened: VecDeque<i64>,
}

impl SourceThreshold {
    /// The threshold for opening a new incident at engine time `now_ms`.
    pub fn current(&self, base: f64, now_ms: i64) -> f64 {
        (base + self.decayed(now_ms)).min(0.99)
    }

    fn decayed(&self, now_ms: i64) -> f64 {
        let age = (now_ms - self.raised_at_ms).max(0) as f64;
        self.raise * 0.5f64.powf(age / RAISE_HALF_LIFE_MS)
    }

    fn set_raise(&mut self, raise: f64, now_ms: i64) {
        self.raise = raise.clamp(0.0, MAX_RAISE);
        self.raised_at_ms = now_ms;
    }

    /// The source opened an incident; past the hourly budget, each one raises the bar.
    pub fn opened(&mut self, now_ms: i64, budget_per_hour: u32) {
        self.opened.push_back(now_ms);
        while self.opened.front().is_some_and(|&t| t <= now_ms - HOUR_MS) {
            self.opened.pop_front();
        }
        if self.opened.len() > budget_per_hour as usize {
            let r = self.decayed(now_ms) + RAISE_STEP;
            self.set_raise(r, now_ms);
        }
    }

    /// The operator called an alarm with this score normal: the same score should not page again.
    pub fn false_alarm(&mut self, score: f64, base: f64, now_ms: i64) {
        let r = self.decayed(now_ms).max(score - base + RAISE_STEP);
        self.set_raise(r, now_ms);
    }

    /// The operator confirmed an alarm: the source's alarms are worth more than the bar says.
    pub fn true_alarm(&mut self, now_ms: i64) {
        let r = self.decayed(now_ms) * 0.5;
        self.set_raise(r, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_lifts_but_never_opens_alone() {
        assert!(blend(0.0, 1.0) < 0.7);
        assert!(blend(0.0, CONTEXT_CAP) < 0.35);
        assert_eq!(blend(0.5, 0.0), 0.5);
        let lifted = blend(0.62, CONTEXT_CAP);
        assert!(lifted > 0.7 && lifted < 0.75, "{lifted}");
        assert!(context_score(100.0) <= CONTEXT_CAP);
    }

    #[test]
    fn the_bar_rises_past_the_budget_and_with_false_alarms_then_decays() {
        let mut t = SourceThreshold::default();
        let h = 3_600_000;
        for i in 0..4 {
            t.opened(i * 60_000, 4);
        }
        assert_eq!(t.current(0.7, 4 * 60_000), 0.7);
        t.opened(5 * 60_000, 4);
        let raised = t.current(0.7, 5 * 60_000);
        assert!((raised - 0.73).abs() < 1e-9, "{raised}");
        t.false_alarm(0.82, 0.7, 6 * 60_000);
        assert!(t.current(0.7, 6 * 60_000) > 0.82);
        assert!(t.current(0.7, 6 * 60_000 + 2 * h) < 0.78);
        t.true_alarm(6 * 60_000);
        assert!(t.current(0.7, 6 * 60_000) < 0.78);
        // Opening more than the budget an hour later starts from a fresh hour.
        let mut u = SourceThreshold::default();
        for i in 0..8 {
            u.opened(i * h, 4);
        }
        assert_eq!(u.current(0.7, 8 * h), 0.7);
    }
}
