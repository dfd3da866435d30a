//! Streaming log-template miner (Drain family).
//!
//! Lines are tokenised on whitespace, after `=` and after a word's first `:`. Numbers,
//! hex, addresses, paths, `key=value` values and units are masked; identifiers with one
//! embedded number keep their shape (`node-<*>`). A Drain-style coarse cluster (same
//! length, similar literals) is then split into templates by the values of its columns:
//! a column stays a template-defining constant until it takes too many values among
//! templates that agree everywhere else, or mixes masked and literal values. Then it
//! becomes a parameter and the affected templates merge, with ids redirected so earlier
//! lines follow them. Fixed thresholds, no per-system tuning.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub type TemplateId = u32;

/// Similarity a line needs with a template's literal positions to join it.
const SIM_THRESHOLD: f64 = 0.5;
/// Lines longer than this are folded into a trailing wildcard so huge inputs stay cheap.
const MAX_PIECES: usize = 128;
/// A column taking more values than this among templates that agree on every other
/// column is a parameter: constants in real logs come in small closed sets.
const MAX_CONSTANT_VALUES: usize = 6;
/// Bound on the distinct values remembered per column; more make it a parameter.
const MAX_COLUMN_VALUES: usize = 64;

const WILDCARD: &str = "<*>";

/// One token of a tokenised line, as byte offsets into the line.
#[derive(Clone, Copy, Debug)]
struct Piece {
    start: u32,
    end: u32,
    /// Span of the digit-normalised form in `Tokens::norm`, when the piece has one.
    norm: Option<(u32, u32)>,
    var: bool,
    /// Whitespace preceded this piece, so the template can be re-rendered faithfully.
    space: bool,
}

/// Per-position statistics of a coarse cluster.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Column {
    /// Too many distinct values were seen here: the position is a parameter.
    var: bool,
    /// Distinct values seen so far (masked tokens count as one value, `<*>`).
    values: Vec<Box<str>>,
}

/// A Drain-style cluster of lines with the same length and similar literals. Lines
/// inside it are further split into templates by the values at its low-cardinality
/// positions.
#[derive(Debug, Serialize, Deserialize)]
struct Coarse {
    /// Literal where every member agreed so far; `None` otherwise.
    tokens: Vec<Option<Box<str>>>,
    columns: Vec<Column>,
    /// Key of the values at non-variable columns -> template.
    subs: IdMap<TemplateId>,
    /// (column, key of the other columns) -> number of templates in that context, i.e.
    /// how many distinct values the column takes when everything else is fixed.
    contexts: IdMap<usize>,
    members: Vec<TemplateId>,
}

impl Coarse {
    /// Order-independent sum of the cells of non-variable columns, so one column's
    /// contribution can be subtracted to name its context.
    fn key(&self, cells: &[u64]) -> u64 {
        self.columns
            .iter()
            .zip(cells)
            .filter(|(c, _)| !c.var)
            .fold(0u64, |k, (_, &h)| k.wrapping_add(h))
    }

    fn add_contexts(&mut self, key: u64, cells: &[u64]) {
        Self::add_contexts_to(&mut self.contexts, &self.columns, key, cells);
    }

    fn add_contexts_to(ctx: &mut IdMap<usize>, columns: &[Column], key: u64, cells: &[u64]) {
        for (i, (col, &h)) in columns.iter().zip(cells).enumerate() {
            if !col.var {
                *ctx.entry(mix(key.wrapping_sub(h), i as u64)).or_default() += 1;
            }
        }
    }
}

fn cell_hash(i: usize, value: &str) -> u64 {
    mix(hash_bytes(value.as_bytes()), i as u64 + 1)
}

#[derive(Debug, Serialize, Deserialize)]
struct Template {
    /// `None` marks a variable position.
    tokens: Vec<Option<Box<str>>>,
    space: Vec<bool>,
    count: u64,
}

/// Hashes already-mixed `u64` keys without re-hashing them.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u32(&mut self, n: u32) {
        // Template ids are small consecutive numbers: spread them over the high bits the table
        // uses.
        self.0 = u64::from(n).wrapping_mul(0x9e_37_79_b9_7f_4a_7c_15);
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// A map keyed by template id, hashed in one multiplication (per-line counters use it).
pub type TemplateMap<V> = HashMap<TemplateId, V, BuildHasherDefault<IdHasher>>;

