//! The engine: records in, scores, anomalies and incidents out. Synchronous and deterministic:
//! the same records in the same order give the same results live, in replay and in evaluation.
//!
//! Per record: sanitised text → [`parse`](crate::parse) → [`template`](crate::template) →
//! [`window`](crate::window) observations → [`detect`](crate::detect) scores → threshold crossings
//! → [`incident`](crate::incident) tracker. It also keeps what the console shows: per-source
//! counters, a bounded tail and a per-source score history.

use crate::detect::Detector;
use crate::ensemble::{SourceThreshold, blend};
use crate::incident::{Crossing, Hit, Incident, Tracker};
use crate::novelty::{Novel, SourceNovelty};
use crate::parse::{Level, Parser};
use crate::record::Record;
use crate::safe_text::SafeText;
use crate::source_window::SourceWindow;
use crate::template::{Miner, TemplateId};
use crate::window::{Extractor, Observation, Observations, Signal, SignalClass};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Event-time minutes after which an entity's silent series is forgotten.
const SERIES_IDLE_MIN: i64 = 6 * 60;

/// Weight of each sample in a metric's typical level (about the last 20 samples).
const METRIC_TYPICAL_ALPHA: f64 = 0.05;

/// Baselines of history a metric needs before it may open an incident.
const METRIC_WARMUP_BASELINES: usize = 2;

struct MetricSeries {
    detector: crate::series::Detector,
    /// What this time of day and trend predict; shown as the expected value, never a vote
    /// (see [`crate::forecast`] for why).
    forecast: crate::forecast::Forecaster,
    typical: f64,
    samples: usize,
    first_ms: i64,
}

/// Weight of each event in a source's typical delivery delay.
const LAG_ALPHA: f64 = 0.01;

/// Minutes of score history kept per source for the chart.
pub const CHART_MINUTES: usize = 120;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub threshold: f64,
    /// Lines kept for the tail pane; 0 keeps none (evaluation).
    pub tail_lines: usize,
    /// VPC Flow Logs custom formats by log group.
    pub flow_formats: Vec<(String, crate::parse::FlowFormat)>,
    /// Score each source's minutes with the isolation forest too.
    pub forest: bool,
    /// Incidents a source may open in an hour before its threshold rises.
    pub alarms_per_hour: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threshold: 0.7,
            tail_lines: 5000,
            flow_formats: Vec::new(),
            forest: true,
            alarms_per_hour: 4,
        }
    }
}

/// Counters for one source (log group or file).
#[derive(Debug, Default, serde::Serialize)]
pub struct SourceStats {
    pub name: String,
    pub events: u64,
    pub rejected: u64,
    pub last_error: Option<String>,
    pub newest_event_ms: i64,
    /// Delivery delay of the latest event: arrival minus event time.
    pub lag_ms: i64,
    /// Events per second over the last minute of engine time.
    pub rate: f64,
    #[serde(skip)]
    per_second: VecDeque<(i64, u32)>,
    /// Sum of `per_second`, kept as it changes rather than re-added per event.
    #[serde(skip)]
    last_minute_events: u64,
    /// Highest score per engine-time minute, newest last.
    #[serde(skip)]
    pub scores: VecDeque<(i64, f64)>,
    #[serde(skip)]
    novelty: SourceNovelty,
    /// Per-template windows and the context scorers.
    #[serde(skip)]
    window: SourceWindow,
    #[serde(skip)]
    threshold: SourceThreshold,
    /// Typical delivery delay, so the source's minutes are scored once they are complete.
    #[serde(skip)]
    typical_lag_ms: f64,
}

impl SourceStats {
    fn new(name: &str, forest: bool) -> Self {
        SourceStats {
            name: name.to_string(),
            window: SourceWindow::new(forest),
            ..SourceStats::default()
        }
    }

    /// The score a new incident from this source needs now (the configured threshold, raised
    /// while the source pages too often or was labelled wrong).
    pub fn alarm_threshold(&self, base: f64, now_ms: i64) -> f64 {
        self.threshold.current(base, now_ms)
    }

