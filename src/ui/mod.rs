//! The console: a terminal loop that feeds source batches to the engine, turns keys into
//! [`app::Action`]s, queues labels to the store, and redraws at most every frame interval.

pub mod app;
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
/// Records handled between two looks at the keyboard, so a big history never freezes the keys.
const INGEST_BUDGET: usize = 20_000;

type Ack = Pin<Box<dyn Future<Output = (LabelTarget, LabelValue, Result<i64, String>)> + Send>>;

/// Runs the console until the operator quits. `store` is `None` only where persistence is off.
pub async fn run(
    mut app: App,
    mut rx: mpsc::Receiver<SourceMsg>,
    store: Option<Store>,
    on_incident: impl Fn(&App, u64),
    commands: Option<mpsc::Sender<picker::Command>>,
) -> (App, anyhow::Result<()>) {
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
                    }
                    None => source_open = false,
                }
            },
            Some((target, value, res)) = acks.next(), if !acks.is_empty() => {
                app.label_result(target, value, res);
                dirty = true;
            },
            _ = frame.tick() => {
                // Redraw for data only when data or time moved: an idle console stays idle.
                dirty |= drawn.as_ref() != Some(&view_key(&app));
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
