//! Generic JSON lines (structured application logs, Lambda's JSON log format, RDS and other
//! services' JSON): level from the usual keys, the message from `message`/`msg`.

use super::{Fields, Format, Level, ParseError, Parsed, detect_level};
use serde_json::Value;

const LEVEL_KEYS: [&str; 5] = ["level", "severity", "status", "lvl", "log.level"];
const MESSAGE_KEYS: [&str; 3] = ["message", "msg", "log"];

pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or(ParseError::field(Format::Json, "not an object"))?;
    let level = LEVEL_KEYS
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map_or_else(|| detect_level(text).min(Level::Info), detect_level_word);
    let message = MESSAGE_KEYS
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    Ok(Parsed {
        format: Format::Json,
        level,
        entity: None,
        fields: Fields::Json { message },
        body_start: 0,
    })
}

fn detect_level_word(w: &str) -> Level {
    match w.to_ascii_lowercase().as_str() {
        "error" | "err" | "fatal" | "critical" | "crit" | "alert" | "emerg" | "emergency" => {
            Level::Error
        }
        "warn" | "warning" => Level::Warn,
        "debug" | "trace" => Level::Debug,
        _ => Level::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_messages() {
        let p = parse(r#"{"status":"error","message":"db down"}"#).unwrap();
        assert_eq!(
            (p.level, p.fields),
            (
                Level::Error,
                Fields::Json {
                    message: Some("db down".into())
                }
            )
        );
        assert_eq!(parse(r#"{"a":1}"#).unwrap().level, Level::Info);
        assert!(parse("[1]").is_err());
        assert!(parse("{").is_err());
    }
}
