//! Hourly delivery coverage: sources laid out by hour in Hive style (`…/y=YYYY/m=MM/
//! d=DD/h=HH/…`, as Azure diagnostic settings write one blob per resource per hour under
//! `resourceId=<id>/`), read back from the source names in the ledger: which hours of
//! each resource the lake holds, and the hours missing between its first and last.
//! A missing hour is one with no delivery: its events were lost, or there were none.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::time::{civil_from_days, days_from_civil};

/// The hours one resource's deliveries cover.
#[derive(Debug, Serialize, Default, Clone, PartialEq)]
pub struct HourlyCoverage {
    /// What the layout names before `y=`: the `resourceId=` value, else the directory.
    pub resource: String,
    /// `YYYY-MM-DDTHH:00Z`.
    pub first_hour: String,
    pub last_hour: String,
    /// Hours with a delivery.
    pub hours: u64,
    /// Hours between the first and last with none: `YYYY-MM-DDTHH:00Z` or a `..` range.
    pub missing_hours: Vec<String>,
}

/// The resource and hour (hours since the epoch) a source's name places it in, when
/// its name follows the layout.
pub fn hour_of(name: &str) -> Option<(String, i64)> {
    let at = name.find("/y=")?;
    let mut fields = name[at + 1..].split('/');
    let mut next = |key: &str, len: usize| -> Option<u32> {
        let v = fields.next()?.strip_prefix(key)?;
        (v.len() == len && v.bytes().all(|c| c.is_ascii_digit())).then(|| v.parse().ok())?
    };
    let (y, m, d, h) = (
        next("y=", 4)?,
        next("m=", 2)?,
        next("d=", 2)?,
        next("h=", 2)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 {
        return None;
    }
    let prefix = &name[..at];
    let resource = match prefix.find("resourceId=") {
        Some(i) => &prefix[i + "resourceId=".len()..],
        None => prefix.rsplit('/').next().unwrap_or(prefix),
    };
    let day = days_from_civil(y as i64, m, d);
    Some((resource.to_string(), day * 24 + h as i64))
}

/// Coverage per resource of the sources whose names follow the layout.
pub fn hourly_coverage<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<HourlyCoverage> {
    let mut by: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for n in names {
        if let Some((r, h)) = hour_of(n) {
            by.entry(r).or_default().push(h);
        }
    }
    by.into_iter()
        .map(|(resource, mut hours)| {
            hours.sort_unstable();
            hours.dedup();
            let missing = hours
                .windows(2)
                .filter(|w| w[1] > w[0] + 1)
                .map(|w| {
                    let (a, b) = (w[0] + 1, w[1] - 1);
                    if a == b {
                        format_hour(a)
                    } else {
                        format!("{}..{}", format_hour(a), format_hour(b))
                    }
                })
                .collect();
            HourlyCoverage {
                resource,
                first_hour: format_hour(hours[0]),
                last_hour: format_hour(*hours.last().expect("non-empty")),
                hours: hours.len() as u64,
                missing_hours: missing,
            }
        })
        .collect()
}

fn format_hour(h: i64) -> String {
    let (y, m, d) = civil_from_days(h.div_euclid(24));
    format!("{y:04}-{m:02}-{d:02}T{:02}:00Z", h.rem_euclid(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_the_gaps_between_them() {
        let base = "az://c/insights-logs-auditevent/resourceId=/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/V";
        let names: Vec<String> = [(1, 22), (1, 23), (2, 2), (2, 3), (2, 5)]
            .iter()
            .map(|(d, h)| format!("{base}/y=2024/m=06/d=0{d}/h={h:02}/m=00/PT1H.json"))
            .chain(["/tmp/x/export-2024-06.zip".to_string()])
            .collect();
        let c = hourly_coverage(names.iter().map(String::as_str));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].resource,
            "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/V"
        );
        assert_eq!(
            (c[0].first_hour.as_str(), c[0].hours),
            ("2024-06-01T22:00Z", 5)
        );
        assert_eq!(
            c[0].missing_hours,
            vec!["2024-06-02T00:00Z..2024-06-02T01:00Z", "2024-06-02T04:00Z"]
        );
        assert_eq!(hour_of("a/y=2024/m=13/d=01/h=00/x"), None);
    }
}
