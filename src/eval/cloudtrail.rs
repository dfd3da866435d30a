//! `stormwatch eval cloudtrail`: the CloudTrail event scorer against a labelled capture.
//!
//! Every `DIR/CloudTrail/*.json` delivery file is read, events are sorted by `eventTime` (stable,
//! files in name order) and scored in that order by a fresh [`crate::trail::Scorer`], exactly as a
//! live trail would feed it. Only then is `DIR/labels.csv` read, and only its `eventID` and `label`
//! columns: `attack_detonation` is positive, `background` negative, `attack_setup_teardown` is
//! reported apart. Without `labels.csv` the scores are still computed (and emitted).

use crate::trail::Scorer;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CloudTrailEvalError {
    #[error(
        "cannot read {path}: {what}. Point --data at a directory with CloudTrail/*.json delivery files."
    )]
    Read { path: PathBuf, what: String },
    #[error("labels.csv has no {0} column; it needs eventID and label")]
    Column(&'static str),
    #[error("cannot write {path}: {what}")]
    Write { path: PathBuf, what: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct CloudTrailEval {
    pub ignore_user_agent: bool,
    pub events: usize,
    pub auc: Option<f64>,
    pub best_f1: Option<f64>,
    /// Score at or above which the best F1 is reached.
    pub best_f1_threshold: Option<f64>,
    pub detonation: usize,
    pub background: usize,
    pub setup_teardown: usize,
    pub mean_score: HashMap<&'static str, f64>,
}

pub fn run(
    dir: &Path,
    ignore_user_agent: bool,
    emit: Option<&Path>,
) -> Result<CloudTrailEval, CloudTrailEvalError> {
    let events = load_events(&dir.join("CloudTrail"))?;
    let mut scorer = if ignore_user_agent {
        Scorer::without_user_agent()
    } else {
        Scorer::new()
    };
    let scored: Vec<(String, f64)> = events
        .iter()
        .map(|e| {
            let id = e
                .get("eventID")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            (id, scorer.score(e))
        })
        .collect();
    if let Some(path) = emit {
        let mut text = String::from("eventID,score\n");
        for (id, s) in &scored {
            text.push_str(&format!("{id},{s}\n"));
        }
        std::fs::write(path, text).map_err(|e| CloudTrailEvalError::Write {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
    }
    let scores: HashMap<&str, f64> = scored.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    let labels_path = dir.join("labels.csv");
    let labels = if labels_path.exists() {
        load_labels(&labels_path)?
    } else {
        Vec::new()
    };
    let (mut pos, mut neg, mut setup) = (Vec::new(), Vec::new(), Vec::new());
    for (id, label) in &labels {
        let Some(&s) = scores.get(id.as_str()) else {
            continue;
        };
        match label.as_str() {
            "attack_detonation" => pos.push(s),
            "background" => neg.push(s),
            "attack_setup_teardown" => setup.push(s),
            _ => {}
        }
    }
    let labelled = !pos.is_empty() && !neg.is_empty();
    let best = labelled.then(|| best_f1(&pos, &neg));
    let mut mean_score = HashMap::new();
    for (name, v) in [
        ("attack_detonation", &pos),
        ("background", &neg),
        ("attack_setup_teardown", &setup),
    ] {
        if !v.is_empty() {
            mean_score.insert(name, v.iter().sum::<f64>() / v.len() as f64);
        }
    }
    Ok(CloudTrailEval {
        ignore_user_agent,
        events: events.len(),
        auc: labelled.then(|| roc_auc(&pos, &neg)),
        best_f1: best.map(|b| b.0),
        best_f1_threshold: best.map(|b| b.1),
        detonation: pos.len(),
        background: neg.len(),
        setup_teardown: setup.len(),
        mean_score,
    })
}

/// Every delivery file, in name order so ties in eventTime break the same way on every run.
fn load_events(dir: &Path) -> Result<Vec<Value>, CloudTrailEvalError> {
    let rerr = |path: &Path, what: String| CloudTrailEvalError::Read {
        path: path.to_path_buf(),
        what,
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| rerr(dir, e.to_string()))?
        .filter_map(Result::ok)
        .map(|d| d.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| rerr(&f, e.to_string()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| rerr(&f, e.to_string()))?;
        if let Some(Value::Array(recs)) = v.get("Records") {
            events.extend(recs.iter().cloned());
        }
    }
    let time = |e: &Value| {
        e.get("eventTime")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    events.sort_by_key(time);
    Ok(events)
}

fn load_labels(path: &Path) -> Result<Vec<(String, String)>, CloudTrailEvalError> {
    let rerr = |what: String| CloudTrailEvalError::Read {
        path: path.to_path_buf(),
        what,
    };
    let mut rdr = csv::Reader::from_path(path).map_err(|e| rerr(e.to_string()))?;
    let headers = rdr.headers().map_err(|e| rerr(e.to_string()))?.clone();
    let col = |name: &'static str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or(CloudTrailEvalError::Column(name))
    };
    let (id_col, label_col) = (col("eventID")?, col("label")?);
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| rerr(e.to_string()))?;
        if let (Some(id), Some(l)) = (rec.get(id_col), rec.get(label_col)) {
            out.push((id.to_string(), l.to_string()));
        }
    }
    Ok(out)
}

/// Mann-Whitney form of ROC-AUC; tied scores count half.
pub fn roc_auc(pos: &[f64], neg: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = pos
        .iter()
        .map(|&s| (s, true))
        .chain(neg.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg_rank * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Best F1 over every score threshold, and that threshold.
pub fn best_f1(pos: &[f64], neg: &[f64]) -> (f64, f64) {
    let mut all: Vec<(f64, bool)> = pos
        .iter()
        .map(|&s| (s, true))
        .chain(neg.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total_pos = pos.len() as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut best, mut thr) = (0.0, 1.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            if all[j].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        let f1 = 2.0 * tp / (tp + fp + total_pos);
        if f1 > best {
            best = f1;
            thr = all[i].0;
        }
        i = j;
    }
    (best, thr)
}

impl CloudTrailEval {
    pub fn render(&self) -> String {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
        let mut means: Vec<_> = self.mean_score.iter().collect();
        means.sort_by(|a, b| a.0.cmp(b.0));
        format!(
            "{} events ({}), {} detonation / {} background / {} setup-teardown labelled\nROC-AUC {}, best F1 {} at score >= {}\nmean scores: {}\n",
            self.events,
            if self.ignore_user_agent {
                "user-agent signals off"
            } else {
                "all signals"
            },
            self.detonation,
            self.background,
            self.setup_teardown,
            f(self.auc),
            f(self.best_f1),
            f(self.best_f1_threshold),
            means
                .iter()
                .map(|(k, v)| format!("{k} {v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_f1() {
        assert_eq!(roc_auc(&[0.9, 0.8], &[0.1, 0.2]), 1.0);
        assert_eq!(roc_auc(&[0.5], &[0.5]), 0.5);
        let (f1, thr) = best_f1(&[0.9, 0.8], &[0.85, 0.1]);
        assert!((f1 - 0.8).abs() < 1e-9 && thr == 0.8, "{f1} {thr}");
    }
}
