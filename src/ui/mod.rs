//! The console: a terminal loop that feeds source batches to the engine, turns keys into
//! [`app::Action`]s, queues labels to the store, polls the analyst model's streamed answers
//! ([`analysis`]) and caches them, hands approved actions to the executor (or the demo's
//! simulated account) and writes their audit rows, and redraws at most every frame interval.

pub mod analysis;
pub mod app;
pub mod approval;
pub mod learning;
pub mod picker;
pub mod view;

use crate::source::SourceMsg;
use crate::store::{LabelValue, Store};
use app::{App, LabelTarget, action_for};
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;

/// Redraws are coalesced to this interval: data can arrive thousands of times a second.
const FRAME: Duration = Duration::from_millis(100);
/// How often the mined templates are saved while the console runs (and once at exit), so a
/// crash loses at most this much template history.
const TEMPLATE_SAVE_EVERY: Duration = Duration::from_secs(60);
/// How long the lookups before a confirm popup may take; a hung endpoint must not leave the
/// suggestion "looking up" forever.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Records handled between two looks at the keyboard, so a big history never freezes the keys.
const INGEST_BUDGET: usize = 20_000;

type Ack = Pin<Box<dyn Future<Output = (LabelTarget, LabelValue, Result<i64, String>)> + Send>>;

/// What the console acts with: AWS through an executor, or the demo's simulated account.
#[derive(Default)]
pub struct Actions {
    pub executor: Option<std::sync::Arc<crate::action::execute::Executor>>,
    pub guards: crate::action::guard::GuardContext,
    /// The demo scenario's truth: the simulated system answers for AWS.
    pub truth: Option<crate::sim::GroundTruth>,
}

/// Answers from action tasks.
enum ActionEvent {
    Resolved {
        s: Box<approval::Suggestion>,
        result: Result<crate::action::catalog::Action, String>,
        facts: Option<crate::action::guard::InstanceFacts>,
    },
    Finished {
        call: String,
        kind: crate::action::catalog::ActionKind,
        ctx: crate::action::rank::Context,
        result: Result<String, String>,
        outcome: Option<crate::action::rank::Feedback>,
        /// For a real run: the incident and approval row its verification watch starts from.
        watch: Option<(u64, Box<crate::store::AuditEntry>)>,
        /// What the run changed, for undo.
        executed: Option<Box<crate::action::execute::Executed>>,
    },
    Facts {
        incident: u64,
        facts: crate::action::rank::LiveFacts,
    },
}

