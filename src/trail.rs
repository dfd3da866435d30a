//! Unsupervised, streaming anomaly scoring of CloudTrail events.
//!
//! Events must be fed in `eventTime` order. Each event is scored against the
//! state built from the events before it and only then folded into that state,
//! so a score never depends on the future. Every signal is a value in 0..1 with
//! a fixed weight; they are combined as a noisy-OR so that one strong signal is
//! enough to raise an alert while several weak ones add up without exceeding 1.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// Fixed weights. A weight is the score an event gets when only that signal
/// fires at full strength, which keeps the blend readable for an analyst.
mod weight {
    pub const NEW_PRINCIPAL: f64 = 0.35;
    pub const YOUNG_PRINCIPAL: f64 = 0.5;
    pub const API_NOVELTY: f64 = 0.55;
    pub const SOURCE_NOVELTY: f64 = 0.25;
    pub const IP_NOVELTY: f64 = 0.3;
    pub const REGION_NOVELTY: f64 = 0.3;
    pub const GLOBAL_API_RARITY: f64 = 0.2;
    pub const AUTH_ERROR: f64 = 0.6;
    pub const OTHER_ERROR: f64 = 0.05;
    pub const AUTH_ERROR_BURST: f64 = 0.5;
    pub const WRITE: f64 = 0.05;
    pub const SENSITIVE: f64 = 0.35;
    pub const LOG_TAMPER: f64 = 0.3;
    pub const UA_NOVELTY: f64 = 0.35;
    pub const UA_FAMILY_NOVELTY: f64 = 0.4;
    pub const UA_RARITY: f64 = 0.3;
    pub const UA_UNKNOWN: f64 = 0.5;
}

/// Calls that AWS services make on a principal's behalf are rarely the
/// attacker's own hand, so their whole score is scaled down.
const SERVICE_MEDIATED_FACTOR: f64 = 0.3;
/// Number of prior events after which a principal's history is half trusted;
/// novelty against a near-empty history is mostly noise.
const HISTORY_HALF_CONFIDENCE: f64 = 20.0;
/// Same idea for account-wide counters.
const GLOBAL_HALF_CONFIDENCE: f64 = 50.0;
/// Events after which a principal stops counting as "young" at half strength.
const YOUTH_SCALE: f64 = 10.0;
/// Infrastructure-as-code runs produce storms of first-time calls; inside such
/// a storm one more first-time call says little, while an isolated one stands out.
const STORM_WINDOW_SECS: i64 = 120;
const STORM_SCALE: f64 = 5.0;
/// Failed authorisations in quick succession are typical of permission probing.
const AUTH_BURST_WINDOW_SECS: i64 = 300;
const AUTH_BURST_SATURATION: f64 = 5.0;
/// How many contributions `score_explained` reports.
const TOP_SIGNALS: usize = 5;

#[derive(Default)]
struct PrincipalState {
    events: u64,
    api: HashMap<String, u64>,
    source: HashMap<String, u64>,
    ip: HashMap<String, u64>,
    region: HashMap<String, u64>,
    ua: HashMap<String, u64>,
    ua_family: HashMap<String, u64>,
    novel_api_times: VecDeque<i64>,
    auth_error_times: VecDeque<i64>,
}

/// Streaming CloudTrail anomaly scorer with one fixed configuration.
pub struct Scorer {
    use_user_agent: bool,
    events: u64,
    last_time: i64,
    principals: HashMap<String, PrincipalState>,
    global_api: HashMap<String, u64>,
    global_ua: HashMap<String, u64>,
}

impl Default for Scorer {
    fn default() -> Self {
        Self::new()
    }
}

impl Scorer {
    pub fn new() -> Self {
        Scorer {
            use_user_agent: true,
            events: 0,
            last_time: 0,
            principals: HashMap::new(),
            global_api: HashMap::new(),
            global_ua: HashMap::new(),
        }
    }

