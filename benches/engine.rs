//! Engine throughput on a simulated scenario: parse + template + window + detect + incident,
//! single thread, lines already in memory (what a replay of exported logs costs).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stormwatch::engine::{Engine, EngineOptions};
use stormwatch::record::{Interner, Record};
use stormwatch::sim::{SimConfig, generate};
use stormwatch::source::sim_to_record;

fn engine(c: &mut Criterion) {
    let scenario = generate(&SimConfig {
        seed: 3,
        baseline_hours: 1.0,
        ..SimConfig::default()
    });
    let mut names = Interner::default();
    let records: Vec<Record> = scenario
        .events
        .iter()
        .map(|e| sim_to_record(e, &mut names))
        .collect();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.sample_size(10);
    g.bench_function("ingest_demo_scenario", |b| {
        b.iter(|| {
            let mut e = Engine::new(EngineOptions {
                threshold: 0.7,
                tail_lines: 0,
                ..EngineOptions::default()
            });
            for r in records.iter().cloned() {
                e.ingest(r);
            }
            e.incidents().len()
        })
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