    fn count(&mut self, now_ms: i64) {
        let sec = now_ms.div_euclid(1000);
        self.last_minute_events += 1;
        match self.per_second.back_mut() {
            // Within the same second nothing can have expired.
            Some((s, n)) if *s == sec => {
                *n += 1;
                self.rate = self.last_minute_events as f64 / 60.0;
            }
            _ => {
                self.per_second.push_back((sec, 1));
                self.expire(now_ms);
            }
        }
    }

    fn expire(&mut self, now_ms: i64) {
        let sec = now_ms.div_euclid(1000);
        while let Some(&(s, n)) = self.per_second.front() {
            if s > sec - 60 {
                break;
            }
            self.per_second.pop_front();
            self.last_minute_events -= u64::from(n);
        }
        self.rate = self.last_minute_events as f64 / 60.0;
    }

    fn score(&mut self, now_ms: i64, score: f64) {
        let minute = now_ms.div_euclid(60_000);
        match self.scores.back_mut() {
            Some((m, s)) if *m == minute => *s = s.max(score),
            _ => {
                // Fill quiet minutes with zero so the chart's x axis is time, not samples.
                let last = self.scores.back().map(|(m, _)| *m);
                if let Some(last) = last {
                    let gap = (minute - last - 1).clamp(0, CHART_MINUTES as i64);
                    for m in (minute - gap)..minute {
                        self.scores.push_back((m, 0.0));
                    }
                }
                self.scores.push_back((minute, score));
            }
        }
        while self.scores.len() > CHART_MINUTES {
            self.scores.pop_front();
        }
    }
}

/// A line as the tail pane shows it.
#[derive(Debug, Clone)]
pub struct TailLine {
    pub arrival_ms: i64,
    pub group: Arc<str>,
    pub text: SafeText,
    pub level: Level,
    pub template: TemplateId,
    /// Highest score an observation from this line reached.
    pub score: f64,
}

/// What one record did, for callers that persist or print.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Numbers of incidents this record opened.
    pub new_incidents: Vec<u64>,
    pub rejected: bool,
    /// How the line was scored; `None` for rejected and header lines.
    pub scored: Option<ScoredLine>,
}

/// A scored line, as the learner takes it.
#[derive(Debug, Clone, Copy)]
pub struct ScoredLine {
    pub template: TemplateId,
    pub level: Level,
    /// Highest score an observation from this line reached.
    pub score: f64,
}

