//! Unsupervised, streaming anomaly scoring of CloudTrail events.
//!
//! Events must be fed in `eventTime` order. Each event is scored against the
//! state built from the events before it and only then folded into that state,
//! so a score never depends on the future. Every signal is a value in 0..1 with
//! a fixed weight; they are combined as a noisy-OR so that one strong signal is
//! enough to raise an alert while several weak ones add up without exceeding 1.
//!
//! Per-principal familiarity (with an API, a request shape, a service, a region,
//! an address) is counted in *occasions*, not calls: a thousand calls inside one
//! automation run are one piece of evidence that the behaviour is normal, the
//! same call on several separate days is several. And a behaviour that was new a
//! moment ago is still new: a polling loop of a first-time call is scored as the
//! first-time call it continues, not as routine after its second iteration.

use foldhash::HashMap;
use serde_json::Value;
use std::collections::VecDeque;

/// Fixed weights. A weight is the score an event gets when only that signal
/// fires at full strength, which keeps the blend readable for an analyst.
mod weight {
    pub const NEW_PRINCIPAL: f64 = 0.35;
    pub const YOUNG_PRINCIPAL: f64 = 0.5;
    pub const API_NOVELTY: f64 = 0.55;
    pub const SHAPE_NOVELTY: f64 = 0.5;
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
/// a storm one more first-time call says little, while an isolated one stands
/// out. The window is short so that the storm means one that is still going
/// on: a first-time call a minute or two after an IaC run has finished is
/// isolated again, and is scored as such.
const STORM_WINDOW_SECS: i64 = 30;
const STORM_SCALE: f64 = 5.0;
/// Familiarity is counted in occasions: a sighting after a quiet spell of this
/// order adds (up to) one occasion, a sighting right after the previous one
/// adds almost nothing (`1 - exp(-gap / OCCASION_SECS)`) ...
const OCCASION_SECS: f64 = 1200.0;
/// ... but never less than this fraction of one, so sheer volume still builds
/// familiarity, only more slowly: this many back-to-back calls are worth one
/// occasion (so a call repeated a few hundred times in a row fades, too).
const CALLS_PER_OCCASION: f64 = 10.0;
/// A behaviour first seen this long ago (e-folding time) still carries the
/// novelty of its first sighting; polling loops and bulk reads that follow a
/// first-time call belong to the same new behaviour.
const NEW_BEHAVIOUR_SECS: f64 = 120.0;
/// Failed authorisations in quick succession are typical of permission probing.
const AUTH_BURST_WINDOW_SECS: i64 = 300;
const AUTH_BURST_SATURATION: f64 = 5.0;
/// How many contributions `score_explained` reports.
const TOP_SIGNALS: usize = 5;

/// How familiar one principal is with one value (an API, a request shape, a
/// service, a region, a source address).
#[derive(Default, Clone, Copy)]
struct Familiarity {
    calls: u64,
    /// Separate occasions on which the value was seen (fractional).
    occasions: f64,
    first: i64,
    last: i64,
    /// Novelty the first sighting was scored with, before history confidence.
    first_novelty: f64,
}

impl Familiarity {
    fn seen(&self) -> bool {
        self.calls > 0
    }

    fn novelty(&self) -> f64 {
        1.0 / (1.0 + self.occasions)
    }

    /// The novelty of the first sighting, fading with the time since.
    fn echo(&self, now: i64) -> f64 {
        if !self.seen() {
            return 0.0;
        }
        let age = (now - self.first).max(0) as f64;
        self.first_novelty * (-age / NEW_BEHAVIOUR_SECS).exp()
    }

    /// Novelty of one more sighting now, `storm` discounting the occasion-based
    /// part (a never-seen value is `storm` itself).
    fn current(&self, now: i64, storm: f64) -> f64 {
        if !self.seen() {
            storm
        } else {
            (self.novelty() * storm).max(self.echo(now))
        }
    }

