//! The unit that flows from every source into the engine.

use crate::safe_text::SafeText;
use std::sync::Arc;

/// One log event as a source delivered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When the event reached the log service (CloudWatch `ingestionTime`), epoch ms. The engine's
    /// clock: incidents open, close and get timed by it, so replays reproduce live runs.
    pub arrival_ms: i64,
    /// The event's own time (CloudWatch `timestamp`, CloudTrail `eventTime`), epoch ms. Windows are
    /// keyed by it, so late deliveries still land in the minute they happened.
    pub ts_ms: i64,
    /// Log group (or file) the event came from.
    pub group: Arc<str>,
    /// Log stream within the group (an instance id, an ENI, a Lambda environment...).
    pub stream: Arc<str>,
    /// The message, already sanitised.
    pub text: SafeText,
}

/// Shares group and stream names between records so a million lines do not hold a million copies.
#[derive(Debug, Default)]
pub struct Interner {
    names: std::collections::HashMap<Arc<str>, ()>,
}

impl Interner {
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some((k, _)) = self.names.get_key_value(name) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(SafeText::new(name).as_str());
        // Unbounded growth here would be a leak on hostile input; stream names are few in practice
        // and this cap keeps a flood of unique names from costing more than a few MB.
        if self.names.len() < 100_000 {
            self.names.insert(k.clone(), ());
        }
        k
    }
}
