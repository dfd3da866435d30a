//! The fixed catalog of remediations: each kind's id, risk tier, whether it destroys or blocks
//! something, whether AWS can dry-run it and whether it can be undone, and a typed target whose
//! preview is the exact API call that would be made. Nothing outside this enum can ever run.

use super::cidr::Cidr;
use serde::Serialize;

/// Every remediation stormwatch knows. Log text and model output can at most *name* one of these
/// through [`ActionKind::from_id`]; they never supply its parameters (see [`super::propose`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    RebootInstance,
    StopInstance,
    /// SSM Automation `AWS-RestartEC2Instance`, where SSM manages the instance.
    SsmRestartInstance,
    /// Set a function's reserved concurrency; undo restores the previous value or removes it.
    ThrottleLambda,
    /// Deny a CIDR with a network ACL entry; undo deletes the entry.
    DenyCidr,
    /// Revoke a security-group ingress rule; undo re-authorises it.
    RevokeIngress,
    /// Deactivate an IAM access key; undo reactivates it.
    DeactivateAccessKey,
    /// Publish the incident to the configured SNS topic.
    NotifySns,
    /// Run an SSM document from the configured allow-list on an instance.
    RunSsmDocument,
}

/// Every kind, in the order the console lists them.
pub const CATALOG: [ActionKind; 9] = [
    ActionKind::NotifySns,
    ActionKind::RebootInstance,
    ActionKind::SsmRestartInstance,
    ActionKind::RunSsmDocument,
    ActionKind::ThrottleLambda,
    ActionKind::DenyCidr,
    ActionKind::RevokeIngress,
    ActionKind::DeactivateAccessKey,
    ActionKind::StopInstance,
];

/// How much harm a mistaken run can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Tells people; changes nothing.
    Low,
    /// Interrupts a resource that comes back by itself (a reboot, a runbook).
    Medium,
    /// Cuts something off until someone undoes it.
    High,
}

/// Whether AWS can check the call without making it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DryRun {
    /// The API takes `DryRun` and answers `DryRunOperation` when the call would succeed.
    Api,
    /// No dry-run in the API: the preview and the live lookups are the check.
    None,
}

impl ActionKind {
    /// Stable id used in config allow-lists, the audit log and the analyst's answer.
    pub fn id(self) -> &'static str {
        match self {
            ActionKind::RebootInstance => "ec2.reboot_instance",
            ActionKind::StopInstance => "ec2.stop_instance",
            ActionKind::SsmRestartInstance => "ssm.restart_instance",
            ActionKind::ThrottleLambda => "lambda.throttle",
            ActionKind::DenyCidr => "vpc.deny_cidr",
            ActionKind::RevokeIngress => "ec2.revoke_ingress",
            ActionKind::DeactivateAccessKey => "iam.deactivate_access_key",
            ActionKind::NotifySns => "sns.notify",
            ActionKind::RunSsmDocument => "ssm.run_document",
        }
    }

    /// The kind an id names, if it is in the catalog; anything else is refused.
    pub fn from_id(id: &str) -> Option<ActionKind> {
        CATALOG.into_iter().find(|k| k.id() == id)
    }

    pub fn label(self) -> &'static str {
        match self {
            ActionKind::RebootInstance => "reboot the instance",
            ActionKind::StopInstance => "stop the instance",
            ActionKind::SsmRestartInstance => "restart the instance through SSM Automation",
            ActionKind::ThrottleLambda => "throttle the function (reserved concurrency)",
            ActionKind::DenyCidr => "deny the address in the subnet's network ACL",
            ActionKind::RevokeIngress => "revoke the security-group ingress rule",
            ActionKind::DeactivateAccessKey => "deactivate the access key",
            ActionKind::NotifySns => "notify the on-call topic",
            ActionKind::RunSsmDocument => "run the allowed SSM document",
        }
    }

    pub fn risk(self) -> Risk {
        match self {
            ActionKind::NotifySns => Risk::Low,
            ActionKind::RebootInstance
            | ActionKind::SsmRestartInstance
            | ActionKind::RunSsmDocument => Risk::Medium,
            ActionKind::StopInstance
            | ActionKind::ThrottleLambda
            | ActionKind::DenyCidr
            | ActionKind::RevokeIngress
            | ActionKind::DeactivateAccessKey => Risk::High,
        }
    }

    pub fn dry_run(self) -> DryRun {
        match self {
            // EC2 takes DryRun for these (moto ignores it for ACL entries; see FIELD-NOTES).
            ActionKind::RebootInstance
            | ActionKind::StopInstance
            | ActionKind::DenyCidr
            | ActionKind::RevokeIngress => DryRun::Api,
            _ => DryRun::None,
        }
    }

    /// Whether a later call can put things back as they were.
    pub fn undoable(self) -> bool {
        match self {
            ActionKind::StopInstance
            | ActionKind::ThrottleLambda
            | ActionKind::DenyCidr
            | ActionKind::RevokeIngress
            | ActionKind::DeactivateAccessKey => true,
            // A reboot, a runbook or a message cannot be taken back.
            ActionKind::RebootInstance
            | ActionKind::SsmRestartInstance
            | ActionKind::NotifySns
            | ActionKind::RunSsmDocument => false,
        }
    }
}

