//! Candidate remediations for an incident, built only from its evidence (the entities its
//! anomalies are about and the keys linking them) and from configuration (the SNS topic, the
//! allowed SSM documents). [`grounded`] checks any action — a ranked one, or one the analyst
//! picked — against the same evidence before it reaches the gate.

use super::catalog::{Action, ActionKind, Target};
use super::cidr::Cidr;
use crate::incident::{Anomaly, CauseKind, Incident};
use crate::window::Signal;
use std::net::IpAddr;

/// Configuration the proposals may draw on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProposalConfig {
    /// SNS topic for incident notifications (`actions.sns_topic_arn`).
    pub sns_topic_arn: Option<String>,
    /// SSM documents that may run on an incident's instance (`actions.ssm_documents`).
    pub ssm_documents: Vec<String>,
    /// Reserved concurrency a throttle sets (`actions.lambda_throttle_to`, default 0).
    pub lambda_throttle_to: u32,
}

/// Most addresses one proposal list offers to deny: a brute force from hundreds of addresses is
/// not fixed one rule at a time, which is what the security-group and notify proposals are for.
pub const MAX_DENY_PROPOSALS: usize = 3;

/// The port an SSH brute force attacks; the only port an ingress revoke is proposed for.
pub const SSH_PORT: u16 = 22;

