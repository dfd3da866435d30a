//! Novelty: lines unlike anything their source has shown before. Two kinds:
//! - a **new template**: the first line of a shape the miner has never seen (in this session or,
//!   with restored templates, ever), once the source is past its warm-up;
//! - a **new value** in an error or warning: a value never seen at a parameter position that has
//!   so far held only a few values (a status, an endpoint, a user), such as an error suddenly
//!   naming a database host it never named. Positions that hold ids, counters or times (many
//!   distinct values) are not categorical and never count.
//!
//! Each novel line becomes a count per source and minute, so the count scorer judges *bursts* of
//! novelty (a deploy brings a few new lines; a failure, a flood). Only error and warning lines
//! have their parameters read, which keeps the cost off the hot path.

use crate::parse::Level;
use crate::template::TemplateId;

/// Lines a source shows before anything in it counts as new: the first minutes of a fresh miner
/// are all new shapes.
const WARMUP_LINES: u64 = 2_000;
/// Occurrences of a template before its positions are judged: which ones are categorical.
const POSITION_WARMUP: u64 = 50;
/// A position with more distinct values than this is not categorical (ids, counters, times).
const MAX_CATEGORIES: usize = 8;
/// Positions tracked per template, and templates tracked per source, so memory stays bounded.
const MAX_POSITIONS: usize = 16;
const MAX_TEMPLATES: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Novel {
    Template,
    Value,
}

#[derive(Debug, Clone, Default)]
struct Position {
    values: foldhash::HashSet<String>,
    /// More values than [`MAX_CATEGORIES`] were seen: never categorical again.
    open: bool,
}

#[derive(Debug, Clone, Default)]
struct TemplateValues {
    seen: u64,
    positions: Vec<Position>,
    /// Every position of its last line was open: nothing left to learn, so its lines skip
    /// extracting values (checked again now and then, in case the template widened).
    settled: bool,
}

/// A settled template's lines are looked at again once in this many.
const SETTLED_RECHECK: u64 = 256;

/// One source's novelty state; the engine keeps it with the source's other counters, so no
/// extra lookup is paid per line.
#[derive(Debug, Clone, Default)]
pub struct SourceNovelty {
    lines: u64,
    templates: crate::template::TemplateMap<TemplateValues>,
}

impl SourceNovelty {
    /// Whether this line is novel for its source. `first_of_template` says the miner has just
    /// created its template; `parameters` gives the values at the template's variable positions
    /// and is called only for error and warning lines.
    pub fn observe<'a>(
        &mut self,
        template: TemplateId,
        first_of_template: bool,
        level: Level,
        parameters: impl FnOnce() -> Vec<&'a str>,
    ) -> Option<Novel> {
        self.lines += 1;
        let warm = self.lines > WARMUP_LINES;
        if first_of_template {
            return warm.then_some(Novel::Template);
        }
        if !matches!(level, Level::Error | Level::Warn) {
            return None;
        }
        if !self.templates.contains_key(&template) && self.templates.len() >= MAX_TEMPLATES {
            return None;
        }
        let t = self.templates.entry(template).or_default();
        t.seen += 1;
        if t.settled && !t.seen.is_multiple_of(SETTLED_RECHECK) {
            return None;
        }
        let values = parameters();
        let width = values.len().min(MAX_POSITIONS);
        let judged = t.seen > POSITION_WARMUP && warm;
        let mut novel = false;
        for (i, v) in values.into_iter().take(MAX_POSITIONS).enumerate() {
            if t.positions.len() <= i {
                t.positions.resize_with(i + 1, Position::default);
            }
            let p = &mut t.positions[i];
            if p.open || p.values.contains(v) {
                continue;
            }
            if p.values.len() >= MAX_CATEGORIES {
                p.open = true;
                p.values.clear();
                continue;
            }
            novel |= judged;
            p.values.insert(v.to_string());
        }
        t.settled = t.positions.iter().take(width).all(|p| p.open);
        novel.then_some(Novel::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_shapes_count_after_the_warmup_only() {
        let mut n = SourceNovelty::default();
        assert_eq!(n.observe(1, true, Level::Info, Vec::new), None);
        for _ in 0..WARMUP_LINES {
            n.observe(1, false, Level::Info, Vec::new);
        }
        assert_eq!(
            n.observe(2, true, Level::Info, Vec::new),
            Some(Novel::Template)
        );
        // Another source has its own warm-up.
        assert_eq!(
            SourceNovelty::default().observe(3, true, Level::Info, Vec::new),
            None
        );
    }

    #[test]
    fn a_new_value_at_a_categorical_position_is_novel_and_ids_are_not() {
        let mut n = SourceNovelty::default();
        for _ in 0..WARMUP_LINES {
            n.observe(1, false, Level::Info, Vec::new);
        }
        // An error naming one of two endpoints, with a request id that is always new.
        for i in 0..200 {
            let endpoint = if i % 2 == 0 { "db-a:5432" } else { "db-b:5432" };
            let request = format!("req-{i}");
            let got = n.observe(7, false, Level::Error, || vec![endpoint, request.as_str()]);
            if i > POSITION_WARMUP as usize + MAX_CATEGORIES + 2 {
                assert_eq!(got, None, "line {i}");
            }
        }
        assert_eq!(
            n.observe(7, false, Level::Error, || vec!["db-c:5432", "req-x"]),
            Some(Novel::Value)
        );
        // Info lines are not read at all.
        assert_eq!(
            n.observe(7, false, Level::Info, || panic!("not called")),
            None
        );
    }
}
