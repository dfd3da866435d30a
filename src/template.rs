//! A first streaming template miner in the Drain family.
//!
//! Tokens that carry variables (numbers, IPs, ids, durations, timestamps: see `mask`) are masked before matching; lines are grouped by token count and first token, and a line joins
//! the most similar template in its group when enough positions agree, turning the differing
//! positions into wildcards. The log-understanding issue replaces this with the full miner; the
//! interface (`mine` → stable id, `template` → text) stays.

use std::collections::HashMap;

pub type TemplateId = u32;

const WILDCARD: &str = "<*>";
/// Share of positions that must agree for a line to join a template.
const SIMILARITY: f64 = 0.5;
/// Lines longer than this many tokens are matched on their first tokens only: the head of a
/// message carries its shape, and the cap bounds the work per line.
const MAX_TOKENS: usize = 64;

#[derive(Debug, Clone)]
struct Template {
    tokens: Vec<String>,
    count: u64,
}

#[derive(Debug, Default)]
pub struct Miner {
    templates: Vec<Template>,
    groups: HashMap<(usize, String), Vec<TemplateId>>,
}

/// Variables are tokens that start with a digit or carry several digits (ids, IPs, sizes, times);
/// words with one digit (`ssh2`, `ec2`, `s3`) stay words.
fn mask(token: &str) -> &str {
    let digits = token.bytes().filter(u8::is_ascii_digit).count();
    let leading_digit = token.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if leading_digit || digits >= 2 || token.len() > 40 {
        WILDCARD
    } else {
        token
    }
}

impl Miner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Assigns `line` to a template, creating one if none is similar enough.
    pub fn mine(&mut self, line: &str) -> TemplateId {
        let tokens: Vec<&str> = line.split_whitespace().take(MAX_TOKENS).map(mask).collect();
        let first = tokens.first().copied().unwrap_or("");
        // A first token that is itself variable would scatter templates; group those by length alone.
        let key = (tokens.len(), first.to_string());
        let candidates = self.groups.entry(key).or_default();
        let mut best: Option<(TemplateId, f64)> = None;
        for &id in candidates.iter() {
            let t = &self.templates[id as usize];
            let same = t
                .tokens
                .iter()
                .zip(&tokens)
                .filter(|(a, b)| a.as_str() == **b || a.as_str() == WILDCARD)
                .count();
            let sim = if tokens.is_empty() {
                1.0
            } else {
                same as f64 / tokens.len() as f64
            };
            if sim >= SIMILARITY && best.is_none_or(|(_, s)| sim > s) {
                best = Some((id, sim));
            }
        }
        match best {
            Some((id, _)) => {
                let t = &mut self.templates[id as usize];
                for (slot, tok) in t.tokens.iter_mut().zip(&tokens) {
                    if slot != tok && slot != WILDCARD {
                        *slot = WILDCARD.to_string();
                    }
                }
                t.count += 1;
                id
            }
            None => {
                let id = self.templates.len() as TemplateId;
                self.templates.push(Template {
                    tokens: tokens.iter().map(|s| s.to_string()).collect(),
                    count: 1,
                });
                candidates.push(id);
                id
            }
        }
    }

    /// The template's text with `<*>` at variable positions.
    pub fn template(&self, id: TemplateId) -> String {
        self.templates
            .get(id as usize)
            .map(|t| t.tokens.join(" "))
            .unwrap_or_default()
    }

    pub fn count(&self, id: TemplateId) -> u64 {
        self.templates.get(id as usize).map_or(0, |t| t.count)
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_lines_that_differ_in_variables() {
        let mut m = Miner::new();
        let a = m.mine("Failed password for root from 45.83.12.7 port 41022 ssh2");
        let b = m.mine("Failed password for admin from 81.2.69.160 port 5022 ssh2");
        let c = m.mine("Accepted publickey for alice from 203.0.113.5 port 50122 ssh2");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            m.template(a),
            "Failed password for <*> from <*> port <*> ssh2"
        );
        assert_eq!(m.count(a), 2);
    }

    #[test]
    fn empty_and_huge_lines_are_fine() {
        let mut m = Miner::new();
        let e = m.mine("");
        assert_eq!(m.template(e), "");
        let huge = "x ".repeat(10_000);
        let h = m.mine(&huge);
        assert_eq!(m.template(h).split(' ').count(), MAX_TOKENS);
    }
}
