//! The analyst that needs no model: an answer from the incident's signals and templates, used
//! when no model is present, the model fails or times out. It names the incident's own entity
//! and cause, cites the strongest facts, and leaves the action to the ranking.

use super::answer::{Answer, cause_kind_id};
use super::pack::Pack;
use crate::incident::{CauseKind, Incident};

pub fn answer(inc: &Incident, pack: &Pack) -> Answer {
    let entity = if pack.entities.contains(&inc.main_entity) {
        inc.main_entity.clone()
    } else {
        pack.entities.first().cloned().unwrap_or_default()
    };
    let lead = pack.facts.first().map_or("", |f| f.text.as_str());
    let root_cause = match inc.kind {
        CauseKind::SshBruteForce => format!(
            "password guessing against SSH from {} address(es); the host is reachable on port 22 from the internet",
            pack.entities
                .iter()
                .filter(|e| e.parse::<std::net::IpAddr>().is_ok())
                .count()
                .max(1)
        ),
        CauseKind::LambdaTimeoutCascade => {
            let endpoint = pack
                .entities
                .iter()
                .find(|e| e.contains(':') || e.contains(".rds."))
                .map_or(String::new(), |e| format!(" against {e}"));
            format!("{entity} invocations hang until their timeout{endpoint}; retries add load")
        }
        CauseKind::DiskFilling => {
            format!("the root volume of {entity} is filling; writes will fail at 100 %")
        }
        CauseKind::LeakedAccessKey => format!(
            "access key {entity} is used from an unusual place for reconnaissance and data access"
        ),
        CauseKind::MetricAnomaly => format!("{entity} left its usual pattern for this time of day"),
        CauseKind::Unknown => "unusual activity; the signals below say what changed".to_string(),
    };
    Answer {
        summary: format!("{}: {lead}", inc.kind.label())
            .chars()
            .take(240)
            .collect(),
        root_cause: root_cause.chars().take(240).collect(),
        cause_kind: cause_kind_id(inc.kind).to_string(),
        // Two decimals: all the precision a confidence has, and it survives a JSON round trip.
        confidence: (inc.peak_score.clamp(0.0, 1.0) * 100.0).round() / 100.0,
        evidence_ids: pack
            .evidence_ids()
            .into_iter()
            .take(3)
            .map(str::to_string)
            .collect(),
        action_ids: pack.actions.iter().take(1).cloned().collect(),
        entity,
    }
}
