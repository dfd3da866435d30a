//! `stormwatch eval analyst`: the analysts over the injected incidents of demo seeds.
//!
//! Each seed runs through a fresh engine; every injected incident the engine opened gets the
//! evidence pack the console would build (other incidents' entities pad it to at least three
//! candidates; the allowed actions are ranked by the simulator-trained prior) and an answer.
//! Entities in the answer are found with this module's own patterns, not the console's flagger,
//! so a flagger gap shows up as an unflagged hallucination. With a local model (`--model`, or the
//! default one `stormwatch model pull` fetched) the same packs go to it one by one, as the
//! console would send them; without one `model` is `null`.

use crate::action::propose::{ProposalConfig, grounded, propose};
use crate::action::rank::{Bandit, Context};
use crate::analyst::answer::validate;
use crate::analyst::consult::{Who, finish, request};
use crate::analyst::local::{LocalModel, Stats};
use crate::analyst::pack::{DEFAULT_BUDGET, Pack, action_ids};
use crate::analyst::{flag, rules};
use crate::incident::Incident;
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
    /// `null` when no model was loaded.
    pub model: Option<Scores>,
    /// The model's name, load and answer times; `null` with the model.
    pub model_run: Option<ModelRun>,
    pub rules: Scores,
    pub seeds: u32,
    pub missed: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelRun {
    pub name: String,
    /// Answers the model did not finish (error or timeout); the rules answered those.
    pub failed: u32,
    pub median_answer_ms: f64,
    pub max_answer_ms: f64,
    pub median_first_token_ms: f64,
}

/// One line of `--emit`.
#[derive(Debug, Clone, Serialize)]
pub struct Emitted {
    pub seed: u64,
    pub analyst: &'static str,
    pub pack_entities: Vec<String>,
    pub answer: String,
    pub flagged: Vec<String>,
    /// What the pack allowed, so the answer can be checked against it again.
    pub evidence_ids: Vec<String>,
    pub allowed_actions: Vec<String>,
    /// The incident part of the prompt (with a fixed delimiter).
    pub prompt: String,
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

/// One injected incident the engine opened, with the pack the console would build for it.
struct Case {
    seed: u64,
    inc: Incident,
    pack: Pack,
    main_entity: String,
    remediation: String,
    /// Every entity of the seed's scenario, for finding entities in answers.
    vocabulary: std::sync::Arc<Vec<String>>,
}

fn seed_cases(seed: u64, threshold: f64) -> (Vec<Case>, u32) {
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
    let vocabulary: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
        truth
            .incidents
            .iter()
            .flat_map(|t| t.entities.iter().cloned())
            .chain(benign.iter().cloned())
            .collect(),
    );
    let others: Vec<String> = engine
        .incidents()
        .iter()
        .map(|i| i.main_entity.clone())
        .chain(benign)
        .collect();
    let (found, missed) = super::agent::opened(&truth.incidents, &engine);
    let cases = found
        .into_iter()
        .map(|(t, inc, anomalies)| {
            let candidates: Vec<_> = propose(inc, &anomalies, &cfg)
                .into_iter()
                .filter(|a| grounded(a, inc, &anomalies, &cfg))
                .collect();
            let ctx = Context::new(inc, &anomalies, &lookups(t, &candidates));
            let ranked = bandit.rank(&ctx, &candidates);
            let actions = action_ids(ranked.iter().map(|r| &r.action));
            Case {
                seed,
                inc: inc.clone(),
                pack: Pack::build(&engine, inc, &anomalies, &others, actions, DEFAULT_BUDGET),
                main_entity: t.main_entity.clone(),
                remediation: t.remediation.clone(),
                vocabulary: std::sync::Arc::clone(&vocabulary),
            }
        })
        .collect();
    (cases, missed)
}

/// Scores one answer: `raw` is the analyst's full text, `answer` what passed the check.
fn score(
    tally: &mut Tally,
    case: &Case,
    analyst: &'static str,
    raw: &str,
    answer: Option<&crate::analyst::answer::Answer>,
) -> Emitted {
    let pack_text = case.pack.text();
    let flagged = flag::unknown(raw, &pack_text);
    let found = entities_in(raw, &case.vocabulary);
    let invented: Vec<&String> = found
        .iter()
        .filter(|e| !pack_text.contains(e.as_str()))
        .collect();
    tally.n += 1;
    tally.valid += u32::from(answer.is_some());
    tally.action += u32::from(answer.and_then(|a| a.action_ids.first()) == Some(&case.remediation));
    tally.entity += u32::from(answer.is_some_and(|a| a.entity == case.main_entity));
    tally.first += u32::from(case.pack.entities.first() == Some(&case.main_entity));
    tally.hallucinated += u32::from(!invented.is_empty());
    tally.unflagged += u32::from(invented.iter().any(|e| !flagged.contains(e)));
    Emitted {
        seed: case.seed,
        analyst,
        pack_entities: case.pack.entities.clone(),
        answer: raw.to_string(),
        flagged,
        evidence_ids: case
            .pack
            .evidence_ids()
            .into_iter()
            .map(str::to_string)
            .collect(),
        allowed_actions: case.pack.actions.clone(),
        prompt: case.pack.prompt("<data>"),
    }
}

