//! The tunable rules behind findings: thresholds, the look-back window, business hours
//! and time zones per tenant, and allowlists. Read from a TOML rules file (`--rules`) or
//! the `[rules]` section of the config file; every key has a default.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A rule setting that cannot be used, said in words.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what}: {value:?} is not an IANA time zone or a UTC offset (e.g. \"Europe/Berlin\", \"America/New_York\", \"+09:00\", \"UTC\")")]
    Offset { what: String, value: String },
    #[error("{what}: {value:?} is not a range of hours (e.g. \"08:00-18:00\")")]
    Hours { what: String, value: String },
    #[error("{what}: {value:?} is not a day of the week (Mon, Tue, ... Sun)")]
    Day { what: String, value: String },
    #[error("maintenance window {what}: {value:?} is not a time (YYYY-MM-DDTHH:MM:SSZ)")]
    Time { what: String, value: String },
    #[error("{key} must be at least 1")]
    Zero { key: &'static str },
}

/// The effective rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Days of history before the period that baselines are learned from.
    pub baseline_days: u32,
    /// A tenant with fewer days of data in the look-back has no usable baseline: its
    /// baseline findings are downgraded to info.
    pub min_history_days: u32,
    /// An hour of the day (or a day of the week) counts as worked when the tenant was
    /// active in it on at least this many distinct days of the look-back.
    pub worked_min_days: u32,
    /// A key first used more than this many days after its creation is dormant.
    pub dormant_days: u32,
    /// Failed logins from one client IP within `burst_window_minutes` that make a burst.
    pub burst_failures: u32,
    pub burst_window_minutes: u32,
    /// Successful key destroys in one tenant within `mass_destroy_window_minutes`.
    pub mass_destroy_count: u32,
    pub mass_destroy_window_minutes: u32,
    /// A burst or a mass destruction is judged against the tenant's own worst window of
    /// the look-back: it is high (a burst: medium) only when it holds more than this many
    /// times that window's count, and low when it holds no more than that window did.
    pub routine_factor: u32,
    /// A tenant that saw at least this many new actors (or new client IPs of its actors,
    /// or keys first used long after their creation) per 30 days of its look-back finds
    /// one more routine: such findings are low.
    pub routine_new_per_30_days: u32,
    /// A key with at least this many uses in the look-back, all by at most
    /// `key_owner_max_actors` actors, has owners; another actor using it is a finding.
    pub key_owner_min_uses: u32,
    pub key_owner_max_actors: u32,
    /// A key used in the period by at least this many actors new to it, at least as many
    /// as used it in the look-back, has suddenly widened its set of users.
    pub key_widen_min_new: u32,
    /// A key's cryptoperiod, in days from its creation, where no `[[cryptoperiods]]` entry
    /// names it: NIST SP 800-57 Part 1 gives up to two years of originator usage for
    /// symmetric data-encryption and signing keys; PCI DSS 3.7 asks for a defined one.
    pub cryptoperiod_days: u32,
    /// A key neither used nor destroyed for this many days is a candidate for retirement.
    pub unused_key_days: u32,
    /// Cryptoperiods per tenant and key name pattern (`*` any run of characters); the
    /// first entry that matches a key is its cryptoperiod.
    pub cryptoperiods: Vec<Cryptoperiod>,
    /// The default for every tenant not listed under `tenants`: an IANA time zone
    /// (`Europe/Berlin`: summer time followed) or a fixed UTC offset (`+09:00`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The default business hours (`08:00-18:00`); unset: learned from history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_days: Option<Vec<String>>,
    /// Per tenant id: its time zone and business hours.
    pub tenants: BTreeMap<String, TenantRules>,
    pub allow: Allowlists,
}

/// The cryptoperiod of the keys a tenant and pattern pick out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cryptoperiod {
    /// Only this tenant's keys (default: every tenant's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Keys (ouid) matching this pattern, `*` for any run of characters (default: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub days: u32,
    /// The policy it comes from, quoted in the finding (e.g. "PCI DSS 3.7, key policy KP-4").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// A tenant's clock and working time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantRules {
    /// An IANA time zone, `America/New_York` (summer time followed), or a fixed UTC
    /// offset, `+09:00`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Local business hours, `08:00-18:00`; unset: learned from the tenant's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<String>,
    /// Local business days (`Mon` ... `Sun`); default Mon-Fri when business_hours is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_days: Option<Vec<String>>,
}

