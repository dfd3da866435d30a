//! VPC Flow Logs: the default version-2 format (14 fields) and custom formats, which list any
//! fields in any order and must be read by name. The format comes from the header line of
//! S3-delivered files, from configuration, or (for CloudWatch delivery, where there is no header)
//! from `DescribeFlowLogs`; a line is never guessed from its field count alone.

use super::{Fields, FlowAction, Format, Level, ParseError, Parsed};

/// Field names every version defines, for recognising header lines.
const KNOWN: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
];

const DEFAULT_V2: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

/// The ordered field names of a flow log format, and where the fields the parser reads sit.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowFormat {
    names: Vec<String>,
    at: Positions,
}

/// Position of each field [`parse`] reads, resolved once per format rather than by name on
/// every line.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Positions {
    action: Option<usize>,
    log_status: Option<usize>,
    protocol: Option<usize>,
    interface: Option<usize>,
    src: Option<usize>,
    dst: Option<usize>,
    src_port: Option<usize>,
    dst_port: Option<usize>,
    instance: Option<usize>,
}

impl Default for FlowFormat {
    fn default() -> Self {
        Self::default_v2().clone()
    }
}

/// A field name of a format spec: `srcaddr` or `${srcaddr}`.
fn field_name(token: &str) -> &str {
    token.trim_start_matches("${").trim_end_matches('}')
}

impl FlowFormat {
    /// The default version-2 format, built once: most flow log groups use it.
    pub fn default_v2() -> &'static FlowFormat {
        static V2: std::sync::OnceLock<FlowFormat> = std::sync::OnceLock::new();
        V2.get_or_init(|| {
            FlowFormat::parse(DEFAULT_V2).unwrap_or_else(|| FlowFormat::from_names(Vec::new()))
        })
    }

    fn from_names(names: Vec<String>) -> FlowFormat {
        let find = |name: &str| names.iter().position(|n| n == name);
        let at = Positions {
            action: find("action"),
            log_status: find("log-status"),
            protocol: find("protocol"),
            interface: find("interface-id"),
            src: find("srcaddr"),
            dst: find("dstaddr"),
            src_port: find("srcport"),
            dst_port: find("dstport"),
            instance: find("instance-id"),
        };
        FlowFormat { names, at }
    }

    /// From `version srcaddr ...` or `${version} ${srcaddr} ...` (the `LogFormat` of the API).
    pub fn parse(spec: &str) -> Option<FlowFormat> {
        // Checked before anything is allocated: this runs on every line whose format is not
        // known yet, and nearly none of them is a header.
        let mut fields = spec.split_whitespace().map(field_name).peekable();
        if fields.peek().is_none() || !fields.all(|n| KNOWN.contains(&n)) {
            return None;
        }
        // A field named twice is no format AWS writes; refusing it also bounds a format at
        // `KNOWN.len()` fields, the most a line can be read with.
        let mut seen = [false; KNOWN.len()];
        for n in spec.split_whitespace().map(field_name) {
            let i = KNOWN.iter().position(|k| *k == n)?;
            if std::mem::replace(&mut seen[i], true) {
                return None;
            }
        }
        let names = spec
            .split_whitespace()
            .map(|n| field_name(n).to_string())
            .collect();
        Some(FlowFormat::from_names(names))
    }

    /// A header line of an S3-delivered file: only field names.
    pub fn from_header(line: &str) -> Option<FlowFormat> {
        Self::parse(line).filter(|f| f.names.len() >= 2)
    }
}

/// A default-format record: `2 <account> eni-... ` with 14 fields.
pub fn looks_like_default(text: &str) -> bool {
    let mut it = text.split(' ');
    it.next() == Some("2") && {
        let _account = it.next();
        it.next().is_some_and(|i| i.starts_with("eni-")) && text.split(' ').count() == 14
    }
}

/// Most fields a flow log line can have (every field a version defines).
const MAX_FIELDS: usize = KNOWN.len();