    /// The user agent is attacker-controlled and trivially spoofed, so this
    /// mode shows what the detector achieves from behaviour alone.
    pub fn without_user_agent() -> Self {
        Scorer {
            use_user_agent: false,
            ..Self::new()
        }
    }

    pub fn score(&mut self, event: &Value) -> f64 {
        self.score_explained(event).0
    }

    /// Returns the score and the strongest contributing signals (name, weighted
    /// strength), strongest first.
    pub fn score_explained(&mut self, event: &Value) -> (f64, Vec<(&'static str, f64)>) {
        let f = Fields::from_event(event);
        let ts = f.time.unwrap_or(self.last_time);
        self.last_time = self.last_time.max(ts);

        let api_key = format!("{}:{}", f.source, f.name);
        let ua_family = user_agent_family(f.user_agent);
        let global_conf = confidence(self.events, GLOBAL_HALF_CONFIDENCE);
        let global_api_count = count(&self.global_api, &api_key);
        let global_ua_count = count(&self.global_ua, f.user_agent);

        let st = self.principals.entry(f.principal.clone()).or_default();
        prune(&mut st.novel_api_times, ts, STORM_WINDOW_SECS);
        prune(&mut st.auth_error_times, ts, AUTH_BURST_WINDOW_SECS);

        let conf = confidence(st.events, HISTORY_HALF_CONFIDENCE);
        let storm = 1.0 / (1.0 + st.novel_api_times.len() as f64 / STORM_SCALE);
        let api_count = count(&st.api, &api_key);
        let auth_error = f.error.is_some_and(is_auth_error);

        let mut sig: Vec<(&'static str, f64, f64)> = vec![
            (
                "new_principal",
                weight::NEW_PRINCIPAL,
                if st.events == 0 { 1.0 } else { 0.0 },
            ),
            (
                "young_principal",
                weight::YOUNG_PRINCIPAL,
                1.0 / (1.0 + st.events as f64 / YOUTH_SCALE),
            ),
            (
                "api_novelty",
                weight::API_NOVELTY,
                conf * novelty(api_count) * storm,
            ),
            (
                "source_novelty",
                weight::SOURCE_NOVELTY,
                conf * novelty(count(&st.source, f.source)),
            ),
            (
                "region_novelty",
                weight::REGION_NOVELTY,
                conf * novelty(count(&st.region, f.region)),
            ),
            (
                "global_api_rarity",
                weight::GLOBAL_API_RARITY,
                global_conf * novelty(global_api_count),
            ),
            (
                "auth_error",
                weight::AUTH_ERROR,
                if auth_error { 1.0 } else { 0.0 },
            ),
            (
                "other_error",
                weight::OTHER_ERROR,
                if f.error.is_some() && !auth_error {
                    1.0
                } else {
                    0.0
                },
            ),
            (
                "auth_error_burst",
                weight::AUTH_ERROR_BURST,
                if auth_error {
                    (st.auth_error_times.len() as f64 / AUTH_BURST_SATURATION).min(1.0)
                } else {
                    0.0
                },
            ),
            ("write", weight::WRITE, if f.is_write() { 1.0 } else { 0.0 }),
            (
                "sensitive_api",
                weight::SENSITIVE,
                if is_sensitive(f.service(), f.name, f.read_only) {
                    1.0
                } else {
                    0.0
                },
            ),
            (
                "log_tamper",
                weight::LOG_TAMPER,
                if is_log_tamper(f.service(), f.name) {
                    1.0
                } else {
                    0.0
                },
            ),
        ];
        // A service name in sourceIPAddress says nothing about where the caller sits.
        if looks_like_ip(f.ip) {
            sig.push((
                "ip_novelty",
                weight::IP_NOVELTY,
                conf * novelty(count(&st.ip, f.ip)),
            ));
        }
        if self.use_user_agent {
            sig.push((
                "ua_novelty",
                weight::UA_NOVELTY,
                conf * novelty(count(&st.ua, f.user_agent)),
            ));
            sig.push((
                "ua_family_novelty",
                weight::UA_FAMILY_NOVELTY,
                conf * novelty(count(&st.ua_family, &ua_family)),
            ));
            // Square root: a tool's user agent stays suspicious for a while
            // after its first call, unlike a per-principal first sighting.
            sig.push((
                "ua_rarity",
                weight::UA_RARITY,
                global_conf / (1.0 + global_ua_count as f64).sqrt(),
            ));
            sig.push((
                "ua_unknown_client",
                weight::UA_UNKNOWN,
                if is_known_client(f.user_agent) {
                    0.0
                } else {
                    1.0
                },
            ));
        }

        let mut keep = 1.0;
        for (_, w, x) in &sig {
            keep *= 1.0 - w * x.clamp(0.0, 1.0);
        }
        let mut score = 1.0 - keep;
        let dampen = if f.service_mediated {
            SERVICE_MEDIATED_FACTOR
        } else {
            1.0
        };
        score *= dampen;

        let mut top: Vec<(&'static str, f64)> = sig
            .iter()
            .map(|(n, w, x)| (*n, w * x.clamp(0.0, 1.0) * dampen))
            .filter(|(_, c)| *c > 1e-3)
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        top.truncate(TOP_SIGNALS);

        // Fold the event into the state only after scoring it.
        st.events += 1;
        if api_count == 0 {
            st.novel_api_times.push_back(ts);
        }
        if auth_error {
            st.auth_error_times.push_back(ts);
        }
        bump(&mut st.api, &api_key);
        bump(&mut st.source, f.source);
        bump(&mut st.ip, f.ip);
        bump(&mut st.region, f.region);
        bump(&mut st.ua, f.user_agent);
        bump(&mut st.ua_family, &ua_family);
        bump(&mut self.global_api, &api_key);
        bump(&mut self.global_ua, f.user_agent);
        self.events += 1;

        (score.clamp(0.0, 1.0), top)
    }
}

/// The few event fields the scorer reads, with defaults for anything missing.
struct Fields<'a> {
    principal: String,
    source: &'a str,
    name: &'a str,
    region: &'a str,
    ip: &'a str,
    user_agent: &'a str,
    error: Option<&'a str>,
    read_only: Option<bool>,
    time: Option<i64>,
    service_mediated: bool,
}

impl<'a> Fields<'a> {
    fn from_event(e: &'a Value) -> Self {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        let ui = e.get("userIdentity");
        let ui_s = |k: &str| ui.and_then(|u| u.get(k)).and_then(Value::as_str);
        let ip = s("sourceIPAddress");
        let error = e
            .get("errorCode")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty());
        let read_only = match e.get("readOnly") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(v)) => v.parse().ok(),
            _ => None,
        };
        let service_mediated = (!ip.is_empty() && !looks_like_ip(ip))
            || s("eventType") == "AwsServiceEvent"
            || ui_s("invokedBy").is_some();
        Fields {
            principal: principal_key(e),
            source: s("eventSource"),
            name: s("eventName"),
            region: s("awsRegion"),
            ip,
            user_agent: s("userAgent"),
            error,
            read_only,
            time: parse_time(s("eventTime")),
            service_mediated,
        }
    }

    fn service(&self) -> &str {
        self.source.split('.').next().unwrap_or("")
    }

    fn is_write(&self) -> bool {
        match self.read_only {
            Some(ro) => !ro,
            None => is_mutating_verb(self.name),
        }
    }
}