/// What an action acts on. Every string in it comes from an incident's evidence or a live AWS
/// lookup, never from model text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    Instance {
        instance_id: String,
    },
    Function {
        name: String,
        reserved_concurrency: u32,
    },
    Cidr {
        cidr: Cidr,
        /// The attacked instance from the evidence: its subnet's network ACL gets the rule.
        instance_id: Option<String>,
        /// The network ACL, once a live lookup has found the subnet's.
        network_acl_id: Option<String>,
    },
    Ingress {
        /// The attacked instance (`i-`) or network interface (`eni-`) from the evidence; its
        /// security groups are searched.
        attached_to: String,
        /// The port under attack (22 for SSH).
        port: u16,
        /// The rule that opens `port` to the attackers, once a live lookup has found it.
        rule: Option<IngressRule>,
    },
    AccessKey {
        access_key_id: String,
        user_name: Option<String>,
    },
    Topic {
        topic_arn: String,
    },
    Document {
        document: String,
        instance_id: String,
    },
}

/// A security-group ingress rule (TCP on the target's port) found by a live lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngressRule {
    pub group_id: String,
    pub cidr: Cidr,
}

/// One concrete remediation: a catalog kind and its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub kind: ActionKind,
    pub target: Target,
}

impl Action {
    /// The id the operator must type to confirm a destructive action.
    pub fn resource_id(&self) -> String {
        match &self.target {
            Target::Instance { instance_id } | Target::Document { instance_id, .. } => {
                instance_id.clone()
            }
            Target::Function { name, .. } => name.clone(),
            Target::Cidr { cidr, .. } => cidr.to_string(),
            // The group is what changes; before the lookup only the instance is known.
            Target::Ingress {
                rule: Some(rule), ..
            } => rule.group_id.clone(),
            Target::Ingress { attached_to, .. } => attached_to.clone(),
            Target::AccessKey { access_key_id, .. } => access_key_id.clone(),
            Target::Topic { topic_arn } => topic_arn.clone(),
        }
    }

    /// Cuts something off: confirming it takes typing [`Action::resource_id`], not a keystroke.
    pub fn destructive(&self) -> bool {
        match (&self.kind, &self.target) {
            (
                ActionKind::ThrottleLambda,
                Target::Function {
                    reserved_concurrency,
                    ..
                },
            ) => *reserved_concurrency == 0,
            (kind, _) => matches!(
                kind,
                ActionKind::StopInstance
                    | ActionKind::DenyCidr
                    | ActionKind::RevokeIngress
                    | ActionKind::DeactivateAccessKey
            ),
        }
    }

    /// Whether kind and target belong together; a mismatched pair is never executed.
    pub fn is_well_formed(&self) -> bool {
        matches!(
            (self.kind, &self.target),
            (
                ActionKind::RebootInstance
                    | ActionKind::StopInstance
                    | ActionKind::SsmRestartInstance,
                Target::Instance { .. }
            ) | (ActionKind::ThrottleLambda, Target::Function { .. })
                | (ActionKind::DenyCidr, Target::Cidr { .. })
                | (ActionKind::RevokeIngress, Target::Ingress { .. })
                | (ActionKind::DeactivateAccessKey, Target::AccessKey { .. })
                | (ActionKind::NotifySns, Target::Topic { .. })
                | (ActionKind::RunSsmDocument, Target::Document { .. })
        )
    }

