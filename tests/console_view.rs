//! The console's view and label flow, driven through `App` and rendered with ratatui's
//! `TestBackend`: a snapshot of the demo's first incident, and hostile text staying inert on the
//! screen, in the store and in the log file.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;
use stormwatch::engine::{Engine, EngineOptions};
use stormwatch::record::{Interner, Record};
use stormwatch::safe_text::SafeText;
use stormwatch::sim::{SimConfig, generate};
use stormwatch::source::sim_to_record;
use stormwatch::store::{self, LabelValue};
use stormwatch::ui::app::{Action, App, Focus};
use stormwatch::ui::view;

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| view::draw(f, app)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn app_for(engine: Engine) -> App {
    let mut app = App::new(engine, "demo · seed 7".into(), "test".into());
    app.color = false;
    app
}

#[test]
fn demo_first_incident_screen() {
    let scenario = generate(&SimConfig {
        seed: 7,
        baseline_hours: 2.0,
        ..SimConfig::default()
    });
    let first = scenario
        .truth
        .incidents
        .iter()
        .map(|i| i.onset_ms)
        .min()
        .unwrap();
    let mut engine = Engine::new(EngineOptions::default());
    let mut names = Interner::default();
    for ev in scenario
        .events
        .iter()
        .take_while(|e| e.arrival_ms < first + 10 * 60_000)
    {
        engine.ingest(sim_to_record(ev, &mut names));
    }
    let app = app_for(engine);
    let first_incident = app
        .engine
        .incidents()
        .first()
        .expect("an incident within 10 min of onset");
    assert!(first_incident.opened_ms - first <= 10 * 60_000);
    insta::assert_snapshot!(screen(&app, 140, 44));
}

#[test]
fn help_screen_lists_the_keys() {
    let mut app = app_for(Engine::new(EngineOptions::default()));
    app.update(Action::ToggleHelp, 0);
    let s = screen(&app, 100, 30);
    for (key, _) in view::HELP {
        assert!(s.contains(key), "help lacks {key}");
    }
}

/// An SSH brute force whose user names carry terminal escapes, bidi overrides, NUL and invalid UTF-8.
fn hostile_records() -> Vec<Record> {
    let mut names = Interner::default();
    let group = names.get("/ec2/var/log/secure");
    let stream: Arc<str> = names.get("i-0123456789abcdef0");
    let t0 = 1_795_392_000_000i64;
    let mut out = Vec::new();
    for i in 0..240 {
        let ts = t0 + i * 1_000;
        let mut raw = format!(
            "Nov 23 00:{:02}:{:02} ip-10-0-1-5 sshd[77]: Failed password for ",
            i / 60,
            i % 60
        )
        .into_bytes();
        raw.extend_from_slice(b"ev\x1b]52;c;cm0gLXJmIH4=\x07il\x1b[2J\0\xff\xfe");
        raw.extend_from_slice("\u{202e}nimda".as_bytes());
        raw.extend_from_slice(b" from 45.83.12.7 port 41022 ssh2");
        out.push(Record {
            arrival_ms: ts,
            ts_ms: ts,
            group: group.clone(),
            stream: stream.clone(),
            text: SafeText::from_bytes(&raw),
        });
    }
    out
}

fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| panic!("{what}: not UTF-8"));
    for bad in ['\u{1b}', '\u{7}', '\0', '\u{202e}', '\u{fffd}'] {
        assert!(!text.contains(bad), "{what} contains {bad:?}");
    }
    assert!(
        text.contains("\\x1b]52;c;"),
        "{what} does not show the escape visibly"
    );
    assert!(
        text.contains("\\u{202e}"),
        "{what} does not show the bidi override visibly"
    );
    assert!(
        text.contains("\\xff\\xfe"),
        "{what} does not show the invalid bytes visibly"
    );
}