/// Role sessions get fresh names per session, so they are keyed by the role
/// that issued them; otherwise every session would look brand new.
fn principal_key(e: &Value) -> String {
    let Some(ui) = e.get("userIdentity") else {
        return "unknown".to_string();
    };
    let issuer = ui
        .get("sessionContext")
        .and_then(|c| c.get("sessionIssuer"))
        .and_then(|i| i.get("arn"))
        .and_then(Value::as_str);
    issuer
        .or_else(|| ui.get("arn").and_then(Value::as_str))
        .or_else(|| ui.get("invokedBy").and_then(Value::as_str))
        .or_else(|| ui.get("type").and_then(Value::as_str))
        .unwrap_or("unknown")
        .to_string()
}

fn count(m: &HashMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

fn bump(m: &mut HashMap<String, u64>, k: &str) {
    *m.entry(k.to_string()).or_insert(0) += 1;
}

fn prune(q: &mut VecDeque<i64>, now: i64, window: i64) {
    while q.front().is_some_and(|&t| now - t > window) {
        q.pop_front();
    }
}

fn confidence(n: u64, half: f64) -> f64 {
    n as f64 / (n as f64 + half)
}

fn novelty(seen: u64) -> f64 {
    1.0 / (1.0 + seen as f64)
}

fn looks_like_ip(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() || c == '.' || c == ':')
        && (s.contains('.') || s.contains(':'))
}