    /// The exact API call, as the confirm popup and the audit log show it.
    pub fn preview(&self) -> String {
        match &self.target {
            Target::Instance { instance_id } => match self.kind {
                ActionKind::StopInstance => {
                    format!("ec2:StopInstances InstanceIds=[{instance_id}] (DryRun first)")
                }
                ActionKind::SsmRestartInstance => format!(
                    "ssm:StartAutomationExecution DocumentName=AWS-RestartEC2Instance Parameters={{InstanceId=[{instance_id}]}}"
                ),
                _ => format!("ec2:RebootInstances InstanceIds=[{instance_id}] (DryRun first)"),
            },
            Target::Function {
                name,
                reserved_concurrency,
            } => format!(
                "lambda:PutFunctionConcurrency FunctionName={name} ReservedConcurrentExecutions={reserved_concurrency}"
            ),
            Target::Cidr {
                cidr,
                network_acl_id,
                ..
            } => format!(
                "ec2:CreateNetworkAclEntry NetworkAclId={} RuleNumber=<lowest free> Protocol=-1 RuleAction=deny Egress=false {}={cidr} (DryRun first)",
                network_acl_id
                    .as_deref()
                    .unwrap_or("<the subnet's ACL, looked up>"),
                if cidr.is_v4() {
                    "CidrBlock"
                } else {
                    "Ipv6CidrBlock"
                }
            ),
            Target::Ingress {
                attached_to,
                port,
                rule: Some(IngressRule { group_id, cidr }),
            } => format!(
                "ec2:RevokeSecurityGroupIngress GroupId={group_id} IpPermissions=[{{IpProtocol=tcp, FromPort={port}, ToPort={port}, {}={cidr}}}] (DryRun first; {attached_to}'s group)",
                if cidr.is_v4() { "CidrIp" } else { "CidrIpv6" }
            ),
            Target::Ingress {
                attached_to, port, ..
            } => format!(
                "ec2:RevokeSecurityGroupIngress GroupId=<{attached_to}'s group opening tcp/{port}, looked up> (DryRun first)"
            ),
            Target::AccessKey {
                access_key_id,
                user_name,
            } => format!(
                "iam:UpdateAccessKey AccessKeyId={access_key_id}{} Status=Inactive",
                user_name
                    .as_deref()
                    .map(|u| format!(" UserName={u}"))
                    .unwrap_or_default()
            ),
            Target::Topic { topic_arn } => {
                format!("sns:Publish TopicArn={topic_arn} Subject=<incident title>")
            }
            Target::Document {
                document,
                instance_id,
            } => format!("ssm:SendCommand DocumentName={document} InstanceIds=[{instance_id}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_nothing_else_names_a_kind() {
        for k in CATALOG {
            assert_eq!(ActionKind::from_id(k.id()), Some(k));
        }
        for bogus in [
            "ec2.terminate_instances",
            "EC2.REBOOT_INSTANCE",
            "ec2.reboot_instance ",
            "",
            "iam.delete_user",
        ] {
            assert_eq!(ActionKind::from_id(bogus), None, "{bogus:?}");
        }
    }

    #[test]
    fn destructive_actions_are_the_ones_that_cut_something_off() {
        let instance = Target::Instance {
            instance_id: "i-0abc".into(),
        };
        let stop = Action {
            kind: ActionKind::StopInstance,
            target: instance.clone(),
        };
        let reboot = Action {
            kind: ActionKind::RebootInstance,
            target: instance,
        };
        assert!(stop.destructive() && !reboot.destructive());
        let throttle = |n| Action {
            kind: ActionKind::ThrottleLambda,
            target: Target::Function {
                name: "orders".into(),
                reserved_concurrency: n,
            },
        };
        assert!(throttle(0).destructive() && !throttle(5).destructive());
        assert!(
            throttle(0)
                .preview()
                .contains("ReservedConcurrentExecutions=0")
        );
        assert_eq!(throttle(0).resource_id(), "orders");
    }

    #[test]
    fn a_mismatched_kind_and_target_is_not_well_formed() {
        let a = Action {
            kind: ActionKind::StopInstance,
            target: Target::Topic {
                topic_arn: "arn:aws:sns:us-east-1:123456789012:oncall".into(),
            },
        };
        assert!(!a.is_well_formed());
        let cidr: Cidr = "203.0.113.7/32".parse().unwrap();
        let deny = Action {
            kind: ActionKind::DenyCidr,
            target: Target::Cidr {
                cidr,
                instance_id: None,
                network_acl_id: Some("acl-0123".into()),
            },
        };
        assert!(deny.is_well_formed());
        assert!(
            deny.preview().contains("CidrBlock=203.0.113.7/32"),
            "{}",
            deny.preview()
        );
    }
}
