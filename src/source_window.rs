//! Per-source windows by event-time minute: lines per template, levels, new kinds of line. When a
//! minute closes (a short grace after it ends, for late deliveries) it is scored three ways, and
//! what stands out becomes context [`Evidence`] for the [`ensemble`](crate::ensemble):
//! - **template rate**: a template's lines in the minute against its own rate (a rare line that
//!   bursts, a chatty one that floods);
//! - **changepoint**: a template whose rate changed, up or down ([`crate::changepoint`]);
//! - **isolation forest**: the last five minutes as a whole against the last hours
//!   ([`crate::forest`]).
//!
//! The hot path pays one hash increment per line; scoring happens once per source and minute.

use crate::changepoint::Bocpd;
use crate::ensemble::{CONTEXT_MIN_SURPRISE, CONTEXT_REACH_MIN, Evidence, Scorer, context_score};
use crate::forest::{MinuteCounts, MinuteForest};
use crate::parse::Level;
use crate::template::{TemplateId, TemplateMap};
use std::collections::VecDeque;

/// Minutes after a minute ends before it is scored: live sources deliver within seconds, and
/// CloudTrail's own lateness is handled by its per-principal signals.
pub const GRACE_MIN: i64 = 2;
/// Templates whose rate is tracked per source; later ones are still counted in the minute.
const MAX_TEMPLATES: usize = 300;
/// Minutes a template needs before its own rate is trusted.
const ESTABLISHED_MIN: u64 = 60;
/// A template joins changepoint tracking at this rate (lines a minute) and leaves it at half.
/// Quieter templates cost as much to track and give little: within the changepoint's recent
/// window a stop reaches the context bar only from about 3/min and a tripling from about 2/min,
/// and a flood of a quiet template is the template-rate scorer's evidence anyway.
const CHANGEPOINT_ON_RATE: f64 = 1.5;
const CHANGEPOINT_OFF_RATE: f64 = 0.75;
/// Smallest rate change a changepoint must show to be reported: busy logs drift all the time.
const CHANGE_RATIO: f64 = 3.0;
/// Half-life of a template's rate, minutes.
const RATE_HALF_LIFE_MIN: f64 = 60.0;
/// Quiet minutes replayed into the scorers after a silence; a longer silence is skipped.
const MAX_GAP_MIN: i64 = 30;
/// Minutes of evidence kept for blending and for incidents to quote.
const KEEP_MIN: i64 = 30;

#[derive(Debug, Default)]
struct Minute {
    minute: i64,
    counts: MinuteCounts,
    templates: TemplateMap<u32>,
}

impl Minute {
    fn quiet(minute: i64) -> Self {
        Minute {
            minute,
            ..Minute::default()
        }
    }
}

#[derive(Debug, Default)]
struct TemplateSeries {
    /// Lines a minute, weighted towards recent minutes, as of `updated`.
    rate: f64,
    /// Minute the rate was last brought up to date; quiet minutes are applied in one step when
    /// the template next shows up, so a minute costs only the templates active in it.
    updated: i64,
    first: i64,
    changes: Option<Bocpd>,
}

impl TemplateSeries {
    fn minutes(&self, now: i64) -> u64 {
        (now - self.first).max(0) as u64
    }

    /// Brings the rate up to `minute` (exclusive) through the quiet minutes since the last update.
    fn decay_to(&mut self, minute: i64, keep: f64) {
        let gap = (minute - self.updated - 1).max(0);
        if gap > 0 {
            self.rate *= keep.powi(gap.min(100_000) as i32);
        }
    }
}

/// One source's windows and context scorers.
#[derive(Debug, Default)]
pub struct SourceWindow {
    /// Minutes still open, oldest first (a handful: lines arrive roughly in order).
    open: VecDeque<Minute>,
    closed_through: Option<i64>,
    templates: TemplateMap<TemplateSeries>,
    /// Templates under changepoint watch: they are scored every minute, quiet or not.
    watched: Vec<TemplateId>,
    /// A cleared minute map kept for reuse: one fewer allocation per source and minute.
    spare: TemplateMap<u32>,
    forest: MinuteForest,
    use_forest: bool,
    recent: VecDeque<Evidence>,
    /// Lines that arrived after their minute was scored.
    pub late_lines: u64,
}

impl SourceWindow {
    pub fn new(use_forest: bool) -> Self {
        SourceWindow {
            use_forest,
            ..SourceWindow::default()
        }
    }

