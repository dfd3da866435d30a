//! The approval gate's console side: ranked suggestions for an incident, the confirm popup
//! (Cancel is the default; destructive actions need the resource id typed), the reject prompt,
//! "approve similar for this incident", and the audit rows each step writes. Pure state: the run
//! loop resolves, executes and verifies what [`Approval::outbox`] asks for.

use crate::action::catalog::{Action, ActionKind};
use crate::action::policy::{Authorized, Confirmation, Gate, Requirement};
use crate::action::propose::{ProposalConfig, grounded, propose};
use crate::action::rank::{Bandit, Context, Feedback, LiveFacts};
use crate::incident::{Anomaly, Incident};
use crate::safe_text::SafeText;
use crate::store::{AuditEntry, AuditEvent};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind};
use std::collections::{HashMap, HashSet};

/// The store's name for the ranking model.
pub const MODEL_NAME: &str = "action_ranking";
/// Audit lines the pane keeps.
const AUDIT_LINES: usize = 200;

/// How confirmed actions run in this console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// Real AWS calls through the action profile.
    Aws,
    /// The demo: the simulator answers for AWS; nothing leaves the laptop.
    Simulated,
    /// Actions cannot run here; the reason says why and what to do.
    Off(String),
}

/// One ranked suggestion for the selected incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub incident: u64,
    /// What the ranking saw; decisions on the suggestion teach it in this context.
    pub ctx: Context,
    pub action: Action,
    pub estimate: f64,
    /// Ties the suggestion's audit rows together: session, incident, kind and resource.
    pub call: String,
    pub requirement: Requirement,
}

/// Where a suggestion stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Resolving,
    Running,
    Done(String),
    Failed(String),
    Rejected,
    Blocked(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Cancel,
    Confirm,
    /// Confirm, and let later non-destructive suggestions of the same kind for this incident run
    /// on a single `y`.
    ConfirmSimilar,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Confirm {
        s: Suggestion,
        typed: String,
        button: Button,
    },
    Reject {
        s: Suggestion,
        reason: String,
    },
}

/// Work for the run loop.
#[derive(Debug)]
pub enum Request {
    /// Live lookups that fill in what only AWS knows before the popup shows the exact call.
    Resolve { s: Suggestion },
    /// Run an authorised action; its `approved` row is written first.
    Run {
        authorized: Authorized,
        call: String,
        incident: u64,
        approved: Box<AuditEntry>,
        ctx: Context,
    },
    /// An audit row with nothing to run after it (suggested, rejected, blocked, verified).
    Audit(AuditEntry),
    /// Put back what an executed action changed.
    Undo {
        call: String,
        exec: Box<crate::action::execute::Executed>,
        incident: u64,
        /// The suggestion's context, carried back with the result.
        ctx: Context,
    },
    /// Live facts the ranking weighs (Auto Scaling membership, the function's last change).
    Facts {
        incident: u64,
        instance: Option<String>,
        function: Option<String>,
    },
}

/// Engine time after an action at which its incident's signals are judged.
pub const VERIFY_AFTER_MS: i64 = 10 * 60_000;
/// Lines already on their way when the action ran do not count against it.
const VERIFY_GRACE_MS: i64 = 2 * 60_000;

/// An action whose effect on its incident is being watched.
#[derive(Debug, Clone)]
pub struct Watch {
    pub call: String,
    pub kind: ActionKind,
    pub ctx: Context,
    pub incident: u64,
    /// Engine clock when the action ran.
    pub at_ms: i64,
    pub anomalies: usize,
    pub severity: crate::incident::Severity,
    /// The approval row, re-used for the verified row.
    pub entry: AuditEntry,
}

impl Watch {
    pub fn new(
        call: String,
        ctx: Context,
        inc: &Incident,
        at_ms: i64,
        entry: AuditEntry,
        kind: ActionKind,
    ) -> Watch {
        Watch {
            call,
            kind,
            ctx,
            incident: inc.id,
            at_ms,
            anomalies: inc.anomalies.len(),
            severity: inc.severity,
            entry,
        }
    }

