//! Are these minutes of a source unlike its recent ones as a whole? An extended isolation forest
//! ([`crate::isolation`]) over one feature vector per source and [`BLOCK_MIN`] minutes
//! (the 5-minute view; per-minute averages, so a block reads like a minute): volume, error and
//! warning shares, how many kinds of line, how many new kinds, and how much one kind dominates.
//! Each feature alone can look ordinary while the combination is not (as many lines as usual, but
//! all of one kind; a usual error share, but from new kinds of line).
//!
//! The forest is trained on the last [`HISTORY_BLOCKS`] blocks (six hours): first after two hours,
//! again when its history has doubled, then every six hours, so the baseline rolls with the
//! source. Blocks rather than single minutes keep its cost (mostly training) small next to the
//! lines it judges, and steady a quiet source's features. A block's surprise is the −log10 p-value of its isolation
//! score under an exponential fit to the upper tail of the training minutes' scores, the scale
//! the other scorers use. Isolation scores saturate (a far outlier isolates in one or two cuts,
//! and so do the edges of the training data), so the forest rarely says more than "one in a few
//! hundred minutes": it is context, and the template scorers carry the strong evidence.
//!
//! Each source's forests draw from one seeded generator, so the same lines give the same scores
//! on every run. Its evidence is context for the ensemble (it can lift a failure signal, never
//! open an incident by itself); `engine.forest = false` turns it off.

use crate::isolation::{IsolationForest, Options};
use crate::rng::Rng;
use std::collections::VecDeque;

pub const FEATURES: usize = 6;
/// What each feature is, as the console names it.
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "lines/min",
    "error share",
    "warning share",
    "kinds of line",
    "new kinds of line",
    "top kind's share",
];

/// Minutes per vector.
pub const BLOCK_MIN: u32 = 5;
/// Blocks of history the forest is trained on (six hours).
const HISTORY_BLOCKS: usize = 72;
/// Training minutes scored to learn what ordinary isolation looks like; a sample keeps retraining
/// cheap next to the lines it judges.
const CALIBRATION_SAMPLE: usize = 120;
/// Share of the calibration scores that forms the upper tail fitted for p-values.
const TAIL_SHARE: f64 = 0.1;
/// Blocks of history before the first training (two hours).
const MIN_HISTORY_BLOCKS: usize = 24;
const RETRAIN_BLOCKS: usize = HISTORY_BLOCKS;
const FOREST: Options = Options {
    trees: 32,
    sample: 32,
    extension_level: 1,
};
/// Seed of every source's forests: fixed, so runs repeat exactly.
const SEED: u64 = 0x5707_3f0e;
/// Smallest surprise reported (p < 1 %). Lower than the per-template bar
/// ([`crate::ensemble::CONTEXT_MIN_SURPRISE`]): the forest makes one test per source and five
/// minutes where the template scorers make one per template and minute, and its scores
/// saturate: an error storm a hundred times the usual volume scores about 2.4 here, no more
/// than a far smaller flood, so a higher bar would leave it mute.
pub const MIN_SURPRISE: f64 = 2.0;
/// A minute whose every feature lies within this many spreads of its mean sits in the dense
/// middle of the training data, where no tree isolates it early; it is not scored, which spares
/// the forest's cost on most minutes.
const SCREEN_Z: f64 = 1.5;
/// Smallest mean excess assumed over the tail threshold, so a perfectly regular source does not
/// make every tiny difference a miracle.
const EXCESS_FLOOR: f64 = 0.01;

/// One minute of a source (or a block of them), as counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MinuteCounts {
    /// Minutes summed here (0 is read as 1).
    pub minutes: u32,
    pub lines: u32,
    pub errors: u32,
    pub warnings: u32,
    pub kinds: u32,
    pub new_kinds: u32,
    pub top_kind: u32,
}

