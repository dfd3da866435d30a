//! Anomalies → incidents.
//!
//! A series whose score crosses the threshold opens an *anomaly*, which stays open while the series
//! keeps crossing it (gaps of a few minutes allowed). Anomalies close in time that share a key (the
//! entity, or a linked instance, interface, user, access key or IP) form one *incident*. The
//! incident's kind and main entity come from which signals dominate it; they are recomputed as
//! evidence arrives, so an incident that starts as a few REJECTs and turns into an SSH storm is
//! named for what it became.

use crate::safe_text::SafeText;
use crate::template::TemplateId;
use crate::window::Signal;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Minutes of event time a series may fall below the threshold and still continue its anomaly.
const ANOMALY_GAP_MIN: i64 = 3;
/// Milliseconds without a new anomaly after which an incident closes.
pub const INCIDENT_IDLE_MS: i64 = 20 * 60_000;
const MAX_SAMPLES: usize = 3;
/// Context evidence kept per anomaly.
const MAX_CONTEXT: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    SshBruteForce,
    LambdaTimeoutCascade,
    DiskFilling,
    LeakedAccessKey,
    /// A numeric series left its usual pattern.
    MetricAnomaly,
    Unknown,
}

impl CauseKind {
    pub fn label(self) -> &'static str {
        match self {
            CauseKind::SshBruteForce => "SSH brute force",
            CauseKind::LambdaTimeoutCascade => "Lambda timeout cascade",
            CauseKind::DiskFilling => "EC2 disk filling up",
            CauseKind::LeakedAccessKey => "Leaked access key",
            CauseKind::MetricAnomaly => "Metric out of its pattern",
            CauseKind::Unknown => "Anomalous activity",
        }
    }

    fn of(signal: Signal) -> CauseKind {
        match signal {
            Signal::SshAuthFailure | Signal::VpcReject => CauseKind::SshBruteForce,
            Signal::LambdaTimeout | Signal::LambdaError | Signal::LambdaInvocations => {
                CauseKind::LambdaTimeoutCascade
            }
            Signal::DiskUsedPct | Signal::DiskError => CauseKind::DiskFilling,
            Signal::AccessDenied
            | Signal::NewRegion
            | Signal::S3Delete
            | Signal::S3Denied
            | Signal::UnusualApiCall => CauseKind::LeakedAccessKey,
            Signal::Metric => CauseKind::MetricAnomaly,
            _ => CauseKind::Unknown,
        }
    }
}

/// A metric value as people write it: no trailing digits they cannot use.
pub fn short_number(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn from_score(score: f64) -> Self {
        match score {
            s if s >= 0.95 => Severity::Critical,
            s if s >= 0.85 => Severity::High,
            s if s >= 0.75 => Severity::Medium,
            _ => Severity::Low,
        }
    }
}

pub type AnomalyId = u64;
/// Incident number as the operator sees it: 1 for the first incident of a session.
pub type IncidentId = u64;

/// A run of minutes in which one series stayed above the threshold.
#[derive(Debug, Clone)]
pub struct Anomaly {
    pub id: AnomalyId,
    pub signal: Signal,
    pub entity: String,
    pub links: Vec<String>,
    pub group: Arc<str>,
    pub first_minute: i64,
    pub last_minute: i64,
    /// Engine clock when it opened.
    pub opened_ms: i64,
    pub peak_score: f64,
    pub observed: f64,
    pub expected: f64,
    pub window_min: u8,
    /// The first lines that crossed the threshold and the latest one.
    pub samples: Vec<SafeText>,
    pub templates: BTreeMap<TemplateId, u32>,
    /// Source-wide evidence around its crossings (template rates, changepoints, the isolation
    /// forest), strongest first: the ensemble's other contributors.
    pub context: Vec<crate::ensemble::Evidence>,
    /// A metric's seasonal forecast at its peak crossing.
    pub forecast: Option<crate::forecast::Deviation>,
    /// Index of its incident in [`Tracker::incidents`].
    pub incident: usize,
}