fn mix(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(w));
    }
    for &b in chunks.remainder() {
        h = mix(h, u64::from(b));
    }
    h
}

/// The miner's whole state is serialisable so the store can keep templates (and their ids)
/// across runs; the scratch buffers are rebuilt.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Miner {
    coarse: Vec<Coarse>,
    templates: Vec<Template>,
    /// Redirects for merged templates; `parent[i] == i` for live ones.
    parent: Vec<TemplateId>,
    /// (length, first token) -> candidate coarse clusters.
    buckets: IdMap<Vec<u32>>,
    /// length -> all coarse clusters of that length, searched when the bucket has no match.
    by_len: IdMap<Vec<u32>>,
    live: usize,
    #[serde(skip)]
    scratch: Tokens,
    /// Address and length of the line `scratch` holds the tokens of, so asking for the parameters
    /// of the line just mined (the engine's novelty check) does not tokenise it again.
    #[serde(skip)]
    scratch_line: (usize, usize),
    #[serde(skip)]
    cells: Vec<u64>,
}

/// A tokenised line: pieces plus a buffer holding digit-normalised piece texts.
#[derive(Debug, Default)]
struct Tokens {
    pieces: Vec<Piece>,
    norm: String,
}

impl Tokens {
    /// The text a piece is matched by: its digit-normalised form when it has one.
    fn value<'a>(&'a self, line: &'a str, p: &Piece) -> &'a str {
        match p.norm {
            Some((s, e)) => self.norm.get(s as usize..e as usize).unwrap_or(""),
            None => text(line, p),
        }
    }
}

fn tokenize(line: &str, out: &mut Tokens) {
    out.pieces.clear();
    out.norm.clear();
    let bytes = line.as_bytes();
    let n = bytes.len().min(u32::MAX as usize);
    let mut i = 0usize;
    let mut space = false;
    while i < n {
        if bytes[i].is_ascii_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        let word_start = i;
        while i < n && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        split_word(bytes, word_start, i, space, out);
        space = false;
    }
    collapse(bytes, &mut out.pieces);
}

/// Splits a whitespace-delimited word after `=` and after its first `:` so that
/// `key=value` and `key:value` keep the key as a literal and expose the value.
fn split_word(bytes: &[u8], start: usize, end: usize, space: bool, out: &mut Tokens) {
    let mut piece_start = start;
    let mut after_eq = false;
    let mut first = true;
    let mut colon_seen = false;
    let mut j = start;
    while j < end {
        let b = bytes[j];
        j += 1;
        // Only the first colon separates a key: later ones belong to the value
        // (times, MAC and IPv6 addresses).
        let split = b == b'=' || (b == b':' && !colon_seen);
        colon_seen |= b == b':';
        if split && j < end {
            push_piece(bytes, piece_start, j, space && first, after_eq, out);
            after_eq = b == b'=';
            first = false;
            piece_start = j;
        }
    }
    if piece_start < end {
        push_piece(bytes, piece_start, end, space && first, after_eq, out);
    }
}

fn push_piece(
    bytes: &[u8],
    start: usize,
    end: usize,
    space: bool,
    forced_var: bool,
    out: &mut Tokens,
) {
    let tok = &bytes[start..end];
    let mut norm = None;
    let var = if forced_var {
        true
    } else if !tok.iter().any(u8::is_ascii_digit) {
        looks_like_path(tok)
    } else if digit_runs(tok) > 1 || is_hexish(tok) || looks_like_path(tok) {
        true
    } else {
        let ns = out.norm.len();
        let has_letters = shape(tok, &mut out.norm);
        norm = Some((ns as u32, out.norm.len() as u32));
        !has_letters
    };
    out.pieces.push(Piece {
        start: start as u32,
        end: end as u32,
        norm: if var { None } else { norm },
        var,
        space,
    });
}

/// Composite ids (`attempt_1445_0020_m_000001_0`, host-10-1-2-3) carry several numbers;
/// identifiers with one embedded number (`wl0`, `node-12`) keep their shape instead.
fn digit_runs(tok: &[u8]) -> usize {
    tok.iter()
        .enumerate()
        .filter(|&(i, b)| b.is_ascii_digit() && (i == 0 || !tok[i - 1].is_ascii_digit()))
        .count()
}

