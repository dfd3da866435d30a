//! Plain text: whatever no format claims. The level comes from the usual words; a leading
//! timestamp (ISO 8601, `YYYY-MM-DD HH:MM:SS`, syslog) is skipped so templates start at the message.

use super::{Fields, Format, Parsed, detect_level};

pub fn parse(text: &str) -> Parsed {
    Parsed {
        format: Format::Text,
        level: detect_level(text),
        entity: None,
        fields: Fields::Plain,
        body_start: timestamp_len(text),
    }
}

/// Length of a leading `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±hh:mm]` and the space after it.
pub fn timestamp_len(text: &str) -> usize {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let date = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10);
    let time = matches!(b.get(10), Some(b'T' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !(date && time) {
        return 0;
    }
    let mut i = 19;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if b.get(i) == Some(&b'Z') {
        i += 1;
    } else if matches!(b.get(i), Some(b'+' | b'-')) && digits(i + 1..i + 3) {
        i += 3;
        if b.get(i) == Some(&b':') {
            i += 1;
        }
        if digits(i..i + 2) {
            i += 2;
        }
    }
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i.min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Level;

    #[test]
    fn timestamps_and_levels() {
        let t = "2024-01-01T10:00:00.123+02:00 WARN disk slow";
        let p = parse(t);
        assert_eq!(
            (&t[p.body_start..], p.level),
            ("WARN disk slow", Level::Warn)
        );
        assert_eq!(timestamp_len("2024-01-01 10:00:00 x"), 20);
        assert_eq!(timestamp_len("hello"), 0);
        assert_eq!(timestamp_len("2024-01-01"), 0);
    }
}
