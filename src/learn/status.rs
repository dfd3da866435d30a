//! `stormwatch learn status`: what the labels in the store teach, measured the honest way for
//! data that arrives in time order: train on the past, test on the future (rolling-origin
//! cross-validation), never the other way round.

use super::learner::{Example, Learner};
use crate::store::{LabelRecord, LabelValue};
use serde::Serialize;

/// Time-ordered chunks; each after the first is tested by a model trained on those before it.
const CHUNKS: usize = 6;
/// Fewest labels worth a cross-validation.
const MIN_LABELS: usize = 2 * CHUNKS;

#[derive(Debug, Clone, Serialize)]
pub struct LearnStatus {
    pub labels: usize,
    pub anomaly: usize,
    pub normal: usize,
    pub unsure: usize,
    /// Labels on lines and templates, which carry the features the model learns from.
    pub trainable: usize,
    /// Templates whose labels say "normal" more often than "anomaly".
    pub suppressed_templates: usize,
    /// Those templates, as `source: template`, sorted.
    pub suppressed: Vec<String>,
    /// Saves of the trained model so far.
    pub model_version: Option<i64>,
    /// Train-on-past / test-on-future folds run.
    pub folds: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
}

/// The learnable labels among `records`, oldest first.
pub fn examples(records: &[LabelRecord]) -> Vec<Example> {
    let mut rows: Vec<&LabelRecord> = records
        .iter()
        .filter(|r| r.label != LabelValue::Unsure)
        .collect();
    rows.sort_by_key(|r| r.created_ms);
    rows.into_iter().filter_map(Example::from_record).collect()
}

pub fn status(records: &[LabelRecord], model_version: Option<i64>, threshold: f64) -> LearnStatus {
    let count = |v| records.iter().filter(|r| r.label == v).count();
    let examples = examples(records);
    let mut all = Learner::new(threshold);
    for e in &examples {
        all.add(e.clone());
    }
    let (mut verdicts, mut folds) = (crate::learn::Confusion::default(), 0);
    if examples.len() >= MIN_LABELS {
        let chunk = examples.len().div_ceil(CHUNKS);
        for start in (chunk..examples.len()).step_by(chunk) {
            let mut past = Learner::new(threshold);
            for e in &examples[..start] {
                past.add(e.clone());
            }
            past.retrain();
            for e in &examples[start..(start + chunk).min(examples.len())] {
                verdicts.add(past.flags(&e.template, &e.features), e.anomaly);
            }
            folds += 1;
        }
    }
    let checked = (folds > 0).then_some(verdicts);
    let precision = checked.and_then(|c| c.precision());
    let recall = checked.and_then(|c| c.recall());
    let f1 = checked.and_then(|c| c.f1());
    LearnStatus {
        labels: records.len(),
        anomaly: count(LabelValue::Anomaly),
        normal: count(LabelValue::Normal),
        unsure: count(LabelValue::Unsure),
        trainable: examples.len(),
        suppressed_templates: all.suppressed().count(),
        suppressed: {
            let mut v: Vec<String> = all
                .suppressed()
                .map(|k| match k.split_once('\u{1f}') {
                    Some((source, template)) => format!("{source}: {template}"),
                    None => k.to_string(),
                })
                .collect();
            v.sort();
            v
        },
        model_version,
        folds,
        precision,
        recall,
        f1,
    }
}

impl LearnStatus {
    pub fn render(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}", v));
        let mut out = format!(
            "labels: {} ({} anomaly, {} normal, {} unsure); {} on lines or templates the model learns from\n\
             suppressed templates: {}\n{}model version: {}\n",
            self.labels,
            self.anomaly,
            self.normal,
            self.unsure,
            self.trainable,
            self.suppressed_templates,
            self.suppressed
                .iter()
                .map(|s| format!("  {}\n", crate::safe_text::SafeText::new(s)))
                .collect::<String>(),
            self.model_version
                .map_or("none saved yet".to_string(), |v| v.to_string()),
        );
        if self.folds == 0 {
            out.push_str(&format!(
                "held-back check: needs {MIN_LABELS} line or template labels (anomaly or normal); label lines from the label queue (`L` in the console)\n"
            ));
        } else {
            out.push_str(&format!(
                "held-back check (train on the past, test on the future, {} folds): precision {}  recall {}  F1 {}\n",
                self.folds,
                pct(self.precision),
                pct(self.recall),
                pct(self.f1)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::features::DIMS;

    fn record(ms: i64, template: &str, word: usize, anomaly: bool) -> LabelRecord {
        let mut x = vec![0.0f32; DIMS];
        x[4 + word] = 1.0;
        let ex = Example {
            template: template.into(),
            features: x,
            anomaly,
        };
        LabelRecord {
            created_ms: ms,
            session: "s".into(),
            target_kind: "line".into(),
            target_id: format!("{ms}"),
            label: if anomaly {
                LabelValue::Anomaly
            } else {
                LabelValue::Normal
            },
            source: String::new(),
            entity: String::new(),
            signal: String::new(),
            incident_kind: String::new(),
            score: None,
            event_ms: None,
            features: ex.features_json(),
            evidence: String::new(),
            note: String::new(),
        }
    }

    #[test]
    fn future_labels_are_predicted_from_past_ones() {
        let records: Vec<LabelRecord> = (0..24)
            .map(|i| record(i, &format!("t{}", i % 4), (i % 2) as usize, i % 2 == 0))
            .collect();
        let s = status(&records, Some(3), 0.7);
        assert_eq!(
            (s.labels, s.trainable, s.anomaly, s.normal),
            (24, 24, 12, 12)
        );
        assert_eq!(s.folds, 5);
        assert_eq!(s.f1, Some(1.0));
        assert!(s.render().contains("F1 1.00"));
    }

    #[test]
    fn too_few_labels_say_what_to_do() {
        let s = status(&[record(1, "t", 0, true)], None, 0.7);
        assert_eq!(s.folds, 0);
        assert!(s.render().contains("label queue"));
    }
}
