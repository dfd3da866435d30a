//! Ranking remediations: a contextual bandit (disjoint LinUCB) over an incident's features that
//! learns which catalog action fixes what from confirmations, rejections and verified outcomes.
//!
//! The context is a handful of facts an SRE would weigh — the incident's kind, whether the attack
//! comes from many addresses, whether the instance belongs to an Auto Scaling group, whether the
//! function's code changed just before — so the same kind can call for different actions. Each
//! action kind keeps a ridge regression of reward on those features; ranking uses the estimate
//! alone, training adds an exploration bonus. With no data every estimate is 0 and the ranking is
//! the proposal order (a uniform prior).

use super::catalog::{Action, ActionKind, CATALOG, Target};
use super::guard::{InstanceFacts, PROTECT_TAG};
use super::propose::is_instance_id;
use crate::incident::{Anomaly, CauseKind, Incident};
use crate::window::Signal;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Distinct attacking addresses from which blocking them one by one stops being the answer.
pub const MANY_SOURCES: usize = 4;
/// A code change this long before the incident's first event (or during it) counts as its
/// likely cause.
pub const RECENT_CHANGE_MS: i64 = 60 * 60_000;

/// The names of the context features, in vector order.
pub const FEATURES: [&str; 11] = [
    "bias",
    "kind:ssh_brute_force",
    "kind:lambda_timeout_cascade",
    "kind:disk_filling",
    "kind:leaked_access_key",
    "kind:metric_anomaly",
    "kind:unknown",
    "many_sources",
    "auto_scaled_instance",
    "protected_instance",
    "recent_code_change",
];
const D: usize = FEATURES.len();

/// What live lookups said about the incident's resources (`DescribeAutoScalingInstances`,
/// `DescribeInstances` tags, Lambda `GetFunction`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveFacts {
    /// The incident's first instance.
    pub instance: Option<InstanceFacts>,
    /// When the incident's first function's code last changed.
    pub function_modified_ms: Option<i64>,
}

/// An incident as the bandit sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub kind: CauseKind,
    x: [f64; D],
}

impl Context {
    pub fn new(incident: &Incident, anomalies: &[&Anomaly], facts: &LiveFacts) -> Context {
        let mut x = [0.0; D];
        x[0] = 1.0;
        x[1 + kind_slot(incident.kind)] = 1.0;
        let mut sources: Vec<IpAddr> = anomalies
            .iter()
            .filter(|a| matches!(a.signal, Signal::SshAuthFailure | Signal::VpcReject))
            .filter_map(|a| a.entity.parse::<IpAddr>().ok())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        x[7] = f64::from(u8::from(sources.len() >= MANY_SOURCES));
        if let Some(i) = &facts.instance {
            x[8] = f64::from(u8::from(i.auto_scaling_group.is_some()));
            x[9] = f64::from(u8::from(i.tags.iter().any(|(k, _)| k == PROTECT_TAG)));
        }
        x[10] = f64::from(u8::from(facts.function_modified_ms.is_some_and(|m| {
            m >= incident.first_event_ms - RECENT_CHANGE_MS && m <= incident.last_event_ms
        })));
        Context {
            kind: incident.kind,
            x,
        }
    }

    /// The features that are set, by name, for the console's "why this ranking".
    pub fn active(&self) -> Vec<&'static str> {
        FEATURES
            .iter()
            .zip(self.x)
            .skip(1)
            .filter(|(_, v)| *v != 0.0)
            .map(|(n, _)| *n)
            .collect()
    }
}

/// The instance and the function the candidates act on, whose live facts the context needs.
pub fn subjects(candidates: &[Action]) -> (Option<String>, Option<String>) {
    let instance = candidates.iter().find_map(|a| match &a.target {
        Target::Instance { instance_id } | Target::Document { instance_id, .. }
            if is_instance_id(instance_id) =>
        {
            Some(instance_id.clone())
        }
        _ => None,
    });
    let function = candidates.iter().find_map(|a| match &a.target {
        Target::Function { name, .. } => Some(name.clone()),
        _ => None,
    });
    (instance, function)
}

fn kind_slot(kind: CauseKind) -> usize {
    match kind {
        CauseKind::SshBruteForce => 0,
        CauseKind::LambdaTimeoutCascade => 1,
        CauseKind::DiskFilling => 2,
        CauseKind::LeakedAccessKey => 3,
        CauseKind::MetricAnomaly => 4,
        CauseKind::Unknown => 5,
    }
}

/// What an action's run taught: the operator's decision, or the verified outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    Confirmed,
    Rejected,
    Resolved,
    NotResolved,
    MadeWorse,
}

impl Feedback {
    /// A verified outcome outweighs a decision: operators confirm hopeful guesses too.
    pub fn reward(self) -> f64 {
        match self {
            Feedback::Confirmed => 0.3,
            Feedback::Rejected => -0.5,
            Feedback::Resolved => 1.0,
            Feedback::NotResolved => -0.2,
            Feedback::MadeWorse => -1.0,
        }
    }
}

