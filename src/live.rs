//! Live CloudWatch Logs tailing, push path: `StartLiveTail` sessions of up to ten groups each.
//!
//! Live Tail pushes one update a second with at most 500 events; above that it sends a sample and
//! says so (`sessionMetadata.sampled`). Its events carry no `eventId`, so events are recognised by
//! content (stream, timestamp, message) and counted as a multiset: two identical lines are two
//! events, and the same event seen by Live Tail and by a backfill is one. Everything Live Tail
//! cannot promise is filled in with `FilterLogEvents` through the shared rate limiter:
//! - the history before the session starts (`--since`);
//! - the gap after any disconnect, stream error or the 3-hour session timeout, from the newest
//!   event seen minus a look-back;
//! - the intervals Live Tail sampled, unless `--no-backfill` (then the console says events were
//!   sampled away).
//!
//! When Live Tail is refused before any session worked (no permission, not offered by the
//! endpoint) the caller falls back to polling; once a session has worked, Live Tail is retried. Live Tail is billed per session-minute, so the minutes used are counted and shown.

use crate::record::{Interner, Record};
use crate::safe_text::SafeText;
use crate::source::SourceMsg;
use crate::tail::{Feed, GroupCounters, LOOKBACK_MS, RangeWalk, filtered_record};
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::{LiveTailSessionLogEvent, StartLiveTailResponseStream};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Groups one Live Tail session may carry.
pub const GROUPS_PER_SESSION: usize = 10;
/// While updates are sampled, backfill at most this often (each backfill walks FilterLogEvents).
const SAMPLED_BACKFILL_EVERY: Duration = Duration::from_secs(5);
/// Extra event time covered around a sampled interval: events are stamped before they are
/// ingested, so a busy second's events can carry slightly older timestamps.
const SAMPLED_MARGIN_MS: i64 = 60_000;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Consecutive failures to start a session after which polling takes over.
const START_ATTEMPTS: u32 = 3;

/// A log group as Live Tail wants it (by ARN) and as FilterLogEvents and the console name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGroup {
    pub name: String,
    pub arn: String,
}

/// Live Tail minutes this process has used, as CloudWatch bills them (per started minute of each
/// session).
#[derive(Debug, Default)]
pub struct LiveUsage {
    inner: Mutex<UsageInner>,
}

#[derive(Debug, Default)]
struct UsageInner {
    closed_minutes: u64,
    open: HashMap<u64, Instant>,
    next_id: u64,
}

impl LiveUsage {
    fn open(&self) -> u64 {
        let Ok(mut u) = self.inner.lock() else {
            return 0;
        };
        u.next_id += 1;
        let id = u.next_id;
        u.open.insert(id, Instant::now());
        id
    }

    fn close(&self, id: u64) {
        if let Ok(mut u) = self.inner.lock()
            && let Some(t) = u.open.remove(&id)
        {
            u.closed_minutes += billed_minutes(t.elapsed());
        }
    }

    /// Minutes used so far, open sessions included.
    pub fn minutes(&self) -> u64 {
        self.inner.lock().map_or(0, |u| {
            u.closed_minutes
                + u.open
                    .values()
                    .map(|t| billed_minutes(t.elapsed()))
                    .sum::<u64>()
        })
    }
}

fn billed_minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

/// Events already delivered, by content, with how many copies came from each path, so Live Tail
/// and FilterLogEvents together deliver every event exactly once.
/// An event by content: stream, timestamp, message.
type EventKey = (Arc<str>, i64, String);

#[derive(Debug, Default)]
struct Delivered {
    by_key: HashMap<EventKey, Copies>,
    order: VecDeque<(i64, EventKey)>,
}

#[derive(Debug, Default)]
struct Copies {
    live: u32,
    ids: HashSet<String>,
}

impl Delivered {
    fn key(stream: &Arc<str>, ts: i64, text: &str) -> EventKey {
        (stream.clone(), ts, text.to_string())
    }

    fn slot(&mut self, key: EventKey) -> &mut Copies {
        let ts = key.1;
        if !self.by_key.contains_key(&key) {
            self.order.push_back((ts, key.clone()));
        }
        self.by_key.entry(key).or_default()
    }