pub struct Engine {
    opts: EngineOptions,
    parser: Parser,
    miner: Miner,
    extractor: Extractor,
    detector: Detector,
    /// One numeric-series detector per metric source.
    metrics: HashMap<String, MetricSeries>,
    tracker: Tracker,
    /// In name order (the console lists them so), found through `source_index`: a hash lookup on
    /// every line instead of string comparisons down a tree.
    sources: Vec<SourceStats>,
    source_index: foldhash::HashMap<Arc<str>, usize>,
    tail: VecDeque<TailLine>,
    clock_ms: i64,
    lines: u64,
    rejected: u64,
    scratch: Observations,
    /// What the operator's labels taught; blended into every score once it holds labels.
    learner: Option<Arc<crate::learn::learner::Learner>>,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Self::with_miner(opts, Miner::new())
    }

    /// An engine that continues with templates mined earlier (restored from the store).
    pub fn with_miner(opts: EngineOptions, miner: Miner) -> Self {
        let mut parser = Parser::new();
        for (group, format) in &opts.flow_formats {
            parser.set_flow_format(group, format.clone());
        }
        Engine {
            opts,
            parser,
            miner,
            extractor: Extractor::new(),
            detector: Detector::new(),
            metrics: HashMap::new(),
            tracker: Tracker::new(),
            sources: Vec::new(),
            source_index: foldhash::HashMap::default(),
            tail: VecDeque::new(),
            clock_ms: i64::MIN,
            lines: 0,
            rejected: 0,
            scratch: Observations::default(),
            learner: None,
        }
    }

    /// Blends what the labels taught into the scores from now on (the console calls it after
    /// each retraining, from the learner thread's result).
    pub fn set_learner(&mut self, learner: Arc<crate::learn::learner::Learner>) {
        self.learner = Some(learner);
    }

    pub fn threshold(&self) -> f64 {
        self.opts.threshold
    }

    /// Advances the engine clock (sources call it when time passes without events).
    pub fn advance(&mut self, now_ms: i64) {
        if now_ms > self.clock_ms {
            let new_minute = self.clock_ms.div_euclid(60_000) != now_ms.div_euclid(60_000);
            self.clock_ms = now_ms;
            if new_minute {
                let minute = now_ms.div_euclid(60_000);
                if minute % 60 == 0 {
                    self.detector.forget_idle(minute - SERIES_IDLE_MIN);
                }
                self.tracker.tick(now_ms);
                for s in &mut self.sources {
                    s.expire(now_ms);
                    s.score(now_ms, 0.0);
                    let lag_min = ((s.typical_lag_ms / 60_000.0).ceil() as i64)
                        .clamp(0, crate::detect::LATENESS_MIN);
                    for e in s.window.close(minute - lag_min) {
                        s.score(now_ms, e.score);
                    }
                }
            }
        }
    }

    pub fn ingest(&mut self, rec: Record) -> Ingested {
        self.advance(rec.arrival_ms);
        let now = self.clock_ms;
        self.lines += 1;
        let mut out = Ingested::default();
        let at = match self.source_index.get(&rec.group) {
            Some(&at) => at,
            None => self.add_source(&rec.group),
        };
        let Some(src) = self.sources.get_mut(at) else {
            return out;
        };
        src.events += 1;
        src.newest_event_ms = src.newest_event_ms.max(rec.ts_ms);
        src.lag_ms = (rec.arrival_ms - rec.ts_ms).max(0);
        src.typical_lag_ms += LAG_ALPHA * (src.lag_ms as f64 - src.typical_lag_ms);
        src.count(now);
        let parsed = match self.parser.parse(&rec) {
            Ok(Some(p)) => p,
            // A header line (it configured its source's format): nothing to score.
            Ok(None) => return out,
            Err(e) => {
                self.rejected += 1;
                src.rejected += 1;
                let msg = SafeText::new(&e.to_string()).into_string();
                if src.rejected <= 10 || src.rejected.is_power_of_two() {
                    tracing::warn!(group = %rec.group, rejected = src.rejected, line = %rec.text, "rejected line: {msg}");
                }
                src.last_error = Some(msg);
                out.rejected = true;
                self.push_tail(&rec, Level::Warn, TemplateId::MAX, 0.0);
                return out;
            }
        };
        let body = rec.text.as_str().get(parsed.body_start..).unwrap_or("");
        let template = self.miner.mine(body);
        let mut obs = std::mem::take(&mut self.scratch);
        obs.clear();
        self.extractor.observe(&rec, &parsed, &mut obs);
        let first_of_template = self.miner.count(template) == 1;
        let miner = &self.miner;
        let minute = rec.ts_ms.div_euclid(60_000);
        src.window
            .observe(minute, template, parsed.level, first_of_template);
        let novel = src.novelty.observe(
            miner.canonical(template),
            first_of_template,
            parsed.level,
            || miner.parameters(template, body),
        );
        if let Some(kind) = novel {
            let signal = match kind {
                Novel::Template => Signal::NewTemplate,
                Novel::Value => Signal::NewValue,
            };
            obs.push(signal, &rec.group, std::iter::empty(), 1.0, minute);
        }
        let mut line_score: f64 = 0.0;
        let base = self.opts.threshold;
        let learner = self.learner.as_ref().filter(|l| l.labels() > 0);
        // The line as the learner sees it, made only when a score needs the learner's word.
        let mut learned: Option<(String, Vec<f32>)> = None;
        for o in obs.as_slice() {
            let (mut s, forecast) = if o.signal == Signal::Metric {
                score_metric(&mut self.metrics, base, o, rec.ts_ms)
            } else {
                (self.detector.observe(o), None)
            };
            let failure = o.signal.class() == SignalClass::Failure;
            if failure
                && s.score > 0.0
                && let Some(ctx) = src.window.context_at(o.minute)
            {
                s.score = blend(s.score, ctx.score);
            }
            line_score = line_score.max(s.score);
            if s.score > 0.0
                && let Some(l) = learner
            {
                let (key, x) = learned.get_or_insert_with(|| {
                    let id = miner.canonical(template);
                    let text = miner.template(id);
                    let x =
                        crate::learn::features::line_features(&crate::learn::features::LineFacts {
                            score: 0.0,
                            level: parsed.level,
                            template: &text,
                            template_lines: miner.count(id),
                        });
                    (crate::learn::learner::template_key(&rec.group, &text), x)
                });
                if let Some(x0) = x.first_mut() {
                    *x0 = s.score as f32;
                }
                s.score = l.score(key, x);
            }
            src.score(now, s.score);
            if s.score >= base && failure {
                let bar = src.threshold.current(base, now);
                if s.score < bar
                    && !self
                        .tracker
                        .joins_open(o.signal, &o.entity, &o.links, o.minute, now)
                {
                    continue;
                }
                let context = src
                    .window
                    .evidence_between(o.minute - crate::ensemble::CONTEXT_REACH_MIN, o.minute);
                let Crossing {
                    incident,
                    new_incident,
                    ..
                } = self.tracker.hit(
                    Hit {
                        signal: o.signal,
                        entity: &o.entity,
                        links: &o.links,
                        group: &rec.group,
                        minute: o.minute,
                        score: s.score,
                        observed: s.observed,
                        expected: s.expected,
                        window_min: s.window_min,
                        sample: &rec.text,
                        template,
                        context: &context,
                        forecast,
                    },
                    now,
                );
                if new_incident {
                    src.threshold.opened(now, self.opts.alarms_per_hour);
                    let found = (incident as usize)
                        .checked_sub(1)
                        .and_then(|i| self.tracker.incidents.get(i));
                    if let Some(inc) = found {
                        tracing::info!(incident = inc.id, kind = inc.kind.label(), entity = %inc.main_entity, line = %rec.text, "incident opened");
                    }
                    out.new_incidents.push(incident);
                }
            }
        }
        self.scratch = obs;
        self.push_tail(&rec, parsed.level, template, line_score);
        out.scored = Some(ScoredLine {
            template,
            level: parsed.level,
            score: line_score,
        });
        out
    }

    fn push_tail(&mut self, rec: &Record, level: Level, template: TemplateId, score: f64) {
        if self.opts.tail_lines == 0 {
            return;
        }
        if self.tail.len() >= self.opts.tail_lines {
            self.tail.pop_front();
        }
        self.tail.push_back(TailLine {
            arrival_ms: rec.arrival_ms,
            group: rec.group.clone(),
            text: rec.text.clone(),
            level,
            template,
            score,
        });
    }

    /// What the operator said about an alarm from `group` that scored `score`: a "normal" label
    /// raises that source's bar above the score, an "anomaly" label lowers a raised bar.
    pub fn feedback(&mut self, group: &str, score: f64, normal: bool) {
        let (base, now) = (self.opts.threshold, self.clock_ms);
        let at = self.source_index.get(group).copied();
        if let Some(src) = at.and_then(|at| self.sources.get_mut(at)) {
            if normal {
                src.threshold.false_alarm(score, base, now);
            } else {
                src.threshold.true_alarm(now);
            }
        }
    }

    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    pub fn incidents(&self) -> &[Incident] {
        &self.tracker.incidents
    }

    /// The incident numbered `id` (1-based, as the console shows it).
    pub fn incident(&self, id: u64) -> Option<&Incident> {
        self.tracker.incidents.get((id as usize).checked_sub(1)?)
    }

    pub fn anomalies(&self) -> &[crate::incident::Anomaly] {
        &self.tracker.anomalies
    }

    /// The anomalies `inc` is made of, in the order they joined it.
    pub fn anomalies_of(&self, inc: &Incident) -> Vec<&crate::incident::Anomaly> {
        inc.anomalies
            .iter()
            .filter_map(|id| self.tracker.anomalies.get(*id as usize))
            .collect()
    }

    pub fn sources(&self) -> impl Iterator<Item = &SourceStats> {
        self.sources.iter()
    }

    /// Inserts a source in name order and returns its position.
    fn add_source(&mut self, group: &Arc<str>) -> usize {
        let at = self.sources.partition_point(|s| s.name.as_str() < &**group);
        self.sources
            .insert(at, SourceStats::new(group, self.opts.forest));
        self.source_index.clear();
        for (i, s) in self.sources.iter().enumerate() {
            self.source_index.insert(Arc::from(s.name.as_str()), i);
        }
        at
    }

    pub fn tail(&self) -> &VecDeque<TailLine> {
        &self.tail
    }

    pub fn template_text(&self, id: TemplateId) -> String {
        self.miner.template(id)
    }

    pub fn miner(&self) -> &Miner {
        &self.miner
    }

    pub fn template_count(&self) -> usize {
        self.miner.len()
    }

    pub fn series_count(&self) -> usize {
        self.detector.series_count()
    }
}

