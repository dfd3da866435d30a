//! Raw message → format, level, entity and typed fields.
//!
//! One module per AWS format. A format parser only claims lines that have its shape; a line that
//! has a format's shape but broken fields is a [`ParseError`] the source counts and shows, never a
//! panic. Format is chosen per source (the log group name says a lot: `/aws/lambda/...` holds only
//! Lambda output) and per line by shape; `--format` overrides both. The [`Parser`] keeps the little
//! state some formats need: sshd's per-connection remote host (later lines of a session do not
//! repeat it) and VPC Flow Logs custom formats (from a header line or configuration).

mod cloudtrail;
mod json;
mod lambda;
mod s3;
mod syslog;
mod text;
mod vpc;

pub use vpc::FlowFormat;

use crate::record::Record;
use serde::Serialize;
use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Syslog,
    Lambda,
    S3Access,
    VpcFlow,
    CloudTrail,
    Json,
    Text,
    /// A numeric series sample (`metric:` sources, from `timestamp,value` CSV files).
    Metric,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Syslog,
        Format::Lambda,
        Format::S3Access,
        Format::VpcFlow,
        Format::CloudTrail,
        Format::Json,
        Format::Text,
        Format::Metric,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Syslog => "syslog",
            Format::Lambda => "lambda",
            Format::S3Access => "s3_access",
            Format::VpcFlow => "vpc_flow",
            Format::CloudTrail => "cloudtrail",
            Format::Json => "json",
            Format::Text => "text",
            Format::Metric => "metric",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SshOutcome {
    Accepted,
    Failed,
    InvalidUser,
    AuthFailure,
    /// Refused by configuration (DenyUsers, AllowGroups...).
    NotAllowed,
    /// A connection dropped before authenticating, or a protocol failure: scanners' signature.
    Preauth,
    Closed,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlowAction {
    Accept,
    Reject,
    #[serde(rename = "-")]
    None,
}

/// A CloudTrail event's fields that identify who did what from where.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TrailEvent {
    pub event_time: String,
    pub event_source: String,
    pub event_name: String,
    pub region: String,
    pub principal_arn: String,
    pub access_key: Option<String>,
    pub identity_type: String,
    pub source_ip: String,
    pub user_agent: String,
    pub error_code: Option<String>,
    pub mfa: Option<bool>,
    /// The whole event as parsed, for scorers that read more of it (kept so it is parsed once).
    #[serde(skip)]
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fields {
    /// One sample of a numeric series.
    Metric {
        value: f64,
    },
    Ssh {
        outcome: SshOutcome,
        user: Option<String>,
        remote_host: Option<String>,
        port: Option<u16>,
    },
    Sudo {
        user: String,
        run_as: Option<String>,
        command: Option<String>,
        denied: bool,
    },
    /// A host health line: disk and CPU utilisation in percent.
    Health {
        disk_pct: Option<f64>,
        cpu_pct: Option<f64>,
    },
    /// "No space left on device" and its kernel cousins.
    DiskFull,
    Kernel,
    CloudInit,
    /// Any other syslog program line.
    Program {
        program: String,
    },
    LambdaInit {
        runtime: Option<String>,
    },
    LambdaStart {
        request_id: String,
    },
    LambdaEnd {
        request_id: String,
    },
    LambdaReport {
        request_id: String,
        duration_ms: f64,
        billed_ms: Option<f64>,
        memory_mb: f64,
        max_memory_mb: f64,
        init_ms: Option<f64>,
        status: Option<String>,
    },
    LambdaTimeout {
        request_id: Option<String>,
        seconds: f64,
    },
    /// An application line (its level says whether it is an error).
    LambdaApp {
        request_id: Option<String>,
        error_type: Option<String>,
    },
    S3 {
        bucket: String,
        remote_ip: String,
        requester: String,
        operation: String,
        key: Option<String>,
        status: Option<u16>,
        error_code: Option<String>,
        bytes_sent: Option<u64>,
        user_agent: Option<String>,
    },
    Vpc {
        interface: Option<String>,
        src: Option<String>,
        dst: Option<String>,
        src_port: Option<u16>,
        dst_port: Option<u16>,
        protocol: Option<u8>,
        action: FlowAction,
        log_status: Option<String>,
        instance_id: Option<String>,
    },
    Trail(Box<TrailEvent>),
    Json {
        message: Option<String>,
    },
    Plain,
}

/// What parsing made of one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub format: Format,
    pub level: Level,
    /// The resource the line is about: instance id, function, bucket, ENI, access key.
    pub entity: Option<String>,
    pub fields: Fields,
    /// Byte offset where the message body starts (after syslog or Lambda prefixes): the template
    /// miner sees only the body so timestamps and hosts do not split templates.
    pub body_start: usize,
}

