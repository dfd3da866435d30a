//! Reading exported logs from files: what `replay` and `parse` take.
//!
//! A file is one of:
//! - JSON lines of CloudWatch events (`timestamp`, `ingestionTime`, `logGroupName`,
//!   `logStreamName`, `message`), which `demo --write` and `aws logs filter-log-events` give;
//! - a CloudTrail delivery file, `{"Records":[...]}` (gzip already undone);
//! - a CloudWatch Logs subscription payload, `{"logGroup":..,"logEvents":[...]}`;
//! - a metric series, CSV with a `timestamp,value` header (CloudWatch metric exports, NAB files):
//!   one sample per row in a `metric:<file stem>` source, scored by the numeric-series detector;
//! - anything else: raw log lines of a source named after the file. Lines that start with
//!   whitespace continue the record before them (tracebacks and pretty-printed JSON are one event).

use crate::record::{Interner, Record};
use crate::safe_text::SafeText;
use crate::source::ExportedEvent;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FilesError {
    #[error("cannot read {path}: {source}. Check the path and permissions.")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A record and where it came from in its file.
#[derive(Debug, Clone)]
pub struct FileRecord {
    /// Line of the file where the record starts (1-based); for the records of a delivery file or
    /// payload, their position in it (1-based).
    pub line_no: usize,
    pub record: Record,
}

/// Reads every file and merges their records by arrival time (stable: equal times keep order).
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<Record>, FilesError> {
    let mut names = Interner::default();
    let mut out = Vec::new();
    for path in paths {
        out.extend(read_file(path, &mut names)?.into_iter().map(|r| r.record));
    }
    out.sort_by_key(|r| r.arrival_ms);
    Ok(out)
}

pub fn read_file(path: &Path, names: &mut Interner) -> Result<Vec<FileRecord>, FilesError> {
    let bytes = std::fs::read(path).map_err(|source| FilesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    Ok(records_of(&bytes, &file_name, names))
}

/// Splits the bytes of one file into records.
pub fn records_of(bytes: &[u8], file_name: &str, names: &mut Interner) -> Vec<FileRecord> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.first() == Some(&b'{')
        && let Ok(v) = serde_json::from_slice::<Value>(trimmed)
        && let Some(recs) = whole_file_json(&v, file_name, names)
    {
        return recs;
    }
    if let Some(recs) = metric_csv(bytes, file_name, names) {
        return recs;
    }
    lines(bytes, file_name, names)
}

/// A `timestamp,value` CSV (more columns may follow and are ignored). Timestamps are ISO 8601
/// (`2014-02-14 14:30:00` is UTC) or epoch seconds or milliseconds. A row whose time cannot be
/// read keeps its text, so the parser rejects and counts it.
fn metric_csv(bytes: &[u8], file_name: &str, names: &mut Interner) -> Option<Vec<FileRecord>> {
    let text = String::from_utf8_lossy(bytes);
    let mut rows = text.lines().enumerate();
    let (_, header) = rows.next()?;
    let mut cols = header
        .trim()
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase());
    if cols.next().as_deref() != Some("timestamp") || cols.next().as_deref() != Some("value") {
        return None;
    }
    let stem = file_name
        .rsplit_once('.')
        .map_or(file_name, |(stem, _)| stem);
    let group = names.get(&format!("{}{stem}", crate::parse::METRIC_PREFIX));
    let stream = names.get(stem);
    let mut out = Vec::new();
    for (i, row) in rows {
        if row.trim().is_empty() {
            continue;
        }
        let mut fields = row.split(',');
        let ts_text = fields.next().unwrap_or("").trim().trim_matches('"');
        let value = fields.next().unwrap_or("").trim().trim_matches('"');
        let ts = crate::timefmt::parse_iso(ts_text).or_else(|| {
            let n: f64 = ts_text.parse().ok()?;
            // Seconds until the year 5138; milliseconds after.
            Some(if n < 1e11 {
                (n * 1000.0) as i64
            } else {
                n as i64
            })
        });
        let rec = match ts {
            Some(ts) => file_record(i + 1, ts, &group, &stream, SafeText::new(value)),
            None => file_record(i + 1, 0, &group, &stream, SafeText::new(row)),
        };
        out.push(rec);
    }
    Some(out)
}

/// A record whose event and arrival times are the same (files carry no delivery time).
fn file_record(
    line_no: usize,
    ts: i64,
    group: &Arc<str>,
    stream: &Arc<str>,
    text: SafeText,
) -> FileRecord {
    FileRecord {
        line_no,
        record: Record {
            arrival_ms: ts,
            ts_ms: ts,
            group: group.clone(),
            stream: stream.clone(),
            text,
        },
    }
}

