//! CloudTrail as a source through the real SDK: a test HTTP client answers DescribeTrails and
//! LookupEvents (which moto does not emulate fully) so the reader's paging, limits and
//! de-duplication run as they would against AWS.

mod common;

use aws_sdk_cloudtrail::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use stormwatch::engine::{Engine, EngineOptions};
use stormwatch::source::SourceMsg;
use stormwatch::tail::{RateLimiter, snapshot};
use stormwatch::trail_history::{GROUP, History, HistoryRequest, Principal, trail_log_groups};

const KEY: &str = "AKIAW1N3HNITH53F5YPY";

fn trail_event(i: usize, now_s: f64) -> Value {
    let t = now_s - 600.0 + i as f64;
    let detail = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice",
                         "accountId": "123456789012", "accessKeyId": KEY, "userName": "alice"},
        "eventTime": stormwatch::timefmt::iso((t * 1000.0) as i64),
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "eventID": format!("evt-{i:04}"),
        "readOnly": true,
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012"
    });
    json!({"EventId": format!("evt-{i:04}"), "EventName": "ListBuckets", "EventTime": t,
           "Username": "alice", "CloudTrailEvent": detail.to_string()})
}

/// What the fake service was asked, and which LookupEvents calls (counted from 1) fail.
#[derive(Default)]
struct Calls {
    lookups: Vec<Value>,
    failing_lookups: Vec<usize>,
}

