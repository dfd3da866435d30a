//! `stormwatch eval demo`: the engine against the simulator's ground truth.
//!
//! Each seed's scenario runs through a fresh engine (no store, no shared state), exactly as the
//! console would see it, and only afterwards are its incidents compared with the truth. An
//! injected incident counts as detected when an engine incident overlaps its window and names its
//! main entity. An engine incident that matches no injected incident is a false incident; a
//! distractor overlapped by one is a flagged distractor.

use crate::engine::{Engine, EngineOptions};
use crate::incident::{CauseKind, Incident};
use crate::record::Interner;
use crate::sim::{self, GroundTruth, IncidentKind, SimConfig};
use crate::source::sim_to_record;
use serde::Serialize;

/// Slack around truth windows when matching, for late deliveries and the incident idle time.
const MATCH_SLACK_MS: i64 = 10 * 60_000;

#[derive(Debug, Clone, Serialize)]
pub struct KindResult {
    pub kind: IncidentKind,
    pub injected: u32,
    pub detected: u32,
    /// Detected with the right kind named, too.
    pub kind_named: u32,
    /// From the moment the evidence was available (see `TruthIncident::evidence_ms`) to the
    /// incident opening, in engine (arrival) time.
    pub median_time_to_detect_s: Option<f64>,
    pub max_time_to_detect_s: Option<f64>,
    /// From the first anomalous event's own time, delivery lag included.
    pub median_time_from_onset_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoEval {
    pub seeds: u32,
    pub baseline_hours: f64,
    pub simulated_hours: f64,
    pub kinds: Vec<KindResult>,
    /// Every incident the engine opened; above the injected count means incidents were split.
    pub engine_incidents: u32,
    pub false_incidents: u32,
    pub false_incidents_per_hour: f64,
    pub distractors: u32,
    pub distractors_flagged: u32,
    pub lines: u64,
    pub elapsed_s: f64,
    pub lines_per_s: f64,
}

/// What one seed produced, kept apart so seeds can run on several threads.
struct SeedOutcome {
    truth: GroundTruth,
    incidents: Vec<Incident>,
    lines: u64,
}

pub fn kind_of(k: IncidentKind) -> CauseKind {
    match k {
        IncidentKind::SshBruteForce => CauseKind::SshBruteForce,
        IncidentKind::LambdaTimeoutCascade => CauseKind::LambdaTimeoutCascade,
        IncidentKind::DiskFilling => CauseKind::DiskFilling,
        IncidentKind::LeakedAccessKey => CauseKind::LeakedAccessKey,
    }
}

fn run_seed(seed: u64, baseline_hours: f64, threshold: f64) -> SeedOutcome {
    let (truth, engine) = detect(
        &SimConfig {
            seed,
            baseline_hours,
            ..SimConfig::default()
        },
        threshold,
    );
    SeedOutcome {
        lines: engine.lines(),
        incidents: engine.incidents().to_vec(),
        truth,
    }
}

/// One scenario through a fresh engine, exactly as the console would see it.
pub(crate) fn detect(cfg: &SimConfig, threshold: f64) -> (GroundTruth, Engine) {
    let scenario = sim::generate(cfg);
    let mut engine = Engine::new(EngineOptions {
        threshold,
        tail_lines: 0,
        ..EngineOptions::default()
    });
    let mut names = Interner::default();
    for ev in &scenario.events {
        engine.ingest(sim_to_record(ev, &mut names));
    }
    engine.advance(scenario.truth.end_ms);
    (scenario.truth, engine)
}

/// `run` over every seed on up to `threads` threads; results in seed order.
pub(crate) fn per_seed<T: Send>(
    seeds: &[u64],
    threads: usize,
    run: impl Fn(u64) -> T + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, seeds.len().max(1));
    let run = &run;
    let mut out: Vec<(u64, T)> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<u64> = seeds.iter().copied().skip(t).step_by(threads).collect();
                scope.spawn(move || mine.into_iter().map(|s| (s, run(s))).collect::<Vec<_>>())
            })
            .collect();
        for h in handles {
            if let Ok(v) = h.join() {
                out.extend(v);
            }
        }
    });
    out.sort_by_key(|(s, _)| *s);
    out.into_iter().map(|(_, v)| v).collect()
}

fn overlaps(a0: i64, a1: i64, b0: i64, b1: i64) -> bool {
    a0 <= b1 && b0 <= a1
}

/// Runs `seeds` scenarios starting at `first_seed`, on up to `threads` threads.
pub fn demo(
    first_seed: u64,
    seeds: u32,
    baseline_hours: f64,
    threshold: f64,
    threads: usize,
) -> DemoEval {
    let started = std::time::Instant::now();
    let seed_list: Vec<u64> = (0..seeds as u64).map(|i| first_seed + i).collect();
    let outcomes = per_seed(&seed_list, threads, |s| {
        run_seed(s, baseline_hours, threshold)
    });
    score(outcomes, started)
}

