//! Drawing: a pure function of [`App`], so snapshot tests render exactly what the operator sees.

use super::app::{App, Focus, LabelState, LabelTarget};
use crate::engine::CHART_MINUTES;
use crate::incident::Severity;
use crate::parse::Level;
use crate::timefmt;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table,
    TableState, Wrap,
};

/// Key help, shown by `?`; the README's key table says the same.
pub const HELP: &[(&str, &str)] = &[
    ("?", "toggle this help"),
    ("q, Ctrl-C", "quit"),
    ("Tab / Shift-Tab", "next / previous pane"),
    ("j k, ↓ ↑", "move in the focused pane (in the tail: scroll)"),
    ("g G", "first / last"),
    ("n N", "next / previous incident"),
    ("Enter", "open the selected incident's signals"),
    ("Esc", "back to the incident list, or close help"),
    ("Space", "pause / resume the tail (detection keeps running)"),
    (
        "a",
        "label the selected incident, signal or queue line a real anomaly",
    ),
    (
        "x",
        "label it normal: its source's bar rises; a queue line's template is suppressed",
    ),
    ("u", "label it unsure"),
    (
        "L",
        "label queue in the tail pane: the lines a label teaches most",
    ),
    ("c", "note for the next label (Enter keeps, Esc drops)"),
    (
        "+",
        "tail more log groups (tail): prefix search, Space selects, Enter adds",
    ),
    ("[ ]", "previous / next suggested action"),
    (
        "y",
        "approve the suggested action: a confirm popup (Cancel first)",
    ),
    ("r", "reject the suggested action, with an optional reason"),
    ("U", "undo the selected action where AWS allows (tail)"),
    ("A", "audit pane: suggestions, decisions, calls, results"),
    (
        "R",
        "ask the analyst model about the selected incident again",
    ),
];

/// The analyst's answer: who answered and why, its sentences, what it is about and cites, and
/// every id in it that the evidence does not hold, in red. Model text is untrusted: it is
/// sanitised like log text before it reaches the terminal.
fn analyst_lines(
    pack: &crate::analyst::pack::Pack,
    view: &super::analysis::AnalystView,
    t: &Theme,
) -> Vec<Line<'static>> {
    use crate::analyst::consult::Who;
    let clean = |s: &str| crate::safe_text::SafeText::new(s).into_string();
    let a = &view.analysis.answer;
    let mut lines = Vec::new();
    if let Some(s) = &view.streaming {
        lines.push(Line::from(vec![
            Span::styled(
                format!("analyst ({}, answering…): ", view.model),
                t.fg(Color::Gray),
            ),
            Span::styled(clean(s), t.fg(Color::DarkGray)),
        ]));
    }
    let took = view
        .analysis
        .stats
        .as_ref()
        .filter(|_| matches!(view.analysis.who, Who::Model { .. }))
        .map(|s| format!(" · {:.1} s", s.answer_ms / 1000.0))
        .unwrap_or_default();
    let stale = if view.stale { " · earlier state" } else { "" };
    let head = match &view.analysis.who {
        Who::Model { .. } => clean(&a.summary),
        Who::Rules { .. } => a.root_cause.clone(),
    };
    lines.push(Line::from(vec![
        Span::styled(
            format!("analyst ({}{took}{stale}): ", view.analysis.who.label()),
            t.fg(Color::Gray),
        ),
        Span::raw(head),
    ]));
    if let Who::Model { .. } = view.analysis.who {
        lines.push(Line::from(Span::styled(
            format!(
                "  cause: {} · about {} · {} · confidence {:.2} · evidence {}",
                clean(&a.root_cause),
                a.entity,
                a.cause_kind,
                a.confidence,
                a.evidence_ids.join(", ")
            ),
            t.fg(Color::Gray),
        )));
    }
    let flagged =
        crate::analyst::flag::unknown(&format!("{} {}", a.summary, a.root_cause), &pack.text());
    if !flagged.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("  ⚠ not in the evidence: {}", clean(&flagged.join(", "))),
            t.fg(Color::Red).add_modifier(Modifier::BOLD),
        )));
    }
    lines
}

