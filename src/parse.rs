//! Raw message → typed fields, a level and an entity.
//!
//! One function per AWS format. A format parser only claims lines that have its shape; a line no
//! parser claims is plain text, and a line that has a format's shape but broken fields is an error
//! the source counts and shows ([`ParseError`]). This first slice extracts what the detectors use;
//! the log-understanding issue deepens every format.

use crate::record::Record;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Syslog,
    Lambda,
    S3Access,
    VpcFlow,
    CloudTrail,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshOutcome {
    Accepted,
    Failed,
    InvalidUser,
    AuthFailure,
    Closed,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowAction {
    Accept,
    Reject,
    None,
}

/// A CloudTrail event's fields that identify who did what from where.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrailEvent {
    pub event_source: String,
    pub event_name: String,
    pub region: String,
    pub principal_arn: String,
    pub access_key: Option<String>,
    pub identity_type: String,
    pub source_ip: String,
    pub user_agent: String,
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    Ssh {
        outcome: SshOutcome,
        user: Option<String>,
        remote_host: Option<String>,
    },
    /// A host health line: disk and CPU utilisation in percent.
    Health {
        disk_pct: Option<f64>,
        cpu_pct: Option<f64>,
    },
    /// "No space left on device" and its kernel cousins.
    DiskFull,
    LambdaReport {
        duration_ms: f64,
        memory_mb: f64,
        max_memory_mb: f64,
        init_ms: Option<f64>,
    },
    LambdaStart,
    LambdaTimeout {
        seconds: f64,
    },
    /// A Lambda application line (its level says whether it is an error).
    LambdaApp,
    S3 {
        bucket: String,
        remote_ip: String,
        requester: String,
        operation: String,
        status: Option<u16>,
        error_code: Option<String>,
    },
    Vpc {
        interface: String,
        src: String,
        dst: String,
        dst_port: Option<u16>,
        action: FlowAction,
    },
    Trail(Box<TrailEvent>),
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
    #[error("CloudTrail line is not a JSON object: {0}")]
    Json(String),
}

use crate::timefmt::MONTHS;

/// Parses one record, choosing the format from the group name first and the line's shape second.
pub fn parse(rec: &Record) -> Result<Parsed, ParseError> {
    let text = rec.text.as_str();
    let group = &*rec.group;
    if group.starts_with("/aws/lambda/") {
        let function = group.trim_start_matches("/aws/lambda/");
        return Ok(parse_lambda(text, function));
    }
    if text.starts_with('{') && (text.contains("\"eventSource\"") || group.contains("cloudtrail")) {
        return parse_cloudtrail(text);
    }
    if let Some(p) = parse_vpc(text)? {
        return Ok(p);
    }
    if let Some(p) = parse_s3(text)? {
        return Ok(p);
    }
    if let Some(p) = parse_syslog(text, &rec.stream) {
        return Ok(p);
    }
    Ok(Parsed {
        format: Format::Text,
        level: detect_level(text),
        entity: None,
        fields: Fields::Plain,
        body_start: 0,
    })
}

