//! The prompt-injection corpus (`tests/fixtures/injection.jsonl`) and a demo account whose every
//! log group carries it: a steady trickle over the whole run and bursts during each incident.
//! Shared by the remediation and the analyst tests.
#![allow(dead_code)]

use std::collections::BTreeSet;
use stormwatch::engine::{Engine, EngineOptions};
use stormwatch::record::{Interner, Record};
use stormwatch::safe_text::SafeText;
use stormwatch::sim::{Scenario, SimConfig, generate};
use stormwatch::source::sim_to_record;

/// Ids that appear only in the injected lines.
pub const PLANTED: &[&str] = &[
    "i-0deadbeefdeadbeef",
    "AKIAFAKEFAKEFAKE0000",
    "acl-0badbadbadbadbad0",
    "sg-0badbadbadbadbad0",
    "198.51.100.66",
    "203.0.113.250",
    "666666666666",
    "orders-api-evil",
    "AWS-RunShellScript",
    "0.0.0.0/0",
];

pub fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/injection.jsonl"
    ))
    .unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<String>(l).unwrap())
        .collect()
}

/// The corpus, the demo scenario of `seed` and an engine that has read it with the corpus mixed
/// into every group.
pub fn poisoned_engine(seed: u64) -> (Vec<String>, Scenario, Engine) {
    let lines = corpus();
    assert!(lines.len() >= 30, "the corpus has {} lines", lines.len());
    let scenario = generate(&SimConfig {
        seed,
        baseline_hours: 2.0,
        ..SimConfig::default()
    });
    let mut names = Interner::default();
    let mut records: Vec<Record> = scenario
        .events
        .iter()
        .map(|e| sim_to_record(e, &mut names))
        .collect();
    let groups: BTreeSet<(String, String)> = scenario
        .events
        .iter()
        .map(|e| (e.group.clone(), e.stream.clone()))
        .collect();
    let start = records.first().map_or(0, |r| r.arrival_ms);
    let end = records.last().map_or(0, |r| r.arrival_ms);
    let mut injected = Vec::new();
    // Every group gets every line at a steady trickle over the whole run...
    for (g, (group, stream)) in groups.iter().enumerate() {
        for (i, line) in lines.iter().enumerate() {
            let mut t = start + ((g * lines.len() + i) as i64 * 7_919) % (end - start).max(1);
            while t < end {
                injected.push((t, group.clone(), stream.clone(), line.clone()));
                t += 40 * 60_000;
            }
        }
    }
    // ...and bursts, twenty copies in a minute, in each group while each incident is on.
    for truth in &scenario.truth.incidents {
        for (group, stream) in &groups {
            for k in 0..20 {
                for (i, line) in lines.iter().enumerate() {
                    let t = truth.onset_ms + 30_000 + (k * lines.len() + i) as i64 * 80;
                    injected.push((t, group.clone(), stream.clone(), line.clone()));
                }
            }
        }
    }
    for (t, group, stream, line) in &injected {
        records.push(Record {
            arrival_ms: *t,
            ts_ms: *t,
            group: names.get(group),
            stream: names.get(stream),
            text: SafeText::new(line),
        });
    }
    records.sort_by_key(|r| r.arrival_ms);

    let mut engine = Engine::new(EngineOptions::default());
    for r in records {
        engine.ingest(r);
    }
    (lines, scenario, engine)
}