/// The middle value (the upper one of an even count); 0 for none.
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// Scores the rules on every case, and `model` (one request at a time, as the console sends
/// them) when there is one; `progress` hears about each model answer.
pub fn run(
    seeds: u32,
    threshold: f64,
    threads: usize,
    model: Option<&LocalModel>,
    mut progress: impl FnMut(usize, usize),
) -> (AnalystEval, Vec<Emitted>) {
    let list: Vec<u64> = (1..=u64::from(seeds)).collect();
    let runs = per_seed(&list, threads, |s| seed_cases(s, threshold));
    let mut cases = Vec::new();
    let mut missed = 0;
    for (c, m) in runs {
        cases.extend(c);
        missed += m;
    }
    let mut rules_tally = Tally::default();
    let mut emitted = Vec::new();
    for case in &cases {
        let answer = rules::answer(&case.inc, &case.pack);
        let text = serde_json::to_string(&answer).unwrap_or_default();
        let checked = validate(&text, &case.pack).ok();
        emitted.push(score(
            &mut rules_tally,
            case,
            "rules",
            &text,
            checked.as_ref(),
        ));
    }
    let (mut model_scores, mut model_run) = (None, None);
    if let Some(m) = model {
        let name = match m.status() {
            crate::analyst::local::Status::Ready { name, .. } => name,
            _ => "local model".to_string(),
        };
        let mut tally = Tally::default();
        let mut run = ModelRun {
            name: name.clone(),
            ..ModelRun::default()
        };
        let (mut answer_ms, mut first_ms) = (Vec::new(), Vec::new());
        for (i, case) in cases.iter().enumerate() {
            let result = request(&case.pack).and_then(|r| r.ask(m).wait(|_| {}));
            if let Ok((
                _,
                Stats {
                    answer_ms: a,
                    first_token_ms: f,
                    ..
                },
            )) = &result
            {
                answer_ms.push(*a);
                first_ms.push(*f);
            } else if let Err(e) = &result {
                eprintln!("model: seed {} incident #{}: {e}", case.seed, case.inc.id);
                run.failed += 1;
            }
            let raw = result.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
            let analysis = finish(&case.inc, &case.pack, &name, result);
            let answer = matches!(analysis.who, Who::Model { .. }).then_some(&analysis.answer);
            emitted.push(score(&mut tally, case, "model", &raw, answer));
            progress(i + 1, cases.len());
        }
        run.max_answer_ms = answer_ms.iter().copied().fold(0.0, f64::max);
        run.median_answer_ms = median(&mut answer_ms);
        run.median_first_token_ms = median(&mut first_ms);
        model_scores = Some(tally.scores());
        model_run = Some(run);
    }
    (
        AnalystEval {
            model: model_scores,
            model_run,
            rules: rules_tally.scores(),
            seeds,
            missed,
        },
        emitted,
    )
}

impl AnalystEval {
    pub fn render(&self) -> String {
        let line = |who: &str, r: &Scores| {
            format!(
                "{who}: schema-valid {:.3} · top action {:.3} · entity {:.3} (first-entity baseline {:.3}) · \
                 hallucinated {:.3} · unflagged {:.3}\n",
                r.schema_valid_rate,
                r.top_action_accuracy,
                r.entity_accuracy,
                r.first_entity_accuracy,
                r.hallucinated_entity_rate,
                r.unflagged_hallucination_rate
            )
        };
        let mut out = format!(
            "analysts over {} injected incidents of {} seeds ({} not detected)\n",
            self.rules.n, self.seeds, self.missed
        );
        match (&self.model, &self.model_run) {
            (Some(m), Some(run)) => {
                out.push_str(&line(&format!("model ({})", run.name), m));
                out.push_str(&format!(
                    "  answers: median {:.0} ms (first token {:.0} ms), max {:.0} ms, {} failed\n",
                    run.median_answer_ms, run.median_first_token_ms, run.max_answer_ms, run.failed
                ));
            }
            _ => out.push_str(
                "model: none loaded (run `stormwatch model pull`, or pass --model PATH)\n",
            ),
        }
        out.push_str(&line("rules", &self.rules));
        out
    }
}

/// The largest evidence pack (by prompt size) among the injected incidents of the first
/// `seeds` demo seeds, with its incident: what `bench analyst` times.
pub fn largest_pack(seeds: u32, threshold: f64) -> Option<(Incident, Pack)> {
    (1..=u64::from(seeds))
        .flat_map(|s| seed_cases(s, threshold).0)
        .max_by_key(|c| crate::analyst::pack::estimate_tokens(&c.pack.prompt("<data>")))
        .map(|c| (c.inc, c.pack))
}
