//! Live CloudWatch Logs tailing, polling path: `FilterLogEvents` per log group, gap-free and
//! exactly-once.
//!
//! Each group has one task. Every round it asks for events since its newest event time minus a
//! look-back (late-ingested events carry old timestamps), walks every page, and drops the events
//! whose `eventId` it has already delivered; ids are remembered for the look-back window only. All
//! tasks share one rate limiter (FilterLogEvents allows about 5 calls per second per account and
//! region). A failed call (after the SDK's own retries) is counted, shown, and retried from the
//! page that failed after a backoff, so throttling and disconnects delay events but never lose or
//! repeat them; a headless run waits for a group's first walk through its pages, and for a group
//! the service has answered while it retries. Records go to the console over a bounded channel: a
//! slow console slows the pollers instead of growing a queue.

use crate::record::{Interner, Record};
use crate::safe_text::SafeText;
use crate::source::SourceMsg;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How far behind its newest event each poll looks again, for events ingested late.
pub const LOOKBACK_MS: i64 = 5 * 60_000;
const POLL_EVERY: Duration = Duration::from_secs(1);
const PAGE_LIMIT: i32 = 10_000;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Counters per group, for the console and `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupCounters {
    #[serde(rename = "name")]
    pub group: String,
    pub events: u64,
    pub duplicates_dropped: u64,
    pub calls: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    /// Newest event time delivered (epoch ms).
    pub newest_ms: i64,
    /// `live` (StartLiveTail) or `poll` (FilterLogEvents).
    pub mode: &'static str,
    /// Events that reached the engine through FilterLogEvents while the group was live-tailed:
    /// history before the session, gaps after a reconnect, intervals Live Tail sampled.
    pub backfilled: u64,
    /// Live Tail updates that carried only a sample of the matching events.
    pub sampled_updates: u64,
    /// Whether a round (or a Live Tail session) ever completed for this group.
    #[serde(skip)]
    pub worked: bool,
    /// Whether the service ever answered a call for this group with a page, throttling or a
    /// server error: its failures are then the service's, worth waiting out, not a wrong
    /// endpoint, group or credential.
    #[serde(skip)]
    pub answered: bool,
    /// Since when every attempt has failed; cleared by the next complete round.
    #[serde(skip)]
    pub failing_since: Option<std::time::Instant>,
    /// Since when a walk through the group's pages has been under way; cleared once its events
    /// are handed on. A first walk through a busy group's history can take minutes of paging.
    #[serde(skip)]
    pub walking_since: Option<std::time::Instant>,
    /// Whether a walk's events were ever handed on. Later walks re-read only the look-back, and
    /// a poller is walking most of the time, so only the first walk is waited for.
    #[serde(skip)]
    pub walked: bool,
}

impl GroupCounters {
    pub fn call_failed(&mut self, msg: String) {
        self.errors += 1;
        self.last_error = Some(msg);
        self.failing_since
            .get_or_insert_with(std::time::Instant::now);
    }

    /// A complete round, not one page: a round cut short is repeated, so its events still owe.
    pub fn round_worked(&mut self) {
        self.worked = true;
        self.failing_since = None;
    }

    /// Whether events of this group are still to come, for up to `patience`: it is walking its
    /// pages for the first time, or it worked or was answered before and is retrying from where
    /// it stopped. A group the service never answered (no route, no credentials) has nothing to
    /// resume, and its error is what the operator needs to see.
    pub fn owes_events(&self, patience: Duration) -> bool {
        match self.failing_since {
            Some(t) => (self.worked || self.answered) && t.elapsed() < patience,
            None => !self.walked && self.walking_since.is_some_and(|t| t.elapsed() < patience),
        }
    }

    /// A walk's events are handed on (or it found none).
    pub(crate) fn walk_delivered(&mut self) {
        if self.walking_since.take().is_some() {
            self.walked = true;
        }
    }
}

pub type Counters = Arc<Mutex<HashMap<String, GroupCounters>>>;

/// What the console shows about the live readers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedStatus {
    /// Wall-clock time of this snapshot: a live group's lag is this minus its newest event.
    pub as_of_ms: i64,
    pub groups: Vec<GroupCounters>,
    /// Live Tail minutes used by this process (billed per minute); `None` when only polling.
    pub live_tail_minutes: Option<u64>,
}

/// The counters as they are now, sorted by group.
pub fn snapshot(counters: &Counters) -> Vec<GroupCounters> {
    let mut v: Vec<GroupCounters> = counters
        .lock()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    v.sort_by(|a, b| a.group.cmp(&b.group));
    v
}

/// Calls per second shared by every poller.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    pub fn new(per_second: f64) -> Arc<Self> {
        Arc::new(RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second.max(0.1)),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        })
    }

    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Event ids delivered recently, oldest first, so ids older than the look-back can be forgotten.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    ids: std::collections::HashSet<String>,
    order: VecDeque<(i64, String)>,
}

impl Seen {
    pub(crate) fn insert(&mut self, ts: i64, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        self.ids.insert(id.to_string());
        self.order.push_back((ts, id.to_string()));
        true
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    pub(crate) fn forget_before(&mut self, ts: i64) {
        while self.order.front().is_some_and(|(t, _)| *t < ts) {
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }
}

pub(crate) fn set_counter(counters: &Counters, group: &str, f: impl FnOnce(&mut GroupCounters)) {
    if let Ok(mut map) = counters.lock() {
        let c = map
            .entry(group.to_string())
            .or_insert_with(|| GroupCounters {
                group: group.to_string(),
                ..GroupCounters::default()
            });
        f(c);
    }
}

/// What every reader of CloudWatch Logs shares: the client, the call budget, the counters the
/// console shows and the channel into the engine.
#[derive(Clone)]
pub struct Feed {
    pub client: Client,
    pub limiter: Arc<RateLimiter>,
    pub counters: Counters,
    pub tx: mpsc::Sender<SourceMsg>,
    pub opts: crate::aws::AwsOptions,
}

impl Feed {
    pub fn count(&self, group: &str, f: impl FnOnce(&mut GroupCounters)) {
        set_counter(&self.counters, group, f);
    }

    /// Counts a failed call, tells the console what to do about it, and returns the message.
    pub fn failed<E>(
        &self,
        group: &str,
        call: &str,
        e: &aws_sdk_cloudwatchlogs::error::SdkError<E>,
    ) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let msg = crate::aws::error_text(e);
        let status = e.raw_response().map(|r| r.status().as_u16());
        let busy = status.is_some_and(|s| s == 429 || s >= 500)
            || e.code().is_some_and(|c| c.contains("Throttl"));
        tracing::warn!(%group, "{call} failed: {msg}");
        // The console keeps what it has and says what to do; a full channel skips the notice.
        let _ = self.tx.try_send(SourceMsg::Notice(format!(
            "{group}: {}",
            crate::aws::advice(&msg, &self.opts)
        )));
        self.count(group, |c| {
            c.answered |= busy;
            c.call_failed(msg.clone());
        });
        msg
    }

    /// Sends records to the engine in time order (which keeps each stream's order) and counts
    /// them. False when the console is gone.
    pub async fn deliver(&self, group: &str, mut batch: Vec<Record>, backfilled: bool) -> bool {
        if batch.is_empty() {
            self.count(group, GroupCounters::walk_delivered);
            return true;
        }
        batch.sort_by_key(|r| (r.ts_ms, r.arrival_ms));
        let n = batch.len() as u64;
        let newest_ms = batch.iter().map(|r| r.ts_ms).max().unwrap_or(0);
        self.count(group, |c| {
            c.events += n;
            if backfilled {
                c.backfilled += n;
            }
            c.newest_ms = c.newest_ms.max(newest_ms);
        });
        let sent = self.tx.send(SourceMsg::Batch(batch)).await.is_ok();
        // Only now: a headless run that saw the walk end before the batch was queued could exit
        // without it.
        self.count(group, GroupCounters::walk_delivered);
        sent
    }
}

/// A walk through every page of one FilterLogEvents query: every event of a group with
/// `start <= timestamp`. Pages are not in time order (they go
/// stream by stream), so only a complete walk says anything about a time range. A failed page
/// keeps the walk where it was: retrying resumes from that page's token, so a large group whose
/// pages keep meeting throttling still completes instead of starting over every time.
#[derive(Debug)]
pub struct RangeWalk {
    start: i64,
    token: Option<String>,
    events: Vec<FilteredLogEvent>,
}

impl RangeWalk {
    pub fn new(start: i64) -> Self {
        RangeWalk {
            start,
            token: None,
            events: Vec::new(),
        }
    }

    /// The earliest event time the walk covers.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Walks the remaining pages: every event of the query, or the first failure (after which
    /// the walk can be finished later from the page that failed). The group counts as walking
    /// until [`Feed::deliver`] hands on what the walk found.
    pub async fn finish(
        &mut self,
        feed: &Feed,
        group: &str,
    ) -> Result<Vec<FilteredLogEvent>, String> {
        feed.count(group, |c| {
            c.walking_since.get_or_insert_with(std::time::Instant::now);
        });
        loop {
            feed.limiter.acquire().await;
            let resp = feed
                .client
                .filter_log_events()
                .log_group_name(group)
                .start_time(self.start)
                .limit(PAGE_LIMIT)
                .set_next_token(self.token.clone())
                .send()
                .await;
            let paged = resp.is_ok();
            feed.count(group, |c| {
                c.calls += 1;
                c.answered |= paged;
            });
            let mut page = match resp {
                Ok(p) => p,
                Err(e) => return Err(feed.failed(group, "FilterLogEvents", &e)),
            };
            self.events.extend(page.events.take().unwrap_or_default());
            // Pages can be empty while a token remains; a repeated token means the end.
            let next = page.next_token().map(str::to_string);
            if next.is_none() || next == self.token {
                return Ok(std::mem::take(&mut self.events));
            }
            self.token = next;
        }
    }
}

/// A record from a FilterLogEvents event.
pub fn filtered_record(
    ev: &FilteredLogEvent,
    group: &Arc<str>,
    names: &mut Interner,
) -> Option<Record> {
    let ts = ev.timestamp()?;
    Some(Record {
        arrival_ms: ev.ingestion_time().unwrap_or(ts),
        ts_ms: ts,
        group: group.clone(),
        stream: names.get(ev.log_stream_name().unwrap_or("-")),
        text: SafeText::new(ev.message().unwrap_or("")),
    })
}

/// Polls one group forever (until the receiver is gone), from `since_ms`.
pub async fn poll_group(feed: Feed, group: String, since_ms: i64) {
    let mut names = Interner::default();
    let group_name = names.get(&group);
    let mut seen = Seen::default();
    let mut newest = since_ms;
    let mut backoff = Duration::from_secs(1);
    feed.count(&group, |c| c.mode = "poll");
    // The restart point moves only after a complete round; a round cut short by a failure
    // resumes from the page that failed.
    let mut walk: Option<RangeWalk> = None;
    loop {
        let round =
            walk.get_or_insert_with(|| RangeWalk::new((newest - LOOKBACK_MS).max(since_ms)));
        let failed = match round.finish(&feed, &group).await {
            Ok(events) => {
                walk = None;
                let mut dups = 0;
                let mut batch = Vec::new();
                for ev in &events {
                    let (Some(id), Some(rec)) =
                        (ev.event_id(), filtered_record(ev, &group_name, &mut names))
                    else {
                        continue;
                    };
                    if !seen.insert(rec.ts_ms, id) {
                        dups += 1;
                        continue;
                    }
                    newest = newest.max(rec.ts_ms);
                    batch.push(rec);
                }
                feed.count(&group, |c| c.duplicates_dropped += dups);
                feed.count(&group, GroupCounters::round_worked);
                if !feed.deliver(&group, batch, false).await {
                    return;
                }
                false
            }
            Err(_) => true,
        };
        seen.forget_before(newest - LOOKBACK_MS);
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        } else {
            backoff = Duration::from_secs(1);
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_group_that_worked_or_was_answered_is_waited_for_while_it_fails() {
        let patience = Duration::from_secs(60);
        let mut g = GroupCounters::default();
        g.call_failed("ServiceUnavailableException".into());
        assert!(
            !g.owes_events(patience),
            "never worked: its error is the answer"
        );
        g.round_worked();
        assert!(!g.owes_events(patience), "working");
        g.call_failed("ThrottlingException".into());
        assert!(g.owes_events(patience));
        assert!(!g.owes_events(Duration::ZERO), "out of patience");
        g.round_worked();
        assert!(!g.owes_events(patience));
        assert_eq!(g.errors, 2);
    }

    #[test]
    fn a_group_the_service_answered_is_waited_for_before_its_first_round() {
        let patience = Duration::from_secs(60);
        let mut g = GroupCounters {
            answered: true,
            ..GroupCounters::default()
        };
        g.call_failed("ThrottlingException".into());
        assert!(g.owes_events(patience), "pages or throttling came back");
        assert!(!g.owes_events(Duration::ZERO), "out of patience");
    }

    #[test]
    fn a_group_walking_its_pages_is_waited_for() {
        let patience = Duration::from_secs(60);
        let mut g = GroupCounters {
            walking_since: Some(std::time::Instant::now()),
            ..GroupCounters::default()
        };
        assert!(g.owes_events(patience), "its first pages are still coming");
        assert!(!g.owes_events(Duration::ZERO), "out of patience");
        g.walk_delivered();
        g.walking_since = Some(std::time::Instant::now());
        assert!(
            !g.owes_events(patience),
            "later walks re-read the look-back: not waited for"
        );
        g.walked = false;
        g.call_failed("no providers in chain provided credentials".into());
        assert!(
            !g.owes_events(patience),
            "never answered: its error is the answer"
        );
    }

    #[test]
    fn seen_ids_are_forgotten_after_the_lookback() {
        let mut s = Seen::default();
        assert!(s.insert(10, "a"));
        assert!(!s.insert(10, "a"));
        assert!(s.insert(20, "b"));
        s.forget_before(15);
        assert!(s.insert(10, "a"));
        assert!(!s.insert(20, "b"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_limiter_spaces_calls() {
        let l = RateLimiter::new(5.0);
        let t = tokio::time::Instant::now();
        for _ in 0..6 {
            l.acquire().await;
        }
        assert!(t.elapsed() >= Duration::from_millis(1000));
    }
}
