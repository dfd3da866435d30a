//! Live Tail through the real SDK: a test HTTP client answers StartLiveTail with event-stream
//! frames built here and FilterLogEvents with JSON pages, so the same consumer code that runs
//! against AWS is exercised end to end (deserialisation included). moto has no Live Tail.

mod common;

use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use stormwatch::live::{LiveEnd, LiveGroup, LiveUsage, live_session};
use stormwatch::source::SourceMsg;
use stormwatch::tail::{Feed, RangeWalk, RateLimiter, snapshot};

const GROUP: &str = "/demo/app";
const ARN: &str = "arn:aws:logs:us-east-1:123456789012:log-group:/demo/app";

#[derive(Clone, Debug)]
struct Ev {
    id: String,
    stream: String,
    ts: i64,
    message: String,
}

impl Ev {
    fn live(&self) -> Value {
        json!({"logStreamName": self.stream, "logGroupIdentifier": ARN, "message": self.message,
               "timestamp": self.ts, "ingestionTime": self.ts + 500})
    }
}

/// What the fake service knows: every event, how many are ingested so far, and what each
/// StartLiveTail call pushes; which FilterLogEvents calls (counted from 1) fail, and the token
/// each call asked for.
#[derive(Default)]
struct Service {
    events: Vec<Ev>,
    ingested: usize,
    sessions: Vec<(usize, Vec<Vec<u8>>)>,
    starts: usize,
    filter_calls: usize,
    failing_filter_calls: Vec<usize>,
    tokens_asked: Vec<Option<String>>,
}

fn frame(headers: &[(&str, &str)], payload: Value) -> Vec<u8> {
    let mut m = Message::new(payload.to_string().into_bytes());
    for (k, v) in headers {
        m = m.add_header(Header::new(
            k.to_string(),
            HeaderValue::String(v.to_string().into()),
        ));
    }
    let mut out = Vec::new();
    write_message_to(&m, &mut out).unwrap();
    out
}

fn update(events: &[Ev], sampled: bool) -> Vec<u8> {
    frame(
        &[
            (":message-type", "event"),
            (":event-type", "sessionUpdate"),
            (":content-type", "application/json"),
        ],
        json!({"sessionMetadata": {"sampled": sampled},
               "sessionResults": events.iter().map(Ev::live).collect::<Vec<_>>()}),
    )
}

fn start_frame() -> Vec<u8> {
    frame(
        &[
            (":message-type", "event"),
            (":event-type", "sessionStart"),
            (":content-type", "application/json"),
        ],
        json!({"sessionId": "s", "logGroupIdentifiers": [ARN]}),
    )
}

fn streaming_exception() -> Vec<u8> {
    frame(
        &[
            (":message-type", "exception"),
            (":exception-type", "SessionStreamingException"),
            (":content-type", "application/json"),
        ],
        json!({"message": "the stream broke"}),
    )
}

