//! Guards an SRE expects before any write: things stormwatch refuses to do whatever the evidence,
//! the model or the operator's keystroke says. Each refusal says why and what to do instead.

use super::catalog::{Action, ActionKind, Target};
use super::cidr::Cidr;
use std::net::IpAddr;

/// Shortest IPv4 prefix a deny rule may have: a /8 or /0 blocks a continent, not an attacker.
pub const MIN_V4_PREFIX: u8 = 16;
/// Shortest IPv6 prefix a deny rule may have.
pub const MIN_V6_PREFIX: u8 = 48;
/// Tag that marks an instance stormwatch must never stop.
pub const PROTECT_TAG: &str = "stormwatch:protect";

/// What the guards know about the operator and the world, from config and live lookups.
#[derive(Debug, Clone, Default)]
pub struct GuardContext {
    /// The operator's own public addresses (config `actions.operator_ips`).
    pub operator_ips: Vec<IpAddr>,
    /// The access key stormwatch's own AWS calls are signed with.
    pub own_access_key: Option<String>,
}

/// Facts about an instance from a live `DescribeInstances` / Auto Scaling lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFacts {
    pub auto_scaling_group: Option<String>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{cidr} is a private, loopback or link-local range: blocking it would cut off your own VPC; restrict the security group instead"
    )]
    PrivateRange { cidr: String },
    #[error(
        "{cidr} is too broad to deny (shorter than /{min}); deny the attacking addresses one by one"
    )]
    TooBroad { cidr: String, min: u8 },
    #[error(
        "{cidr} contains your own address {ip}: you would lock yourself out; check actions.operator_ips"
    )]
    OperatorAddress { cidr: String, ip: IpAddr },
    #[error(
        "{key} is the access key stormwatch itself signs with; deactivate it from another session"
    )]
    OwnAccessKey { key: String },
    #[error(
        "{instance} belongs to Auto Scaling group {group}, which would replace it; reboot it, run the cleanup runbook, or suspend the group's processes first"
    )]
    AutoScaled { instance: String, group: String },
    #[error(
        "{instance} is tagged {PROTECT_TAG}; remove the tag in the console if you really mean it"
    )]
    Protected { instance: String },
    #[error(
        "{instance} could not be looked up (Auto Scaling group, tags), so stopping it is refused; check it exists and the action profile may describe it"
    )]
    UnknownInstance { instance: String },
    #[error("{kind} does not go with that target; this is a bug in the proposal, nothing was run")]
    Malformed { kind: &'static str },
}

