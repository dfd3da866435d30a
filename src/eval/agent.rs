//! `stormwatch eval agent`: the action ranking learned in the simulator.
//!
//! Each seed's scenario (with [`sim::Variant`]s, so the incident kind alone does not decide the
//! fix) runs through a fresh engine. Every injected incident the engine opened becomes an
//! episode: its context comes from the engine's incident plus what live lookups would answer
//! (Auto Scaling membership, the function's last code change, from the simulator's truth); its
//! candidates are the real proposals for it, minus what the guards refuse. During training the
//! bandit tries the candidate with the best upper confidence bound, the simulated system responds
//! ([`respond`]), and the bandit learns from the outcome. Evaluation seeds are never trained on.

use crate::action::catalog::{Action, ActionKind, Target};
use crate::action::cidr::Cidr;
use crate::action::guard::{self, GuardContext, InstanceFacts};
use crate::action::propose::{ProposalConfig, propose};
use crate::action::rank::{Bandit, Context, Feedback, LiveFacts};
use crate::incident::{Anomaly, CauseKind, Incident};
use crate::sim::{SimConfig, TruthIncident, Variant};
use serde::Serialize;
use std::collections::BTreeMap;

use super::demo::{detect, kind_of, per_seed};

/// The first evaluation seed: training uses seeds from 1, far below it.
pub const EVAL_FIRST_SEED: u64 = 1001;
/// Baseline per scenario: the detectors need a quiet stretch to learn what normal is.
const BASELINE_HOURS: f64 = 6.0;
const MATCH_SLACK_MS: i64 = 10 * 60_000;
/// The runbook the simulated account has for full disks; proposals offer it like any configured
/// document.
pub const CLEANUP_DOCUMENT: &str = "stormwatch-CleanupDisk";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:incidents";

/// One injected incident as the agent meets it.
#[derive(Debug, Clone)]
struct Episode {
    truth: TruthIncident,
    ctx: Context,
    candidates: Vec<Action>,
}

impl Episode {
    fn correct(&self) -> &str {
        &self.truth.remediation
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantResult {
    pub kind: CauseKind,
    pub variant: Variant,
    pub episodes: u32,
    pub top1_after: f64,
    pub kind_lookup: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentEval {
    /// Top-ranked action is the right one with no training: the expected hit rate of a uniform
    /// pick among the candidates.
    pub top1_before: f64,
    pub top1_after: f64,
    /// The best fixed kind → action table, chosen on the training episodes.
    pub kind_lookup: f64,
    /// Training episodes (one action tried and its outcome learned from, each).
    pub episodes: u32,
    pub eval_episodes: u32,
    /// Injected incidents the engine did not open, so no episode (training and evaluation).
    pub missed: u32,
    pub mean_training_reward: f64,
    pub by_variant: Vec<VariantResult>,
    pub elapsed_s: f64,
}

/// The simulated system's answer to `action` on `truth`: what an SRE would see afterwards, and
/// the reward, which also charges what a fix broke on the way (everyone's SSH, a stopped host).
pub fn respond(truth: &TruthIncident, action: &Action) -> (Feedback, f64) {
    let involved = |s: &str| truth.entities.iter().any(|e| e == s);
    let on_target = match &action.target {
        Target::Instance { instance_id } | Target::Document { instance_id, .. } => {
            involved(instance_id)
        }
        Target::Ingress { attached_to, .. } => involved(attached_to),
        Target::Function { name, .. } => *name == truth.main_entity,
        Target::Cidr { cidr, .. } => truth
            .main_entity
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| Cidr::host(ip) == *cidr),
        Target::AccessKey { access_key_id, .. } => *access_key_id == truth.main_entity,
        Target::Topic { .. } => true,
    };
    let fixes = on_target && action.kind.id() == truth.remediation;
    let feedback = if fixes {
        Feedback::Resolved
    } else {
        match action.kind {
            // Downtime for a host that was not the problem, or a stopped service.
            ActionKind::RebootInstance | ActionKind::SsmRestartInstance
                if truth.variant != Variant::AutoScaled
                    && truth.remediation != ActionKind::RebootInstance.id() =>
            {
                Feedback::MadeWorse
            }
            ActionKind::StopInstance => Feedback::MadeWorse,
            // A Lambda at 0 concurrency serves nobody: the bad deploy is hidden, not fixed.
            ActionKind::ThrottleLambda if truth.variant == Variant::BadDeploy => {
                Feedback::MadeWorse
            }
            _ => Feedback::NotResolved,
        }
    };
    let collateral = match action.kind {
        ActionKind::RevokeIngress | ActionKind::StopInstance => 0.4,
        _ => 0.0,
    };
    (feedback, feedback.reward() - collateral)
}

/// The engine's incident for `truth`: same kind, overlapping in time, sharing an entity; the
/// earliest opened wins.
pub(crate) fn matching<'a>(
    truth: &TruthIncident,
    incidents: &'a [Incident],
) -> Option<&'a Incident> {
    incidents
        .iter()
        .filter(|i| i.kind == kind_of(truth.kind))
        .filter(|i| {
            i.first_event_ms <= truth.end_ms + MATCH_SLACK_MS && truth.onset_ms <= i.last_event_ms
        })
        .filter(|i| {
            i.main_entity == truth.main_entity || truth.entities.iter().any(|e| i.keys.contains(e))
        })
        .min_by_key(|i| i.opened_ms)
}