fn is_auth_error(code: &str) -> bool {
    const MARKERS: [&str; 8] = [
        "accessdenied",
        "unauthorized",
        "notauthorized",
        "forbidden",
        "invalidclienttokenid",
        "signaturedoesnotmatch",
        "authfailure",
        "expiredtoken",
    ];
    let c = code.to_ascii_lowercase();
    MARKERS.iter().any(|m| c.contains(m))
}

const MUTATING_VERBS: [&str; 38] = [
    "Create",
    "Delete",
    "Put",
    "Attach",
    "Detach",
    "Update",
    "Modify",
    "Stop",
    "Start",
    "Run",
    "Terminate",
    "Authorize",
    "Revoke",
    "Add",
    "Remove",
    "Set",
    "Disable",
    "Enable",
    "Deregister",
    "Register",
    "Associate",
    "Disassociate",
    "Replace",
    "Reset",
    "Restore",
    "Send",
    "Leave",
    "Invoke",
    "Import",
    "Export",
    "Copy",
    "Share",
    "Change",
    "Upload",
    "Rotate",
    "Cancel",
    "Schedule",
    "Reboot",
];

fn is_mutating_verb(name: &str) -> bool {
    MUTATING_VERBS.iter().any(|v| name.starts_with(v))
}

/// A mild prior for calls that touch credentials, secrets, exposure settings
/// or identity; these are where most cloud attacks end up, whatever the tool.
fn is_sensitive(service: &str, name: &str, read_only: Option<bool>) -> bool {
    const SENSITIVE_SERVICES: [&str; 6] = [
        "iam",
        "kms",
        "secretsmanager",
        "sts",
        "organizations",
        "cloudtrail",
    ];
    let credential_read = name.starts_with("Get")
        && ["Secret", "Password", "Credential", "Token"]
            .iter()
            .any(|w| name.contains(w));
    let parameter_read = name == "GetParameters" || name == "GetParameter";
    let exposure = (name.starts_with("Modify") && name.ends_with("Attribute"))
        || name.starts_with("Share")
        || (name.starts_with("Authorize") && name.ends_with("Ingress"));
    let identity_pivot = name.starts_with("AssumeRole") || name == "SendCommand";
    let org_exit = name.starts_with("Leave");
    let sensitive_write = SENSITIVE_SERVICES.contains(&service) && read_only == Some(false);
    credential_read || parameter_read || exposure || identity_pivot || org_exit || sensitive_write
}

/// Defence evasion: switching off or reshaping audit and detection pipelines.
fn is_log_tamper(service: &str, name: &str) -> bool {
    const LOG_SERVICES: [&str; 5] = ["cloudtrail", "logs", "config", "guardduty", "securityhub"];
    const TAMPER_VERBS: [&str; 6] = ["Stop", "Delete", "Disable", "Update", "Put", "Remove"];
    const LOG_OBJECTS: [&str; 6] = [
        "FlowLogs",
        "Logging",
        "Trail",
        "Lifecycle",
        "Detector",
        "Recorder",
    ];
    let verb = TAMPER_VERBS.iter().any(|v| name.starts_with(v));
    let destructive = ["Stop", "Delete", "Disable"]
        .iter()
        .any(|v| name.starts_with(v));
    (LOG_SERVICES.contains(&service) && verb)
        || (destructive && LOG_OBJECTS.iter().any(|o| name.contains(o)))
}