/// One action kind's ridge regression: `A = λI + Σ x xᵀ`, `b = Σ r x`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Arm {
    id: String,
    a: Vec<f64>,
    b: Vec<f64>,
    pulls: u64,
}

impl Arm {
    fn new(kind: ActionKind) -> Arm {
        let mut a = vec![0.0; D * D];
        for i in 0..D {
            a[i * D + i] = RIDGE;
        }
        Arm {
            id: kind.id().to_string(),
            a,
            b: vec![0.0; D],
            pulls: 0,
        }
    }

    /// `(θᵀx, xᵀA⁻¹x)`: the estimate and its uncertainty.
    fn estimate(&self, x: &[f64; D]) -> (f64, f64) {
        let Some(inv) = invert(&self.a) else {
            return (0.0, 1.0);
        };
        let mut ainv_x = [0.0; D];
        for (i, v) in ainv_x.iter_mut().enumerate() {
            *v = (0..D).map(|j| inv[i * D + j] * x[j]).sum();
        }
        let mean = (0..D).map(|i| ainv_x[i] * self.b[i]).sum();
        let var = (0..D).map(|i| ainv_x[i] * x[i]).sum::<f64>().max(0.0);
        (mean, var)
    }

    fn update(&mut self, x: &[f64; D], reward: f64) {
        for i in 0..D {
            for j in 0..D {
                self.a[i * D + j] += x[i] * x[j];
            }
            self.b[i] += reward * x[i];
        }
        self.pulls += 1;
    }
}

/// Ridge strength: one pseudo-observation of reward 0 per feature.
const RIDGE: f64 = 1.0;
/// Exploration bonus while training.
pub const ALPHA: f64 = 0.6;