fn score(outcomes: Vec<SeedOutcome>, started: std::time::Instant) -> DemoEval {
    // Per kind: injected, detected, kind named, seconds from evidence, seconds from onset.
    type Tally = (IncidentKind, u32, u32, u32, Vec<f64>, Vec<f64>);
    let mut kinds: Vec<Tally> = IncidentKind::ALL
        .iter()
        .map(|k| (*k, 0, 0, 0, Vec::new(), Vec::new()))
        .collect();
    let (mut false_incidents, mut distractors, mut flagged, mut engine_incidents) = (0, 0, 0, 0);
    let (mut sim_ms, mut base_ms, mut lines) = (0i64, 0i64, 0u64);
    for o in &outcomes {
        let t = &o.truth;
        sim_ms += t.end_ms - t.start_ms;
        base_ms += t.baseline_end_ms - t.start_ms;
        lines += o.lines;
        engine_incidents += o.incidents.len() as u32;
        let mut matched = vec![false; o.incidents.len()];
        for ti in &t.incidents {
            let slot = kinds.iter_mut().find(|k| k.0 == ti.kind);
            let Some(slot) = slot else { continue };
            slot.1 += 1;
            let mut hit: Option<&Incident> = None;
            for (i, inc) in o.incidents.iter().enumerate() {
                let in_window = overlaps(
                    inc.first_event_ms,
                    inc.last_event_ms,
                    ti.onset_ms,
                    ti.end_ms + MATCH_SLACK_MS,
                );
                if !in_window {
                    continue;
                }
                if ti.entities.iter().any(|e| inc.keys.contains(e))
                    || inc.main_entity == ti.main_entity
                {
                    matched[i] = true;
                }
                if inc.main_entity == ti.main_entity
                    && hit.is_none_or(|h| inc.opened_ms < h.opened_ms)
                {
                    hit = Some(inc);
                }
            }
            if let Some(h) = hit {
                slot.2 += 1;
                if h.kind == kind_of(ti.kind) {
                    slot.3 += 1;
                }
                let since = |t: i64| ((h.opened_ms - t) as f64 / 1000.0).max(0.0);
                slot.4.push(since(ti.evidence_ms.max(ti.onset_ms)));
                slot.5.push(since(ti.onset_ms));
            }
        }
        let false_ones: Vec<&Incident> = o
            .incidents
            .iter()
            .zip(&matched)
            .filter(|(_, m)| !**m)
            .map(|(i, _)| i)
            .collect();
        false_incidents += false_ones.len() as u32;
        for d in &t.distractors {
            distractors += 1;
            if false_ones.iter().any(|i| {
                overlaps(
                    i.first_event_ms,
                    i.last_event_ms,
                    d.start_ms,
                    d.end_ms + MATCH_SLACK_MS,
                )
            }) {
                flagged += 1;
            }
        }
    }
    let simulated_hours = sim_ms as f64 / 3_600_000.0;
    let elapsed_s = started.elapsed().as_secs_f64();
    DemoEval {
        seeds: outcomes.len() as u32,
        baseline_hours: base_ms as f64 / 3_600_000.0,
        simulated_hours,
        kinds: kinds
            .into_iter()
            .map(
                |(kind, injected, detected, kind_named, mut ttd, mut from_onset)| KindResult {
                    kind,
                    injected,
                    detected,
                    kind_named,
                    median_time_to_detect_s: median(&mut ttd),
                    max_time_to_detect_s: ttd.iter().copied().reduce(f64::max),
                    median_time_from_onset_s: median(&mut from_onset),
                },
            )
            .collect(),
        engine_incidents,
        false_incidents,
        false_incidents_per_hour: if simulated_hours > 0.0 {
            false_incidents as f64 / simulated_hours
        } else {
            0.0
        },
        distractors,
        distractors_flagged: flagged,
        lines,
        elapsed_s,
        lines_per_s: lines as f64 / elapsed_s.max(1e-9),
    }
}

fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

impl DemoEval {
    /// Human summary for stderr / stdout without `--json`.
    pub fn render(&self) -> String {
        let mut s = format!(
            "demo evaluation: {} seeds, {:.1} h baseline, {:.1} h simulated, {} lines in {:.1} s ({:.0} lines/s)\n",
            self.seeds,
            self.baseline_hours,
            self.simulated_hours,
            self.lines,
            self.elapsed_s,
            self.lines_per_s
        );
        s.push_str(&format!(
            "{:<26} {:>8} {:>8} {:>10} {:>12} {:>9} {:>11}\n",
            "kind", "injected", "detected", "kind named", "median TTD", "max TTD", "from onset"
        ));
        for k in &self.kinds {
            s.push_str(&format!(
                "{:<26} {:>8} {:>8} {:>10} {:>12} {:>9} {:>11}\n",
                k.kind.label(),
                k.injected,
                k.detected,
                k.kind_named,
                k.median_time_to_detect_s
                    .map_or("-".to_string(), |t| format!("{t:.0} s")),
                k.max_time_to_detect_s
                    .map_or("-".to_string(), |t| format!("{t:.0} s")),
                k.median_time_from_onset_s
                    .map_or("-".to_string(), |t| format!("{t:.0} s"))
            ));
        }
        s.push_str(&format!(
            "time to detect counts from when the evidence was available (CloudTrail delivery lag excluded)\nengine incidents: {}; false incidents: {} ({:.3} per simulated hour); distractors flagged: {} of {}\n",
            self.engine_incidents,
            self.false_incidents,
            self.false_incidents_per_hour,
            self.distractors_flagged,
            self.distractors
        ));
        s
    }
}