impl MinuteCounts {
    /// The raw values the console shows, in [`FEATURE_NAMES`] order.
    fn shown(&self) -> [f64; FEATURES] {
        let n = f64::from(self.lines.max(1));
        let per_minute = |v: u32| f64::from(v) / f64::from(self.minutes.max(1));
        [
            per_minute(self.lines),
            f64::from(self.errors) / n,
            f64::from(self.warnings) / n,
            per_minute(self.kinds),
            per_minute(self.new_kinds),
            f64::from(self.top_kind) / n,
        ]
    }

    fn add(&mut self, m: &MinuteCounts) {
        self.minutes += m.minutes.max(1);
        self.lines += m.lines;
        self.errors += m.errors;
        self.warnings += m.warnings;
        self.kinds += m.kinds;
        self.new_kinds += m.new_kinds;
        self.top_kind += m.top_kind;
    }

    /// The vector the forest sees: counts on a log scale, so a doubling weighs the same at any
    /// volume.
    fn features(&self) -> [f64; FEATURES] {
        let s = self.shown();
        [s[0].ln_1p(), s[1], s[2], s[3].ln_1p(), s[4].ln_1p(), s[5]]
    }
}

/// An unusual minute and the features that made it so, most deviant first.
#[derive(Debug, Clone, PartialEq)]
pub struct Unusual {
    pub surprise: f64,
    pub isolation: f64,
    /// (feature index, value, typical value)
    pub features: Vec<(usize, f64, f64)>,
}

impl Unusual {
    pub fn explain(&self) -> String {
        let parts: Vec<String> = self
            .features
            .iter()
            .map(|&(i, v, typical)| {
                let name = FEATURE_NAMES.get(i).copied().unwrap_or("feature");
                if name.contains("share") {
                    format!("{name} {v:.2} (usually {typical:.2})")
                } else {
                    format!("{name} {v:.0} (usually {typical:.1})")
                }
            })
            .collect();
        format!(
            "last {BLOCK_MIN} minutes unlike the last hours: {}",
            parts.join(", ")
        )
    }
}

struct Trained {
    forest: IsolationForest<FEATURES>,
    /// Upper tail of the training minutes' scores: above `tail_from` (the 90th percentile) they
    /// fall off exponentially with mean excess `tail_excess` (peaks over threshold with an
    /// exponential tail), which gives p-values beyond the largest score seen.
    tail_from: f64,
    tail_excess: f64,
    /// Per feature: mean and spread of the shown values, to name what deviates.
    shown_mean: [f64; FEATURES],
    shown_sd: [f64; FEATURES],
}

/// One source's rolling forest.
pub struct MinuteForest {
    history: VecDeque<MinuteCounts>,
    trained: Option<Trained>,
    since_training: usize,
    /// Blocks of history the current forest was trained on.
    trained_on: usize,
    block: MinuteCounts,
    rng: Rng,
}

impl Default for MinuteForest {
    fn default() -> Self {
        MinuteForest {
            history: VecDeque::new(),
            trained: None,
            since_training: 0,
            trained_on: 0,
            block: MinuteCounts::default(),
            rng: Rng::new(SEED),
        }
    }
}

impl std::fmt::Debug for MinuteForest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinuteForest")
            .field("history", &self.history.len())
            .field("trained", &self.trained.is_some())
            .finish()
    }
}

impl MinuteForest {
    /// Adds a closed minute; when it completes a block, scores the block against the current
    /// forest and adds it to the history.
    pub fn observe(&mut self, minute: MinuteCounts) -> Option<Unusual> {
        self.block.add(&minute);
        if self.block.minutes < BLOCK_MIN {
            return None;
        }
        let block = std::mem::take(&mut self.block);
        let verdict = self.trained.as_ref().and_then(|t| judge(t, &block));
        self.history.push_back(block);
        while self.history.len() > HISTORY_BLOCKS {
            self.history.pop_front();
        }
        self.since_training += 1;
        let due = match self.trained {
            None => self.history.len() >= MIN_HISTORY_BLOCKS,
            // Once the history is full it cannot double: the six-hour cadence takes over.
            Some(_) => {
                self.history.len() >= 2 * self.trained_on || self.since_training >= RETRAIN_BLOCKS
            }
        };
        if due {
            self.trained = train(&self.history, &mut self.rng);
            self.trained_on = self.history.len();
            self.since_training = 0;
        }
        verdict
    }