    /// A Live Tail event: new unless a backfill already delivered more copies than Live Tail has.
    fn live(&mut self, stream: &Arc<str>, ts: i64, text: &str) -> bool {
        let slot = self.slot(Self::key(stream, ts, text));
        let new = slot.ids.len() <= slot.live as usize;
        slot.live += 1;
        new
    }

    /// A FilterLogEvents event: new unless its id was seen or Live Tail delivered this copy.
    fn filtered(&mut self, stream: &Arc<str>, ts: i64, text: &str, id: &str) -> bool {
        let slot = self.slot(Self::key(stream, ts, text));
        if slot.ids.contains(id) {
            return false;
        }
        let new = slot.ids.len() >= slot.live as usize;
        slot.ids.insert(id.to_string());
        new
    }

    fn forget_before(&mut self, ts: i64) {
        while self.order.front().is_some_and(|(t, _)| *t < ts) {
            if let Some((_, key)) = self.order.pop_front() {
                self.by_key.remove(&key);
            }
        }
    }
}

/// Per-group state of one session.
struct Tailed {
    group: LiveGroup,
    name: Arc<str>,
    delivered: Delivered,
    /// Newest event time delivered; backfills after a gap start here minus the look-back.
    newest_ms: i64,
    /// Start of an event-time range still owed by a backfill (sampled, or a failed backfill).
    owed_from: Option<i64>,
    /// The backfill walk a failure cut short, resumed from the page that failed while it still
    /// covers what is owed.
    walk: Option<RangeWalk>,
}

/// Why a session stopped for good.
#[derive(Debug, PartialEq, Eq)]
pub enum LiveEnd {
    /// The console is gone.
    Closed,
    /// Live Tail is not available here; the text says why. Poll these groups instead.
    Unavailable(String),
}

