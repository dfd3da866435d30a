//! `eval analyst --json --emit`: the documented shape; the rule-based analyst's answers valid,
//! grounded and unflagged-hallucination free on a few seeds; and the real default model's
//! answers (fetched by `stormwatch model pull`, which `scripts/test.sh` runs) of the schema, with
//! ids from the pack, on more than 50 demo incidents, checked again from the emitted lines.

mod common;

#[test]
fn the_rule_based_analyst_answers_inside_its_packs() {
    let dir = tempfile::tempdir().unwrap();
    let emit = dir.path().join("answers.jsonl");
    let doc = common::json(&common::run(
        dir.path(),
        &[
            "eval",
            "analyst",
            "--seeds",
            "2",
            "--no-model",
            "--json",
            "--emit",
            emit.to_str().unwrap(),
        ],
    ));
    assert!(doc["model"].is_null(), "{doc}");
    let r = &doc["rules"];
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {doc}"));
    assert_eq!(f("n"), 8.0, "{doc}");
    assert_eq!(f("schema_valid_rate"), 1.0);
    assert_eq!(f("unflagged_hallucination_rate"), 0.0);
    assert!(f("entity_accuracy") > f("first_entity_accuracy"), "{doc}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&emit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    for l in &lines {
        let entities = l["pack_entities"].as_array().unwrap();
        assert!(entities.len() >= 3, "{l}");
        let answer: serde_json::Value =
            serde_json::from_str(l["answer"].as_str().unwrap()).unwrap();
        assert!(entities.contains(&answer["entity"]), "{l}");
        assert!(l["flagged"].as_array().unwrap().is_empty(), "{l}");
    }
}

#[test]
fn the_default_model_answers_inside_its_packs_on_fifty_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let emit = dir.path().join("answers.jsonl");
    let out = common::run(
        dir.path(),
        &[
            "eval",
            "analyst",
            "--seeds",
            "13",
            "--json",
            "--emit",
            emit.to_str().unwrap(),
        ],
    );
    let doc = common::json(&out);
    let m = &doc["model"];
    assert!(
        m.is_object(),
        "no model loaded (run `cargo run -- model pull`): {doc}"
    );
    let f = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("{k} in {doc}"));
    assert!(f("n") >= 50.0, "{doc}");
    assert_eq!(f("schema_valid_rate"), 1.0, "{doc}");
    assert_eq!(f("unflagged_hallucination_rate"), 0.0, "{doc}");
    // The entity is the model's own choice among the pack's candidates: it must beat always
    // taking the first one (a choice that ignored the facts would not).
    assert!(f("entity_accuracy") > f("first_entity_accuracy"), "{doc}");
    assert_eq!(doc["model_run"]["failed"], 0, "{doc}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&emit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["analyst"] == "model")
        .collect();
    assert_eq!(lines.len() as f64, f("n"));
    for l in &lines {
        let answer: serde_json::Value = serde_json::from_str(l["answer"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{e}: {l}"));
        let within = |key: &str, allowed: &str| {
            let allowed = l[allowed].as_array().unwrap();
            for id in answer[key].as_array().unwrap() {
                assert!(allowed.contains(id), "{key} {id} not in {allowed:?}: {l}");
            }
        };
        assert!(
            l["pack_entities"]
                .as_array()
                .unwrap()
                .contains(&answer["entity"]),
            "{l}"
        );
        within("evidence_ids", "evidence_ids");
        within("action_ids", "allowed_actions");
        let c = answer["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c), "{l}");
    }
}
