//! `eval agent --json`: the documented shape and the bar on seeds the training never saw.
//! Trained on 40 seeds to keep the test short; `stormwatch eval agent --seeds 20` prints the
//! figure for the full 100.

mod common;

#[test]
fn the_trained_ranking_beats_the_prior_and_the_kind_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let doc = common::json(&common::run(
        dir.path(),
        &[
            "eval",
            "agent",
            "--seeds",
            "6",
            "--train-seeds",
            "40",
            "--json",
        ],
    ));
    let f = |k: &str| doc[k].as_f64().unwrap_or_else(|| panic!("{k} in {doc}"));
    assert!(f("episodes") >= 150.0, "{doc}");
    assert!(f("eval_episodes") >= 22.0, "{doc}");
    assert!(f("top1_after") >= 0.9, "{doc}");
    assert!(f("top1_after") > f("kind_lookup"), "{doc}");
    assert!(f("top1_before") < 0.6, "{doc}");
    // Every variant the simulator offers shows up and is scored.
    let variants: Vec<&str> = doc["by_variant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["variant"].as_str().unwrap())
        .collect();
    for v in ["usual", "many_sources", "auto_scaled", "bad_deploy"] {
        assert!(variants.contains(&v), "{v} missing: {doc}");
    }
}
