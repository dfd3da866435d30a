//! Learning from labels through the binary: `eval learning` on a self-labelled log this test
//! writes, `labels export`/`import` round trips, and `learn status` on imported labels.

mod common;

use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;

/// A BlueGene-like log in loghub's layout, made here: each line starts with its alert tag (`-`
/// normal), then epoch seconds. Alerts come in bursts; some FATAL and ERROR lines are normal and
/// one alert kind is logged at INFO, so neither the level nor novelty alone decides.
fn write_labelled_log(path: &Path) -> (usize, usize) {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let normal = [
        "RAS KERNEL INFO instruction cache parity error corrected",
        "RAS KERNEL INFO {n} double-hummer alignment exceptions",
        "RAS KERNEL INFO CE sym {n}, at 0x{h}, mask 0x{h}",
        "RAS APP INFO job {n} started on partition R{n}",
        "RAS APP INFO job {n} finished in {n} seconds",
        "RAS MMCS ERROR idoproxy communication failure: socket closed",
        "RAS KERNEL FATAL generating core.{n}",
        "RAS DISCOVERY WARNING node card R{n} is not fully functional",
    ];
    let alerts = [
        ("KERNDTLB", "RAS KERNEL FATAL data TLB error interrupt"),
        ("KERNSTOR", "RAS KERNEL FATAL data storage interrupt"),
        (
            "APPSEV",
            "RAS APP FATAL ciod: Error reading message prefix after LOGIN_MESSAGE on CioStream socket to 10.{n}.{n}.{n}:{n}",
        ),
        (
            "KERNMNTF",
            "RAS KERNEL FATAL Lustre mount FAILED : bglio{n} : block_id : location",
        ),
        (
            "KERNTERM",
            "RAS KERNEL FATAL rts: kernel terminated for reason {n}",
        ),
        (
            "KERNREC",
            "RAS KERNEL INFO Error receiving packet on tree network, expecting type 57 instead of type {n}",
        ),
    ];
    let fill = |t: &str, next: &mut dyn FnMut(u64) -> u64| {
        let mut out = String::new();
        let mut rest = t;
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let end = rest[at..].find('}').map_or(rest.len(), |e| at + e + 1);
            match &rest[at..end] {
                "{h}" => write!(out, "{:08x}", next(u64::from(u32::MAX))).unwrap(),
                _ => write!(out, "{}", next(5000)).unwrap(),
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    };
    let mut text = String::new();
    let (mut lines, mut alert_lines) = (0, 0);
    let mut t = 1_117_838_570u64;
    let mut burst: Option<(usize, u64)> = None;
    for _ in 0..1600 {
        t += next(40);
        if burst.is_none() && next(100) < 1 {
            burst = Some((next(alerts.len() as u64) as usize, 3 + next(12)));
        }
        let node = format!(
            "R{:02}-M{}-N{}-C:J{:02}-U{:02}",
            next(64),
            next(2),
            next(16),
            next(18),
            next(12)
        );
        let (tag, body) = match burst {
            Some((k, left)) => {
                burst = (left > 1).then_some((k, left - 1));
                (alerts[k].0, fill(alerts[k].1, &mut next))
            }
            None => (
                "-",
                fill(normal[next(normal.len() as u64) as usize], &mut next),
            ),
        };
        writeln!(
            text,
            "{tag} {t} 2005.06.03 {node} 2005-06-03-15.42.50.675872 {node} {body}"
        )
        .unwrap();
        lines += 1;
        alert_lines += usize::from(tag != "-");
    }
    std::fs::write(path, text).unwrap();
    (lines, alert_lines)
}

#[test]
fn queue_labels_beat_unsupervised_and_random_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (lines, alerts) = write_labelled_log(&data.join("HPC_synthetic.log"));
    let v = common::json(&common::run(
        dir.path(),
        &[
            "eval",
            "learning",
            "--data",
            data.to_str().unwrap(),
            "--json",
        ],
    ));
    eprintln!("{v}");
    assert_eq!(v["lines"], lines);
    assert_eq!(v["anomalies"], alerts);
    for key in ["f1_queue", "f1_random"] {
        for budget in ["10", "25", "50", "100"] {
            let f = v[key][budget].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&f), "{key}[{budget}] = {f}");
        }
    }
    let unsupervised = v["f1_unsupervised"].as_f64().unwrap();
    let queue_50 = v["f1_queue"]["50"].as_f64().unwrap();
    assert!(queue_50 > unsupervised, "{v}");
    for budget in ["25", "50", "100"] {
        assert!(
            v["f1_queue"][budget].as_f64() >= v["f1_random"][budget].as_f64(),
            "queue behind random at {budget}: {v}"
        );
    }
    // Evaluation never touches the store.
    assert!(!dir.path().join("stormwatch.db").exists());
}

fn label(ms: i64, id: &str, value: &str, template: &str, word: usize) -> Value {
    let mut x = vec![0.0f32; stormwatch::learn::features::DIMS];
    x[1] = 3.0;
    x[4 + word] = 1.0;
    json!({
        "created_ms": ms, "session": "teammate", "target_kind": "line", "target_id": id,
        "label": value, "source": "/aws/lambda/orders", "note": "seen in last week's incident",
        "features": {"x": x, "template": template},
    })
}

