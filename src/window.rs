//! Parsed events → per-entity signal observations, keyed by event-time minute.
//!
//! Each observation names a signal (what is counted or measured), the entity it is about, and the
//! other keys it links to (the instance an attacker hit, the user behind an access key), which the
//! incident stage uses to join anomalies. Signals are split into *failure* signals (auth failures,
//! rejects, timeouts, errors, denied calls, destructive deletes, a filling disk), which can open
//! incidents, and *volume* signals (traffic, CPU), which are charted but never open an incident on
//! their own: a burst of successful work is not an incident.

use crate::parse::{Fields, FlowAction, Level, Parsed, SshOutcome};
use crate::record::Record;
use foldhash::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    SshAuthFailure,
    VpcReject,
    LambdaTimeout,
    LambdaError,
    DiskUsedPct,
    DiskError,
    AccessDenied,
    NewRegion,
    S3Delete,
    S3Denied,
    AppError,
    CpuUtil,
    S3Requests,
    ApiCalls,
    LambdaInvocations,
    /// A numeric series (a metric source); scored by the series detector.
    Metric,
    /// CloudTrail calls the event scorer finds unusual for their principal (new API, service,
    /// region, source IP, client, request shape).
    UnusualApiCall,
    /// Lines of a shape the source never showed before.
    NewTemplate,
    /// Errors and warnings carrying a value never seen at a position that holds few values.
    NewValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalClass {
    Failure,
    Volume,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::SshAuthFailure => "ssh auth failures",
            Signal::VpcReject => "VPC REJECT flows",
            Signal::LambdaTimeout => "Lambda timeouts",
            Signal::LambdaError => "Lambda errors",
            Signal::DiskUsedPct => "disk used %",
            Signal::DiskError => "disk-full errors",
            Signal::AccessDenied => "denied API calls",
            Signal::NewRegion => "calls from a new region",
            Signal::S3Delete => "S3 deletes",
            Signal::S3Denied => "S3 denied requests",
            Signal::AppError => "error lines",
            Signal::CpuUtil => "CPU %",
            Signal::S3Requests => "S3 requests",
            Signal::ApiCalls => "API calls",
            Signal::LambdaInvocations => "Lambda invocations",
            Signal::Metric => "metric value",
            Signal::UnusualApiCall => "unusual API calls",
            Signal::NewTemplate => "new kinds of line",
            Signal::NewValue => "new values in errors",
        }
    }

    pub fn class(self) -> SignalClass {
        match self {
            Signal::CpuUtil
            | Signal::S3Requests
            | Signal::ApiCalls
            | Signal::LambdaInvocations
            | Signal::NewTemplate
            | Signal::NewValue => SignalClass::Volume,
            _ => SignalClass::Failure,
        }
    }

    /// Gauges carry a level per minute (the minute's maximum); the others are counts.
    pub fn is_gauge(self) -> bool {
        matches!(self, Signal::DiskUsedPct | Signal::CpuUtil)
    }
}

/// One measurement of one signal for one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub signal: Signal,
    pub entity: String,
    pub links: Vec<String>,
    pub value: f64,
    /// Event-time minute (epoch minutes).
    pub minute: i64,
}

/// The observations of one record, in a buffer reused from record to record: each slot keeps its
/// entity and link strings, which would otherwise be allocated and freed for every line.
#[derive(Debug, Default)]
pub struct Observations {
    slots: Vec<Observation>,
    len: usize,
}

impl Observations {
    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn as_slice(&self) -> &[Observation] {
        &self.slots[..self.len]
    }

    pub fn push<'a>(
        &mut self,
        signal: Signal,
        entity: &str,
        links: impl IntoIterator<Item = &'a str>,
        value: f64,
        minute: i64,
    ) {
        if self.len == self.slots.len() {
            self.slots.push(Observation {
                signal,
                entity: String::new(),
                links: Vec::new(),
                value,
                minute,
            });
        }
        let o = &mut self.slots[self.len];
        o.signal = signal;
        o.entity.clear();
        o.entity.push_str(entity);
        let mut n = 0;
        for l in links {
            match o.links.get_mut(n) {
                Some(slot) => {
                    slot.clear();
                    slot.push_str(l);
                }
                None => o.links.push(l.to_string()),
            }
            n += 1;
        }
        o.links.truncate(n);
        o.value = value;
        o.minute = minute;
        self.len += 1;
    }
}

/// No links.
const NONE: [&str; 0] = [];

/// Turns parsed events into observations, remembering who is who (access key ↔ user) and where
/// each principal usually works from.
#[derive(Debug, Default)]
pub struct Extractor {
    keys_by_arn: HashMap<String, HashSet<String>>,
    regions_by_principal: HashMap<String, HashSet<String>>,
    region_calls: HashMap<String, u64>,
    /// The region with the most calls so far: the account's home.
    home: String,
    trail_events: u64,
    /// Endpoints each function's errors named lately, and the minute they last did.
    failing_endpoints: HashMap<String, (Vec<String>, i64)>,
    /// How unusual each CloudTrail call is for its principal.
    trail_scorer: crate::trail::Scorer,
}