/// Scores a metric sample with its series' detector. The series detector decides at its own
/// threshold; its score is mapped so that threshold lands on the engine's, keeping one
/// meaning of "over the line" across the console. The expected value shown is the seasonal
/// forecast for this sample once there is one, the series' recent typical level before.
fn score_metric(
    metrics: &mut HashMap<String, MetricSeries>,
    engine_threshold: f64,
    o: &Observation,
    ts_ms: i64,
) -> (crate::detect::Score, Option<crate::forecast::Deviation>) {
    let m = metrics
        .entry(o.entity.clone())
        .or_insert_with(|| MetricSeries {
            detector: crate::series::Detector::new(crate::series::Config::default()),
            forecast: crate::forecast::Forecaster::new(),
            typical: o.value,
            samples: 0,
            first_ms: ts_ms,
        });
    m.samples += 1;
    let mut raw = m.detector.observe(ts_ms, o.value);
    let forecast = m.forecast.observe(o.value, m.detector.period_rows());
    // Until a series has two baselines behind it (two days at 5-minute steps), its own
    // extremes are not known yet and the detector judges fresh statistics against a fixed
    // floor (NAB scoring calls this the probationary period): scores show, nothing pages.
    // Nor does it page before it spans the days its daily-routine check compares against:
    // until then a routine peak cannot be told from an event.
    let cfg = m.detector.config();
    let routine_ms = cfg.season_days as i64 * 86_400_000;
    if m.samples < METRIC_WARMUP_BASELINES * cfg.baseline_rows || ts_ms - m.first_ms < routine_ms {
        raw = raw.min(crate::series::THRESHOLD * 0.98);
    }
    let expected = forecast.map_or(m.typical, |d| d.expected);
    m.typical += METRIC_TYPICAL_ALPHA * (o.value - m.typical);
    let t = engine_threshold;
    let half = crate::series::THRESHOLD;
    let score = if raw >= half {
        t + (1.0 - t) * (raw - half) / (1.0 - half)
    } else {
        raw / half * t * 0.98
    };
    let s = crate::detect::Score {
        score: score.clamp(0.0, 1.0),
        observed: o.value,
        expected,
        window_min: 0,
    };
    (s, forecast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: i64, text: &str) -> Record {
        let t = 1_700_000_000_000 + i * 1000;
        Record {
            arrival_ms: t,
            ts_ms: t,
            group: "app".into(),
            stream: "i-1".into(),
            text: SafeText::new(text),
        }
    }

    #[test]
    fn a_flood_of_new_kinds_of_line_scores_but_does_not_page_alone() {
        let mut e = Engine::new(EngineOptions::default());
        // Two hours of one routine line.
        for i in 0..7200 {
            e.ingest(line(i, &format!("GET /health 200 in {} ms", i % 7)));
        }
        assert!(e.tail().iter().all(|l| l.score < 0.1));
        // Then, within a minute, forty shapes the source never showed.
        let words = [
            "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
        ];
        for k in 0..40usize {
            let text = format!(
                "{} {} {} failed over to replica",
                words[k % 8],
                words[(k / 8) % 8],
                ["shard", "zone", "pool", "queue", "cache"][k % 5]
            );
            e.ingest(line(7200 + k as i64, &text));
        }
        let peak = e
            .tail()
            .iter()
            .rev()
            .take(40)
            .map(|l| l.score)
            .fold(0.0, f64::max);
        assert!(peak > 0.2, "the burst of new shapes is visible: {peak}");
        assert!(peak <= crate::detect::VOLUME_CAP);
        assert!(e.incidents().is_empty(), "novelty alone opens no incident");
    }
}