    fn observe(&mut self, now: i64, novelty_now: f64) {
        if !self.seen() {
            self.occasions = 1.0;
            self.first = now;
            self.first_novelty = novelty_now;
        } else {
            let gap = (now - self.last).max(0) as f64;
            self.occasions += (1.0 - (-gap / OCCASION_SECS).exp()).max(1.0 / CALLS_PER_OCCASION);
        }
        self.calls += 1;
        self.last = now;
    }
}

#[derive(Default)]
struct PrincipalState {
    events: u64,
    api: HashMap<String, Familiarity>,
    shape: HashMap<String, Familiarity>,
    source: HashMap<String, Familiarity>,
    ip: HashMap<String, Familiarity>,
    region: HashMap<String, Familiarity>,
    ua: HashMap<String, u64>,
    ua_family: HashMap<String, u64>,
    novel_api_times: VecDeque<i64>,
    novel_shape_times: VecDeque<i64>,
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

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("events", &self.events)
            .field("principals", &self.principals.len())
            .finish()
    }
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
            principals: HashMap::default(),
            global_api: HashMap::default(),
            global_ua: HashMap::default(),
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
        let mut f = Fields::from_event(event);
        let ts = f.time.unwrap_or(self.last_time);
        self.last_time = self.last_time.max(ts);

        let api_key = format!("{}:{}", f.source, f.name);
        let shape_key = format!(
            "{api_key}|{}",
            request_shape(event.get("requestParameters"))
        );
        let ua_family = user_agent_family(f.user_agent);
        let global_conf = confidence(self.events, GLOBAL_HALF_CONFIDENCE);
        let global_api_count = count(&self.global_api, &api_key);
        let global_ua_count = count(&self.global_ua, f.user_agent);

        // The key is this event's own string: no copy is made for a principal already known.
        let st = self
            .principals
            .entry(std::mem::take(&mut f.principal))
            .or_default();
        prune(&mut st.novel_api_times, ts, STORM_WINDOW_SECS);
        prune(&mut st.novel_shape_times, ts, STORM_WINDOW_SECS);
        prune(&mut st.auth_error_times, ts, AUTH_BURST_WINDOW_SECS);

        let conf = confidence(st.events, HISTORY_HALF_CONFIDENCE);
        let storm = storm_discount(&st.novel_api_times);
        let shape_storm = storm_discount(&st.novel_shape_times);
        let api = familiarity(&st.api, &api_key);
        let shape = familiarity(&st.shape, &shape_key);
        let api_novelty = api.current(ts, storm);
        // Only what the parameters add beyond the API itself: a known API
        // called with a never-seen parameter structure is a different client
        // or code path (another tool reading the same secrets), while a new
        // API is necessarily a new shape too and is already scored as such.
        let shape_novelty = if api.seen() {
            (shape.current(ts, shape_storm) - api_novelty).max(0.0)
        } else {
            0.0
        };
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
            ("api_novelty", weight::API_NOVELTY, conf * api_novelty),
            ("shape_novelty", weight::SHAPE_NOVELTY, conf * shape_novelty),
            (
                "source_novelty",
                weight::SOURCE_NOVELTY,
                conf * familiarity(&st.source, f.source).novelty(),
            ),
            (
                "region_novelty",
                weight::REGION_NOVELTY,
                conf * familiarity(&st.region, f.region).novelty(),
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
                conf * familiarity(&st.ip, f.ip).novelty(),
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
        if !api.seen() {
            st.novel_api_times.push_back(ts);
        }
        if !shape.seen() {
            st.novel_shape_times.push_back(ts);
        }
        if auth_error {
            st.auth_error_times.push_back(ts);
        }
        // A first sighting remembers the novelty it was scored with (a new
        // shape of a new API is not a novelty of its own), for `echo`.
        let shape_first = if api.seen() { shape_storm } else { 0.0 };
        observe(&mut st.api, &api_key, ts, storm);
        observe(&mut st.shape, &shape_key, ts, shape_first);
        observe(&mut st.source, f.source, ts, 0.0);
        observe(&mut st.ip, f.ip, ts, 0.0);
        observe(&mut st.region, f.region, ts, 0.0);
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

fn familiarity(m: &HashMap<String, Familiarity>, k: &str) -> Familiarity {
    m.get(k).copied().unwrap_or_default()
}

fn observe(m: &mut HashMap<String, Familiarity>, k: &str, now: i64, novelty_now: f64) {
    match m.get_mut(k) {
        Some(f) => f.observe(now, novelty_now),
        None => {
            let mut f = Familiarity::default();
            f.observe(now, novelty_now);
            m.insert(k.to_string(), f);
        }
    }
}

fn storm_discount(novel_times: &VecDeque<i64>) -> f64 {
    1.0 / (1.0 + novel_times.len() as f64 / STORM_SCALE)
}

/// The key structure of `requestParameters` (values and list lengths
/// dropped, keys sorted, three levels deep), so calls of one API made by the
/// same client code share a shape whatever the resource names. Paging keys
/// are left out: a second page is the same request.
fn request_shape(v: Option<&Value>) -> String {
    fn walk(v: &Value, depth: usize, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().filter(|k| !is_paging_key(k)).collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(k);
                    let child = &m[k];
                    if depth < 3 && matches!(child, Value::Object(_) | Value::Array(_)) {
                        out.push(':');
                        walk(child, depth + 1, out);
                    }
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                if let Some(x) = a.first() {
                    walk(x, depth + 1, out);
                }
                out.push(']');
            }
            _ => {}
        }
    }
    let mut s = String::new();
    if let Some(v) = v {
        walk(v, 0, &mut s);
    }
    s
}

