//! End to end, as an operator would: the real binary in a real terminal (tmux), default settings,
//! no AWS credentials. The demo console must show its panes and an incident row within 10
//! simulated minutes of the first injected incident; `a` labels it, `q` quits, and the label is in
//! the SQLite file.

mod common;

use std::time::{Duration, Instant};
use stormwatch::config::Config;
use stormwatch::sim::{SimConfig, generate};

fn hms_to_ms(day_start: i64, hms: &str) -> Option<i64> {
    let mut it = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (it.next()??, it.next()??, it.next()??);
    Some(day_start + ((h * 60 + m) * 60 + s) * 1000)
}

#[test]
fn demo_console_shows_an_incident_and_saves_a_label() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tmux = common::Tmux {
        socket: format!("stormwatch-e2e-{}", std::process::id()),
    };
    tmux.start(
        &[
            format!("STORMWATCH_DATA_DIR={}", data.display()),
            format!("XDG_CONFIG_HOME={}", dir.path().join("config").display()),
            "AWS_ACCESS_KEY_ID=".into(),
            "AWS_SECRET_ACCESS_KEY=".into(),
            "AWS_PROFILE=stormwatch-e2e-none".into(),
        ],
        &[common::bin().to_string()],
    );

    let screen = tmux.wait_for("the console panes", Duration::from_secs(30), |s| {
        ["Sources", "Score", "Incidents", "Tail"]
            .iter()
            .all(|p| s.contains(p))
    });
    assert!(screen.contains("demo · seed"), "{screen}");

    // The first incident row: "│#1   HH:MM:SS ...".
    let screen = tmux.wait_for("an incident row", Duration::from_secs(60), |s| {
        s.contains("│#1 ")
    });
    let row = screen
        .lines()
        .find(|l| l.contains("│#1 "))
        .unwrap()
        .to_string();
    let names = [
        "SSH brute force",
        "Lambda timeout cascade",
        "EC2 disk filling up",
        "Leaked access key",
    ];
    assert!(
        names.iter().any(|n| row.contains(n)),
        "row names no kind: {row}"
    );

    // Opened within 10 simulated minutes of the first injected onset (same default scenario).
    let cfg = Config::default();
    let truth = generate(&SimConfig {
        seed: cfg.demo.seed,
        baseline_hours: cfg.demo.baseline_hours,
        ..SimConfig::default()
    })
    .truth;
    let onset = truth.incidents.iter().map(|i| i.onset_ms).min().unwrap();
    let opened = row
        .split_whitespace()
        .find_map(|w| hms_to_ms(onset - onset.rem_euclid(86_400_000), w.trim_matches('│')))
        .expect("opened time in the row");
    assert!(
        opened - onset <= 10 * 60_000,
        "first incident shown {} s after its onset",
        (opened - onset) / 1000
    );

    tmux.cmd(&["send-keys", "-t", "sw", "a"]);
    tmux.wait_for("the label to be saved", Duration::from_secs(10), |s| {
        s.contains("saved for incident #")
    });
    // The top suggestion: y opens the popup on Cancel, so Enter runs nothing; Tab Enter confirms,
    // and the demo's simulated account answers.
    tmux.cmd(&["send-keys", "-t", "sw", "y"]);
    tmux.wait_for("the confirm popup", Duration::from_secs(10), |s| {
        s.contains("Confirm action") && s.contains("[ Cancel ]")
    });
    tmux.cmd(&["send-keys", "-t", "sw", "Enter"]);
    tmux.wait_for("the cancel", Duration::from_secs(10), |s| {
        s.contains("cancelled: nothing was run")
    });
    tmux.cmd(&["send-keys", "-t", "sw", "y"]);
    tmux.wait_for("the confirm popup again", Duration::from_secs(10), |s| {
        s.contains("Confirm action")
    });
    tmux.cmd(&["send-keys", "-t", "sw", "Tab"]);
    tmux.cmd(&["send-keys", "-t", "sw", "Enter"]);
    tmux.wait_for("the simulated run", Duration::from_secs(10), |s| {
        s.contains("simulated, no AWS call")
    });
    tmux.cmd(&["send-keys", "-t", "sw", "q"]);
    let start = Instant::now();
    while tmux.cmd(&["has-session", "-t", "sw"]).status.success() {
        assert!(start.elapsed() < Duration::from_secs(10), "q did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }

    let db = stormwatch::store::reader(&data).unwrap();
    let (n, kind, label): (i64, String, String) = db
        .query_row(
            "SELECT count(*), max(target_kind), max(label) FROM labels",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (n, kind.as_str(), label.as_str()),
        (1, "incident", "anomaly")
    );
    let incidents: i64 = db
        .query_row("SELECT count(*) FROM incidents", [], |r| r.get(0))
        .unwrap();
    assert!(incidents >= 1);
    // One approval, written before its request and response; nothing ran for the cancel.
    let events: Vec<String> = db
        .prepare("SELECT event FROM audit WHERE event != 'suggested' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events, ["approved", "request", "response"]);
    // The mined templates were saved for the next run.
    let state = stormwatch::store::load_miner(&data)
        .unwrap()
        .expect("templates saved at exit");
    let miner = stormwatch::template::Miner::from_json(&state).unwrap();
    assert!(miner.len() > 10, "{} templates", miner.len());
}
