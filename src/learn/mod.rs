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

/// Counts of a detector's verdicts against the truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    pub tp: u32,
    pub fp: u32,
    pub fnn: u32,
}

impl Confusion {
    pub fn add(&mut self, flagged: bool, anomaly: bool) {
        match (flagged, anomaly) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fnn += 1,
            (false, false) => {}
        }
    }

    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fnn)
    }

    /// `None` when there was nothing to find and nothing was flagged.
    pub fn f1(&self) -> Option<f64> {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fnn)
    }
}

fn ratio(a: u32, b: u32) -> Option<f64> {
    (b > 0).then(|| f64::from(a) / f64::from(b))
}

pub mod features;
pub mod forest;
pub mod learner;
pub mod queue;
pub mod status;
