//! The local store: SQLite in WAL mode, owned by one writer thread.
//!
//! Every write goes through the writer over a bounded channel, so the console never blocks on disk
//! and SQLite never sees two writers. Each write that matters to the operator (labels, later audit
//! rows) is its own transaction with `synchronous=FULL` and is acknowledged only after the commit
//! returns: the console shows a label as saved only then, and a kill -9 after that loses nothing.
//! Readers open their own read-only connections. The schema is versioned with `PRAGMA
//! user_version`; [`MIGRATIONS`] lists every step from an empty file.

use crate::owner_only;
use crate::safe_text::SafeText;
use rusqlite::{Connection, OpenFlags, params};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use thiserror::Error;
use tokio::sync::oneshot;

pub const DB_FILE: &str = "stormwatch.db";

/// Schema steps; entry `i` takes the store from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    started_ms  INTEGER NOT NULL,
    mode        TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE TABLE incidents (
    session         TEXT NOT NULL REFERENCES sessions(id),
    incident        INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    main_entity     TEXT NOT NULL,
    severity        TEXT NOT NULL,
    opened_ms       INTEGER NOT NULL,
    first_event_ms  INTEGER NOT NULL,
    last_event_ms   INTEGER NOT NULL,
    PRIMARY KEY (session, incident)
);
CREATE TABLE labels (
    id            INTEGER PRIMARY KEY,
    created_ms    INTEGER NOT NULL,
    session       TEXT NOT NULL,
    target_kind   TEXT NOT NULL CHECK (target_kind IN ('incident', 'anomaly', 'line', 'template')),
    target_id     TEXT NOT NULL,
    label         TEXT NOT NULL CHECK (label IN ('anomaly', 'normal', 'unsure')),
    source        TEXT NOT NULL DEFAULT '',
    entity        TEXT NOT NULL DEFAULT '',
    signal        TEXT NOT NULL DEFAULT '',
    incident_kind TEXT NOT NULL DEFAULT '',
    score         REAL,
    event_ms      INTEGER,
    features      TEXT NOT NULL DEFAULT '{}',
    evidence      TEXT NOT NULL DEFAULT '',
    note          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX labels_by_target ON labels (target_kind, target_id);
"#,
    r#"
CREATE TABLE miner_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    saved_ms  INTEGER NOT NULL,
    state     TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    created_ms  INTEGER NOT NULL,
    session     TEXT NOT NULL,
    incident    INTEGER,
    call        TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '{}',
    preview     TEXT NOT NULL DEFAULT '',
    event       TEXT NOT NULL CHECK (event IN ('suggested', 'approved', 'rejected', 'blocked',
                    'request', 'response', 'error', 'verified', 'undone')),
    actor       TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_call ON audit (call);
"#,
    r#"
CREATE TABLE models (
    name      TEXT PRIMARY KEY,
    saved_ms  INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    state     TEXT NOT NULL
);
"#,
    // The analyst's answers per incident state (model + evidence pack), so a restart or a
    // second look does not ask the model again.
    r#"
CREATE TABLE analyses (
    key       TEXT PRIMARY KEY,
    incident  TEXT NOT NULL,
    saved_ms  INTEGER NOT NULL,
    analysis  TEXT NOT NULL
);
"#,
];

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "store {path}: {source}. Check that the data dir is writable, or set STORMWATCH_DATA_DIR."
    )]
    Open {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("store write failed: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error(
        "store {path} has schema version {found}, newer than this build knows ({known}); upgrade stormwatch"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("the store writer has stopped; see the log file for why")]
    Gone,
    #[error("the store is busy (its write queue is full); press the key again in a moment")]
    Busy,
    #[error("not saved: {0}")]
    Write(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelValue {
    Anomaly,
    Normal,
    Unsure,
}

impl LabelValue {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelValue::Anomaly => "anomaly",
            LabelValue::Normal => "normal",
            LabelValue::Unsure => "unsure",
        }
    }
}

