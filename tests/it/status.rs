//! `auditlake status`: tenants, days covered and missing, events, files, sources.

use crate::common::*;

fn status_json(lake: &std::path::Path) -> serde_json::Value {
    let out = bin()
        .args(["status", "--json", "--lake"])
        .arg(lake)
        .output()
        .unwrap();
    assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_reports_what_the_lake_holds() {
    let dir = tempfile::tempdir().unwrap();
    let run = convert(dir.path(), &sample_files(), &[]);
    let s = status_json(dir.path());
    assert_eq!(s["events"].as_u64(), Some(run.n("written")));
    assert_eq!(s["sources"].as_u64(), Some(36));
    assert_eq!(s["files"].as_u64(), Some(run.n("files")));
    let tenants = s["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 3);
    // Independently: days with data per tenant from the rows themselves.
    let rows = lake_rows(dir.path());
    for t in tenants {
        let id = t["tenant_id"].as_str().unwrap();
        let mut days: Vec<&str> = rows
            .iter()
            .filter(|r| r[0] == id)
            .map(|r| r[1].as_str())
            .collect();
        days.dedup();
        assert_eq!(t["days"].as_u64(), Some(days.len() as u64));
        assert_eq!(t["first_day"].as_str(), days.first().copied());
        assert_eq!(t["last_day"].as_str(), days.last().copied());
        assert_eq!(
            t["events"].as_u64(),
            Some(rows.iter().filter(|r| r[0] == id).count() as u64)
        );
    }
}

#[test]
fn status_names_the_days_missing_inside_the_range() {
    let dir = tempfile::tempdir().unwrap();
    // January and March of one tenant: February (past the overlap into 1 Feb) is a gap.
    let files: Vec<_> = sample_files()
        .into_iter()
        .filter(|f| {
            let n = f.file_name().unwrap().to_string_lossy().into_owned();
            n.contains(&sample_files()[0].file_name().unwrap().to_string_lossy()[..19])
                && (n.contains("2025-01") || n.contains("2025-03"))
        })
        .collect();
    assert_eq!(files.len(), 2);
    convert(dir.path(), &files, &[]);
    let s = status_json(dir.path());
    let missing: Vec<&str> = s["tenants"][0]["missing_days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // February is missing from its first day with data after the overlap to its end.
    let feb = missing
        .iter()
        .find(|m| m.ends_with("..2025-02-28"))
        .unwrap_or_else(|| panic!("{missing:?}"));
    assert!(**feb <= *"2025-02-02..2025-02-28", "{feb}");
    let text = bin()
        .args(["status", "--lake"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains(feb));
}

#[test]
fn status_of_a_missing_lake_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["status", "--lake"])
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1);
    assert!(err.starts_with("auditlake: ") && err.contains("nope"));
}
