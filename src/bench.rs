//! `stormwatch bench templates`: throughput of the template miner alone and of parse + template,
//! one thread, on a mixed corpus (the simulated account's lines, plus loghub's when a directory is
//! given). Starts from empty state and never touches the store. The corpus can be written out so
//! another miner (Drain3, `benches/drain3_compare.sh`) runs on exactly the same lines.

use crate::parse::Parser;
use crate::record::{Interner, Record};
use crate::safe_text::SafeText;
use crate::sim::{SimConfig, generate};
use crate::source::sim_to_record;
use crate::template::Miner;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Lines per measured run: enough that one run takes a noticeable fraction of a second.
const TARGET_LINES: usize = 1_000_000;
const RUNS: usize = 3;

#[derive(Debug, Serialize)]
pub struct TemplatesBench {
    pub corpus_lines: usize,
    pub demo_lines: usize,
    pub loghub_lines: usize,
    pub lines_per_run: usize,
    /// Best of the runs, lines per second.
    pub miner_lines_per_s: f64,
    pub parse_template_lines_per_s: f64,
    pub templates: usize,
    /// On the simulated account's lines (which carry times and signals), repeated with shifted
    /// times: parse + template alone, and the whole engine (parse, template, window, detect,
    /// incident).
    pub demo_parse_template_lines_per_s: f64,
    pub engine_lines_per_s: f64,
    /// Time the detection stages add to parse + template, in percent.
    pub detection_overhead_pct: f64,
}

/// The simulated account's lines and, when `loghub` is given, every system's `Content` lines.
pub fn corpus(loghub: Option<&Path>) -> std::io::Result<(Vec<Record>, usize)> {
    let scenario = generate(&SimConfig {
        seed: 1,
        baseline_hours: 1.0,
        ..SimConfig::default()
    });
    let mut names = Interner::default();
    let mut out: Vec<Record> = scenario
        .events
        .iter()
        .map(|e| sim_to_record(e, &mut names))
        .collect();
    let demo = out.len();
    if let Some(dir) = loghub {
        for (name, path) in crate::eval::templates::systems(dir)? {
            let Ok(mut r) = csv::Reader::from_path(&path) else {
                continue;
            };
            let Some(col) = r
                .headers()
                .ok()
                .and_then(|h| h.iter().position(|c| c == "Content"))
            else {
                continue;
            };
            let group = names.get(&format!("loghub/{name}"));
            for row in r.records().flatten() {
                out.push(Record {
                    arrival_ms: 0,
                    ts_ms: 0,
                    group: group.clone(),
                    stream: group.clone(),
                    text: SafeText::new(row.get(col).unwrap_or("")),
                });
            }
        }
    }
    Ok((out, demo))
}

pub fn templates(
    loghub: Option<&Path>,
    write_corpus: Option<&Path>,
) -> std::io::Result<TemplatesBench> {
    let (corpus, demo_lines) = corpus(loghub)?;
    if let Some(path) = write_corpus {
        let text: String = corpus.iter().map(|r| format!("{}\n", r.text)).collect();
        std::fs::write(path, text)?;
    }
    let reps = TARGET_LINES.div_ceil(corpus.len().max(1));
    let lines = corpus.len() * reps;
    let mut best_miner = 0f64;
    let mut best_both = 0f64;
    let mut templates = 0;
    for _ in 0..RUNS {
        let mut miner = Miner::new();
        let t = Instant::now();
        for _ in 0..reps {
            for r in &corpus {
                std::hint::black_box(miner.mine(r.text.as_str()));
            }
        }
        best_miner = best_miner.max(lines as f64 / t.elapsed().as_secs_f64());
        templates = miner.len();

        let mut miner = Miner::new();
        let mut parser = Parser::new();
        let t = Instant::now();
        for _ in 0..reps {
            for r in &corpus {
                if let Ok(Some(p)) = parser.parse(r) {
                    let body = r.text.as_str().get(p.body_start..).unwrap_or("");
                    std::hint::black_box(miner.mine(body));
                }
            }
        }
        best_both = best_both.max(lines as f64 / t.elapsed().as_secs_f64());
    }
    let (demo_pt, engine, overhead) = detection_cost(&corpus[..demo_lines]);
    Ok(TemplatesBench {
        demo_parse_template_lines_per_s: demo_pt,
        engine_lines_per_s: engine,
        detection_overhead_pct: overhead,
        corpus_lines: corpus.len(),
        demo_lines,
        loghub_lines: corpus.len() - demo_lines,
        lines_per_run: lines,
        miner_lines_per_s: best_miner,
        parse_template_lines_per_s: best_both,
        templates,
    })
}

