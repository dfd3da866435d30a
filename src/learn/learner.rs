//! Labels → a probability of "anomaly" for every line, blended from three sources of belief:
//!
//! 1. the engine's unsupervised score, mapped so its threshold is probability ½;
//! 2. the random forest over [`features`](super::features), once labels of both classes exist,
//!    weighted by how many labels it learned from;
//! 3. the labels on the line's own template, as evidence against that prior (a Beta-style mean):
//!    one "normal" label suppresses a template, one "anomaly" label confirms it, and a later
//!    opposite label undoes either.
//!
//! The working threshold stays the engine's: a line is an anomaly when its probability is ≥ ½,
//! which [`Learner::score`] maps back onto the engine's 0..1 scale.

use super::forest::{Forest, ForestOptions};
use std::collections::HashMap;

/// Labels at which the forest and the unsupervised score weigh the same.
const FOREST_HALF_WEIGHT_LABELS: f64 = 5.0;
/// How many labels' worth of weight the model's belief carries against a template's own labels.
const TEMPLATE_PRIOR: f64 = 1.0;

/// One labelled line, as the learner keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Example {
    /// Source and template text (see [`template_key`]).
    pub template: String,
    pub features: Vec<f32>,
    pub anomaly: bool,
}

impl Example {
    /// How a line label's `features` are stored: the vector and the template key.
    pub fn features_json(&self) -> serde_json::Value {
        serde_json::json!({ "x": self.features, "template": self.template })
    }

    /// The example a stored label carries, if it is a line or template label with a feature
    /// vector of the current length (older vectors are skipped, not misread).
    pub fn from_record(r: &crate::store::LabelRecord) -> Option<Example> {
        use crate::store::LabelValue;
        if !matches!(r.target_kind.as_str(), "line" | "template") {
            return None;
        }
        let anomaly = match r.label {
            LabelValue::Anomaly => true,
            LabelValue::Normal => false,
            LabelValue::Unsure => return None,
        };
        let template = r.features.get("template")?.as_str()?.to_string();
        let features: Vec<f32> = r
            .features
            .get("x")?
            .as_array()?
            .iter()
            .map(|v| v.as_f64().map(|f| f as f32))
            .collect::<Option<_>>()?;
        (features.len() == super::features::DIMS).then_some(Example {
            template,
            features,
            anomaly,
        })
    }
}

/// A template's identity across sessions and machines: template ids are local to one miner, text
/// is not.
pub fn template_key(source: &str, template: &str) -> String {
    format!("{source}\u{1f}{template}")
}

#[derive(Debug, Clone)]
pub struct Learner {
    threshold: f64,
    examples: Vec<Example>,
    /// Per template key: (anomaly labels, normal labels).
    templates: HashMap<String, (u32, u32)>,
    forest: Option<Forest>,
    version: u32,
    opts: ForestOptions,
}

impl Learner {
    /// A learner whose working threshold is the engine's `threshold`.
    pub fn new(threshold: f64) -> Self {
        Learner {
            threshold: threshold.clamp(0.01, 0.99),
            examples: Vec::new(),
            templates: HashMap::new(),
            forest: None,
            version: 0,
            opts: ForestOptions::default(),
        }
    }

