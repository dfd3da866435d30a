//! The log group picker (`+` in `stormwatch tail`): type a prefix, the matching groups are listed
//! (DescribeLogGroups), Space selects several, Enter starts tailing them. Pure state and keys; the
//! AWS calls happen on the source side, reached through [`Command`]s.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::BTreeSet;

/// What the console asks of the live sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// List the log groups whose names start with this.
    SearchGroups(String),
    /// Start tailing these groups (names).
    TailGroups(Vec<String>),
}

/// Groups listed for one prefix, as the source side answers a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupList {
    pub prefix: String,
    pub names: Vec<String>,
    /// More groups match than were listed: type more of the name.
    pub truncated: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picker {
    pub query: String,
    pub list: Vec<String>,
    pub truncated: bool,
    pub error: Option<String>,
    /// The prefix a search is running for, if the list is not its answer yet.
    pub searching: Option<String>,
    pub selected: BTreeSet<String>,
    pub cursor: usize,
}

/// What a key did to the picker.
#[derive(Debug, PartialEq, Eq)]
pub enum PickerOutcome {
    Stay,
    Close,
    Send(Command),
    /// Send and close.
    Done(Command),
}

/// Log group names use letters, digits and `_ - / . #`; nothing else is typed into the query.
fn group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.' | '#')
}

impl Picker {
    pub fn new() -> Self {
        Picker::default()
    }

    /// A search for the current query, remembered so its answer is recognised.
    fn search(&mut self) -> PickerOutcome {
        self.searching = Some(self.query.clone());
        PickerOutcome::Send(Command::SearchGroups(self.query.clone()))
    }

    /// The first search, when the picker opens: everything (the first page).
    pub fn open(&mut self) -> Command {
        self.searching = Some(self.query.clone());
        Command::SearchGroups(self.query.clone())
    }

    pub fn key(&mut self, key: KeyEvent) -> PickerOutcome {
        if key.kind == KeyEventKind::Release {
            return PickerOutcome::Stay;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return match key.code {
                KeyCode::Char('c') => PickerOutcome::Close,
                KeyCode::Char('u') => {
                    self.query.clear();
                    self.search()
                }
                _ => PickerOutcome::Stay,
            };
        }
        match key.code {
            KeyCode::Esc => PickerOutcome::Close,
            KeyCode::Up => {
                self.cursor = self.cursor.saturating_sub(1);
                PickerOutcome::Stay
            }
            KeyCode::Down => {
                self.cursor = (self.cursor + 1).min(self.list.len().saturating_sub(1));
                PickerOutcome::Stay
            }
            KeyCode::Char(' ') => {
                if let Some(name) = self.list.get(self.cursor).cloned()
                    && !self.selected.remove(&name)
                {
                    self.selected.insert(name);
                }
                PickerOutcome::Stay
            }
            KeyCode::Enter => {
                let mut chosen: Vec<String> = self.selected.iter().cloned().collect();
                if chosen.is_empty()
                    && let Some(name) = self.list.get(self.cursor)
                {
                    chosen.push(name.clone());
                }
                if chosen.is_empty() {
                    PickerOutcome::Stay
                } else {
                    PickerOutcome::Done(Command::TailGroups(chosen))
                }
            }
            KeyCode::Backspace => {
                if self.query.pop().is_some() {
                    self.search()
                } else {
                    PickerOutcome::Stay
                }
            }
            KeyCode::Char(c) if group_char(c) && self.query.len() < 512 => {
                self.query.push(c);
                self.search()
            }
            _ => PickerOutcome::Stay,
        }
    }

    /// Takes a search's answer if it is for the query as it stands (older answers are dropped).
    pub fn answer(&mut self, list: GroupList) {
        if list.prefix != self.query {
            return;
        }
        self.searching = None;
        self.list = list.names;
        self.truncated = list.truncated;
        self.error = list.error;
        self.cursor = self.cursor.min(self.list.len().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn typing_searches_space_selects_enter_tails() {
        let mut p = Picker::new();
        assert_eq!(p.open(), Command::SearchGroups(String::new()));
        assert_eq!(
            p.key(k(KeyCode::Char('/'))),
            PickerOutcome::Send(Command::SearchGroups("/".into()))
        );
        // Characters a group name cannot have are not typed.
        assert_eq!(p.key(k(KeyCode::Char('*'))), PickerOutcome::Stay);
        // An answer for an older query is ignored.
        p.answer(GroupList {
            prefix: String::new(),
            names: vec!["x".into()],
            truncated: false,
            error: None,
        });
        assert!(p.list.is_empty());
        p.answer(GroupList {
            prefix: "/".into(),
            names: vec![
                "/aws/lambda/a".into(),
                "/aws/lambda/b".into(),
                "/ec2/c".into(),
            ],
            truncated: false,
            error: None,
        });
        assert_eq!(p.searching, None);
        p.key(k(KeyCode::Down));
        p.key(k(KeyCode::Char(' ')));
        p.key(k(KeyCode::Down));
        p.key(k(KeyCode::Char(' ')));
        assert_eq!(
            p.key(k(KeyCode::Enter)),
            PickerOutcome::Done(Command::TailGroups(vec![
                "/aws/lambda/b".into(),
                "/ec2/c".into()
            ]))
        );
        assert_eq!(p.key(k(KeyCode::Esc)), PickerOutcome::Close);
    }

    #[test]
    fn enter_without_a_selection_takes_the_highlighted_group() {
        let mut p = Picker::new();
        p.answer(GroupList {
            prefix: String::new(),
            names: vec!["/a".into()],
            truncated: false,
            error: None,
        });
        assert_eq!(
            p.key(k(KeyCode::Enter)),
            PickerOutcome::Done(Command::TailGroups(vec!["/a".into()]))
        );
    }
}
