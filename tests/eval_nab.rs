//! `eval nab` on a NAB-layout directory the test writes: the documented JSON shape, a clear spike
//! inside its window detected, and `--emit` writing NAB's results layout (also without labels).

mod common;

use std::fmt::Write;

fn write_dir(root: &std::path::Path, with_labels: bool) {
    let data = root.join("data/realAWSCloudwatch");
    std::fs::create_dir_all(&data).unwrap();
    let mut csv = String::from("timestamp,value\n");
    let t0 = 1_392_388_200i64; // 2014-02-14 14:30:00
    for i in 0..2000i64 {
        // A daily-looking wave with deterministic jitter, and one large spike.
        let base = 50.0 + 10.0 * ((i as f64) * std::f64::consts::TAU / 288.0).sin();
        let jitter = ((i * 7919) % 13) as f64 * 0.3;
        let v = if (1500..1504).contains(&i) {
            400.0
        } else {
            base + jitter
        };
        let secs = t0 + i * 300;
        let (y, mo, d, h, mi, s, _) = stormwatch::timefmt::parts(secs * 1000);
        writeln!(csv, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{v}").unwrap();
    }
    std::fs::write(data.join("synthetic.csv"), csv).unwrap();
    if with_labels {
        std::fs::create_dir_all(root.join("labels")).unwrap();
        let at = |i: i64| {
            let (y, mo, d, h, mi, s, _) = stormwatch::timefmt::parts((t0 + i * 300) * 1000);
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.000000")
        };
        let windows = format!(
            "{{\"realAWSCloudwatch/synthetic.csv\": [[\"{}\", \"{}\"]]}}",
            at(1450),
            at(1550)
        );
        std::fs::write(root.join("labels/combined_windows.json"), windows).unwrap();
    }
}

#[test]
fn eval_nab_scores_and_emits() {
    let dir = tempfile::tempdir().unwrap();
    let nab = dir.path().join("nab");
    write_dir(&nab, true);
    let out = dir.path().join("out");
    let doc = common::json(&common::run(
        dir.path(),
        &[
            "eval",
            "nab",
            "--data",
            nab.to_str().unwrap(),
            "--json",
            "--emit",
            out.to_str().unwrap(),
        ],
    ));
    assert_eq!(doc["profile"], "standard");
    assert!(doc["threshold"].as_f64().is_some());
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["detected_windows"], 1, "{doc}");
    assert!(doc["aws_score"].as_f64().unwrap() > 50.0, "{doc}");
    let emitted =
        std::fs::read_to_string(out.join("stormwatch/realAWSCloudwatch/stormwatch_synthetic.csv"))
            .unwrap();
    let mut lines = emitted.lines();
    assert_eq!(lines.next(), Some("timestamp,value,anomaly_score,label"));
    assert_eq!(emitted.lines().count(), 2001);

    // Without labels: the same detections, scores null.
    let bare = dir.path().join("bare");
    write_dir(&bare, false);
    let doc = common::json(&common::run(
        dir.path(),
        &["eval", "nab", "--data", bare.to_str().unwrap(), "--json"],
    ));
    assert!(doc["aws_score"].is_null(), "{doc}");
}
