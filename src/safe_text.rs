//! Untrusted text made inert.
//!
//! Log lines are attacker-controlled: a line can carry terminal escape sequences (OSC 52 clipboard
//! writes, cursor moves, title changes), bidi overrides that reorder what the operator reads, NUL
//! bytes and invalid UTF-8. Everything that came from outside passes through [`SafeText`] once, at
//! the edge, so the terminal, the log file and the store only ever see printable text.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest text kept, in bytes of the sanitised form; longer lines are cut and say how much was cut.
pub const MAX_LEN: usize = 8 * 1024;

/// Text whose control characters, escape sequences, bidi controls and invalid bytes are shown as
/// visible escapes (`\x1b`, `\u{202e}`, `\xff`) and whose length is capped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SafeText(String);

impl SafeText {
    /// Sanitises raw bytes, which need not be UTF-8.
    pub fn from_bytes(raw: &[u8]) -> Self {
        let mut out = String::with_capacity(raw.len().min(MAX_LEN) + 8);
        let mut rest = raw;
        let mut cut_at = None;
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    if let Some(pos) = push_str(&mut out, valid) {
                        cut_at = Some(raw.len() - rest.len() + pos);
                    }
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    // `valid_up_to` guarantees this prefix is UTF-8.
                    let valid = std::str::from_utf8(valid).unwrap_or_default();
                    if let Some(pos) = push_str(&mut out, valid) {
                        cut_at = Some(raw.len() - rest.len() + pos);
                        break;
                    }
                    let bad = err
                        .error_len()
                        .unwrap_or(after.len())
                        .max(1)
                        .min(after.len());
                    for b in &after[..bad] {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                    rest = &after[bad..];
                    if out.len() > MAX_LEN {
                        cut_at = Some(raw.len() - rest.len());
                        break;
                    }
                }
            }
        }
        if let Some(pos) = cut_at {
            let dropped = raw.len().saturating_sub(pos);
            if dropped > 0 {
                out.push_str(&format!("…[+{dropped} bytes]"));
            }
        }
        SafeText(out)
    }

    /// Sanitises a string (for text that is valid UTF-8 but still untrusted).
    pub fn new(raw: &str) -> Self {
        Self::from_bytes(raw.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for SafeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SafeText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// True for characters that must never reach a terminal as themselves.
fn is_unsafe(c: char) -> bool {
    matches!(c,
        // Tab stays: formats use it as a separator (Lambda, REPORT lines); views expand it.
        '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // bidi embeddings, overrides and isolates, and the implicit marks
        | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // line and paragraph separators break a one-line view
        | '\u{2028}' | '\u{2029}'
        // byte-order mark and interlinear annotations are invisible
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// Appends `s` escaped; returns the byte offset in `s` where it stopped when the cap was reached.
fn push_str(out: &mut String, s: &str) -> Option<usize> {
    for (i, c) in s.char_indices() {
        if out.len() >= MAX_LEN {
            return Some(i);
        }
        if is_unsafe(c) {
            let code = c as u32;
            if code < 0x100 {
                out.push_str(&format!("\\x{code:02x}"));
            } else {
                out.push_str(&format!("\\u{{{code:04x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_become_visible() {
        let t = SafeText::from_bytes(b"ok \x1b]52;c;ZXZpbA==\x07 \x1b[2J\0end\tx");
        assert_eq!(
            t.as_str(),
            "ok \\x1b]52;c;ZXZpbA==\\x07 \\x1b[2J\\x00end\tx"
        );
    }

    #[test]
    fn bidi_and_invalid_utf8_are_inert() {
        let mut raw = "user \u{202e}gnp.exe".as_bytes().to_vec();
        raw.extend_from_slice(&[0xff, 0xfe, b'x']);
        raw.extend_from_slice("\u{9b}31m".as_bytes());
        let t = SafeText::from_bytes(&raw);
        assert_eq!(t.as_str(), "user \\u{202e}gnp.exe\\xff\\xfex\\x9b31m");
        assert!(t.as_str().chars().all(|c| !is_unsafe(c)));
    }

    #[test]
    fn long_lines_are_capped_and_say_so() {
        let raw = vec![b'a'; MAX_LEN * 3];
        let t = SafeText::from_bytes(&raw);
        assert!(t.len() < MAX_LEN + 32);
        assert!(t.as_str().ends_with(&format!("…[+{} bytes]", MAX_LEN * 2)));
    }

    #[test]
    fn plain_text_is_unchanged() {
        let line =
            "Nov 23 10:01:02 ip-10-0-1-23 sshd[4242]: Accepted publickey for alice — ünïcode ✓";
        assert_eq!(SafeText::new(line).as_str(), line);
    }
}