/// Hex numbers, hashes, MAC/IPv6 addresses and UUIDs: only hex digits and separators.
fn is_hexish(tok: &[u8]) -> bool {
    let body = trim_punct(tok);
    let body = body
        .strip_prefix(b"0x")
        .or_else(|| body.strip_prefix(b"0X"))
        .unwrap_or(body);
    // Short all-hex words (`ee0`, `be1`) are as likely names as numbers.
    (body.len() >= 6 || body.iter().any(|b| matches!(b, b':' | b'-' | b'.' | b'_')))
        && body
            .iter()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'-' | b'.' | b'_'))
}

fn trim_punct(tok: &[u8]) -> &[u8] {
    let is_punct = |b: &u8| {
        matches!(
            b,
            b'"' | b'\''
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'<'
                | b'>'
                | b','
                | b';'
                | b'.'
        )
    };
    let s = tok.iter().position(|b| !is_punct(b)).unwrap_or(tok.len());
    let e = tok.iter().rposition(|b| !is_punct(b)).map_or(s, |e| e + 1);
    tok.get(s..e.max(s)).unwrap_or(&[])
}

/// File-system paths and URLs.
fn looks_like_path(tok: &[u8]) -> bool {
    let body = match tok
        .iter()
        .position(|b| !matches!(b, b'"' | b'\'' | b'(' | b'[' | b'{' | b'<'))
    {
        Some(i) => &tok[i..],
        None => return false,
    };
    if body.len() > 1 && (body[0] == b'/' || body[0] == b'\\') {
        return true;
    }
    // Both URL and drive-letter forms need a colon; most words have none, so look for it once.
    match body.iter().position(|&b| b == b':') {
        None => false,
        Some(c) => {
            let rest = &body[c..];
            rest.windows(3).any(|w| w == b"://") || rest.windows(2).any(|w| w == b":\\")
        }
    }
}

/// Writes the token with its numeric parts replaced by `<*>` (`node-12` -> `node-<*>`,
/// `wl0` -> `wl<*>`), keeping the identifier's shape as a literal. Returns whether any
/// letters survive; a token without letters is a plain parameter (number, date, IP).
fn shape(tok: &[u8], out: &mut String) -> bool {
    let mut has_letters = false;
    let mut i = 0usize;
    while i < tok.len() {
        let b = tok[i];
        if !b.is_ascii_alphanumeric() {
            // A sign belongs to the number it precedes (`blk_-123` is `blk_<*>`).
            let sign = b == b'-'
                && tok.get(i + 1).is_some_and(u8::is_ascii_digit)
                && (i == 0 || !tok[i - 1].is_ascii_alphanumeric());
            if !sign {
                push_byte(out, tok, i);
                has_letters |= b >= 0x80;
            }
            i += 1;
            continue;
        }
        let run_start = i;
        while i < tok.len() && tok[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let run = &tok[run_start..i];
        if !run.iter().any(u8::is_ascii_digit) {
            has_letters = true;
            out.extend(run.iter().map(|&b| char::from(b)));
        } else if (run.len() >= 6 && run.iter().all(u8::is_ascii_hexdigit))
            || run.iter().all(u8::is_ascii_digit)
            || (run.len() > 2 && (run.starts_with(b"0x") || run.starts_with(b"0X")))
        {
            out.push_str(WILDCARD);
        } else {
            let mut k = 0usize;
            while k < run.len() {
                if run[k].is_ascii_digit() {
                    while k < run.len() && run[k].is_ascii_digit() {
                        k += 1;
                    }
                    out.push_str(WILDCARD);
                } else {
                    has_letters = true;
                    out.push(char::from(run[k]));
                    k += 1;
                }
            }
        }
    }
    has_letters
}

/// Copies one byte of a possibly multi-byte UTF-8 sequence; continuation bytes are
/// copied along with their lead byte so the buffer stays valid UTF-8.
fn push_byte(out: &mut String, tok: &[u8], i: usize) {
    let b = tok[i];
    if b < 0x80 {
        out.push(char::from(b));
    } else if b >= 0xC0 {
        let len = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        if let Some(s) = tok
            .get(i..i + len)
            .and_then(|s| std::str::from_utf8(s).ok())
        {
            out.push_str(s);
        }
    }
}

/// Runs of variable tokens become one token so that variable-length parameter lists
/// (stack traces, number tuples, timestamps) do not change the template length.
fn collapse(bytes: &[u8], pieces: &mut Vec<Piece>) {
    let mut w = 0usize;
    for r in 0..pieces.len() {
        let mut p = pieces[r];
        // A size or time unit after a number is part of the quantity (`5.2 KB`, `93 B`).
        if w > 0 && !p.var && pieces[w - 1].var {
            let tok = bytes.get(p.start as usize..p.end as usize).unwrap_or(&[]);
            if is_unit(trim_punct(tok)) {
                p.var = true;
                p.norm = None;
            }
        }
        if w > 0 && p.var && pieces[w - 1].var {
            pieces[w - 1].end = p.end;
            continue;
        }
        if w >= MAX_PIECES {
            pieces[w - 1].end = p.end;
            pieces[w - 1].var = true;
            pieces[w - 1].norm = None;
            continue;
        }
        pieces[w] = p;
        w += 1;
    }
    pieces.truncate(w);
}

fn is_unit(tok: &[u8]) -> bool {
    const UNITS: [&[u8]; 22] = [
        b"B", b"KB", b"MB", b"GB", b"TB", b"kB", b"KiB", b"MiB", b"GiB", b"TiB", b"bytes", b"ns",
        b"us", b"ms", b"s", b"sec", b"secs", b"seconds", b"min", b"mins", b"minutes", b"h",
    ];
    UNITS.contains(&tok)
}

fn text<'a>(line: &'a str, p: &Piece) -> &'a str {
    line.get(p.start as usize..p.end as usize).unwrap_or("")
}

