//! Console state and key handling, free of terminal I/O so it can be driven from tests.

use super::approval::{Approval, Runner, Suggestion};
use super::picker::{Command, GroupList, Picker, PickerOutcome};
use crate::action::policy::{Gate, Policy};
use crate::action::propose::ProposalConfig;
use crate::action::rank::Context;
use crate::engine::Engine;
use crate::incident::{Anomaly, Incident};
use crate::safe_text::SafeText;
use crate::store::{Label, LabelValue};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Sources,
    Incidents,
    Detail,
    Tail,
}

impl Focus {
    const ORDER: [Focus; 4] = [Focus::Sources, Focus::Incidents, Focus::Detail, Focus::Tail];

    fn step(self, by: isize) -> Focus {
        let i = Self::ORDER.iter().position(|f| *f == self).unwrap_or(0) as isize;
        Self::ORDER[(i + by).rem_euclid(Self::ORDER.len() as isize) as usize]
    }
}

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
    Back,
    Up,
    Down,
    Top,
    Bottom,
    NextPane,
    PrevPane,
    Pause,
    NextIncident,
    PrevIncident,
    Open,
    Label(LabelValue),
    /// Open the log group picker (tail only).
    AddGroups,
    /// Approve the selected suggestion (opens the confirm popup).
    Approve,
    /// Reject the selected suggestion, with an optional reason.
    Reject,
    NextSuggestion,
    PrevSuggestion,
    ToggleAudit,
    /// Put back what the selected suggestion's run changed.
    Undo,
    /// Ask the analyst model about the selected incident again.
    Reask,
    /// Show the label queue in the tail pane, or the tail again.
    ToggleQueue,
    /// Type a note that the next label carries.
    Note,
}

pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::Tab => Action::NextPane,
        KeyCode::BackTab => Action::PrevPane,
        KeyCode::Char(' ') => Action::Pause,
        KeyCode::Char('n') => Action::NextIncident,
        KeyCode::Char('N') => Action::PrevIncident,
        KeyCode::Enter => Action::Open,
        KeyCode::Char('a') => Action::Label(LabelValue::Anomaly),
        KeyCode::Char('x') => Action::Label(LabelValue::Normal),
        KeyCode::Char('u') => Action::Label(LabelValue::Unsure),
        KeyCode::Char('+') => Action::AddGroups,
        KeyCode::Char('y') => Action::Approve,
        KeyCode::Char('r') => Action::Reject,
        KeyCode::Char(']') => Action::NextSuggestion,
        KeyCode::Char('[') => Action::PrevSuggestion,
        KeyCode::Char('A') => Action::ToggleAudit,
        KeyCode::Char('U') => Action::Undo,
        KeyCode::Char('R') => Action::Reask,
        KeyCode::Char('L') => Action::ToggleQueue,
        KeyCode::Char('c') => Action::Note,
        _ => return None,
    })
}

/// Longest note a label carries.
const NOTE_MAX: usize = 200;

/// Where a label stands: written to the queue, or committed.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelState {
    Saving(LabelValue),
    Saved(LabelValue, i64),
    Failed(String),
}

/// What labels are about: an incident (the whole story), one anomaly in it, or one line from
/// the label queue (`group@arrival_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelTarget {
    Incident(u64),
    Anomaly(u64),
    Line(String),
}

impl LabelTarget {
    fn kind(&self) -> &'static str {
        match self {
            LabelTarget::Incident(_) => "incident",
            LabelTarget::Anomaly(_) => "anomaly",
            LabelTarget::Line(_) => "line",
        }
    }

    fn id(&self) -> String {
        match self {
            LabelTarget::Incident(i) | LabelTarget::Anomaly(i) => i.to_string(),
            LabelTarget::Line(l) => l.clone(),
        }
    }
}