/// What is known and expected: matching findings are listed as suppressed, never dropped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Allowlists {
    /// Known batch clients: their off-hours work, new IPs and key uses are expected.
    pub batch_clients: Vec<BatchClient>,
    /// Shared addresses (NAT, proxies; an address or a CIDR block): new IPs and new
    /// actors from them are expected.
    pub nat_addresses: Vec<String>,
    /// Planned work: every finding inside the window is expected.
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchClient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceWindow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub from: String,
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            baseline_days: 90,
            min_history_days: 14,
            worked_min_days: 2,
            dormant_days: 60,
            burst_failures: 10,
            burst_window_minutes: 10,
            mass_destroy_count: 10,
            mass_destroy_window_minutes: 60,
            routine_factor: 2,
            routine_new_per_30_days: 4,
            key_owner_min_uses: 20,
            key_owner_max_actors: 2,
            key_widen_min_new: 3,
            cryptoperiod_days: 730,
            unused_key_days: 180,
            cryptoperiods: Vec::new(),
            timezone: None,
            business_hours: None,
            business_days: None,
            tenants: BTreeMap::new(),
            allow: Allowlists::default(),
        }
    }
}

/// Where a tenant's clock is: a fixed offset, or an IANA zone with its summer time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// Minutes east of UTC.
    Fixed(i32),
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `+09:00`, `-05:30`, `UTC`, or an IANA name (`Europe/Berlin`).
    pub fn parse(s: &str) -> Option<Zone> {
        parse_offset(s)
            .map(Zone::Fixed)
            .or_else(|| s.trim().parse::<chrono_tz::Tz>().ok().map(Zone::Named))
    }

    /// Seconds east of UTC at `micros` (µs since the epoch, UTC).
    pub fn offset_seconds_at(self, micros: i64) -> i32 {
        use chrono::{Offset, TimeZone};
        match self {
            Zone::Fixed(m) => m * 60,
            Zone::Named(tz) => match chrono::DateTime::from_timestamp_micros(micros) {
                Some(t) => tz
                    .offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
                None => 0,
            },
        }
    }

    /// As Arrow writes a timestamp's zone: the IANA name, or `+09:00`.
    pub fn arrow_tz(self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(m) => format!(
                "{}{:02}:{:02}",
                if m < 0 { '-' } else { '+' },
                m.abs() / 60,
                m.abs() % 60
            ),
        }
    }

    /// As written in rules: the IANA name, or `UTC+09:00`.
    pub fn name(self) -> String {
        match self {
            Zone::Named(tz) => tz.name().to_string(),
            Zone::Fixed(m) => format!(
                "UTC{}{:02}:{:02}",
                if m < 0 { '-' } else { '+' },
                m.abs() / 60,
                m.abs() % 60
            ),
        }
    }
}

/// A tenant's clock and working time as the SQL rules use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantClock {
    pub zone: Zone,
    /// Local business hours as minutes of the day, `[start, end)`, when set.
    pub hours: Option<(u32, u32)>,
    /// Local business days as digits, 0 = Sunday.
    pub days: String,
}

