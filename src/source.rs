//! Sources: where records come from, at what pace. Async, at the edge; each source feeds the
//! console over a bounded channel, so a slow console applies back-pressure instead of queueing
//! without limit.

use crate::record::{Interner, Record};
use crate::safe_text::SafeText;
use crate::sim::SimEvent;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;

/// Records per message: large enough that a fast replay costs few channel hops, small enough that
/// the console draws between batches.
const BATCH: usize = 2_000;
/// How often a paced source wakes up to deliver what is due.
const PACE_TICK: Duration = Duration::from_millis(50);

pub enum SourceMsg {
    Batch(Vec<Record>),
    /// Time passed with no events (keeps the clock, rates and incident closing moving).
    Clock(i64),
    /// The source has nothing more to send; the text says why, for the status line.
    Done(String),
    /// Something the operator should know (a failing AWS call and what to do about it).
    Notice(String),
    /// The live readers' counters, sent about once a second.
    Feeds(crate::tail::FeedStatus),
    /// The answer to a log group search from the picker.
    Groups(crate::ui::picker::GroupList),
}

/// An exported log event, with the field names CloudWatch Logs uses (FilterLogEvents, `aws logs`),
/// so exported logs from elsewhere replay too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedEvent {
    pub timestamp: i64,
    #[serde(default)]
    pub ingestion_time: Option<i64>,
    #[serde(default)]
    pub log_group_name: Option<String>,
    #[serde(default)]
    pub log_stream_name: Option<String>,
    pub message: String,
}

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("cannot write {path}: {source}. Check that the directory is writable.")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn sim_to_record(ev: &SimEvent, names: &mut Interner) -> Record {
    Record {
        arrival_ms: ev.arrival_ms,
        ts_ms: ev.ts_ms,
        group: names.get(&ev.group),
        stream: names.get(&ev.stream),
        text: SafeText::new(&ev.message),
    }
}

/// Writes events as JSON lines (one [`ExportedEvent`] per line), the format `replay` reads.
pub fn write_events(path: &Path, events: &[SimEvent]) -> Result<(), SourceError> {
    let werr = |source| SourceError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(werr)?;
    let mut out = std::io::BufWriter::new(file);
    for ev in events {
        let e = ExportedEvent {
            timestamp: ev.ts_ms,
            ingestion_time: Some(ev.arrival_ms),
            log_group_name: Some(ev.group.clone()),
            log_stream_name: Some(ev.stream.clone()),
            message: ev.message.clone(),
        };
        serde_json::to_writer(&mut out, &e).map_err(|e| werr(e.into()))?;
        out.write_all(b"\n").map_err(werr)?;
    }
    out.flush().map_err(werr)
}

/// Plays `records` into `tx`: everything that arrived before `live_from_ms` at once (history the
/// console loads), the rest paced at `speed` source-seconds per wall-second (`None`: all at once).
pub async fn play(
    records: Vec<Record>,
    live_from_ms: i64,
    speed: Option<f64>,
    tx: mpsc::Sender<SourceMsg>,
    done_text: String,
) {
    let mut it = records.into_iter().peekable();
    let mut batch = Vec::with_capacity(BATCH);
    // History first, as fast as the console takes it.
    while let Some(r) = it.next_if(|r| speed.is_none() || r.arrival_ms < live_from_ms) {
        batch.push(r);
        if batch.len() >= BATCH
            && tx
                .send(SourceMsg::Batch(std::mem::take(&mut batch)))
                .await
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty()
        && tx
            .send(SourceMsg::Batch(std::mem::take(&mut batch)))
            .await
            .is_err()
    {
        return;
    }
    if let Some(speed) = speed.filter(|s| *s > 0.0) {
        let start_wall = tokio::time::Instant::now();
        // The live clock starts at the first record still to come (a replay has no history).
        let start_src = it
            .peek()
            .map_or(live_from_ms, |r| r.arrival_ms.max(live_from_ms));
        let mut tick = tokio::time::interval(PACE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while it.peek().is_some() {
            tick.tick().await;
            let now_src = start_src + (start_wall.elapsed().as_secs_f64() * 1000.0 * speed) as i64;
            while let Some(r) = it.next_if(|r| r.arrival_ms <= now_src) {
                batch.push(r);
                if batch.len() >= BATCH {
                    break;
                }
            }
            let msg = if batch.is_empty() {
                SourceMsg::Clock(now_src)
            } else {
                SourceMsg::Batch(std::mem::take(&mut batch))
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    }
    let _ = tx.send(SourceMsg::Done(done_text)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_round_trips_and_raw_lines_are_kept_inert() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let ev = SimEvent {
            arrival_ms: 2_000,
            ts_ms: 1_000,
            group: "/aws/lambda/f".into(),
            stream: "s".into(),
            message: "START RequestId: x Version: $LATEST".into(),
        };
        write_events(&p, std::slice::from_ref(&ev)).unwrap();
        let raw = dir.path().join("raw.log");
        std::fs::write(&raw, b"hostile \x1b[31m\xff line\n").unwrap();
        let recs = crate::files::read_files(&[p, raw]).unwrap();
        assert_eq!(recs.len(), 2);
        let r = recs.iter().find(|r| &*r.group == "/aws/lambda/f").unwrap();
        assert_eq!((r.arrival_ms, r.ts_ms, &*r.stream), (2_000, 1_000, "s"));
        let h = recs.iter().find(|r| &*r.group == "raw.log").unwrap();
        assert_eq!(h.text.as_str(), "hostile \\x1b[31m\\xff line");
    }

    #[tokio::test(start_paused = true)]
    async fn paced_replay_starts_at_its_first_record() {
        let recs: Vec<Record> = (0..3)
            .map(|i| Record {
                arrival_ms: 1_000_000 + i * 10_000,
                ts_ms: 1_000_000 + i * 10_000,
                group: "g".into(),
                stream: "s".into(),
                text: SafeText::new("line"),
            })
            .collect();
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(play(recs, i64::MIN, Some(100.0), tx, "done".into()));
        let mut got = 0;
        while let Some(msg) = rx.recv().await {
            match msg {
                SourceMsg::Batch(b) => got += b.len(),
                SourceMsg::Clock(_)
                | SourceMsg::Notice(_)
                | SourceMsg::Feeds(_)
                | SourceMsg::Groups(_) => {}
                SourceMsg::Done(_) => break,
            }
        }
        assert_eq!(got, 3);
    }
}