impl Anomaly {
    /// "412 ssh auth failures in 5 min from 45.83.12.7 (expected 9)".
    pub fn explain(&self) -> String {
        if let (Signal::Metric, Some(f)) = (self.signal, self.forecast) {
            format!(
                "{} at {}, forecast {} for this time of day ({:.0} % band {} to {}, {:+.1} sd)",
                self.entity,
                short_number(self.observed),
                short_number(f.expected),
                crate::forecast::LEVEL * 100.0,
                short_number(f.lower),
                short_number(f.upper),
                f.z
            )
        } else if self.signal == Signal::Metric {
            format!(
                "{} at {} (typically {}), outside its usual pattern",
                self.entity,
                short_number(self.observed),
                short_number(self.expected)
            )
        } else if self.signal.is_gauge() && self.window_min > 0 {
            format!(
                "{} rose to {:.0} on {} (from {:.0} within {} min)",
                self.signal.name(),
                self.observed,
                self.entity,
                self.expected,
                self.window_min
            )
        } else if self.signal.is_gauge() {
            format!(
                "{} {:.0} on {} (baseline {:.0})",
                self.signal.name(),
                self.observed,
                self.entity,
                self.expected
            )
        } else {
            format!(
                "{:.0} {} in {} min by {} (expected {:.1})",
                self.observed,
                self.signal.name(),
                self.window_min.max(1),
                self.entity,
                self.expected
            )
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub id: IncidentId,
    pub kind: CauseKind,
    pub main_entity: String,
    pub severity: Severity,
    pub keys: BTreeSet<String>,
    pub anomalies: Vec<AnomalyId>,
    /// Engine clock when it opened (the moment the console first showed it).
    pub opened_ms: i64,
    pub last_activity_ms: i64,
    /// Event-time span of its anomalies.
    pub first_event_ms: i64,
    pub last_event_ms: i64,
    pub peak_score: f64,
    pub closed: bool,
}

impl Incident {
    pub fn title(&self) -> String {
        format!("{} · {}", self.kind.label(), self.main_entity)
    }
}

/// Owns anomalies and incidents; fed one threshold-crossing observation at a time.
#[derive(Debug, Default)]
pub struct Tracker {
    pub anomalies: Vec<Anomaly>,
    pub incidents: Vec<Incident>,
    /// Looked up on every crossing by a borrowed entity name ([`AnomalyKeyRef`]), so the hot path
    /// allocates no key.
    open_anomaly: hashbrown::HashMap<AnomalyKey, usize>,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AnomalyKey(Signal, String);

/// [`AnomalyKey`] borrowed: hashes the same (fields in order; a `&str` hashes as its `String`).
#[derive(Hash)]
struct AnomalyKeyRef<'a>(Signal, &'a str);

impl hashbrown::Equivalent<AnomalyKey> for AnomalyKeyRef<'_> {
    fn equivalent(&self, key: &AnomalyKey) -> bool {
        self.0 == key.0 && self.1 == key.1
    }
}

/// What the tracker did with a crossing, for the caller to flag lines and persist incidents.
pub struct Crossing {
    pub anomaly: AnomalyId,
    pub incident: IncidentId,
    pub new_incident: bool,
}

pub struct Hit<'a> {
    pub signal: Signal,
    pub entity: &'a str,
    pub links: &'a [String],
    pub group: &'a Arc<str>,
    pub minute: i64,
    pub score: f64,
    pub observed: f64,
    pub expected: f64,
    pub window_min: u8,
    pub sample: &'a SafeText,
    pub template: TemplateId,
    /// The source's context evidence at the crossing.
    pub context: &'a [crate::ensemble::Evidence],
    /// A metric's seasonal forecast for the crossing sample.
    pub forecast: Option<crate::forecast::Deviation>,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a crossing of `signal` for `entity` would join an anomaly or incident that is
    /// already open rather than open a new incident.
    pub fn joins_open(
        &self,
        signal: Signal,
        entity: &str,
        links: &[String],
        minute: i64,
        now_ms: i64,
    ) -> bool {
        let open_anomaly = self
            .open_anomaly
            .get(&AnomalyKeyRef(signal, entity))
            .and_then(|&i| self.anomalies.get(i))
            .filter(|a| minute <= a.last_minute + ANOMALY_GAP_MIN)
            .and_then(|a| self.incidents.get(a.incident))
            .is_some_and(|inc| !inc.closed);
        open_anomaly
            || self.incidents.iter().any(|inc| {
                !inc.closed
                    && now_ms - inc.last_activity_ms <= INCIDENT_IDLE_MS
                    && std::iter::once(entity)
                        .chain(links.iter().map(String::as_str))
                        .filter(|k| !k.is_empty() && *k != "-")
                        .any(|k| inc.keys.contains(k))
            })
    }

