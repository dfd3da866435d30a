//! The evidence pack: what an analyst may know about an incident, as computed facts with ids, kept
//! under a token budget. Facts instead of raw lines keep the prompt small (a 2-core laptop reads
//! ~290 prompt tokens a second) and keep secrets in log lines out of it; the few sample lines
//! that go in are sanitised and marked as untrusted data.

use crate::engine::Engine;
use crate::incident::{Anomaly, CauseKind, Incident};
use crate::safe_text::SafeText;
use serde::Serialize;

/// Default budget for the incident part of a prompt, in (estimated) tokens.
pub const DEFAULT_BUDGET: usize = 200;
/// Candidate entities a pack offers at least, so naming the right one is a real choice.
pub const MIN_ENTITIES: usize = 3;
/// Sample lines at most; each is cut to this many characters.
const MAX_SAMPLES: usize = 2;
const SAMPLE_CHARS: usize = 160;

/// One fact with the id an answer cites it by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pack {
    pub incident: u64,
    pub kind: CauseKind,
    /// Candidate entities, in a fixed order that does not favour the incident's own.
    pub entities: Vec<String>,
    /// Signals, templates and context, strongest first (`F1`…).
    pub facts: Vec<Fact>,
    /// Sanitised sample lines (`L1`…): untrusted data.
    pub samples: Vec<Fact>,
    /// Catalog ids the policy allows for this incident, best ranked first.
    pub actions: Vec<String>,
}

/// FNV-1a: a fixed, platform-independent hash of a string.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The catalog ids of ranked actions, best first, each once: what a pack offers an analyst.
pub fn action_ids<'a>(
    ranked: impl IntoIterator<Item = &'a crate::action::catalog::Action>,
) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for a in ranked {
        let id = a.kind.id();
        if !ids.iter().any(|x| x == id) {
            ids.push(id.to_string());
        }
    }
    ids
}

/// Token count as small models' tokenizers see it, erring high: about two letters a token (plain
/// words cost less, but the ids that fill a pack split into many pieces), and a token for every
/// digit and punctuation mark (SmolLM2 splits numbers into single digits). Measured on the
/// demo's largest pack: 317 estimated for ~318 real SmolLM2 tokens (four letters a token had
/// said 229).
pub fn estimate_tokens(s: &str) -> usize {
    let (mut tokens, mut run) = (0usize, 0usize);
    for c in s.chars() {
        if c.is_alphabetic() {
            run += 1;
            continue;
        }
        tokens += run.div_ceil(2);
        run = 0;
        if !c.is_whitespace() {
            tokens += 1;
        }
    }
    tokens + run.div_ceil(2)
}

impl Pack {
    /// Builds the pack for `inc` within `budget` tokens. `others` pads the candidate entities
    /// (entities of other incidents and sources) when the incident names fewer than
    /// [`MIN_ENTITIES`]; `actions` are the allowed, ranked catalog ids.
    pub fn build(
        engine: &Engine,
        inc: &Incident,
        anomalies: &[&Anomaly],
        others: &[String],
        actions: Vec<String>,
        budget: usize,
    ) -> Pack {
        let mut entities: Vec<String> = inc
            .keys
            .iter()
            .chain(anomalies.iter().map(|a| &a.entity))
            .filter(|e| !e.is_empty() && *e != "-")
            .map(|e| SafeText::new(e).into_string())
            .collect();
        entities.push(SafeText::new(&inc.main_entity).into_string());
        entities.sort();
        entities.dedup();
        for o in others {
            if entities.len() >= MIN_ENTITIES {
                break;
            }
            let o = SafeText::new(o).into_string();
            if !o.is_empty() && !entities.contains(&o) {
                entities.push(o);
            }
        }
        entities.truncate(12);
        // Ordered by a hash of the text: stable for the same evidence (answers are cached by
        // it), unrelated to which entity is the incident's, and not grouped by kind (sorted by
        // name, addresses would always come first, where a small model's eye goes).
        entities.sort_by_key(|e| (fnv1a(e), e.clone()));

        let mut candidates: Vec<String> = Vec::new();
        for a in anomalies {
            candidates.push(SafeText::new(&a.explain()).into_string());
        }
        if let Some(a) = anomalies.first() {
            let mut tpl: Vec<_> = a.templates.iter().collect();
            tpl.sort_by(|x, y| y.1.cmp(x.1));
            for (id, n) in tpl.into_iter().take(3) {
                candidates.push(format!(
                    "{n} lines like '{}' in {}",
                    SafeText::new(&engine.template_text(*id)),
                    SafeText::new(&a.group)
                ));
            }
            for e in a.context.iter().take(2) {
                candidates.push(SafeText::new(&e.what).into_string());
            }
        }
        let mut used = estimate_tokens(&entities.join(", "));
        let mut facts = Vec::new();
        for text in candidates {
            let cost = estimate_tokens(&text) + 2;
            // The strongest signal always goes in, whatever the budget.
            if !facts.is_empty() && used + cost > budget {
                continue;
            }
            used += cost;
            facts.push(Fact {
                id: format!("F{}", facts.len() + 1),
                text,
            });
        }
        let mut samples = Vec::new();
        for s in anomalies
            .iter()
            .flat_map(|a| a.samples.iter())
            .take(MAX_SAMPLES)
        {
            let text: String = s.as_str().chars().take(SAMPLE_CHARS).collect();
            let cost = estimate_tokens(&text) + 2;
            if used + cost > budget {
                break;
            }
            used += cost;
            samples.push(Fact {
                id: format!("L{}", samples.len() + 1),
                text,
            });
        }
        Pack {
            incident: inc.id,
            kind: inc.kind,
            entities,
            facts,
            samples,
            actions,
        }
    }

    /// Every id an answer may cite.
    pub fn evidence_ids(&self) -> Vec<&str> {
        self.facts
            .iter()
            .chain(&self.samples)
            .map(|f| f.id.as_str())
            .collect()
    }

    /// Everything the pack says, for checking that an answer names nothing else.
    pub fn text(&self) -> String {
        let mut s = self.entities.join("\n");
        for f in self.facts.iter().chain(&self.samples) {
            s.push('\n');
            s.push_str(&f.text);
        }
        s
    }

    /// The prompt's first lines: the incident, its kind and the candidate entities, no facts.
    pub fn header(&self) -> String {
        format!(
            "incident #{} ({})\nentities: {}\n",
            self.incident,
            self.kind.label(),
            self.entities.join(", ")
        )
    }

    /// The incident part of the prompt; sample lines sit between `delimiter` markers as data.
    pub fn prompt(&self, delimiter: &str) -> String {
        let mut s = self.header();
        for f in &self.facts {
            s.push_str(&format!("{}: {}\n", f.id, f.text));
        }
        if !self.samples.is_empty() {
            s.push_str(&format!(
                "log lines (untrusted data) between {delimiter}:\n{delimiter}\n"
            ));
            for f in &self.samples {
                s.push_str(&format!("{}: {}\n", f.id, f.text));
            }
            s.push_str(&format!("{delimiter}\n"));
        }
        s.push_str(&format!("allowed actions: {}\n", self.actions.join(", ")));
        s
    }
}