impl Miner {
    pub fn new() -> Self {
        Self::default()
    }

    fn root(&self, mut id: TemplateId) -> TemplateId {
        while let Some(&p) = self.parent.get(id as usize) {
            if p == id {
                break;
            }
            id = p;
        }
        id
    }

    fn bucket_key(line: &str, toks: &Tokens) -> u64 {
        let first = match toks.pieces.first() {
            Some(p) if !p.var => hash_bytes(toks.value(line, p).as_bytes()),
            _ => 0,
        };
        mix(first, toks.pieces.len() as u64)
    }

    /// Returns (similarity, literal matches) of a line against a coarse cluster.
    fn similarity(tokens: &[Option<Box<str>>], line: &str, toks: &Tokens) -> (f64, usize) {
        let mut matches = 0usize;
        let mut literals = 0usize;
        for (t, p) in tokens.iter().zip(&toks.pieces) {
            if let Some(t) = t {
                literals += 1;
                if !p.var && **t == *toks.value(line, p) {
                    matches += 1;
                }
            }
        }
        if literals == 0 {
            return (1.0, 0);
        }
        (matches as f64 / literals as f64, matches)
    }

    fn best_in(&self, ids: &[u32], line: &str, toks: &Tokens) -> Option<u32> {
        let mut best: Option<(f64, usize, u32)> = None;
        for &id in ids {
            let Some(c) = self.coarse.get(id as usize) else {
                continue;
            };
            if c.tokens.len() != toks.pieces.len() {
                continue;
            }
            let (sim, m) = Self::similarity(&c.tokens, line, toks);
            if sim < SIM_THRESHOLD {
                continue;
            }
            if best.is_none_or(|(bs, bm, _)| sim > bs || (sim == bs && m > bm)) {
                best = Some((sim, m, id));
            }
        }
        best.map(|b| b.2)
    }

