//! The time windows `fetch` asks the export API for: the period minus what the ledger
//! already covers, cut into pieces the service accepts (at most 31 days), and halves of
//! a window the service refused as too large. Times are whole seconds since the epoch,
//! windows half-open `[from, to)`.

/// The longest window the export API accepts.
pub const MAX_WINDOW_SECS: i64 = 31 * 86_400;
/// A window is not split below this: one that is still too large fails.
pub const MIN_WINDOW_SECS: i64 = 60;

/// `[from, to)` in seconds since the epoch.
pub type Window = (i64, i64);

/// The windows that cover `[from, to)` except the parts in `covered`, each at most `max`
/// seconds long, in time order.
pub fn plan(from: i64, to: i64, covered: &[Window], max: i64) -> Vec<Window> {
    let mut out = Vec::new();
    for (a, b) in missing(from, to, covered) {
        let mut s = a;
        while s < b {
            let e = (s + max).min(b);
            out.push((s, e));
            s = e;
        }
    }
    out
}

/// `[from, to)` minus the union of `covered`, as sorted disjoint intervals.
pub fn missing(from: i64, to: i64, covered: &[Window]) -> Vec<Window> {
    let merged = merge(covered);
    let mut out = Vec::new();
    let mut cur = from;
    for (a, b) in merged {
        if b <= cur || a >= to {
            continue;
        }
        if a > cur {
            out.push((cur, a.min(to)));
        }
        cur = cur.max(b);
        if cur >= to {
            break;
        }
    }
    if cur < to {
        out.push((cur, to));
    }
    out
}

/// Sorted, disjoint intervals covering the same time as `ws` (touching ones joined).
pub fn merge(ws: &[Window]) -> Vec<Window> {
    let mut v: Vec<Window> = ws.iter().copied().filter(|(a, b)| a < b).collect();
    v.sort_unstable();
    let mut out: Vec<Window> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The two halves of a window, split at a whole second; `None` when too short to split.
pub fn halves((a, b): Window) -> Option<(Window, Window)> {
    if b - a < 2 * MIN_WINDOW_SECS {
        return None;
    }
    let mid = a + (b - a) / 2;
    Some(((a, mid), (mid, b)))
}

/// RFC 3339 in UTC without a fraction, as the API wants it: `2025-06-01T00:00:00Z`.
pub fn format_rfc3339(secs: i64) -> String {
    let day = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        crate::time::format_day(day as i32),
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// A `--from`/`--to` value: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time (a
/// fraction is dropped: the API takes whole seconds).
pub fn parse_instant(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Some(day) = crate::time::parse_day(s) {
        return Ok(day as i64 * 86_400);
    }
    crate::time::parse_time(s)
        .map(|us| us.div_euclid(1_000_000))
        .ok_or_else(|| {
            format!(
                "{s:?} is not a date or time (YYYY-MM-DD or RFC 3339, e.g. 2025-06-01T00:00:00Z)"
            )
        })
}

/// A duration such as `90s`, `30m`, `6h` or `2d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 90s, 30m, 6h, 2d)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?} is not a duration (e.g. 90s, 30m, 6h, 2d)")),
    };
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_year_is_twelve_windows_of_at_most_31_days_back_to_back() {
        let from = parse_instant("2025-01-01").unwrap();
        let to = parse_instant("2026-01-01").unwrap();
        let w = plan(from, to, &[], MAX_WINDOW_SECS);
        assert_eq!(w.len(), 12);
        assert_eq!((w[0].0, w.last().unwrap().1), (from, to));
        assert!(w.windows(2).all(|p| p[0].1 == p[1].0));
        assert!(w.iter().all(|(a, b)| b - a <= 31 * DAY));
        assert_eq!(format_rfc3339(w[1].0), "2025-02-01T00:00:00Z");
    }

    #[test]
    fn covered_parts_are_left_out() {
        let w = plan(
            0,
            100 * DAY,
            &[(10 * DAY, 20 * DAY), (15 * DAY, 40 * DAY)],
            MAX_WINDOW_SECS,
        );
        assert_eq!(
            w,
            vec![(0, 10 * DAY), (40 * DAY, 71 * DAY), (71 * DAY, 100 * DAY)]
        );
        assert!(plan(0, 10, &[(0, 10)], MAX_WINDOW_SECS).is_empty());
        assert_eq!(missing(0, 10, &[(-5, 3), (8, 20)]), vec![(3, 8)]);
    }

    #[test]
    fn halves_split_at_a_second_and_stop_at_the_minimum() {
        assert_eq!(
            halves((0, 31 * DAY)),
            Some(((0, 1_339_200), (1_339_200, 31 * DAY)))
        );
        assert_eq!(halves((0, 119)), None);
    }

    #[test]
    fn instants_and_durations_parse() {
        assert_eq!(parse_instant("1970-01-02").unwrap(), DAY);
        assert_eq!(parse_instant("1970-01-01T01:00:00.5Z").unwrap(), 3600);
        assert_eq!(parse_instant("1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_instant("yesterday").is_err());
        assert_eq!(parse_duration("6h").unwrap(), 6 * 3600);
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert!(parse_duration("6w").is_err());
    }
}
