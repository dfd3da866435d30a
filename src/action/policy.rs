//! The approval gate: what the policy allows, how an action must be confirmed, and the rate limit.
//! An [`Authorized`] can only come out of [`Gate::authorize`], and executing an action takes one,
//! so no path runs a remediation that the operator did not confirm.

use super::catalog::{Action, ActionKind, CATALOG};
use std::collections::{BTreeSet, VecDeque};

/// Policy from config: `[actions]` in the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Kinds this profile/account may run; everything else is refused.
    pub allowed: BTreeSet<ActionKind>,
    /// Blocks every write, notifications included.
    pub read_only: bool,
    /// At most this many actions per `rate_window_ms`.
    pub max_actions: usize,
    pub rate_window_ms: i64,
    /// Lets an SNS notification go out without a keystroke. Nothing else ever may.
    pub notify_unattended: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allowed: CATALOG.into_iter().collect(),
            read_only: false,
            max_actions: 5,
            rate_window_ms: 10 * 60_000,
            notify_unattended: false,
        }
    }
}

/// How the operator must confirm an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// May run without a keystroke (an opted-in notification).
    Unattended,
    /// `y`, then Enter on a popup whose default is Cancel.
    Keystroke,
    /// The operator types this resource id.
    TypeResourceId(String),
}

/// What the operator did in the confirm popup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation<'a> {
    /// No confirmation: only good for [`Requirement::Unattended`].
    Nothing,
    Keystroke,
    Typed(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    #[error("{0} is not in this profile's allow-list; add it to actions.allow in the config")]
    NotAllowed(&'static str),
    #[error(
        "read-only mode: no action runs; set actions.read_only = false in the config to allow them"
    )]
    ReadOnly,
    #[error("rate limit: {max} actions in {window_min} min already; wait {retry_in_s} s")]
    RateLimited {
        max: usize,
        window_min: i64,
        retry_in_s: i64,
    },
    #[error("not confirmed: press y and confirm in the popup")]
    Unconfirmed,
    #[error("{0} does not go with that target; this is a bug in the proposal, nothing was run")]
    Malformed(&'static str),
    #[error("typed '{typed}' but this action needs '{expected}' typed exactly; nothing was run")]
    WrongTypedId { expected: String, typed: String },
}

/// Proof that the gate let an action through; only [`Gate::authorize`] makes one.
#[derive(Debug)]
pub struct Authorized {
    action: Action,
    at_ms: i64,
}

impl Authorized {
    pub fn action(&self) -> &Action {
        &self.action
    }

    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }
}

/// The policy plus the times of recent actions.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    policy: Policy,
    recent: VecDeque<i64>,
}

