//! Learning from the operator: labels become a supervised model blended with the engine's
//! unsupervised scores, template suppressions, and the label queue that asks about the lines a
//! label would teach the most.
//!
//! - [`features`]: a line's feature vector (score, level, template frequency, hashed words).
//! - [`forest`]: the seeded random forest trained from the labels.
//! - [`learner`]: the blend of engine score, forest and per-template labels; the working threshold.
//! - [`queue`]: uncertainty sampling with diversity across templates and sources.
//! - [`status`]: `learn status`: the labels and a train-on-past, test-on-future check.

/// The name the trained model's versions are saved under in the store.
pub const MODEL_NAME: &str = "learner";

pub mod features;
pub mod forest;
pub mod learner;
pub mod queue;
pub mod status;
