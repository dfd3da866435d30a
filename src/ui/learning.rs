//! The console's side of learning: a background thread that retrains the learner after every
//! label (the console never waits for it), and the label queue the tail pane shows on `L`: the
//! lines whose label would teach the most, each with the learner's current belief.

use crate::engine::Engine;
use crate::learn::features::{LineFacts, line_features};
use crate::learn::learner::{Example, Learner, template_key};
use crate::learn::queue::{self, Candidate};
use crate::safe_text::SafeText;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Lines the queue shows.
pub const QUEUE_LEN: usize = 30;
/// Tail lines between two refreshes of the queue while it is shown.
const QUEUE_REFRESH_LINES: u64 = 500;

/// One line the queue asks about.
#[derive(Debug, Clone)]
pub struct QueueItem {
    pub group: Arc<str>,
    pub arrival_ms: i64,
    pub text: SafeText,
    pub template: String,
    pub features: Vec<f32>,
    /// The learner's probability that the line is an anomaly.
    pub probability: f64,
    /// Listed because its template is suppressed: an `a` label here undoes the suppression.
    pub suppressed: bool,
}

impl QueueItem {
    /// How a label names the line: its source and arrival time.
    pub fn target_id(&self) -> String {
        format!("{}@{}", self.group, self.arrival_ms)
    }

    pub fn example(&self, anomaly: bool) -> Example {
        Example {
            template: self.template.clone(),
            features: self.features.clone(),
            anomaly,
        }
    }
}

pub struct Learning {
    /// The newest trained learner; the engine holds the same one.
    pub learner: Arc<Learner>,
    to_trainer: Option<Sender<Example>>,
    from_trainer: Option<Receiver<Arc<Learner>>>,
    /// Whether the tail pane shows the queue instead of the tail.
    pub show: bool,
    pub queue: Vec<QueueItem>,
    pub selected: usize,
    /// Engine lines, and the learner's version and label count, the queue was built at.
    queue_at: Option<(u64, u32, usize)>,
    /// The note being typed (`c`), and the one the next label carries.
    pub typing: Option<String>,
    pub note: String,
}

impl Learning {
    /// Starts the trainer thread with the labels an earlier run saved.
    pub fn start(threshold: f64, saved: Vec<Example>) -> Learning {
        let (to_trainer, examples) = channel::<Example>();
        let (learners, from_trainer) = channel::<Arc<Learner>>();
        let mut first = Learner::new(threshold);
        for e in saved {
            first.add(e);
        }
        let spawned = std::thread::Builder::new()
            .name("learner".into())
            .spawn(move || {
                let mut learner = first;
                if learner.labels() > 0 {
                    learner.retrain();
                    let _ = learners.send(Arc::new(learner.clone()));
                }
                // Labels that arrive while a training runs are taken together by the next one.
                while let Ok(e) = examples.recv() {
                    learner.add(e);
                    while let Ok(more) = examples.try_recv() {
                        learner.add(more);
                    }
                    learner.retrain();
                    if learners.send(Arc::new(learner.clone())).is_err() {
                        break;
                    }
                }
            });
        let (to_trainer, from_trainer) = match spawned {
            Ok(_) => (Some(to_trainer), Some(from_trainer)),
            Err(e) => {
                tracing::error!("learner thread not started, labels will not retrain: {e}");
                (None, None)
            }
        };
        Learning {
            learner: Arc::new(Learner::new(threshold)),
            to_trainer,
            from_trainer,
            show: false,
            queue: Vec::new(),
            selected: 0,
            queue_at: None,
            typing: None,
            note: String::new(),
        }
    }

    /// Hands a label to the trainer.
    pub fn teach(&mut self, example: Example) {
        if let Some(tx) = &self.to_trainer {
            let _ = tx.send(example);
        }
    }

    /// The newest learner the trainer finished, if one came in since the last call.
    pub fn poll(&mut self) -> Option<Arc<Learner>> {
        let mut newest = None;
        while let Some(l) = self.from_trainer.as_ref().and_then(|rx| rx.try_recv().ok()) {
            newest = Some(l);
        }
        if let Some(l) = &newest {
            self.learner = l.clone();
        }
        newest
    }

    /// Rebuilds the queue from the tail when it is shown and stale. Returns whether it changed.
    pub fn refresh(&mut self, engine: &Engine) -> bool {
        if !self.show {
            return false;
        }
        let lines = engine.lines();
        let taught = (self.learner.version(), self.learner.labels());
        let fresh = self.queue_at.is_some_and(|(at, version, labels)| {
            (version, labels) == taught && lines.saturating_sub(at) < QUEUE_REFRESH_LINES
        });
        if fresh {
            return false;
        }
        // A learner that learned more reorders the queue: its top is what to ask next.
        if self.queue_at.is_some_and(|(_, v, n)| (v, n) != taught) {
            self.selected = 0;
        }
        self.queue_at = Some((lines, taught.0, taught.1));
        self.queue = build_queue(engine, &self.learner);
        self.selected = self.selected.min(self.queue.len().saturating_sub(1));
        true
    }

    /// Takes the selected line off the queue (it has been labelled).
    pub fn take_selected(&mut self) -> Option<QueueItem> {
        if self.selected >= self.queue.len() {
            return None;
        }
        let item = self.queue.remove(self.selected);
        self.selected = self.selected.min(self.queue.len().saturating_sub(1));
        Some(item)
    }

    pub fn toggle(&mut self) {
        self.show = !self.show;
        self.queue_at = None;
    }
}

/// The tail's lines, most informative first, one per template.
fn build_queue(engine: &Engine, learner: &Learner) -> Vec<QueueItem> {
    let miner = engine.miner();
    // Thousands of tail lines share a few dozen templates: render each template once.
    let mut texts: crate::template::TemplateMap<String> = Default::default();
    let items: Vec<QueueItem> = engine
        .tail()
        .iter()
        .filter(|l| l.template != crate::template::TemplateId::MAX)
        .map(|l| {
            let id = miner.canonical(l.template);
            let text = texts.entry(id).or_insert_with(|| miner.template(id));
            let features = line_features(&LineFacts {
                score: l.score,
                level: l.level,
                template: text,
                template_lines: miner.count(id),
            });
            let template = template_key(&l.group, text);
            let probability = learner.probability(&template, &features);
            QueueItem {
                group: l.group.clone(),
                arrival_ms: l.arrival_ms,
                text: l.text.clone(),
                template,
                features,
                probability,
                suppressed: false,
            }
        })
        .collect();
    let candidates: Vec<Candidate> = items
        .iter()
        .map(|i| Candidate {
            source: &i.group,
            template: &i.template,
            probability: i.probability,
        })
        .collect();
    let order = queue::rank(
        &candidates,
        |t| {
            let (a, n) = learner.template_labels(t);
            a + n
        },
        QUEUE_LEN,
    );
    let mut queue: Vec<QueueItem> = order.into_iter().map(|i| items[i].clone()).collect();
    // Suppressed templates come last, each with its newest line, so a suppression can be undone
    // where it was made.
    let suppressed: std::collections::HashSet<&str> = learner.suppressed().collect();
    let mut listed = std::collections::HashSet::new();
    for item in items.iter().rev() {
        if suppressed.contains(item.template.as_str()) && listed.insert(item.template.as_str()) {
            queue.push(QueueItem {
                suppressed: true,
                ..item.clone()
            });
        }
    }
    queue
}