#[test]
fn hostile_text_is_inert_on_screen_in_store_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let guard = stormwatch::logging::init(dir.path()).unwrap();
    let mut engine = Engine::new(EngineOptions::default());
    for r in hostile_records() {
        engine.ingest(r);
    }
    // A broken CloudTrail event with the same payload is rejected, counted and logged.
    let broken = SafeText::from_bytes(
        b"{\"eventSource\": \"\x1b]52;c;cm0gLXJmIH4=\x07\0\xff\xfe\xe2\x80\xae\"",
    );
    let out = engine.ingest(Record {
        arrival_ms: 1_795_392_300_000,
        ts_ms: 1_795_392_300_000,
        group: "aws-cloudtrail-logs-1".into(),
        stream: "1_CloudTrail_us-east-1".into(),
        text: broken,
    });
    assert!(out.rejected);
    assert_eq!(engine.rejected(), 1);
    let inc = engine
        .incidents()
        .first()
        .expect("the burst is an incident")
        .clone();
    assert_eq!(inc.main_entity, "45.83.12.7");

    let mut app = app_for(engine);
    app.focus = Focus::Tail;
    let s = screen(&app, 200, 50);
    assert_inert("screen", s.as_bytes());

    // Label it through the same path the console uses, and read the row back from the file.
    app.focus = Focus::Incidents;
    let (target, label) = app.update(Action::Label(LabelValue::Anomaly), 1).unwrap();
    let (store, writer) = store::open(dir.path()).unwrap();
    let row = store.save_label_blocking(label).unwrap();
    app.label_result(target, LabelValue::Anomaly, Ok(row));
    assert!(app.status.contains("saved"));
    let reader = store::reader(dir.path()).unwrap();
    let (evidence, entity): (Vec<u8>, String) = reader
        .query_row(
            "SELECT CAST(evidence AS BLOB), entity FROM labels WHERE id = ?1",
            [row],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(entity, "45.83.12.7");
    assert_inert("store", &evidence);
    drop(store);
    writer.join();

    drop(guard);
    let log = std::fs::read(dir.path().join(stormwatch::logging::LOG_FILE)).unwrap();
    assert!(!log.is_empty());
    assert_inert("log file", &log);
}

#[test]
fn sources_pane_shows_the_live_readers_counters() {
    let mut engine = Engine::new(EngineOptions::default());
    let mut names = Interner::default();
    for i in 0..30 {
        engine.ingest(Record {
            arrival_ms: 1_700_000_000_000 + i * 1000,
            ts_ms: 1_700_000_000_000 + i * 1000 - 2000,
            group: names.get("/ec2/var/log/secure"),
            stream: names.get("i-0abc"),
            text: SafeText::new(&format!(
                "Nov 14 22:13:{:02} ip-10-0-1-5 sshd[4242]: Accepted publickey for ec2-user from 10.0.0.9 port 5{i:04} ssh2",
                i % 60
            )),
        });
    }
    let mut app = app_for(engine);
    let counter =
        |group: &str, events, backfilled, dups, sampled, errors, last_error: Option<&str>| {
            stormwatch::tail::GroupCounters {
                group: group.into(),
                events,
                duplicates_dropped: dups,
                calls: 12,
                errors,
                last_error: last_error.map(str::to_string),
                newest_ms: if events > 0 { 1_700_000_027_000 } else { 0 },
                mode: "live",
                backfilled,
                sampled_updates: sampled,
                ..Default::default()
            }
        };
    app.feeds = Some(stormwatch::tail::FeedStatus {
        as_of_ms: 1_700_000_100_000,
        groups: vec![
            counter("/ec2/var/log/secure", 30, 12, 4, 2, 0, None),
            counter(
                "/aws/lambda/orders",
                0,
                0,
                0,
                0,
                3,
                Some("ThrottlingException: Rate exceeded"),
            ),
        ],
        live_tail_minutes: Some(7),
    });
    let s = screen(&app, 140, 30);
    assert!(s.contains("Sources · Live Tail 7 min"), "{s}");
    for col in ["bf", "err", "4 dup dropped", "2 sampled"] {
        assert!(s.contains(col), "{col}: {s}");
    }
    // A sampled group is marked; a group that only fails still has a row.
    assert!(
        s.contains("~/ec2/var/log/secure") || s.contains("~…"),
        "{s}"
    );
    assert!(s.contains("lambda/orders"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn label_queue_screen() {
    let scenario = generate(&SimConfig {
        seed: 7,
        baseline_hours: 2.0,
        ..SimConfig::default()
    });
    let mut engine = Engine::new(EngineOptions::default());
    let mut names = Interner::default();
    for ev in scenario.events.iter().take(20_000) {
        engine.ingest(sim_to_record(ev, &mut names));
    }
    let mut app = app_for(engine);
    app.update(Action::ToggleQueue, 0);
    assert_eq!(app.focus, Focus::Tail);
    let s = screen(&app, 140, 44);
    assert!(s.contains("Label queue"), "{s}");
    // One line per template: no template is asked about twice.
    let templates: std::collections::HashSet<&str> = app
        .learning
        .queue
        .iter()
        .map(|q| q.template.as_str())
        .collect();
    assert_eq!(templates.len(), app.learning.queue.len());
    insta::assert_snapshot!(s);
}