    /// Records a threshold crossing at engine time `now_ms`.
    pub fn hit(&mut self, h: Hit<'_>, now_ms: i64) -> Crossing {
        let existing = self
            .open_anomaly
            .get(&AnomalyKeyRef(h.signal, h.entity))
            .copied()
            .filter(|&i| h.minute <= self.anomalies[i].last_minute + ANOMALY_GAP_MIN)
            .filter(|&i| {
                self.incidents
                    .get(self.anomalies[i].incident)
                    .is_some_and(|inc| !inc.closed)
            });
        // Whether the incident's keys or peak may change: a crossing that only repeats what its
        // anomaly already showed (most of them, in a flood) leaves the incident's kind alone.
        let mut changed = true;
        let idx = match existing {
            Some(i) => {
                let a = &mut self.anomalies[i];
                a.last_minute = a.last_minute.max(h.minute);
                a.first_minute = a.first_minute.min(h.minute);
                changed = h.score > a.peak_score;
                if h.score >= a.peak_score {
                    a.peak_score = h.score;
                    a.observed = h.observed;
                    a.expected = h.expected;
                    a.window_min = h.window_min;
                    a.forecast = h.forecast;
                }
                for l in h.links {
                    if !a.links.contains(l) && a.links.len() < 16 {
                        a.links.push(l.clone());
                        changed = true;
                    }
                }
                i
            }
            None => {
                let i = self.anomalies.len();
                self.anomalies.push(Anomaly {
                    id: i as AnomalyId,
                    signal: h.signal,
                    entity: h.entity.to_string(),
                    links: h.links.to_vec(),
                    group: h.group.clone(),
                    first_minute: h.minute,
                    last_minute: h.minute,
                    opened_ms: now_ms,
                    peak_score: h.score,
                    observed: h.observed,
                    expected: h.expected,
                    window_min: h.window_min,
                    samples: Vec::new(),
                    templates: BTreeMap::new(),
                    context: Vec::new(),
                    forecast: h.forecast,
                    incident: usize::MAX,
                });
                self.open_anomaly
                    .insert(AnomalyKey(h.signal, h.entity.to_string()), i);
                i
            }
        };
        {
            let a = &mut self.anomalies[idx];
            if !a.samples.contains(h.sample) {
                if a.samples.len() >= MAX_SAMPLES {
                    a.samples.pop();
                }
                a.samples.push(h.sample.clone());
            }
            if a.templates.len() < 32 || a.templates.contains_key(&h.template) {
                *a.templates.entry(h.template).or_default() += 1;
            }
            for e in h.context {
                let same = |x: &crate::ensemble::Evidence| {
                    x.scorer == e.scorer && x.template == e.template
                };
                match a.context.iter_mut().find(|x| same(x)) {
                    Some(x) if e.score > x.score => *x = e.clone(),
                    Some(_) => {}
                    None => a.context.push(e.clone()),
                }
            }
            a.context.sort_by(|x, y| y.score.total_cmp(&x.score));
            a.context.truncate(MAX_CONTEXT);
        }
        let (incident, new_incident) = self.attach(idx, now_ms, changed);
        Crossing {
            anomaly: idx as AnomalyId,
            incident: self.incidents[incident].id,
            new_incident,
        }
    }