impl Rules {
    /// Reads a rules file.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Rules::parse(&text, &path.display().to_string())
    }

    /// The rules of `path` laid over `base` (the config file's `[rules]`) key by key: a
    /// table (a tenant, the allowlists) merges, any other value (a number, a list) of the
    /// file replaces the base's.
    pub fn load_over(path: &Path, base: &toml::Table) -> Result<Rules, RulesError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: origin.clone(),
            source,
        })?;
        let over: toml::Table = toml::from_str(&text).map_err(|e| RulesError::Parse {
            path: origin.clone(),
            message: e.message().to_string(),
        })?;
        let mut merged = base.clone();
        merge(&mut merged, over);
        let rules =
            Rules::deserialize(toml::Value::Table(merged)).map_err(|e| RulesError::Parse {
                path: format!("{origin} over the config's [rules]"),
                message: e.message().to_string(),
            })?;
        rules.check()?;
        Ok(rules)
    }

    /// Parses rules text (`origin` names it in errors) and checks every value.
    pub fn parse(text: &str, origin: &str) -> Result<Rules, RulesError> {
        let rules: Rules = toml::from_str(text).map_err(|e| RulesError::Parse {
            path: origin.to_string(),
            message: e.message().to_string(),
        })?;
        rules.check()?;
        Ok(rules)
    }

    /// Checks what serde cannot: offsets, hours, days, times, non-zero thresholds.
    pub fn check(&self) -> Result<(), RulesError> {
        for (key, v) in [
            ("baseline_days", self.baseline_days),
            ("worked_min_days", self.worked_min_days),
            ("burst_failures", self.burst_failures),
            ("burst_window_minutes", self.burst_window_minutes),
            ("mass_destroy_count", self.mass_destroy_count),
            (
                "mass_destroy_window_minutes",
                self.mass_destroy_window_minutes,
            ),
            ("key_owner_min_uses", self.key_owner_min_uses),
            ("key_owner_max_actors", self.key_owner_max_actors),
            ("key_widen_min_new", self.key_widen_min_new),
            ("cryptoperiod_days", self.cryptoperiod_days),
            ("routine_factor", self.routine_factor),
            ("routine_new_per_30_days", self.routine_new_per_30_days),
            ("unused_key_days", self.unused_key_days),
        ] {
            if v == 0 {
                return Err(RulesError::Zero { key });
            }
        }
        if self.cryptoperiods.iter().any(|c| c.days == 0) {
            return Err(RulesError::Zero {
                key: "cryptoperiods.days",
            });
        }
        self.clock_of(None)?;
        for t in self.tenants.keys() {
            self.clock_of(Some(t))?;
        }
        for w in &self.allow.maintenance_windows {
            window_bounds(w)?;
        }
        Ok(())
    }

    /// Each tenant's clock for a query session (`events_local`): the zones the rules set.
    pub fn zones(&self) -> Result<crate::query::TenantZones, RulesError> {
        let mut tenants = Vec::new();
        for t in self.tenants.keys() {
            tenants.push((t.clone(), self.clock_of(Some(t))?.zone.arrow_tz()));
        }
        Ok(crate::query::TenantZones {
            tenants,
            default: self.clock_of(None)?.zone.arrow_tz(),
        })
    }

    /// The clock of a tenant (None: the default for tenants not listed).
    pub fn clock_of(&self, tenant: Option<&str>) -> Result<TenantClock, RulesError> {
        let own = tenant.and_then(|t| self.tenants.get(t));
        let what = tenant.map_or("rules".to_string(), |t| format!("tenants.{t:?}"));
        let tz = own
            .and_then(|o| o.timezone.as_deref())
            .or(self.timezone.as_deref())
            .unwrap_or("+00:00");
        let zone = Zone::parse(tz).ok_or_else(|| RulesError::Offset {
            what: format!("{what}.timezone"),
            value: tz.to_string(),
        })?;
        let hours_text = own
            .and_then(|o| o.business_hours.as_deref())
            .or(self.business_hours.as_deref());
        let hours = match hours_text {
            Some(h) => Some(parse_hours(h).ok_or_else(|| RulesError::Hours {
                what: format!("{what}.business_hours"),
                value: h.to_string(),
            })?),
            None => None,
        };
        let day_names = own
            .and_then(|o| o.business_days.clone())
            .or(self.business_days.clone());
        let days = match day_names {
            Some(names) => names
                .iter()
                .map(|d| {
                    parse_day_name(d).ok_or_else(|| RulesError::Day {
                        what: format!("{what}.business_days"),
                        value: d.clone(),
                    })
                })
                .collect::<Result<String, _>>()?,
            None => "12345".to_string(),
        };
        Ok(TenantClock { zone, hours, days })
    }

    /// The rules as TOML, as `rules show` prints them.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show the rules: {e}\n"))
    }
}

