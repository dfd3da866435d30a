//! UTC time formatting without a calendar crate: the console and the simulator only need a few
//! fixed formats, and the civil-from-days conversion is short and exact.

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Splits epoch ms into (year, month, day, hour, minute, second, millisecond), UTC.
pub fn parts(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, sod / 3600, sod / 60 % 60, sod % 60, milli)
}

/// `HH:MM:SS`
pub fn hms(ms: i64) -> String {
    let (_, _, _, h, m, s, _) = parts(ms);
    format!("{h:02}:{m:02}:{s:02}")
}

/// `2026-11-23T10:01:02Z`
pub fn iso(ms: i64) -> String {
    let (y, mo, d, h, m, s, _) = parts(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// `2026-11-23 10:01 UTC`
pub fn short(ms: i64) -> String {
    let (y, mo, d, h, m, _, _) = parts(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

/// Days since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch ms of `YYYY-MM-DDTHH:MM:SS[.fff]Z` (CloudTrail `eventTime`, Lambda's ISO times).
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b' '))
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut ms = 0;
    if b.get(19) == Some(&b'.') {
        let frac: String = s[20..]
            .chars()
            .take_while(char::is_ascii_digit)
            .take(3)
            .collect();
        ms = format!("{frac:0<3}").parse().ok()?;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms)
}

/// Epoch ms of a timestamp at the start of a log line: ISO 8601 / `YYYY-MM-DD HH:MM:SS`, or a
/// syslog `Mmm dd HH:MM:SS`, which has no year: it is taken to be the latest one not more than a
/// day after `now_ms`, as syslog readers do.
pub fn line_time(line: &str, now_ms: i64) -> Option<i64> {
    if let Some(t) = parse_iso(line) {
        return Some(t);
    }
    let month = MONTHS.iter().position(|m| line.starts_with(m))? as u32 + 1;
    let mut rest = line.get(3..)?.split_whitespace();
    let day: u32 = rest.next()?.parse().ok()?;
    let hms: Vec<i64> = rest
        .next()?
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let at = |year: i64| {
        let days = days_from_civil(year, month, day);
        ((days * 24 + h) * 60 + m) * 60_000 + sec * 1000
    };
    let year = parts(now_ms).0;
    let t = at(year);
    Some(if t > now_ms + 86_400_000 {
        at(year - 1)
    } else {
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso(1_795_392_000_000), "2026-11-23T00:00:00Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(hms(1_795_392_000_000 + 3_723_000), "01:02:03");
        assert_eq!(parse_iso("2026-11-23T00:00:00Z"), Some(1_795_392_000_000));
        assert_eq!(parse_iso("2000-02-29T00:00:00.5Z"), Some(951_782_400_500));
        assert_eq!(parse_iso("2000-13-29T00:00:00Z"), None);
        assert_eq!(parse_iso("nope"), None);
        let now = 1_795_392_000_000; // 2026-11-23
        assert_eq!(line_time("Nov 23 00:00:00 host x", now), Some(now));
        assert_eq!(
            iso(line_time("Dec 31 23:00:00 host x", now).unwrap()),
            "2025-12-31T23:00:00Z"
        );
        assert_eq!(line_time("2026-11-23 00:00:00,123 INFO x", now), Some(now));
        assert_eq!(line_time("Nov 99 00:00:00 x", now), None);
        assert_eq!(line_time("plain", now), None);
    }
}