    /// Takes a label; [`retrain`](Self::retrain) makes the forest see it, the template memory sees
    /// it at once.
    pub fn add(&mut self, example: Example) {
        let counts = self.templates.entry(example.template.clone()).or_default();
        if example.anomaly {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        self.examples.push(example);
    }

    /// Retrains the forest from every label; a new version when it trained.
    pub fn retrain(&mut self) -> bool {
        let xs: Vec<Vec<f32>> = self.examples.iter().map(|e| e.features.clone()).collect();
        let ys: Vec<bool> = self.examples.iter().map(|e| e.anomaly).collect();
        self.forest = Forest::train(&xs, &ys, self.opts);
        if self.forest.is_some() {
            self.version += 1;
        }
        self.forest.is_some()
    }

    pub fn labels(&self) -> usize {
        self.examples.len()
    }

    pub fn examples(&self) -> &[Example] {
        &self.examples
    }

    /// Labels given on a template: (anomaly, normal).
    pub fn template_labels(&self, template: &str) -> (u32, u32) {
        self.templates.get(template).copied().unwrap_or_default()
    }

    /// Templates labelled normal more often than anomaly: the suppressions the console lists.
    pub fn suppressed(&self) -> impl Iterator<Item = &str> {
        self.templates
            .iter()
            .filter(|(_, (a, n))| n > a)
            .map(|(k, _)| k.as_str())
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn forest(&self) -> Option<&Forest> {
        self.forest.as_ref()
    }

    /// Probability that a line of `template` with `features` is an anomaly.
    pub fn probability(&self, template: &str, features: &[f32]) -> f64 {
        let unsupervised =
            self.probability_of_score(features.first().copied().unwrap_or(0.0) as f64);
        let model = match &self.forest {
            Some(f) => {
                let n = self.examples.len() as f64;
                let w = n / (n + FOREST_HALF_WEIGHT_LABELS);
                w * f.predict(features) + (1.0 - w) * unsupervised
            }
            None => unsupervised,
        };
        let (a, n) = self.template_labels(template);
        (f64::from(a) + TEMPLATE_PRIOR * model) / (f64::from(a + n) + TEMPLATE_PRIOR)
    }

    /// Whether a line is an anomaly at the working threshold.
    pub fn flags(&self, template: &str, features: &[f32]) -> bool {
        self.probability(template, features) >= 0.5
    }

    /// The blended belief on the engine's scale: ≥ the threshold exactly when the probability
    /// is ≥ ½.
    pub fn score(&self, template: &str, features: &[f32]) -> f64 {
        let p = self.probability(template, features);
        let t = self.threshold;
        if p < 0.5 {
            p * 2.0 * t
        } else {
            t + (p - 0.5) * 2.0 * (1.0 - t)
        }
    }

    fn probability_of_score(&self, s: f64) -> f64 {
        let (s, t) = (s.clamp(0.0, 1.0), self.threshold);
        if s < t {
            0.5 * s / t
        } else {
            0.5 + 0.5 * (s - t) / (1.0 - t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::features::DIMS;

    fn x(score: f32, word: usize) -> Vec<f32> {
        let mut v = vec![0.0; DIMS];
        v[0] = score;
        v[4 + word] = 1.0;
        v
    }

    #[test]
    fn without_labels_the_engine_decides() {
        let l = Learner::new(0.7);
        assert!((l.score("t", &x(0.7, 0)) - 0.7).abs() < 1e-6);
        assert!((l.score("t", &x(0.35, 0)) - 0.35).abs() < 1e-6);
        assert!((l.probability("t", &x(0.7, 0)) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn a_normal_label_suppresses_its_template_and_an_anomaly_label_undoes_it() {
        let mut l = Learner::new(0.7);
        let ex = |anomaly| Example {
            template: "src\u{1f}disk full".into(),
            features: x(0.95, 1),
            anomaly,
        };
        l.add(ex(false));
        assert!(l.score("src\u{1f}disk full", &x(0.95, 1)) < 0.7);
        assert_eq!(l.suppressed().count(), 1);
        l.add(ex(true));
        l.add(ex(true));
        assert!(l.score("src\u{1f}disk full", &x(0.95, 1)) >= 0.7);
        assert_eq!(l.suppressed().count(), 0);
    }

    #[test]
    fn the_forest_carries_labels_to_unlabelled_templates_that_share_words() {
        let mut l = Learner::new(0.7);
        for i in 0..6 {
            l.add(Example {
                template: format!("fatal {i}"),
                features: x(0.3, 2),
                anomaly: true,
            });
            l.add(Example {
                template: format!("info {i}"),
                features: x(0.3, 3),
                anomaly: false,
            });
        }
        assert!(l.retrain());
        assert_eq!(l.version(), 1);
        assert!(l.probability("fatal new", &x(0.3, 2)) > 0.5);
        assert!(l.probability("info new", &x(0.3, 3)) < 0.5);
    }
}