fn answer(svc: &Mutex<Service>, req: http::Request<SdkBody>) -> http::Response<SdkBody> {
    let (target, body) = common::aws_json_request(&req);
    let mut svc = svc.lock().unwrap();
    if target.ends_with("StartLiveTail") {
        let i = svc.starts;
        svc.starts += 1;
        if svc.sessions.is_empty() {
            return common::aws_json_error(400, "AccessDeniedException", "not allowed");
        }
        // After the script, quiet sessions that end at once (the client reconnects).
        let (ingested, frames) = svc
            .sessions
            .get(i)
            .cloned()
            .unwrap_or((svc.ingested, vec![start_frame()]));
        svc.ingested = svc.ingested.max(ingested);
        return http::Response::builder()
            .status(200)
            .header("content-type", "application/vnd.amazon.eventstream")
            .body(SdkBody::from(frames.concat()))
            .unwrap();
    }
    assert!(
        target.ends_with("FilterLogEvents"),
        "unexpected call {target}"
    );
    assert_eq!(body["logGroupName"], GROUP);
    svc.filter_calls += 1;
    let token = body["nextToken"].as_str().map(str::to_string);
    svc.tokens_asked.push(token);
    if svc.failing_filter_calls.contains(&svc.filter_calls) {
        return common::aws_json_error(503, "ServiceUnavailableException", "try again");
    }
    let start = body["startTime"].as_i64().unwrap_or(0);
    let from: usize = body["nextToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    // Pages of 100 in the service's order, so the walk needs tokens.
    let matching: Vec<&Ev> = svc.events[..svc.ingested]
        .iter()
        .filter(|e| e.ts >= start)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(from)
        .take(100)
        .map(|e| {
            json!({"logStreamName": e.stream, "timestamp": e.ts, "message": e.message,
                   "ingestionTime": e.ts + 500, "eventId": e.id})
        })
        .collect();
    let mut doc = json!({"events": page});
    if from + 100 < matching.len() {
        doc["nextToken"] = json!((from + 100).to_string());
    }
    http::Response::builder()
        .status(200)
        .header("content-type", "application/x-amz-json-1.1")
        .body(SdkBody::from(doc.to_string()))
        .unwrap()
}

fn client(svc: Arc<Mutex<Service>>) -> aws_sdk_cloudwatchlogs::Client {
    client_with(svc, |b| b)
}

fn client_with(
    svc: Arc<Mutex<Service>>,
    adjust: impl FnOnce(
        aws_sdk_cloudwatchlogs::config::Builder,
    ) -> aws_sdk_cloudwatchlogs::config::Builder,
) -> aws_sdk_cloudwatchlogs::Client {
    let http =
        aws_smithy_http_client::test_util::infallible_client_fn(move |req| answer(&svc, req));
    let conf = adjust(
        aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(http),
    )
    .build();
    aws_sdk_cloudwatchlogs::Client::from_conf(conf)
}

fn events(now: i64) -> Vec<Ev> {
    (0..1500)
        .map(|i| {
            // Events 700 and 701 are identical lines: two events, not one.
            let (ts, message) = if i == 700 || i == 701 {
                (now - 240_000 + 700 * 100, "GET /health 200".to_string())
            } else {
                (
                    now - 240_000 + i as i64 * 100,
                    format!("request {i} served"),
                )
            };
            Ev {
                id: format!("id{i:05}"),
                stream: format!("i-{}", if i == 701 { 700 % 3 } else { i % 3 }),
                ts,
                message,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_with_sampling_and_a_broken_stream_delivers_every_event_once() {
    let now = stormwatch::ui::now_ms();
    let all = events(now);
    // Session 1: history 0..300 is ingested before it starts; it pushes 300..400 in full, then
    // one sampled update (10 of 400..1400), then the stream breaks. By the reconnect everything
    // is ingested; session 2 pushes 1400..1500, which the reconnect's backfill already found.
    let s1 = vec![
        start_frame(),
        update(&all[300..400], false),
        update(&all[400..410], true),
        streaming_exception(),
    ];
    let s2 = vec![start_frame(), update(&all[1400..1500], false)];
    let svc = Arc::new(Mutex::new(Service {
        events: all.clone(),
        ingested: 300,
        sessions: vec![(300, s1), (1500, s2)],
        ..Service::default()
    }));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<SourceMsg>(8);
    let feed = Feed {
        client: client(svc.clone()),
        limiter: RateLimiter::new(50.0),
        counters: Default::default(),
        tx,
        opts: Default::default(),
    };
    let counters = feed.counters.clone();
    let usage = Arc::new(LiveUsage::default());
    let session = tokio::spawn(live_session(
        feed,
        vec![LiveGroup {
            name: GROUP.into(),
            arn: ARN.into(),
        }],
        now - 600_000,
        true,
        usage.clone(),
    ));
    let mut got: HashMap<(String, i64, String), u32> = HashMap::new();
    let mut delivered = 0;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut notices = Vec::new();
    while delivered < all.len() {
        let msg = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("every event within a minute")
            .expect("the session keeps running");
        match msg {
            SourceMsg::Batch(b) => {
                for r in b {
                    assert_eq!(&*r.group, GROUP);
                    *got.entry((r.stream.to_string(), r.ts_ms, r.text.as_str().to_string()))
                        .or_default() += 1;
                    delivered += 1;
                }
            }
            SourceMsg::Notice(n) => notices.push(n),
            _ => {}
        }
    }
    // Give a stray duplicate the chance to show up.
    while let Ok(Some(msg)) =
        tokio::time::timeout(std::time::Duration::from_millis(1500), rx.recv()).await
    {
        if let SourceMsg::Batch(b) = msg {
            delivered += b.len();
        }
    }
    drop(rx);
    let mut want: HashMap<(String, i64, String), u32> = HashMap::new();
    for e in &all {
        *want
            .entry((e.stream.clone(), e.ts, e.message.clone()))
            .or_default() += 1;
    }
    assert_eq!(delivered, all.len(), "exactly once");
    assert_eq!(got, want);
    let c = snapshot(&counters).remove(0);
    println!(
        "live tail: {} events, {} backfilled, {} sampled updates, {} duplicates dropped, {} errors, {} FilterLogEvents calls, {} min",
        c.events,
        c.backfilled,
        c.sampled_updates,
        c.duplicates_dropped,
        c.errors,
        svc.lock().unwrap().filter_calls,
        usage.minutes()
    );
    assert_eq!(c.mode, "live");
    assert_eq!(c.events, all.len() as u64);
    assert_eq!(c.sampled_updates, 1);
    // History (300), the sampled-away 990 and the reconnect gap (100) came by backfill; Live Tail
    // delivered the rest.
    assert_eq!(c.backfilled, 300 + 990 + 100, "{c:?}");
    assert!(c.duplicates_dropped > 0, "{c:?}");
    assert!(
        c.errors >= 1
            && c.last_error
                .as_deref()
                .unwrap_or("")
                .contains("Live Tail stream"),
        "{c:?}"
    );
    assert!(
        notices.iter().any(|n| n.contains("sampling")),
        "{notices:?}"
    );
    assert!(
        svc.lock().unwrap().starts >= 2,
        "reconnected after the broken stream"
    );
    assert!(
        usage.minutes() >= 2,
        "two sessions, each billed at least a minute"
    );
    session.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_live_tail_hands_the_groups_to_polling() {
    let svc = Arc::new(Mutex::new(Service::default()));
    let (tx, _rx) = tokio::sync::mpsc::channel::<SourceMsg>(8);
    let feed = Feed {
        client: client(svc),
        limiter: RateLimiter::new(50.0),
        counters: Default::default(),
        tx,
        opts: Default::default(),
    };
    let counters = feed.counters.clone();
    let end = live_session(
        feed,
        vec![LiveGroup {
            name: GROUP.into(),
            arn: ARN.into(),
        }],
        0,
        true,
        Arc::new(LiveUsage::default()),
    )
    .await;
    match end {
        LiveEnd::Unavailable(why) => assert!(why.contains("AccessDenied"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&counters)[0].errors, 1);
}

/// A walk through a group's pages that fails part-way (after the SDK's retries, here none)
/// resumes from the page that failed: the retry asks for that page's token, not the first page
/// again, and every event comes back exactly once. Before, a large group under steady throttling
/// could restart its walk forever.
#[tokio::test]
async fn a_failed_page_resumes_the_walk_from_its_own_token() {
    let now = stormwatch::ui::now_ms();
    let all = events(now);
    let svc = Arc::new(Mutex::new(Service {
        ingested: all.len(),
        events: all,
        failing_filter_calls: vec![4],
        ..Service::default()
    }));
    let (tx, _rx) = tokio::sync::mpsc::channel::<SourceMsg>(8);
    let feed = Feed {
        client: client_with(svc.clone(), |b| {
            b.retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
        }),
        limiter: RateLimiter::new(1000.0),
        counters: Default::default(),
        tx,
        opts: Default::default(),
    };
    let mut walk = RangeWalk::new(0);
    let failed = walk.finish(&feed, GROUP).await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.contains("ServiceUnavailable")),
        "{failed:?}"
    );
    let events = walk.finish(&feed, GROUP).await.unwrap();
    let ids: std::collections::HashSet<&str> = events.iter().filter_map(|e| e.event_id()).collect();
    assert_eq!((events.len(), ids.len()), (1500, 1500));
    let asked = svc.lock().unwrap().tokens_asked.clone();
    let page = |n: usize| (n > 0).then(|| (n * 100).to_string());
    // Pages 0, 1, 2, then page 3 fails and is asked for again, then 4..14.
    let expected: Vec<Option<String>> = [0, 1, 2, 3].into_iter().chain(3..15).map(page).collect();
    assert_eq!(asked, expected);
    let g = &snapshot(&feed.counters)[0];
    assert_eq!((g.calls, g.errors), (16, 1));
    assert!(
        g.owes_events(std::time::Duration::from_secs(60)),
        "answered, then a 503: waited for"
    );
}