/// Tabs are kept in the text (parsers need them) but their width is the terminal's guess.
fn expand_tabs(s: &str) -> String {
    s.replace('\t', " ")
}

/// Keeps the end of a long name (`…lambda/orders-api`): the tail is what tells sources apart.
fn tail_fit(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width || width < 2 {
        return s.to_string();
    }
    let keep: String = s.chars().skip(n - (width - 1)).collect();
    format!("…{keep}")
}

struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }
    fn focus(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            self.fg(Color::DarkGray)
        }
    }
    fn selected(&self) -> Style {
        if self.color {
            Style::new().bg(Color::Blue).fg(Color::White)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }
    fn score(&self, s: f64, threshold: f64) -> Style {
        if s >= threshold {
            self.fg(Color::Red).add_modifier(Modifier::BOLD)
        } else if s >= threshold * 0.7 {
            self.fg(Color::Yellow)
        } else {
            Style::new()
        }
    }
}

fn block<'a>(title: String, focused: bool, t: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(t.focus(focused))
        .title(Span::styled(title, t.focus(focused)))
}

pub fn draw(f: &mut Frame, app: &App) {
    let t = Theme { color: app.color };
    let [header, top, middle, tail, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Percentage(30),
        Constraint::Percentage(35),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, header, app, &t);
    let [sources, chart] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
    draw_sources(f, sources, app, &t);
    draw_chart(f, chart, app, &t);
    let [incidents, detail] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    draw_incidents(f, incidents, app, &t);
    draw_detail(f, detail, app, &t);
    draw_tail(f, tail, app, &t);
    let footer_text = match &app.learning.typing {
        Some(note) => format!(
            " note for the next label: {}▏",
            crate::safe_text::SafeText::new(note)
        ),
        None if !app.learning.note.is_empty() => format!(
            " {} · note kept: {}",
            app.status,
            crate::safe_text::SafeText::new(&app.learning.note)
        ),
        None => format!(" {}", app.status),
    };
    f.render_widget(
        Paragraph::new(Line::from(Span::styled(footer_text, t.fg(Color::Gray)))),
        footer,
    );
    if let Some(p) = &app.picker {
        draw_picker(f, f.area(), p, app, &t);
    }
    if app.approval.show_audit {
        draw_audit(f, f.area(), app, &t);
    }
    if let Some(p) = &app.approval.popup {
        draw_popup(f, f.area(), p, &t);
    }
    if app.show_help {
        draw_help(f, f.area(), &t);
    }
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// The suggested actions for the selected incident, best first, with what became of each.
fn suggestion_lines(
    app: &App,
    ctx: &crate::action::rank::Context,
    list: &[super::approval::Suggestion],
    t: &Theme,
) -> Vec<Line<'static>> {
    use super::approval::{Runner, Status};
    let mode = match &app.approval.runner {
        Runner::Aws => "AWS",
        Runner::Simulated => "simulated",
        Runner::Off(_) => "off here",
    };
    let why = ctx.active();
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "suggested actions ({mode}; ranked on {}) · [ ] choose · y approve · r reject:",
            if why.is_empty() {
                "nothing yet".to_string()
            } else {
                why.join(", ")
            }
        ),
        t.fg(Color::Gray),
    ))];
    if list.is_empty() {
        lines.push(Line::from(
            "  none: notify your team (no catalog action fits this incident)",
        ));
    }
    let sel = app.approval.selected.min(list.len().saturating_sub(1));
    for (i, s) in list.iter().enumerate() {
        let state = match app.approval.status.get(&s.call) {
            None => String::new(),
            Some(Status::Resolving) => " · looking up…".into(),
            Some(Status::Running) => " · running…".into(),
            Some(Status::Done(d)) => format!(" · ✓ {d}"),
            Some(Status::Failed(e)) => format!(" · ✗ {e}"),
            Some(Status::Rejected) => " · rejected".into(),
            Some(Status::Blocked(b)) => format!(" · blocked: {b}"),
        };
        let style = if i == sel { t.selected() } else { Style::new() };
        lines.push(Line::from(vec![
            Span::styled(format!(" {:+.2} ", s.estimate), t.fg(Color::Cyan)),
            Span::styled(
                format!(
                    "{} [{:?}] {}{state}",
                    s.action.kind.label(),
                    s.action.kind.risk(),
                    s.action.preview()
                ),
                style,
            ),
        ]));
    }
    lines
}