    /// What the incident's signals say since the action: worse if it grew more severe, not
    /// resolved if anything anomalous happened after the grace period, else resolved.
    pub fn outcome(&self, inc: &Incident) -> (Feedback, String) {
        let after = self.at_ms + VERIFY_GRACE_MS;
        if inc.severity > self.severity {
            (
                Feedback::MadeWorse,
                format!("made worse: severity rose to {:?}", inc.severity),
            )
        } else if inc.last_event_ms > after || inc.anomalies.len() > self.anomalies {
            (
                Feedback::NotResolved,
                format!(
                    "not resolved: anomalous events until {} ({} signal(s), {} before)",
                    crate::timefmt::hms(inc.last_event_ms),
                    inc.anomalies.len(),
                    self.anomalies
                ),
            )
        } else {
            (
                Feedback::Resolved,
                format!(
                    "resolved: no anomalous event for {} min after the action",
                    VERIFY_AFTER_MS / 60_000
                ),
            )
        }
    }
}

pub struct Approval {
    pub gate: Gate,
    pub bandit: Bandit,
    pub proposals: ProposalConfig,
    pub runner: Runner,
    /// Who decides: the operator's user name.
    pub actor: String,
    pub session: String,
    /// Selected suggestion of the selected incident.
    pub selected: usize,
    pub popup: Option<Popup>,
    pub status: HashMap<String, Status>,
    /// (incident, kind) pairs the operator approved similar actions for.
    pub similar: HashSet<(u64, ActionKind)>,
    /// Calls already written as suggested.
    suggested: HashSet<String>,
    /// Incidents whose live facts were asked for.
    looked_up: HashSet<u64>,
    /// Incidents already notified without a keystroke (`actions.notify_unattended`).
    notified: HashSet<u64>,
    /// What each call changed on AWS, for undo.
    pub executed: HashMap<String, crate::action::execute::Executed>,
    /// Actions run on AWS whose outcome is not judged yet.
    pub watches: Vec<Watch>,
    /// What live lookups said per incident, for the ranking's context.
    pub facts: HashMap<u64, LiveFacts>,
    pub audit: Vec<String>,
    pub show_audit: bool,
    pub outbox: Vec<Request>,
}

