//! CloudTrail as a source. Near-real-time through the trail's CloudWatch Logs group when it has one
//! (found with `DescribeTrails`, then tailed like any group); history through `LookupEvents`:
//! - when no trail delivers to CloudWatch Logs, the account's management events are read with
//!   `LookupEvents` from `--since` on and then every minute (CloudTrail's own delivery takes
//!   minutes, so each poll looks back [`LOOKBACK_MS`]);
//! - when an incident opens, the CloudTrail history of its principals (access keys, IAM users) over
//!   the incident's time range, so the timeline shows what those credentials did before the
//!   detector noticed.
//!
//! `LookupEvents` allows 2 calls a second per account and region: every call goes through its own
//! limiter. Events are de-duplicated by `EventId` across all of this, and reach the engine in the
//! group [`GROUP`], where the CloudTrail parser reads them. A read a failure cuts short is read
//! again after a backoff (a history request up to [`REQUEST_ATTEMPTS`] times), and its events
//! count as delivered only once the whole read is done, so a failure delays them, never drops them.

use crate::record::{Interner, Record};
use crate::safe_text::SafeText;
use crate::source::SourceMsg;
use crate::tail::{Counters, GroupCounters, RateLimiter, Seen};
use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::primitives::DateTime;
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The source name LookupEvents records carry.
pub const GROUP: &str = "cloudtrail:LookupEvents";
/// CloudTrail keeps 90 days of management events for LookupEvents.
const RETENTION_MS: i64 = 90 * 86_400_000;
/// CloudTrail usually delivers within 5 minutes, sometimes 15: each poll looks this far back.
pub const LOOKBACK_MS: i64 = 20 * 60_000;
const POLL_EVERY: Duration = Duration::from_secs(60);
/// Before and after an incident's own events, how much of its principals' history is read.
const INCIDENT_BEFORE_MS: i64 = 30 * 60_000;
const INCIDENT_AFTER_MS: i64 = 5 * 60_000;
/// Principals read per incident: a wide incident should not spend the call budget on one request.
const MAX_PRINCIPALS: usize = 4;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Attempts at one incident's history before its failure is left on the status line.
const REQUEST_ATTEMPTS: u32 = 4;

/// The CloudWatch Logs groups that trails deliver to, by name.
pub async fn trail_log_groups(client: &Client) -> Result<Vec<String>, String> {
    let out = client
        .describe_trails()
        .send()
        .await
        .map_err(|e| format!("DescribeTrails: {}", crate::aws::error_text(&e)))?;
    let mut groups: Vec<String> = out
        .trail_list()
        .iter()
        .filter_map(|t| t.cloud_watch_logs_log_group_arn())
        .filter_map(|arn| {
            arn.trim_end_matches(":*")
                .split_once(":log-group:")
                .map(|(_, name)| name.to_string())
        })
        .collect();
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// A history request: these principals, this event-time range.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRequest {
    pub principals: Vec<Principal>,
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    AccessKey(String),
    User(String),
}

impl Principal {
    fn attribute(&self) -> Option<LookupAttribute> {
        let (key, value) = match self {
            Principal::AccessKey(k) => (LookupAttributeKey::AccessKeyId, k),
            Principal::User(u) => (LookupAttributeKey::Username, u),
        };
        LookupAttribute::builder()
            .attribute_key(key)
            .attribute_value(value)
            .build()
            .ok()
    }
}

