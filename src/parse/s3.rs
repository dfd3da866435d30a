//! S3 server access logs: space-separated fields where the time is in brackets, Request-URI,
//! Referer and User-Agent are quoted, any field may be `-`, and AWS appends new fields at the end
//! (so trailing fields this parser does not know are accepted).

use super::{Fields, Format, Level, ParseError, Parsed};

/// Owner (hex canonical id) then bucket then `[`: the start no other format has.
pub fn looks_like(text: &str) -> bool {
    let mut it = text.splitn(3, ' ');
    let (Some(owner), Some(_bucket), Some(rest)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    owner.len() >= 16 && owner.bytes().all(|b| b.is_ascii_hexdigit()) && rest.starts_with('[')
}

/// Splits on spaces, keeping `[...]` and `"..."` as single fields (without their delimiters).
fn fields(text: &str) -> Result<Vec<&str>, ParseError> {
    let mut out = Vec::with_capacity(26);
    let mut rest = text.trim_end();
    while !rest.is_empty() {
        let (field, after) = match rest.as_bytes()[0] {
            b'[' => {
                let end = rest
                    .find(']')
                    .ok_or(ParseError::field(Format::S3Access, "unclosed ["))?;
                (&rest[1..end], &rest[end + 1..])
            }
            b'"' => {
                let end = rest[1..]
                    .find('"')
                    .ok_or(ParseError::field(Format::S3Access, "unclosed quote"))?
                    + 1;
                (&rest[1..end], &rest[end + 1..])
            }
            _ => match rest.find(' ') {
                Some(sp) => (&rest[..sp], &rest[sp..]),
                None => (rest, ""),
            },
        };
        out.push(field);
        rest = after.trim_start_matches(' ');
    }
    Ok(out)
}

fn opt(s: &str) -> Option<String> {
    (s != "-" && !s.is_empty()).then(|| s.to_string())
}

pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    if !looks_like(text) {
        return Err(ParseError::Shape(Format::S3Access));
    }
    let f = fields(text)?;
    if f.len() < 10 {
        return Err(ParseError::field(Format::S3Access, "too few fields"));
    }
    let status = match f[9] {
        "-" => None,
        s => Some(
            s.parse::<u16>()
                .map_err(|_| ParseError::field(Format::S3Access, "http status"))?,
        ),
    };
    let bytes_sent = f.get(11).and_then(|b| b.parse().ok());
    let level = match status {
        Some(s) if s >= 500 => Level::Error,
        Some(s) if s >= 400 => Level::Warn,
        _ => Level::Info,
    };
    Ok(Parsed {
        format: Format::S3Access,
        level,
        entity: Some(f[1].to_string()),
        fields: Fields::S3 {
            bucket: f[1].to_string(),
            remote_ip: f[3].to_string(),
            requester: f[4].to_string(),
            operation: f[6].to_string(),
            key: opt(f[7]),
            status,
            error_code: f.get(10).and_then(|e| opt(e)),
            bytes_sent,
            user_agent: f.get(16).and_then(|u| opt(u)),
        },
        body_start: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::one;
    use super::*;

    #[test]
    fn full_and_short_records() {
        let full = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be DOC-EXAMPLE-BUCKET1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - \"GET /DOC-EXAMPLE-BUCKET1?versioning HTTP/1.1\" 200 - 113 - 7 - \"-\" \"S3Console/0.4\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes";
        let p = one("s3", "b", full);
        assert!(
            matches!(p.fields, Fields::S3 { status: Some(200), ref user_agent, .. } if user_agent.as_deref() == Some("S3Console/0.4"))
        );
        let batch = "36c1f05b76016b78528454e6e0c60e2b7ff7aa20c0a5e4c748276e5b0a2debd2 jsoriano-s3-test [10/Sep/2019:15:11:07 +0000] 89.160.20.156 arn:aws:iam::123456:user/test@elastic.co 8CD7A4A71E2E5C9E BATCH.DELETE.OBJECT jolokia-war-1.5.0.war - 204 - - 344017 - - - - -";
        let p = one("s3", "b", batch);
        assert!(
            matches!(p.fields, Fields::S3 { status: Some(204), ref operation, .. } if operation == "BATCH.DELETE.OBJECT")
        );
    }

    #[test]
    fn broken_records_are_errors() {
        let owner = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";
        assert!(parse(&format!("{owner} b [06/Feb/2019:00:00:38 +0000")).is_err());
        assert!(parse(&format!("{owner} b [t] ip req id op key \"uri HTTP/1.1")).is_err());
        assert!(parse(&format!("{owner} b [t] ip req id op key \"uri\" abc")).is_err());
        assert!(parse(&format!("{owner} b [t] x")).is_err());
    }
}
