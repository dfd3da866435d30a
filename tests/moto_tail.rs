//! `demo --to-cloudwatch` into moto_server, then `tail --headless --json` over every group: each
//! event arrives exactly once (the test prints the counts), and the demo's incidents are found;
//! again through a proxy that injects throttling, 5xx, dropped connections and 2 s delays, and
//! through one whose every page takes 2 s.
//! moto_server (PyPI `moto[server]`) is installed by scripts/test.sh.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn aws(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
}

fn run(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = aws(Command::new(common::bin()).args(args))
        .env("STORMWATCH_DATA_DIR", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("HOME", dir)
        .output()
        .unwrap();
    common::json(&out)
}

/// What the proxy does to the n-th FilterLogEvents call. Eight groups poll at once, so a burst
/// counted in calls is shared among them and the SDK's own retries usually get through; the
/// outage below is timed instead, so some calls fail even after the SDK's retries and the
/// poller's recovery is what keeps the stream exactly-once.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Pass,
    Throttle,
    Unavailable,
    Drop,
    Delay,
}

/// The FilterLogEvents call that starts the outage, and how long every call then fails: longer
/// than the SDK's three attempts with their backoff.
const OUTAGE_AT_CALL: usize = 60;
const OUTAGE: Duration = Duration::from_secs(8);

fn fault_for(n: usize) -> Fault {
    match n % 40 {
        10..=14 => Fault::Throttle,
        20..=23 => Fault::Unavailable,
        30..=32 => Fault::Drop,
        36 => Fault::Delay,
        _ => Fault::Pass,
    }
}

/// Reads one HTTP request (headers and a Content-Length body).
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

fn error_response(status: &str, kind: &str) -> Vec<u8> {
    let body = format!("{{\"__type\":\"{kind}\",\"message\":\"injected by the test proxy\"}}");
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: proxy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Relays one request to moto on its own connection.
fn relay(upstream: &str, req: &[u8], client: &mut TcpStream) {
    let text = String::from_utf8_lossy(req).to_string();
    let head_end = text.find("\r\n\r\n").map_or(req.len(), |p| p + 4);
    let mut head: Vec<&str> = text[..head_end]
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    head.push("Connection: close");
    let mut out = head.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&req[head_end..]);
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    if up.write_all(&out).is_err() {
        return;
    }
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp);
    let _ = client.write_all(&resp);
}

/// What the proxy does to FilterLogEvents calls.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    /// Throttling, 5xx, drops and delays in bursts, and an outage (see [`fault_for`]).
    Faults,
    /// Every call answers after [`Fault::Delay`]'s 2 s: a first walk through a group's pages
    /// outlasts the idle time between deliveries.
    SlowPages,
}

/// A proxy in front of moto; returns its URL and the count of faults injected so far.
fn start_fault_proxy(moto_url: &str, plan: Plan) -> (String, Arc<AtomicUsize>) {
    let upstream = moto_url.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let faults = Arc::new(AtomicUsize::new(0));
    let outage = Arc::new(std::sync::OnceLock::<std::time::Instant>::new());
    let injected = faults.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let (upstream, calls, faults, outage) = (
                upstream.clone(),
                calls.clone(),
                faults.clone(),
                outage.clone(),
            );
            std::thread::spawn(move || {
                let Some(req) = read_request(&mut client) else {
                    return;
                };
                let is_filter =
                    String::from_utf8_lossy(&req).contains("Logs_20140328.FilterLogEvents");
                let fault = if is_filter && plan == Plan::SlowPages {
                    Fault::Delay
                } else if is_filter {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    if n >= OUTAGE_AT_CALL {
                        outage.get_or_init(std::time::Instant::now);
                    }
                    if outage.get().is_some_and(|t| t.elapsed() < OUTAGE) {
                        Fault::Unavailable
                    } else {
                        fault_for(n)
                    }
                } else {
                    Fault::Pass
                };
                if fault != Fault::Pass {
                    faults.fetch_add(1, Ordering::SeqCst);
                }
                match fault {
                    Fault::Throttle => {
                        let _ = client
                            .write_all(&error_response("400 Bad Request", "ThrottlingException"));
                    }
                    Fault::Unavailable => {
                        let _ = client.write_all(&error_response(
                            "503 Service Unavailable",
                            "ServiceUnavailableException",
                        ));
                    }
                    Fault::Drop => {}
                    Fault::Delay => {
                        std::thread::sleep(Duration::from_secs(2));
                        relay(&upstream, &req, &mut client);
                    }
                    Fault::Pass => relay(&upstream, &req, &mut client),
                }
            });
        }
    });
    (url, injected)
}