/// The principals among an incident's keys: access key ids and IAM user ARNs.
pub fn principals(keys: &[String]) -> Vec<Principal> {
    let mut out = Vec::new();
    for k in keys {
        let p = if is_access_key(k) {
            Principal::AccessKey(k.clone())
        } else if let Some((_, user)) = k.split_once(":user/") {
            // `arn:aws:iam::123456789012:user/path/name`: LookupEvents wants the bare name.
            Principal::User(user.rsplit('/').next().unwrap_or(user).to_string())
        } else {
            continue;
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out.truncate(MAX_PRINCIPALS);
    out
}

fn is_access_key(s: &str) -> bool {
    s.len() == 20
        && (s.starts_with("AKIA") || s.starts_with("ASIA"))
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The request for an incident's principals, or `None` when it names none.
pub fn incident_request(incident: &crate::incident::Incident) -> Option<HistoryRequest> {
    // The main entity first: it survives the cap on principals.
    let keys: Vec<String> = std::iter::once(incident.main_entity.clone())
        .chain(incident.keys.iter().cloned())
        .collect();
    let principals = principals(&keys);
    (!principals.is_empty()).then(|| HistoryRequest {
        principals,
        from_ms: incident.first_event_ms - INCIDENT_BEFORE_MS,
        to_ms: incident.last_event_ms + INCIDENT_AFTER_MS,
    })
}

/// The LookupEvents reader: one task serving history requests and, with `poll_since`, polling the
/// account's events.
pub struct History {
    pub client: Client,
    pub limiter: Arc<RateLimiter>,
    pub counters: Counters,
    pub tx: mpsc::Sender<SourceMsg>,
    pub opts: crate::aws::AwsOptions,
}

impl History {
    /// Serves `requests` until the console closes; with `poll_since`, also reads every event
    /// from then on, once a minute.
    pub async fn run(self, mut requests: mpsc::Receiver<HistoryRequest>, poll_since: Option<i64>) {
        let mut names = Interner::default();
        let group = names.get(GROUP);
        let mut seen = Seen::default();
        let mut newest = poll_since;
        let mut next_poll = tokio::time::Instant::now();
        let mut backoff = Duration::from_secs(1);
        // A history request whose read failed, and the attempts it has had.
        let mut retry: Option<(HistoryRequest, u32)> = None;
        self.count(|c| c.mode = "lookup");
        loop {
            let mut attempts = 1;
            let req = if let Some((r, tried)) = retry.take() {
                tokio::time::sleep(backoff).await;
                attempts = tried + 1;
                Some(r)
            } else if newest.is_some() {
                tokio::select! {
                    r = requests.recv() => r,
                    _ = tokio::time::sleep_until(next_poll) => None,
                }
            } else {
                match requests.recv().await {
                    Some(r) => Some(r),
                    None => return,
                }
            };
            let (principals, from, to) = match (req, newest) {
                (Some(r), _) => (r.principals, r.from_ms, Some(r.to_ms)),
                (None, Some(n)) => (Vec::new(), n - LOOKBACK_MS, None),
                (None, None) => return,
            };
            let polling = principals.is_empty();
            match self
                .read(&principals, from, to, &group, &mut names, &mut seen)
                .await
            {
                Ok((delivered, newest_ms)) => {
                    if !delivered {
                        return;
                    }
                    backoff = Duration::from_secs(1);
                    self.count(GroupCounters::round_worked);
                    if polling {
                        newest = newest.map(|n| n.max(newest_ms));
                        next_poll = tokio::time::Instant::now() + POLL_EVERY;
                    }
                }
                Err(()) => {
                    if polling {
                        next_poll = tokio::time::Instant::now() + backoff;
                    } else if attempts < REQUEST_ATTEMPTS
                        && let Some(to_ms) = to
                    {
                        retry = Some((
                            HistoryRequest {
                                principals,
                                from_ms: from,
                                to_ms,
                            },
                            attempts,
                        ));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            if let Some(n) = newest {
                seen.forget_before(n - 2 * LOOKBACK_MS);
            }
        }
    }

    fn count(&self, f: impl FnOnce(&mut GroupCounters)) {
        crate::tail::set_counter(&self.counters, GROUP, f);
    }

    /// Reads one range (per principal, or everything) and delivers what is new. `Ok((false, _))`
    /// when the console is gone. Ids count as delivered only once the whole range is read: a
    /// read cut short by a failure is repeated, and what it found then is new again.
    async fn read(
        &self,
        principals: &[Principal],
        from_ms: i64,
        to_ms: Option<i64>,
        group: &Arc<str>,
        names: &mut Interner,
        seen: &mut Seen,
    ) -> Result<(bool, i64), ()> {
        let now = crate::ui::now_ms();
        let from_ms = from_ms.max(now - RETENTION_MS + 60_000);
        let attrs: Vec<Option<LookupAttribute>> = if principals.is_empty() {
            vec![None]
        } else {
            principals
                .iter()
                .filter_map(|p| p.attribute().map(Some))
                .collect()
        };
        let mut found: Vec<(String, Record)> = Vec::new();
        let mut dups = 0;
        let mut newest = from_ms;
        self.count(|c| {
            c.walking_since.get_or_insert_with(std::time::Instant::now);
        });
        for attr in attrs {
            let mut token: Option<String> = None;
            loop {
                self.limiter.acquire().await;
                let resp = self
                    .client
                    .lookup_events()
                    .start_time(DateTime::from_millis(from_ms))
                    .set_end_time(to_ms.map(DateTime::from_millis))
                    .set_lookup_attributes(attr.clone().map(|a| vec![a]))
                    .max_results(50)
                    .set_next_token(token.clone())
                    .send()
                    .await;
                self.count(|c| c.calls += 1);
                let page = match resp {
                    Ok(p) => p,
                    Err(e) => {
                        let msg = crate::aws::error_text(&e);
                        tracing::warn!("LookupEvents failed: {msg}");
                        let _ = self.tx.try_send(SourceMsg::Notice(format!(
                            "CloudTrail history: {}",
                            crate::aws::advice(&msg, &self.opts)
                        )));
                        self.count(|c| c.call_failed(msg));
                        return Err(());
                    }
                };
                for ev in page.events() {
                    let (Some(id), Some(json), Some(at)) =
                        (ev.event_id(), ev.cloud_trail_event(), ev.event_time())
                    else {
                        continue;
                    };
                    if seen.contains(id) {
                        dups += 1;
                        continue;
                    }
                    let ts = at.to_millis().unwrap_or(now);
                    found.push((
                        id.to_string(),
                        Record {
                            arrival_ms: now,
                            ts_ms: ts,
                            group: group.clone(),
                            stream: names.get("LookupEvents"),
                            text: SafeText::new(json),
                        },
                    ));
                }
                let next = page.next_token().map(str::to_string);
                if next.is_none() || next == token {
                    break;
                }
                token = next;
            }
        }
        let mut batch = Vec::with_capacity(found.len());
        for (id, rec) in found {
            // The same event under two principals' lookups is delivered once.
            if !seen.insert(rec.ts_ms, &id) {
                dups += 1;
                continue;
            }
            newest = newest.max(rec.ts_ms);
            batch.push(rec);
        }
        batch.sort_by_key(|r| r.ts_ms);
        let n = batch.len() as u64;
        self.count(|c| {
            c.events += n;
            c.backfilled += n;
            c.duplicates_dropped += dups;
            c.newest_ms = c.newest_ms.max(newest);
        });
        let sent = batch.is_empty() || self.tx.send(SourceMsg::Batch(batch)).await.is_ok();
        self.count(GroupCounters::walk_delivered);
        Ok((sent, newest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_access_keys_and_user_names() {
        let keys = vec![
            "AKIAW1N3HNITH53F5YPY".to_string(),
            "arn:aws:iam::123456789012:user/ops/alice".to_string(),
            "203.0.113.9".to_string(),
            "i-0abc".to_string(),
            "AKIAW1N3HNITH53F5YPY".to_string(),
        ];
        assert_eq!(
            principals(&keys),
            vec![
                Principal::AccessKey("AKIAW1N3HNITH53F5YPY".into()),
                Principal::User("alice".into())
            ]
        );
        assert!(principals(&["AKIA-not-a-key".to_string()]).is_empty());
    }
}