    fn find_coarse(&mut self, line: &str, toks: &Tokens) -> u32 {
        let pieces = &toks.pieces;
        let key = Self::bucket_key(line, toks);
        let len_key = mix(0x9e37_79b9, pieces.len() as u64);
        if let Some(id) = self
            .buckets
            .get(&key)
            .and_then(|ids| self.best_in(ids, line, toks))
        {
            return id;
        }
        if let Some(id) = self
            .by_len
            .get(&len_key)
            .and_then(|ids| self.best_in(ids, line, toks))
        {
            // Later lines with this first token find the cluster directly.
            self.buckets.entry(key).or_default().push(id);
            return id;
        }
        let id = self.coarse.len() as u32;
        self.coarse.push(Coarse {
            tokens: pieces
                .iter()
                .map(|p| (!p.var).then(|| toks.value(line, p).into()))
                .collect(),
            columns: pieces.iter().map(|_| Column::default()).collect(),
            subs: IdMap::default(),
            contexts: IdMap::default(),
            members: Vec::new(),
        });
        self.buckets.entry(key).or_default().push(id);
        self.by_len.entry(len_key).or_default().push(id);
        id
    }

    /// Assigns the line to a template (creating one when none is similar enough); stable id.
    pub fn mine(&mut self, line: &str) -> TemplateId {
        let mut toks = std::mem::take(&mut self.scratch);
        tokenize(line, &mut toks);
        let cid = self.find_coarse(line, &toks);
        let id = self.assign(cid as usize, line, &toks);
        self.scratch = toks;
        self.scratch_line = (line.as_ptr() as usize, line.len());
        id
    }

    fn assign(&mut self, cid: usize, line: &str, toks: &Tokens) -> TemplateId {
        let pieces = &toks.pieces;
        let Some(c) = self.coarse.get_mut(cid) else {
            return 0;
        };
        let mut flipped = false;
        let mut cells = std::mem::take(&mut self.cells);
        cells.clear();
        for (i, (p, (t, col))) in pieces
            .iter()
            .zip(c.tokens.iter_mut().zip(c.columns.iter_mut()))
            .enumerate()
        {
            let value = if p.var { WILDCARD } else { toks.value(line, p) };
            if t.as_deref().is_some_and(|lit| lit != value) {
                *t = None;
            }
            if !col.var && !col.values.iter().any(|v| **v == *value) {
                // A slot that already carries masked parameters holds parameters, so a
                // literal arriving there (or a parameter arriving among literals) is one.
                let mixed = !col.values.is_empty()
                    && (p.var || col.values.iter().any(|v| &**v == WILDCARD));
                if mixed || col.values.len() >= MAX_COLUMN_VALUES {
                    col.var = true;
                    flipped = true;
                } else {
                    col.values.push(value.into());
                }
            }
            cells.push(cell_hash(i, value));
        }
        if flipped {
            self.rekey(cid);
        }
        let mut id = None;
        for _ in 0..2 {
            let Some(c) = self.coarse.get_mut(cid) else {
                break;
            };
            let key = c.key(&cells);
            if let Some(&t) = c.subs.get(&key) {
                id = Some(t);
                break;
            }
            // A new combination of values: a column whose value varies among templates
            // that agree everywhere else is a parameter, so those templates fuse.
            let mut flipped = false;
            for (i, col) in c.columns.iter_mut().enumerate() {
                if col.var {
                    continue;
                }
                let ctx = mix(key.wrapping_sub(cells[i]), i as u64);
                if c.contexts.get(&ctx).copied().unwrap_or(0) >= MAX_CONSTANT_VALUES {
                    col.var = true;
                    flipped = true;
                }
            }
            if !flipped {
                break;
            }
            self.rekey(cid);
        }
        let id = match id {
            Some(t) => {
                let t = self.root(t);
                if let Some(t) = self.templates.get_mut(t as usize) {
                    t.count += 1;
                }
                t
            }
            None => self.create(cid, line, toks, &cells),
        };
        self.cells = cells;
        id
    }

    fn create(&mut self, cid: usize, line: &str, toks: &Tokens, cells: &[u64]) -> TemplateId {
        let pieces = &toks.pieces;
        let Some(c) = self.coarse.get_mut(cid) else {
            return 0;
        };
        let id = self.templates.len() as TemplateId;
        let tokens = pieces
            .iter()
            .zip(&c.columns)
            .map(|(p, col)| (!p.var && !col.var).then(|| toks.value(line, p).into()))
            .collect();
        let key = c.key(cells);
        c.subs.insert(key, id);
        c.add_contexts(key, cells);
        c.members.push(id);
        self.templates.push(Template {
            tokens,
            space: pieces.iter().map(|p| p.space).collect(),
            count: 1,
        });
        self.parent.push(id);
        self.live += 1;
        id
    }

