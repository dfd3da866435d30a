//! The analyst in the console: which answer each incident shows, the one question in flight to
//! the local model with its streamed text, re-asking when the incident's evidence changes (at
//! most once a minute, or at once on `R`), and answers kept in the store per incident state so a
//! restart does not ask again. The model thread does the work; this only polls it, so keys and
//! drawing never wait on it.

use crate::analyst::consult::{Analysis, by_rules, finish, request, state_key};
use crate::analyst::local::{Event, LocalError, LocalModel, Status, Ticket};
use crate::analyst::pack::Pack;
use crate::incident::Incident;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// An ongoing incident's evidence changes every minute; asking the model about each change would
/// keep a core busy for nothing an operator reads.
const REASK_EVERY: Duration = Duration::from_secs(60);
/// Streamed text kept for the pane.
const STREAM_CHARS: usize = 400;

struct Shown {
    key: String,
    analysis: Analysis,
    at: Instant,
}

struct Pending {
    incident: u64,
    key: String,
    inc: Box<Incident>,
    pack: Box<Pack>,
    ticket: Ticket,
    streamed: String,
}

/// What the incident pane shows for the analyst.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalystView {
    pub analysis: Analysis,
    /// The model's answer so far, while it streams.
    pub streaming: Option<String>,
    /// The answer is about an earlier state of the incident.
    pub stale: bool,
    /// Loading, or why there is no model.
    pub model: String,
}

pub struct Analyst {
    model: Option<LocalModel>,
    /// Why there is no model, when there is none.
    off: String,
    shown: HashMap<u64, Shown>,
    pending: Option<Pending>,
    /// Incidents whose next question skips the cache and the once-a-minute limit (`R`).
    forced: Vec<u64>,
    /// Token budget of an evidence pack.
    pub budget: usize,
}

/// Answers the console finished, for the store.
pub struct Finished {
    pub key: String,
    pub incident: u64,
    pub analysis: Analysis,
}

impl Analyst {
    pub fn new(model: Result<LocalModel, String>) -> Self {
        let (model, off) = match model {
            Ok(m) => (Some(m), String::new()),
            Err(why) => (None, why),
        };
        Analyst {
            model,
            off,
            shown: HashMap::new(),
            pending: None,
            forced: Vec::new(),
            budget: crate::analyst::pack::DEFAULT_BUDGET,
        }
    }

    /// Rules only, as in tests and `--no-model`.
    pub fn rules_only(why: &str) -> Self {
        Analyst::new(Err(why.to_string()))
    }