/// One operator label with the context it was given in, so models can retrain from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub created_ms: i64,
    pub session: String,
    pub target_kind: &'static str,
    pub target_id: String,
    pub label: LabelValue,
    pub source: SafeText,
    pub entity: SafeText,
    pub signal: String,
    pub incident_kind: String,
    pub score: Option<f64>,
    pub event_ms: Option<i64>,
    /// JSON object of the signal values the label was given on.
    pub features: String,
    pub evidence: SafeText,
    pub note: SafeText,
}

/// A label as `labels export` writes it and `labels import` reads it: plain strings, `features`
/// as the JSON it was saved as.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelRecord {
    pub created_ms: i64,
    pub session: String,
    pub target_kind: String,
    pub target_id: String,
    pub label: LabelValue,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub entity: String,
    #[serde(default)]
    pub signal: String,
    #[serde(default)]
    pub incident_kind: String,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub event_ms: Option<i64>,
    #[serde(default = "empty_object")]
    pub features: serde_json::Value,
    #[serde(default)]
    pub evidence: String,
    #[serde(default)]
    pub note: String,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// What a label targets; the schema's CHECK lists the same four.
pub const TARGET_KINDS: [&str; 4] = ["incident", "anomaly", "line", "template"];

impl LabelRecord {
    /// The label to save. Imported text is untrusted like log text: it is sanitised here, and a
    /// target kind the store does not know is refused.
    pub fn into_label(self) -> Result<Label, String> {
        let Some(kind) = TARGET_KINDS.iter().find(|k| **k == self.target_kind) else {
            return Err(format!(
                "unknown target_kind {:?}; expected one of {}",
                SafeText::new(&self.target_kind).as_str(),
                TARGET_KINDS.join(", ")
            ));
        };
        if !self.features.is_object() {
            return Err("features must be a JSON object".into());
        }
        Ok(Label {
            created_ms: self.created_ms,
            session: SafeText::new(&self.session).into_string(),
            target_kind: kind,
            target_id: SafeText::new(&self.target_id).into_string(),
            label: self.label,
            source: SafeText::new(&self.source),
            entity: SafeText::new(&self.entity),
            signal: SafeText::new(&self.signal).into_string(),
            incident_kind: SafeText::new(&self.incident_kind).into_string(),
            score: self.score.filter(|s| s.is_finite()),
            event_ms: self.event_ms,
            features: self.features.to_string(),
            evidence: SafeText::new(&self.evidence),
            note: SafeText::new(&self.note),
        })
    }

    /// Two records are the same label when they agree on who said what about which target, when.
    pub fn identity(&self) -> (i64, String, String, String, &'static str) {
        (
            self.created_ms,
            self.session.clone(),
            self.target_kind.clone(),
            self.target_id.clone(),
            self.label.as_str(),
        )
    }
}

/// Every label in the store, oldest first. A store that does not exist yet has none.
pub fn labels(dir: &Path) -> Result<Vec<LabelRecord>, StoreError> {
    if !dir.join(DB_FILE).exists() {
        return Ok(Vec::new());
    }
    let conn = reader(dir)?;
    let mut stmt = conn.prepare(
        "SELECT created_ms, session, target_kind, target_id, label, source, entity, signal,
                incident_kind, score, event_ms, features, evidence, note
         FROM labels ORDER BY created_ms, id",
    )?;
    let rows = stmt.query_map([], |r| {
        let label: String = r.get(4)?;
        let features: String = r.get(11)?;
        Ok(LabelRecord {
            created_ms: r.get(0)?,
            session: r.get(1)?,
            target_kind: r.get(2)?,
            target_id: r.get(3)?,
            label: match label.as_str() {
                "anomaly" => LabelValue::Anomaly,
                "normal" => LabelValue::Normal,
                _ => LabelValue::Unsure,
            },
            source: r.get(5)?,
            entity: r.get(6)?,
            signal: r.get(7)?,
            incident_kind: r.get(8)?,
            score: r.get(9)?,
            event_ms: r.get(10)?,
            features: serde_json::from_str(&features).unwrap_or_else(|_| empty_object()),
            evidence: r.get(12)?,
            note: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub session: String,
    pub incident: u64,
    pub kind: String,
    pub main_entity: SafeText,
    pub severity: String,
    pub opened_ms: i64,
    pub first_event_ms: i64,
    pub last_event_ms: i64,
}

/// What happened to a suggested action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    Suggested,
    Approved,
    Rejected,
    /// Refused by a guard or the policy.
    Blocked,
    /// Written, and acknowledged, before the AWS call is made.
    Request,
    Response,
    Error,
    Verified,
    Undone,
}

impl AuditEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Suggested => "suggested",
            AuditEvent::Approved => "approved",
            AuditEvent::Rejected => "rejected",
            AuditEvent::Blocked => "blocked",
            AuditEvent::Request => "request",
            AuditEvent::Response => "response",
            AuditEvent::Error => "error",
            AuditEvent::Verified => "verified",
            AuditEvent::Undone => "undone",
        }
    }
}