/// `m⁻¹` by Gauss–Jordan with partial pivoting; `None` if singular (never, with the ridge).
fn invert(m: &[f64]) -> Option<Vec<f64>> {
    let mut a = m.to_vec();
    let mut inv = vec![0.0; D * D];
    for i in 0..D {
        inv[i * D + i] = 1.0;
    }
    for col in 0..D {
        let pivot =
            (col..D).max_by(|&r, &s| a[r * D + col].abs().total_cmp(&a[s * D + col].abs()))?;
        if a[pivot * D + col].abs() < 1e-12 {
            return None;
        }
        for k in 0..D {
            a.swap(col * D + k, pivot * D + k);
            inv.swap(col * D + k, pivot * D + k);
        }
        let p = a[col * D + col];
        for k in 0..D {
            a[col * D + k] /= p;
            inv[col * D + k] /= p;
        }
        for r in 0..D {
            if r != col {
                let f = a[r * D + col];
                if f != 0.0 {
                    for k in 0..D {
                        a[r * D + k] -= f * a[col * D + k];
                        inv[r * D + k] -= f * inv[col * D + k];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// A ranked candidate: the action, the bandit's estimate of its reward and how sure it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub action: Action,
    pub estimate: f64,
    /// Updates this action kind has had.
    pub pulls: u64,
}

/// The learned ranking; serialisable so the store can keep it between sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bandit {
    arms: Vec<Arm>,
    /// Updates so far, every arm together.
    pub updates: u64,
}

impl Default for Bandit {
    fn default() -> Self {
        Bandit {
            arms: CATALOG.into_iter().map(Arm::new).collect(),
            updates: 0,
        }
    }
}

/// The ranking `stormwatch eval agent --emit-model` trained in the simulator (seeds 1–100): what a
/// console starts from before it has learned from its own operator.
const PRIOR: &str = include_str!("../../assets/ranking-prior.json");

impl Bandit {
    /// The simulator-trained ranking; a fresh one if this build's asset does not parse.
    pub fn prior() -> Bandit {
        let mut b: Bandit = serde_json::from_str(PRIOR).unwrap_or_default();
        b.complete();
        b
    }

    /// Adds an untrained arm for every catalog kind a saved model lacks (one saved by an older
    /// build), so every kind can learn.
    pub fn complete(&mut self) {
        for kind in CATALOG {
            if self.arm(kind).is_none() {
                self.arms.push(Arm::new(kind));
            }
        }
    }

    fn arm(&self, kind: ActionKind) -> Option<&Arm> {
        self.arms.iter().find(|a| a.id == kind.id())
    }

    /// Candidates best first by estimated reward; ties keep the proposal order.
    pub fn rank(&self, ctx: &Context, candidates: &[Action]) -> Vec<Ranked> {
        let mut out: Vec<Ranked> = candidates
            .iter()
            .map(|c| {
                let arm = self.arm(c.kind);
                Ranked {
                    action: c.clone(),
                    estimate: arm.map_or(0.0, |a| a.estimate(&ctx.x).0),
                    pulls: arm.map_or(0, |a| a.pulls),
                }
            })
            .collect();
        // Stable sort: equal estimates (a fresh bandit) leave the proposals as they came.
        out.sort_by(|a, b| b.estimate.total_cmp(&a.estimate));
        out
    }

    /// The candidate to try while learning: the best upper confidence bound.
    pub fn explore(&self, ctx: &Context, candidates: &[Action]) -> Option<usize> {
        let ucb = |c: &Action| {
            self.arm(c.kind).map_or(f64::INFINITY, |a| {
                let (m, v) = a.estimate(&ctx.x);
                m + ALPHA * v.sqrt()
            })
        };
        (0..candidates.len()).max_by(|&i, &j| {
            ucb(&candidates[i])
                .total_cmp(&ucb(&candidates[j]))
                // max_by keeps the last of equals: prefer the earlier proposal instead.
                .then(j.cmp(&i))
        })
    }

    pub fn learn(&mut self, ctx: &Context, kind: ActionKind, feedback: Feedback) {
        self.learn_reward(ctx, kind, feedback.reward());
    }

    pub fn learn_reward(&mut self, ctx: &Context, kind: ActionKind, reward: f64) {
        if let Some(arm) = self.arms.iter_mut().find(|a| a.id == kind.id()) {
            arm.update(&ctx.x, reward);
            self.updates += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::catalog::Target;
    use super::*;
    use std::collections::BTreeSet;

    fn incident(kind: CauseKind) -> Incident {
        Incident {
            id: 1,
            kind,
            main_entity: "i-0abc".into(),
            severity: crate::incident::Severity::High,
            keys: BTreeSet::new(),
            anomalies: Vec::new(),
            opened_ms: 0,
            last_activity_ms: 0,
            first_event_ms: 1_000_000,
            last_event_ms: 2_000_000,
            peak_score: 1.0,
            closed: false,
        }
    }

    fn on(kind: ActionKind) -> Action {
        Action {
            kind,
            target: Target::Instance {
                instance_id: "i-0abc".into(),
            },
        }
    }

    #[test]
    fn a_fresh_bandit_keeps_the_proposal_order() {
        let ctx = Context::new(
            &incident(CauseKind::DiskFilling),
            &[],
            &LiveFacts::default(),
        );
        let c = [on(ActionKind::RebootInstance), on(ActionKind::StopInstance)];
        let r = Bandit::default().rank(&ctx, &c);
        assert_eq!(r[0].action.kind, ActionKind::RebootInstance);
        assert_eq!(Bandit::default().explore(&ctx, &c), Some(0));
    }

    #[test]
    fn learns_that_the_same_kind_needs_different_actions() {
        let plain = Context::new(
            &incident(CauseKind::DiskFilling),
            &[],
            &LiveFacts::default(),
        );
        let scaled = Context::new(
            &incident(CauseKind::DiskFilling),
            &[],
            &LiveFacts {
                instance: Some(InstanceFacts {
                    auto_scaling_group: Some("web-asg".into()),
                    tags: Vec::new(),
                }),
                function_modified_ms: None,
            },
        );
        assert_eq!(
            scaled.active(),
            ["kind:disk_filling", "auto_scaled_instance"]
        );
        let mut b = Bandit::default();
        for _ in 0..20 {
            b.learn(&plain, ActionKind::RebootInstance, Feedback::Resolved);
            b.learn(&plain, ActionKind::RunSsmDocument, Feedback::NotResolved);
            b.learn(&scaled, ActionKind::RebootInstance, Feedback::NotResolved);
            b.learn(&scaled, ActionKind::RunSsmDocument, Feedback::Resolved);
        }
        let c = [
            on(ActionKind::RebootInstance),
            on(ActionKind::RunSsmDocument),
        ];
        assert_eq!(
            b.rank(&plain, &c)[0].action.kind,
            ActionKind::RebootInstance
        );
        assert_eq!(
            b.rank(&scaled, &c)[0].action.kind,
            ActionKind::RunSsmDocument
        );
        let saved = serde_json::to_string(&b).unwrap();
        let back: Bandit = serde_json::from_str(&saved).unwrap();
        assert_eq!(
            back.rank(&scaled, &c)[0].action.kind,
            ActionKind::RunSsmDocument
        );
    }

    #[test]
    fn a_code_change_counts_only_near_the_incident() {
        let inc = incident(CauseKind::LambdaTimeoutCascade);
        let at = |m| {
            Context::new(
                &inc,
                &[],
                &LiveFacts {
                    instance: None,
                    function_modified_ms: Some(m),
                },
            )
            .active()
            .contains(&"recent_code_change")
        };
        assert!(at(inc.first_event_ms - 10 * 60_000));
        assert!(!at(inc.first_event_ms - 3 * RECENT_CHANGE_MS));
        assert!(!at(inc.last_event_ms + 1));
    }
}