/// Client software that is routine in AWS accounts. Anything else is an
/// unfamiliar tool, which is worth a look regardless of what it calls.
fn is_known_client(ua: &str) -> bool {
    const KNOWN: [&str; 22] = [
        "aws-cli",
        "aws-sdk",
        "boto",
        "apn/",
        "hashicorp",
        "terraform",
        "aws-internal",
        "aws internal",
        "console",
        "signin",
        "mozilla",
        "aws-go",
        "go-http",
        "cloudformation",
        "cdk",
        "awspowershell",
        "elasticmapreduce",
        "coral",
        "jersey",
        "apache-httpclient",
        "okhttp",
        "python-requests",
    ];
    let u = ua.trim_start_matches(['[', ' ']).to_ascii_lowercase();
    if u.is_empty() {
        return true;
    }
    let first = u.split([' ', '/', ',']).next().unwrap_or("");
    if first.ends_with(".amazonaws.com") {
        return true;
    }
    KNOWN.iter().any(|k| u.starts_with(k))
}

/// The product token of a user agent with versions and ids stripped, so an
/// SDK upgrade is not a new family but a different tool is.
fn user_agent_family(ua: &str) -> String {
    let u = ua.trim_start_matches(['[', ' ']).to_ascii_lowercase();
    let first = u.split([' ', '/', ',', ']']).next().unwrap_or("");
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let has_digit = run.chars().any(|c| c.is_ascii_digit());
        let all_digits = run.chars().all(|c| c.is_ascii_digit());
        if has_digit && (all_digits || run.len() >= 6) {
            out.push('#');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in first.chars() {
        if c.is_ascii_hexdigit() || c == '-' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Seconds since the epoch for `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn parse_time(s: &str) -> Option<i64> {
    crate::timefmt::parse_iso(s).map(|ms| ms.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(t: &str, user: &str, name: &str, ua: &str) -> Value {
        json!({
            "eventTime": t,
            "eventSource": "ec2.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7",
            "userAgent": ua,
            "readOnly": true,
            "eventType": "AwsApiCall",
            "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::111111111111:user/{user}")}
        })
    }

    fn warm(s: &mut Scorer, n: usize) {
        for i in 0..n {
            let t = format!("2024-01-01T00:{:02}:{:02}Z", i / 60, i % 60);
            s.score(&ev(&t, "alice", "DescribeInstances", "aws-cli/2.0"));
        }
    }

    #[test]
    fn parses_time() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2023-07-10T11:42:18Z"), Some(1_688_989_338));
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn repeated_call_fades() {
        let mut s = Scorer::new();
        warm(&mut s, 200);
        let e = ev(
            "2024-01-01T01:00:00Z",
            "alice",
            "DescribeInstances",
            "aws-cli/2.0",
        );
        assert!(s.score(&e) < 0.1);
    }

    #[test]
    fn first_time_api_stands_out() {
        let mut s = Scorer::new();
        warm(&mut s, 200);
        let novel = ev(
            "2024-01-01T01:00:00Z",
            "alice",
            "DescribeSnapshots",
            "aws-cli/2.0",
        );
        let (score, top) = s.score_explained(&novel);
        assert!(score > 0.4, "{score}");
        assert_eq!(top.first().map(|t| t.0), Some("api_novelty"));
    }

    #[test]
    fn novelty_is_discounted_inside_a_storm() {
        let mut s = Scorer::new();
        warm(&mut s, 200);
        for i in 0..20 {
            s.score(&ev(
                &format!("2024-01-01T01:00:{i:02}Z"),
                "alice",
                &format!("CreateThing{i}"),
                "aws-cli/2.0",
            ));
        }
        let mut fresh = Scorer::new();
        warm(&mut fresh, 200);
        let e = ev(
            "2024-01-01T01:00:30Z",
            "alice",
            "DescribeSnapshots",
            "aws-cli/2.0",
        );
        assert!(s.score(&e) < fresh.score(&e));
    }

    #[test]
    fn auth_errors_and_bursts() {
        assert!(is_auth_error("Client.UnauthorizedOperation"));
        assert!(is_auth_error("AccessDenied"));
        assert!(!is_auth_error("ThrottlingException"));
        let mut s = Scorer::new();
        warm(&mut s, 200);
        let mut last = 0.0;
        for i in 0..6 {
            let mut e = ev(
                &format!("2024-01-01T01:00:{i:02}Z"),
                "alice",
                "DescribeInstances",
                "aws-cli/2.0",
            );
            e["errorCode"] = json!("AccessDenied");
            last = s.score(&e);
        }
        assert!(last > 0.7, "{last}");
    }

    #[test]
    fn new_principal_is_suspicious() {
        let mut s = Scorer::new();
        warm(&mut s, 200);
        let e = ev(
            "2024-01-01T01:00:00Z",
            "mallory",
            "DescribeInstances",
            "aws-cli/2.0",
        );
        assert!(s.score(&e) > 0.5);
    }

    #[test]
    fn unknown_tool_only_counts_with_user_agent() {
        let e = ev(
            "2024-01-01T01:00:00Z",
            "alice",
            "DescribeInstances",
            "weird-tool_1234",
        );
        let mut with = Scorer::new();
        warm(&mut with, 200);
        let mut without = Scorer::without_user_agent();
        warm(&mut without, 200);
        let (a, top) = with.score_explained(&e);
        let (b, top_b) = without.score_explained(&e);
        assert!(a > 0.5 && b < 0.1, "{a} {b}");
        assert!(top.iter().any(|t| t.0.starts_with("ua_")));
        assert!(top_b.iter().all(|t| !t.0.starts_with("ua_")));
    }

    #[test]
    fn service_calls_are_dampened() {
        let mut s = Scorer::new();
        let mut e = ev(
            "2024-01-01T01:00:00Z",
            "svc",
            "Decrypt",
            "kms.amazonaws.com",
        );
        e["sourceIPAddress"] = json!("secretsmanager.amazonaws.com");
        assert!(s.score(&e) < 0.35);
    }

    #[test]
    fn category_helpers() {
        assert!(is_sensitive("secretsmanager", "GetSecretValue", Some(true)));
        assert!(is_sensitive("ec2", "ModifySnapshotAttribute", Some(false)));
        assert!(!is_sensitive("ec2", "DescribeInstances", Some(true)));
        assert!(is_log_tamper("cloudtrail", "StopLogging"));
        assert!(is_log_tamper("ec2", "DeleteFlowLogs"));
        assert!(!is_log_tamper("ec2", "DeleteVpc"));
        assert!(is_mutating_verb("AttachRolePolicy"));
        assert!(!is_mutating_verb("ListRoles"));
        assert_eq!(user_agent_family("aws-cli/2.13.0 Python/3.11"), "aws-cli");
        assert_eq!(
            user_agent_family("tool_6a7ec681-49a5-4b1c-9d2e-aaaaaaaaaaaa"),
            user_agent_family("tool_ad7e993a-e130-4b1c-9d2e-bbbbbbbbbbbb")
        );
        assert!(looks_like_ip("10.0.0.1") && looks_like_ip("2001:db8::1"));
        assert!(!looks_like_ip("AWS Internal") && !looks_like_ip("ec2.amazonaws.com"));
    }

    #[test]
    fn malformed_input_does_not_panic() {
        let mut s = Scorer::new();
        for v in [
            json!(null),
            json!({}),
            json!({"userIdentity": 5, "eventTime": 7}),
        ] {
            let x = s.score(&v);
            assert!((0.0..=1.0).contains(&x));
        }
    }
}
