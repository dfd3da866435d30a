//! `eval demo --json`: the documented shape, and the bars on a few seeds (the full
//! 20-seed figure is printed by `stormwatch eval demo --seeds 20`).

mod common;

#[test]
fn eval_demo_meets_the_bars_and_prints_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let doc = common::json(&common::run(
        dir.path(),
        &[
            "eval",
            "demo",
            "--seeds",
            "3",
            "--first-seed",
            "40",
            "--json",
        ],
    ));
    assert_eq!(doc["seeds"], 3);
    assert!(doc["baseline_hours"].as_f64().unwrap() >= 18.0);
    let kinds = doc["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 4);
    for k in kinds {
        let injected = k["injected"].as_f64().unwrap();
        let detected = k["detected"].as_f64().unwrap();
        assert_eq!(injected, 3.0, "{k}");
        assert!(detected / injected >= 0.95, "{k}");
        let ttd = k["median_time_to_detect_s"].as_f64().unwrap();
        assert!(
            ttd <= 120.0,
            "median time to detect after the evidence: {k}"
        );
        assert!(
            k["median_time_from_onset_s"].as_f64().unwrap() >= ttd,
            "{k}"
        );
    }
    assert!(
        doc["false_incidents_per_hour"].as_f64().unwrap() <= 0.5,
        "{doc}"
    );
    assert_eq!(doc["distractors_flagged"], 0, "{doc}");
    // eval never touches the store.
    assert!(!dir.path().join("stormwatch.db").exists());
}