fn client(calls: Arc<Mutex<Calls>>) -> aws_sdk_cloudtrail::Client {
    let now_s = stormwatch::ui::now_ms() as f64 / 1000.0;
    let http = aws_smithy_http_client::test_util::infallible_client_fn(move |req| {
        let (target, body) = common::aws_json_request(&req);
        let doc = if target.ends_with("DescribeTrails") {
            json!({"trailList": [
                {"Name": "org", "CloudWatchLogsLogGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:aws-cloudtrail-logs-org:*"},
                {"Name": "s3-only"}
            ]})
        } else {
            assert!(target.ends_with("LookupEvents"), "unexpected call {target}");
            let mut calls = calls.lock().unwrap();
            calls.lookups.push(body.clone());
            if calls.failing_lookups.contains(&calls.lookups.len()) {
                return common::aws_json_error(503, "ServiceUnavailableException", "try again");
            }
            // 120 events, 50 per page.
            let from: usize = body["NextToken"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let events: Vec<Value> = (from..(from + 50).min(120))
                .map(|i| trail_event(i, now_s))
                .collect();
            let mut doc = json!({"Events": events});
            if from + 50 < 120 {
                doc["NextToken"] = json!((from + 50).to_string());
            }
            doc
        };
        http::Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.1")
            .body(SdkBody::from(doc.to_string()))
            .unwrap()
    });
    let conf = aws_sdk_cloudtrail::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(http)
        // A failing call fails once, not after the SDK's attempts.
        .retry_config(aws_sdk_cloudtrail::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_cloudtrail::Client::from_conf(conf)
}

/// A running LookupEvents reader (history requests only, no polling) and its ends.
struct Reader {
    task: tokio::task::JoinHandle<()>,
    requests: tokio::sync::mpsc::Sender<HistoryRequest>,
    batches: tokio::sync::mpsc::Receiver<SourceMsg>,
    counters: stormwatch::tail::Counters,
}

fn start_history(calls: Arc<Mutex<Calls>>, calls_per_second: f64) -> Reader {
    let (tx, batches) = tokio::sync::mpsc::channel::<SourceMsg>(8);
    let counters = stormwatch::tail::Counters::default();
    let history = History {
        client: client(calls),
        limiter: RateLimiter::new(calls_per_second),
        counters: counters.clone(),
        tx,
        opts: Default::default(),
    };
    let (requests, req_rx) = tokio::sync::mpsc::channel(4);
    Reader {
        task: tokio::spawn(history.run(req_rx, None)),
        requests,
        batches,
        counters,
    }
}

/// The last hour of the test access key's history.
fn key_request() -> HistoryRequest {
    let now = stormwatch::ui::now_ms();
    HistoryRequest {
        principals: vec![Principal::AccessKey(KEY.into())],
        from_ms: now - 3_600_000,
        to_ms: now,
    }
}

#[tokio::test]
async fn trails_that_deliver_to_cloudwatch_logs_are_found() {
    let c = client(Default::default());
    assert_eq!(
        trail_log_groups(&c).await.unwrap(),
        vec!["aws-cloudtrail-logs-org".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_history_is_read_page_by_page_once_and_parsed_as_cloudtrail() {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let Reader {
        task,
        requests: req_tx,
        batches: mut rx,
        counters,
    } = start_history(calls.clone(), 2.0);
    let req = key_request();
    // The same request twice: the second finds only what was already delivered.
    req_tx.send(req.clone()).await.unwrap();
    req_tx.send(req).await.unwrap();
    let mut engine = Engine::new(EngineOptions::default());
    let mut got = 0;
    while got < 120 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
            .await
            .expect("history within 30 s")
            .expect("reader running");
        if let SourceMsg::Batch(b) = msg {
            for r in b {
                assert_eq!(&*r.group, GROUP);
                engine.ingest(r);
                got += 1;
            }
        }
    }
    // Wait for the second request's six calls (2 per second), then check nothing more came.
    let started = std::time::Instant::now();
    while calls.lock().unwrap().lookups.len() < 6 && started.elapsed().as_secs() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    while let Ok(Some(msg)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), rx.recv()).await
    {
        if let SourceMsg::Batch(b) = msg {
            got += b.len();
        }
    }
    assert_eq!(got, 120, "each event once");
    assert_eq!(
        engine.rejected(),
        0,
        "LookupEvents records parse as CloudTrail"
    );
    let lookups = calls.lock().unwrap().lookups.clone();
    assert_eq!(lookups.len(), 6, "3 pages per request");
    for l in &lookups {
        assert_eq!(l["LookupAttributes"][0]["AttributeKey"], "AccessKeyId");
        assert_eq!(l["LookupAttributes"][0]["AttributeValue"], KEY);
        assert!(
            l["StartTime"].is_number() && l["EndTime"].is_number(),
            "{l}"
        );
    }
    let c = snapshot(&counters).remove(0);
    assert_eq!(
        (c.events, c.duplicates_dropped, c.calls),
        (120, 120, 6),
        "{c:?}"
    );
    assert_eq!(c.mode, "lookup");
    task.abort();
}

/// A read cut short by a failure loses nothing: what it found is not yet marked delivered, and
/// the incident's request is read again after a backoff, so every event arrives, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_read_cut_short_is_read_again_and_loses_nothing() {
    let calls = Arc::new(Mutex::new(Calls {
        failing_lookups: vec![2],
        ..Calls::default()
    }));
    let Reader {
        task,
        requests,
        mut batches,
        counters,
    } = start_history(calls.clone(), 20.0);
    requests.send(key_request()).await.unwrap();
    let mut ids = std::collections::HashSet::new();
    let mut got = 0;
    while got < 120 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(30), batches.recv())
            .await
            .expect("history within 30 s")
            .expect("reader running");
        if let SourceMsg::Batch(b) = msg {
            for r in b {
                let doc: Value = serde_json::from_str(r.text.as_str()).unwrap();
                ids.insert(doc["eventID"].as_str().unwrap().to_string());
                got += 1;
            }
        }
    }
    assert_eq!((got, ids.len()), (120, 120), "each event once");
    // Page 1, page 2 failed; then pages 1, 2 and 3 again.
    assert_eq!(calls.lock().unwrap().lookups.len(), 5);
    let c = snapshot(&counters).remove(0);
    assert_eq!((c.events, c.errors, c.calls), (120, 1, 5), "{c:?}");
    task.abort();
}