pub(crate) fn is_private(ip: IpAddr) -> bool {
    // `::ffff:a.b.c.d` (dual-stack sshd) is the IPv4 address it carries.
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                // 100.64.0.0/10, carrier-grade NAT: shared, never one attacker.
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link local.
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// A deny rule may block neither private ranges, nor whole swathes of the internet, nor the
/// operator.
pub fn check_deny(cidr: &Cidr, ctx: &GuardContext) -> Result<(), Refusal> {
    let min = if cidr.is_v4() {
        MIN_V4_PREFIX
    } else {
        MIN_V6_PREFIX
    };
    if cidr.prefix() < min {
        return Err(Refusal::TooBroad {
            cidr: cidr.to_string(),
            min,
        });
    }
    if is_private(cidr.network()) {
        return Err(Refusal::PrivateRange {
            cidr: cidr.to_string(),
        });
    }
    check_operator(cidr, ctx)
}

/// A rule that covers the operator's own address must be neither denied nor revoked.
fn check_operator(cidr: &Cidr, ctx: &GuardContext) -> Result<(), Refusal> {
    match ctx.operator_ips.iter().find(|ip| cidr.contains(**ip)) {
        Some(&ip) => Err(Refusal::OperatorAddress {
            cidr: cidr.to_string(),
            ip,
        }),
        None => Ok(()),
    }
}

/// Every guard that applies to `action`. `instance` is the live lookup for instance actions
/// (`None` when the action has no instance).
pub fn check(
    action: &Action,
    ctx: &GuardContext,
    instance: Option<&InstanceFacts>,
) -> Result<(), Refusal> {
    if !action.is_well_formed() {
        return Err(Refusal::Malformed {
            kind: action.kind.id(),
        });
    }
    match &action.target {
        Target::Cidr { cidr, .. } => check_deny(cidr, ctx),
        // Revoking the rule that lets the operator in locks them out as surely as a deny.
        Target::Ingress {
            rule: Some(rule), ..
        } => check_operator(&rule.cidr, ctx),
        Target::AccessKey { access_key_id, .. } => {
            if ctx.own_access_key.as_deref() == Some(access_key_id.as_str()) {
                Err(Refusal::OwnAccessKey {
                    key: access_key_id.clone(),
                })
            } else {
                Ok(())
            }
        }
        Target::Instance { instance_id } if action.kind == ActionKind::StopInstance => {
            // Without the lookup the guard cannot know; it refuses rather than assume.
            let Some(facts) = instance else {
                return Err(Refusal::UnknownInstance {
                    instance: instance_id.clone(),
                });
            };
            if let Some(group) = &facts.auto_scaling_group {
                return Err(Refusal::AutoScaled {
                    instance: instance_id.clone(),
                    group: group.clone(),
                });
            }
            if facts.tags.iter().any(|(k, _)| k == PROTECT_TAG) {
                return Err(Refusal::Protected {
                    instance: instance_id.clone(),
                });
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(cidr: &str) -> Action {
        Action {
            kind: ActionKind::DenyCidr,
            target: Target::Cidr {
                cidr: cidr.parse().unwrap(),
                instance_id: None,
                network_acl_id: None,
            },
        }
    }

    fn ctx() -> GuardContext {
        GuardContext {
            operator_ips: vec!["198.51.100.20".parse().unwrap()],
            own_access_key: Some("AKIAOWNKEY000000000".into()),
        }
    }

    #[test]
    fn deny_rules_never_hit_private_ranges_everything_or_the_operator() {
        for refused in [
            "10.0.3.41",
            "172.16.0.0/12",
            "172.31.255.1",
            "192.168.1.0/24",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0/0",
            "0.0.0.0",
            "203.0.0.0/8",
            "198.51.100.20",
            "198.51.100.0/24",
            "::/0",
            "fd00::1",
            "fe80::1",
            "::1",
        ] {
            assert!(
                check(&deny(refused), &ctx(), None).is_err(),
                "{refused} was allowed"
            );
        }
        for mapped in ["::ffff:10.0.0.5", "::ffff:198.51.100.20"] {
            assert!(
                check(&deny(mapped), &ctx(), None).is_err(),
                "{mapped} was allowed"
            );
        }
        let revoke_own = Action {
            kind: ActionKind::RevokeIngress,
            target: Target::Ingress {
                attached_to: "i-0abc".into(),
                port: 22,
                rule: Some(super::super::catalog::IngressRule {
                    group_id: "sg-0123".into(),
                    cidr: "198.51.100.0/24".parse().unwrap(),
                }),
            },
        };
        assert!(matches!(
            check(&revoke_own, &ctx(), None),
            Err(Refusal::OperatorAddress { .. })
        ));
        for allowed in [
            "203.0.113.7",
            "203.0.113.0/24",
            "45.83.12.7/32",
            "2001:db8:1::/48",
        ] {
            assert_eq!(check(&deny(allowed), &ctx(), None), Ok(()), "{allowed}");
        }
    }

    #[test]
    fn the_key_stormwatch_signs_with_is_never_deactivated() {
        let key = |id: &str| Action {
            kind: ActionKind::DeactivateAccessKey,
            target: Target::AccessKey {
                access_key_id: id.into(),
                user_name: None,
            },
        };
        assert!(matches!(
            check(&key("AKIAOWNKEY000000000"), &ctx(), None),
            Err(Refusal::OwnAccessKey { .. })
        ));
        assert_eq!(check(&key("AKIALEAKED00000000X"), &ctx(), None), Ok(()));
    }

    #[test]
    fn autoscaled_or_protected_instances_are_never_stopped_but_may_reboot() {
        let on = |kind| Action {
            kind,
            target: Target::Instance {
                instance_id: "i-0abc".into(),
            },
        };
        let asg = InstanceFacts {
            auto_scaling_group: Some("web-asg".into()),
            tags: vec![],
        };
        let protected = InstanceFacts {
            auto_scaling_group: None,
            tags: vec![(PROTECT_TAG.into(), "true".into())],
        };
        let err = check(&on(ActionKind::StopInstance), &ctx(), Some(&asg)).unwrap_err();
        assert!(err.to_string().contains("web-asg"), "{err}");
        assert!(matches!(
            check(&on(ActionKind::StopInstance), &ctx(), Some(&protected)),
            Err(Refusal::Protected { .. })
        ));
        assert_eq!(
            check(&on(ActionKind::RebootInstance), &ctx(), Some(&asg)),
            Ok(())
        );
        assert_eq!(
            check(
                &on(ActionKind::StopInstance),
                &ctx(),
                Some(&InstanceFacts::default())
            ),
            Ok(())
        );
        assert!(matches!(
            check(&on(ActionKind::StopInstance), &ctx(), None),
            Err(Refusal::UnknownInstance { .. })
        ));
    }

    #[test]
    fn a_kind_with_the_wrong_target_is_refused() {
        let a = Action {
            kind: ActionKind::StopInstance,
            target: Target::AccessKey {
                access_key_id: "AKIA".into(),
                user_name: None,
            },
        };
        assert!(matches!(
            check(&a, &ctx(), None),
            Err(Refusal::Malformed { .. })
        ));
    }
}