fn draw_popup(f: &mut Frame, area: Rect, p: &super::approval::Popup, t: &Theme) {
    use super::approval::{Button, Popup};
    use crate::action::policy::Requirement;
    let r = centered(area, 84, 13);
    let mut lines: Vec<Line> = Vec::new();
    let title;
    match p {
        Popup::Confirm {
            s, typed, button, ..
        } => {
            title = " Confirm action (Esc cancels) ";
            lines.push(Line::from(Span::styled(
                s.action.kind.label(),
                t.fg(Color::White).add_modifier(Modifier::BOLD),
            )));
            lines.push(Line::from(format!(
                "risk {:?} · {} · {}",
                s.action.kind.risk(),
                if s.action.kind.undoable() {
                    "can be undone"
                } else {
                    "cannot be undone"
                },
                if s.action.kind.dry_run() == crate::action::catalog::DryRun::Api {
                    "AWS dry-runs it first"
                } else {
                    "no dry run in the API"
                }
            )));
            lines.push(Line::from("the exact call:"));
            lines.push(Line::from(Span::styled(
                format!("  {}", s.action.preview()),
                t.fg(Color::Yellow),
            )));
            if let Requirement::TypeResourceId(id) = &s.requirement {
                lines.push(Line::from(format!("type {id} to confirm:")));
                lines.push(Line::from(Span::styled(
                    format!("  > {typed}▏"),
                    t.fg(Color::White).add_modifier(Modifier::BOLD),
                )));
            } else {
                lines.push(Line::from(""));
            }
            lines.push(Line::from(""));
            let mut buttons = vec![(Button::Cancel, "Cancel"), (Button::Confirm, "Confirm")];
            if !s.action.destructive() {
                buttons.push((
                    Button::ConfirmSimilar,
                    "Confirm + similar for this incident",
                ));
            }
            let mut spans = vec![Span::raw("  ")];
            for (b, text) in buttons {
                let style = if b == *button {
                    t.selected().add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                spans.push(Span::styled(format!("[ {text} ]"), style));
                spans.push(Span::raw("  "));
            }
            lines.push(Line::from(spans));
            lines.push(Line::from(Span::styled(
                "Tab/←/→ choose · Enter press",
                t.fg(Color::Gray),
            )));
        }
        Popup::Reject { s, reason, .. } => {
            title = " Reject action (Enter saves, Esc cancels) ";
            lines.push(Line::from(format!(
                "{}: {}",
                s.action.kind.label(),
                s.action.preview()
            )));
            lines.push(Line::from(""));
            lines.push(Line::from("why (optional; kept in the audit log):"));
            lines.push(Line::from(Span::styled(
                format!("  > {reason}▏"),
                t.fg(Color::White).add_modifier(Modifier::BOLD),
            )));
        }
    }
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(title.into(), true, t)),
        r,
    );
}

fn draw_audit(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let r = centered(
        area,
        area.width.saturating_sub(6),
        area.height.saturating_sub(4),
    );
    let rows = r.height.saturating_sub(2) as usize;
    let log = &app.approval.audit;
    let mut lines: Vec<Line> = log
        .iter()
        .skip(log.len().saturating_sub(rows))
        .map(|l| Line::from(l.clone()))
        .collect();
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "no decision yet this session; `stormwatch audit` lists every session's",
            t.fg(Color::Gray),
        )));
    }
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(block(" Audit (A or Esc to close) ".into(), true, t)),
        r,
    );
}