/// Runs the console until the operator quits. `store` is `None` only where persistence is off.
pub async fn run(
    mut app: App,
    mut rx: mpsc::Receiver<SourceMsg>,
    store: Option<Store>,
    on_incident: impl Fn(&App, u64),
    commands: Option<mpsc::Sender<picker::Command>>,
    actions: Actions,
) -> (App, anyhow::Result<()>) {
    let (act_tx, mut act_rx) = mpsc::unbounded_channel::<ActionEvent>();
    let mut terminal = ratatui::init();
    let mut keys = EventStream::new();
    let mut acks: FuturesUnordered<Ack> = FuturesUnordered::new();
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut drawn = None;
    let mut saved = (std::time::Instant::now(), 0u64);
    let mut source_open = true;
    // A console that opens on the picker has its first search queued already.
    send_commands(&mut app, commands.as_ref());
    let result: anyhow::Result<()> = loop {
        if dirty {
            if let Err(e) = terminal.draw(|f| view::draw(f, &app)) {
                break Err(e.into());
            }
            drawn = Some(view_key(&app));
            dirty = false;
        }
        tokio::select! {
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) if app.approval.popup.is_some() => {
                    app.popup_key(k, now_ms());
                    dispatch(&mut app, store.as_ref(), &actions, &act_tx);
                    dirty = true;
                }
                Some(Ok(Event::Key(k))) if app.learning.typing.is_some() => {
                    app.note_key(k);
                    dirty = true;
                }
                Some(Ok(Event::Key(k))) if app.picker.is_some() => {
                    app.picker_key(k);
                    send_commands(&mut app, commands.as_ref());
                    dirty = true;
                }
                Some(Ok(Event::Key(k))) => {
                    if let Some(action) = action_for(k) {
                        let now = now_ms();
                        if let Some((target, label)) = app.update(action, now) {
                            if let Some(inc) = app.selected_incident() {
                                on_incident(&app, inc.id);
                            }
                            let value = label.label;
                            match store.as_ref().map(|s| s.save_label(label)) {
                                Some(Ok(rx)) => acks.push(Box::pin(async move {
                                    let res = rx.await.unwrap_or_else(|_| Err("store writer stopped".into()));
                                    (target, value, res)
                                })),
                                Some(Err(e)) => app.label_result(target, value, Err(e.to_string())),
                                None => app.label_result(target, value, Err("no store in this mode".into())),
                            }
                        }
                        send_commands(&mut app, commands.as_ref());
                        app.note_suggestions(now);
                        dispatch(&mut app, store.as_ref(), &actions, &act_tx);
                        dirty = true;
                    }
                }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e.into()),
                None => break Ok(()),
            },
            msg = rx.recv(), if source_open => {
                match msg {
                    Some(m) => {
                        let mut handled = handle(&mut app, m, &on_incident);
                        while handled < INGEST_BUDGET {
                            match rx.try_recv() {
                                Ok(m) => handled += handle(&mut app, m, &on_incident),
                                Err(_) => break,
                            }
                        }
                        // An unattended notification for a new incident.
                        if !app.approval.outbox.is_empty() {
                            dispatch(&mut app, store.as_ref(), &actions, &act_tx);
                        }
                    }
                    None => source_open = false,
                }
            },
            Some((target, value, res)) = acks.next(), if !acks.is_empty() => {
                app.label_result(target, value, res);
                dirty = true;
            },
            Some(ev) = act_rx.recv() => {
                let now = now_ms();
                match ev {
                    ActionEvent::Resolved { s, result, facts } => {
                        if let Some(f) = facts {
                            app.approval.facts.entry(s.incident).or_default().instance = Some(f);
                        }
                        let msg = app.approval.resolved(*s, result);
                        if !msg.is_empty() {
                            app.status = msg;
                        }
                    }
                    ActionEvent::Facts { incident, facts } => {
                        app.approval.facts.insert(incident, facts);
                    }
                    ActionEvent::Finished { call, kind, ctx, result, outcome, watch, executed } => {
                        let ran = result.is_ok();
                        if let Some(exec) = executed {
                            app.approval.executed.insert(call.clone(), *exec);
                        }
                        app.status = app.approval.finished(&call, kind, &ctx, result, outcome, now);
                        if ran
                            && let Some((id, entry)) = watch
                            && let Some(inc) = app.engine.incident(id)
                        {
                            let w = approval::Watch::new(call, ctx, inc, app.engine.clock_ms(), *entry, kind);
                            app.approval.watches.push(w);
                        }
                        save_ranking(store.as_ref(), &app);
                    }
                }
                app.revision += 1;
                dispatch(&mut app, store.as_ref(), &actions, &act_tx);
                dirty = true;
            },
            _ = frame.tick() => {
                // Redraw for data only when data or time moved: an idle console stays idle.
                dirty |= drawn.as_ref() != Some(&view_key(&app));
                dirty |= analyst_turn(&mut app, store.as_ref());
                let (trained, changed) = app.learning_turn();
                if trained {
                    save_learner(store.as_ref(), &app);
                }
                dirty |= changed;
                if !app.approval.watches.is_empty() {
                    let clock = app.engine.clock_ms();
                    let engine = &app.engine;
                    let said = app.approval.verify_due(clock, |id| engine.incident(id).cloned());
                    if let Some(last) = said.last() {
                        app.status = last.clone();
                        save_ranking(store.as_ref(), &app);
                        dispatch(&mut app, store.as_ref(), &actions, &act_tx);
                        dirty = true;
                    }
                }
                if let Some(store) = &store
                    && saved.0.elapsed() >= TEMPLATE_SAVE_EVERY && saved.1 != app.engine.lines() {
                        save_templates(store, &app);
                        saved = (std::time::Instant::now(), app.engine.lines());
                    }
            }
        }
        if app.quit {
            break Ok(());
        }
    };
    // Give pending label writes a moment to commit so "saved" means saved before we exit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !acks.is_empty() && tokio::time::Instant::now() < deadline {
        let _ = tokio::time::timeout_at(deadline, acks.next()).await;
    }
    ratatui::restore();
    (app, result)
}

