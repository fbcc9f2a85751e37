//! Days and times shared by every module: the UTC time forms the sources write, parsed
//! into microseconds since the epoch, and the Date32 day helpers the lake, the query
//! layer and the reports use. Vendor-neutral, so none of them depends on `ingest`.
//!
//! `2022-03-10 15:29:01 UTC`, the same with a `.f` fraction of 1 to 9 digits
//! (kept to the microsecond, truncated), and RFC 3339 (`T` or space, `Z` or
//! `±hh:mm`). Hand-written because it runs once per record on the hot path.

const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// The first and last UTC days a time may fall on: 0000-01-01 and 9999-12-31.
pub const FIRST_DAY: i32 = -719_528;
pub const LAST_DAY: i32 = 2_932_896;

/// Microseconds since 1970-01-01T00:00:00Z, or `None` when the text is not one of the forms.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])? as i64;
    let minute = digits(&b[14..16])? as i64;
    let second = digits(&b[17..19])? as i64;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        for (i, &c) in frac[..n].iter().enumerate() {
            if i < 6 {
                micros = micros * 10 + (c - b'0') as i64;
            }
        }
        for _ in n..6 {
            micros *= 10;
        }
        rest = &frac[n..];
    }
    let offset_secs: i64 = match rest {
        b" UTC" | b"Z" | b"z" | b" Z" => 0,
        [sign @ (b'+' | b'-'), hh1, hh2, b':', mm1, mm2]
        | [sign @ (b'+' | b'-'), hh1, hh2, mm1, mm2] => {
            let hh = digits(&[*hh1, *hh2])? as i64;
            let mm = digits(&[*mm1, *mm2])? as i64;
            if hh > 23 || mm > 59 {
                return None;
            }
            let off = hh * 3600 + mm * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let t = secs * MICROS_PER_SEC + micros;
    // An offset may carry a time past either end of years 0000-9999 in UTC.
    (FIRST_DAY..=LAST_DAY).contains(&day_of(t)).then_some(t)
}

/// The UTC day (days since the epoch, Arrow's Date32) of a microsecond timestamp.
pub fn day_of(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// Today, UTC, as a day number.
pub fn today() -> i32 {
    chrono::Utc::now().timestamp().div_euclid(86_400) as i32
}

/// `YYYY-MM-DD` for a Date32 value.
pub fn format_day(day: i32) -> String {
    let (y, m, d) = civil_from_days(day as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A time (µs since the epoch, UTC) as RFC 3339 with microseconds.
pub fn format_micros(micros: i64) -> String {
    let day = micros.div_euclid(MICROS_PER_DAY);
    let rest = micros.rem_euclid(MICROS_PER_DAY);
    let secs = rest / 1_000_000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:06}Z",
        format_day(day as i32),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rest % 1_000_000
    )
}

/// Parses `YYYY-MM-DD` into a Date32 value.
pub fn parse_day(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        digits(&b[0..4])? as i64,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    );
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) as i32)
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms() {
        let base = parse_time("2022-03-10 15:29:01 UTC").unwrap();
        assert_eq!(base, 1_646_926_141 * MICROS_PER_SEC);
        assert_eq!(
            parse_time("2022-03-10 15:29:01.5 UTC"),
            Some(base + 500_000)
        );
        assert_eq!(
            parse_time("2022-03-10 15:29:01.123456789 UTC"),
            Some(base + 123_456)
        );
        assert_eq!(parse_time("2022-03-10T15:29:01Z"), Some(base));
        assert_eq!(
            parse_time("2022-03-10T17:29:01.000001+02:00"),
            Some(base + 1)
        );
        assert_eq!(parse_time("2022-03-10T10:29:01-05:00"), Some(base));
        assert_eq!(day_of(base), 19061);
        assert_eq!(format_day(19061), "2022-03-10");
        assert_eq!(parse_day("2022-03-10"), Some(19061));
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "2022-03-10",
            "2022-13-10 15:29:01 UTC",
            "2022-02-30 10:00:00 UTC",
            "2022-03-10 25:00:00 UTC",
            "2022-03-10 15:29:01",
            "2022-03-10 15:29:01.UTC",
            "2022-03-10 15:29:01.1234567890 UTC",
            "x022-03-10 15:29:01 UTC",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert!(parse_time("2024-02-29 00:00:00 UTC").is_some());
        // Years 0000-9999 in UTC, and nothing past them.
        assert_eq!(
            parse_time("0000-01-01 00:00:00 UTC").map(day_of),
            Some(FIRST_DAY)
        );
        assert_eq!(
            parse_time("9999-12-31T23:59:59.999999Z").map(day_of),
            Some(LAST_DAY)
        );
        assert_eq!(days_from_civil(0, 1, 1), FIRST_DAY as i64);
        assert_eq!(format_day(FIRST_DAY), "0000-01-01");
        assert_eq!(parse_time("0000-01-01T00:30:00+01:00"), None);
        assert_eq!(parse_time("9999-12-31T23:30:00-01:00"), None);
        assert!(day_of(-1) == -1);
    }
}