fn draw_picker(f: &mut Frame, area: Rect, p: &super::picker::Picker, app: &App, t: &Theme) {
    let w = area.width.saturating_sub(8).min(90);
    let h = area.height.saturating_sub(4).min(24);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let tailed = |name: &str| {
        app.feeds
            .as_ref()
            .is_some_and(|fs| fs.groups.iter().any(|g| g.group == name))
    };
    let mut lines = vec![Line::from(vec![
        Span::styled("prefix: ", t.fg(Color::Gray)),
        Span::raw(p.query.clone()),
        Span::styled("▏", t.fg(Color::Cyan)),
    ])];
    let state = match (&p.searching, &p.error) {
        (Some(_), _) => Span::styled("searching…", t.fg(Color::Gray)),
        (None, Some(e)) => Span::styled(e.clone(), t.fg(Color::Yellow)),
        (None, None) if p.list.is_empty() => {
            Span::styled("no log group starts with this", t.fg(Color::Gray))
        }
        (None, None) => Span::styled(
            format!(
                "{} group(s){} · {} selected",
                p.list.len(),
                if p.truncated {
                    ", more match: type more of the name"
                } else {
                    ""
                },
                p.selected.len()
            ),
            t.fg(Color::Gray),
        ),
    };
    lines.push(Line::from(state));
    // Keep the cursor in view.
    let rows = h.saturating_sub(4) as usize;
    let first = p.cursor.saturating_sub(rows.saturating_sub(1));
    for (i, name) in p.list.iter().enumerate().skip(first).take(rows) {
        let mark = if p.selected.contains(name) {
            "[x]"
        } else {
            "[ ]"
        };
        let mut spans = vec![Span::raw(format!("{mark} {name}"))];
        if tailed(name) {
            spans.push(Span::styled("  (tailing)", t.fg(Color::Gray)));
        }
        let line = Line::from(spans);
        lines.push(if i == p.cursor {
            line.style(t.selected())
        } else {
            line
        });
    }
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(" Add log groups ")
                .title_bottom(" type a prefix · ↑↓ move · Space select · Enter tail · Esc cancel "),
        ),
        popup,
    );
}