/// Takes in what the analyst model streamed, keeps finished answers in the store, and asks
/// about the selected incident when its answer is missing or out of date.
fn analyst_turn(app: &mut App, store: Option<&Store>) -> bool {
    let (mut changed, finished) = app.analyst.poll();
    // Only the model's answers are kept: a timeout or a discarded answer is asked again later.
    if let (Some(f), Some(store)) = (finished, store)
        && matches!(f.analysis.who, crate::analyst::consult::Who::Model { .. })
        && let Ok(text) = serde_json::to_string(&f.analysis)
    {
        let incident = app
            .engine
            .incident(f.incident)
            .map(|i| i.title())
            .unwrap_or_default();
        store.save_analysis(&f.key, &incident, now_ms(), text);
    }
    let dir = store
        .and_then(|s| s.path().parent())
        .map(std::path::Path::to_path_buf);
    changed |= app.ask_analyst(|key| {
        let text = crate::store::load_analysis(dir.as_deref()?, key).ok()??;
        serde_json::from_str(&text).ok()
    });
    changed
}

/// Keeps each trained version of the learner, so `learn status` can say which one runs.
fn save_learner(store: Option<&Store>, app: &App) {
    let l = &app.learning.learner;
    if let (Some(store), Some(forest)) = (store, l.forest())
        && let Ok(state) = serde_json::to_string(forest)
    {
        store.save_model(crate::learn::MODEL_NAME, now_ms(), state);
    }
}

/// What a redraw depends on besides keys: data, time, and the messages sources send.
fn view_key(app: &App) -> (u64, i64, String, bool, u64) {
    (
        app.engine.lines(),
        app.engine.clock_ms(),
        app.status.clone(),
        app.source_done.is_some(),
        app.revision,
    )
}

fn handle(app: &mut App, msg: SourceMsg, on_incident: &impl Fn(&App, u64)) -> usize {
    match msg {
        SourceMsg::Batch(batch) => {
            let n = batch.len();
            for rec in batch {
                let out = app.engine.ingest(rec);
                for id in out.new_incidents {
                    on_incident(app, id);
                    app.notify_unattended(id, now_ms());
                }
            }
            n
        }
        SourceMsg::Clock(ms) => {
            app.engine.advance(ms);
            1
        }
        SourceMsg::Done(text) => {
            app.source_done = Some(text);
            1
        }
        SourceMsg::Notice(text) => {
            app.status = text;
            1
        }
        SourceMsg::Feeds(status) => {
            app.feeds = Some(status);
            app.revision += 1;
            1
        }
        SourceMsg::Groups(list) => {
            app.group_list(list);
            1
        }
    }
}