impl Approval {
    pub fn new(gate: Gate, proposals: ProposalConfig, runner: Runner, session: String) -> Self {
        Approval {
            gate,
            bandit: Bandit::default(),
            proposals,
            runner,
            actor: std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "operator".into()),
            session,
            selected: 0,
            popup: None,
            status: HashMap::new(),
            similar: HashSet::new(),
            suggested: HashSet::new(),
            looked_up: HashSet::new(),
            notified: HashSet::new(),
            executed: HashMap::new(),
            watches: Vec::new(),
            facts: HashMap::new(),
            audit: Vec::new(),
            show_audit: false,
            outbox: Vec::new(),
        }
    }

    /// The incident's proposals that are grounded in its evidence, best first, with the context
    /// the ranking used.
    pub fn suggestions(
        &self,
        inc: &Incident,
        anomalies: &[&Anomaly],
    ) -> (Context, Vec<Suggestion>) {
        let facts = self.facts.get(&inc.id).cloned().unwrap_or_default();
        let ctx = Context::new(inc, anomalies, &facts);
        let candidates: Vec<Action> = propose(inc, anomalies, &self.proposals)
            .into_iter()
            .filter(|a| grounded(a, inc, anomalies, &self.proposals))
            .filter(|a| self.gate.policy().allowed.contains(&a.kind))
            .collect();
        let list = self
            .bandit
            .rank(&ctx, &candidates)
            .into_iter()
            .map(|r| Suggestion {
                incident: inc.id,
                ctx: ctx.clone(),
                call: format!(
                    "{}/{}/{}/{}",
                    self.session,
                    inc.id,
                    r.action.kind.id(),
                    r.action.resource_id()
                ),
                requirement: self.gate.requirement(&r.action),
                estimate: r.estimate,
                action: r.action,
            })
            .collect();
        (ctx, list)
    }

    fn entry(
        &self,
        s: &Suggestion,
        event: AuditEvent,
        reason: &str,
        detail: &str,
        now_ms: i64,
    ) -> AuditEntry {
        AuditEntry {
            created_ms: now_ms,
            session: self.session.clone(),
            incident: Some(s.incident),
            call: s.call.clone(),
            action: s.action.kind.id(),
            target: serde_json::to_string(&s.action.target).unwrap_or_default(),
            preview: s.action.preview(),
            event,
            actor: if matches!(event, AuditEvent::Suggested) {
                "stormwatch".into()
            } else {
                self.actor.clone()
            },
            reason: SafeText::new(reason),
            request_id: String::new(),
            detail: SafeText::new(detail),
        }
    }

    /// Adds a line to the audit pane.
    pub fn log(&mut self, now_ms: i64, line: String) {
        self.audit.push(format!(
            "{} {}",
            crate::timefmt::hms(now_ms),
            SafeText::new(&line)
        ));
        if self.audit.len() > AUDIT_LINES {
            self.audit.remove(0);
        }
    }

    fn write(&mut self, e: AuditEntry) {
        let line = format!(
            "{:<9} {} {} {}",
            e.event.as_str(),
            e.action,
            e.preview,
            if e.reason.as_str().is_empty() {
                String::new()
            } else {
                format!("· {}", e.reason.as_str())
            }
        );
        self.log(e.created_ms, line);
        self.outbox.push(Request::Audit(e));
    }

    /// Writes a `suggested` row the first time each suggestion is shown, and asks AWS once per
    /// incident for the facts the ranking weighs.
    pub fn note_shown(&mut self, list: &[Suggestion], incident: u64, now_ms: i64) {
        if self.runner == Runner::Aws && self.looked_up.insert(incident) {
            let actions: Vec<Action> = list.iter().map(|s| s.action.clone()).collect();
            let (instance, function) = crate::action::rank::subjects(&actions);
            if instance.is_some() || function.is_some() {
                self.outbox.push(Request::Facts {
                    incident,
                    instance,
                    function,
                });
            }
        }
        for s in list {
            if self.suggested.insert(s.call.clone()) {
                let detail = format!("estimate {:+.2}", s.estimate);
                let e = self.entry(s, AuditEvent::Suggested, "", &detail, now_ms);
                self.outbox.push(Request::Audit(e));
            }
        }
    }

    /// `y` on a suggestion: straight to the run for an approved-similar kind, otherwise the
    /// popup (after the live lookups, when AWS answers).
    pub fn approve(&mut self, s: Suggestion, now_ms: i64) -> String {
        if let Runner::Off(why) = &self.runner {
            return why.clone();
        }
        if matches!(
            self.status.get(&s.call),
            Some(Status::Running | Status::Resolving)
        ) {
            return "already running".into();
        }
        if !s.action.destructive() && self.similar.contains(&(s.incident, s.action.kind)) {
            return self.authorize(
                s,
                Confirmation::Keystroke,
                "approved similar for this incident",
                now_ms,
            );
        }
        if self.runner == Runner::Aws {
            self.status.insert(s.call.clone(), Status::Resolving);
            self.outbox.push(Request::Resolve { s });
            return "looking the resources up before confirming…".into();
        }
        self.open_confirm(s);
        String::new()
    }

    /// The live lookups' answer: the popup shows the exact call that would run.
    pub fn resolved(&mut self, s: Suggestion, result: Result<Action, String>) -> String {
        match result {
            Ok(action) => {
                self.status.remove(&s.call);
                let requirement = self.gate.requirement(&action);
                self.open_confirm(Suggestion {
                    action,
                    requirement,
                    ..s
                });
                String::new()
            }
            Err(e) => {
                self.status.insert(s.call, Status::Failed(e.clone()));
                format!("cannot prepare the action: {e}")
            }
        }
    }

    fn open_confirm(&mut self, s: Suggestion) {
        self.popup = Some(Popup::Confirm {
            s,
            typed: String::new(),
            button: Button::Cancel,
        });
    }

    /// `r` on a suggestion.
    pub fn reject(&mut self, s: Suggestion) {
        self.popup = Some(Popup::Reject {
            s,
            reason: String::new(),
        });
    }

    /// A key while a popup is open; returns a status line when something was decided.
    pub fn popup_key(&mut self, key: KeyEvent, now_ms: i64) -> Option<String> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let popup = self.popup.take()?;
        match popup {
            Popup::Confirm {
                s,
                mut typed,
                mut button,
            } => {
                let choices = if s.action.destructive() {
                    vec![Button::Cancel, Button::Confirm]
                } else {
                    vec![Button::Cancel, Button::Confirm, Button::ConfirmSimilar]
                };
                let at = choices.iter().position(|b| *b == button).unwrap_or(0);
                match key.code {
                    KeyCode::Esc => return Some("cancelled: nothing was run".into()),
                    KeyCode::Enter => {
                        return Some(match button {
                            Button::Cancel => "cancelled: nothing was run".into(),
                            Button::Confirm | Button::ConfirmSimilar => {
                                if button == Button::ConfirmSimilar {
                                    self.similar.insert((s.incident, s.action.kind));
                                }
                                let reason = if button == Button::ConfirmSimilar {
                                    "approved, and similar actions for this incident"
                                } else {
                                    ""
                                };
                                let confirmation = match &s.requirement {
                                    Requirement::TypeResourceId(_) => Confirmation::Typed(&typed),
                                    _ => Confirmation::Keystroke,
                                };
                                self.authorize(s.clone(), confirmation, reason, now_ms)
                            }
                        });
                    }
                    KeyCode::Tab | KeyCode::Right => button = choices[(at + 1) % choices.len()],
                    KeyCode::BackTab | KeyCode::Left => {
                        button = choices[(at + choices.len() - 1) % choices.len()]
                    }
                    KeyCode::Backspace => {
                        typed.pop();
                    }
                    KeyCode::Char(c)
                        if matches!(s.requirement, Requirement::TypeResourceId(_))
                            && typed.chars().count() < 256
                            && !c.is_control() =>
                    {
                        typed.push(c);
                    }
                    _ => {}
                }
                self.popup = Some(Popup::Confirm { s, typed, button });
                None
            }
            Popup::Reject { s, mut reason } => {
                match key.code {
                    KeyCode::Esc => return Some("reject cancelled".into()),
                    KeyCode::Enter => {
                        let e = self.entry(&s, AuditEvent::Rejected, &reason, "", now_ms);
                        self.write(e);
                        self.bandit.learn(&s.ctx, s.action.kind, Feedback::Rejected);
                        self.status.insert(s.call.clone(), Status::Rejected);
                        return Some(format!("rejected {}", s.action.kind.label()));
                    }
                    KeyCode::Backspace => {
                        reason.pop();
                    }
                    KeyCode::Char(c) if !c.is_control() && reason.chars().count() < 200 => {
                        reason.push(c)
                    }
                    _ => {}
                }
                self.popup = Some(Popup::Reject { s, reason });
                None
            }
        }
    }

    /// The one action that may run without a keystroke: the incident's SNS notification, once,
    /// and only when the config opts in.
    pub fn notify_unattended(
        &mut self,
        inc: &Incident,
        anomalies: &[&Anomaly],
        now_ms: i64,
    ) -> Option<String> {
        if !self.gate.policy().notify_unattended
            || matches!(self.runner, Runner::Off(_))
            || !self.notified.insert(inc.id)
        {
            return None;
        }
        let (_, list) = self.suggestions(inc, anomalies);
        let s = list
            .into_iter()
            .find(|s| s.action.kind == ActionKind::NotifySns)?;
        Some(self.authorize(
            s,
            Confirmation::Nothing,
            "unattended: actions.notify_unattended",
            now_ms,
        ))
    }

    /// `U` on a suggestion that ran: asks the run loop to put back what it changed.
    pub fn undo(&mut self, s: &Suggestion) -> String {
        if self.gate.policy().read_only {
            return "read-only mode: undo is a write too; nothing was run".into();
        }
        let Some(exec) = self.executed.remove(&s.call) else {
            return "nothing to undo: this action has not run here".into();
        };
        if exec.undo.is_none() {
            let kind = exec.action.kind;
            self.executed.insert(s.call.clone(), exec);
            return format!("{} cannot be undone", kind.label());
        }
        self.status.insert(s.call.clone(), Status::Running);
        self.outbox.push(Request::Undo {
            call: s.call.clone(),
            exec: Box::new(exec),
            incident: s.incident,
            ctx: s.ctx.clone(),
        });
        format!("undoing {}…", s.action.kind.label())
    }

    /// Through the gate: an audited block, or an approved run for the run loop.
    fn authorize(
        &mut self,
        s: Suggestion,
        confirmation: Confirmation<'_>,
        reason: &str,
        now_ms: i64,
    ) -> String {
        match self.gate.authorize(&s.action, confirmation, now_ms) {
            Err(blocked) => {
                let why = blocked.to_string();
                let e = self.entry(&s, AuditEvent::Blocked, reason, &why, now_ms);
                self.write(e);
                self.status
                    .insert(s.call.clone(), Status::Blocked(why.clone()));
                format!("not run: {why}")
            }
            Ok(authorized) => {
                let approved = self.entry(&s, AuditEvent::Approved, reason, "", now_ms);
                self.log(
                    now_ms,
                    format!("approved  {} {}", s.action.kind.id(), s.action.preview()),
                );
                self.bandit
                    .learn(&s.ctx, s.action.kind, Feedback::Confirmed);
                self.status.insert(s.call.clone(), Status::Running);
                self.outbox.push(Request::Run {
                    authorized,
                    call: s.call.clone(),
                    incident: s.incident,
                    approved: Box::new(approved),
                    ctx: s.ctx.clone(),
                });
                format!("running {}…", s.action.preview())
            }
        }
    }

    /// Judges the watched actions whose time has come against their incidents' signals: a
    /// `verified` audit row and a lesson for the ranking each.
    pub fn verify_due(
        &mut self,
        clock_ms: i64,
        incident: impl Fn(u64) -> Option<Incident>,
    ) -> Vec<String> {
        let (due, waiting): (Vec<Watch>, Vec<Watch>) = std::mem::take(&mut self.watches)
            .into_iter()
            .partition(|w| clock_ms >= w.at_ms + VERIFY_AFTER_MS);
        self.watches = waiting;
        let mut said = Vec::new();
        for w in due {
            let Some(inc) = incident(w.incident) else {
                continue;
            };
            let (feedback, detail) = w.outcome(&inc);
            self.bandit.learn(&w.ctx, w.kind, feedback);
            let entry = AuditEntry {
                created_ms: crate::ui::now_ms(),
                event: AuditEvent::Verified,
                actor: "stormwatch".into(),
                reason: SafeText::default(),
                detail: SafeText::new(&detail),
                ..w.entry
            };
            self.status
                .insert(w.call.clone(), Status::Done(detail.clone()));
            self.write(entry);
            said.push(format!("{}: {detail}", w.kind.id()));
        }
        said
    }

    /// The run's result (and, for the simulator, its outcome).
    pub fn finished(
        &mut self,
        call: &str,
        kind: ActionKind,
        ctx: &Context,
        result: Result<String, String>,
        outcome: Option<Feedback>,
        now_ms: i64,
    ) -> String {
        if let Some(f) = outcome {
            self.bandit.learn(ctx, kind, f);
        }
        let (status, line) = match result {
            Ok(detail) => (Status::Done(detail.clone()), format!("done: {detail}")),
            Err(e) => (Status::Failed(e.clone()), format!("FAILED: {e}")),
        };
        self.log(now_ms, format!("{} {line}", kind.id()));
        self.status.insert(call.to_string(), status);
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::policy::Policy;
    use crate::incident::{CauseKind, Severity};
    use crossterm::event::KeyModifiers;

    fn incident() -> Incident {
        Incident {
            id: 7,
            kind: CauseKind::DiskFilling,
            main_entity: "i-0abc1234".into(),
            severity: Severity::High,
            keys: ["i-0abc1234".to_string()].into_iter().collect(),
            anomalies: Vec::new(),
            opened_ms: 0,
            last_activity_ms: 0,
            first_event_ms: 0,
            last_event_ms: 60_000,
            peak_score: 1.0,
            closed: false,
        }
    }

    fn approval(policy: Policy) -> Approval {
        Approval::new(
            Gate::new(policy),
            ProposalConfig {
                sns_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:oncall".into()),
                ssm_documents: Vec::new(),
                lambda_throttle_to: 0,
            },
            Runner::Simulated,
            "s".into(),
        )
    }

    fn pick(a: &Approval, kind: ActionKind) -> Suggestion {
        let (_, list) = a.suggestions(&incident(), &[]);
        list.into_iter()
            .find(|s| s.action.kind == kind)
            .unwrap_or_else(|| panic!("{kind:?} not suggested"))
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn type_text(a: &mut Approval, text: &str) {
        for c in text.chars() {
            assert!(a.popup_key(key(KeyCode::Char(c)), 0).is_none());
        }
    }

    fn runs(a: &Approval) -> usize {
        a.outbox
            .iter()
            .filter(|r| matches!(r, Request::Run { .. }))
            .count()
    }

    fn events(a: &Approval) -> Vec<AuditEvent> {
        a.outbox
            .iter()
            .filter_map(|r| match r {
                Request::Audit(e) => Some(e.event),
                Request::Run { approved, .. } => Some(approved.event),
                Request::Resolve { .. } | Request::Facts { .. } | Request::Undo { .. } => None,
            })
            .collect()
    }

    #[test]
    fn nothing_runs_without_confirming_and_cancel_is_the_default() {
        let mut a = approval(Policy::default());
        let s = pick(&a, ActionKind::RebootInstance);
        assert_eq!(a.approve(s.clone(), 0), "");
        // Enter on the default button cancels.
        a.popup_key(key(KeyCode::Enter), 0);
        assert!(a.popup.is_none());
        a.approve(s.clone(), 0);
        a.popup_key(key(KeyCode::Tab), 0);
        a.popup_key(key(KeyCode::Esc), 0);
        assert_eq!(runs(&a), 0, "Esc after choosing Confirm still runs nothing");
        a.approve(s, 0);
        a.popup_key(key(KeyCode::Tab), 0);
        a.popup_key(key(KeyCode::Enter), 0);
        assert_eq!(runs(&a), 1);
        assert_eq!(events(&a), [AuditEvent::Approved]);
    }

    #[test]
    fn a_destructive_action_needs_its_resource_id_typed_exactly() {
        let mut a = approval(Policy::default());
        let s = pick(&a, ActionKind::StopInstance);
        assert_eq!(
            s.requirement,
            Requirement::TypeResourceId("i-0abc1234".into())
        );
        a.approve(s.clone(), 0);
        type_text(&mut a, "i-0abc123");
        a.popup_key(key(KeyCode::Tab), 0);
        let msg = a.popup_key(key(KeyCode::Enter), 0).unwrap();
        assert!(msg.contains("nothing was run"), "{msg}");
        assert_eq!(runs(&a), 0);
        assert_eq!(events(&a), [AuditEvent::Blocked]);
        // No "approve similar" for destructive actions: Tab cycles Cancel and Confirm only.
        a.approve(s, 0);
        type_text(&mut a, "i-0abc1234");
        a.popup_key(key(KeyCode::Tab), 0);
        a.popup_key(key(KeyCode::Tab), 0);
        a.popup_key(key(KeyCode::Tab), 0);
        a.popup_key(key(KeyCode::Enter), 0);
        assert_eq!(runs(&a), 1);
        assert!(a.similar.is_empty());
    }

    #[test]
    fn read_only_mode_blocks_every_action_even_confirmed() {
        let mut a = approval(Policy {
            read_only: true,
            ..Policy::default()
        });
        let (_, list) = a.suggestions(&incident(), &[]);
        for s in list {
            a.approve(s.clone(), 0);
            if s.action.destructive() {
                type_text(&mut a, &s.action.resource_id());
            }
            a.popup_key(key(KeyCode::Tab), 0);
            let msg = a.popup_key(key(KeyCode::Enter), 0).unwrap();
            assert!(msg.contains("read-only"), "{msg}");
        }
        assert_eq!(runs(&a), 0);
    }

    #[test]
    fn approve_similar_skips_the_popup_only_for_that_kind_and_incident() {
        let mut a = approval(Policy::default());
        let s = pick(&a, ActionKind::NotifySns);
        a.approve(s.clone(), 0);
        a.popup_key(key(KeyCode::Left), 0);
        assert!(matches!(
            a.popup,
            Some(Popup::Confirm {
                button: Button::ConfirmSimilar,
                ..
            })
        ));
        a.popup_key(key(KeyCode::Enter), 0);
        assert_eq!(runs(&a), 1);
        a.status.clear();
        a.approve(s.clone(), 0);
        assert!(a.popup.is_none(), "approved similar: no popup");
        assert_eq!(runs(&a), 2);
        // Another incident asks again; another kind asks again.
        a.status.clear();
        a.approve(Suggestion { incident: 8, ..s }, 0);
        assert!(a.popup.is_some());
        a.popup = None;
        let reboot = pick(&a, ActionKind::RebootInstance);
        a.approve(reboot, 0);
        assert!(a.popup.is_some());
        assert_eq!(runs(&a), 2);
    }

    #[test]
    fn verification_reads_the_incident_after_the_action() {
        let mut a = approval(Policy::default());
        let s = pick(&a, ActionKind::RebootInstance);
        let inc = incident();
        let entry = a.entry(&s, AuditEvent::Approved, "", "", 0);
        let at = inc.last_event_ms;
        let w = Watch::new(
            s.call.clone(),
            s.ctx.clone(),
            &inc,
            at,
            entry,
            s.action.kind,
        );
        // Quiet since the action (lines in flight during the grace period do not count).
        let mut quiet = inc.clone();
        quiet.last_event_ms = at + VERIFY_GRACE_MS;
        assert_eq!(w.outcome(&quiet).0, Feedback::Resolved);
        let mut going = inc.clone();
        going.last_event_ms = at + 5 * 60_000;
        assert_eq!(w.outcome(&going).0, Feedback::NotResolved);
        let mut worse = going.clone();
        worse.severity = Severity::Critical;
        assert_eq!(w.outcome(&worse).0, Feedback::MadeWorse);
        // Not judged before its time; then one verified row.
        a.watches.push(w);
        assert!(
            a.verify_due(at + 60_000, |_| Some(quiet.clone()))
                .is_empty()
        );
        let said = a.verify_due(at + VERIFY_AFTER_MS, |_| Some(quiet.clone()));
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(a.watches.is_empty());
        assert_eq!(events(&a), [AuditEvent::Verified]);
    }

    #[test]
    fn only_an_opted_in_notification_runs_unattended_once_per_incident() {
        let mut a = approval(Policy::default());
        assert!(a.notify_unattended(&incident(), &[], 0).is_none());
        let mut a = approval(Policy {
            notify_unattended: true,
            ..Policy::default()
        });
        assert!(a.notify_unattended(&incident(), &[], 0).is_some());
        assert!(a.notify_unattended(&incident(), &[], 0).is_none());
        let kinds: Vec<&str> = a
            .outbox
            .iter()
            .filter_map(|r| match r {
                Request::Run { authorized, .. } => Some(authorized.action().kind.id()),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["sns.notify"]);
    }

    #[test]
    fn a_rejection_is_audited_with_its_reason_and_teaches_the_ranking() {
        let mut a = approval(Policy::default());
        let s = pick(&a, ActionKind::RebootInstance);
        let before = a.bandit.rank(&s.ctx, std::slice::from_ref(&s.action))[0].estimate;
        a.reject(s.clone());
        type_text(&mut a, "wrong host");
        a.popup_key(key(KeyCode::Enter), 0);
        let after = a.bandit.rank(&s.ctx, std::slice::from_ref(&s.action))[0].estimate;
        assert!(after < before);
        let Some(Request::Audit(e)) = a.outbox.last() else {
            panic!("no audit row")
        };
        assert_eq!(
            (e.event, e.reason.as_str()),
            (AuditEvent::Rejected, "wrong host")
        );
        assert_eq!(runs(&a), 0);
    }
}