/// Runs one Live Tail session for up to [`GROUPS_PER_SESSION`] groups until the console closes,
/// reconnecting as needed.
pub async fn live_session(
    feed: Feed,
    groups: Vec<LiveGroup>,
    since_ms: i64,
    backfill: bool,
    usage: Arc<LiveUsage>,
) -> LiveEnd {
    let mut names = Interner::default();
    let mut tailed: Vec<Tailed> = groups
        .into_iter()
        .map(|g| {
            feed.count(&g.name, |c| c.mode = "live");
            Tailed {
                name: names.get(&g.name),
                group: g,
                delivered: Delivered::default(),
                newest_ms: since_ms,
                owed_from: None,
                walk: None,
            }
        })
        .collect();
    let label = tailed
        .first()
        .map(|t| t.group.name.clone())
        .unwrap_or_default();
    let mut backoff = Duration::from_secs(1);
    let mut start_failures = 0;
    let mut first = true;
    loop {
        let started = feed
            .client
            .start_live_tail()
            .set_log_group_identifiers(Some(tailed.iter().map(|t| t.group.arn.clone()).collect()))
            .send()
            .await;
        let mut stream = match started {
            Ok(out) => {
                start_failures = 0;
                for t in &tailed {
                    feed.count(&t.group.name, GroupCounters::round_worked);
                }
                out.response_stream
            }
            Err(e) => {
                let code = e.code().unwrap_or("").to_string();
                let msg = feed.failed(&label, "StartLiveTail", &e);
                start_failures += 1;
                let refused = matches!(
                    code.as_str(),
                    "AccessDeniedException"
                        | "InvalidOperationException"
                        | "UnknownOperationException"
                        | "InvalidParameterException"
                        | "ResourceNotFoundException"
                );
                // Polling takes over only before any session worked: afterwards the events already
                // delivered are known only to this session's de-duplication, so handing over would
                // repeat them. A Live Tail that worked once is retried until it works again.
                if first && (refused || start_failures >= START_ATTEMPTS) {
                    return LiveEnd::Unavailable(msg);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let session = usage.open();
        let opened_ms = crate::ui::now_ms();
        // History before the first session and the gap before a reconnect: the session only
        // pushes what is ingested from now on.
        for t in &mut tailed {
            let from = if first {
                since_ms
            } else {
                (t.newest_ms - LOOKBACK_MS).max(since_ms)
            };
            t.owed_from = Some(t.owed_from.map_or(from, |o| o.min(from)));
        }
        first = false;
        if !backfill_owed(&feed, &mut tailed, &mut names).await {
            usage.close(session);
            return LiveEnd::Closed;
        }
        // The server buffers only ten updates while a long backfill runs; what it may have
        // dropped meanwhile is owed, and cheap to check soon.
        for t in &mut tailed {
            let from = opened_ms - SAMPLED_MARGIN_MS;
            t.owed_from = Some(t.owed_from.map_or(from, |o| o.min(from)));
        }
        let mut last_backfill = Instant::now();
        let ended = loop {
            match stream.recv().await {
                Ok(Some(StartLiveTailResponseStream::SessionUpdate(update))) => {
                    backoff = Duration::from_secs(1);
                    let sampled = update.session_metadata().is_some_and(|m| m.sampled());
                    if !deliver_live(
                        &feed,
                        &mut tailed,
                        &mut names,
                        update.session_results(),
                        sampled,
                        backfill,
                    )
                    .await
                    {
                        usage.close(session);
                        return LiveEnd::Closed;
                    }
                    if last_backfill.elapsed() >= SAMPLED_BACKFILL_EVERY {
                        last_backfill = Instant::now();
                        if !backfill_owed(&feed, &mut tailed, &mut names).await {
                            usage.close(session);
                            return LiveEnd::Closed;
                        }
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break None,
                Err(e) => {
                    let timeout = matches!(
                        e.as_service_error(),
                        Some(aws_sdk_cloudwatchlogs::types::error::StartLiveTailResponseStreamError::SessionTimeoutException(_))
                    );
                    // The 3-hour limit is routine; anything else is shown.
                    break (!timeout).then(|| {
                        let msg = format!("Live Tail stream: {}", crate::aws::error_text(&e));
                        tracing::warn!(group = %label, "{msg}");
                        msg
                    });
                }
            }
        };
        usage.close(session);
        if let Some(msg) = ended {
            for t in &tailed {
                feed.count(&t.group.name, |c| c.call_failed(msg.clone()));
            }
            let _ = feed
                .tx
                .try_send(SourceMsg::Notice(format!("{label}: {msg}; reconnecting")));
        }
        // Every session is billed at least a minute: a stream that keeps ending at once is
        // retried more and more slowly (an update resets the pause).
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Delivers one update's events, group by group. False when the console is gone.
async fn deliver_live(
    feed: &Feed,
    tailed: &mut [Tailed],
    names: &mut Interner,
    events: &[LiveTailSessionLogEvent],
    sampled: bool,
    backfill: bool,
) -> bool {
    let mut per_group: Vec<Vec<Record>> = vec![Vec::new(); tailed.len()];
    let mut oldest: Vec<Option<i64>> = vec![None; tailed.len()];
    for ev in events {
        let Some(ts) = ev.timestamp() else { continue };
        let ident = ev.log_group_identifier().unwrap_or("");
        // The identifier is the group's ARN (or its name, from some endpoints).
        let Some(i) = tailed.iter().position(|t| {
            t.group.arn == ident || t.group.name == ident || arn_names(ident, &t.group.name)
        }) else {
            continue;
        };
        oldest[i] = Some(oldest[i].map_or(ts, |o| o.min(ts)));
        let t = &mut tailed[i];
        let stream = names.get(ev.log_stream_name().unwrap_or("-"));
        let text = ev.message().unwrap_or("");
        if !t.delivered.live(&stream, ts, text) {
            feed.count(&t.group.name, |c| c.duplicates_dropped += 1);
            continue;
        }
        t.newest_ms = t.newest_ms.max(ts);
        per_group[i].push(Record {
            arrival_ms: ev.ingestion_time().unwrap_or(ts),
            ts_ms: ts,
            group: t.name.clone(),
            stream,
            text: SafeText::new(text),
        });
    }
    for (i, batch) in per_group.into_iter().enumerate() {
        let t = &mut tailed[i];
        if sampled {
            feed.count(&t.group.name, |c| c.sampled_updates += 1);
            if backfill && let Some(o) = oldest[i] {
                let from = o - SAMPLED_MARGIN_MS;
                t.owed_from = Some(t.owed_from.map_or(from, |s| s.min(from)));
            }
        }
        if !feed.deliver(&t.group.name, batch, false).await {
            return false;
        }
        t.delivered.forget_before(t.newest_ms - 2 * LOOKBACK_MS);
    }
    if sampled {
        let note = if backfill {
            "Live Tail is sampling (over 500 events/s); the rest arrives late by backfill"
        } else {
            "Live Tail is sampling (over 500 events/s) and --no-backfill is set: events are being skipped"
        };
        let _ = feed.tx.try_send(SourceMsg::Notice(note.to_string()));
    }
    true
}

/// `arn:aws:logs:REGION:ACCOUNT:log-group:NAME` (with or without `:*`) names `name`.
fn arn_names(arn: &str, name: &str) -> bool {
    arn.trim_end_matches(":*")
        .split_once(":log-group:")
        .is_some_and(|(_, n)| n == name)
}

/// Backfills every group with a range owed. False when the console is gone.
async fn backfill_owed(feed: &Feed, tailed: &mut [Tailed], names: &mut Interner) -> bool {
    for t in tailed.iter_mut() {
        let Some(from) = t.owed_from else { continue };
        match backfill_range(feed, t, names, from).await {
            Some(true) => t.owed_from = None,
            // Failed: kept pending, retried at the next chance.
            Some(false) => {}
            None => return false,
        }
    }
    true
}

/// Delivers the events since `from` not yet delivered. `Some(false)` when the call failed,
/// `None` when the console is gone.
async fn backfill_range(
    feed: &Feed,
    t: &mut Tailed,
    names: &mut Interner,
    from: i64,
) -> Option<bool> {
    // A walk from a later start would miss part of what is owed now.
    if t.walk.as_ref().is_some_and(|w| w.start() != from) {
        t.walk = None;
    }
    let walk = t.walk.get_or_insert_with(|| RangeWalk::new(from));
    let events = match walk.finish(feed, &t.group.name).await {
        Ok(e) => {
            t.walk = None;
            e
        }
        Err(_) => return Some(false),
    };
    let mut batch = Vec::new();
    let mut dups = 0;
    for ev in &events {
        let (Some(id), Some(rec)) = (ev.event_id(), filtered_record(ev, &t.name, names)) else {
            continue;
        };
        if !t
            .delivered
            .filtered(&rec.stream, rec.ts_ms, ev.message().unwrap_or(""), id)
        {
            dups += 1;
            continue;
        }
        t.newest_ms = t.newest_ms.max(rec.ts_ms);
        batch.push(rec);
    }
    feed.count(&t.group.name, |c| c.duplicates_dropped += dups);
    feed.deliver(&t.group.name, batch, true)
        .await
        .then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_lines_are_counted_as_a_multiset_across_paths() {
        let mut d = Delivered::default();
        let s: Arc<str> = "i-1".into();
        // Live Tail sees two identical lines, then the backfill returns both with ids.
        assert!(d.live(&s, 10, "x"));
        assert!(d.live(&s, 10, "x"));
        assert!(!d.filtered(&s, 10, "x", "id1"));
        assert!(!d.filtered(&s, 10, "x", "id2"));
        // A third copy only the backfill saw is new; seeing it again is not.
        assert!(d.filtered(&s, 10, "x", "id3"));
        assert!(!d.filtered(&s, 10, "x", "id3"));
        // Backfill first, Live Tail after: one event.
        assert!(d.filtered(&s, 20, "y", "id4"));
        assert!(!d.live(&s, 20, "y"));
        d.forget_before(15);
        assert!(d.live(&s, 10, "x"));
    }

    #[test]
    fn arns_name_their_group() {
        assert!(arn_names(
            "arn:aws:logs:us-east-1:123456789012:log-group:/ec2/var/log/secure:*",
            "/ec2/var/log/secure"
        ));
        assert!(!arn_names(
            "arn:aws:logs:us-east-1:123456789012:log-group:/ec2/other",
            "/ec2/var/log/secure"
        ));
    }

    #[test]
    fn minutes_are_billed_per_started_minute() {
        assert_eq!(billed_minutes(Duration::from_secs(0)), 1);
        assert_eq!(billed_minutes(Duration::from_secs(61)), 2);
        let u = LiveUsage::default();
        let id = u.open();
        assert_eq!(u.minutes(), 1);
        u.close(id);
        assert_eq!(u.minutes(), 1);
    }
}