/// An injected incident the engine opened: its truth, the engine's incident and its anomalies.
pub(crate) type Opened<'a> = (&'a TruthIncident, &'a Incident, Vec<&'a Anomaly>);

/// Each injected incident the engine opened, and how many it did not open.
pub(crate) fn opened<'a>(
    truth: &'a [TruthIncident],
    engine: &'a crate::engine::Engine,
) -> (Vec<Opened<'a>>, u32) {
    let mut out = Vec::new();
    let mut missed = 0;
    for t in truth {
        match matching(t, engine.incidents()) {
            Some(inc) => out.push((t, inc, engine.anomalies_of(inc))),
            None => missed += 1,
        }
    }
    (out, missed)
}

/// The injected incident behind an engine incident, if any: the demo console's simulated
/// account answers actions on it.
pub fn truth_for<'a>(inc: &Incident, truths: &'a [TruthIncident]) -> Option<&'a TruthIncident> {
    truths
        .iter()
        .find(|t| matching(t, std::slice::from_ref(inc)).is_some())
}

/// What `DescribeAutoScalingInstances` / `GetFunction` would answer for the incident's resources.
pub fn lookups(truth: &TruthIncident, candidates: &[Action]) -> LiveFacts {
    let (instance, function) = crate::action::rank::subjects(candidates);
    LiveFacts {
        instance: instance.map(|id| InstanceFacts {
            auto_scaling_group: truth
                .auto_scaling_group
                .clone()
                .filter(|_| id == truth.main_entity),
            tags: Vec::new(),
        }),
        function_modified_ms: function
            .filter(|f| *f == truth.main_entity)
            .and(truth.function_modified_ms),
    }
}

fn proposal_config() -> ProposalConfig {
    ProposalConfig {
        sns_topic_arn: Some(TOPIC.to_string()),
        ssm_documents: vec![CLEANUP_DOCUMENT.to_string()],
        lambda_throttle_to: 0,
    }
}

/// Every episode of one seed, and how many injected incidents the engine missed.
fn episodes(seed: u64, threshold: f64) -> (Vec<Episode>, u32) {
    let (truth, engine) = detect(
        &SimConfig {
            seed,
            baseline_hours: BASELINE_HOURS,
            variants: true,
            ..SimConfig::default()
        },
        threshold,
    );
    let cfg = proposal_config();
    let mut out = Vec::new();
    let (found, mut missed) = opened(&truth.incidents, &engine);
    for (t, inc, anomalies) in found {
        let proposed = propose(inc, &anomalies, &cfg);
        let facts = lookups(t, &proposed);
        let candidates: Vec<Action> = proposed
            .into_iter()
            .filter(|a| guard::check(a, &GuardContext::default(), facts.instance.as_ref()).is_ok())
            .collect();
        if candidates.is_empty() {
            missed += 1;
            continue;
        }
        out.push(Episode {
            truth: t.clone(),
            ctx: Context::new(inc, &anomalies, &facts),
            candidates,
        });
    }
    (out, missed)
}

