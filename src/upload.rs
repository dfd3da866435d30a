//! Writes events into CloudWatch Logs: `stormwatch demo --to-cloudwatch` puts a demo incident
//! into real log groups (or a local emulator) so `stormwatch tail` can be tried against them.

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use std::collections::BTreeMap;

/// PutLogEvents limits: 10,000 events and 1 MiB (each event counts 26 bytes more) per call.
const MAX_EVENTS: usize = 10_000;
const MAX_BYTES: usize = 1_048_576;

#[derive(Debug, thiserror::Error)]
#[error("CloudWatch Logs call {call} failed: {message}")]
pub struct UploadError {
    pub call: &'static str,
    pub message: String,
}

/// One event to upload.
pub struct Upload<'a> {
    pub group: &'a str,
    pub stream: &'a str,
    pub ts_ms: i64,
    pub message: &'a str,
}

fn err(call: &'static str) -> impl Fn(String) -> UploadError {
    move |message| UploadError { call, message }
}

/// Creates the groups and streams (existing ones are fine) and puts every event, per stream in time
/// order. Returns the number of events put.
pub async fn put_all(client: &Client, events: &[Upload<'_>]) -> Result<usize, UploadError> {
    let mut by_stream: BTreeMap<(&str, &str), Vec<&Upload>> = BTreeMap::new();
    for e in events {
        by_stream.entry((e.group, e.stream)).or_default().push(e);
    }
    let mut groups: Vec<&str> = by_stream.keys().map(|(g, _)| *g).collect();
    groups.dedup();
    for g in groups {
        if let Err(e) = client.create_log_group().log_group_name(g).send().await {
            let s = e.into_service_error();
            if !s.is_resource_already_exists_exception() {
                return Err(err("CreateLogGroup")(s.to_string()));
            }
        }
    }
    let mut put = 0;
    for ((group, stream), mut evs) in by_stream {
        if let Err(e) = client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
        {
            let s = e.into_service_error();
            if !s.is_resource_already_exists_exception() {
                return Err(err("CreateLogStream")(s.to_string()));
            }
        }
        evs.sort_by_key(|e| e.ts_ms);
        let mut i = 0;
        while i < evs.len() {
            let mut bytes = 0;
            let mut batch = Vec::new();
            while i < evs.len()
                && batch.len() < MAX_EVENTS
                && bytes + evs[i].message.len() + 26 <= MAX_BYTES
            {
                bytes += evs[i].message.len() + 26;
                let ev = InputLogEvent::builder()
                    .timestamp(evs[i].ts_ms)
                    .message(evs[i].message)
                    .build()
                    .map_err(|e| err("PutLogEvents")(e.to_string()))?;
                batch.push(ev);
                i += 1;
            }
            if batch.is_empty() {
                // A single message over the size limit: skip it rather than loop forever.
                i += 1;
                continue;
            }
            put += batch.len();
            client
                .put_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .set_log_events(Some(batch))
                .send()
                .await
                .map_err(|e| err("PutLogEvents")(e.into_service_error().to_string()))?;
        }
    }
    Ok(put)
}