/// Carries out what the approval state asks for: audit rows, live lookups, runs.
fn dispatch(
    app: &mut App,
    store: Option<&Store>,
    actions: &Actions,
    tx: &mpsc::UnboundedSender<ActionEvent>,
) {
    for req in std::mem::take(&mut app.approval.outbox) {
        match req {
            approval::Request::Audit(entry) => {
                if let Some(store) = store.cloned() {
                    tokio::spawn(async move {
                        if let Err(e) = store.save_audit(entry).await {
                            tracing::error!("audit row not saved: {e}");
                        }
                    });
                }
            }
            approval::Request::Undo {
                call,
                exec,
                incident,
                ctx,
            } => {
                let kind = exec.action.kind;
                let Some(ex) = actions.executor.clone() else {
                    app.approval.executed.insert(call, *exec);
                    app.status = "undo needs the AWS executor (stormwatch tail)".into();
                    continue;
                };
                let audit = call_audit(app, store, incident, &call);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let result = ex
                        .undo(&exec, &audit)
                        .await
                        .map(|d| format!("undone: {d}"))
                        .map_err(|e| format!("undo failed: {e}"));
                    let _ = tx.send(ActionEvent::Finished {
                        call,
                        kind,
                        ctx,
                        result,
                        outcome: None,
                        watch: None,
                        executed: None,
                    });
                });
            }
            approval::Request::Facts {
                incident,
                instance,
                function,
            } => {
                if let Some(ex) = actions.executor.clone() {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let lookup = ex.live_facts(instance.as_deref(), function.as_deref());
                        // Without an answer the ranking goes on without these facts.
                        if let Ok(facts) = tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                            let _ = tx.send(ActionEvent::Facts { incident, facts });
                        }
                    });
                }
            }
            approval::Request::Resolve { s } => {
                let s = Box::new(s);
                let Some(ex) = actions.executor.clone() else {
                    let _ = tx.send(ActionEvent::Resolved {
                        s,
                        result: Err("no AWS executor in this mode".into()),
                        facts: None,
                    });
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (result, facts) = match tokio::time::timeout(
                        LOOKUP_TIMEOUT,
                        ex.resolve(&s.action),
                    )
                    .await
                    {
                        Ok(Ok(r)) => (Ok(r.action), r.instance),
                        Ok(Err(e)) => (Err(e.to_string()), None),
                        Err(_) => (
                            Err(format!(
                                "AWS did not answer the lookups in {} s; check the endpoint and try again",
                                LOOKUP_TIMEOUT.as_secs()
                            )),
                            None,
                        ),
                    };
                    let _ = tx.send(ActionEvent::Resolved { s, result, facts });
                });
            }
            approval::Request::Run {
                authorized,
                call,
                incident,
                approved,
                ctx,
            } => {
                let kind = authorized.action().kind;
                let message = app
                    .engine
                    .incident(incident)
                    .map(|i| format!("stormwatch incident #{}: {}", i.id, i.title()))
                    .unwrap_or_default();
                let audit = call_audit(app, store, incident, &call);
                let tx = tx.clone();
                if let Some(ex) = actions.executor.clone() {
                    let guards = actions.guards.clone();
                    let watch = Some((incident, approved.clone()));
                    tokio::spawn(async move {
                        let (result, executed) =
                            match run_on_aws(&ex, authorized, approved, &guards, &audit, &message)
                                .await
                            {
                                Ok((detail, exec)) => (Ok(detail), Some(Box::new(exec))),
                                Err(e) => (Err(e), None),
                            };
                        let _ = tx.send(ActionEvent::Finished {
                            call,
                            kind,
                            ctx,
                            result,
                            outcome: None,
                            watch,
                            executed,
                        });
                    });
                } else if let Some(truth) = &actions.truth {
                    let found = app
                        .engine
                        .incident(incident)
                        .and_then(|i| crate::eval::agent::truth_for(i, &truth.incidents));
                    let action = authorized.action().clone();
                    let (result, outcome) = match found {
                        Some(t) => {
                            let (f, _) = crate::eval::agent::respond(t, &action);
                            (Ok(format!("simulated, no AWS call: {}", outcome_text(f))), Some(f))
                        }
                        None => (Ok("simulated, no AWS call: no injected incident here, so nothing changed".into()), Some(crate::action::rank::Feedback::NotResolved)),
                    };
                    let detail = result.clone().unwrap_or_default();
                    tokio::spawn(async move {
                        let store_ok = match &audit.store {
                            Some(s) => s.save_audit(*approved).await.is_ok(),
                            None => true,
                        };
                        let written = store_ok
                            && audit
                                .write(
                                    &action,
                                    crate::store::AuditEvent::Request,
                                    "",
                                    "",
                                    &action.preview(),
                                )
                                .await
                                .is_ok()
                            && audit
                                .write(&action, crate::store::AuditEvent::Response, "", "", &detail)
                                .await
                                .is_ok();
                        let result = if written {
                            result
                        } else {
                            Err("audit not written; see the log".into())
                        };
                        let _ = tx.send(ActionEvent::Finished {
                            call,
                            kind,
                            ctx,
                            result,
                            outcome,
                            watch: None,
                            executed: None,
                        });
                    });
                } else {
                    let _ = tx.send(ActionEvent::Finished {
                        call,
                        kind,
                        ctx,
                        result: Err("nothing to run actions with in this mode".into()),
                        outcome: None,
                        watch: None,
                        executed: None,
                    });
                }
            }
        }
    }
}