fn draw_header(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let e = &app.engine;
    let open = e.incidents().iter().filter(|i| !i.closed).count();
    let clock = if e.clock_ms() == i64::MIN {
        "waiting for data".to_string()
    } else {
        timefmt::short(e.clock_ms()).replace(
            " UTC",
            &format!(":{:02} UTC", timefmt::parts(e.clock_ms()).5),
        )
    };
    let mut spans = vec![
        Span::styled(
            " stormwatch ",
            t.fg(Color::Black)
                .bg(if t.color { Color::Cyan } else { Color::Reset })
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(" {} │ {clock}", app.title)),
    ];
    if let Some(speed) = app.speed {
        spans.push(Span::raw(format!(" ×{speed:.0}")));
    }
    spans.push(Span::raw(format!(
        " │ {} lines │ {} rejected │ incidents {} open / {}",
        e.lines(),
        e.rejected(),
        open,
        e.incidents().len()
    )));
    if app.paused {
        spans.push(Span::styled(
            " │ PAUSED",
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(done) = &app.source_done {
        spans.push(Span::styled(format!(" │ {done}"), t.fg(Color::Green)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_sources(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let threshold = app.engine.threshold();
    let feeds = app.feeds.as_ref();
    let feed_of = |name: &str| feeds.and_then(|fs| fs.groups.iter().find(|g| g.group == name));
    // Live readers add what the tailing repairs and what fails: events backfilled (history,
    // reconnect gaps, sampled intervals) and failed calls; the rest is on the pane's bottom line.
    let extra = if feeds.is_some() { 6 + 4 + 2 } else { 0 };
    let name_width = (area.width as usize)
        .saturating_sub(2 + 6 + 8 + 5 + 4 + 5 + 5 + extra)
        .max(8);
    let lag_text = |ms: i64| {
        if ms >= 60_000 {
            format!("{}m", ms / 60_000)
        } else {
            format!("{}s", ms / 1000)
        }
    };
    let warn = |n: u64| {
        if n > 0 {
            t.fg(Color::Yellow)
        } else {
            Style::new()
        }
    };
    let feed_cells = |g: Option<&crate::tail::GroupCounters>| -> Vec<Cell> {
        if feeds.is_none() {
            return Vec::new();
        }
        let g = g.cloned().unwrap_or_default();
        vec![
            Cell::from(format!("{}", g.backfilled)),
            Cell::from(format!("{}", g.errors)).style(warn(g.errors)),
        ]
    };
    let mut rows: Vec<Row> = app
        .engine
        .sources()
        .map(|s| {
            let now = s.scores.back().map_or(0.0, |x| x.1);
            let feed = feed_of(&s.name);
            // A sampled live group is marked: its events may arrive late, by backfill.
            let name = match feed {
                Some(g) if g.sampled_updates > 0 => {
                    format!("~{}", tail_fit(&s.name, name_width.saturating_sub(1)))
                }
                _ => tail_fit(&s.name, name_width),
            };
            // Live: how far behind now the newest event is. Replays have no "now": delivery delay.
            let lag = match (feeds, feed) {
                (Some(fs), Some(g)) if g.newest_ms > 0 => (fs.as_of_ms - g.newest_ms).max(0),
                _ => s.lag_ms,
            };
            let mut cells = vec![
                Cell::from(name),
                Cell::from(format!("{:.1}", s.rate)),
                Cell::from(format!("{}", s.events)),
                Cell::from(lag_text(lag)),
                Cell::from(format!("{}", s.rejected)).style(warn(s.rejected)),
                Cell::from(format!("{now:.2}")).style(t.score(now, threshold)),
            ];
            cells.extend(feed_cells(feed));
            Row::new(cells)
        })
        .collect();
    // Groups that have delivered nothing yet (or only fail) still get a row.
    if let Some(fs) = feeds {
        for g in &fs.groups {
            if app.engine.sources().any(|s| s.name == g.group) {
                continue;
            }
            let mut cells = vec![
                Cell::from(tail_fit(&g.group, name_width)),
                Cell::from("-"),
                Cell::from("0"),
                Cell::from("-"),
                Cell::from("0"),
                Cell::from("-"),
            ];
            cells.extend(feed_cells(Some(g)));
            rows.push(Row::new(cells));
        }
    }
    let mut widths = vec![
        Constraint::Min(16),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(5),
    ];
    let mut header = vec!["source", "ev/s", "events", "lag", "rej", "score"];
    if feeds.is_some() {
        widths.extend([Constraint::Length(5), Constraint::Length(3)]);
        header.extend(["bf", "err"]);
    }
    let title = match feeds.and_then(|f| f.live_tail_minutes) {
        Some(m) => format!(" Sources · Live Tail {m} min "),
        None => " Sources ".to_string(),
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.fg(Color::Gray).add_modifier(Modifier::BOLD)))
        .row_highlight_style(t.selected())
        .block({
            let b = block(title, app.focus == Focus::Sources, t);
            let selected = app.engine.sources().nth(app.chart_source_idx());
            // Why lines were rejected or calls failed, for the source in view: the first thing to
            // check when a count grows.
            let problem = selected.and_then(|s| {
                s.last_error
                    .as_deref()
                    .map(|e| format!(" rejected: {e} "))
                    .or_else(|| {
                        feed_of(&s.name)
                            .and_then(|g| g.last_error.as_deref())
                            .map(|e| format!(" last error: {e} "))
                    })
            });
            let counts = selected.and_then(|s| feed_of(&s.name)).map(|g| {
                format!(
                    " {} · {} backfilled · {} dup dropped · {} sampled ",
                    g.mode, g.backfilled, g.duplicates_dropped, g.sampled_updates
                )
            });
            match (problem, counts) {
                (Some(p), _) => b.title_bottom(Span::styled(p, t.fg(Color::Yellow))),
                (None, Some(c)) => b.title_bottom(Span::styled(c, t.fg(Color::Gray))),
                (None, None) => b,
            }
        });
    let mut state = TableState::default().with_selected(Some(app.chart_source_idx()));
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_chart(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let threshold = app.engine.threshold();
    let Some(src) = app.engine.sources().nth(app.chart_source_idx()) else {
        f.render_widget(block(" Score ".into(), false, t), area);
        return;
    };
    // The bar this source must clear to open an incident: the configured threshold, raised while
    // the source pages over its budget or after "normal" labels.
    let bar = src.alarm_threshold(threshold, app.engine.clock_ms());
    let bar_text = if bar > threshold + 0.005 {
        format!("threshold {bar:.2} (raised from {threshold:.2})")
    } else {
        format!("threshold {threshold:.2}")
    };
    let last = src.scores.back().map_or(0, |x| x.0);
    let first = last - CHART_MINUTES as i64 + 1;
    let points: Vec<(f64, f64)> = src
        .scores
        .iter()
        .map(|(m, s)| ((m - first) as f64, *s))
        .collect();
    let line = [(0.0, bar), ((CHART_MINUTES - 1) as f64, bar)];
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.fg(Color::Red))
            .data(&line),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.fg(Color::Cyan))
            .data(&points),
    ];
    let chart = Chart::new(datasets)
        .block(block(
            format!(
                " Score · {} · {bar_text} · last {CHART_MINUTES} min ",
                src.name
            ),
            false,
            t,
        ))
        .x_axis(
            Axis::default()
                .bounds([0.0, (CHART_MINUTES - 1) as f64])
                .labels([
                    Line::from(timefmt::hms(first * 60_000)[..5].to_string()),
                    Line::from(timefmt::hms(last * 60_000)[..5].to_string()),
                ]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, 1.0])
                .labels([Line::from("0"), Line::from("1")]),
        )
        .legend_position(None);
    f.render_widget(chart, area);
}

fn severity_style(s: Severity, t: &Theme) -> Style {
    match s {
        Severity::Critical => t.fg(Color::Magenta).add_modifier(Modifier::BOLD),
        Severity::High => t.fg(Color::Red).add_modifier(Modifier::BOLD),
        Severity::Medium => t.fg(Color::Yellow),
        Severity::Low => Style::new(),
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRIT",
        Severity::High => "HIGH",
        Severity::Medium => "MED",
        Severity::Low => "LOW",
    }
}

fn label_mark(state: Option<&LabelState>) -> String {
    match state {
        Some(LabelState::Saved(v, _)) => format!("✓{}", v.as_str()),
        Some(LabelState::Saving(v)) => format!("…{}", v.as_str()),
        Some(LabelState::Failed(_)) => "✗unsaved".into(),
        None => String::new(),
    }
}

fn draw_incidents(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let list = app.incidents_newest_first();
    let selected = app
        .selected_incident()
        .and_then(|s| list.iter().position(|i| i.id == s.id));
    let rows: Vec<Row> = list
        .iter()
        .map(|i| {
            Row::new(vec![
                Cell::from(format!("#{}", i.id)),
                Cell::from(timefmt::hms(i.opened_ms)),
                Cell::from(severity_name(i.severity)).style(severity_style(i.severity, t)),
                Cell::from(if i.closed { "○" } else { "●" }),
                Cell::from(Line::from(vec![
                    Span::raw(i.title()),
                    Span::styled(
                        format!(
                            " {}",
                            label_mark(app.labels.get(&LabelTarget::Incident(i.id)))
                        ),
                        t.fg(Color::Green),
                    ),
                ])),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Length(8),
            Constraint::Length(4),
            Constraint::Length(1),
            Constraint::Min(20),
        ],
    )
    .row_highlight_style(t.selected())
    .block(block(
        format!(" Incidents ({}) ", list.len()),
        app.focus == Focus::Incidents,
        t,
    ));
    if list.is_empty() {
        let p = Paragraph::new("no incidents yet: scores are below the threshold")
            .style(t.fg(Color::DarkGray))
            .block(block(
                " Incidents (0) ".into(),
                app.focus == Focus::Incidents,
                t,
            ));
        f.render_widget(p, area);
        return;
    }
    let mut state = TableState::default().with_selected(selected);
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let focused = app.focus == Focus::Detail;
    let Some(inc) = app.selected_incident() else {
        f.render_widget(block(" Detail ".into(), focused, t), area);
        return;
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                inc.kind.label(),
                t.fg(Color::White).add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!(" · {} · ", inc.main_entity)),
            Span::styled(severity_name(inc.severity), severity_style(inc.severity, t)),
            Span::raw(format!(" · peak {:.2}", inc.peak_score)),
        ]),
        Line::from(format!(
            "opened {} · events {}–{} · {}",
            timefmt::hms(inc.opened_ms),
            timefmt::hms(inc.first_event_ms),
            timefmt::hms(inc.last_event_ms),
            if inc.closed {
                "quiet for 20 min (○)"
            } else {
                "ongoing (●)"
            }
        )),
        Line::from(Span::styled(
            format!(
                "involves: {}",
                inc.keys
                    .iter()
                    .take(8)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            t.fg(Color::Gray),
        )),
    ];
    // One ranking per draw, shared by the analyst and the suggestion list.
    let (ctx, suggestions) = app.approval.suggestions(inc, &app.incident_anomalies());
    if let Some((pack, view)) = app.analysis(&suggestions) {
        lines.extend(analyst_lines(&pack, &view, t));
    }
    lines.extend(suggestion_lines(app, &ctx, &suggestions, t));
    lines.push(Line::from(Span::styled(
        "signals (why it was flagged):",
        t.fg(Color::Gray),
    )));
    let anomalies = app.incident_anomalies();
    let sel = app.anomaly_idx.min(anomalies.len().saturating_sub(1));
    for (i, a) in anomalies.iter().enumerate() {
        let mark = label_mark(app.labels.get(&LabelTarget::Anomaly(a.id)));
        let style = if focused && i == sel {
            t.selected()
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {:.2} ", a.peak_score),
                t.score(a.peak_score, app.engine.threshold()),
            ),
            Span::styled(format!("{} {mark}", a.explain()), style),
        ]));
    }
    if let Some(a) = anomalies.get(sel) {
        if !a.context.is_empty() {
            lines.push(Line::from(Span::styled(
                "context in its source (also counted in its score):",
                t.fg(Color::Gray),
            )));
            for e in &a.context {
                let about = e
                    .template
                    .map(|id| format!("'{}' ", app.engine.template_text(id)))
                    .unwrap_or_default();
                lines.push(Line::from(vec![
                    Span::styled(
                        format!(" {:.2} ", e.score),
                        t.score(e.score, app.engine.threshold()),
                    ),
                    Span::raw(format!("{}: {about}{}", e.scorer.name(), e.what)),
                ]));
            }
        }
        lines.push(Line::from(Span::styled("templates:", t.fg(Color::Gray))));
        let mut tpl: Vec<_> = a.templates.iter().collect();
        tpl.sort_by(|x, y| y.1.cmp(x.1));
        for (id, n) in tpl.into_iter().take(3) {
            lines.push(Line::from(format!(
                "  {n:>5}× {}",
                app.engine.template_text(*id)
            )));
        }
        lines.push(Line::from(Span::styled("evidence:", t.fg(Color::Gray))));
        for s in &a.samples {
            lines.push(Line::from(format!("  {}", expand_tabs(s.as_str()))));
        }
    }
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(block(format!(" Incident #{} ", inc.id), focused, t));
    f.render_widget(p, area);
}

