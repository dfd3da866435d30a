//! `stormwatch eval learning`: how much the operator's labels improve detection, on logs whose
//! lines carry their own alert label as the first token (loghub's BGL and Thunderbird: `-` is
//! normal, anything else an alert).
//!
//! The label token is stripped before the line reaches the engine and is used only as the
//! operator's answer. The engine runs once with the default configuration over every line in file
//! order; its line scores are the unsupervised result. Then a fresh [`Learner`] is taught, one
//! label at a time, by the lines the [`queue`] asks about, and retrained after each answer; after
//! 10, 25, 50 and 100 labels the F1 at the working threshold is measured on the lines not
//! labelled. The same numbers of lines chosen at random (five seeded draws, averaged) are the
//! baseline the queue has to beat.

use crate::engine::Engine;
use crate::learn::features::{LineFacts, line_features};
use crate::learn::learner::{Example, Learner, template_key};
use crate::learn::queue::{self, Candidate};
use crate::parse::Level;
use crate::record::Record;
use crate::rng::Rng;
use crate::safe_text::SafeText;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// 2100-01-01: what year-less timestamps are read against.
const NO_YEAR_BEFORE_MS: i64 = 4_102_444_800_000;

/// Label budgets reported.
pub const BUDGETS: [usize; 4] = [10, 25, 50, 100];
/// Random draws averaged for the baseline.
pub const RANDOM_DRAWS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum LearningEvalError {
    #[error(
        "cannot read {path}: {what}. Point --data at a directory of labelled .log files (loghub BGL: the first token of each line is its label, `-` for normal)."
    )]
    Read { path: PathBuf, what: String },
    #[error(
        "{0} has no labelled lines; each line must start with its label token (`-` for normal)"
    )]
    Empty(PathBuf),
}

#[derive(Debug, Clone, Serialize)]
pub struct LearningEval {
    pub files: Vec<String>,
    pub lines: usize,
    pub anomalies: usize,
    /// Lines the engine rejected (scored as not anomalous).
    pub rejected: usize,
    /// The engine's working threshold (the default configuration's).
    pub threshold: f64,
    pub f1_unsupervised: f64,
    /// ROC-AUC of the engine's unsupervised line scores: how well they rank alerts above normal
    /// lines whatever the threshold.
    pub auc_unsupervised: f64,
    pub f1_queue: BTreeMap<String, f64>,
    pub f1_random: BTreeMap<String, f64>,
    /// Of the queue's labels, how many were anomalies, by budget.
    pub queue_anomalies: BTreeMap<String, usize>,
    /// How much of the unsupervised F1 error (1 − F1) 50 queue labels remove.
    pub error_reduction_50: f64,
}

/// One line as the learner sees it.
struct Item {
    template: String,
    features: Vec<f32>,
    source: Arc<str>,
    anomaly: bool,
}

pub fn run(data: &Path) -> Result<LearningEval, LearningEvalError> {
    let files = log_files(data)?;
    let threshold = crate::config::Config::default()
        .engine_options(0)
        .map(|o| o.threshold)
        .unwrap_or(0.7);
    let mut items = Vec::new();
    let mut rejected = 0;
    for path in &files {
        let (file_items, file_rejected) = score_file(path, threshold)?;
        items.extend(file_items);
        rejected += file_rejected;
    }
    if items.is_empty() {
        return Err(LearningEvalError::Empty(data.to_path_buf()));
    }
    let unlabelled = HashSet::new();
    let f1_unsupervised = f1(&Learner::new(threshold), &items, &unlabelled);
    let auc_unsupervised = auc(&items);
    let (f1_queue, queue_anomalies) = by_queue(&items, threshold);
    let mut f1_random = BTreeMap::new();
    for budget in BUDGETS {
        let mean = (0..RANDOM_DRAWS)
            .map(|draw| by_random(&items, threshold, budget, draw))
            .sum::<f64>()
            / RANDOM_DRAWS as f64;
        f1_random.insert(budget.to_string(), mean);
    }
    let f1_50 = f1_queue.get("50").copied().unwrap_or(0.0);
    let error_reduction_50 = if f1_unsupervised < 1.0 {
        1.0 - (1.0 - f1_50) / (1.0 - f1_unsupervised)
    } else {
        0.0
    };
    Ok(LearningEval {
        files: files
            .iter()
            .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into())
            .collect(),
        lines: items.len(),
        anomalies: items.iter().filter(|i| i.anomaly).count(),
        rejected,
        threshold,
        f1_unsupervised,
        auc_unsupervised,
        f1_queue,
        f1_random,
        queue_anomalies,
        error_reduction_50,
    })
}