    /// Recomputes template keys after columns turned variable, merging templates that
    /// now coincide; merged ids keep resolving through `parent`.
    fn rekey(&mut self, cid: usize) {
        let Some(c) = self.coarse.get_mut(cid) else {
            return;
        };
        let mut subs = IdMap::default();
        c.contexts.clear();
        let mut members = Vec::with_capacity(c.members.len());
        let mut cells = Vec::new();
        for &id in &c.members {
            let Some(t) = self.templates.get_mut(id as usize) else {
                continue;
            };
            cells.clear();
            for (i, (tok, col)) in t.tokens.iter_mut().zip(&c.columns).enumerate() {
                if col.var {
                    *tok = None;
                }
                cells.push(cell_hash(i, tok.as_deref().unwrap_or(WILDCARD)));
            }
            let key = c.key(&cells);
            match subs.get(&key) {
                Some(&keep) => {
                    let count = t.count;
                    if let Some(k) = self.templates.get_mut(keep as usize) {
                        k.count += count;
                    }
                    if let Some(p) = self.parent.get_mut(id as usize) {
                        *p = keep;
                    }
                    self.live -= 1;
                }
                None => {
                    subs.insert(key, id);
                    members.push(id);
                    let mut ctx = std::mem::take(&mut c.contexts);
                    Coarse::add_contexts_to(&mut ctx, &c.columns, key, &cells);
                    c.contexts = ctx;
                }
            }
        }
        c.subs = subs;
        c.members = members;
    }

    /// Template text with `<*>` at variable positions.
    pub fn template(&self, id: TemplateId) -> String {
        let Some(c) = self.templates.get(self.root(id) as usize) else {
            return String::new();
        };
        let mut s = String::new();
        for (i, (t, sp)) in c.tokens.iter().zip(&c.space).enumerate() {
            if i > 0 && *sp {
                s.push(' ');
            }
            s.push_str(t.as_deref().unwrap_or(WILDCARD));
        }
        s
    }

    /// Resolves an id that was later merged into another template (identity when not merged).
    pub fn canonical(&self, id: TemplateId) -> TemplateId {
        self.root(id)
    }

    pub fn count(&self, id: TemplateId) -> u64 {
        self.templates
            .get(self.root(id) as usize)
            .map_or(0, |c| c.count)
    }

    /// Number of live (unmerged) templates.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The miner's state as JSON, for the store.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// A miner restored from [`Miner::to_json`]: the same templates under the same ids.
    pub fn from_json(state: &str) -> Result<Miner, serde_json::Error> {
        serde_json::from_str(state)
    }