/// The label queue: one line per template, the learner's belief, and what a label would decide.
fn draw_queue(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let l = &app.learning;
    let learner = &l.learner;
    let rows = area.height.saturating_sub(2) as usize;
    let start = l.selected.saturating_sub(rows.saturating_sub(1));
    let mut lines: Vec<Line> = Vec::new();
    if l.queue.is_empty() {
        lines.push(Line::from(Span::styled(
            "  nothing to ask yet: lines arrive with the tail",
            t.fg(Color::Gray),
        )));
    }
    for (i, item) in l.queue.iter().enumerate().skip(start).take(rows) {
        let (a, n) = learner.template_labels(&item.template);
        let said = if item.suppressed {
            " suppressed".to_string()
        } else if a + n > 0 {
            format!(" {a}a/{n}x")
        } else {
            String::new()
        };
        let group = item.group.rsplit('/').next().unwrap_or(&item.group);
        let mark = label_mark(app.labels.get(&LabelTarget::Line(item.target_id())));
        let p_style = if item.probability >= 0.5 {
            t.fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            t.fg(Color::Gray)
        };
        let mut spans = vec![
            Span::styled(format!("p={:.2}{said:<7} ", item.probability), p_style),
            Span::styled(format!("{group:<14.14} "), t.fg(Color::Blue)),
            Span::raw(expand_tabs(item.text.as_str())),
            Span::raw(mark),
        ];
        if i == l.selected && app.focus == Focus::Tail {
            spans = spans
                .into_iter()
                .map(|s| s.patch_style(t.selected()))
                .collect();
        }
        lines.push(Line::from(spans));
    }
    let title = format!(
        " Label queue: {} to ask · {} labels · learner v{} · templates suppressed: {} (L: tail) ",
        l.queue.len(),
        learner.labels(),
        learner.version(),
        learner.suppressed().count()
    );
    f.render_widget(
        Paragraph::new(lines).block(block(title, app.focus == Focus::Tail, t)),
        area,
    );
}

