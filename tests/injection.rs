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

use stormwatch::action::catalog::ActionKind;
use stormwatch::action::propose::{ProposalConfig, grounded, propose};
use stormwatch::analyst::answer::validate;
use stormwatch::analyst::pack::{DEFAULT_BUDGET, Pack};
use stormwatch::analyst::{flag, rules};

use poisoned::{PLANTED, poisoned_engine};

mod poisoned;

#[test]
fn injected_text_cannot_choose_or_parameterise_an_action() {
    let (lines, scenario, engine) = poisoned_engine(1);
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