fn log_files(data: &Path) -> Result<Vec<PathBuf>, LearningEvalError> {
    let read_err = |e: std::io::Error| LearningEvalError::Read {
        path: data.to_path_buf(),
        what: e.to_string(),
    };
    if data.is_file() {
        return Ok(vec![data.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(data)
        .map_err(read_err)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LearningEvalError::Empty(data.to_path_buf()));
    }
    Ok(files)
}

/// Runs one file through a fresh engine (default configuration) and returns its lines with their
/// features, and how many the engine rejected.
fn score_file(path: &Path, threshold: f64) -> Result<(Vec<Item>, usize), LearningEvalError> {
    let bytes = std::fs::read(path).map_err(|e| LearningEvalError::Read {
        path: path.to_path_buf(),
        what: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let group: Arc<str> = Arc::from(path.file_name().unwrap_or_default().to_string_lossy());
    let stream: Arc<str> = Arc::from("-");
    let mut opts = crate::config::Config::default()
        .engine_options(0)
        .unwrap_or_default();
    opts.threshold = threshold;
    let mut engine = Engine::new(opts);
    let mut seen = Vec::new();
    let mut last_ms = 0;
    let mut rejected = 0;
    for line in text.lines() {
        let Some((label, rest)) = line.trim_start().split_once(char::is_whitespace) else {
            continue;
        };
        let ts = line_ms(rest).unwrap_or(last_ms);
        last_ms = ts;
        let out = engine.ingest(Record {
            arrival_ms: ts,
            ts_ms: ts,
            group: group.clone(),
            stream: stream.clone(),
            text: SafeText::new(rest),
        });
        let scored = out
            .scored
            .map(|s| (s, engine.miner().count(s.template), s.template));
        if scored.is_none() {
            rejected += 1;
        }
        seen.push((label != "-", scored));
    }
    let miner = engine.miner();
    let items = seen
        .into_iter()
        .map(|(anomaly, scored)| {
            let (score, level, text, lines) = match scored {
                Some((s, lines, id)) => {
                    (s.score, s.level, miner.template(miner.canonical(id)), lines)
                }
                None => (0.0, Level::Warn, String::from("(rejected)"), 1),
            };
            let features = line_features(&LineFacts {
                score,
                level,
                template: &text,
                template_lines: lines,
            });
            Item {
                template: template_key(&group, &text),
                features,
                source: group.clone(),
                anomaly,
            }
        })
        .collect();
    Ok((items, rejected))
}

/// Event time of a labelled line: loghub's HPC logs (BGL, Thunderbird) lead with epoch seconds;
/// other lines are timed as the file reader times them.
fn line_ms(rest: &str) -> Option<i64> {
    let first = rest.split_whitespace().next()?;
    if (9..=10).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_digit()) {
        return first.parse::<i64>().ok().map(|s| s * 1000);
    }
    // Years for year-less syslog stamps are inferred against a fixed date, so runs repeat.
    crate::timefmt::line_time(rest, NO_YEAR_BEFORE_MS)
}

/// ROC-AUC of the unsupervised score (ties count half); ½ when one class is missing.
fn auc(items: &[Item]) -> f64 {
    let score = |i: &Item| f64::from(i.features.first().copied().unwrap_or(0.0));
    let (pos, neg): (Vec<&Item>, Vec<&Item>) = items.iter().partition(|i| i.anomaly);
    if pos.is_empty() || neg.is_empty() {
        return 0.5;
    }
    let pos: Vec<f64> = pos.into_iter().map(score).collect();
    let neg: Vec<f64> = neg.into_iter().map(score).collect();
    crate::eval::cloudtrail::roc_auc(&pos, &neg)
}

/// F1 of "probability ≥ ½" against the line labels, over the lines not in `labelled`.
fn f1(learner: &Learner, items: &[Item], labelled: &HashSet<usize>) -> f64 {
    let mut verdicts = crate::learn::Confusion::default();
    for (i, it) in items.iter().enumerate() {
        if !labelled.contains(&i) {
            verdicts.add(learner.flags(&it.template, &it.features), it.anomaly);
        }
    }
    // Nothing to find and nothing flagged is a perfect score.
    verdicts.f1().unwrap_or(1.0)
}

fn teach(learner: &mut Learner, it: &Item) {
    learner.add(Example {
        template: it.template.clone(),
        features: it.features.clone(),
        anomaly: it.anomaly,
    });
}

/// The queue's run: ask, answer, retrain, ask again.
fn by_queue(items: &[Item], threshold: f64) -> (BTreeMap<String, f64>, BTreeMap<String, usize>) {
    let mut learner = Learner::new(threshold);
    let mut labelled = HashSet::new();
    let (mut f1s, mut found) = (BTreeMap::new(), BTreeMap::new());
    let mut anomalies = 0;
    let last = BUDGETS.iter().copied().max().unwrap_or(0);
    for step in 1..=last.min(items.len()) {
        let open: Vec<usize> = (0..items.len()).filter(|i| !labelled.contains(i)).collect();
        let candidates: Vec<Candidate> = open
            .iter()
            .map(|&i| Candidate {
                source: &items[i].source,
                template: &items[i].template,
                probability: learner.probability(&items[i].template, &items[i].features),
            })
            .collect();
        let pick = queue::rank(
            &candidates,
            |t| {
                let (a, n) = learner.template_labels(t);
                a + n
            },
            1,
        );
        let Some(&at) = pick.first() else { break };
        let i = open[at];
        labelled.insert(i);
        anomalies += usize::from(items[i].anomaly);
        teach(&mut learner, &items[i]);
        learner.retrain();
        if BUDGETS.contains(&step) {
            f1s.insert(step.to_string(), f1(&learner, items, &labelled));
            found.insert(step.to_string(), anomalies);
        }
    }
    (f1s, found)
}

/// F1 after `budget` labels on lines drawn uniformly at random (draw `draw`).
fn by_random(items: &[Item], threshold: f64, budget: usize, draw: u64) -> f64 {
    let mut order: Vec<usize> = (0..items.len()).collect();
    let mut rng = Rng::new(0x1abe1 ^ draw);
    for i in (1..order.len()).rev() {
        let j = rng.range(0, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let mut learner = Learner::new(threshold);
    let labelled: HashSet<usize> = order.iter().take(budget).copied().collect();
    for &i in order.iter().take(budget) {
        teach(&mut learner, &items[i]);
    }
    learner.retrain();
    f1(&learner, items, &labelled)
}

impl LearningEval {
    pub fn render(&self) -> String {
        let row = |m: &BTreeMap<String, f64>| {
            BUDGETS
                .iter()
                .map(|b| {
                    let v = m.get(&b.to_string()).copied().unwrap_or(f64::NAN);
                    format!("{b:>3}: {v:.3}")
                })
                .collect::<Vec<_>>()
                .join("   ")
        };
        format!(
            "eval learning: {} lines ({} alerts, {} rejected) from {}; working threshold {}\n\
             F1 unsupervised      {:.3}   (ROC-AUC of its scores {:.3})\n\
             F1 with queue labels {}\n\
             F1 random labels     {}   (mean of {RANDOM_DRAWS} draws)\n\
             50 queue labels remove {:.0} % of the unsupervised F1 error\n",
            self.lines,
            self.anomalies,
            self.rejected,
            self.files.join(", "),
            self.threshold,
            self.f1_unsupervised,
            self.auc_unsupervised,
            row(&self.f1_queue),
            row(&self.f1_random),
            self.error_reduction_50 * 100.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half() {
        let item = |s: f32, anomaly| Item {
            template: String::new(),
            features: vec![s],
            source: Arc::from("s"),
            anomaly,
        };
        let items = [
            item(0.1, false),
            item(0.2, true),
            item(0.2, false),
            item(0.9, true),
        ];
        assert!((auc(&items) - 0.875).abs() < 1e-12);
    }

    #[test]
    fn epoch_seconds_lead_hpc_lines() {
        assert_eq!(
            line_ms("1117838570 2005.06.03 R02-M1-N0 RAS KERNEL INFO x"),
            Some(1_117_838_570_000)
        );
        assert_eq!(line_ms("hello world"), None);
    }
}