fn tail_all(dir: &std::path::Path, url: &str, groups: &[String], idle: &str) -> serde_json::Value {
    let mut args: Vec<String> = [
        "tail",
        "--endpoint-url",
        url,
        "--since",
        "2d",
        "--headless",
        "--json",
        "--exit-when-idle",
        idle,
        "--tps",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for g in groups {
        args.push("--group".into());
        args.push(g.clone());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    run(dir, &argv)
}

fn put_demo(dir: &std::path::Path, url: &str, seed: &str) -> (u64, Vec<String>) {
    let put = run(
        dir,
        &[
            "demo",
            "--to-cloudwatch",
            "--endpoint-url",
            url,
            "--seed",
            seed,
            "--baseline-hours",
            "1",
            "--json",
        ],
    );
    let groups = put["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    (put["events"].as_u64().unwrap(), groups)
}

#[test]
fn faults_delay_events_but_never_lose_or_repeat_them() {
    let (_moto, moto_url) = common::start_moto();
    let (proxy_url, faults) = start_fault_proxy(&moto_url, Plan::Faults);
    let dir = tempfile::tempdir().unwrap();
    let (events, groups) = put_demo(dir.path(), &moto_url, "6");
    let report = tail_all(dir.path(), &proxy_url, &groups, "12s");
    let per_group = report["groups"].as_array().unwrap();
    let sum = |k: &str| -> u64 { per_group.iter().map(|g| g[k].as_u64().unwrap()).sum() };
    let delivered = report["events"].as_u64().unwrap();
    eprintln!(
        "with faults: put {events} events in {} groups; delivered {delivered}; missing {}; duplicates dropped {}; faults injected {}; errors counted {}",
        groups.len(),
        events.saturating_sub(delivered),
        sum("duplicates_dropped"),
        faults.load(Ordering::SeqCst),
        sum("errors")
    );
    assert_eq!(delivered, events, "{report}");
    assert_eq!(report["lines"].as_u64().unwrap(), events);
    assert!(faults.load(Ordering::SeqCst) > 0);
    assert!(sum("errors") > 0, "the counters show the faults: {report}");
}

/// `--exit-when-idle` counts from the last delivery, but a group's first walk delivers only when
/// its last page is in: with 2 s pages and a 1 s idle time, a run that did not wait for walks
/// under way would exit with most of the history owed.
#[test]
fn a_headless_tail_waits_for_first_walks_slower_than_the_idle_time() {
    let (_moto, moto_url) = common::start_moto();
    let (proxy_url, _) = start_fault_proxy(&moto_url, Plan::SlowPages);
    let dir = tempfile::tempdir().unwrap();
    let (events, groups) = put_demo(dir.path(), &moto_url, "7");
    let started = std::time::Instant::now();
    let report = tail_all(dir.path(), &proxy_url, &groups, "1s");
    eprintln!(
        "slow pages: put {events} events in {} groups; delivered {} in {:.1} s",
        groups.len(),
        report["events"],
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report["events"].as_u64().unwrap(), events, "{report}");
    assert_eq!(report["lines"].as_u64().unwrap(), events);
}

#[test]
fn every_event_put_into_moto_is_tailed_exactly_once() {
    let (_moto, url) = common::start_moto();
    let dir = tempfile::tempdir().unwrap();
    let (events, groups) = put_demo(dir.path(), &url, "5");
    assert!(
        groups.len() >= 6 && events > 50_000,
        "{events} events in {groups:?}"
    );

    let report = tail_all(dir.path(), &url, &groups, "4s");
    let per_group = report["groups"].as_array().unwrap();
    let dups: u64 = per_group
        .iter()
        .map(|g| g["duplicates_dropped"].as_u64().unwrap())
        .sum();
    let errors: u64 = per_group
        .iter()
        .map(|g| g["errors"].as_u64().unwrap())
        .sum();
    eprintln!(
        "put {events} events in {} groups; tailed {}; duplicates dropped {dups}; errors {errors}",
        groups.len(),
        report["events"]
    );
    assert_eq!(report["events"].as_u64().unwrap(), events, "{report}");
    assert_eq!(report["lines"].as_u64().unwrap(), events);
    // The documented shape: {"groups":[{"name","events","duplicates_dropped","backfilled"}],"rejected"}.
    assert!(report["rejected"].is_u64(), "{report}");
    for g in per_group {
        assert!(groups.iter().any(|n| g["name"] == n.as_str()), "{g}");
        for k in ["events", "duplicates_dropped", "backfilled"] {
            assert!(g[k].is_u64(), "{k}: {g}");
        }
    }
    assert!(
        !report["incidents"].as_array().unwrap().is_empty(),
        "the demo's incidents are found"
    );
}

/// Runs `tail` with no AWS environment at all (HOME is `dir`, nothing listens at the endpoint):
/// whether it succeeded, and its stderr.
fn tail_offline(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(common::bin())
        .arg("tail")
        .args(args)
        .args([
            "--group",
            "/demo/none",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--headless",
            "--exit-when-idle",
            "3s",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("STORMWATCH_DATA_DIR", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_credentials_the_error_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = tail_offline(dir.path(), &["--region", "us-east-1"]);
    assert!(!ok, "nothing to show must be an error: {err}");
    assert!(
        err.contains("aws configure") || err.contains("aws sso login"),
        "{err}"
    );
}

#[test]
fn tail_console_shows_the_demo_incident_from_moto() {
    let (_moto, url) = common::start_moto();
    let dir = tempfile::tempdir().unwrap();
    let (_, groups) = put_demo(dir.path(), &url, "8");
    let tmux = common::Tmux {
        socket: format!("stormwatch-tail-{}", std::process::id()),
    };
    // One group named on the command line, the others added with the picker (`+`).
    let cmd: Vec<String> = vec![
        common::bin().to_string(),
        "tail".into(),
        "--endpoint-url".into(),
        url.clone(),
        "--since".into(),
        "2d".into(),
        "--group".into(),
        groups[0].clone(),
    ];
    tmux.start(
        &[
            format!("STORMWATCH_DATA_DIR={}", dir.path().join("data").display()),
            format!("XDG_CONFIG_HOME={}", dir.path().join("config").display()),
            "AWS_ACCESS_KEY_ID=testing".into(),
            "AWS_SECRET_ACCESS_KEY=testing".into(),
            "AWS_REGION=us-east-1".into(),
            "AWS_EC2_METADATA_DISABLED=true".into(),
        ],
        &cmd,
    );
    tmux.wait_for("the named group's events", Duration::from_secs(30), |s| {
        s.contains("bf ") && !s.contains("waiting for data")
    });
    tmux.cmd(&["send-keys", "-t", "sw", "+"]);
    let listed = format!("{} group(s)", groups.len());
    tmux.wait_for("the picker's list", Duration::from_secs(20), |s| {
        s.contains("Add log groups") && s.contains(&listed)
    });
    // Select every group (the one already tailed is skipped when added).
    for _ in &groups {
        tmux.cmd(&["send-keys", "-t", "sw", "Space"]);
        tmux.cmd(&["send-keys", "-t", "sw", "Down"]);
    }
    tmux.wait_for("every group selected", Duration::from_secs(10), |s| {
        s.contains(&format!("{} selected", groups.len()))
    });
    tmux.cmd(&["send-keys", "-t", "sw", "Enter"]);
    let screen = tmux.wait_for("an incident row from moto", Duration::from_secs(60), |s| {
        s.contains("│#1 ")
    });
    assert!(screen.contains("tail · "), "{screen}");
    assert!(
        !screen.contains("Add log groups"),
        "the picker closed: {screen}"
    );
    let kinds = [
        "SSH brute force",
        "Lambda timeout cascade",
        "EC2 disk filling up",
        "Leaked access key",
    ];
    assert!(kinds.iter().any(|k| screen.contains(k)), "{screen}");
    tmux.cmd(&["send-keys", "-t", "sw", "q"]);
}

#[test]
fn an_expired_sso_session_says_to_log_in_again() {
    // An sso-session profile whose cached token expired and cannot be refreshed (no refresh
    // token): the SDK fails before any network call.
    let dir = tempfile::tempdir().unwrap();
    let aws_dir = dir.path().join(".aws");
    std::fs::create_dir_all(aws_dir.join("sso/cache")).unwrap();
    std::fs::write(
        aws_dir.join("config"),
        "[profile oncall]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = ReadOnly\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    // The cache file is named by the SHA-1 of the session name (`printf corp | sha1sum`).
    let token = r#"{"startUrl":"https://example.awsapps.com/start","region":"us-east-1","accessToken":"x","expiresAt":"2020-01-01T00:00:00Z"}"#;
    std::fs::write(
        aws_dir.join("sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json"),
        token,
    )
    .unwrap();
    let (ok, err) = tail_offline(dir.path(), &["--profile", "oncall"]);
    assert!(!ok, "nothing to show must be an error: {err}");
    assert!(err.contains("aws sso login --profile oncall"), "{err}");
}
