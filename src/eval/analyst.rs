//! `stormwatch eval analyst`: the analysts over the injected incidents of demo seeds.
//!
//! Each seed runs through a fresh engine; every injected incident the engine opened gets the
//! evidence pack the console would build (other incidents' entities pad it to at least three
//! candidates; the allowed actions are ranked by the simulator-trained prior) and an answer.
//! Entities in the answer are found with this module's own patterns, not the console's flagger,
//! so a flagger gap shows up as an unflagged hallucination. No local model is wired in yet, so
//! `model` is `null` and only the rule-based analyst is scored.

use crate::action::propose::{ProposalConfig, grounded, propose};
use crate::action::rank::{Bandit, Context};
use crate::analyst::answer::validate;
use crate::analyst::pack::{DEFAULT_BUDGET, Pack, action_ids};
use crate::analyst::{flag, rules};
use crate::sim::SimConfig;
use serde::Serialize;

use super::agent::{CLEANUP_DOCUMENT, lookups};
use super::demo::{detect, per_seed};

const BASELINE_HOURS: f64 = 6.0;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Scores {
    pub n: u32,
    pub schema_valid_rate: f64,
    pub top_action_accuracy: f64,
    pub entity_accuracy: f64,
    /// Always answering the pack's first entity: the baseline entity accuracy must beat.
    pub first_entity_accuracy: f64,
    /// Answers naming at least one entity that is not in their pack.
    pub hallucinated_entity_rate: f64,
    /// Answers with such an entity that the console did not flag.
    pub unflagged_hallucination_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnalystEval {
    /// `null` until a local model is wired in.
    pub model: Option<Scores>,
    pub rules: Scores,
    pub seeds: u32,
    pub missed: u32,
}

/// One line of `--emit`.
#[derive(Debug, Clone, Serialize)]
pub struct Emitted {
    pub seed: u64,
    pub analyst: &'static str,
    pub pack_entities: Vec<String>,
    pub answer: String,
    pub flagged: Vec<String>,
}

/// Strings in `text` that look like the simulator's entities: instance ids, IPv4 addresses,
/// access keys, ARNs, and any name from `vocabulary` (every entity of the scenario).
fn entities_in(text: &str, vocabulary: &[String]) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| c.is_whitespace() || ",;()[]{}\"'`<>".contains(c))
        .map(|t| t.trim_end_matches(['.', ':']))
        .filter(|t| {
            t.starts_with("i-")
                || t.starts_with("AKIA")
                || t.starts_with("ASIA")
                || t.starts_with("arn:")
                || (t.split('.').count() == 4 && t.split('.').all(|p| p.parse::<u8>().is_ok()))
        })
        .map(str::to_string)
        .collect();
    for v in vocabulary {
        if v.len() >= 4 && text.contains(v.as_str()) {
            out.push(v.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[derive(Default)]
struct Tally {
    n: u32,
    valid: u32,
    action: u32,
    entity: u32,
    first: u32,
    hallucinated: u32,
    unflagged: u32,
}

impl Tally {
    fn scores(&self) -> Scores {
        let r = |x: u32| f64::from(x) / f64::from(self.n.max(1));
        Scores {
            n: self.n,
            schema_valid_rate: r(self.valid),
            top_action_accuracy: r(self.action),
            entity_accuracy: r(self.entity),
            first_entity_accuracy: r(self.first),
            hallucinated_entity_rate: r(self.hallucinated),
            unflagged_hallucination_rate: r(self.unflagged),
        }
    }
}

fn seed_run(seed: u64, threshold: f64) -> (Tally, Vec<Emitted>, u32) {
    let (truth, engine) = detect(
        &SimConfig {
            seed,
            baseline_hours: BASELINE_HOURS,
            ..SimConfig::default()
        },
        threshold,
    );
    let cfg = ProposalConfig {
        sns_topic_arn: Some(format!(
            "arn:aws:sns:{}:{}:stormwatch-incidents",
            truth.region, truth.account_id
        )),
        ssm_documents: vec![CLEANUP_DOCUMENT.to_string()],
        lambda_throttle_to: 0,
    };
    let bandit = Bandit::prior();
    let benign: Vec<String> = truth
        .distractors
        .iter()
        .flat_map(|d| d.entities.iter().cloned())
        .collect();
    let vocabulary: Vec<String> = truth
        .incidents
        .iter()
        .flat_map(|t| t.entities.iter().cloned())
        .chain(benign.iter().cloned())
        .collect();
    let others: Vec<String> = engine
        .incidents()
        .iter()
        .map(|i| i.main_entity.clone())
        .chain(benign)
        .collect();
    let (mut tally, mut emitted) = (Tally::default(), Vec::new());
    let (found, missed) = super::agent::opened(&truth.incidents, &engine);
    for (t, inc, anomalies) in found {
        let candidates: Vec<_> = propose(inc, &anomalies, &cfg)
            .into_iter()
            .filter(|a| grounded(a, inc, &anomalies, &cfg))
            .collect();
        let ctx = Context::new(inc, &anomalies, &lookups(t, &candidates));
        let ranked = bandit.rank(&ctx, &candidates);
        let actions = action_ids(ranked.iter().map(|r| &r.action));
        let pack = Pack::build(&engine, inc, &anomalies, &others, actions, DEFAULT_BUDGET);
        let answer = rules::answer(inc, &pack);
        let text = serde_json::to_string(&answer).unwrap_or_default();
        let flagged = flag::unknown(&text, &pack.text());
        let found = entities_in(&text, &vocabulary);
        let invented: Vec<&String> = found
            .iter()
            .filter(|e| !pack.text().contains(e.as_str()))
            .collect();
        tally.n += 1;
        tally.valid += u32::from(validate(&text, &pack).is_ok());
        tally.action += u32::from(answer.action_ids.first() == Some(&t.remediation));
        tally.entity += u32::from(answer.entity == t.main_entity);
        tally.first += u32::from(pack.entities.first() == Some(&t.main_entity));
        tally.hallucinated += u32::from(!invented.is_empty());
        tally.unflagged += u32::from(invented.iter().any(|e| !flagged.contains(e)));
        emitted.push(Emitted {
            seed,
            analyst: "rules",
            pack_entities: pack.entities.clone(),
            answer: text,
            flagged,
        });
    }
    (tally, emitted, missed)
}

pub fn run(seeds: u32, threshold: f64, threads: usize) -> (AnalystEval, Vec<Emitted>) {
    let list: Vec<u64> = (1..=u64::from(seeds)).collect();
    let runs = per_seed(&list, threads, |s| seed_run(s, threshold));
    let mut total = Tally::default();
    let mut emitted = Vec::new();
    let mut missed = 0;
    for (t, e, m) in runs {
        total.n += t.n;
        total.valid += t.valid;
        total.action += t.action;
        total.entity += t.entity;
        total.first += t.first;
        total.hallucinated += t.hallucinated;
        total.unflagged += t.unflagged;
        emitted.extend(e);
        missed += m;
    }
    (
        AnalystEval {
            model: None,
            rules: total.scores(),
            seeds,
            missed,
        },
        emitted,
    )
}

impl AnalystEval {
    pub fn render(&self) -> String {
        let r = &self.rules;
        format!(
            "analysts over {} injected incidents of {} seeds ({} not detected)\n\
             model: not loaded yet (issue 7)\n\
             rules: schema-valid {:.3} · top action {:.3} · entity {:.3} (first-entity baseline {:.3}) · \
             hallucinated {:.3} · unflagged {:.3}\n",
            r.n,
            self.seeds,
            self.missed,
            r.schema_valid_rate,
            r.top_action_accuracy,
            r.entity_accuracy,
            r.first_entity_accuracy,
            r.hallucinated_entity_rate,
            r.unflagged_hallucination_rate
        )
    }
}
