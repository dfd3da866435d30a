//! `eval analyst --json --emit`: the documented shape, and the rule-based analyst's answers valid,
//! grounded and unflagged-hallucination free on a few seeds.

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
