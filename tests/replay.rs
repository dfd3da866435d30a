//! `demo --write` → `replay`: the same engine gives the same incidents from the files as from the
//! simulator, and `--json` prints exactly one document.

mod common;

#[test]
fn replay_of_written_demo_matches_the_live_engine() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("scenario");
    let args = ["demo", "--seed", "11", "--baseline-hours", "1"];
    let written = common::json(&common::run(
        dir.path(),
        &[&args[..], &["--write", out_dir.to_str().unwrap(), "--json"]].concat(),
    ));
    assert_eq!(written["incidents"], 4);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("truth.json")).unwrap())
            .unwrap();
    assert_eq!(truth["incidents"].as_array().unwrap().len(), 4);

    let direct = common::json(&common::run(
        dir.path(),
        &[&args[..], &["--headless", "--json"]].concat(),
    ));
    let events = out_dir.join("events.jsonl");
    let replayed = common::json(&common::run(
        dir.path(),
        &["replay", "--headless", "--json", events.to_str().unwrap()],
    ));
    assert_eq!(direct["incidents"], replayed["incidents"]);
    assert_eq!(direct["lines"], replayed["lines"]);
    let incidents = replayed["incidents"].as_array().unwrap();
    assert!(incidents.len() >= 4, "{incidents:?}");
    // Every injected incident's main entity is named by some replayed incident.
    for t in truth["incidents"].as_array().unwrap() {
        assert!(
            incidents
                .iter()
                .any(|i| i["main_entity"] == t["main_entity"]),
            "missed {}",
            t["detail"]
        );
    }
    // Headless runs never create the store.
    assert!(!dir.path().join("stormwatch.db").exists());
}
