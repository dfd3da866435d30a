//! `eval cloudtrail` on a capture the test writes: a steady user, then someone else using the same
//! account from a new place with denied calls. Checks the JSON shape, that the intruder's events
//! rank above the routine ones, and `--emit` (also without labels).

mod common;

use serde_json::json;

fn event(
    i: usize,
    user: &str,
    ip: &str,
    region: &str,
    name: &str,
    error: Option<&str>,
) -> serde_json::Value {
    let mut e = json!({
        "eventVersion": "1.08",
        "eventID": format!("ev-{i:05}"),
        "eventTime": format!("2026-11-23T{:02}:{:02}:{:02}Z", 8 + i / 3600, (i / 60) % 60, i % 60),
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.0",
        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111122223333:user/{user}"), "accessKeyId": "AKIAEXAMPLEKEY000001"},
        "readOnly": true,
        "eventType": "AwsApiCall"
    });
    if let Some(code) = error {
        e["errorCode"] = json!(code);
    }
    e
}

#[test]
fn eval_cloudtrail_ranks_the_intruder_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("capture");
    std::fs::create_dir_all(data.join("CloudTrail")).unwrap();
    let mut records = Vec::new();
    let mut labels = String::from("eventID,label\n");
    for i in 0..400 {
        let name = ["DescribeInstances", "DescribeVolumes", "DescribeSnapshots"][i % 3];
        records.push(event(i, "alice", "203.0.113.10", "us-east-1", name, None));
        labels.push_str(&format!("ev-{i:05},background\n"));
    }
    for i in 400..420 {
        let name = [
            "ListUsers",
            "GetSecretValue",
            "ListRoles",
            "CreateAccessKey",
        ][i % 4];
        records.push(event(
            i,
            "alice",
            "198.51.100.66",
            "ap-southeast-1",
            name,
            Some("AccessDenied"),
        ));
        labels.push_str(&format!("ev-{i:05},attack_detonation\n"));
    }
    std::fs::write(
        data.join("CloudTrail/capture.json"),
        json!({"Records": records}).to_string(),
    )
    .unwrap();
    std::fs::write(data.join("labels.csv"), labels).unwrap();
    let emit = dir.path().join("scores.csv");
    let doc = common::json(&common::run(
        dir.path(),
        &[
            "eval",
            "cloudtrail",
            "--data",
            data.to_str().unwrap(),
            "--json",
            "--emit",
            emit.to_str().unwrap(),
        ],
    ));
    assert_eq!(doc["events"], 420);
    assert!(doc["auc"].as_f64().unwrap() > 0.95, "{doc}");
    assert!(doc["best_f1"].as_f64().is_some());
    let csv = std::fs::read_to_string(&emit).unwrap();
    assert_eq!(csv.lines().next(), Some("eventID,score"));
    assert_eq!(csv.lines().count(), 421);

    std::fs::remove_file(data.join("labels.csv")).unwrap();
    let doc = common::json(&common::run(
        dir.path(),
        &[
            "eval",
            "cloudtrail",
            "--data",
            data.to_str().unwrap(),
            "--json",
        ],
    ));
    assert!(doc["auc"].is_null(), "{doc}");
}