    /// Counts one line.
    pub fn observe(&mut self, minute: i64, template: TemplateId, level: Level, new_kind: bool) {
        if self.closed_through.is_some_and(|c| minute <= c) {
            self.late_lines += 1;
            return;
        }
        let m = match self.open.iter().rposition(|m| m.minute <= minute) {
            Some(i) if self.open[i].minute == minute => &mut self.open[i],
            found => {
                let at = found.map_or(0, |i| i + 1);
                let fresh = Minute {
                    minute,
                    counts: MinuteCounts::default(),
                    templates: std::mem::take(&mut self.spare),
                };
                self.open.insert(at, fresh);
                &mut self.open[at]
            }
        };
        m.counts.lines += 1;
        match level {
            Level::Error => m.counts.errors += 1,
            Level::Warn => m.counts.warnings += 1,
            _ => {}
        }
        if new_kind {
            m.counts.new_kinds += 1;
        }
        *m.templates.entry(template).or_default() += 1;
    }

    /// Scores every minute that ended more than [`GRACE_MIN`] minutes before `now_minute`;
    /// returns the new evidence.
    pub fn close(&mut self, now_minute: i64) -> Vec<Evidence> {
        let mut found = Vec::new();
        let last_closable = now_minute - GRACE_MIN - 1;
        while self.open.front().is_some_and(|m| m.minute <= last_closable) {
            let Some(minute) = self.open.pop_front() else {
                break;
            };
            let first = minute.minute;
            if let Some(done) = self.closed_through {
                let quiet_from = (done + 1).max(first - MAX_GAP_MIN);
                for q in quiet_from..first {
                    self.score_minute(q, Minute::quiet(q), &mut found);
                }
            }
            self.score_minute(first, minute, &mut found);
        }
        // Silence is news too: a source that stops entirely still has its minutes scored.
        if let Some(done) = self.closed_through
            && done < last_closable
            && !self.templates.is_empty()
        {
            let from = (done + 1).max(last_closable - MAX_GAP_MIN + 1);
            for q in from..=last_closable {
                self.score_minute(q, Minute::quiet(q), &mut found);
            }
        }
        while self
            .recent
            .front()
            .is_some_and(|e| e.minute < now_minute - KEEP_MIN)
        {
            self.recent.pop_front();
        }
        found
    }

    fn score_minute(&mut self, minute: i64, mut m: Minute, found: &mut Vec<Evidence>) {
        self.closed_through = Some(minute);
        m.counts.minutes = 1;
        m.counts.kinds = m.templates.len() as u32;
        m.counts.top_kind = m.templates.values().copied().max().unwrap_or(0);
        let keep = 0.5f64.powf(1.0 / RATE_HALF_LIFE_MIN);
        let mut best_rate: Option<Evidence> = None;
        let mut best_change: Option<Evidence> = None;
        // Active templates: a burst against the template's own rate, then the rate moves on.
        for (&id, &count) in &m.templates {
            if self.templates.len() >= MAX_TEMPLATES && !self.templates.contains_key(&id) {
                continue;
            }
            let t = self.templates.entry(id).or_insert(TemplateSeries {
                rate: 0.0,
                updated: minute - 1,
                first: minute,
                changes: None,
            });
            t.decay_to(minute, keep);
            let n = f64::from(count);
            // Two lines more than twice the rate cannot reach the context bar (the tail is above
            // 1e-4 even for the quietest template), so the tail is only computed past that.
            if t.minutes(minute) >= ESTABLISHED_MIN && n >= 2.0 * t.rate + 3.0 {
                let s = crate::detect::count_surprise(n, t.rate.max(0.05));
                keep_best(&mut best_rate, s, || Evidence {
                    scorer: Scorer::TemplateRate,
                    minute,
                    score: context_score(s),
                    template: Some(id),
                    what: format!(
                        "{} in a minute (usually {})",
                        n,
                        crate::incident::short_number(t.rate)
                    ),
                });
            }
            if t.changes.is_none()
                && t.minutes(minute) >= ESTABLISHED_MIN
                && t.rate >= CHANGEPOINT_ON_RATE
            {
                t.changes = Some(Bocpd::new());
                self.watched.push(id);
            }
            t.rate = keep * t.rate + (1.0 - keep) * n;
            t.updated = minute;
        }
        // Watched templates see every minute, zeros included: a template that stops is a change.
        let templates = &mut self.templates;
        self.watched.retain(|id| {
            let Some(t) = templates.get_mut(id) else {
                return false;
            };
            let n = m.templates.get(id).copied().unwrap_or(0);
            if t.updated < minute {
                t.decay_to(minute, keep);
                t.rate *= keep;
                t.updated = minute;
            }
            let Some(c) = t.changes.as_mut() else {
                return false;
            };
            let ch = c.observe(n);
            let ratio = (ch.after + 0.1) / (ch.before + 0.1);
            if !(1.0 / CHANGE_RATIO..=CHANGE_RATIO).contains(&ratio) {
                keep_best(&mut best_change, ch.surprise, || Evidence {
                    scorer: Scorer::Changepoint,
                    minute,
                    score: context_score(ch.surprise),
                    template: Some(*id),
                    what: format!(
                        "rate changed from {}/min to {}/min",
                        crate::incident::short_number(ch.before),
                        crate::incident::short_number(ch.after)
                    ),
                });
            }
            if t.rate < CHANGEPOINT_OFF_RATE {
                t.changes = None;
                return false;
            }
            true
        });
        // Templates unseen for long enough to have decayed to nothing are forgotten.
        if minute % 60 == 0 {
            self.templates.retain(|_, t| {
                t.changes.is_some()
                    || t.rate * keep.powi((minute - t.updated).min(10_000) as i32) >= 1e-4
            });
        }
        if self.use_forest
            && let Some(u) = self.forest.observe(m.counts)
            && u.surprise >= crate::forest::MIN_SURPRISE
        {
            self.push(
                Evidence {
                    scorer: Scorer::Forest,
                    minute,
                    score: context_score(u.surprise),
                    template: None,
                    what: u.explain(),
                },
                found,
            );
        }
        for e in [best_rate, best_change].into_iter().flatten() {
            self.push(e, found);
        }
        m.templates.clear();
        if self.spare.capacity() < m.templates.capacity() {
            self.spare = m.templates;
        }
    }

