//! Evaluations: every command here starts from empty in-memory state and never opens the store,
//! so runs never influence each other.
//!
//! - [`demo`]: the engine against the simulator's ground truth.
//! - [`templates`]: the template miner against loghub's labelled templates.

pub mod demo;
pub mod templates;