/// `i-` and 8 or 17 hex digits.
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// `eni-` and 8 or 17 hex digits: a network interface.
pub fn is_interface_id(s: &str) -> bool {
    s.strip_prefix("eni-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// An IAM access key id: `AKIA` (long-term) or `ASIA` (temporary) and 16 upper-case letters or
/// digits.
pub fn is_access_key_id(s: &str) -> bool {
    s.len() == 20
        && (s.starts_with("AKIA") || s.starts_with("ASIA"))
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The incident's evidence strings: its keys and its anomalies' entities and links.
fn evidence<'a>(incident: &'a Incident, anomalies: &'a [&'a Anomaly]) -> Vec<&'a str> {
    let mut v: Vec<&str> = incident.keys.iter().map(String::as_str).collect();
    for a in anomalies {
        v.push(&a.entity);
        v.extend(a.links.iter().map(String::as_str));
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// The incident's anomalies on `signals`, strongest first.
fn strongest<'a>(anomalies: &'a [&'a Anomaly], signals: &[Signal]) -> Vec<&'a Anomaly> {
    let mut found: Vec<&Anomaly> = anomalies
        .iter()
        .copied()
        .filter(|a| signals.contains(&a.signal))
        .collect();
    found.sort_by(|a, b| b.peak_score.total_cmp(&a.peak_score));
    found
}

/// Entities of the incident's anomalies on `signals`, strongest anomaly first, each once.
fn entities_of<'a>(anomalies: &'a [&'a Anomaly], signals: &[Signal]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for a in strongest(anomalies, signals) {
        if !out.contains(&a.entity.as_str()) {
            out.push(&a.entity);
        }
    }
    out
}

/// What the incident's anomalies on `signals` link to, strongest anomaly first.
fn links_of<'a>(anomalies: &'a [&'a Anomaly], signals: &[Signal]) -> Vec<&'a str> {
    strongest(anomalies, signals)
        .into_iter()
        .flat_map(|a| a.links.iter().map(String::as_str))
        .collect()
}

/// Candidate actions for `incident`, before guards, policy and ranking. Every parameter is an
/// entity or key of the incident, or a configured topic or document.
pub fn propose(incident: &Incident, anomalies: &[&Anomaly], cfg: &ProposalConfig) -> Vec<Action> {
    let mut out = Vec::new();
    // An attack's anomalies are about its addresses; the instance they hit is their link.
    let instances = |signals: &[Signal]| -> Vec<String> {
        entities_of(anomalies, signals)
            .into_iter()
            .chain(links_of(anomalies, signals))
            .chain(incident.keys.iter().map(String::as_str))
            .filter(|s| is_instance_id(s))
            .fold(Vec::new(), |mut v, s| {
                if !v.iter().any(|x: &String| x == s) {
                    v.push(s.to_string());
                }
                v
            })
    };
    match incident.kind {
        CauseKind::SshBruteForce => {
            let signals = [Signal::SshAuthFailure, Signal::VpcReject];
            let host = instances(&signals).into_iter().next();
            let addresses = entities_of(anomalies, &signals);
            for ip in addresses
                .iter()
                .filter_map(|s| s.parse::<IpAddr>().ok())
                .take(MAX_DENY_PROPOSALS)
            {
                out.push(Action {
                    kind: ActionKind::DenyCidr,
                    target: Target::Cidr {
                        cidr: Cidr::host(ip),
                        instance_id: host.clone(),
                        network_acl_id: None,
                    },
                });
            }
            // Many addresses, or one that keeps changing: close the door instead of chasing them.
            // Flow logs name the attacked interface rather than the instance; its security
            // groups are the same door.
            let door = host.or_else(|| {
                links_of(anomalies, &signals)
                    .into_iter()
                    .find(|l| is_interface_id(l))
                    .map(str::to_string)
            });
            if let Some(attached_to) = door {
                out.push(Action {
                    kind: ActionKind::RevokeIngress,
                    target: Target::Ingress {
                        attached_to,
                        port: SSH_PORT,
                        rule: None,
                    },
                });
            }
        }
        CauseKind::LambdaTimeoutCascade => {
            for name in entities_of(anomalies, &[Signal::LambdaTimeout, Signal::LambdaError])
                .into_iter()
                .take(2)
            {
                out.push(Action {
                    kind: ActionKind::ThrottleLambda,
                    target: Target::Function {
                        name: name.to_string(),
                        reserved_concurrency: cfg.lambda_throttle_to,
                    },
                });
            }
        }
        CauseKind::DiskFilling => {
            for id in instances(&[Signal::DiskUsedPct, Signal::DiskError])
                .into_iter()
                .take(2)
            {
                for doc in &cfg.ssm_documents {
                    out.push(Action {
                        kind: ActionKind::RunSsmDocument,
                        target: Target::Document {
                            document: doc.clone(),
                            instance_id: id.clone(),
                        },
                    });
                }
                out.push(Action {
                    kind: ActionKind::RebootInstance,
                    target: Target::Instance {
                        instance_id: id.clone(),
                    },
                });
                // Stops the writer at the cost of the service; the guard keeps it off
                // auto-scaled and protected instances.
                out.push(Action {
                    kind: ActionKind::StopInstance,
                    target: Target::Instance { instance_id: id },
                });
            }
        }
        CauseKind::LeakedAccessKey => {
            for key in incident.keys.iter().filter(|k| is_access_key_id(k)).take(2) {
                out.push(Action {
                    kind: ActionKind::DeactivateAccessKey,
                    target: Target::AccessKey {
                        access_key_id: key.clone(),
                        user_name: None,
                    },
                });
            }
        }
        CauseKind::MetricAnomaly | CauseKind::Unknown => {}
    }
    if let Some(topic) = &cfg.sns_topic_arn {
        out.push(Action {
            kind: ActionKind::NotifySns,
            target: Target::Topic {
                topic_arn: topic.clone(),
            },
        });
    }
    out
}

/// Whether every parameter of `action` comes from the incident's evidence or the configuration.
/// An action that names anything else — an id only the model wrote, an address from a log
/// line's free text — is refused before it is shown.
pub fn grounded(
    action: &Action,
    incident: &Incident,
    anomalies: &[&Anomaly],
    cfg: &ProposalConfig,
) -> bool {
    let ev = evidence(incident, anomalies);
    let known = |s: &str| ev.binary_search(&s).is_ok();
    action.is_well_formed()
        && match &action.target {
            Target::Instance { instance_id } => is_instance_id(instance_id) && known(instance_id),
            Target::Function {
                name,
                reserved_concurrency,
            } => known(name) && *reserved_concurrency == cfg.lambda_throttle_to,
            // The ACL is filled in by a live lookup after grounding, never chosen before it.
            Target::Cidr {
                cidr,
                instance_id,
                network_acl_id,
            } => {
                network_acl_id.is_none()
                    && instance_id
                        .as_deref()
                        .is_none_or(|i| is_instance_id(i) && known(i))
                    && cidr.prefix() == if cidr.is_v4() { 32 } else { 128 }
                    && ev.iter().any(|e| {
                        e.parse::<IpAddr>()
                            .is_ok_and(|ip| ip.to_canonical() == cidr.network())
                    })
            }
            // Which rule to revoke comes only from a live DescribeSecurityGroups lookup: nothing
            // the incident or a model says can name one.
            Target::Ingress {
                attached_to,
                port,
                rule,
            } => {
                rule.is_none()
                    && *port == SSH_PORT
                    && incident.kind == CauseKind::SshBruteForce
                    && (is_instance_id(attached_to) || is_interface_id(attached_to))
                    && known(attached_to)
            }
            // The user name is looked up from the key, never taken from text.
            Target::AccessKey {
                access_key_id,
                user_name,
            } => user_name.is_none() && is_access_key_id(access_key_id) && known(access_key_id),
            Target::Topic { topic_arn } => cfg.sns_topic_arn.as_deref() == Some(topic_arn),
            Target::Document {
                document,
                instance_id,
            } => {
                cfg.ssm_documents.contains(document)
                    && is_instance_id(instance_id)
                    && known(instance_id)
            }
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::Severity;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    fn anomaly(signal: Signal, entity: &str, links: &[&str], score: f64) -> Anomaly {
        Anomaly {
            id: 0,
            signal,
            entity: entity.into(),
            links: links.iter().map(|s| s.to_string()).collect(),
            group: Arc::from("g"),
            first_minute: 0,
            last_minute: 0,
            opened_ms: 0,
            peak_score: score,
            observed: 0.0,
            expected: 0.0,
            window_min: 1,
            samples: Vec::new(),
            templates: BTreeMap::new(),
            context: Vec::new(),
            forecast: None,
            incident: 0,
        }
    }

    fn incident(kind: CauseKind, anomalies: &[Anomaly]) -> Incident {
        let mut keys = BTreeSet::new();
        for a in anomalies {
            keys.insert(a.entity.clone());
            keys.extend(a.links.iter().cloned());
        }
        Incident {
            id: 1,
            kind,
            main_entity: anomalies[0].entity.clone(),
            severity: Severity::High,
            keys,
            anomalies: Vec::new(),
            opened_ms: 0,
            last_activity_ms: 0,
            first_event_ms: 0,
            last_event_ms: 0,
            peak_score: 0.9,
            closed: false,
        }
    }

    fn cfg() -> ProposalConfig {
        ProposalConfig {
            sns_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:oncall".into()),
            ssm_documents: vec!["ClearAppCache".into()],
            lambda_throttle_to: 0,
        }
    }

    #[test]
    fn proposals_take_every_parameter_from_the_evidence() {
        let cases = [
            (
                CauseKind::SshBruteForce,
                vec![anomaly(
                    Signal::SshAuthFailure,
                    "45.83.12.7",
                    &["i-0a1b2c3d4e5f60718"],
                    0.9,
                )],
                vec![
                    ActionKind::DenyCidr,
                    ActionKind::RevokeIngress,
                    ActionKind::NotifySns,
                ],
            ),
            (
                CauseKind::LambdaTimeoutCascade,
                vec![anomaly(
                    Signal::LambdaTimeout,
                    "orders-api",
                    &["10.0.3.41:5432"],
                    0.8,
                )],
                vec![ActionKind::ThrottleLambda, ActionKind::NotifySns],
            ),
            (
                CauseKind::DiskFilling,
                vec![anomaly(
                    Signal::DiskUsedPct,
                    "i-0a1b2c3d4e5f60718",
                    &[],
                    0.8,
                )],
                vec![
                    ActionKind::RunSsmDocument,
                    ActionKind::RebootInstance,
                    ActionKind::StopInstance,
                    ActionKind::NotifySns,
                ],
            ),
            (
                CauseKind::LeakedAccessKey,
                vec![anomaly(
                    Signal::AccessDenied,
                    "AKIAIOSFODNN7EXAMPLE",
                    &["arn:aws:iam::123456789012:user/ci", "203.0.113.9"],
                    0.9,
                )],
                vec![ActionKind::DeactivateAccessKey, ActionKind::NotifySns],
            ),
            (
                CauseKind::MetricAnomaly,
                vec![anomaly(Signal::Metric, "rds_cpu", &[], 0.8)],
                vec![ActionKind::NotifySns],
            ),
        ];
        for (kind, anomalies, expected) in cases {
            let inc = incident(kind, &anomalies);
            let refs: Vec<&Anomaly> = anomalies.iter().collect();
            let proposed = propose(&inc, &refs, &cfg());
            assert_eq!(
                proposed.iter().map(|a| a.kind).collect::<Vec<_>>(),
                expected,
                "{kind:?}"
            );
            for a in &proposed {
                assert!(grounded(a, &inc, &refs, &cfg()), "{a:?} is not grounded");
            }
        }
    }

    #[test]
    fn ids_that_are_not_in_the_evidence_are_refused() {
        let anomalies = [anomaly(
            Signal::DiskUsedPct,
            "i-0a1b2c3d4e5f60718",
            &["203.0.113.9"],
            0.8,
        )];
        let inc = incident(CauseKind::DiskFilling, &anomalies);
        let refs: Vec<&Anomaly> = anomalies.iter().collect();
        let invented = [
            Action {
                kind: ActionKind::StopInstance,
                target: Target::Instance {
                    instance_id: "i-0ffffffffffffffff".into(),
                },
            },
            Action {
                kind: ActionKind::RunSsmDocument,
                target: Target::Document {
                    document: "AWS-RunShellScript".into(),
                    instance_id: "i-0a1b2c3d4e5f60718".into(),
                },
            },
            Action {
                kind: ActionKind::NotifySns,
                target: Target::Topic {
                    topic_arn: "arn:aws:sns:us-east-1:999999999999:attacker".into(),
                },
            },
            Action {
                kind: ActionKind::DenyCidr,
                target: Target::Cidr {
                    cidr: "203.0.113.0/24".parse().unwrap(),
                    instance_id: None,
                    network_acl_id: None,
                },
            },
            Action {
                kind: ActionKind::ThrottleLambda,
                target: Target::Function {
                    name: "orders-api-evil".into(),
                    reserved_concurrency: 0,
                },
            },
            // The evidence's own address, but with an ACL nobody looked up.
            Action {
                kind: ActionKind::DenyCidr,
                target: Target::Cidr {
                    cidr: "203.0.113.9/32".parse().unwrap(),
                    instance_id: None,
                    network_acl_id: Some("acl-0badbadbadbadbad0".into()),
                },
            },
            Action {
                kind: ActionKind::RevokeIngress,
                target: Target::Ingress {
                    attached_to: "i-0a1b2c3d4e5f60718".into(),
                    port: 22,
                    rule: Some(super::super::catalog::IngressRule {
                        group_id: "sg-0123456789abcdef0".into(),
                        cidr: "0.0.0.0/0".parse().unwrap(),
                    }),
                },
            },
            // Not an SSH incident: no port of its own to close.
            Action {
                kind: ActionKind::RevokeIngress,
                target: Target::Ingress {
                    attached_to: "i-0a1b2c3d4e5f60718".into(),
                    port: 22,
                    rule: None,
                },
            },
            // An instance the evidence never named.
            Action {
                kind: ActionKind::DenyCidr,
                target: Target::Cidr {
                    cidr: "203.0.113.9/32".parse().unwrap(),
                    instance_id: Some("i-0ffffffffffffffff".into()),
                    network_acl_id: None,
                },
            },
        ];
        for a in invented {
            assert!(!grounded(&a, &inc, &refs, &cfg()), "{a:?} was accepted");
        }
    }

    #[test]
    fn a_brute_force_seen_only_in_flow_logs_closes_the_interface_s_door() {
        let anomalies: Vec<Anomaly> = [
            "198.51.100.7",
            "198.51.100.8",
            "203.0.113.9",
            "203.0.113.10",
        ]
        .iter()
        .map(|ip| anomaly(Signal::VpcReject, ip, &["eni-0123456789abcdef0"], 0.9))
        .collect();
        let inc = incident(CauseKind::SshBruteForce, &anomalies);
        let refs: Vec<&Anomaly> = anomalies.iter().collect();
        let proposed = propose(&inc, &refs, &cfg());
        let revoke = proposed
            .iter()
            .find(|a| a.kind == ActionKind::RevokeIngress)
            .expect("a revoke on the interface");
        assert_eq!(revoke.resource_id(), "eni-0123456789abcdef0");
        assert!(grounded(revoke, &inc, &refs, &cfg()));
        // An interface the evidence does not name is refused.
        let invented = Action {
            kind: ActionKind::RevokeIngress,
            target: Target::Ingress {
                attached_to: "eni-0fedcba9876543210".into(),
                port: SSH_PORT,
                rule: None,
            },
        };
        assert!(!grounded(&invented, &inc, &refs, &cfg()));
    }

    #[test]
    fn id_shapes() {
        assert!(is_instance_id("i-0a1b2c3d4e5f60718") && is_instance_id("i-0a1b2c3d"));
        assert!(!is_instance_id("i-0a1b2c3") && !is_instance_id("i-0a1b2c3d; rm -rf /"));
        assert!(
            is_access_key_id("AKIAIOSFODNN7EXAMPLE") && is_access_key_id("ASIAIOSFODNN7EXAMPLE")
        );
        assert!(!is_access_key_id("AKIAiosfodnn7example") && !is_access_key_id("AKIA"));
    }
}