/// One audit event about one proposed action (`call` ties its suggestion, decision, request and
/// response together).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub created_ms: i64,
    pub session: String,
    pub incident: Option<u64>,
    pub call: String,
    /// Catalog id.
    pub action: &'static str,
    /// The target as JSON.
    pub target: String,
    pub preview: String,
    pub event: AuditEvent,
    /// Who: the operator's user name, or `stormwatch` for what it did by itself.
    pub actor: String,
    pub reason: SafeText,
    pub request_id: String,
    pub detail: SafeText,
}

/// An audit row as `stormwatch audit --json` exports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub created_ms: i64,
    pub session: String,
    pub incident: Option<i64>,
    pub call: String,
    pub action: String,
    pub target: serde_json::Value,
    pub preview: String,
    pub event: String,
    pub actor: String,
    pub reason: String,
    pub request_id: String,
    pub detail: String,
    /// A request with no response or error after it: the process died during the call, and
    /// the resource's state must be read again before anything is retried.
    pub outcome_unknown: bool,
}

enum Command {
    Audit(Box<AuditEntry>, oneshot::Sender<Result<i64, String>>),
    Session {
        id: String,
        started_ms: i64,
        mode: String,
        detail: String,
    },
    Label(Box<Label>, oneshot::Sender<Result<i64, String>>),
    Incident(IncidentRow),
    Model {
        name: String,
        saved_ms: i64,
        state: String,
    },
    MinerState {
        saved_ms: i64,
        state: String,
    },
    Analysis {
        key: String,
        incident: String,
        saved_ms: i64,
        analysis: String,
    },
}

/// Handle to the writer thread. Cloneable; the thread stops when every handle is dropped.
#[derive(Clone)]
pub struct Store {
    tx: SyncSender<Command>,
    path: PathBuf,
}

/// Joins the writer on drop of the last owner so pending writes finish before the process exits.
pub struct StoreThread(Option<JoinHandle<()>>);

impl StoreThread {
    pub fn join(mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Opens (creating and migrating as needed) the store in `dir` and starts its writer.
pub fn open(dir: &Path) -> Result<(Store, StoreThread), StoreError> {
    let path = dir.join(DB_FILE);
    let conn = open_writer(&path)?;
    let (tx, rx) = sync_channel(1024);
    let handle = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer(conn, rx))
        .map_err(|e| StoreError::Open {
            path: path.clone(),
            source: Box::new(e),
        })?;
    Ok((Store { tx, path }, StoreThread(Some(handle))))
}

fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
        path: path.to_path_buf(),
        source: e,
    };
    if let Some(dir) = path.parent() {
        owner_only::dir(dir).map_err(|e| open_err(Box::new(e)))?;
    }
    // Create the file ourselves so it is owner-only from its first byte; SQLite gives the WAL and
    // shared-memory files the same mode as the database.
    owner_only::file(path).map_err(|e| open_err(Box::new(e)))?;
    let mut conn = Connection::open(path).map_err(|e| open_err(Box::new(e)))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Brings the schema to the newest version, one transaction per step.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// A read-only connection for queries; it never blocks the writer (WAL).
pub fn reader(dir: &Path) -> Result<Connection, StoreError> {
    let path = dir.join(DB_FILE);
    Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
        StoreError::Open {
            path,
            source: Box::new(e),
        }
    })
}