/// Trains on `train_seeds` seeds from 1 and scores on `eval_seeds` seeds from 1001.
pub fn run(
    train_seeds: u32,
    eval_seeds: u32,
    threshold: f64,
    threads: usize,
) -> (AgentEval, Bandit) {
    let started = std::time::Instant::now();
    let train_seeds: Vec<u64> = (1..=u64::from(train_seeds).min(EVAL_FIRST_SEED - 1)).collect();
    let eval_list: Vec<u64> = (0..u64::from(eval_seeds))
        .map(|i| EVAL_FIRST_SEED + i)
        .collect();
    let train = per_seed(&train_seeds, threads, |s| episodes(s, threshold));
    let test = per_seed(&eval_list, threads, |s| episodes(s, threshold));
    let missed: u32 = train.iter().chain(&test).map(|(_, m)| m).sum();
    let train: Vec<Episode> = train.into_iter().flat_map(|(e, _)| e).collect();
    let test: Vec<Episode> = test.into_iter().flat_map(|(e, _)| e).collect();

    let mut bandit = Bandit::default();
    let mut reward_sum = 0.0;
    // Which action fixed each kind how often: the kind lookup's table.
    let mut fixes: BTreeMap<(CauseKind, String), u32> = BTreeMap::new();
    for ep in &train {
        *fixes
            .entry((ep.ctx.kind, ep.correct().to_string()))
            .or_default() += 1;
        let Some(i) = bandit.explore(&ep.ctx, &ep.candidates) else {
            continue;
        };
        let (_, reward) = respond(&ep.truth, &ep.candidates[i]);
        reward_sum += reward;
        bandit.learn_reward(&ep.ctx, ep.candidates[i].kind, reward);
    }
    let table = |kind: CauseKind| -> Option<&str> {
        fixes
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .max_by_key(|(_, n)| **n)
            .map(|((_, id), _)| id.as_str())
    };

    let mut before = 0.0;
    let mut per: BTreeMap<(CauseKind, Variant), (u32, u32, u32)> = BTreeMap::new();
    for ep in &test {
        let hits = ep
            .candidates
            .iter()
            .filter(|c| respond(&ep.truth, c).0 == Feedback::Resolved)
            .count();
        before += hits as f64 / ep.candidates.len() as f64;
        let ranked = bandit.rank(&ep.ctx, &ep.candidates);
        let after = ranked
            .first()
            .is_some_and(|r| respond(&ep.truth, &r.action).0 == Feedback::Resolved);
        // The table's action, on the first candidate of that kind.
        let lookup = table(ep.ctx.kind).is_some_and(|id| {
            ep.candidates
                .iter()
                .find(|c| c.kind.id() == id)
                .is_some_and(|c| respond(&ep.truth, c).0 == Feedback::Resolved)
        });
        let slot = per.entry((ep.ctx.kind, ep.truth.variant)).or_default();
        slot.0 += 1;
        slot.1 += u32::from(after);
        slot.2 += u32::from(lookup);
    }
    let n = test.len().max(1) as f64;
    let sum = |f: fn(&(u32, u32, u32)) -> u32| per.values().map(f).sum::<u32>() as f64 / n;
    let eval = AgentEval {
        top1_before: before / n,
        top1_after: sum(|s| s.1),
        kind_lookup: sum(|s| s.2),
        episodes: train.len() as u32,
        eval_episodes: test.len() as u32,
        missed,
        mean_training_reward: reward_sum / train.len().max(1) as f64,
        by_variant: per
            .into_iter()
            .map(|((kind, variant), (e, a, l))| VariantResult {
                kind,
                variant,
                episodes: e,
                top1_after: f64::from(a) / f64::from(e.max(1)),
                kind_lookup: f64::from(l) / f64::from(e.max(1)),
            })
            .collect(),
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    (eval, bandit)
}

impl AgentEval {
    pub fn render(&self) -> String {
        let mut s = format!(
            "action ranking: {} training episodes, {} evaluation episodes ({} incidents not detected)\n\
             top-1 correct: before training {:.3}, after {:.3}; best kind→action table {:.3}\n\n\
             {:<24} {:<14} {:>8} {:>8} {:>8}\n",
            self.episodes,
            self.eval_episodes,
            self.missed,
            self.top1_before,
            self.top1_after,
            self.kind_lookup,
            "kind",
            "variant",
            "episodes",
            "after",
            "lookup"
        );
        for v in &self.by_variant {
            s.push_str(&format!(
                "{:<24} {:<14} {:>8} {:>8.3} {:>8.3}\n",
                v.kind.label(),
                format!("{:?}", v.variant),
                v.episodes,
                v.top1_after,
                v.kind_lookup
            ));
        }
        s.push_str(&format!("{:.1} s\n", self.elapsed_s));
        s
    }
}