pub struct App {
    pub engine: Engine,
    pub title: String,
    pub session: String,
    pub focus: Focus,
    pub show_help: bool,
    pub paused: bool,
    /// Tail length when paused, so the view stays put while lines keep arriving.
    pub paused_at: u64,
    pub source_idx: usize,
    /// Selected incident by id; `None` follows the newest.
    pub incident: Option<u64>,
    pub anomaly_idx: usize,
    /// Lines scrolled back from the newest in the tail.
    pub tail_back: usize,
    pub labels: HashMap<LabelTarget, LabelState>,
    pub status: String,
    /// Live readers' counters (tail only).
    pub feeds: Option<crate::tail::FeedStatus>,
    /// The log group picker, while open.
    pub picker: Option<Picker>,
    /// Whether a live source can search and add groups (tail).
    pub can_pick: bool,
    /// Commands for the sources, sent by the run loop after each key.
    pub outbox: Vec<Command>,
    /// Bumped when something drawn changes that the data counters do not show (picker, feeds).
    pub revision: u64,
    pub source_done: Option<String>,
    pub speed: Option<f64>,
    pub color: bool,
    pub quit: bool,
    /// Suggestions, the approval popups and the audit pane.
    pub approval: Approval,
    /// The analyst's answers and the question in flight to the local model.
    pub analyst: super::analysis::Analyst,
    /// The learner's trainer thread and the label queue.
    pub learning: super::learning::Learning,
}

impl App {
    pub fn new(engine: Engine, title: String, session: String) -> Self {
        let threshold = engine.threshold();
        App {
            engine,
            title,
            session: session.clone(),
            focus: Focus::Incidents,
            show_help: false,
            paused: false,
            paused_at: 0,
            source_idx: 0,
            incident: None,
            anomaly_idx: 0,
            tail_back: 0,
            labels: HashMap::new(),
            status: "? help · Tab pane · j/k move · a anomaly · x normal · q quit".into(),
            feeds: None,
            picker: None,
            can_pick: false,
            outbox: Vec::new(),
            revision: 0,
            source_done: None,
            speed: None,
            color: true,
            quit: false,
            approval: Approval::new(
                Gate::new(Policy::default()),
                ProposalConfig::default(),
                Runner::Off(
                    "actions run in `stormwatch tail` (AWS) or the demo (simulated)".into(),
                ),
                session,
            ),
            analyst: super::analysis::Analyst::rules_only("no model loaded"),
            learning: super::learning::Learning::start(threshold, Vec::new()),
        }
    }

    /// Whether the tail pane shows the label queue and has the keys.
    fn in_queue(&self) -> bool {
        self.focus == Focus::Tail && self.learning.show
    }

    /// A key while a note is being typed: Enter keeps it for the next label, Esc drops it.
    pub fn note_key(&mut self, key: KeyEvent) {
        let Some(text) = self.learning.typing.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Enter => {
                self.learning.note = self.learning.typing.take().unwrap_or_default();
                self.status = if self.learning.note.is_empty() {
                    "note cleared".into()
                } else {
                    "note kept: the next label (a, x, u) carries it".into()
                };
            }
            KeyCode::Esc => {
                self.learning.typing = None;
                self.status = "note dropped".into();
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if text.chars().count() < NOTE_MAX => text.push(c),
            _ => {}
        }
        self.revision += 1;
    }

    /// Takes the trainer's newest learner into the engine and refreshes the queue. Returns
    /// whether a new learner came in, and whether the view changed.
    pub fn learning_turn(&mut self) -> (bool, bool) {
        let mut changed = false;
        let trained = if let Some(l) = self.learning.poll() {
            self.engine.set_learner(l.clone());
            if self.learning.show {
                let model = if l.forest().is_some() {
                    format!("model v{} trained on {} labels", l.version(), l.labels())
                } else {
                    format!(
                        "{} labels kept; the model trains once both anomaly and normal labels exist",
                        l.labels()
                    )
                };
                self.status = format!("{model}; templates suppressed: {}", l.suppressed().count());
            }
            changed = true;
            true
        } else {
            false
        };
        (trained, changed | self.learning.refresh(&self.engine))
    }