pub fn parse(text: &str, format: &FlowFormat) -> Result<Parsed, ParseError> {
    let mut values = [""; MAX_FIELDS];
    let mut n = 0;
    for v in text.split_whitespace() {
        if n == values.len() {
            n += 1;
            break;
        }
        values[n] = v;
        n += 1;
    }
    if n != format.names.len() {
        return Err(ParseError::field(
            Format::VpcFlow,
            "field count differs from the format",
        ));
    }
    let get = |at: Option<usize>| {
        at.and_then(|i| values.get(i).copied())
            .filter(|v| *v != "-")
    };
    let at = format.at;
    let num = |i: Option<usize>, name: &'static str| -> Result<Option<u16>, ParseError> {
        get(i)
            .map(|v| {
                v.parse()
                    .map_err(|_| ParseError::field(Format::VpcFlow, name))
            })
            .transpose()
    };
    let action = match get(at.action) {
        Some("ACCEPT") => FlowAction::Accept,
        Some("REJECT") => FlowAction::Reject,
        None => FlowAction::None,
        Some(_) => return Err(ParseError::field(Format::VpcFlow, "action")),
    };
    let log_status = get(at.log_status).map(str::to_string);
    if let Some(s) = &log_status
        && !matches!(s.as_str(), "OK" | "NODATA" | "SKIPDATA")
    {
        return Err(ParseError::field(Format::VpcFlow, "log-status"));
    }
    let protocol = get(at.protocol)
        .map(|v| {
            v.parse()
                .map_err(|_| ParseError::field(Format::VpcFlow, "protocol"))
        })
        .transpose()?;
    let interface = get(at.interface).map(str::to_string);
    Ok(Parsed {
        format: Format::VpcFlow,
        level: Level::Info,
        entity: interface.clone(),
        fields: Fields::Vpc {
            interface,
            src: get(at.src).map(str::to_string),
            dst: get(at.dst).map(str::to_string),
            src_port: num(at.src_port, "srcport")?,
            dst_port: num(at.dst_port, "dstport")?,
            protocol,
            action,
            log_status,
            instance_id: get(at.instance).map(str::to_string),
        },
        body_start: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Parser;
    use super::super::tests::{one, rec};
    use super::*;

    #[test]
    fn default_format() {
        let p = one(
            "/vpc/flow-logs",
            "eni-1",
            "2 123456789012 eni-0a1b2c3d 203.0.113.12 10.0.1.23 50122 3389 6 1 40 1795399200 1795399260 REJECT OK",
        );
        assert!(matches!(
            p.fields,
            Fields::Vpc {
                action: FlowAction::Reject,
                dst_port: Some(3389),
                ..
            }
        ));
        let p = one(
            "/vpc/flow-logs",
            "eni-1",
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
        );
        assert!(
            matches!(p.fields, Fields::Vpc { action: FlowAction::None, ref log_status, .. } if log_status.as_deref() == Some("NODATA"))
        );
        assert!(
            parse(
                "2 1 eni-1 a b c x 6 1 40 1 2 REJECT OK",
                &FlowFormat::default()
            )
            .is_err()
        );
        assert!(
            parse(
                "2 1 eni-1 a b 1 2 6 1 40 1 2 MAYBE OK",
                &FlowFormat::default()
            )
            .is_err()
        );
    }

    #[test]
    fn custom_format_from_header_or_config() {
        let mut p = Parser::new();
        let g = "flows";
        assert!(p.parse(&rec(g, "s", "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status")).unwrap().is_none());
        let line = "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 52.213.180.42 10.0.0.62 43416 5001 52.213.180.42 10.0.0.62 6 568 8 1566848875 1566848933 ACCEPT 2 OK";
        let r = p.parse(&rec(g, "s", line)).unwrap().unwrap();
        assert!(
            matches!(r.fields, Fields::Vpc { dst_port: Some(5001), ref instance_id, .. } if instance_id.as_deref() == Some("i-01234567890123456"))
        );
        let fmt = FlowFormat::parse("${version} ${srcaddr} ${dstaddr} ${action}").unwrap();
        let mut q = Parser::new();
        q.set_flow_format("other", fmt);
        let r = q
            .parse(&rec("other", "s", "5 10.0.0.1 10.0.0.2 REJECT"))
            .unwrap()
            .unwrap();
        assert!(matches!(
            r.fields,
            Fields::Vpc {
                action: FlowAction::Reject,
                ..
            }
        ));
        assert!(FlowFormat::parse("version bogus-field").is_none());
        assert!(
            FlowFormat::parse("version srcaddr srcaddr action").is_none(),
            "a field named twice is no format"
        );
        // A line with more fields than any format can have is refused, not truncated.
        let long = vec!["x"; 60].join(" ");
        assert!(parse(&long, FlowFormat::default_v2()).is_err());
    }
}
