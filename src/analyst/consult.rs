//! Asking the local model about one evidence pack: the user turn with its data fenced by a fresh
//! random delimiter, the grammar from the pack's schema, the check of what comes back, and the
//! rule-based answer whenever the model is absent, fails, runs out of time or answers outside
//! the pack. Also the key an answer is cached under: the model and the pack's content.

use super::answer::{Answer, Invalid, schema_text, validate};
use super::local::{Choice, LocalError, LocalModel, Stats, Ticket, grammar};
use super::pack::Pack;
use super::rules;
use crate::incident::Incident;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::hash::BuildHasher;

/// Which analyst answered, and why the rules did when they did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Who {
    Model { name: String },
    Rules { why: String },
}

impl Who {
    pub fn label(&self) -> String {
        match self {
            Who::Model { name } => format!("model {name}"),
            Who::Rules { why } => format!("rules; {why}"),
        }
    }
}

/// An answer as the console shows it and the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub who: Who,
    pub answer: Answer,
    /// The model's text exactly as generated (empty for the rules).
    pub raw: String,
    pub stats: Option<Stats>,
}

/// A delimiter no line in the pack contains, different on every request, so log text cannot
/// close the data block it sits in.
pub fn delimiter(pack: &Pack) -> String {
    let text = pack.text();
    let state = std::collections::hash_map::RandomState::new();
    let mut n = 0u64;
    loop {
        // 32 random bits: unguessable per request, and few tokens.
        let d = format!(
            "<<{:08x}>>",
            state.hash_one((n, std::time::SystemTime::now())) as u32
        );
        if !text.contains(&d) {
            return d;
        }
        n += 1;
    }
}

/// What the model thread needs for one question about `pack`.
pub struct Request {
    pub user: String,
    pub grammar: String,
    pub choices: Vec<Choice>,
}

impl Request {
    pub fn ask(self, model: &LocalModel) -> Ticket {
        model.ask(self.user, self.grammar, self.choices)
    }
}

/// The user turn's closing request.
const ASK: &str = "Answer about this incident as the JSON object described.";
/// What the entity completes when the model is asked for it (see [`Choice`]). Of five phrasings
/// tried on `eval analyst --seeds 5` ("The incident is about", "F1 names", "Entity:", "Affected
/// resource:", `{"entity":`) this one let SmolLM2 name the right entity most often.
const ENTITY_CUE: &str = "The incident is about";

/// The user turn, the grammar and the entity choice for `pack`.
pub fn request(pack: &Pack) -> Result<Request, LocalError> {
    let user = format!("{}{ASK}", pack.prompt(&delimiter(pack)));
    Ok(Request {
        user,
        grammar: grammar(&schema_text(pack))?,
        choices: vec![Choice {
            key: "entity".into(),
            options: pack.entities.clone(),
            cue: ENTITY_CUE.into(),
            without_facts: format!("{}{ASK}", pack.header()),
        }],
    })
}

/// The cache key of an answer: the model and everything the pack says.
pub fn state_key(model: &str, pack: &Pack) -> String {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update([0]);
    h.update(pack.prompt("<data>").as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The rule-based answer, saying why it is the one shown.
pub fn by_rules(inc: &Incident, pack: &Pack, why: impl Into<String>) -> Analysis {
    Analysis {
        who: Who::Rules { why: why.into() },
        answer: rules::answer(inc, pack),
        raw: String::new(),
        stats: None,
    }
}

/// Turns what the model returned into the analysis shown: its answer when it passes the check,
/// else the rules' answer with the reason.
pub fn finish(
    inc: &Incident,
    pack: &Pack,
    model: &str,
    result: Result<(String, Stats), LocalError>,
) -> Analysis {
    match result {
        Ok((raw, stats)) => match validate(&raw, pack) {
            Ok(answer) => Analysis {
                who: Who::Model {
                    name: model.to_string(),
                },
                answer,
                raw,
                stats: Some(stats),
            },
            Err(e) => Analysis {
                raw,
                stats: Some(stats),
                ..by_rules(inc, pack, discarded(&e))
            },
        },
        Err(e) => by_rules(inc, pack, format!("model: {e}")),
    }
}

fn discarded(e: &Invalid) -> String {
    format!("model answer discarded: {e}")
}