fn draw_tail(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    if app.learning.show {
        return draw_queue(f, area, app, t);
    }
    let tail = app.engine.tail();
    let rows = area.height.saturating_sub(2) as usize;
    let frozen_back = if app.paused {
        (app.engine.lines().saturating_sub(app.paused_at)) as usize
    } else {
        0
    };
    let end = tail.len().saturating_sub(app.tail_back + frozen_back);
    let start = end.saturating_sub(rows);
    let threshold = app.engine.threshold();
    let lines: Vec<Line> = tail
        .range(start..end)
        .map(|l| {
            let style = if l.score >= threshold {
                t.fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                match l.level {
                    Level::Error => t.fg(Color::LightRed),
                    Level::Warn => t.fg(Color::Yellow),
                    Level::Debug => t.fg(Color::DarkGray),
                    Level::Info => Style::new(),
                }
            };
            let group = l.group.rsplit('/').next().unwrap_or(&l.group);
            Line::from(vec![
                Span::styled(
                    format!("{} ", timefmt::hms(l.arrival_ms)),
                    t.fg(Color::DarkGray),
                ),
                Span::styled(format!("{group:<14.14} "), t.fg(Color::Blue)),
                Span::styled(expand_tabs(l.text.as_str()), style),
            ])
        })
        .collect();
    let title = if app.tail_back + frozen_back > 0 {
        format!(" Tail (−{} lines) ", app.tail_back + frozen_back)
    } else {
        " Tail (live) ".to_string()
    };
    f.render_widget(
        Paragraph::new(lines).block(block(title, app.focus == Focus::Tail, t)),
        area,
    );
}

fn draw_help(f: &mut Frame, area: Rect, t: &Theme) {
    let w = 64.min(area.width);
    let h = (HELP.len() as u16 + 4).min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:>16}  "),
                    t.fg(Color::Cyan).add_modifier(Modifier::BOLD),
                ),
                Span::raw(*v),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "labels are saved to the local store at once",
        t.fg(Color::Gray),
    )));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(block(" Help (? or Esc to close) ".into(), true, t)),
        r,
    );
}