    /// Labels the queue's selected line: saved like every label, and taught to the learner.
    fn label_line(&mut self, value: LabelValue, now_ms: i64) -> Option<(LabelTarget, Label)> {
        let Some(item) = self.learning.take_selected() else {
            self.status = "the label queue is empty: lines arrive with the tail".into();
            return None;
        };
        let example = item.example(value == LabelValue::Anomaly);
        let target = LabelTarget::Line(item.target_id());
        let label = Label {
            created_ms: now_ms,
            session: self.session.clone(),
            target_kind: target.kind(),
            target_id: target.id(),
            label: value,
            source: SafeText::new(&item.group),
            entity: SafeText::default(),
            signal: String::new(),
            incident_kind: String::new(),
            score: item.features.first().map(|s| f64::from(*s)),
            event_ms: Some(item.arrival_ms),
            features: example.features_json().to_string(),
            evidence: item.text.clone(),
            note: SafeText::new(&std::mem::take(&mut self.learning.note)),
        };
        if value != LabelValue::Unsure {
            self.learning.teach(example);
        }
        self.saving(target, label)
    }

    /// The selected incident's ranked suggestions and the ranking's context.
    pub fn suggestions(&self) -> Option<(u64, Context, Vec<Suggestion>)> {
        let inc = self.selected_incident()?;
        let anomalies = self.incident_anomalies();
        let (ctx, list) = self.approval.suggestions(inc, &anomalies);
        Some((inc.id, ctx, list))
    }

    /// The selected incident's evidence pack and what the analyst says about it.
    pub fn analysis(
        &self,
        suggestions: &[Suggestion],
    ) -> Option<(crate::analyst::pack::Pack, super::analysis::AnalystView)> {
        let inc = self.selected_incident()?;
        let pack = self.pack(inc, suggestions);
        let view = self.analyst.view(inc, &pack);
        Some((pack, view))
    }

    /// Asks the analyst model about the selected incident when its answer is missing or out of
    /// date; `cached` looks one up in the store. Returns whether the view changed.
    pub fn ask_analyst(
        &mut self,
        cached: impl FnOnce(&str) -> Option<crate::analyst::consult::Analysis>,
    ) -> bool {
        let Some((_, _, suggestions)) = self.suggestions() else {
            return false;
        };
        let Some(inc) = self.selected_incident() else {
            return false;
        };
        let pack = self.pack(inc, &suggestions);
        let inc = inc.clone();
        self.analyst.want(&inc, &pack, cached)
    }

    /// The evidence pack for `inc`, offering `suggestions`' actions.
    fn pack(&self, inc: &Incident, suggestions: &[Suggestion]) -> crate::analyst::pack::Pack {
        let anomalies = self.engine.anomalies_of(inc);
        let others: Vec<String> = self
            .incidents_newest_first()
            .into_iter()
            .filter(|i| i.id != inc.id)
            .map(|i| i.main_entity.clone())
            .collect();
        let actions = crate::analyst::pack::action_ids(suggestions.iter().map(|s| &s.action));
        crate::analyst::pack::Pack::build(
            &self.engine,
            inc,
            &anomalies,
            &others,
            actions,
            self.analyst.budget,
        )
    }

    /// The selected suggestion.
    fn suggestion(&self) -> Option<Suggestion> {
        let (_, _, list) = self.suggestions()?;
        let i = self.approval.selected.min(list.len().checked_sub(1)?);
        list.get(i).cloned()
    }

    /// Records the suggestions on screen as suggested (once each).
    pub fn note_suggestions(&mut self, now_ms: i64) {
        if let Some((id, _, list)) = self.suggestions() {
            self.approval.note_shown(&list, id, now_ms);
        }
    }

    /// Sends the new incident's notification when the config lets it go out unattended.
    pub fn notify_unattended(&mut self, id: u64, now_ms: i64) {
        let Some(inc) = self.engine.incident(id).cloned() else {
            return;
        };
        let anomalies = self.engine.anomalies_of(&inc);
        if let Some(msg) = self.approval.notify_unattended(&inc, &anomalies, now_ms) {
            self.status = msg;
        }
    }