fn whole_file_json(v: &Value, file_name: &str, names: &mut Interner) -> Option<Vec<FileRecord>> {
    if let Some(events) = v.get("Records").and_then(Value::as_array) {
        let group = names.get(file_name);
        let stream = names.get("-");
        return Some(
            events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let ts = e
                        .get("eventTime")
                        .and_then(Value::as_str)
                        .and_then(crate::timefmt::parse_iso)
                        .unwrap_or(0);
                    file_record(i + 1, ts, &group, &stream, SafeText::new(&e.to_string()))
                })
                .collect(),
        );
    }
    if let Some(events) = v.get("logEvents").and_then(Value::as_array) {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or(file_name);
        let group = names.get(s("logGroup"));
        let stream = names.get(s("logStream"));
        return Some(
            events
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let ts = e.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
                    let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                    let text = SafeText::new(msg.trim_end_matches(['\n', '\r']));
                    file_record(i + 1, ts, &group, &stream, text)
                })
                .collect(),
        );
    }
    None
}

fn lines(bytes: &[u8], file_name: &str, names: &mut Interner) -> Vec<FileRecord> {
    let file_group = names.get(file_name);
    let stream = names.get("-");
    let mut out: Vec<FileRecord> = Vec::new();
    // Raw continuation lines are gathered before sanitising so the record is escaped once.
    let mut pending: Option<(usize, Vec<u8>)> = None;
    let mut last_ts = 0;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // A raw line's own timestamp times it; one without (a continuation, a bare message) takes the
    // time of the record before it.
    let flush =
        |pending: &mut Option<(usize, Vec<u8>)>, out: &mut Vec<FileRecord>, last: &mut i64| {
            if let Some((line_no, raw)) = pending.take() {
                let text = SafeText::from_bytes(&raw);
                if let Some(t) = crate::timefmt::line_time(text.as_str(), now) {
                    *last = t;
                }
                out.push(file_record(line_no, *last, &file_group, &stream, text));
            }
        };
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.trim_ascii().is_empty() {
            continue;
        }
        if line.first() == Some(&b'{')
            && let Ok(e) = serde_json::from_slice::<ExportedEvent>(line)
        {
            flush(&mut pending, &mut out, &mut last_ts);
            last_ts = e.ingestion_time.unwrap_or(e.timestamp);
            out.push(FileRecord {
                line_no: i + 1,
                record: Record {
                    arrival_ms: last_ts,
                    ts_ms: e.timestamp,
                    group: e
                        .log_group_name
                        .as_deref()
                        .map_or_else(|| file_group.clone(), |g| names.get(g)),
                    stream: e
                        .log_stream_name
                        .as_deref()
                        .map_or_else(|| stream.clone(), |s| names.get(s)),
                    text: SafeText::new(&e.message),
                },
            });
            continue;
        }
        let continues = matches!(line.first(), Some(b' ' | b'\t' | b'}' | b']'));
        match &mut pending {
            Some((_, raw)) if continues => {
                raw.push(b'\n');
                raw.extend_from_slice(line);
            }
            _ => {
                flush(&mut pending, &mut out, &mut last_ts);
                pending = Some((i + 1, line.to_vec()));
            }
        }
    }
    flush(&mut pending, &mut out, &mut last_ts);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(bytes: &[u8]) -> Vec<(usize, String)> {
        records_of(bytes, "f.log", &mut Interner::default())
            .into_iter()
            .map(|r| (r.line_no, r.record.text.into_string()))
            .collect()
    }

    #[test]
    fn delivery_files_and_payloads_are_split() {
        let ct = br#"{"Records":[{"eventTime":"2026-11-23T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"},{"eventSource":"x","eventName":"y"}]}"#;
        let recs = records_of(ct, "ct.json", &mut Interner::default());
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].record.ts_ms, 1_795_392_000_000);
        let payload = br#"{"logGroup":"/aws/lambda/f","logStream":"s","logEvents":[{"timestamp":5,"message":"START RequestId: a Version: $LATEST\n"}]}"#;
        let recs = records_of(payload, "p.json", &mut Interner::default());
        assert_eq!(&*recs[0].record.group, "/aws/lambda/f");
        assert_eq!(
            recs[0].record.text.as_str(),
            "START RequestId: a Version: $LATEST"
        );
    }

    #[test]
    fn continuation_lines_join_their_record() {
        let t = texts(b"Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\n\nnext\r\n");
        assert_eq!(t.len(), 3);
        assert_eq!(
            t[0],
            (
                1,
                "Traceback (most recent call last):\\x0a  File \"x.py\", line 1".to_string()
            )
        );
        assert_eq!(t[1].0, 3);
        assert_eq!(t[2], (5, "next".to_string()));
    }
}
