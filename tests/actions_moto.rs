//! Every catalog action against moto_server: resolve (live lookups), execute (state first, dry
//! run, audited call), verify, repeat (no second call), undo. SSM Automation, which moto lacks,
//! answers through the SDK's replay client. The audit rows are read back from the real store.

mod common;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use stormwatch::action::catalog::{Action, ActionKind, Target};
use stormwatch::action::execute::{Applied, CallAudit, ExecError, Executed, Executor};
use stormwatch::action::guard::{GuardContext, PROTECT_TAG, Refusal};
use stormwatch::action::policy::{Confirmation, Gate, Policy};
use stormwatch::store::{self, Store};

async fn sdk(url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

fn audit(store: &Store, call: &str) -> CallAudit {
    CallAudit {
        store: Some(store.clone()),
        session: "test".into(),
        incident: Some(1),
        call: call.into(),
        actor: "tester".into(),
    }
}

/// Confirms `action` as the operator would: typing the id when it is destructive.
fn confirm(gate: &mut Gate, action: &Action) -> stormwatch::action::policy::Authorized {
    let id = action.resource_id();
    let confirmation = if action.destructive() {
        Confirmation::Typed(&id)
    } else {
        Confirmation::Keystroke
    };
    gate.authorize(action, confirmation, 0)
        .unwrap_or_else(|e| panic!("{} blocked: {e}", action.kind.id()))
}

/// Runs `action`: done, and the state it set reads back. Then once more, as a retry after an
/// outcome-unknown call would: the state is read first and nothing is called again.
async fn run_and_repeat(
    exec: &Executor,
    gate: &mut Gate,
    action: &Action,
    guards: &GuardContext,
    a: &CallAudit,
) -> Executed {
    let done = exec
        .execute(confirm(gate, action), guards, a, "")
        .await
        .unwrap();
    assert_eq!(done.applied, Applied::Done, "{}", done.detail);
    assert!(exec.verify(&done, a).await.unwrap().holds);
    let again = exec
        .execute(confirm(gate, action), guards, a, "")
        .await
        .unwrap();
    assert_eq!(again.applied, Applied::AlreadyInPlace, "{action:?} twice");
    done
}

fn open_gate() -> Gate {
    Gate::new(Policy {
        max_actions: 1000,
        ..Policy::default()
    })
}

struct World {
    ec2: aws_sdk_ec2::Client,
    instance: String,
    group: String,
}

/// An instance in the default VPC behind a security group that opens SSH to the internet.
async fn world(config: &SdkConfig, tags: &[(&str, &str)]) -> World {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let image = ec2.describe_images().send().await.unwrap().images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let name = format!("web-{}", tags.len());
    let group = ec2
        .create_security_group()
        .group_name(&name)
        .description("web")
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    ec2.authorize_security_group_ingress()
        .group_id(&group)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip("0.0.0.0/0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut run = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .security_group_ids(&group);
    if !tags.is_empty() {
        let mut spec = aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
        }
        run = run.tag_specifications(spec.build());
    }
    let instance = run.send().await.unwrap().instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    World {
        ec2,
        instance,
        group,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_actions_run_verify_repeat_and_undo_on_moto() {
    let (_moto, url) = common::start_moto();
    let config = sdk(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, _writer) = store::open(dir.path()).unwrap();
    let exec = Executor::new(&config);
    let w = world(&config, &[]).await;
    let guards = GuardContext::default();
    let mut gate = open_gate();

    // Deny: the ACL comes from the instance's subnet; the rule goes below the allow at 100.
    let deny = Action {
        kind: ActionKind::DenyCidr,
        target: Target::Cidr {
            cidr: "203.0.113.7/32".parse().unwrap(),
            instance_id: Some(w.instance.clone()),
            network_acl_id: None,
        },
    };
    let resolved = exec.resolve(&deny).await.unwrap().action;
    let Target::Cidr {
        network_acl_id: Some(acl),
        ..
    } = &resolved.target
    else {
        panic!("no ACL resolved: {resolved:?}")
    };
    assert!(resolved.preview().contains(acl.as_str()));
    let a = audit(&store, "deny");
    // The repeat reads the ACL first: no second entry.
    let done = run_and_repeat(&exec, &mut gate, &resolved, &guards, &a).await;
    assert!(done.detail.contains("rule 1 "), "{}", done.detail);
    let deny_entries =
        |acl: aws_sdk_ec2::operation::describe_network_acls::DescribeNetworkAclsOutput| {
            acl.network_acls()[0]
                .entries()
                .iter()
                .filter(|e| e.cidr_block() == Some("203.0.113.7/32"))
                .count()
        };
    let read = || w.ec2.describe_network_acls().network_acl_ids(acl).send();
    assert_eq!(deny_entries(read().await.unwrap()), 1);
    exec.undo(&done, &a).await.unwrap();
    assert_eq!(deny_entries(read().await.unwrap()), 0);
    assert!(!exec.verify(&done, &a).await.unwrap().holds);
    // Undoing twice makes no call.
    assert!(exec.undo(&done, &a).await.unwrap().contains("no rule"));

    // Revoke: the rule opening SSH to the internet is found on the instance's group.
    let revoke = Action {
        kind: ActionKind::RevokeIngress,
        target: Target::Ingress {
            attached_to: w.instance.clone(),
            port: 22,
            rule: None,
        },
    };
    let resolved = exec.resolve(&revoke).await.unwrap().action;
    assert_eq!(resolved.resource_id(), w.group);
    // Flow logs name the interface, not the instance: the same rule is found through it.
    let eni = w
        .ec2
        .describe_instances()
        .instance_ids(&w.instance)
        .send()
        .await
        .unwrap()
        .reservations()[0]
        .instances()[0]
        .network_interfaces()[0]
        .network_interface_id()
        .unwrap()
        .to_string();
    let via_eni = Action {
        kind: ActionKind::RevokeIngress,
        target: Target::Ingress {
            attached_to: eni,
            port: 22,
            rule: None,
        },
    };
    let by_interface = exec.resolve(&via_eni).await.unwrap().action;
    assert_eq!(by_interface.resource_id(), w.group);
    let missing = Action {
        kind: ActionKind::RevokeIngress,
        target: Target::Ingress {
            attached_to: "eni-0123456789abcdef0".into(),
            port: 22,
            rule: None,
        },
    };
    assert!(matches!(
        exec.resolve(&missing).await.unwrap_err(),
        ExecError::NotFound { .. }
    ));
    // The operator's own address is inside 0.0.0.0/0: revoking it would lock them out.
    let operator = GuardContext {
        operator_ips: vec!["198.51.100.20".parse().unwrap()],
        own_access_key: None,
    };
    let a = audit(&store, "revoke");
    let err = exec
        .execute(confirm(&mut gate, &resolved), &operator, &a, "")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::Refused(Refusal::OperatorAddress { .. })),
        "{err}"
    );
    let done = run_and_repeat(&exec, &mut gate, &resolved, &guards, &a).await;
    exec.undo(&done, &a).await.unwrap();
    assert!(
        !exec.verify(&done, &a).await.unwrap().holds,
        "rule not back"
    );

    // Reboot (dry run first; moto answers DryRunOperation like AWS).
    let reboot = Action {
        kind: ActionKind::RebootInstance,
        target: Target::Instance {
            instance_id: w.instance.clone(),
        },
    };
    let resolved = exec.resolve(&reboot).await.unwrap().action;
    let a = audit(&store, "reboot");
    let done = exec
        .execute(confirm(&mut gate, &resolved), &guards, &a, "")
        .await
        .unwrap();
    assert!(done.request_id.is_some());
    assert!(exec.verify(&done, &a).await.unwrap().holds);
    assert!(exec.undo(&done, &a).await.is_err(), "a reboot has no undo");

    // Stop, then start again.
    let stop = Action {
        kind: ActionKind::StopInstance,
        target: Target::Instance {
            instance_id: w.instance.clone(),
        },
    };
    let a = audit(&store, "stop");
    let done = run_and_repeat(&exec, &mut gate, &stop, &guards, &a).await;
    exec.undo(&done, &a).await.unwrap();
    let state = exec.instance(&w.instance).await.unwrap().state;
    assert!(matches!(state.as_str(), "pending" | "running"), "{state}");

    // A protected instance is never stopped; an instance that does not exist is not found.
    let protected = world(&config, &[(PROTECT_TAG, "true")]).await;
    let stop_protected = Action {
        kind: ActionKind::StopInstance,
        target: Target::Instance {
            instance_id: protected.instance.clone(),
        },
    };
    let err = exec
        .execute(
            confirm(&mut gate, &stop_protected),
            &guards,
            &audit(&store, "p"),
            "",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::Refused(Refusal::Protected { .. })),
        "{err}"
    );
    let ghost = Action {
        kind: ActionKind::RebootInstance,
        target: Target::Instance {
            instance_id: "i-0ffffffffffffffff".into(),
        },
    };
    assert!(matches!(
        exec.resolve(&ghost).await,
        Err(ExecError::NotFound { .. })
    ));

    // Every call's request row was committed before its response.
    let rows = store::audit(dir.path()).unwrap();
    for call in ["deny", "revoke", "reboot", "stop"] {
        let events: Vec<&str> = rows
            .iter()
            .filter(|r| r.call == call)
            .map(|r| r.event.as_str())
            .collect();
        let first_request = events.iter().position(|e| *e == "request").unwrap();
        let first_response = events.iter().position(|e| *e == "response").unwrap();
        assert!(first_request < first_response, "{call}: {events:?}");
        assert!(events.contains(&"verified"), "{call}: {events:?}");
    }
    assert!(rows.iter().all(|r| !r.outcome_unknown));
    assert!(
        rows.iter().any(|r| r.call == "revoke"
            && r.event == "blocked"
            && r.detail.contains("198.51.100.20"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_scaled_instance_is_never_stopped() {
    let (_moto, url) = common::start_moto();
    let config = sdk(&url).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let image = ec2.describe_images().send().await.unwrap().images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let subnet = ec2.describe_subnets().send().await.unwrap().subnets()[0]
        .subnet_id()
        .unwrap()
        .to_string();
    asg.create_launch_configuration()
        .launch_configuration_name("web")
        .image_id(image)
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("web-asg")
        .launch_configuration_name("web")
        .min_size(1)
        .max_size(1)
        .vpc_zone_identifier(subnet)
        .send()
        .await
        .unwrap();
    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
    let instance = groups.auto_scaling_groups()[0].instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let exec = Executor::new(&config);
    let stop = Action {
        kind: ActionKind::StopInstance,
        target: Target::Instance {
            instance_id: instance.clone(),
        },
    };
    let facts = exec.resolve(&stop).await.unwrap().instance.unwrap();
    assert_eq!(facts.auto_scaling_group.as_deref(), Some("web-asg"));
    let mut gate = open_gate();
    let a = CallAudit {
        store: None,
        session: "t".into(),
        incident: None,
        call: "c".into(),
        actor: "t".into(),
    };
    let err = exec
        .execute(confirm(&mut gate, &stop), &GuardContext::default(), &a, "")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::Refused(Refusal::AutoScaled { .. })),
        "{err}"
    );
    let state = exec.instance(&instance).await.unwrap().state;
    assert_eq!(state, "running", "the refused stop still ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_iam_sns_and_ssm_actions_on_moto() {
    let (_moto, url) = common::start_moto();
    let config = sdk(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, _writer) = store::open(dir.path()).unwrap();
    let exec = Executor::new(&config);
    let guards = GuardContext::default();
    let mut gate = open_gate();

    // Lambda: throttle to 0 and back to the previous reserved concurrency.
    let iam = aws_sdk_iam::Client::new(&config);
    let role = iam
        .create_role()
        .role_name("lambda")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .arn()
        .to_string();
    let lambda = aws_sdk_lambda::Client::new(&config);
    lambda
        .create_function()
        .function_name("orders-api")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(role)
        .handler("app.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(b"PK".to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    lambda
        .put_function_concurrency()
        .function_name("orders-api")
        .reserved_concurrent_executions(5)
        .send()
        .await
        .unwrap();
    let throttle = Action {
        kind: ActionKind::ThrottleLambda,
        target: Target::Function {
            name: "orders-api".into(),
            reserved_concurrency: 0,
        },
    };
    exec.resolve(&throttle).await.unwrap();
    let a = audit(&store, "throttle");
    let done = run_and_repeat(&exec, &mut gate, &throttle, &guards, &a).await;
    assert!(done.detail.contains("5 -> 0"), "{}", done.detail);
    exec.undo(&done, &a).await.unwrap();
    let now = lambda
        .get_function_concurrency()
        .function_name("orders-api")
        .send()
        .await
        .unwrap()
        .reserved_concurrent_executions();
    assert_eq!(now, Some(5));
    let missing = Action {
        kind: ActionKind::ThrottleLambda,
        target: Target::Function {
            name: "no-such-fn".into(),
            reserved_concurrency: 0,
        },
    };
    assert!(exec.resolve(&missing).await.is_err());

    // IAM: deactivate a leaked key, never the one stormwatch signs with.
    iam.create_user().user_name("ci").send().await.unwrap();
    let key = iam
        .create_access_key()
        .user_name("ci")
        .send()
        .await
        .unwrap()
        .access_key()
        .unwrap()
        .access_key_id()
        .to_string();
    let deactivate = Action {
        kind: ActionKind::DeactivateAccessKey,
        target: Target::AccessKey {
            access_key_id: key.clone(),
            user_name: None,
        },
    };
    let resolved = exec.resolve(&deactivate).await.unwrap().action;
    assert!(
        resolved.preview().contains("UserName=ci"),
        "{}",
        resolved.preview()
    );
    let own = GuardContext {
        operator_ips: Vec::new(),
        own_access_key: Some(key.clone()),
    };
    let a = audit(&store, "key");
    assert!(matches!(
        exec.execute(confirm(&mut gate, &resolved), &own, &a, "")
            .await,
        Err(ExecError::Refused(Refusal::OwnAccessKey { .. }))
    ));
    let done = exec
        .execute(confirm(&mut gate, &resolved), &guards, &a, "")
        .await
        .unwrap();
    assert!(exec.verify(&done, &a).await.unwrap().holds);
    exec.undo(&done, &a).await.unwrap();
    assert!(
        !exec.verify(&done, &a).await.unwrap().holds,
        "key not active again"
    );

    // SNS.
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = sns
        .create_topic()
        .name("oncall")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let notify = Action {
        kind: ActionKind::NotifySns,
        target: Target::Topic { topic_arn: topic },
    };
    let a = audit(&store, "notify");
    let done = exec
        .execute(
            confirm(&mut gate, &notify),
            &guards,
            &a,
            "SSH brute force · i-0abc\n45.83.12.7 tried 900 passwords",
        )
        .await
        .unwrap();
    assert!(done.started_id.is_some());
    assert!(exec.verify(&done, &a).await.unwrap().holds);

    // SSM SendCommand on an instance (moto always answers Success).
    let w = world(&config, &[]).await;
    let run_doc = Action {
        kind: ActionKind::RunSsmDocument,
        target: Target::Document {
            document: "AWS-RunShellScript".into(),
            instance_id: w.instance.clone(),
        },
    };
    exec.resolve(&run_doc).await.unwrap();
    let a = audit(&store, "doc");
    let done = exec
        .execute(confirm(&mut gate, &run_doc), &guards, &a, "")
        .await
        .unwrap();
    assert!(exec.verify(&done, &a).await.unwrap().holds);

    let rows = store::audit(dir.path()).unwrap();
    for call in ["throttle", "key", "notify", "doc"] {
        assert!(
            rows.iter()
                .any(|r| r.call == call && r.event == "response" && !r.request_id.is_empty()),
            "{call} has no response row with a request id"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssm_automation_restart_through_the_sdk_replay_client() {
    use aws_smithy_types::body::SdkBody;
    use std::sync::{Arc, Mutex};
    let (_moto, url) = common::start_moto();
    let config = sdk(&url).await;
    let w = world(&config, &[]).await;
    let sent: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let seen = sent.clone();
    let http = aws_smithy_http_client::test_util::infallible_client_fn(move |req| {
        let (op, body) = common::aws_json_request(&req);
        let answer = match op.as_str() {
            "AmazonSSM.StartAutomationExecution" => r#"{"AutomationExecutionId":"auto-1"}"#,
            "AmazonSSM.GetAutomationExecution" => {
                r#"{"AutomationExecution":{"AutomationExecutionId":"auto-1","AutomationExecutionStatus":"Success"}}"#
            }
            other => panic!("unexpected SSM call {other}"),
        };
        seen.lock().unwrap().push((op, body));
        http::Response::builder()
            .status(200)
            .header("x-amzn-requestid", "req-1")
            .body(SdkBody::from(answer))
            .unwrap()
    });
    let ssm_config = aws_sdk_ssm::config::Builder::from(&config)
        .http_client(http)
        .build();
    let exec = Executor::new(&config).with_ssm(aws_sdk_ssm::Client::from_conf(ssm_config));
    let restart = Action {
        kind: ActionKind::SsmRestartInstance,
        target: Target::Instance {
            instance_id: w.instance.clone(),
        },
    };
    exec.resolve(&restart).await.unwrap();
    let mut gate = open_gate();
    let a = CallAudit {
        store: None,
        session: "t".into(),
        incident: None,
        call: "c".into(),
        actor: "t".into(),
    };
    let done = exec
        .execute(
            confirm(&mut gate, &restart),
            &GuardContext::default(),
            &a,
            "",
        )
        .await
        .unwrap();
    assert_eq!(done.started_id.as_deref(), Some("auto-1"));
    assert!(exec.verify(&done, &a).await.unwrap().holds);
    let sent = sent.lock().unwrap();
    let (op, body) = &sent[0];
    assert_eq!(op, "AmazonSSM.StartAutomationExecution");
    assert_eq!(body["DocumentName"], "AWS-RestartEC2Instance");
    assert_eq!(body["Parameters"]["InstanceId"][0], w.instance);
}

/// The request row is committed before the call leaves: if stormwatch dies while AWS has not
/// answered, the audit log says "outcome unknown" for that call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_never_returns_leaves_outcome_unknown() {
    let (_moto, url) = common::start_moto();
    let config = sdk(&url).await;
    let sns_topic = aws_sdk_sns::Client::new(&config)
        .create_topic()
        .name("oncall")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    // An SNS endpoint that accepts the connection and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://{}", hang.local_addr().unwrap());
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept() {
            let _ = seen_tx.send(());
            held.push(s);
        }
    });
    let hang_config = sdk(&hang_url).await;
    let dir = tempfile::tempdir().unwrap();
    let (store, _writer) = store::open(dir.path()).unwrap();
    let exec = Executor::new(&hang_config);
    let notify = Action {
        kind: ActionKind::NotifySns,
        target: Target::Topic {
            topic_arn: sns_topic,
        },
    };
    let mut gate = open_gate();
    let authorized = confirm(&mut gate, &notify);
    let a = audit(&store, "hung");
    let task = tokio::spawn(async move {
        exec.execute(authorized, &GuardContext::default(), &a, "x")
            .await
    });
    tokio::task::spawn_blocking(move || seen_rx.recv_timeout(std::time::Duration::from_secs(20)))
        .await
        .unwrap()
        .expect("the call never reached the endpoint");
    // The process "dies" here: whatever is on disk is what the next run sees.
    task.abort();
    let rows = store::audit(dir.path()).unwrap();
    let request = rows
        .iter()
        .find(|r| r.call == "hung" && r.event == "request")
        .expect("no request row before the call");
    assert!(request.outcome_unknown, "{rows:?}");
}