    /// A key while the confirm or reject popup is open.
    pub fn popup_key(&mut self, key: KeyEvent, now_ms: i64) {
        if let Some(status) = self.approval.popup_key(key, now_ms) {
            self.status = status;
        }
        self.revision += 1;
    }

    /// Incidents newest first, as the list shows them.
    pub fn incidents_newest_first(&self) -> Vec<&Incident> {
        self.engine.incidents().iter().rev().collect()
    }

    pub fn selected_incident(&self) -> Option<&Incident> {
        let all = self.engine.incidents();
        match self.incident {
            Some(id) => all.iter().find(|i| i.id == id),
            None => all.last(),
        }
    }

    /// The selected incident's anomalies, strongest first.
    pub fn incident_anomalies(&self) -> Vec<&Anomaly> {
        let Some(inc) = self.selected_incident() else {
            return Vec::new();
        };
        let mut v = self.engine.anomalies_of(inc);
        v.sort_by(|a, b| b.peak_score.total_cmp(&a.peak_score).then(a.id.cmp(&b.id)));
        v
    }

    /// The source the chart shows: the operator's pick while the Sources pane has focus,
    /// otherwise the source where the selected incident's strongest signal comes from.
    pub fn chart_source_idx(&self) -> usize {
        let lead = self.incident_anomalies().first().map(|a| a.group.clone());
        match lead {
            Some(group) if self.focus != Focus::Sources => self
                .engine
                .sources()
                .position(|s| *s.name == *group)
                .unwrap_or(self.source_idx),
            _ => self.source_idx,
        }
    }

    pub fn selected_anomaly(&self) -> Option<&Anomaly> {
        let v = self.incident_anomalies();
        v.get(self.anomaly_idx.min(v.len().saturating_sub(1)))
            .copied()
    }

