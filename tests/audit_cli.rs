//! `stormwatch audit --json`: one JSON array, `[]` and exit 0 on an empty or pre-audit store, and
//! the rows an executor wrote, with an unanswered request marked "outcome unknown".

mod common;

use stormwatch::safe_text::SafeText;
use stormwatch::store::{self, AuditEntry, AuditEvent};

fn entry(call: &str, event: AuditEvent) -> AuditEntry {
    AuditEntry {
        created_ms: 1_795_399_200_000,
        session: "s1".into(),
        incident: Some(2),
        call: call.into(),
        action: "vpc.deny_cidr",
        target: r#"{"type":"cidr","cidr":"45.83.12.7/32","network_acl_id":"acl-0123"}"#.into(),
        // Previews are built from evidence; this one carries an escape as if a store file
        // had been edited.
        preview: "ec2:CreateNetworkAclEntry NetworkAclId=acl-0123 \u{1b}]0;owned\u{7}".into(),
        event,
        actor: "oncall".into(),
        reason: SafeText::new(if event == AuditEvent::Rejected {
            "wrong\u{1b}[31m address"
        } else {
            ""
        }),
        request_id: String::new(),
        detail: SafeText::default(),
    }
}

#[test]
fn an_empty_store_exports_an_empty_array() {
    let dir = tempfile::tempdir().unwrap();
    let doc = common::json(&common::run(dir.path(), &["audit", "--json"]));
    assert_eq!(doc, serde_json::json!([]));
    assert!(
        !dir.path().join(store::DB_FILE).exists(),
        "reading the audit log does not create a store"
    );
    // A store another command created (labels, templates) but with no action yet.
    let (s, t) = store::open(dir.path()).unwrap();
    drop(s);
    t.join();
    let doc = common::json(&common::run(dir.path(), &["audit", "--json"]));
    assert_eq!(doc, serde_json::json!([]));
}

#[test]
fn a_store_from_before_the_audit_log_exports_an_empty_array() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(store::DB_FILE)).unwrap();
    for step in &store::MIGRATIONS[..2] {
        conn.execute_batch(step).unwrap();
    }
    conn.pragma_update(None, "user_version", 2).unwrap();
    drop(conn);
    let doc = common::json(&common::run(dir.path(), &["audit", "--json"]));
    assert_eq!(doc, serde_json::json!([]));
}

#[test]
fn rows_are_exported_in_order_with_unanswered_requests_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let (s, t) = store::open(dir.path()).unwrap();
    for (call, event) in [
        ("c1", AuditEvent::Suggested),
        ("c1", AuditEvent::Rejected),
        ("c2", AuditEvent::Suggested),
        ("c2", AuditEvent::Approved),
        ("c2", AuditEvent::Request),
    ] {
        s.save_audit_blocking(entry(call, event)).unwrap();
    }
    drop(s);
    t.join();
    let doc = common::json(&common::run(dir.path(), &["audit", "--json"]));
    let rows = doc.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let events: Vec<&str> = rows.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        ["suggested", "rejected", "suggested", "approved", "request"]
    );
    let reason = rows[1]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("wrong") && !reason.contains('\u{1b}'),
        "{reason:?}"
    );
    assert_eq!(rows[4]["outcome_unknown"], true);
    assert!(rows[..4].iter().all(|r| r["outcome_unknown"] == false));
    assert_eq!(rows[0]["target"]["cidr"], "45.83.12.7/32");
    let human = common::run(dir.path(), &["audit"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("OUTCOME UNKNOWN"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "the store is a file: what is read back is sanitised before the terminal"
    );
}