fn is_paging_key(k: &str) -> bool {
    const PAGING: [&str; 10] = [
        "nexttoken",
        "maxresults",
        "marker",
        "maxitems",
        "maxrecords",
        "startingtoken",
        "pagesize",
        "limit",
        "continuationtoken",
        "paginationtoken",
    ];
    PAGING.iter().any(|p| k.eq_ignore_ascii_case(p))
}

fn count(m: &HashMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

/// Counts one more `k`, allocating its key only the first time (nearly every call is a repeat).
fn bump(m: &mut HashMap<String, u64>, k: &str) {
    match m.get_mut(k) {
        Some(n) => *n += 1,
        None => {
            m.insert(k.to_string(), 1);
        }
    }
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

    #[test]
    fn familiarity_counts_occasions_not_calls() {
        let mut burst = Familiarity::default();
        for i in 0..50 {
            burst.observe(i, 1.0);
        }
        let mut spread = Familiarity::default();
        for day in 0..5 {
            spread.observe(day * 86_400, 1.0);
        }
        // 50 calls in under a minute are ~6 occasions (volume floor), five
        // separate days are 5 full ones; neither is "50".
        assert!(
            burst.occasions > 5.0 && burst.occasions < 7.0,
            "{}",
            burst.occasions
        );
        assert!(
            (spread.occasions - 5.0).abs() < 1e-6,
            "{}",
            spread.occasions
        );
    }

    #[test]
    fn polling_a_new_api_stays_new() {
        let mut s = Scorer::without_user_agent();
        warm(&mut s, 200);
        let first = s.score(&ev(
            "2024-01-01T01:00:00Z",
            "alice",
            "DescribeInstanceStatus",
            "aws-cli/2.0",
        ));
        let mut last = 0.0;
        for i in 1..20 {
            last = s.score(&ev(
                &format!("2024-01-01T01:00:{i:02}Z"),
                "alice",
                "DescribeInstanceStatus",
                "aws-cli/2.0",
            ));
        }
        assert!(first > 0.4, "{first}");
        assert!(last > 0.5 * first, "{first} {last}");
        // Long after, the loop is one familiar occasion, not a new behaviour.
        let later = s.score(&ev(
            "2024-01-01T03:00:00Z",
            "alice",
            "DescribeInstanceStatus",
            "aws-cli/2.0",
        ));
        assert!(later < last, "{last} {later}");
    }

    #[test]
    fn known_api_with_new_parameters_stands_out() {
        let call = |t: &str, params: Value| {
            let mut e = ev(t, "alice", "GetSecretValue", "aws-cli/2.0");
            e["requestParameters"] = params;
            e
        };
        // A week of hourly reads of versioned secrets by one client.
        let history = || {
            let mut s = Scorer::without_user_agent();
            for i in 0..168 {
                let t = format!("2024-01-{:02}T{:02}:00:00Z", 1 + i / 24, i % 24);
                s.score(&call(
                    &t,
                    json!({"secretId": format!("s{i}"), "versionId": "v1"}),
                ));
            }
            s
        };
        let t = "2024-01-08T00:30:00Z";
        let same = history().score(&call(t, json!({"secretId": "x", "versionId": "v2"})));
        let (other, top) = history().score_explained(&call(t, json!({"secretId": "x"})));
        assert!(other > same + 0.2, "{same} {other}");
        assert!(top.iter().any(|t| t.0 == "shape_novelty"));
    }

    #[test]
    fn request_shape_ignores_values_and_paging() {
        let a = json!({"filters": [{"key": "a", "values": ["x", "y"]}], "maxResults": 5});
        let b = json!({"nextToken": "t", "filters": [{"values": ["z"], "key": "b"}]});
        assert_eq!(request_shape(Some(&a)), request_shape(Some(&b)));
        assert_ne!(
            request_shape(Some(&json!({"secretId": "a"}))),
            request_shape(Some(&json!({"secretId": "a", "versionId": "b"})))
        );
        assert_eq!(request_shape(None), "");
    }
}