/// Where one call's audit rows go: this session, the operator, the store.
fn call_audit(
    app: &App,
    store: Option<&Store>,
    incident: u64,
    call: &str,
) -> crate::action::execute::CallAudit {
    crate::action::execute::CallAudit {
        store: store.cloned(),
        session: app.session.clone(),
        incident: Some(incident),
        call: call.to_string(),
        actor: app.approval.actor.clone(),
    }
}

fn outcome_text(f: crate::action::rank::Feedback) -> &'static str {
    use crate::action::rank::Feedback;
    match f {
        Feedback::Resolved => "resolved the incident",
        Feedback::NotResolved => "did not resolve the incident",
        Feedback::MadeWorse => "made it worse",
        Feedback::Confirmed | Feedback::Rejected => "",
    }
}

/// Approved row, the audited call, then the read-back of the resource.
async fn run_on_aws(
    ex: &crate::action::execute::Executor,
    authorized: crate::action::policy::Authorized,
    approved: Box<crate::store::AuditEntry>,
    guards: &crate::action::guard::GuardContext,
    audit: &crate::action::execute::CallAudit,
    message: &str,
) -> Result<(String, crate::action::execute::Executed), String> {
    if let Some(store) = &audit.store {
        store
            .save_audit(*approved)
            .await
            .map_err(|e| format!("approval not recorded, nothing was run: {e}"))?;
    }
    let exec = ex
        .execute(authorized, guards, audit, message)
        .await
        .map_err(|e| e.to_string())?;
    let verified = match ex.verify(&exec, audit).await {
        Ok(v) if v.holds => format!("verified: {}", v.state),
        Ok(v) => format!("NOT in effect yet: {}", v.state),
        Err(e) => format!("could not verify: {e}"),
    };
    Ok((format!("{} · {verified}", exec.detail), exec))
}

/// Hands the console's commands to the sources; a full queue drops them with a word on the
/// status line rather than blocking the keys.
fn send_commands(app: &mut App, commands: Option<&mpsc::Sender<picker::Command>>) {
    for c in std::mem::take(&mut app.outbox) {
        match commands {
            Some(tx) => {
                if tx.try_send(c).is_err() {
                    app.status = "busy: try again in a moment".into();
                }
            }
            None => app.status = "nothing to send this to in this mode".into(),
        }
    }
}

/// Queues the action ranking for the store after it learned something.
fn save_ranking(store: Option<&Store>, app: &App) {
    match (store, serde_json::to_string(&app.approval.bandit)) {
        (Some(store), Ok(state)) => store.save_model(approval::MODEL_NAME, now_ms(), state),
        (None, _) => {}
        (_, Err(e)) => tracing::error!("action ranking not serialisable: {e}"),
    }
}

/// Queues the miner's state for the store.
pub fn save_templates(store: &Store, app: &App) {
    match app.engine.miner().to_json() {
        Ok(state) => store.save_miner(now_ms(), state),
        Err(e) => tracing::error!("templates not serialisable: {e}"),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
