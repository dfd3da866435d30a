//! A metric source (CSV `timestamp,value`) goes through the same engine as logs: a daily-patterned
//! series with one two-hour surge opens exactly one incident, at the surge, naming the series; a
//! row that is not a sample is counted as rejected. The expected value shown is the seasonal
//! forecast for that time of day, not the surge's own level.

mod common;

use std::fmt::Write;

/// Six days of 5-minute samples: a daily wave plus noise, a surge on day six, one broken row.
fn write_series(path: &std::path::Path) -> (i64, i64) {
    let t0: i64 = 1_700_006_400; // 2023-11-15 00:00:00 UTC
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = || {
        // Sum of uniforms: roughly normal, deterministic.
        (0..4)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .sum::<f64>()
            * 2.0
    };
    let surge = (5 * 288 + 40)..(5 * 288 + 64);
    let mut csv = String::from("timestamp,value\n");
    for i in 0..6 * 288 {
        let ts = t0 + i as i64 * 300;
        let mut v = 40.0 + 15.0 * (2.0 * std::f64::consts::PI * i as f64 / 288.0).sin() + noise();
        if surge.contains(&i) {
            v += 45.0;
        }
        writeln!(
            csv,
            "{},{v:.2}",
            stormwatch::timefmt::iso(ts * 1000)
                .replace('T', " ")
                .trim_end_matches('Z')
                .split('.')
                .next()
                .unwrap()
        )
        .unwrap();
        if i == 500 {
            csv.push_str("2023-11-16 17:40:00,n/a\n");
        }
    }
    std::fs::write(path, csv).unwrap();
    (
        (t0 + surge.start as i64 * 300) * 1000,
        (t0 + surge.end as i64 * 300) * 1000,
    )
}

#[test]
fn a_metric_surge_opens_one_incident_on_the_logs_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rds_cpu.csv");
    let (from, to) = write_series(&path);
    let doc = common::json(&common::run(
        dir.path(),
        &["replay", path.to_str().unwrap(), "--headless", "--json"],
    ));
    assert_eq!(doc["rejected"], 1, "the broken row is counted: {doc}");
    assert_eq!(doc["lines"], 6 * 288 + 1);
    let incidents = doc["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{doc}");
    let inc = &incidents[0];
    assert_eq!(inc["kind"], "metric_anomaly");
    assert_eq!(inc["main_entity"], "rds_cpu");
    let first = inc["first_event_ms"].as_i64().unwrap();
    assert!(
        first >= from && first < to,
        "opened inside the surge: {inc}"
    );
    let signal = &inc["signals"][0];
    let why = signal["why"].as_str().unwrap();
    assert!(why.starts_with("rds_cpu at "), "{why}");
    assert!(why.contains("forecast"), "{why}");
    let observed = signal["observed"].as_f64().unwrap();
    let expected = signal["expected"].as_f64().unwrap();
    let band = signal["forecast_band"].as_array().expect("a forecast band");
    let (lower, upper) = (band[0].as_f64().unwrap(), band[1].as_f64().unwrap());
    // The wave spans 25..55 and the surge adds 45: the forecast follows the wave, and the
    // surge lies above its band.
    assert!((20.0..60.0).contains(&expected), "{signal}");
    assert!(
        lower < expected && expected < upper && observed > upper,
        "{signal}"
    );
    assert!(observed - expected > 25.0, "{signal}");
    assert_eq!(doc["sources"][0]["name"], "metric:rds_cpu");
}
