//! Evaluations: every command here starts from empty in-memory state and never opens the store,
//! so runs never influence each other.
//!
//! - [`demo`]: the engine against the simulator's ground truth.
//! - [`agent`]: the action ranking, trained and scored in the simulator.
//! - [`analyst`]: the analysts' answers on the injected incidents: schema, entity, action, hallucinations.
//! - [`templates`]: the template miner against loghub's labelled templates.
//! - [`cloudtrail`]: the CloudTrail event scorer against a labelled attack capture.
//! - [`learning`]: how much the label queue's labels improve detection on self-labelled logs (BGL).
//! - [`nab`]: the numeric series detector against the Numenta Anomaly Benchmark, scored NAB's way.

pub mod agent;
pub mod analyst;
pub mod cloudtrail;
pub mod demo;
pub mod learning;
pub mod nab;
pub mod templates;