/// Paired runs of the cost comparison. The machine's speed drifts between runs (shared cores), so
/// each engine run is compared with the parse + template run just before it and the median of
/// those ratios is reported.
const COST_RUNS: usize = 11;

/// Best-of-runs lines/s of parse + template and of the whole engine over the same records, fed
/// the same way (each repetition shifted in time so the engine sees a continuing account, not the
/// same hour again), and the median added time of paired runs in percent.
fn detection_cost(demo: &[Record]) -> (f64, f64, f64) {
    if demo.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let first = demo.iter().map(|r| r.arrival_ms).min().unwrap_or(0);
    let last = demo.iter().map(|r| r.arrival_ms).max().unwrap_or(0);
    let span = last - first + 3_600_000;
    let reps = TARGET_LINES.div_ceil(demo.len());
    let lines = (demo.len() * reps) as f64;
    let shifted = |r: &Record, rep: usize| {
        let mut r = r.clone();
        r.arrival_ms += span * rep as i64;
        r.ts_ms += span * rep as i64;
        r
    };
    let (mut best_pt, mut best_engine) = (0f64, 0f64);
    let mut added = Vec::with_capacity(COST_RUNS);
    for _ in 0..COST_RUNS {
        let mut miner = Miner::new();
        let mut parser = Parser::new();
        let t = Instant::now();
        for rep in 0..reps {
            for r in demo {
                let r = shifted(r, rep);
                if let Ok(Some(p)) = parser.parse(&r) {
                    let body = r.text.as_str().get(p.body_start..).unwrap_or("");
                    std::hint::black_box(miner.mine(body));
                }
            }
        }
        let pt_s = t.elapsed().as_secs_f64();
        best_pt = best_pt.max(lines / pt_s);

        let mut engine = crate::engine::Engine::new(crate::engine::EngineOptions {
            tail_lines: 0,
            ..Default::default()
        });
        let t = Instant::now();
        for rep in 0..reps {
            for r in demo {
                std::hint::black_box(engine.ingest(shifted(r, rep)));
            }
        }
        let engine_s = t.elapsed().as_secs_f64();
        best_engine = best_engine.max(lines / engine_s);
        added.push((engine_s / pt_s - 1.0) * 100.0);
    }
    added.sort_by(f64::total_cmp);
    (best_pt, best_engine, added[added.len() / 2])
}

impl TemplatesBench {
    pub fn render(&self) -> String {
        format!(
            "corpus: {} lines ({} demo, {} loghub), {} lines per run, best of {RUNS}\n\
             miner alone:      {:>12.0} lines/s\n\
             parse + template: {:>12.0} lines/s\n\
             templates: {}\n\
             simulated account's lines: parse + template {:>10.0} lines/s, whole engine {:>10.0} lines/s\n\
             detection adds {:.1}% to parse + template (median of {COST_RUNS} paired runs)\n",
            self.corpus_lines,
            self.demo_lines,
            self.loghub_lines,
            self.lines_per_run,
            self.miner_lines_per_s,
            self.parse_template_lines_per_s,
            self.templates,
            self.demo_parse_template_lines_per_s,
            self.engine_lines_per_s,
            self.detection_overhead_pct
        )
    }
}
