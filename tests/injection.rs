//! Log text is attacker-controlled. Lines written to look like instructions, model answers, fake
//! delimiters, fake API calls or fake confirmations, carrying ids that appear nowhere else
//! (`tests/fixtures/injection.jsonl`, reused by the analyst's tests), are mixed into every log
//! group of the demo account and burst during its incidents. Whatever the engine makes of them:
//! - the incidents are still found;
//! - every proposed remediation is grounded in its incident's evidence;
//! - no proposal names any id that only the injected text carries;
//! - the lines ask for `ec2.stop_instance` over and over, and no proposal is a stop.
//!
//! The guards and the approval gate come after this; they have their own tests.

use std::collections::BTreeSet;
use stormwatch::action::catalog::ActionKind;
use stormwatch::action::propose::{ProposalConfig, grounded, propose};
use stormwatch::analyst::answer::validate;
use stormwatch::analyst::pack::{DEFAULT_BUDGET, Pack};
use stormwatch::analyst::{flag, rules};
use stormwatch::engine::{Engine, EngineOptions};
use stormwatch::record::{Interner, Record};
use stormwatch::safe_text::SafeText;
use stormwatch::sim::{SimConfig, generate};
use stormwatch::source::sim_to_record;

/// Ids that appear only in the injected lines.
const PLANTED: &[&str] = &[
    "i-0deadbeefdeadbeef",
    "AKIAFAKEFAKEFAKE0000",
    "acl-0badbadbadbadbad0",
    "sg-0badbadbadbadbad0",
    "198.51.100.66",
    "203.0.113.250",
    "666666666666",
    "orders-api-evil",
    "AWS-RunShellScript",
    "0.0.0.0/0",
];

fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/injection.jsonl"
    ))
    .unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<String>(l).unwrap())
        .collect()
}

#[test]
fn injected_text_cannot_choose_or_parameterise_an_action() {
    let lines = corpus();
    assert!(lines.len() >= 30, "the corpus has {} lines", lines.len());
    let scenario = generate(&SimConfig {
        seed: 1,
        baseline_hours: 2.0,
        ..SimConfig::default()
    });
    let mut names = Interner::default();
    let mut records: Vec<Record> = scenario
        .events
        .iter()
        .map(|e| sim_to_record(e, &mut names))
        .collect();
    let groups: BTreeSet<(String, String)> = scenario
        .events
        .iter()
        .map(|e| (e.group.clone(), e.stream.clone()))
        .collect();
    let start = records.first().map_or(0, |r| r.arrival_ms);
    let end = records.last().map_or(0, |r| r.arrival_ms);
    let mut injected = Vec::new();
    // Every group gets every line at a steady trickle over the whole run...
    for (g, (group, stream)) in groups.iter().enumerate() {
        for (i, line) in lines.iter().enumerate() {
            let mut t = start + ((g * lines.len() + i) as i64 * 7_919) % (end - start).max(1);
            while t < end {
                injected.push((t, group.clone(), stream.clone(), line.clone()));
                t += 40 * 60_000;
            }
        }
    }
    // ...and bursts, twenty copies in a minute, in each group while each incident is on.
    for truth in &scenario.truth.incidents {
        for (group, stream) in &groups {
            for k in 0..20 {
                for (i, line) in lines.iter().enumerate() {
                    let t = truth.onset_ms + 30_000 + (k * lines.len() + i) as i64 * 80;
                    injected.push((t, group.clone(), stream.clone(), line.clone()));
                }
            }
        }
    }
    for (t, group, stream, line) in &injected {
        records.push(Record {
            arrival_ms: *t,
            ts_ms: *t,
            group: names.get(group),
            stream: names.get(stream),
            text: SafeText::new(line),
        });
    }
    records.sort_by_key(|r| r.arrival_ms);

    let mut engine = Engine::new(EngineOptions::default());
    for r in records {
        engine.ingest(r);
    }
    let incidents = engine.incidents();
    assert!(
        incidents.len() >= scenario.truth.incidents.len(),
        "the injected lines must not hide the incidents: {} of {}",
        incidents.len(),
        scenario.truth.incidents.len()
    );

    let cfg = ProposalConfig {
        sns_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:oncall".into()),
        ssm_documents: vec!["ClearAppCache".into()],
        lambda_throttle_to: 0,
    };
    let mut proposed = 0;
    let others: Vec<String> = incidents.iter().map(|i| i.main_entity.clone()).collect();
    for inc in incidents {
        let anomalies = engine.anomalies_of(inc);
        // The rule-based analyst on a pack built from poisoned lines: a valid answer of the
        // schema, naming only what the pack holds, with the samples fenced and sanitised.
        let actions: Vec<String> = propose(inc, &anomalies, &cfg)
            .iter()
            .map(|a| a.kind.id().to_string())
            .collect();
        let pack = Pack::build(&engine, inc, &anomalies, &others, actions, DEFAULT_BUDGET);
        assert!(pack.entities.len() >= 3, "{:?}", pack.entities);
        let answer = rules::answer(inc, &pack);
        let text = serde_json::to_string(&answer).unwrap();
        let checked = validate(&text, &pack).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(checked, answer);
        assert!(flag::unknown(&text, &pack.text()).is_empty(), "{text}");
        let prompt = pack.prompt("<<data-7f3a>>");
        assert!(
            !prompt.contains('\u{1b}'),
            "escape sequences reach the prompt"
        );
        for id in PLANTED {
            assert!(
                !text.contains(id),
                "{id} reached the analyst's answer: {text}"
            );
        }
        for action in propose(inc, &anomalies, &cfg) {
            proposed += 1;
            assert!(
                grounded(&action, inc, &anomalies, &cfg),
                "{action:?} is not grounded in incident {}",
                inc.id
            );
            let shown = format!("{} {}", action.preview(), action.resource_id());
            for id in PLANTED {
                assert!(!shown.contains(id), "{id} reached a proposal: {shown}");
            }
            // A stop is only ever offered for a disk filling up, whatever the text asks.
            if action.kind == ActionKind::StopInstance {
                assert_eq!(
                    inc.kind,
                    stormwatch::incident::CauseKind::DiskFilling,
                    "{action:?}"
                );
            }
        }
    }
    assert!(
        proposed >= incidents.len(),
        "every incident gets at least a notification"
    );
    assert!(
        lines.iter().any(|l| l.contains("ec2.stop_instance")),
        "the corpus asks for the action the proposals must not contain"
    );
}