    /// Joins anomaly `idx` to an open incident that shares a key, or opens one; returns the
    /// incident's index and whether it is new.
    fn attach(&mut self, idx: usize, now_ms: i64, changed: bool) -> (usize, bool) {
        let a = &self.anomalies[idx];
        if !changed && let Some(inc) = self.incidents.get_mut(a.incident) {
            inc.last_activity_ms = now_ms;
            inc.first_event_ms = inc.first_event_ms.min(a.first_minute * 60_000);
            inc.last_event_ms = inc.last_event_ms.max(a.last_minute * 60_000 + 59_999);
            return (a.incident, false);
        }
        let keys: Vec<String> = std::iter::once(a.entity.clone())
            .chain(a.links.iter().cloned())
            .filter(|k| !k.is_empty() && k != "-")
            .collect();
        let (inc_idx, new) = if a.incident != usize::MAX {
            (a.incident, false)
        } else if let Some(i) = self.incidents.iter().rposition(|inc| {
            !inc.closed
                && now_ms - inc.last_activity_ms <= INCIDENT_IDLE_MS
                && keys.iter().any(|k| inc.keys.contains(k))
        }) {
            (i, false)
        } else {
            let i = self.incidents.len();
            self.incidents.push(Incident {
                id: i as IncidentId + 1,
                kind: CauseKind::Unknown,
                main_entity: a.entity.clone(),
                severity: Severity::Low,
                keys: BTreeSet::new(),
                anomalies: Vec::new(),
                opened_ms: now_ms,
                last_activity_ms: now_ms,
                first_event_ms: a.first_minute * 60_000,
                last_event_ms: a.last_minute * 60_000 + 59_999,
                peak_score: 0.0,
                closed: false,
            });
            (i, true)
        };
        self.anomalies[idx].incident = inc_idx;
        let a = &self.anomalies[idx];
        let inc = &mut self.incidents[inc_idx];
        if !inc.anomalies.contains(&a.id) {
            inc.anomalies.push(a.id);
        }
        inc.keys.extend(keys);
        inc.last_activity_ms = now_ms;
        inc.first_event_ms = inc.first_event_ms.min(a.first_minute * 60_000);
        inc.last_event_ms = inc.last_event_ms.max(a.last_minute * 60_000 + 59_999);
        inc.peak_score = inc.peak_score.max(a.peak_score);
        inc.severity = Severity::from_score(inc.peak_score);
        let (kind, main) = classify(inc, &self.anomalies);
        inc.kind = kind;
        inc.main_entity = main;
        (inc_idx, new)
    }

    /// Closes incidents that have been quiet for [`INCIDENT_IDLE_MS`].
    pub fn tick(&mut self, now_ms: i64) {
        for inc in self.incidents.iter_mut().filter(|i| !i.closed) {
            if now_ms - inc.last_activity_ms > INCIDENT_IDLE_MS {
                inc.closed = true;
            }
        }
    }
}

/// The kind whose signals weigh most, and the entity its strongest signal is about.
fn classify(inc: &Incident, anomalies: &[Anomaly]) -> (CauseKind, String) {
    let mut weight: BTreeMap<CauseKind, f64> = BTreeMap::new();
    for &id in &inc.anomalies {
        let a = &anomalies[id as usize];
        *weight.entry(CauseKind::of(a.signal)).or_default() += a.peak_score;
    }
    let kind = weight
        .iter()
        .filter(|(k, _)| **k != CauseKind::Unknown)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, _)| *k)
        .unwrap_or(CauseKind::Unknown);
    let strongest = |pred: &dyn Fn(&Anomaly) -> bool| {
        inc.anomalies
            .iter()
            .map(|&id| &anomalies[id as usize])
            .filter(|a| pred(a))
            .max_by(|a, b| a.peak_score.total_cmp(&b.peak_score))
    };
    let is_key = |s: &str| s.starts_with("AKIA") || s.starts_with("ASIA");
    let main = match kind {
        CauseKind::LeakedAccessKey => strongest(&|a| {
            matches!(a.signal, Signal::AccessDenied | Signal::NewRegion) && is_key(&a.entity)
        })
        .map(|a| a.entity.clone())
        .or_else(|| inc.keys.iter().find(|k| is_key(k)).cloned()),
        _ => None,
    };
    let main = main
        .or_else(|| strongest(&|a| CauseKind::of(a.signal) == kind).map(|a| a.entity.clone()))
        .unwrap_or_else(|| inc.main_entity.clone());
    (kind, main)
}
