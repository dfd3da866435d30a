//! What every parser fuzz target does: lines through one parser of a forced format.

use stormwatch::parse::{Format, Parser};
use stormwatch::record::Record;
use stormwatch::safe_text::SafeText;

/// Feeds each line of `data` to one parser, so per-source state (sshd sessions, flow formats) is
/// fuzzed too. Any result is fine; a panic is the bug.
pub fn parse_lines(format: Format, data: &[u8]) {
    let mut parser = Parser::with_format(Some(format));
    for line in data.split(|b| *b == b'\n') {
        let rec = Record {
            arrival_ms: 0,
            ts_ms: 0,
            group: "/fuzz/group".into(),
            stream: "i-0123456789abcdef0".into(),
            text: SafeText::from_bytes(line),
        };
        let _ = parser.parse(&rec);
    }
}