/// Level from the usual words; tolerant of `[ERROR]`, `ERROR:`, `level=error`.
pub fn detect_level(text: &str) -> Level {
    let head = &text[..floor_char_boundary(text, 400)];
    let mut level = Level::Info;
    for word in head.split(|c: char| !c.is_ascii_alphabetic()) {
        let l = match word {
            "ERROR" | "Error" | "error" | "FATAL" | "Fatal" | "fatal" | "CRITICAL" | "CRIT"
            | "EMERG" | "ALERT" => Level::Error,
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

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn parse_lambda(text: &str, function: &str) -> Parsed {
    let entity = Some(function.to_string());
    let mk = |fields, level, body_start| Parsed {
        format: Format::Lambda,
        level,
        entity: entity.clone(),
        fields,
        body_start,
    };
    if text.starts_with("START RequestId:") || text.starts_with("INIT_START") {
        return mk(Fields::LambdaStart, Level::Info, 0);
    }
    if let Some(rest) = text.strip_prefix("REPORT RequestId:") {
        let num = |key: &str| -> Option<f64> {
            let at = rest.find(key)? + key.len();
            rest[at..].split_whitespace().next()?.parse().ok()
        };
        let timed_out = rest.contains("Status: timeout");
        let fields = Fields::LambdaReport {
            duration_ms: num("Duration:").unwrap_or(0.0),
            memory_mb: num("Memory Size:").unwrap_or(0.0),
            max_memory_mb: num("Max Memory Used:").unwrap_or(0.0),
            init_ms: num("Init Duration:"),
        };
        let level = if timed_out { Level::Error } else { Level::Info };
        return mk(fields, level, 0);
    }
    if let Some(at) = text.find("Task timed out after ") {
        let seconds = text[at + 21..]
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        return mk(Fields::LambdaTimeout { seconds }, Level::Error, at);
    }
    if text.starts_with("END RequestId:") {
        return mk(Fields::LambdaStart, Level::Debug, 0);
    }
    // Node.js: `<ts>\t<request id>\t<LEVEL>\t<message>`; Python: `[LEVEL]\t<ts>\t<id>\t<message>`.
    let parts: Vec<&str> = text.splitn(4, '\t').collect();
    let (level, body_start) = if parts.len() == 4 && parts[0].starts_with('[') {
        (
            detect_level(parts[0]),
            parts[0].len() + parts[1].len() + parts[2].len() + 3,
        )
    } else if parts.len() == 4 {
        (
            detect_level(parts[2]),
            parts[0].len() + parts[1].len() + parts[2].len() + 3,
        )
    } else {
        (detect_level(text), 0)
    };
    mk(Fields::LambdaApp, level, body_start.min(text.len()))
}

fn parse_cloudtrail(text: &str) -> Result<Parsed, ParseError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    if !v.is_object() {
        return Err(ParseError::Json("not an object".into()));
    }
    let event_name = s(&v, "eventName").ok_or(ParseError::Field {
        format: Format::CloudTrail,
        what: "eventName",
    })?;
    let uid = v.get("userIdentity").cloned().unwrap_or(Value::Null);
    let principal_arn = s(&uid, "arn")
        .or_else(|| s(&uid, "invokedBy"))
        .or_else(|| s(&uid, "principalId"))
        .unwrap_or_else(|| "-".into());
    let access_key = s(&uid, "accessKeyId").filter(|k| !k.is_empty());
    let error_code = s(&v, "errorCode");
    let ev = TrailEvent {
        event_source: s(&v, "eventSource").unwrap_or_default(),
        event_name,
        region: s(&v, "awsRegion").unwrap_or_default(),
        principal_arn,
        identity_type: s(&uid, "type").unwrap_or_default(),
        access_key: access_key.clone(),
        source_ip: s(&v, "sourceIPAddress").unwrap_or_default(),
        user_agent: s(&v, "userAgent").unwrap_or_default(),
        error_code: error_code.clone(),
    };
    let entity = access_key.or_else(|| Some(ev.principal_arn.clone()));
    Ok(Parsed {
        format: Format::CloudTrail,
        level: if error_code.is_some() {
            Level::Warn
        } else {
            Level::Info
        },
        entity,
        fields: Fields::Trail(Box::new(ev)),
        body_start: 0,
    })
}

/// Default-format (v2) flow log records: 14 space-separated fields starting with `2 <account>`.
fn parse_vpc(text: &str) -> Result<Option<Parsed>, ParseError> {
    let f: Vec<&str> = text.split(' ').collect();
    if f.len() != 14 || f[0] != "2" || !f[2].starts_with("eni-") {
        return Ok(None);
    }
    let action = match f[12] {
        "ACCEPT" => FlowAction::Accept,
        "REJECT" => FlowAction::Reject,
        "-" => FlowAction::None,
        _ => {
            return Err(ParseError::Field {
                format: Format::VpcFlow,
                what: "action",
            });
        }
    };
    let dst_port = match f[6] {
        "-" => None,
        p => Some(p.parse().map_err(|_| ParseError::Field {
            format: Format::VpcFlow,
            what: "dstport",
        })?),
    };
    Ok(Some(Parsed {
        format: Format::VpcFlow,
        level: Level::Info,
        entity: Some(f[2].to_string()),
        fields: Fields::Vpc {
            interface: f[2].to_string(),
            src: f[3].to_string(),
            dst: f[4].to_string(),
            dst_port,
            action,
        },
        body_start: 0,
    }))
}

/// S3 server access log: `owner bucket [time] ip requester reqid op key "uri" status err ...`.
fn parse_s3(text: &str) -> Result<Option<Parsed>, ParseError> {
    let Some(open) = text.find(" [") else {
        return Ok(None);
    };
    let head: Vec<&str> = text[..open].split(' ').collect();
    if head.len() != 2 || head[0].len() < 16 || !head[0].bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let bad = |what| ParseError::Field {
        format: Format::S3Access,
        what,
    };
    let close = text[open..].find("] ").ok_or(bad("time"))? + open;
    let rest = &text[close + 2..];
    let mut it = rest.splitn(5, ' ');
    let remote_ip = it.next().ok_or(bad("remote ip"))?.to_string();
    let requester = it.next().ok_or(bad("requester"))?.to_string();
    let _request_id = it.next().ok_or(bad("request id"))?;
    let operation = it.next().ok_or(bad("operation"))?.to_string();
    let after_op = it.next().ok_or(bad("key"))?;
    // Skip the key and the quoted request URI to reach the status and error code.
    let q1 = after_op.find('"').ok_or(bad("request uri"))?;
    let q2 = after_op[q1 + 1..].find('"').ok_or(bad("request uri"))? + q1 + 1;
    let mut tail = after_op[q2 + 1..].split_whitespace();
    let status = match tail.next().ok_or(bad("status"))? {
        "-" => None,
        s => Some(s.parse().map_err(|_| bad("status"))?),
    };
    let error_code = tail.next().filter(|e| *e != "-").map(str::to_string);
    let level = match status {
        Some(s) if s >= 500 => Level::Error,
        Some(s) if s >= 400 => Level::Warn,
        _ => Level::Info,
    };
    Ok(Some(Parsed {
        format: Format::S3Access,
        level,
        entity: Some(head[1].to_string()),
        fields: Fields::S3 {
            bucket: head[1].to_string(),
            remote_ip,
            requester,
            operation,
            status,
            error_code,
        },
        body_start: 0,
    }))
}

/// RFC 3164 syslog: `Mmm dd HH:MM:SS host prog[pid]: message`.
fn parse_syslog(text: &str, stream: &str) -> Option<Parsed> {
    let month = text.get(..3)?;
    if !MONTHS.contains(&month) || text.as_bytes().get(3) != Some(&b' ') {
        return None;
    }
    let mut idx = 4;
    let bytes = text.as_bytes();
    while bytes.get(idx) == Some(&b' ') {
        idx += 1;
    }
    // day, time, host
    let after_day = text[idx..].find(' ')? + idx + 1;
    let after_time = text[after_day..].find(' ')? + after_day + 1;
    let after_host = text[after_time..].find(' ')? + after_time + 1;
    let colon = text[after_host..].find(": ")? + after_host;
    let tag = &text[after_host..colon];
    let program = tag.split('[').next().unwrap_or(tag);
    let body_start = colon + 2;
    let body = &text[body_start..];
    let entity = if stream.starts_with("i-") {
        Some(stream.to_string())
    } else {
        Some(text[after_time..after_host - 1].to_string())
    };
    let level = detect_level(body);
    let fields = if program.starts_with("sshd") {
        parse_sshd(body)
    } else if body.contains("No space left on device") || body.contains("Directory index full") {
        Fields::DiskFull
    } else if program == "node-health" {
        let pct = |key: &str| -> Option<f64> {
            let at = body.find(key)? + key.len();
            body[at..].split('%').next()?.parse().ok()
        };
        if body.contains("disk ") {
            Fields::Health {
                disk_pct: pct("used="),
                cpu_pct: None,
            }
        } else {
            Fields::Health {
                disk_pct: None,
                cpu_pct: pct("util="),
            }
        }
    } else {
        Fields::Plain
    };
    let level = match fields {
        Fields::DiskFull => Level::Error,
        Fields::Ssh {
            outcome: SshOutcome::Failed | SshOutcome::InvalidUser | SshOutcome::AuthFailure,
            ..
        } => Level::Warn,
        _ => level,
    };
    Some(Parsed {
        format: Format::Syslog,
        level,
        entity,
        fields,
        body_start,
    })
}

fn word_after<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let at = body.find(key)? + key.len();
    body[at..].split_whitespace().next()
}

fn parse_sshd(body: &str) -> Fields {
    let from = word_after(body, " from ").map(str::to_string);
    let (outcome, user, remote_host) = if body.starts_with("Accepted ") {
        (SshOutcome::Accepted, word_after(body, " for "), from)
    } else if body.starts_with("Failed ") {
        let user = if body.contains(" invalid user ") {
            word_after(body, " invalid user ")
        } else {
            word_after(body, " for ")
        };
        (SshOutcome::Failed, user, from)
    } else if body.starts_with("Invalid user ") {
        (
            SshOutcome::InvalidUser,
            word_after(body, "Invalid user "),
            from,
        )
    } else if body.contains("authentication failure;") {
        (
            SshOutcome::AuthFailure,
            word_after(body, " user="),
            word_after(body, "rhost=").map(str::to_string),
        )
    } else if body.starts_with("Connection closed by ") || body.starts_with("Disconnected from ") {
        // `Connection closed by invalid user admin 1.2.3.4 port 22 [preauth]`: the host is the word before "port".
        let words: Vec<&str> = body.split_whitespace().collect();
        let host = words
            .iter()
            .position(|w| *w == "port")
            .and_then(|p| p.checked_sub(1))
            .map(|p| words[p].to_string());
        (SshOutcome::Closed, None, host)
    } else {
        (SshOutcome::Other, None, from)
    };
    Fields::Ssh {
        outcome,
        user: user.map(str::to_string),
        remote_host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safe_text::SafeText;

    fn rec(group: &str, stream: &str, text: &str) -> Record {
        Record {
            arrival_ms: 0,
            ts_ms: 0,
            group: group.into(),
            stream: stream.into(),
            text: SafeText::new(text),
        }
    }

    #[test]
    fn sshd_failure_gives_user_and_host() {
        let p = parse(&rec(
            "/ec2/var/log/secure",
            "i-0123456789abcdef0",
            "Nov  3 10:01:02 ip-10-0-1-23 sshd[4251]: Failed password for invalid user admin from 45.83.12.7 port 41022 ssh2",
        ))
        .unwrap();
        assert_eq!(p.format, Format::Syslog);
        assert_eq!(p.entity.as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(
            p.fields,
            Fields::Ssh {
                outcome: SshOutcome::Failed,
                user: Some("admin".into()),
                remote_host: Some("45.83.12.7".into())
            }
        );
        let p = parse(&rec("g", "i-1", "Nov 23 10:01:02 h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=45.83.12.7  user=root")).unwrap();
        assert!(
            matches!(p.fields, Fields::Ssh { outcome: SshOutcome::AuthFailure, ref remote_host, .. } if remote_host.as_deref() == Some("45.83.12.7"))
        );
    }

    #[test]
    fn vpc_and_s3_and_trail() {
        let p = parse(&rec("/vpc/flow-logs", "eni-1", "2 123456789012 eni-0a1b2c3d 203.0.113.12 10.0.1.23 50122 3389 6 1 40 1795399200 1795399260 REJECT OK")).unwrap();
        assert!(matches!(
            p.fields,
            Fields::Vpc {
                action: FlowAction::Reject,
                dst_port: Some(3389),
                ..
            }
        ));
        let p = parse(&rec(
            "/vpc/flow-logs",
            "eni-1",
            "2 123456789012 eni-0a1b2c3d bad 10.0.1.23 50122 x 6 1 40 1795399200 1795399260 REJECT OK",
        ));
        assert!(p.is_err());
        let s3 = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be my-bucket [23/Nov/2026:10:01:02 +0000] 203.0.113.5 arn:aws:iam::123456789012:user/alice 3E57427F3EXAMPLE REST.DELETE.OBJECT reports/a.csv \"DELETE /my-bucket/reports/a.csv HTTP/1.1\" 204 - - 2662992 70 10 \"-\" \"aws-cli/2.15.0\" - Ijo3Pc= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader my-bucket.s3.us-east-1.amazonaws.com TLSv1.2 - -";
        let p = parse(&rec("s3-access-logs", "my-bucket", s3)).unwrap();
        assert!(
            matches!(p.fields, Fields::S3 { status: Some(204), ref operation, .. } if operation == "REST.DELETE.OBJECT")
        );
        let ct = r#"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob","accessKeyId":"AKIAEXAMPLE"},"eventTime":"2026-11-23T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"eu-west-3","sourceIPAddress":"1.2.3.4","errorCode":"AccessDenied"}"#;
        let p = parse(&rec("aws-cloudtrail-logs-1", "1_CloudTrail_us-east-1", ct)).unwrap();
        assert_eq!(p.entity.as_deref(), Some("AKIAEXAMPLE"));
        assert!(parse(&rec("aws-cloudtrail-logs-1", "s", "{\"eventSource\": ")).is_err());
    }

    #[test]
    fn lambda_lines() {
        let g = "/aws/lambda/orders-api";
        let p = parse(&rec(g, "s", "REPORT RequestId: 3f1c\tDuration: 6003.16 ms\tBilled Duration: 6000 ms\tMemory Size: 256 MB\tMax Memory Used: 88 MB\tInit Duration: 212.31 ms\t")).unwrap();
        assert_eq!(
            p.fields,
            Fields::LambdaReport {
                duration_ms: 6003.16,
                memory_mb: 256.0,
                max_memory_mb: 88.0,
                init_ms: Some(212.31)
            }
        );
        let p = parse(&rec(
            g,
            "s",
            "2026-11-23T10:00:00.000Z 3f1c Task timed out after 6.00 seconds",
        ))
        .unwrap();
        assert_eq!(p.fields, Fields::LambdaTimeout { seconds: 6.0 });
        let p = parse(&rec(
            g,
            "s",
            "2026-11-23T10:00:00.000Z\t3f1c\tERROR\tconnect ETIMEDOUT 10.0.3.41:5432",
        ))
        .unwrap();
        assert_eq!((p.level, p.fields), (Level::Error, Fields::LambdaApp));
        assert_eq!(p.entity.as_deref(), Some("orders-api"));
    }

    #[test]
    fn health_and_disk_full() {
        let p = parse(&rec(
            "/ec2/var/log/messages",
            "i-9",
            "Nov 23 10:01:00 ip-10-0-1-23 node-health[911]: disk / used=41% avail=11.8G",
        ))
        .unwrap();
        assert_eq!(
            p.fields,
            Fields::Health {
                disk_pct: Some(41.0),
                cpu_pct: None
            }
        );
        let p = parse(&rec("/ec2/var/log/messages", "i-9", "Nov 23 10:01:00 ip-10-0-1-23 app[1893]: ERROR write /var/log/app/app.log: No space left on device")).unwrap();
        assert_eq!(p.fields, Fields::DiskFull);
    }
}