    fn push(&mut self, e: Evidence, found: &mut Vec<Evidence>) {
        found.push(e.clone());
        self.recent.push_back(e);
    }

    /// The strongest context in the minutes leading up to `minute` (event time).
    pub fn context_at(&self, minute: i64) -> Option<&Evidence> {
        self.recent
            .iter()
            .filter(|e| e.minute <= minute && e.minute >= minute - CONTEXT_REACH_MIN)
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }

    /// Evidence between two minutes (event time), strongest first.
    pub fn evidence_between(&self, from: i64, to: i64) -> Vec<Evidence> {
        let mut v: Vec<Evidence> = self
            .recent
            .iter()
            .filter(|e| e.minute >= from && e.minute <= to)
            .cloned()
            .collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score));
        v
    }
}

/// Keeps the evidence with the largest surprise, built only when it is worth keeping.
fn keep_best(best: &mut Option<Evidence>, surprise: f64, make: impl FnOnce() -> Evidence) {
    if surprise < CONTEXT_MIN_SURPRISE {
        return;
    }
    let score = context_score(surprise);
    if best.as_ref().is_none_or(|b| score > b.score) {
        *best = Some(make());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(w: &mut SourceWindow, minute: i64, counts: &[(TemplateId, u32)]) {
        for &(t, n) in counts {
            for _ in 0..n {
                w.observe(minute, t, Level::Info, false);
            }
        }
    }

    #[test]
    fn a_flooding_template_is_context_and_steady_minutes_are_not() {
        let mut w = SourceWindow::new(false);
        let mut quiet_evidence = 0;
        for m in 0..180 {
            feed(
                &mut w,
                m,
                &[(1, 5 + (m % 3) as u32), (2, 2), (3, (m % 2) as u32)],
            );
            quiet_evidence += w.close(m + 1).len();
        }
        assert_eq!(quiet_evidence, 0);
        let mut seen = Vec::new();
        for m in 180..186 {
            feed(&mut w, m, &[(1, 6), (2, 60), (3, 1)]);
            seen.extend(w.close(m + 1));
        }
        assert!(
            seen.iter()
                .any(|e| e.template == Some(2) && e.scorer == Scorer::TemplateRate),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|e| e.template == Some(2) && e.scorer == Scorer::Changepoint),
            "{seen:?}"
        );
        let ctx = w.context_at(185).expect("context");
        assert!(ctx.score > 0.4, "{ctx:?}");
    }

    #[test]
    fn a_template_that_stops_while_the_source_goes_quiet_is_seen() {
        let mut w = SourceWindow::new(false);
        for m in 0..120 {
            feed(&mut w, m, &[(7, 10)]);
            w.close(m + 1);
        }
        // Nothing more arrives; time moves on.
        let found = w.close(130);
        assert!(
            found
                .iter()
                .any(|e| e.scorer == Scorer::Changepoint && e.what.contains("to 0")),
            "{found:?}"
        );
    }

    #[test]
    fn late_lines_are_counted_not_scored() {
        let mut w = SourceWindow::new(false);
        feed(&mut w, 10, &[(1, 1)]);
        w.close(20);
        w.observe(10, 1, Level::Info, false);
        assert_eq!(w.late_lines, 1);
    }
}