    pub fn is_trained(&self) -> bool {
        self.trained.is_some()
    }
}

fn train(history: &VecDeque<MinuteCounts>, rng: &mut Rng) -> Option<Trained> {
    let data: Vec<[f64; FEATURES]> = history.iter().map(MinuteCounts::features).collect();
    let forest = IsolationForest::train(&data, &FOREST, rng)?;
    let step = data.len().div_ceil(CALIBRATION_SAMPLE).max(1);
    let mut scores: Vec<f64> = data.iter().step_by(step).map(|v| forest.score(v)).collect();
    scores.sort_by(f64::total_cmp);
    let from_idx = ((scores.len() as f64) * (1.0 - TAIL_SHARE)) as usize;
    let tail_from = scores.get(from_idx).copied().unwrap_or(1.0);
    let (excess, _) = mean_sd(scores.iter().skip(from_idx).map(|s| s - tail_from));
    let mut shown_mean = [0.0; FEATURES];
    let mut shown_sd = [0.0; FEATURES];
    for i in 0..FEATURES {
        let (m, s) = mean_sd(history.iter().map(|c| c.shown()[i]));
        shown_mean[i] = m;
        shown_sd[i] = s;
    }
    Some(Trained {
        forest,
        tail_from,
        tail_excess: excess.max(EXCESS_FLOOR),
        shown_mean,
        shown_sd,
    })
}

fn feature_z(t: &Trained, shown: &[f64; FEATURES]) -> [f64; FEATURES] {
    let mut z = [0.0; FEATURES];
    for i in 0..FEATURES {
        // Counts move in whole lines; shares in hundredths.
        let floor = if i == 0 || i == 3 || i == 4 {
            1.0
        } else {
            0.02
        };
        z[i] = ((shown[i] - t.shown_mean[i]) / t.shown_sd[i].max(floor)).abs();
    }
    z
}

/// −log10 P(score ≥ isolation) under the tail fit: share of the tail × exp(−excess / mean
/// excess); 0 below the tail.
fn surprise(t: &Trained, isolation: f64) -> f64 {
    if isolation <= t.tail_from {
        return 0.0;
    }
    let ln_p = TAIL_SHARE.ln() - (isolation - t.tail_from) / t.tail_excess;
    -ln_p / std::f64::consts::LN_10
}

fn judge(t: &Trained, minute: &MinuteCounts) -> Option<Unusual> {
    let shown = minute.shown();
    let z = feature_z(t, &shown);
    if z.iter().all(|&v| v < SCREEN_Z) {
        return None;
    }
    let isolation = t.forest.score(&minute.features());
    let surprise = surprise(t, isolation);
    if surprise < MIN_SURPRISE {
        return None;
    }
    let mut deviations: Vec<(usize, f64)> = (0..FEATURES)
        .map(|i| (i, z[i]))
        .filter(|&(_, z)| z >= 2.0)
        .collect();
    deviations.sort_by(|a, b| b.1.total_cmp(&a.1));
    let features = deviations
        .into_iter()
        .take(3)
        .map(|(i, _)| (i, shown[i], t.shown_mean[i]))
        .collect();
    Some(Unusual {
        surprise,
        isolation,
        features,
    })
}