/// A learned model saved by an earlier run, and its version (saves so far), if any.
pub fn load_model(dir: &Path, name: &str) -> Result<Option<(String, i64)>, StoreError> {
    let conn = reader(dir)?;
    match conn.query_row(
        "SELECT state, version FROM models WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    ) {
        Ok(s) => Ok(Some(s)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The analyst's answer kept under `key`, if any.
pub fn load_analysis(dir: &Path, key: &str) -> Result<Option<String>, StoreError> {
    let conn = reader(dir)?;
    match conn.query_row("SELECT analysis FROM analyses WHERE key = ?1", [key], |r| {
        r.get(0)
    }) {
        Ok(s) => Ok(Some(s)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The miner state saved by the last run, if any.
pub fn load_miner(dir: &Path) -> Result<Option<String>, StoreError> {
    let conn = reader(dir)?;
    match conn.query_row("SELECT state FROM miner_state WHERE id = 1", [], |r| {
        r.get(0)
    }) {
        Ok(s) => Ok(Some(s)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn writer(mut conn: Connection, rx: Receiver<Command>) {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Audit(entry, ack) => {
                acknowledge(insert_audit(&conn, &entry), "audit row", ack);
            }
            Command::Label(label, ack) => {
                acknowledge(insert_label(&mut conn, &label), "label", ack);
            }
            Command::Incident(row) => {
                if let Err(e) = upsert_incident(&conn, &row) {
                    tracing::error!("incident not saved: {e}");
                }
            }
            Command::Model {
                name,
                saved_ms,
                state,
            } => {
                if let Err(e) = conn.execute(
                    "INSERT INTO models (name, saved_ms, version, state) VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT (name) DO UPDATE SET saved_ms = excluded.saved_ms,
                         version = models.version + 1, state = excluded.state",
                    params![name, saved_ms, state],
                ) {
                    tracing::error!("model {name} not saved: {e}");
                }
            }
            Command::Analysis {
                key,
                incident,
                saved_ms,
                analysis,
            } => {
                if let Err(e) = conn.execute(
                    "INSERT INTO analyses (key, incident, saved_ms, analysis) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET incident = excluded.incident,
                         saved_ms = excluded.saved_ms, analysis = excluded.analysis",
                    params![key, incident, saved_ms, analysis],
                ) {
                    tracing::error!("analysis not saved: {e}");
                }
            }
            Command::MinerState { saved_ms, state } => {
                if let Err(e) = conn.execute(
                    "INSERT INTO miner_state (id, saved_ms, state) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET saved_ms = excluded.saved_ms, state = excluded.state",
                    params![saved_ms, state],
                ) {
                    tracing::error!("templates not saved: {e}");
                }
            }
            Command::Session {
                id,
                started_ms,
                mode,
                detail,
            } => {
                if let Err(e) = conn.execute(
                    "INSERT OR IGNORE INTO sessions (id, started_ms, mode, detail) VALUES (?1, ?2, ?3, ?4)",
                    params![id, started_ms, mode, detail],
                ) {
                    tracing::error!("session not saved: {e}");
                }
            }
        }
    }
}

/// Logs a failed acknowledged write and answers its waiter either way.
fn acknowledge(
    res: Result<i64, rusqlite::Error>,
    what: &str,
    ack: oneshot::Sender<Result<i64, String>>,
) {
    let res = res.map_err(|e| e.to_string());
    if let Err(e) = &res {
        tracing::error!("{what} not saved: {e}");
    }
    let _ = ack.send(res);
}

fn insert_label(conn: &mut Connection, l: &Label) -> Result<i64, rusqlite::Error> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO labels (created_ms, session, target_kind, target_id, label, source, entity, signal, incident_kind, score, event_ms, features, evidence, note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            l.created_ms,
            l.session,
            l.target_kind,
            l.target_id,
            l.label.as_str(),
            l.source.as_str(),
            l.entity.as_str(),
            l.signal,
            l.incident_kind,
            l.score,
            l.event_ms,
            l.features,
            l.evidence.as_str(),
            l.note.as_str(),
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(id)
}

fn insert_audit(conn: &Connection, a: &AuditEntry) -> Result<i64, rusqlite::Error> {
    conn.execute(
        "INSERT INTO audit (created_ms, session, incident, call, action, target, preview, event, actor, reason, request_id, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            a.created_ms,
            a.session,
            a.incident.map(|i| i as i64),
            a.call,
            a.action,
            a.target,
            a.preview,
            a.event.as_str(),
            a.actor,
            a.reason.as_str(),
            a.request_id,
            a.detail.as_str(),
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Every audit row, oldest first. A store that does not exist yet has none.
pub fn audit(dir: &Path) -> Result<Vec<AuditRow>, StoreError> {
    if !dir.join(DB_FILE).exists() {
        return Ok(Vec::new());
    }
    let conn = reader(dir)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < 3 {
        // Written by a version that had no audit yet: nothing was ever executed.
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT a.id, a.created_ms, a.session, a.incident, a.call, a.action, a.target, a.preview, a.event,
                a.actor, a.reason, a.request_id, a.detail,
                a.event = 'request' AND NOT EXISTS (
                    SELECT 1 FROM audit b
                    WHERE b.session = a.session AND b.call = a.call AND b.id > a.id
                      AND b.event IN ('response', 'error')
                      -- An answer after a retried request answers the retry, not this one.
                      AND NOT EXISTS (
                        SELECT 1 FROM audit c
                        WHERE c.session = a.session AND c.call = a.call
                          AND c.id > a.id AND c.id < b.id AND c.event = 'request'))
         FROM audit a ORDER BY a.id",
    )?;
    let rows = stmt.query_map([], |r| {
        let target: String = r.get(6)?;
        Ok(AuditRow {
            id: r.get(0)?,
            created_ms: r.get(1)?,
            session: r.get(2)?,
            incident: r.get(3)?,
            call: r.get(4)?,
            action: r.get(5)?,
            target: serde_json::from_str(&target).unwrap_or(serde_json::Value::String(target)),
            preview: r.get(7)?,
            event: r.get(8)?,
            actor: r.get(9)?,
            reason: r.get(10)?,
            request_id: r.get(11)?,
            detail: r.get(12)?,
            outcome_unknown: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn upsert_incident(conn: &Connection, r: &IncidentRow) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO incidents (session, incident, kind, main_entity, severity, opened_ms, first_event_ms, last_event_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (session, incident) DO UPDATE SET kind = excluded.kind, main_entity = excluded.main_entity,
           severity = excluded.severity, first_event_ms = excluded.first_event_ms, last_event_ms = excluded.last_event_ms",
        params![
            r.session,
            r.incident as i64,
            r.kind,
            r.main_entity.as_str(),
            r.severity,
            r.opened_ms,
            r.first_event_ms,
            r.last_event_ms
        ],
    )?;
    Ok(())
}

/// Pending acknowledgement of a label write: resolves to the row id once committed.
pub type LabelAck = oneshot::Receiver<Result<i64, String>>;

impl Store {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn start_session(&self, id: &str, started_ms: i64, mode: &str, detail: &str) {
        let _ = self.tx.try_send(Command::Session {
            id: id.to_string(),
            started_ms,
            mode: mode.to_string(),
            detail: detail.to_string(),
        });
    }

    /// Queues a label; the returned receiver resolves after the commit. Never blocks: a full queue
    /// is reported as an error so the console can say the label was not saved.
    pub fn save_label(&self, label: Label) -> Result<LabelAck, StoreError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .try_send(Command::Label(Box::new(label), ack))
            .map_err(|e| match e {
                std::sync::mpsc::TrySendError::Full(_) => StoreError::Busy,
                std::sync::mpsc::TrySendError::Disconnected(_) => StoreError::Gone,
            })?;
        Ok(rx)
    }

    /// Blocking form for scripts and tests.
    pub fn save_label_blocking(&self, label: Label) -> Result<i64, StoreError> {
        self.send_and_wait(|ack| Command::Label(Box::new(label), ack))
    }

    /// Writes an audit row and waits for its commit. Blocking on purpose: a request row must be
    /// on disk before the AWS call it announces is made.
    pub fn save_audit_blocking(&self, entry: AuditEntry) -> Result<i64, StoreError> {
        self.send_and_wait(|ack| Command::Audit(Box::new(entry), ack))
    }

    /// Async form for the action executor: the request row is committed before the AWS call.
    pub async fn save_audit(&self, entry: AuditEntry) -> Result<i64, StoreError> {
        let (ack, rx) = oneshot::channel();
        let tx = self.tx.clone();
        let command = Command::Audit(Box::new(entry), ack);
        // A full queue blocks the sender; keep that off the async workers.
        tokio::task::spawn_blocking(move || tx.send(command).map_err(|_| ()))
            .await
            .map_err(|_| StoreError::Gone)?
            .map_err(|_| StoreError::Gone)?;
        rx.await
            .map_err(|_| StoreError::Gone)?
            .map_err(StoreError::Write)
    }

    /// Queues an acknowledged write and waits until it is committed; returns its row id.
    fn send_and_wait(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<i64, String>>) -> Command,
    ) -> Result<i64, StoreError> {
        let (ack, rx) = oneshot::channel();
        self.tx.send(command(ack)).map_err(|_| StoreError::Gone)?;
        rx.blocking_recv()
            .map_err(|_| StoreError::Gone)?
            .map_err(StoreError::Write)
    }

    /// Saves a learned model's state under `name`; each save bumps its version. A full queue
    /// skips this save; the next one carries everything, and the decisions it learned from are
    /// in the audit log anyway.
    pub fn save_model(&self, name: &str, saved_ms: i64, state: String) {
        let cmd = Command::Model {
            name: name.to_string(),
            saved_ms,
            state,
        };
        if self.tx.try_send(cmd).is_err() {
            tracing::warn!("store queue full: {name} save skipped");
        }
    }

    /// Keeps an analyst's answer under its incident-state key (a cache: a full queue skips it and
    /// the model is asked again next time).
    pub fn save_analysis(&self, key: &str, incident: &str, saved_ms: i64, analysis: String) {
        let cmd = Command::Analysis {
            key: key.to_string(),
            incident: incident.to_string(),
            saved_ms,
            analysis,
        };
        if self.tx.try_send(cmd).is_err() {
            tracing::warn!("store queue full: analysis not cached");
        }
    }

    /// Saves the template miner's state; the next console run reloads it, so template ids stay
    /// stable across runs. A full queue skips this save; the next one carries everything.
    pub fn save_miner(&self, saved_ms: i64, state: String) {
        if self
            .tx
            .try_send(Command::MinerState { saved_ms, state })
            .is_err()
        {
            tracing::warn!("store queue full: template save skipped");
        }
    }

    /// Incidents are context for labels, not acknowledged: a full queue drops the update, and the
    /// next update of the same incident carries the newest state anyway.
    pub fn save_incident(&self, row: IncidentRow) {
        if self.tx.try_send(Command::Incident(row)).is_err() {
            tracing::warn!("store queue full: incident update dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn label(id: &str) -> Label {
        Label {
            created_ms: 1,
            session: "s".into(),
            target_kind: "anomaly",
            target_id: id.into(),
            label: LabelValue::Anomaly,
            source: SafeText::new("/ec2/var/log/secure"),
            entity: SafeText::new("45.83.12.7"),
            signal: "ssh_auth_failure".into(),
            incident_kind: "ssh_brute_force".into(),
            score: Some(0.9),
            event_ms: Some(2),
            features: "{}".into(),
            evidence: SafeText::new("x"),
            note: SafeText::default(),
        }
    }

    #[test]
    fn creates_private_wal_store_and_saves_labels() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (store, thread) = open(dir.path()).unwrap();
        let id = store.save_label_blocking(label("7")).unwrap();
        assert!(id > 0);
        let r = reader(dir.path()).unwrap();
        let (n, mode): (i64, String) = r
            .query_row(
                "SELECT count(*), (SELECT journal_mode FROM pragma_journal_mode) FROM labels",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, mode.as_str()), (1, "wal"));
        for f in [DB_FILE, "stormwatch.db-wal"] {
            let m = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600, "{f}");
        }
        drop(store);
        thread.join();
    }

    #[test]
    fn every_earlier_schema_version_migrates_and_keeps_its_labels() {
        for start in 1..=MIGRATIONS.len() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(DB_FILE);
            {
                let mut c = Connection::open(&path).unwrap();
                for (i, step) in MIGRATIONS.iter().take(start).enumerate() {
                    c.execute_batch(step).unwrap();
                    c.pragma_update(None, "user_version", (i + 1) as i64)
                        .unwrap();
                }
                insert_label(&mut c, &label("old")).unwrap();
            }
            let (store, thread) = open(dir.path()).unwrap();
            store.save_label_blocking(label("new")).unwrap();
            drop(store);
            thread.join();
            let r = reader(dir.path()).unwrap();
            let v: i64 = r
                .pragma_query_value(None, "user_version", |x| x.get(0))
                .unwrap();
            let n: i64 = r
                .query_row("SELECT count(*) FROM labels", [], |x| x.get(0))
                .unwrap();
            assert_eq!(
                (v as usize, n),
                (MIGRATIONS.len(), 2),
                "from version {start}"
            );
        }
    }

    fn audit_entry(call: &str, event: AuditEvent) -> AuditEntry {
        AuditEntry {
            created_ms: 5,
            session: "s".into(),
            incident: Some(3),
            call: call.into(),
            action: "ec2.reboot_instance",
            target: r#"{"type":"instance","instance_id":"i-0abc"}"#.into(),
            preview: "ec2:RebootInstances InstanceIds=[i-0abc]".into(),
            event,
            actor: "oncall".into(),
            reason: SafeText::default(),
            request_id: String::new(),
            detail: SafeText::default(),
        }
    }

    #[test]
    fn audit_rows_round_trip_and_an_unanswered_request_is_outcome_unknown() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            audit(dir.path()).unwrap().is_empty(),
            "no store yet: no rows"
        );
        let (store, thread) = open(dir.path()).unwrap();
        for (call, event) in [
            ("a", AuditEvent::Suggested),
            ("a", AuditEvent::Approved),
            ("a", AuditEvent::Request),
            ("a", AuditEvent::Response),
            ("b", AuditEvent::Request),
            // A retry whose first request never got an answer.
            ("c", AuditEvent::Request),
            ("c", AuditEvent::Request),
            ("c", AuditEvent::Error),
        ] {
            store.save_audit_blocking(audit_entry(call, event)).unwrap();
        }
        drop(store);
        thread.join();
        let rows = audit(dir.path()).unwrap();
        assert_eq!(rows.len(), 8);
        assert_eq!(rows[0].event, "suggested");
        assert_eq!(rows[0].target["instance_id"], "i-0abc");
        let unknown: Vec<(&str, &str)> = rows
            .iter()
            .filter(|r| r.outcome_unknown)
            .map(|r| (r.call.as_str(), r.event.as_str()))
            .collect();
        assert_eq!(unknown, [("b", "request"), ("c", "request")]);
        assert!(!rows[6].outcome_unknown, "the retry was answered");
    }

    #[test]
    fn model_saves_round_trip_with_versions() {
        let dir = tempfile::tempdir().unwrap();
        let (store, thread) = open(dir.path()).unwrap();
        assert_eq!(load_model(dir.path(), "ranking").unwrap(), None);
        store.save_model("ranking", 1, "{\"a\":1}".into());
        store.save_model("ranking", 2, "{\"a\":2}".into());
        drop(store);
        thread.join();
        assert_eq!(
            load_model(dir.path(), "ranking").unwrap(),
            Some(("{\"a\":2}".to_string(), 2))
        );
    }

    #[test]
    fn miner_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (store, thread) = open(dir.path()).unwrap();
        assert_eq!(load_miner(dir.path()).unwrap(), None);
        store.save_miner(1, "{\"a\":1}".into());
        store.save_miner(2, "{\"a\":2}".into());
        drop(store);
        thread.join();
        assert_eq!(
            load_miner(dir.path()).unwrap().as_deref(),
            Some("{\"a\":2}")
        );
    }

    #[test]
    fn migrations_are_idempotent_and_refuse_newer_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let mut c = open_writer(&path).unwrap();
        migrate(&mut c, &path).unwrap();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        c.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(
            migrate(&mut c, &path),
            Err(StoreError::TooNew { .. })
        ));
    }
}
