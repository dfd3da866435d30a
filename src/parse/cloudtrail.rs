//! CloudTrail events, one JSON object each: as CloudWatch Logs delivers them, as `LookupEvents`
//! returns them, or as the records of an S3 delivery file (which the file reader splits). Optional
//! fields may be missing; `eventName` and `eventSource` may not.

use super::{Fields, Format, Level, ParseError, Parsed, TrailEvent};
use serde_json::Value;

pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
    let mut parsed = event(&v)?;
    if let Fields::Trail(t) = &mut parsed.fields {
        t.raw = v;
    }
    Ok(parsed)
}

pub fn event(v: &Value) -> Result<Parsed, ParseError> {
    if !v.is_object() {
        return Err(ParseError::field(Format::CloudTrail, "not an object"));
    }
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let null = Value::Null;
    // Insights events carry the call they are about inside `insightDetails`.
    let insight = v.get("insightDetails").unwrap_or(&null);
    let event_name = s(v, "eventName")
        .or_else(|| s(insight, "eventName"))
        .ok_or(ParseError::field(Format::CloudTrail, "eventName"))?;
    let event_source = s(v, "eventSource")
        .or_else(|| s(insight, "eventSource"))
        .ok_or(ParseError::field(Format::CloudTrail, "eventSource"))?;
    let uid = v.get("userIdentity").unwrap_or(&null);
    let principal_arn = s(uid, "arn")
        .or_else(|| s(uid, "invokedBy"))
        .or_else(|| s(uid, "principalId"))
        .or_else(|| s(uid, "type"))
        .unwrap_or_else(|| "-".into());
    let access_key = s(uid, "accessKeyId").filter(|k| !k.is_empty());
    let error_code = s(v, "errorCode");
    let mfa = uid
        .pointer("/sessionContext/attributes/mfaAuthenticated")
        .and_then(Value::as_str)
        .map(|m| m == "true")
        .or_else(|| {
            v.pointer("/additionalEventData/MFAUsed")
                .and_then(Value::as_str)
                .map(|m| m == "Yes")
        });
    let ev = TrailEvent {
        event_time: s(v, "eventTime").unwrap_or_default(),
        event_source,
        event_name,
        region: s(v, "awsRegion").unwrap_or_default(),
        principal_arn,
        identity_type: s(uid, "type").unwrap_or_default(),
        access_key: access_key.clone(),
        source_ip: s(v, "sourceIPAddress").unwrap_or_default(),
        user_agent: s(v, "userAgent").unwrap_or_default(),
        error_code: error_code.clone(),
        mfa,
        raw: Value::Null,
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

#[cfg(test)]
mod tests {
    use super::super::tests::one;
    use super::*;

    #[test]
    fn events_and_missing_fields() {
        let ct = r#"{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob","accessKeyId":"AKIAEXAMPLE"},"eventTime":"2026-11-23T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"eu-west-3","sourceIPAddress":"1.2.3.4","errorCode":"AccessDenied"}"#;
        let p = one("aws-cloudtrail-logs-1", "1_CloudTrail_us-east-1", ct);
        assert_eq!(p.entity.as_deref(), Some("AKIAEXAMPLE"));
        assert_eq!(p.level, Level::Warn);
        let svc = r#"{"eventSource":"autoscaling.amazonaws.com","eventName":"RunInstances","userIdentity":{"type":"AWSService","invokedBy":"autoscaling.amazonaws.com"}}"#;
        let p = one("ct", "s", svc);
        assert_eq!(p.entity.as_deref(), Some("autoscaling.amazonaws.com"));
        assert!(parse("{\"eventSource\": ").is_err());
        assert!(parse("{\"eventSource\": \"x\"}").is_err());
        assert!(parse("[1,2]").is_err());
    }
}