#[derive(Debug, Error, PartialEq)]
pub enum ParseError {
    #[error("{format:?} line with a broken field: {what}")]
    Field { format: Format, what: &'static str },
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("line does not have the {0:?} shape")]
    Shape(Format),
}

impl ParseError {
    fn field(format: Format, what: &'static str) -> Self {
        ParseError::Field { format, what }
    }
}

/// Parses records, remembering per-source state. One per engine (or per `parse` run).
#[derive(Debug, Default)]
pub struct Parser {
    /// Format forced for every record (`--format`).
    forced: Option<Format>,
    sshd: syslog::SshdSessions,
    /// What each source has shown so far; one lookup per line.
    groups: HashMap<String, GroupState>,
}

/// Most sources whose state is kept; past it, new sources are parsed line by line.
const MAX_GROUPS: usize = 10_000;

/// Format state of one source. Log text is attacker-controlled, so a line may only switch its
/// source's format while the source has shown nothing else: a flow-log header or a Lambda
/// platform line written into an sshd log must not turn the rest of it into rejected
/// "flow records" or Lambda output and blind its detection.
#[derive(Debug, Default)]
struct GroupState {
    /// VPC Flow Logs format, from a header line, config or `DescribeFlowLogs`.
    flow: Option<FlowFormat>,
    /// Recognised as Lambda output by a platform line: all its lines are Lambda's.
    lambda: bool,
    /// Format of the source's first record.
    first: Option<Format>,
}

impl GroupState {
    /// Whether a line of `format` may set the source's format.
    fn may_become(&self, format: Format) -> bool {
        self.first.is_none_or(|f| f == format)
    }
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_format(format: Option<Format>) -> Self {
        Parser {
            forced: format,
            ..Self::default()
        }
    }

    /// Declares the VPC Flow Logs format of a source (from `DescribeFlowLogs` or config).
    pub fn set_flow_format(&mut self, group: &str, format: FlowFormat) {
        self.groups.entry(group.to_string()).or_default().flow = Some(format);
    }

    /// Parses one record. `Ok(None)` is a line that is not a record (a flow-log header, which
    /// sets the source's format).
    pub fn parse(&mut self, rec: &Record) -> Result<Option<Parsed>, ParseError> {
        let text = rec.text.as_str();
        let group = &*rec.group;
        let state = self.groups.get(group);
        let format = match self.forced {
            Some(f) => f,
            None => detect(group, text, state),
        };
        let flow = state.and_then(|s| s.flow.as_ref());
        let header = (format == Format::VpcFlow
            && state.is_none_or(|s| s.may_become(Format::VpcFlow)))
        .then(|| FlowFormat::from_header(text))
        .flatten();
        let parsed = match format {
            Format::Lambda => Ok(Some(lambda::parse(text, lambda_function(group)))),
            Format::CloudTrail => cloudtrail::parse(text).map(Some),
            Format::VpcFlow if header.is_some() => Ok(None),
            Format::VpcFlow => {
                vpc::parse(text, flow.unwrap_or_else(|| FlowFormat::default_v2())).map(Some)
            }
            Format::S3Access => s3::parse(text).map(Some),
            Format::Syslog => syslog::parse(text, &rec.stream, &mut self.sshd).map(Some),
            Format::Json => json::parse(text).map(Some),
            Format::Text => Ok(Some(text::parse(text))),
            Format::Metric => parse_metric(text).map(Some),
        };
        // Record what the source showed; only new facts cost an insert.
        let learned_lambda = format == Format::Lambda
            && state.is_none_or(|s| !s.lambda && s.may_become(Format::Lambda));
        let first_record = matches!(parsed, Ok(Some(_))) && state.is_none_or(|s| s.first.is_none());
        if (header.is_some() || learned_lambda || first_record)
            && (state.is_some() || self.groups.len() < MAX_GROUPS)
        {
            let st = self.groups.entry(group.to_string()).or_default();
            if let Some(h) = header {
                st.flow = Some(h);
            }
            if learned_lambda {
                st.lambda = true;
            }
            if first_record {
                st.first = Some(format);
            }
        }
        parsed
    }
}

fn detect(group: &str, text: &str, state: Option<&GroupState>) -> Format {
    if group.starts_with(METRIC_PREFIX) {
        return Format::Metric;
    }
    if group.starts_with("/aws/lambda/") || state.is_some_and(|s| s.lambda) {
        return Format::Lambda;
    }
    let t = text.trim_start();
    if t.starts_with('{') {
        if group.to_ascii_lowercase().contains("cloudtrail")
            || (t.contains("\"eventSource\"") && t.contains("\"eventName\""))
        {
            return Format::CloudTrail;
        }
        return Format::Json;
    }
    let may_be_flow = state.is_none_or(|s| s.may_become(Format::VpcFlow));
    if state.is_some_and(|s| s.flow.is_some())
        || vpc::looks_like_default(text)
        || (may_be_flow && FlowFormat::from_header(text).is_some())
    {
        return Format::VpcFlow;
    }
    if s3::looks_like(text) {
        return Format::S3Access;
    }
    if syslog::looks_like(text) {
        return Format::Syslog;
    }
    if lambda::looks_like(text) {
        return Format::Lambda;
    }
    Format::Text
}

