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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso(1_795_392_000_000), "2026-11-23T00:00:00Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(hms(1_795_392_000_000 + 3_723_000), "01:02:03");
    }
}
