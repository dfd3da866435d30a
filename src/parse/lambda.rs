//! Lambda output in CloudWatch Logs (`/aws/lambda/<function>`): platform lines (INIT_START,
//! START, END, REPORT with Init Duration, XRAY and Status, `Task timed out`) and application lines
//! in the runtimes' text formats (Node.js `ts\tid\tLEVEL\tmsg`, Python `[LEVEL]\tts\tid\tmsg`, bare
//! print output, error JSON). Every line of a Lambda group is Lambda output, so this parser claims
//! any text there; what it cannot type is an application line.

use super::{Fields, Format, Level, Parsed, detect_level};

/// Lines that only Lambda writes, for sources whose group name does not say Lambda.
pub fn looks_like(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("START RequestId: ")
        || text.starts_with("END RequestId: ")
        || text.starts_with("REPORT RequestId: ")
        || text.starts_with("INIT_START ")
}

fn request_id(rest: &str) -> String {
    rest.split_whitespace().next().unwrap_or("").to_string()
}

pub fn parse(text: &str, function: &str) -> Parsed {
    let mk = |fields, level, body_start| Parsed {
        format: Format::Lambda,
        level,
        entity: Some(function.to_string()),
        fields,
        body_start,
    };
    // Platform lines may arrive indented when copied from documentation or consoles.
    let t = text.trim_start();
    let lead = text.len() - t.len();
    if let Some(rest) = t.strip_prefix("INIT_START") {
        let runtime = rest
            .split("Runtime Version: ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string);
        return mk(Fields::LambdaInit { runtime }, Level::Info, lead);
    }
    if let Some(rest) = t.strip_prefix("START RequestId:") {
        return mk(
            Fields::LambdaStart {
                request_id: request_id(rest),
            },
            Level::Info,
            lead,
        );
    }
    if let Some(rest) = t.strip_prefix("END RequestId:") {
        return mk(
            Fields::LambdaEnd {
                request_id: request_id(rest),
            },
            Level::Debug,
            lead,
        );
    }
    if let Some(rest) = t.strip_prefix("REPORT RequestId:") {
        let num = |key: &str| -> Option<f64> {
            let at = rest.find(key)? + key.len();
            rest[at..].split_whitespace().next()?.parse().ok()
        };
        let status = rest
            .find("Status: ")
            .and_then(|at| rest[at + 8..].split_whitespace().next())
            .map(str::to_string);
        let level = if status.as_deref().is_some_and(|s| s != "success") {
            Level::Error
        } else {
            Level::Info
        };
        return mk(
            Fields::LambdaReport {
                request_id: request_id(rest),
                duration_ms: num("\tDuration:")
                    .or_else(|| num(" Duration:"))
                    .unwrap_or(0.0),
                billed_ms: num("Billed Duration:"),
                memory_mb: num("Memory Size:").unwrap_or(0.0),
                max_memory_mb: num("Max Memory Used:").unwrap_or(0.0),
                init_ms: num("Init Duration:"),
                status,
            },
            level,
            lead,
        );
    }
    if let Some(at) = t.find("Task timed out after ") {
        let seconds = t[at + 21..]
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        // `<ts> <request id> Task timed out after 3.00 seconds`
        let request_id = t[..at].split_whitespace().nth(1).map(str::to_string);
        return mk(
            Fields::LambdaTimeout {
                request_id,
                seconds,
            },
            Level::Error,
            lead + at,
        );
    }
    // Node.js: `<ts>\t<request id>\t<LEVEL>\t<message>`; Python: `[LEVEL]\t<ts>\t<id>\t<message>`.
    let parts: Vec<&str> = t.splitn(4, '\t').collect();
    let (level, request_id, body_start) = if parts.len() == 4 {
        let prefix = parts[0].len() + parts[1].len() + parts[2].len() + 3;
        if parts[0].starts_with('[') {
            (detect_level(parts[0]), Some(parts[2]), prefix)
        } else {
            (detect_level(parts[2]), Some(parts[1]), prefix)
        }
    } else {
        (detect_level(t), None, 0)
    };
    let error_type = t
        .find("\"errorType\"")
        .and_then(|at| t[at + 11..].split('"').nth(1))
        .map(str::to_string);
    let level = if error_type.is_some() {
        Level::Error
    } else {
        level
    };
    mk(
        Fields::LambdaApp {
            request_id: request_id.map(str::to_string),
            error_type,
        },
        level,
        (lead + body_start).min(text.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;
    use super::*;

    const G: &str = "/aws/lambda/orders-api";

    #[test]
    fn platform_lines() {
        let p = one(
            G,
            "s",
            "REPORT RequestId: 3f1c\tDuration: 6003.16 ms\tBilled Duration: 6000 ms\tMemory Size: 256 MB\tMax Memory Used: 88 MB\tInit Duration: 212.31 ms\t",
        );
        assert_eq!(
            p.fields,
            Fields::LambdaReport {
                request_id: "3f1c".into(),
                duration_ms: 6003.16,
                billed_ms: Some(6000.0),
                memory_mb: 256.0,
                max_memory_mb: 88.0,
                init_ms: Some(212.31),
                status: None
            }
        );
        let p = one(
            G,
            "s",
            "2026-11-23T10:00:00.000Z 3f1c Task timed out after 6.00 seconds",
        );
        assert_eq!(
            p.fields,
            Fields::LambdaTimeout {
                request_id: Some("3f1c".into()),
                seconds: 6.0
            }
        );
        let p = one(G, "s", "START RequestId: d1cf Version: $LATEST");
        assert_eq!(
            p.fields,
            Fields::LambdaStart {
                request_id: "d1cf".into()
            }
        );
    }

    #[test]
    fn app_lines() {
        let p = one(
            G,
            "s",
            "2026-11-23T10:00:00.000Z\t3f1c\tERROR\tconnect ETIMEDOUT 10.0.3.41:5432",
        );
        assert_eq!(p.level, Level::Error);
        assert_eq!(p.entity.as_deref(), Some("orders-api"));
        assert_eq!(
            &"2026-11-23T10:00:00.000Z\t3f1c\tERROR\tconnect ETIMEDOUT 10.0.3.41:5432"
                [p.body_start..],
            "connect ETIMEDOUT 10.0.3.41:5432"
        );
        let p = one(G, "s", "[ERROR]\t2026-11-23T10:00:00.000Z\t3f1c\tboom");
        assert!(
            matches!(p.fields, Fields::LambdaApp { request_id: Some(ref r), .. } if r == "3f1c")
        );
        let p = one(
            G,
            "s",
            "{\"errorType\": \"Runtime.ImportModuleError\", \"errorMessage\": \"x\"}",
        );
        assert!(
            matches!(p.fields, Fields::LambdaApp { error_type: Some(ref e), .. } if e == "Runtime.ImportModuleError")
        );
        assert_eq!(p.level, Level::Error);
        assert_eq!(one(G, "s", "plain print output").format, Format::Lambda);
    }
}