#[test]
fn labels_round_trip_between_stores_and_teach_learn_status() {
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<Value> = (0..24)
        .map(|i| {
            let anomaly = i % 3 == 0;
            label(
                1_700_000_000_000 + i,
                &format!("line-{i}"),
                if anomaly { "anomaly" } else { "normal" },
                &format!("t{}", i % 6),
                usize::from(anomaly),
            )
        })
        .collect();
    let doc = json!({"format": "stormwatch-labels", "version": 1, "labels": labels});
    let file = dir.path().join("labels.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let file = file.to_str().unwrap();

    let v = common::json(&common::run(
        dir.path(),
        &["labels", "import", file, "--json"],
    ));
    assert_eq!(
        (v["read"].as_u64(), v["imported"].as_u64()),
        (Some(24), Some(24))
    );
    let again = common::json(&common::run(
        dir.path(),
        &["labels", "import", file, "--json"],
    ));
    assert_eq!(again["imported"], 0, "importing twice must change nothing");
    assert_eq!(again["already_present"], 24);

    let exported = common::json(&common::run(dir.path(), &["labels", "export", "--json"]));
    assert_eq!(exported["format"], "stormwatch-labels");
    let rows = exported["labels"].as_array().unwrap();
    assert_eq!(rows.len(), 24);
    assert_eq!(rows[0]["note"], "seen in last week's incident");
    assert_eq!(rows[0]["features"]["template"], "t0");

    // A second store takes the export as it is.
    let other = tempfile::tempdir().unwrap();
    let path = other.path().join("from-export.json");
    std::fs::write(&path, exported.to_string()).unwrap();
    let v = common::json(&common::run(
        other.path(),
        &["labels", "import", path.to_str().unwrap(), "--json"],
    ));
    assert_eq!(v["imported"], 24);

    let status = common::json(&common::run(dir.path(), &["learn", "status", "--json"]));
    assert_eq!(status["labels"], 24);
    assert_eq!(status["anomaly"], 8);
    assert_eq!(status["trainable"], 24);
    assert!(status["folds"].as_u64().unwrap() >= 3, "{status}");
    assert_eq!(status["f1"], 1.0, "{status}");
    assert_eq!(status["suppressed_templates"], 4);
    assert_eq!(status["suppressed"].as_array().map(Vec::len), Some(4));
}

#[test]
fn a_bad_labels_document_imports_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = label(1, "ok", "anomaly", "t", 0);
    bad["target_kind"] = json!("\u{1b}[31mcommand");
    let doc = json!({"format": "stormwatch-labels", "version": 1,
        "labels": [label(0, "first", "normal", "t", 0), bad]});
    let file = dir.path().join("bad.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = common::run(dir.path(), &["labels", "import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown target_kind") && err.contains("nothing was imported"),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "escape reached the terminal: {err:?}"
    );
    let exported = common::json(&common::run(dir.path(), &["labels", "export", "--json"]));
    assert_eq!(exported["labels"].as_array().unwrap().len(), 0);
}

/// The demo's SSH brute force, replayed twice: once as is, once after the operator labelled the
/// failed-login line's template normal in the queue. The label suppresses the template: its lines
/// no longer open that incident.
#[test]
fn a_normal_label_on_a_template_suppresses_its_incident() {
    use std::sync::Arc;
    use stormwatch::engine::{Engine, EngineOptions};
    use stormwatch::learn::features::{LineFacts, line_features};
    use stormwatch::learn::learner::{Example, Learner, template_key};
    use stormwatch::record::Interner;
    use stormwatch::sim::{SimConfig, generate};
    use stormwatch::source::sim_to_record;

    let scenario = generate(&SimConfig {
        seed: 7,
        baseline_hours: 2.0,
        ..SimConfig::default()
    });
    let run = |learner: Option<Arc<Learner>>| {
        let mut engine = Engine::new(EngineOptions {
            tail_lines: 0,
            ..EngineOptions::default()
        });
        if let Some(l) = learner {
            engine.set_learner(l);
        }
        let mut names = Interner::default();
        for ev in &scenario.events {
            engine.ingest(sim_to_record(ev, &mut names));
        }
        engine
    };
    let plain = run(None);
    let ssh = |e: &Engine| {
        e.anomalies()
            .iter()
            .filter(|a| a.signal == stormwatch::window::Signal::SshAuthFailure)
            .count()
    };
    let brute = plain
        .anomalies()
        .iter()
        .find(|a| a.signal == stormwatch::window::Signal::SshAuthFailure)
        .expect("the demo's brute force opens an SSH anomaly");
    let mut learner = Learner::new(plain.threshold());
    let miner = plain.miner();
    for id in brute.templates.keys() {
        let text = miner.template(miner.canonical(*id));
        learner.add(Example {
            template: template_key(&brute.group, &text),
            features: line_features(&LineFacts {
                score: brute.peak_score,
                level: stormwatch::parse::Level::Warn,
                template: &text,
                template_lines: miner.count(*id),
            }),
            anomaly: false,
        });
    }
    learner.retrain();
    let taught = run(Some(Arc::new(learner)));
    eprintln!(
        "SSH anomalies before the label: {}, after: {}",
        ssh(&plain),
        ssh(&taught)
    );
    assert!(ssh(&plain) > 0);
    assert!(
        ssh(&taught) < ssh(&plain),
        "SSH anomalies: {} before the label, {} after",
        ssh(&plain),
        ssh(&taught)
    );
}