    /// The model's name when it is ready to answer.
    fn ready(&self) -> Option<String> {
        match self.model.as_ref()?.status() {
            Status::Ready { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The model's state in a few words.
    pub fn model_state(&self) -> String {
        match self.model.as_ref().map(LocalModel::status) {
            None => self.off.clone(),
            Some(Status::Loading) => "model loading".into(),
            Some(Status::Ready { name, .. }) => format!("model {name}"),
            Some(Status::Failed(why)) => format!("model failed: {why}"),
        }
    }

    /// `R`: ask again about `incident`, now.
    pub fn reask(&mut self, incident: u64) -> String {
        if self.model.is_none() {
            return format!("no model to ask: {}", self.off);
        }
        self.forced.push(incident);
        if let Some(p) = &self.pending
            && p.incident == incident
        {
            p.ticket.cancel();
        }
        format!("asking the analyst model again about incident #{incident}")
    }

    /// Drains the question in flight; returns whether anything changed and the answer it
    /// finished with.
    pub fn poll(&mut self) -> (bool, Option<Finished>) {
        let Some(p) = self.pending.as_mut() else {
            return (false, None);
        };
        let mut changed = false;
        let mut result = None;
        loop {
            match p.ticket.events.try_recv() {
                Ok(Event::Token(t)) => {
                    p.streamed.push_str(&t);
                    changed = true;
                }
                Ok(Event::Done { text, stats }) => {
                    result = Some(Ok((text, stats)));
                    break;
                }
                Ok(Event::Failed(e)) => {
                    result = Some(Err(e));
                    break;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    // The thread stops at its next token past the deadline; one that hangs in
                    // a single decode does not hold the pane.
                    if Instant::now() > p.ticket.deadline() + Duration::from_secs(1) {
                        p.ticket.cancel();
                        result = Some(Err(LocalError::TimedOut));
                    }
                    break;
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    result = Some(Err(LocalError::Gone));
                    break;
                }
            }
        }
        let Some(result) = result else {
            return (changed, None);
        };
        let Some(p) = self.pending.take() else {
            return (true, None);
        };
        // A question cancelled by `R` is asked again at once; nothing to show for it.
        if matches!(result, Err(LocalError::Cancelled)) {
            return (true, None);
        }
        let name = self.ready().unwrap_or_else(|| "local model".into());
        let analysis = finish(&p.inc, &p.pack, &name, result);
        self.shown.insert(
            p.incident,
            Shown {
                key: p.key.clone(),
                analysis: analysis.clone(),
                at: Instant::now(),
            },
        );
        (
            true,
            Some(Finished {
                key: p.key,
                incident: p.incident,
                analysis,
            }),
        )
    }

    /// Asks about the selected incident when its answer is missing or out of date; `cached`
    /// looks an answer up in the store. Returns whether the view changed.
    pub fn want(
        &mut self,
        inc: &Incident,
        pack: &Pack,
        cached: impl FnOnce(&str) -> Option<Analysis>,
    ) -> bool {
        let Some(name) = self.ready() else {
            return false;
        };
        let key = state_key(&name, pack);
        let forced = self.forced.contains(&inc.id);
        if let Some(p) = &self.pending {
            if p.incident == inc.id || !forced && p.key == key {
                return false;
            }
            // The operator moved on: their incident goes first.
            p.ticket.cancel();
            return false;
        }
        if !forced
            && let Some(s) = self.shown.get(&inc.id)
            && (s.key == key || s.at.elapsed() < REASK_EVERY)
        {
            return false;
        }
        if !forced && let Some(analysis) = cached(&key) {
            self.shown.insert(
                inc.id,
                Shown {
                    key,
                    analysis,
                    at: Instant::now(),
                },
            );
            return true;
        }
        self.forced.retain(|i| *i != inc.id);
        let Some(model) = &self.model else {
            return false;
        };
        match request(pack) {
            Ok(r) => {
                self.pending = Some(Pending {
                    incident: inc.id,
                    key,
                    inc: Box::new(inc.clone()),
                    pack: Box::new(pack.clone()),
                    ticket: r.ask(model),
                    streamed: String::new(),
                });
            }
            Err(e) => {
                self.shown.insert(
                    inc.id,
                    Shown {
                        key,
                        analysis: by_rules(inc, pack, format!("model: {e}")),
                        at: Instant::now(),
                    },
                );
            }
        }
        true
    }

    /// What the pane shows for `inc` with this `pack`.
    pub fn view(&self, inc: &Incident, pack: &Pack) -> AnalystView {
        let model = self.model_state();
        let streaming = self
            .pending
            .as_ref()
            .filter(|p| p.incident == inc.id)
            .map(|p| {
                let n = p.streamed.chars().count();
                p.streamed
                    .chars()
                    .skip(n.saturating_sub(STREAM_CHARS))
                    .collect()
            });
        match self.shown.get(&inc.id) {
            Some(s) => AnalystView {
                analysis: s.analysis.clone(),
                streaming,
                stale: self
                    .ready()
                    .is_some_and(|name| state_key(&name, pack) != s.key),
                model,
            },
            None => {
                let why = if self.model.is_none() {
                    self.off.clone()
                } else if streaming.is_some() {
                    "the model is answering".into()
                } else {
                    model.clone()
                };
                AnalystView {
                    analysis: by_rules(inc, pack, why),
                    streaming,
                    stale: false,
                    model,
                }
            }
        }
    }
}