    /// Applies an action; returns a label to persist when the action asked for one.
    pub fn update(&mut self, action: Action, now_ms: i64) -> Option<(LabelTarget, Label)> {
        if self.show_help {
            match action {
                Action::Quit => self.quit = true,
                Action::ToggleHelp | Action::Back => self.show_help = false,
                _ => {}
            }
            return None;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.show_help = true,
            Action::Back => {
                if self.approval.show_audit {
                    self.approval.show_audit = false;
                    self.revision += 1;
                } else if self.focus == Focus::Detail {
                    self.focus = Focus::Incidents;
                }
            }
            Action::NextPane | Action::PrevPane => {
                // Entering Sources starts from the source the chart was showing.
                self.source_idx = self.chart_source_idx();
                self.focus = self
                    .focus
                    .step(if action == Action::NextPane { 1 } else { -1 });
            }
            Action::Pause => {
                self.paused = !self.paused;
                self.paused_at = self.engine.lines();
                self.status = if self.paused {
                    "paused: the tail is frozen, detection continues (Space resumes)".into()
                } else {
                    "resumed".into()
                };
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::Top => self.move_by(isize::MIN / 2),
            Action::Bottom => self.move_by(isize::MAX / 2),
            Action::NextIncident => {
                self.focus = Focus::Incidents;
                self.move_by(1);
            }
            Action::PrevIncident => {
                self.focus = Focus::Incidents;
                self.move_by(-1);
            }
            Action::Open => {
                if self.focus == Focus::Incidents && self.selected_incident().is_some() {
                    self.focus = Focus::Detail;
                    self.anomaly_idx = 0;
                }
            }
            Action::Label(value) if self.in_queue() => return self.label_line(value, now_ms),
            Action::Label(value) => return self.label(value, now_ms),
            Action::ToggleQueue => {
                if self.learning.show && self.focus != Focus::Tail {
                    self.focus = Focus::Tail;
                } else {
                    self.learning.toggle();
                    self.focus = Focus::Tail;
                }
                self.learning.refresh(&self.engine);
                self.status = if self.learning.show {
                    "label queue: the lines a label teaches most · a anomaly · x normal · u unsure · c note · L tail".into()
                } else {
                    "tail".into()
                };
                self.revision += 1;
            }
            Action::Note => {
                self.learning.typing = Some(std::mem::take(&mut self.learning.note));
                self.status = "note for the next label: type, Enter keeps, Esc drops".into();
                self.revision += 1;
            }
            Action::Approve | Action::Reject => match self.suggestion() {
                Some(s) => {
                    if action == Action::Approve {
                        let msg = self.approval.approve(s, now_ms);
                        if !msg.is_empty() {
                            self.status = msg;
                        }
                    } else {
                        self.approval.reject(s);
                    }
                    self.revision += 1;
                }
                None => self.status = "no suggested action for the selected incident".into(),
            },
            Action::NextSuggestion | Action::PrevSuggestion => {
                let n = self.suggestions().map_or(0, |(_, _, l)| l.len());
                let cur = self.approval.selected.min(n.saturating_sub(1));
                self.approval.selected = if action == Action::NextSuggestion {
                    (cur + 1).min(n.saturating_sub(1))
                } else {
                    cur.saturating_sub(1)
                };
                self.revision += 1;
            }
            Action::Reask => match self.selected_incident().map(|i| i.id) {
                Some(id) => {
                    self.status = self.analyst.reask(id);
                    self.revision += 1;
                }
                None => self.status = "no incident selected".into(),
            },
            Action::Undo => match self.suggestion() {
                Some(s) => {
                    self.status = self.approval.undo(&s);
                    self.revision += 1;
                }
                None => self.status = "no suggested action for the selected incident".into(),
            },
            Action::ToggleAudit => {
                self.approval.show_audit = !self.approval.show_audit;
                self.revision += 1;
            }
            Action::AddGroups => {
                if self.can_pick {
                    let mut p = Picker::new();
                    self.outbox.push(p.open());
                    self.picker = Some(p);
                    self.revision += 1;
                } else {
                    self.status = "adding log groups works in `stormwatch tail`".into();
                }
            }
        }
        None
    }

    /// A key while the picker is open.
    pub fn picker_key(&mut self, key: crossterm::event::KeyEvent) {
        let Some(p) = self.picker.as_mut() else {
            return;
        };
        self.revision += 1;
        match p.key(key) {
            PickerOutcome::Stay => {}
            PickerOutcome::Close => self.picker = None,
            PickerOutcome::Send(c) => self.outbox.push(c),
            PickerOutcome::Done(c) => {
                if let Command::TailGroups(g) = &c {
                    self.status = format!("adding {} log group(s)", g.len());
                }
                self.outbox.push(c);
                self.picker = None;
            }
        }
    }

    /// A search's answer from the source side.
    pub fn group_list(&mut self, list: GroupList) {
        if let Some(p) = self.picker.as_mut() {
            p.answer(list);
            self.revision += 1;
        }
    }

    fn move_by(&mut self, by: isize) {
        let clamp = |i: isize, len: usize| i.clamp(0, len.saturating_sub(1) as isize) as usize;
        match self.focus {
            Focus::Sources => {
                let len = self.engine.sources().count();
                self.source_idx = clamp(self.source_idx as isize + by, len);
            }
            Focus::Incidents => {
                let list = self.incidents_newest_first();
                if list.is_empty() {
                    return;
                }
                let cur = self
                    .incident
                    .and_then(|id| list.iter().position(|i| i.id == id))
                    .unwrap_or(0);
                let next = clamp(cur as isize + by, list.len());
                self.incident = Some(list[next].id);
                self.anomaly_idx = 0;
                self.approval.selected = 0;
            }
            Focus::Detail => {
                let len = self.incident_anomalies().len();
                self.anomaly_idx = clamp(self.anomaly_idx as isize + by, len);
            }
            Focus::Tail if self.learning.show => {
                let len = self.learning.queue.len();
                self.learning.selected = clamp(self.learning.selected as isize + by, len);
                self.revision += 1;
            }
            Focus::Tail => {
                // Up scrolls back in time.
                let len = self.engine.tail().len();
                self.tail_back = clamp(self.tail_back as isize - by, len);
            }
        }
    }

    fn label(&mut self, value: LabelValue, now_ms: i64) -> Option<(LabelTarget, Label)> {
        let inc = self.selected_incident()?.clone();
        let lead = if self.focus == Focus::Detail {
            self.selected_anomaly().cloned()
        } else {
            self.incident_anomalies().first().copied().cloned()
        };
        let target = match (&lead, self.focus) {
            (Some(a), Focus::Detail) => LabelTarget::Anomaly(a.id),
            _ => LabelTarget::Incident(inc.id),
        };
        let features = lead.as_ref().map_or_else(
            || "{}".to_string(),
            |a| {
                serde_json::json!({
                    "signal": a.signal,
                    "observed": a.observed,
                    "expected": a.expected,
                    "window_min": a.window_min,
                    "first_minute": a.first_minute,
                    "last_minute": a.last_minute,
                    "templates": a.templates.iter().map(|(t, n)| serde_json::json!({"id": t, "template": self.engine.template_text(*t), "count": n})).collect::<Vec<_>>(),
                })
                .to_string()
            },
        );
        let label = Label {
            created_ms: now_ms,
            session: self.session.clone(),
            target_kind: target.kind(),
            target_id: target.id(),
            label: value,
            source: lead
                .as_ref()
                .map(|a| SafeText::new(&a.group))
                .unwrap_or_default(),
            entity: SafeText::new(
                lead.as_ref()
                    .filter(|_| matches!(target, LabelTarget::Anomaly(_)))
                    .map_or(inc.main_entity.as_str(), |a| a.entity.as_str()),
            ),
            signal: lead
                .as_ref()
                .and_then(|a| serde_json::to_value(a.signal).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            incident_kind: serde_json::to_value(inc.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            score: lead.as_ref().map(|a| a.peak_score),
            event_ms: Some(inc.first_event_ms),
            features,
            evidence: lead
                .as_ref()
                .and_then(|a| a.samples.first().cloned())
                .unwrap_or_default(),
            note: SafeText::new(&std::mem::take(&mut self.learning.note)),
        };
        // The operator's verdict moves the source's alarm bar at once; the store keeps it for
        // retraining.
        if let Some(a) = &lead {
            match value {
                LabelValue::Normal => self.engine.feedback(&a.group, a.peak_score, true),
                LabelValue::Anomaly => self.engine.feedback(&a.group, a.peak_score, false),
                LabelValue::Unsure => {}
            }
        }
        self.saving(target, label)
    }

    /// Marks a label as on its way to the store and hands it to the caller to queue.
    fn saving(&mut self, target: LabelTarget, label: Label) -> Option<(LabelTarget, Label)> {
        let value = label.label;
        self.labels
            .insert(target.clone(), LabelState::Saving(value));
        self.status = format!(
            "saving label '{}' for {}…",
            value.as_str(),
            self.describe(&target)
        );
        Some((target, label))
    }

    /// How the status line names what was labelled.
    fn describe(&self, t: &LabelTarget) -> String {
        match t {
            LabelTarget::Incident(i) => format!("incident #{i}"),
            LabelTarget::Anomaly(a) => match self.engine.anomalies().get(*a as usize) {
                Some(an) => format!(
                    "{} by {} (incident #{})",
                    an.signal.name(),
                    an.entity,
                    self.engine.incidents().get(an.incident).map_or(0, |i| i.id)
                ),
                None => format!("signal {a}"),
            },
            LabelTarget::Line(l) => format!("line {l}"),
        }
    }

    /// The store's answer for a label queued earlier.
    pub fn label_result(
        &mut self,
        target: LabelTarget,
        value: LabelValue,
        res: Result<i64, String>,
    ) {
        match res {
            Ok(row) => {
                self.status = format!(
                    "label '{}' saved for {} (row {row})",
                    value.as_str(),
                    self.describe(&target)
                );
                self.labels.insert(target, LabelState::Saved(value, row));
            }
            Err(e) => {
                self.status = format!("label NOT saved: {e}");
                self.labels.insert(target, LabelState::Failed(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineOptions;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions() {
        assert_eq!(action_for(key('q')), Some(Action::Quit));
        assert_eq!(
            action_for(key('a')),
            Some(Action::Label(LabelValue::Anomaly))
        );
        assert_eq!(
            action_for(key('x')),
            Some(Action::Label(LabelValue::Normal))
        );
        assert_eq!(
            action_for(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)),
            Some(Action::NextPane)
        );
        assert_eq!(action_for(key('Z')), None);
    }

    fn record(ms: i64, text: &str) -> crate::record::Record {
        crate::record::Record {
            arrival_ms: ms,
            ts_ms: ms,
            group: "/var/log/app".into(),
            stream: "-".into(),
            text: SafeText::new(text),
        }
    }

    #[test]
    fn queue_lines_are_labelled_with_their_features_and_a_note_and_retrain_the_learner() {
        let mut app = App::new(
            Engine::new(EngineOptions::default()),
            "t".into(),
            "s".into(),
        );
        for i in 0..40 {
            app.engine.ingest(record(
                i * 1000,
                &format!("ERROR worker {i} lost heartbeat"),
            ));
            app.engine
                .ingest(record(i * 1000 + 500, &format!("INFO request {i} served")));
        }
        app.update(Action::ToggleQueue, 0);
        assert!(app.learning.show && app.focus == Focus::Tail);
        assert_eq!(app.learning.queue.len(), 2, "one line per template");
        app.update(Action::Note, 0);
        for c in "known noisy job".chars() {
            app.note_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        app.note_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        let template = app.learning.queue[0].template.clone();
        let (target, label) = app.update(Action::Label(LabelValue::Normal), 5).unwrap();
        assert!(matches!(target, LabelTarget::Line(_)));
        assert_eq!(label.target_kind, "line");
        assert_eq!(label.note.as_str(), "known noisy job");
        let features: serde_json::Value = serde_json::from_str(&label.features).unwrap();
        assert_eq!(features["template"], template.as_str());
        assert_eq!(
            features["x"].as_array().unwrap().len(),
            crate::learn::features::DIMS
        );
        assert_eq!(
            app.learning.queue.len(),
            1,
            "the labelled line leaves the queue"
        );
        // The trainer thread answers without the console waiting on it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while app.learning.learner.labels() == 0 && std::time::Instant::now() < deadline {
            app.learning_turn();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let learner = app.learning.learner.clone();
        assert_eq!(learner.labels(), 1);
        assert_eq!(learner.template_labels(&template), (0, 1));
        assert_eq!(learner.suppressed().count(), 1);
        assert!(
            app.learning.note.is_empty(),
            "a note goes with one label only"
        );

        // The suppressed template is listed last; an anomaly label there undoes it.
        let last = app.learning.queue.len() - 1;
        assert!(app.learning.queue[last].suppressed);
        assert_eq!(app.learning.queue[last].template, template);
        app.update(Action::Bottom, 6);
        app.update(Action::Label(LabelValue::Anomaly), 7).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while app.learning.learner.labels() < 2 && std::time::Instant::now() < deadline {
            app.learning_turn();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(app.learning.learner.template_labels(&template), (1, 1));
        assert_eq!(app.learning.learner.suppressed().count(), 0);
        assert!(app.learning.queue.iter().all(|q| !q.suppressed));
    }

    #[test]
    fn help_swallows_keys_and_labels_need_an_incident() {
        let mut app = App::new(
            Engine::new(EngineOptions::default()),
            "t".into(),
            "s".into(),
        );
        assert!(app.update(Action::Label(LabelValue::Anomaly), 0).is_none());
        app.update(Action::ToggleHelp, 0);
        assert!(app.show_help);
        app.update(Action::NextPane, 0);
        assert_eq!(app.focus, Focus::Incidents);
        app.update(Action::Back, 0);
        assert!(!app.show_help);
        app.update(Action::NextPane, 0);
        assert_eq!(app.focus, Focus::Detail);
        app.update(Action::Pause, 0);
        assert!(app.paused);
    }
}
