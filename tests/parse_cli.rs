//! `stormwatch parse --jsonl`: one object per record, line numbers from 1, sshd remote hosts
//! (also for a later line of the same connection), and a rejected line reported, not fatal.

mod common;

#[test]
fn parse_jsonl_reports_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/secure.log");
    let out = common::run(dir.path(), &["parse", "--jsonl", fixture]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 8);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["line_no"], i + 1);
    }
    let hosts: Vec<&str> = rows[..6]
        .iter()
        .map(|r| r["fields"]["remote_host"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        hosts,
        [
            "203.0.113.5",
            "198.51.100.77",
            "198.51.100.77",
            "198.51.100.77",
            "192.0.2.44",
            "192.0.2.44"
        ]
    );
    assert_eq!(rows[2]["fields"]["outcome"], "failed");
    assert_eq!(rows[2]["fields"]["user"], "oracle");
    assert_eq!(rows[2]["format"], "syslog");
    assert_eq!(rows[6]["fields"]["kind"], "sudo");
    assert_eq!(
        rows[6]["fields"]["command"],
        "/usr/bin/systemctl restart app"
    );
    assert!(rows[7]["rejected"].as_str().is_some(), "{}", rows[7]);
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(
        summary.contains("8 records") && summary.contains("1 rejected"),
        "{summary}"
    );
}

#[test]
fn unknown_format_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run(dir.path(), &["parse", "--format", "nope", "x.log"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("one of: syslog, lambda"), "{err}");
}