    /// The values at the template's variable positions for this line (for token-value signals).
    /// The tokens of the line just mined are reused when `line` is that same slice (same address
    /// and length, as in the engine); any other line is tokenised again.
    pub fn parameters<'a>(&self, id: TemplateId, line: &'a str) -> Vec<&'a str> {
        let mut own = Tokens::default();
        let toks = if self.scratch_line == (line.as_ptr() as usize, line.len()) {
            &self.scratch
        } else {
            tokenize(line, &mut own);
            &own
        };
        let pieces = &toks.pieces;
        let Some(c) = self.templates.get(self.root(id) as usize) else {
            return Vec::new();
        };
        if c.tokens.len() != pieces.len() {
            return pieces
                .iter()
                .filter(|p| p.var)
                .map(|p| text(line, p))
                .collect();
        }
        c.tokens
            .iter()
            .zip(pieces)
            .filter(|(t, _)| t.is_none())
            .map(|(_, p)| text(line, p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_miner_keeps_ids_and_templates() {
        let mut m = Miner::new();
        let a = m.mine("Failed password for root from 10.0.0.1 port 22 ssh2");
        let b = m.mine("disk / used=41% avail=11.8G");
        let mut r = Miner::from_json(&m.to_json().unwrap()).unwrap();
        assert_eq!(
            r.mine("Failed password for root from 10.9.9.9 port 23 ssh2"),
            m.canonical(a)
        );
        assert_eq!(r.template(b), m.template(b));
        let c = r.mine("a brand new line");
        assert_eq!(m.mine("a brand new line"), c);
        assert!(Miner::from_json("{").is_err());
    }

    #[test]
    fn groups_sshd_like_lines() {
        let mut m = Miner::new();
        let a = m.mine("Failed password for root from 10.0.0.1 port 22 ssh2");
        let b = m.mine("Failed password for root from 192.168.7.9 port 4242 ssh2");
        let c = m.mine("Accepted publickey for alice from 10.0.0.2 port 50000 ssh2");
        assert_eq!(m.canonical(a), m.canonical(b));
        assert_ne!(m.canonical(a), m.canonical(c));
        assert_eq!(
            m.template(a),
            "Failed password for root from <*> port <*> ssh<*>"
        );
        assert_eq!(m.count(a), 2);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn many_distinct_words_become_a_parameter() {
        let mut m = Miner::new();
        let users = [
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
        ];
        let ids: Vec<_> = users
            .iter()
            .map(|u| m.mine(&format!("session opened for user {u} by system")))
            .collect();
        let first = m.canonical(ids[0]);
        assert!(ids.iter().all(|&id| m.canonical(id) == first));
        assert_eq!(m.template(first), "session opened for user <*> by system");
        assert_eq!(m.count(first), users.len() as u64);
    }

    #[test]
    fn few_distinct_words_stay_separate_events() {
        let mut m = Miner::new();
        let on = m.mine("Screen turned on by user");
        let off = m.mine("Screen turned off by user");
        m.mine("Screen turned on by user");
        assert_ne!(m.canonical(on), m.canonical(off));
    }

    #[test]
    fn merge_redirect_is_stable() {
        let mut m = Miner::new();
        let early = m.mine("Resolved hosta to rack");
        let names = [
            "hostb", "hostc", "hostd", "hoste", "hostf", "hostg", "hosth",
        ];
        let later: Vec<_> = names
            .iter()
            .map(|h| m.mine(&format!("Resolved {h} to rack")))
            .collect();
        let root = m.canonical(early);
        assert!(later.iter().all(|&id| m.canonical(id) == root));
        assert_eq!(m.canonical(root), root);
        // Merged ids report the surviving template.
        assert_eq!(m.template(early), m.template(root));
        assert_eq!(m.count(early), 8);
        assert_eq!(m.len(), 1);
        // New lines keep landing on the surviving id.
        let z = m.mine("Resolved hostz to rack");
        assert_eq!(m.canonical(z), root);
    }

    #[test]
    fn extracts_parameters() {
        let mut m = Miner::new();
        m.mine("Took 5.2 seconds to build instance 7");
        let id = m.mine("Took 0.3 seconds to build instance 12");
        assert_eq!(m.template(id), "Took <*> to build instance <*>");
        assert_eq!(
            m.parameters(id, "Took 0.3 seconds to build instance 12"),
            vec!["0.3 seconds", "12"]
        );
        let kv = m.mine("acquire lock=42, uid=1000");
        assert_eq!(
            m.parameters(kv, "acquire lock=42, uid=1000"),
            vec!["42,", "1000"]
        );
    }

    #[test]
    fn survives_odd_input() {
        let mut m = Miner::new();
        let e = m.mine("");
        assert_eq!(m.template(e), "");
        let blank = m.mine("   \t ");
        assert_eq!(m.canonical(blank), m.canonical(e));
        let huge = "word 123 ".repeat(100_000);
        let h = m.mine(&huge);
        assert!(m.template(h).len() < 4096);
        assert!(!m.parameters(h, &huge).is_empty());
        for odd in [
            "=",
            ":",
            "==::",
            "\u{0}\u{1}",
            "é=ü:ß",
            "日本語 テキスト 12",
            "-",
            "0x",
            "\"unterminated",
        ] {
            let id = m.mine(odd);
            let _ = (m.template(id), m.parameters(id, odd), m.count(id));
        }
        // Unknown ids are harmless.
        assert_eq!(m.template(9_999_999), "");
        assert_eq!(m.count(9_999_999), 0);
        assert!(m.parameters(9_999_999, "x").is_empty());
        assert!(!m.is_empty());
    }
}
