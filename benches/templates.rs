//! Template miner alone and parse + template, one thread, on the simulated account's lines (the
//! loghub lines join with `stormwatch bench templates --loghub DIR`, since loghub is not shipped).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stormwatch::bench::corpus;
use stormwatch::parse::Parser;
use stormwatch::template::Miner;

fn templates(c: &mut Criterion) {
    let (records, _) = match corpus(None) {
        Ok(c) => c,
        Err(e) => panic!("corpus: {e}"),
    };
    let mut g = c.benchmark_group("templates");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.sample_size(10);
    g.bench_function("miner_alone", |b| {
        b.iter(|| {
            let mut m = Miner::new();
            for r in &records {
                std::hint::black_box(m.mine(r.text.as_str()));
            }
            m.len()
        })
    });
    g.bench_function("parse_and_template", |b| {
        b.iter(|| {
            let mut m = Miner::new();
            let mut p = Parser::new();
            for r in &records {
                if let Ok(Some(parsed)) = p.parse(r) {
                    std::hint::black_box(
                        m.mine(r.text.as_str().get(parsed.body_start..).unwrap_or("")),
                    );
                }
            }
            m.len()
        })
    });
    g.finish();
}

criterion_group!(benches, templates);
criterion_main!(benches);