fn mean_sd(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut n, mut sum, mut sq) = (0.0, 0.0, 0.0);
    for v in values {
        n += 1.0;
        sum += v;
        sq += v * v;
    }
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mean = sum / n;
    (mean, (sq / n - mean * mean).max(0.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ordinary minutes: counts that wander like real traffic (a fixed pseudo-random sequence,
    /// so the data is the same every run; only the forest's own draws vary).
    fn ordinary(i: u32) -> MinuteCounts {
        let h = |k: u32| {
            let x = (i.wrapping_mul(2_654_435_761) ^ k.wrapping_mul(40_503))
                .wrapping_mul(2_246_822_519);
            (x >> 16) % 1000
        };
        let lines = 80 + h(1) % 60;
        MinuteCounts {
            minutes: 1,
            lines,
            errors: h(2) % 4,
            warnings: 2 + h(3) % 6,
            kinds: 10 + h(4) % 6,
            new_kinds: u32::from(h(5) % 50 == 0),
            top_kind: lines / 4 + h(6) % 15,
        }
    }

    #[test]
    fn a_flood_of_one_error_kind_is_unusual_and_ordinary_minutes_are_not() {
        let mut f = MinuteForest::default();
        for i in 0..1000 {
            f.observe(ordinary(i));
        }
        assert!(f.is_trained());
        let mut flagged = 0;
        let mut most_surprising: f64 = 0.0;
        let mut block = MinuteCounts::default();
        for i in 1000..1300 {
            block.add(&ordinary(i));
            if block.minutes == BLOCK_MIN {
                let b = std::mem::take(&mut block);
                let t = f.trained.as_ref().expect("trained");
                most_surprising = most_surprising.max(surprise(t, t.forest.score(&b.features())));
            }
            if f.observe(ordinary(i)).is_some() {
                flagged += 1;
            }
        }
        // About one block in a hundred by calibration.
        assert!(flagged <= 2, "{flagged} of 60 ordinary blocks flagged");
        let flood = MinuteCounts {
            minutes: 1,
            lines: 900,
            errors: 780,
            warnings: 3,
            kinds: 13,
            new_kinds: 2,
            top_kind: 770,
        };
        let mut flood_block = MinuteCounts::default();
        for _ in 0..BLOCK_MIN {
            flood_block.add(&flood);
        }
        let t = f.trained.as_ref().expect("trained");
        let flood_surprise = surprise(t, t.forest.score(&flood_block.features()));
        // Isolation scores saturate (a far outlier and the edge of the training data both
        // isolate in a few cuts), so the forest ranks the flood above every ordinary block but
        // calls it only about one in a few hundred: context, not proof.
        assert!(
            flood_surprise > most_surprising && flood_surprise > 2.0,
            "flood {flood_surprise} vs ordinary {most_surprising}"
        );
        // When a block is flagged, the explanation names what changed.
        let storm = MinuteCounts {
            minutes: BLOCK_MIN,
            lines: 40_000,
            errors: 39_000,
            warnings: 0,
            kinds: 200,
            new_kinds: 150,
            top_kind: 38_000,
        };
        let u = judge(t, &storm).expect("an error storm of new kinds is flagged");
        let named: Vec<usize> = u.features.iter().map(|x| x.0).collect();
        assert!(named.contains(&1), "error share not named: {}", u.explain());
    }

    #[test]
    fn retrains_after_two_hours_when_the_history_doubles_then_every_six_hours() {
        let mut f = MinuteForest::default();
        let mut trainings = Vec::new();
        for i in 0..(24 * 60) {
            f.observe(ordinary(i));
            if f.is_trained() && f.since_training == 0 && f.block.minutes == 0 {
                trainings.push(f.history.len());
            }
        }
        // Blocks of history at each training: 2 h, 4 h, then a full 6 h every 6 h.
        assert_eq!(trainings, vec![24, 48, 72, 72, 72], "{trainings:?}");
    }

    #[test]
    fn nothing_is_judged_before_two_hours_of_history() {
        let mut f = MinuteForest::default();
        for i in 0..(MIN_HISTORY_BLOCKS as u32 * BLOCK_MIN - 1) {
            assert!(f.observe(ordinary(i)).is_none());
        }
        assert!(!f.is_trained());
    }
}