/// Sources whose records are numeric samples, one value per record.
pub const METRIC_PREFIX: &str = "metric:";

/// A metric sample: the record's text is its value.
fn parse_metric(text: &str) -> Result<Parsed, ParseError> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| ParseError::field(Format::Metric, "value is not a number"))?;
    if !value.is_finite() {
        return Err(ParseError::field(Format::Metric, "value is not finite"));
    }
    Ok(Parsed {
        format: Format::Metric,
        level: Level::Info,
        entity: None,
        fields: Fields::Metric { value },
        body_start: text.len(),
    })
}

/// The function name of a `/aws/lambda/<name>` group, or the group itself.
fn lambda_function(group: &str) -> &str {
    group.strip_prefix("/aws/lambda/").unwrap_or(group)
}

/// Level from the usual words; tolerant of `[ERROR]`, `ERROR:`, `level=error`.
pub fn detect_level(text: &str) -> Level {
    let head = &text[..floor_char_boundary(text, 400)];
    let mut level = Level::Info;
    for word in head.split(|c: char| !c.is_ascii_alphabetic()) {
        let l = match word {
            "ERROR" | "Error" | "error" | "FATAL" | "Fatal" | "fatal" | "CRITICAL" | "CRIT"
            | "EMERG" | "ALERT" | "SEVERE" | "Exception" | "Traceback" | "panicked" => Level::Error,
            "WARN" | "WARNING" | "Warning" | "warning" | "warn" => Level::Warn,
            "DEBUG" | "TRACE" => Level::Debug,
            _ => continue,
        };
        if l > level {
            level = l;
        }
    }
    level
}

pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safe_text::SafeText;

    #[test]
    fn a_line_cannot_switch_the_format_of_a_source_that_showed_another() {
        let mut p = Parser::new();
        let g = "/ec2/var/log/secure";
        let ssh = |n: u32| {
            format!(
                "Nov 23 10:00:{n:02} ip-10-0-1-5 sshd[{n}]: Failed password for invalid user admin from 45.83.12.7 port 5{n:04} ssh2"
            )
        };
        assert_eq!(
            p.parse(&rec(g, "i-1", &ssh(1))).unwrap().unwrap().format,
            Format::Syslog
        );
        // An attacker writes a flow-log header, then a Lambda platform line, into the log.
        let header = p
            .parse(&rec(g, "i-1", "version srcaddr dstaddr action"))
            .unwrap();
        assert!(header.is_some_and(|r| r.format != Format::VpcFlow));
        let start = "START RequestId: 8f5a0c1e-1b2c-4d3e-9f00-0123456789ab Version: $LATEST";
        let _ = p.parse(&rec(g, "i-1", start));
        for n in 2..5 {
            let r = p.parse(&rec(g, "i-1", &ssh(n))).unwrap().unwrap();
            assert_eq!(r.format, Format::Syslog, "line {n} still parses as sshd");
        }
        // A source that starts with a header is a flow log, as S3-delivered files are.
        let f = "flows-from-s3";
        assert!(
            p.parse(&rec(f, "s", "version srcaddr dstaddr action"))
                .unwrap()
                .is_none()
        );
        let r = p
            .parse(&rec(f, "s", "5 10.0.0.1 10.0.0.2 REJECT"))
            .unwrap()
            .unwrap();
        assert_eq!(r.format, Format::VpcFlow);
    }

    pub(super) fn rec(group: &str, stream: &str, text: &str) -> Record {
        Record {
            arrival_ms: 0,
            ts_ms: 0,
            group: group.into(),
            stream: stream.into(),
            text: SafeText::new(text),
        }
    }

    pub(super) fn one(group: &str, stream: &str, text: &str) -> Parsed {
        Parser::new()
            .parse(&rec(group, stream, text))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn format_is_chosen_by_group_then_shape() {
        assert_eq!(one("/aws/lambda/f", "s", "hello").format, Format::Lambda);
        assert_eq!(
            one(
                "g",
                "s",
                r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject"}"#
            )
            .format,
            Format::CloudTrail
        );
        assert_eq!(
            one("g", "s", r#"{"level":"info","msg":"x"}"#).format,
            Format::Json
        );
        assert_eq!(
            one("g", "s", "2024-01-01 10:00:00 WARN something").format,
            Format::Text
        );
        assert_eq!(Format::from_name("vpc_flow"), Some(Format::VpcFlow));
    }

    #[test]
    fn forced_format_rejects_what_does_not_fit() {
        let mut p = Parser::with_format(Some(Format::S3Access));
        assert!(p.parse(&rec("g", "s", "not an access log")).is_err());
    }
}