/// `+09:00`, `-05:30`, `+9`, `UTC`, `Z` as minutes east of UTC.
pub fn parse_offset(s: &str) -> Option<i32> {
    let t = s.trim();
    let t = t
        .strip_prefix("UTC")
        .or_else(|| t.strip_prefix("GMT"))
        .unwrap_or(t);
    if t.is_empty() || t == "Z" {
        return Some(0);
    }
    let (sign, rest) = match t.as_bytes()[0] {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

/// `08:00-18:00` (or `8-18`) as minutes of the day, start before end.
pub fn parse_hours(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let minute = |x: &str| -> Option<u32> {
        let (h, m) = x.trim().split_once(':').unwrap_or((x.trim(), "0"));
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    let (a, b) = (minute(a)?, minute(b)?);
    (a < b).then_some((a, b))
}

/// `Mon`/`monday` ... as the digit DataFusion's `extract(dow ...)` gives (0 = Sunday).
fn parse_day_name(s: &str) -> Option<char> {
    let l = s.trim().to_ascii_lowercase();
    let days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    days.iter()
        .position(|d| l.len() >= 3 && d.starts_with(&l[..3]))
        .and_then(|i| char::from_digit(i as u32, 10))
}

/// A maintenance window's bounds in microseconds since the epoch.
pub fn window_bounds(w: &MaintenanceWindow) -> Result<(i64, i64), RulesError> {
    let t = |what: &str, v: &str| {
        crate::time::parse_time(v).ok_or_else(|| RulesError::Time {
            what: what.to_string(),
            value: v.to_string(),
        })
    };
    Ok((t("from", &w.from)?, t("to", &w.to)?))
}

/// Whether `ip` is `entry` or inside the CIDR block `entry` (IPv4 or IPv6).
pub fn ip_matches(entry: &str, ip: &str) -> bool {
    let Ok(addr) = ip.trim().parse::<std::net::IpAddr>() else {
        return entry.trim() == ip.trim();
    };
    let (net, bits) = match entry.trim().split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (entry.trim(), None),
    };
    let Ok(net) = net.parse::<std::net::IpAddr>() else {
        return false;
    };
    match (net, addr) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => {
            let b = bits.unwrap_or(32).min(32);
            let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => {
            let b = bits.unwrap_or(128).min(128);
            let mask = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_hours_days_and_blocks() {
        assert_eq!(parse_offset("+09:00"), Some(540));
        assert_eq!(parse_offset("-05:30"), Some(-330));
        assert_eq!(parse_offset("UTC"), Some(0));
        assert_eq!(parse_offset("Asia/Tokyo"), None);
        assert_eq!(
            Zone::parse("Asia/Tokyo"),
            Some(Zone::Named(chrono_tz::Tz::Asia__Tokyo))
        );
        // New York: UTC-5 in January, UTC-4 (summer time) in July.
        let ny = Zone::parse("America/New_York").unwrap();
        let jan = crate::time::parse_time("2025-01-15T14:00:00Z").unwrap();
        let jul = crate::time::parse_time("2025-07-15T13:00:00Z").unwrap();
        assert_eq!(
            (ny.offset_seconds_at(jan), ny.offset_seconds_at(jul)),
            (-5 * 3600, -4 * 3600)
        );
        assert_eq!(
            Zone::parse("+05:30").unwrap().offset_seconds_at(jan),
            19_800
        );
        assert_eq!(Zone::parse("Europe/Nowhere"), None);
        assert_eq!(parse_hours("08:00-18:30"), Some((480, 1110)));
        assert_eq!(parse_hours("18-8"), None);
        assert_eq!(parse_day_name("Sunday"), Some('0'));
        assert!(ip_matches("10.0.0.0/8", "10.2.3.4"));
        assert!(!ip_matches("10.0.0.0/8", "11.2.3.4"));
        assert!(ip_matches("45.155.205.104", "45.155.205.104"));
    }

    #[test]
    fn defaults_round_trip_and_bad_values_are_named() {
        let r = Rules::default();
        let back = Rules::parse(&r.to_toml(), "shown").unwrap();
        assert_eq!(back.baseline_days, 90);
        let e = Rules::parse("[tenants.t]\ntimezone = \"Mars\"\n", "r.toml").unwrap_err();
        assert!(e.to_string().contains("tenants.\"t\".timezone"), "{e}");
        let e = Rules::parse("burst_failures = 0\n", "r.toml").unwrap_err();
        assert!(e.to_string().contains("burst_failures"), "{e}");
        assert!(Rules::parse("no_such_key = 1\n", "r.toml").is_err());
    }
}