/// A CloudTrail call scoring this high on the event scorer counts as unusual. One unusual call is
/// routine (a new tool, a first deploy); a burst of them from one principal is what the count
/// detector then judges.
const UNUSUAL_CALL_SCORE: f64 = 0.7;

/// Minutes an endpoint named in a function's errors still explains its timeouts.
const ENDPOINT_MEMORY_MIN: i64 = 10;

/// `host:port` tokens in an error line (`10.0.3.41:5432`, `orders-db.example.com:5432`).
fn endpoints(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '(' | ')' | '[' | ']'))
        .filter_map(|tok| {
            let tok = tok.trim_end_matches(['.', ';', ':']);
            let (host, port) = tok.rsplit_once(':')?;
            let port_ok = (2..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
            let host_ok = host.len() >= 3
                && host.contains('.')
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            (port_ok && host_ok).then(|| tok.to_string())
        })
        .take(4)
        .collect()
}

/// CloudTrail events seen before a principal's usual regions count as known.
const REGION_WARMUP_EVENTS: u64 = 50;

impl Extractor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Endpoints the function's errors named in the last few minutes: every failure of the
    /// function carries them, so a timeout links to the database its neighbours fail against.
    fn recent_endpoints(&self, function: &str, minute: i64) -> impl Iterator<Item = &str> {
        self.failing_endpoints
            .get(function)
            .filter(|(_, m)| minute - m <= ENDPOINT_MEMORY_MIN)
            .into_iter()
            .flat_map(|(e, _)| e.iter().map(String::as_str))
    }

    pub fn observe(&mut self, rec: &Record, p: &Parsed, out: &mut Observations) {
        let minute = rec.ts_ms.div_euclid(60_000);
        let entity = p.entity.as_deref().unwrap_or(&rec.stream);
        match &p.fields {
            Fields::Metric { value } => {
                let series = rec
                    .group
                    .strip_prefix(crate::parse::METRIC_PREFIX)
                    .unwrap_or(&rec.group);
                out.push(Signal::Metric, series, NONE, *value, minute)
            }
            Fields::Ssh {
                outcome:
                    SshOutcome::Failed
                    | SshOutcome::InvalidUser
                    | SshOutcome::AuthFailure
                    | SshOutcome::NotAllowed,
                remote_host: Some(host),
                ..
            } => out.push(Signal::SshAuthFailure, host, [entity], 1.0, minute),
            Fields::Vpc {
                action: FlowAction::Reject,
                src: Some(src),
                interface,
                ..
            } => out.push(Signal::VpcReject, src, interface.as_deref(), 1.0, minute),
            Fields::LambdaTimeout { .. } => {
                let links = self.recent_endpoints(entity, minute);
                out.push(Signal::LambdaTimeout, entity, links, 1.0, minute)
            }
            Fields::LambdaStart { .. } => {
                out.push(Signal::LambdaInvocations, entity, NONE, 1.0, minute)
            }
            Fields::LambdaApp { .. } if p.level == Level::Error => {
                // Functions failing against the same endpoint share a cause: link them by it.
                let found = endpoints(rec.text.as_str());
                if !found.is_empty() {
                    let slot = self
                        .failing_endpoints
                        .entry(entity.to_string())
                        .or_default();
                    for e in &found {
                        if !slot.0.contains(e) {
                            if slot.0.len() >= 4 {
                                slot.0.remove(0);
                            }
                            slot.0.push(e.clone());
                        }
                    }
                    slot.1 = minute;
                }
                let links = self.recent_endpoints(entity, minute);
                out.push(Signal::LambdaError, entity, links, 1.0, minute)
            }
            Fields::Health { disk_pct, cpu_pct } => {
                if let Some(d) = disk_pct {
                    out.push(Signal::DiskUsedPct, entity, NONE, *d, minute);
                }
                if let Some(c) = cpu_pct {
                    out.push(Signal::CpuUtil, entity, NONE, *c, minute);
                }
            }
            Fields::DiskFull => out.push(Signal::DiskError, entity, NONE, 1.0, minute),
            Fields::S3 {
                requester,
                remote_ip,
                operation,
                status,
                bucket,
                ..
            } => {
                let keys = self.keys_by_arn.get(requester);
                let links = || {
                    [remote_ip.as_str(), bucket.as_str()]
                        .into_iter()
                        .chain(keys.into_iter().flatten().map(String::as_str))
                };
                if operation.starts_with("REST.DELETE") || operation.starts_with("BATCH.DELETE") {
                    out.push(Signal::S3Delete, requester, links(), 1.0, minute);
                }
                if matches!(status, Some(401 | 403)) {
                    out.push(Signal::S3Denied, requester, links(), 1.0, minute);
                }
                out.push(Signal::S3Requests, requester, links(), 1.0, minute);
            }
            Fields::Trail(ev) => {
                self.trail_events += 1;
                let principal: &str = ev.access_key.as_deref().unwrap_or(&ev.principal_arn);
                // Keys and principals are copied only when first seen (nearly every call repeats).
                if let Some(key) = &ev.access_key {
                    match self.keys_by_arn.get_mut(ev.principal_arn.as_str()) {
                        Some(keys) if keys.contains(key.as_str()) => {}
                        Some(keys) => {
                            keys.insert(key.clone());
                        }
                        None => {
                            let keys = HashSet::from_iter([key.clone()]);
                            self.keys_by_arn.insert(ev.principal_arn.clone(), keys);
                        }
                    }
                }
                let links = [ev.principal_arn.as_str(), ev.source_ip.as_str()];
                if ev.error_code.as_deref().is_some_and(|e| {
                    e.contains("AccessDenied") || e.contains("UnauthorizedOperation")
                }) {
                    out.push(Signal::AccessDenied, principal, links, 1.0, minute);
                }
                // Counted without allocating for the regions already known (nearly all calls).
                match self.region_calls.get_mut(ev.region.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        self.region_calls.insert(ev.region.clone(), 1);
                    }
                }
                let here = self
                    .region_calls
                    .get(ev.region.as_str())
                    .copied()
                    .unwrap_or(0);
                let home_calls = self
                    .region_calls
                    .get(self.home.as_str())
                    .copied()
                    .unwrap_or(0);
                if here > home_calls {
                    self.home = ev.region.clone();
                }
                if !self.regions_by_principal.contains_key(principal) {
                    self.regions_by_principal
                        .insert(principal.to_string(), HashSet::default());
                }
                let known = self.regions_by_principal.get_mut(principal).map(|k| &*k);
                let new_region = !ev.region.is_empty()
                    && ev.region != self.home
                    && known.is_some_and(|k| !k.contains(&ev.region))
                    && self.trail_events > REGION_WARMUP_EVENTS;
                let unusual = self.trail_scorer.score(&ev.raw);
                if unusual >= UNUSUAL_CALL_SCORE {
                    out.push(Signal::UnusualApiCall, principal, links, 1.0, minute);
                }
                if new_region {
                    out.push(Signal::NewRegion, principal, links, 1.0, minute);
                } else if let Some(k) = self.regions_by_principal.get_mut(principal)
                    && !k.contains(&ev.region)
                {
                    k.insert(ev.region.clone());
                }
                out.push(Signal::ApiCalls, principal, links, 1.0, minute);
            }
            _ => {
                if p.level == Level::Error {
                    out.push(Signal::AppError, entity, NONE, 1.0, minute);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail_record(minute: i64, name: &str, source: &str) -> Record {
        let ts = 1_700_000_000_000 + minute * 60_000;
        let text = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/ci",
                             "accessKeyId": "AKIAEXAMPLEEXAMPLE01"},
            "eventTime": crate::timefmt::iso(ts),
            "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.4", "userAgent": "aws-cli/2.15.0",
            "eventID": format!("{minute}-{name}"), "eventType": "AwsApiCall",
            "requestParameters": null
        })
        .to_string();
        Record {
            arrival_ms: ts,
            ts_ms: ts,
            group: "cloudtrail".into(),
            stream: "-".into(),
            text: crate::safe_text::SafeText::new(&text),
        }
    }

    #[test]
    fn calls_new_to_a_principal_are_unusual_and_routine_ones_are_not() {
        let mut parser = crate::parse::Parser::new();
        let mut x = Extractor::new();
        let mut unusual = |x: &mut Extractor, rec: Record| {
            let p = parser.parse(&rec).unwrap().unwrap();
            let mut out = Observations::default();
            x.observe(&rec, &p, &mut out);
            out.as_slice()
                .iter()
                .any(|o| o.signal == Signal::UnusualApiCall)
        };
        // A week of the same two calls, twice an hour.
        let mut routine_flagged = 0;
        for m in (0..7 * 1440).step_by(30) {
            routine_flagged += usize::from(unusual(
                &mut x,
                trail_record(m, "DescribeInstances", "ec2.amazonaws.com"),
            ));
            routine_flagged += usize::from(unusual(
                &mut x,
                trail_record(m, "GetObject", "s3.amazonaws.com"),
            ));
        }
        assert!(
            routine_flagged <= 2,
            "only the first sightings: {routine_flagged}"
        );
        let late = 7 * 1440 + 5;
        assert!(!unusual(
            &mut x,
            trail_record(late, "DescribeInstances", "ec2.amazonaws.com")
        ));
        assert!(unusual(
            &mut x,
            trail_record(late, "CreateAccessKey", "iam.amazonaws.com")
        ));
    }

    #[test]
    fn endpoints_are_found_in_error_text() {
        assert_eq!(
            endpoints("ERROR\tconnect ETIMEDOUT 10.0.3.41:5432"),
            vec!["10.0.3.41:5432"]
        );
        assert_eq!(
            endpoints(
                "could not connect to database orders-db.cluster-x.us-east-1.rds.amazonaws.com:5432: Connection timed out"
            ),
            vec!["orders-db.cluster-x.us-east-1.rds.amazonaws.com:5432"]
        );
        assert!(endpoints("at 10:01:02 Error: x:y").is_empty());
    }
}