impl Gate {
    pub fn new(policy: Policy) -> Self {
        Gate {
            policy,
            recent: VecDeque::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// How `action` must be confirmed.
    pub fn requirement(&self, action: &Action) -> Requirement {
        if action.destructive() {
            Requirement::TypeResourceId(action.resource_id())
        } else if action.kind == ActionKind::NotifySns && self.policy.notify_unattended {
            Requirement::Unattended
        } else {
            Requirement::Keystroke
        }
    }

    /// Lets `action` through if the policy allows it, the rate limit has room and the
    /// confirmation meets its requirement; records it against the rate limit.
    pub fn authorize(
        &mut self,
        action: &Action,
        confirmation: Confirmation<'_>,
        now_ms: i64,
    ) -> Result<Authorized, Blocked> {
        if self.policy.read_only {
            return Err(Blocked::ReadOnly);
        }
        // The confirmation requirement comes from kind and target together; a mismatched pair
        // could ask for less than its kind needs.
        if !action.is_well_formed() {
            return Err(Blocked::Malformed(action.kind.id()));
        }
        if !self.policy.allowed.contains(&action.kind) {
            return Err(Blocked::NotAllowed(action.kind.id()));
        }
        match (self.requirement(action), confirmation) {
            (Requirement::Unattended, _) | (Requirement::Keystroke, Confirmation::Keystroke) => {}
            (Requirement::TypeResourceId(expected), Confirmation::Typed(typed)) => {
                if typed != expected {
                    return Err(Blocked::WrongTypedId {
                        expected,
                        typed: crate::safe_text::SafeText::new(typed).into_string(),
                    });
                }
            }
            _ => return Err(Blocked::Unconfirmed),
        }
        while self
            .recent
            .front()
            .is_some_and(|&t| t <= now_ms - self.policy.rate_window_ms)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.policy.max_actions {
            let oldest = self.recent.front().copied().unwrap_or(now_ms);
            return Err(Blocked::RateLimited {
                max: self.policy.max_actions,
                window_min: self.policy.rate_window_ms / 60_000,
                retry_in_s: ((oldest + self.policy.rate_window_ms - now_ms).max(0) + 999) / 1000,
            });
        }
        self.recent.push_back(now_ms);
        Ok(Authorized {
            action: action.clone(),
            at_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::catalog::Target;
    use super::*;

    fn reboot() -> Action {
        Action {
            kind: ActionKind::RebootInstance,
            target: Target::Instance {
                instance_id: "i-0abc".into(),
            },
        }
    }

    fn deactivate() -> Action {
        Action {
            kind: ActionKind::DeactivateAccessKey,
            target: Target::AccessKey {
                access_key_id: "AKIALEAKED00000000X".into(),
                user_name: None,
            },
        }
    }

    fn notify() -> Action {
        Action {
            kind: ActionKind::NotifySns,
            target: Target::Topic {
                topic_arn: "arn:aws:sns:us-east-1:123456789012:oncall".into(),
            },
        }
    }

    #[test]
    fn nothing_runs_without_its_confirmation() {
        let mut g = Gate::default();
        for a in [reboot(), deactivate(), notify()] {
            assert_eq!(
                g.authorize(&a, Confirmation::Nothing, 0).unwrap_err(),
                Blocked::Unconfirmed,
                "{a:?}"
            );
        }
        assert!(g.authorize(&reboot(), Confirmation::Keystroke, 0).is_ok());
        // A destructive action needs its id typed, exactly; a keystroke is not enough.
        assert_eq!(
            g.authorize(&deactivate(), Confirmation::Keystroke, 0)
                .unwrap_err(),
            Blocked::Unconfirmed
        );
        assert!(matches!(
            g.authorize(&deactivate(), Confirmation::Typed("AKIALEAKED00000000"), 0),
            Err(Blocked::WrongTypedId { .. })
        ));
        assert!(
            g.authorize(&deactivate(), Confirmation::Typed("AKIALEAKED00000000X"), 0)
                .is_ok()
        );
    }

    #[test]
    fn only_an_opted_in_notification_runs_unattended() {
        let mut g = Gate::new(Policy {
            notify_unattended: true,
            ..Policy::default()
        });
        assert_eq!(g.requirement(&notify()), Requirement::Unattended);
        assert!(g.authorize(&notify(), Confirmation::Nothing, 0).is_ok());
        assert_eq!(g.requirement(&reboot()), Requirement::Keystroke);
        assert!(g.authorize(&reboot(), Confirmation::Nothing, 0).is_err());
    }

    #[test]
    fn read_only_blocks_every_write_and_the_allow_list_holds() {
        let mut ro = Gate::new(Policy {
            read_only: true,
            notify_unattended: true,
            ..Policy::default()
        });
        for a in [reboot(), deactivate(), notify()] {
            assert_eq!(
                ro.authorize(&a, Confirmation::Typed(&a.resource_id()), 0)
                    .unwrap_err(),
                Blocked::ReadOnly
            );
            assert_eq!(
                ro.authorize(&a, Confirmation::Keystroke, 0).unwrap_err(),
                Blocked::ReadOnly
            );
        }
        let mut only_notify = Gate::new(Policy {
            allowed: [ActionKind::NotifySns].into_iter().collect(),
            ..Policy::default()
        });
        assert_eq!(
            only_notify
                .authorize(&reboot(), Confirmation::Keystroke, 0)
                .unwrap_err(),
            Blocked::NotAllowed("ec2.reboot_instance")
        );
        assert!(
            only_notify
                .authorize(&notify(), Confirmation::Keystroke, 0)
                .is_ok()
        );
    }

    #[test]
    fn a_kind_with_a_foreign_target_is_never_authorized() {
        let mut g = Gate::new(Policy {
            notify_unattended: true,
            ..Policy::default()
        });
        let disguised = Action {
            kind: ActionKind::NotifySns,
            target: Target::Instance {
                instance_id: "i-0abc".into(),
            },
        };
        assert_eq!(
            g.authorize(&disguised, Confirmation::Nothing, 0)
                .unwrap_err(),
            Blocked::Malformed("sns.notify")
        );
    }

    #[test]
    fn the_rate_limit_holds_and_frees_up() {
        let mut g = Gate::new(Policy {
            max_actions: 2,
            rate_window_ms: 60_000,
            ..Policy::default()
        });
        assert!(g.authorize(&reboot(), Confirmation::Keystroke, 0).is_ok());
        assert!(
            g.authorize(&reboot(), Confirmation::Keystroke, 10_000)
                .is_ok()
        );
        let err = g
            .authorize(&reboot(), Confirmation::Keystroke, 20_000)
            .unwrap_err();
        assert!(
            matches!(err, Blocked::RateLimited { retry_in_s: 40, .. }),
            "{err:?}"
        );
        assert!(
            g.authorize(&reboot(), Confirmation::Keystroke, 60_001)
                .is_ok()
        );
    }
}
