//! # stormwatch
//!
//! A terminal incident console for AWS. Records flow one way, from sources through a synchronous,
//! deterministic engine to the console and the store:
//!
//! ```text
//! source ─► Record ─► parse ─► template ─► window ─► detect ─► incident ─► console (ui)
//! (async)   (SafeText)                                                      │  labels
//!                                                           store (SQLite) ◄┘
//! ```
//!
//! ## Module map
//!
//! | module | what it does |
//! |---|---|
//! | [`safe_text`] | makes untrusted text inert: escapes, bidi controls, NUL, invalid UTF-8, length cap |
//! | [`record`] | the [`record::Record`] every source produces (arrival time, event time, group, stream, text) |
//! | [`source`] | paces records into the console (history at once, then live at a speed); writes replay files |
//! | [`aws`] | AWS configuration (profiles, SSO, `--region`, `--endpoint-url`) and advice for AWS errors |
//! | [`tail`] | CloudWatch Logs polling (FilterLogEvents): per-group tasks, shared rate limit, look-back and eventId de-duplication, the counters every reader shares |
//! | [`trail_history`] | CloudTrail as a source: trail log groups from DescribeTrails, LookupEvents polling and per-incident principal history (2 TPS, EventId de-duplication) |
//! | [`live`] | CloudWatch Logs Live Tail (StartLiveTail): sessions of ten groups, reconnects, backfill of history, gaps and sampled intervals, billed minutes |
//! | [`upload`] | writes events into CloudWatch Logs (`demo --to-cloudwatch`) |
//! | [`files`] | reads exported logs: CloudWatch JSON lines, CloudTrail delivery files, subscription payloads, metric CSV (`timestamp,value`), raw lines |
//! | [`sim`] | the demo's simulated AWS account: real-format EC2, Lambda, S3, VPC and CloudTrail lines, injected incidents, distractors, ground truth |
//! | [`parse`] | message → format, level, entity and typed fields: one module per format (syslog with sshd/sudo, Lambda, S3 access, VPC flow v2 and custom, CloudTrail, JSON, text) |
//! | [`template`] | streaming template miner (Drain family) |
//! | [`window`] | parsed events → per-entity signal observations by event-time minute, failure vs volume signals |
//! | [`novelty`] | lines unlike what their source showed before: new templates, new values at categorical positions of errors |
//! | [`detect`] | scores each observation 0..1 against the series' own or its population's baseline, with an explanation |
//! | [`source_window`] | per-source windows by event-time minute (lines per template, levels, new kinds) scored when each minute completes: template rate, changepoint, isolation forest |
//! | [`changepoint`] | Bayesian online changepoint detection on a count series (a template's lines per minute) |
//! | [`forest`] | each source's 5-minute feature vectors judged by an isolation forest retrained on a rolling baseline |
//! | [`isolation`] | seeded extended isolation forest in one flat node array |
//! | [`ensemble`] | one scale for all scorers, failure signals lifted by source context, per-source thresholds that adapt to false alarms |
//! | [`forecast`] | a metric's seasonal forecast (augurs MSTL + AutoETS) with a self-calibrated band: the expected value an incident shows |
//! | [`series`] | online detector for one numeric series (metrics, CSV `timestamp,value`): multi-scale robust deviations judged against the series' own extremes |
//! | [`trail`] | unsupervised per-event CloudTrail scorer: novelty per principal, denied-call bursts, sensitive and log-tampering calls, user-agent novelty; explained |
//! | [`incident`] | threshold crossings → anomalies → incidents linked by entity, instance, IP, user or access key |
//! | [`engine`] | wires the stages; keeps per-source counters, the tail and score history for the console; blends in what the labels taught |
//! | [`learn`] | learning from labels: line features, a seeded random forest, the blend with the engine's score and per-template suppressions, the label queue, `learn status` |
//! | [`action`] | remediation catalog, guards, approval gate, evidence-grounded proposals, the ranking bandit, and the audited executor on AWS (dry run, verify, undo) |
//! | [`analyst`] | evidence packs, the answer schema and its grammar, the local model's thread (llama.cpp: streamed, cancellable, deadline-bound; greedy decoding that asks the grammar last; the entity chosen by a question of its own, with and without the facts), the answer check with the rule-based fallback, the flagger for ids not in the pack, the model download, `bench analyst` |
//! | [`store`] | SQLite (WAL) behind one writer thread: sessions, incidents, labels, the remediation audit log, the ranking, cached analyst answers; versioned migrations |
//! | [`ui`] | the console: ratatui view, key handling, label flow with notes, the label queue and the learner's trainer thread, the analyst's streamed answers, action suggestions with the confirm popup and audit pane |
//! | [`eval`] | `eval demo` (the engine against the simulator's ground truth), `eval agent` (the action ranking, trained and scored in the simulator), `eval analyst` (the analysts' answers on the demo's injected incidents), `eval templates` (the miner against loghub), `eval learning` (labels from the queue vs random on self-labelled logs), `eval nab` (the series detector against NAB, NAB's scoring), `eval cloudtrail` (the event scorer against a labelled capture) |
//! | [`bench`] | `bench templates`: miner and parse + template throughput on a mixed corpus |
//! | [`config`] | TOML config and the paths it controls |
//! | [`logging`] | the file log (stdout belongs to the console) |
//! | [`owner_only`] | creates the store's and the log's files and directory readable by their owner only |
//! | [`timefmt`] | UTC time formatting |
//! | [`rng`] | seeded random numbers and platform-stable math (simulator, isolation forest) |
//! | [`cli`] | command-line modes |
//!
//! ## Determinism
//!
//! The engine reads no clock: its time is the arrival time of the records it is fed, so live,
//! replay and evaluation runs over the same records give the same scores. The isolation forest
//! draws from a generator with a fixed seed. The simulator's randomness comes from one seed
//! (`demo.seed` in the config, `--seed`).

pub mod action;
pub mod analyst;
pub mod aws;
pub mod bench;
pub mod changepoint;
pub mod cli;
pub mod config;
pub mod detect;
pub mod engine;
pub mod ensemble;
pub mod eval;
pub mod files;
pub mod forecast;
pub mod forest;
pub mod incident;
pub mod isolation;
pub mod learn;
pub mod live;
pub mod logging;
pub mod novelty;
pub mod owner_only;
pub mod parse;
pub mod record;
pub mod rng;
pub mod safe_text;
pub mod series;
pub mod sim;
pub mod source;
pub mod source_window;
pub mod store;
pub mod tail;
pub mod template;
pub mod timefmt;
pub mod trail;
pub mod trail_history;
pub mod ui;
pub mod upload;
pub mod window;
