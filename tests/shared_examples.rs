//! Every record of the public AWS examples in `../shared/data` parses, each by its own format's
//! parser, with zero rejected; on fail2ban's labelled sshd lines the remote host is the one
//! fail2ban expects. The data is not shipped with stormwatch, so these tests skip (saying so) when
//! it is absent.

use serde_json::Value;
use std::path::{Path, PathBuf};
use stormwatch::files::read_file;
use stormwatch::parse::{Fields, Format, Parser};
use stormwatch::record::{Interner, Record};
use stormwatch::safe_text::SafeText;

fn shared() -> Option<PathBuf> {
    let dir = std::env::var_os("STORMWATCH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} is absent (set STORMWATCH_SHARED_DATA)",
            dir.display()
        );
        None
    }
}

fn rec(group: &str, text: &str) -> Record {
    Record {
        arrival_ms: 0,
        ts_ms: 0,
        group: group.into(),
        stream: "-".into(),
        text: SafeText::new(text),
    }
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Parses records with one parser, asserting none is rejected and each has `want`'s format.
fn check(what: &str, records: &[Record], want: Format, parser: &mut Parser) -> usize {
    let mut n = 0;
    for r in records {
        match parser.parse(r) {
            Ok(Some(p)) => {
                assert_eq!(p.format, want, "{what}: {}", r.text);
                n += 1;
            }
            Ok(None) => {}
            Err(e) => panic!("{what}: rejected ({e}): {}", r.text),
        }
    }
    n
}

fn file_records(path: &Path) -> Vec<Record> {
    read_file(path, &mut Interner::default())
        .unwrap()
        .into_iter()
        .map(|r| r.record)
        .collect()
}

#[test]
fn every_example_record_parses_with_its_own_parser() {
    let Some(d) = shared() else { return };
    let ex = d.join("aws_log_examples");
    let mut total = 0;

    // Raw files, format detected.
    for (file, want) in [
        (
            "ssh_auth/elastic_beats_filebeat_system_auth_test.log",
            Format::Syslog,
        ),
        ("s3_access/aws_docs_LogFormat_example.log", Format::S3Access),
        (
            "s3_access/elastic_integrations_test-s3-server-access.log",
            Format::S3Access,
        ),
        ("vpc_flow/default_format_v2.log", Format::VpcFlow),
        ("lambda/aws_docs_lambda_log_lines.log", Format::Lambda),
    ] {
        let recs = file_records(&ex.join(file));
        assert!(!recs.is_empty(), "{file}");
        total += check(file, &recs, want, &mut Parser::new());
    }

    // Subscription payloads: each event by its log group's format.
    for entry in std::fs::read_dir(ex.join("lambda/datadog_forwarder_fixtures")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let recs = file_records(&path);
            let want = if recs.iter().all(|r| r.group.starts_with("/aws/lambda/")) {
                Format::Lambda
            } else {
                Format::Json
            };
            total += check(&path.display().to_string(), &recs, want, &mut Parser::new());
        }
    }

    // JSONL wrappers, unwrapped.
    let mut p = Parser::new();
    for v in jsonl(&ex.join("lambda/datadog_forwarder_fixtures/flattened_log_events.jsonl")) {
        let group = v["logGroup"].as_str().unwrap();
        let msg = v["message"].as_str().unwrap().trim_end();
        let want = if group.starts_with("/aws/lambda/") {
            Format::Lambda
        } else {
            Format::Json
        };
        total += check("flattened", &[rec(group, msg)], want, &mut p);
    }
    for v in jsonl(&ex.join("lambda/aws_docs_lambda_log_blocks.jsonl")) {
        let block = v["text"].as_str().unwrap().trim_end();
        total += check(
            "lambda block",
            &[rec("/aws/lambda/docs", block)],
            Format::Lambda,
            &mut Parser::new(),
        );
    }
    for v in jsonl(&ex.join("vpc_flow/aws_docs_flow_log_examples.jsonl")) {
        let mut p = Parser::new();
        p.set_flow_format(
            "flows",
            stormwatch::parse::FlowFormat::parse(v["format"].as_str().unwrap()).unwrap(),
        );
        total += check(
            "vpc",
            &[rec("flows", v["line"].as_str().unwrap())],
            Format::VpcFlow,
            &mut p,
        );
    }
    let mut p = Parser::new();
    for v in jsonl(&ex.join("ssh_auth/fail2ban_sshd_labelled.jsonl")) {
        total += check(
            "fail2ban",
            &[rec("/var/log/secure", v["line"].as_str().unwrap())],
            Format::Syslog,
            &mut p,
        );
    }

    // CloudTrail: delivery files and single events.
    let ct = d.join("cloudtrail");
    for entry in std::fs::read_dir(ct.join("invictus_stratus/CloudTrail")).unwrap() {
        let path = entry.unwrap().path();
        total += check(
            &path.display().to_string(),
            &file_records(&path),
            Format::CloudTrail,
            &mut Parser::new(),
        );
    }
    for v in jsonl(&ct.join("aws_docs_examples/cloudtrail_log_file_examples.jsonl")) {
        total += check(
            "ct docs",
            &[rec("ct", &v.to_string())],
            Format::CloudTrail,
            &mut Parser::new(),
        );
    }
    eprintln!("parsed {total} example records, 0 rejected");
    assert!(total > 2_000);
}

#[test]
fn sshd_remote_host_matches_fail2ban() {
    let Some(d) = shared() else { return };
    let mut parser = Parser::new();
    let (mut checked, mut wrong) = (0, Vec::new());
    for v in jsonl(&d.join("aws_log_examples/ssh_auth/fail2ban_sshd_labelled.jsonl")) {
        let line = v["line"].as_str().unwrap();
        let parsed = parser
            .parse(&rec("/var/log/secure", line))
            .unwrap()
            .unwrap();
        let expect = &v["fail2ban_expect"];
        if expect["match"] != Value::Bool(true) {
            continue;
        }
        let host = match parsed.fields {
            Fields::Ssh { remote_host, .. } => remote_host,
            other => panic!("not an sshd record: {other:?} for {line}"),
        };
        checked += 1;
        if host.as_deref() != expect["host"].as_str() {
            wrong.push(format!("{line}\n   got {host:?}, want {}", expect["host"]));
        }
    }
    eprintln!("checked {checked} matched sshd lines");
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked > 60);
}
