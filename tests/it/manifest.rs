//! The manifest: sessions planned from it answer as sessions planned from listings do,
//! for every view, lookup and report; verify finds it damaged, short, stale or saying
//! otherwise than the files' rows, and --fix repairs it; a lake from before it is read by listing and gets one on its next
//! convert; a convert killed at its manifest steps is completed exactly by a rerun.

use std::path::Path;

use serde_json::Value;

use crate::common::*;
use crate::query::sample_lake;

/// Sorted CSV lines of a query, planned from the manifest or from the listing.
fn lines(lake: &Path, plan: &str, extra: &[&str], sql: &str) -> Vec<String> {
    let out = bin()
        .env("AUDITLAKE_PLAN", plan)
        .args(["query", "--format", "csv", "--lake"])
        .arg(lake)
        .args(extra)
        .arg(sql)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{plan}: {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut l: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    l.sort();
    l
}

fn same(lake: &Path, extra: &[&str], sql: &str) -> Vec<String> {
    let a = lines(lake, "manifest", extra, sql);
    let b = lines(lake, "listing", extra, sql);
    assert_eq!(a, b, "{sql}");
    a
}

fn one_value(lake: &Path, sql: &str) -> String {
    lines(lake, "listing", &[], sql)
        .into_iter()
        .find(|l| !l.is_empty() && !l.contains("value"))
        .unwrap()
}

#[test]
fn every_view_lookup_and_report_is_the_same_planned_from_the_manifest_or_the_listing() {
    let lake = sample_lake();
    assert!(lake.join("_manifest/last_checkpoint.json").exists());
    let views = lines(
        lake,
        "listing",
        &[],
        "SELECT table_name AS value FROM information_schema.tables WHERE table_type = 'VIEW' AND table_schema = 'public'",
    );
    assert!(views.len() > 12, "{views:?}");
    for v in views.iter().filter(|v| *v != "value") {
        let rows = same(lake, &[], &format!("SELECT * FROM {v}"));
        assert!(!rows.is_empty(), "{v}");
    }
    let ouid = one_value(lake, "SELECT min(ouid) AS value FROM events");
    let actor = one_value(lake, "SELECT max(actor_id) AS value FROM events");
    let ip = one_value(lake, "SELECT min(client_ip) AS value FROM events");
    let tenant = one_value(lake, "SELECT max(tenant_id) AS value FROM events");
    for sql in [
        format!("SELECT * FROM events WHERE ouid = '{ouid}'"),
        format!("SELECT * FROM events WHERE actor_id = '{actor}' AND client_ip = '{ip}'"),
        format!("SELECT count(*) FROM events WHERE ouid IN ('{ouid}', 'nothing-like-it')"),
        "SELECT count(*) FROM events WHERE ouid = 'nothing-like-it'".to_string(),
        format!("SELECT count(*), min(time) FROM events WHERE tenant_id = '{tenant}' AND day BETWEEN DATE '2025-03-01' AND DATE '2025-03-31'"),
        "SELECT count(*) FROM events WHERE time >= TIMESTAMP '2025-06-01T00:00:00Z' AND time < TIMESTAMP '2025-06-02T00:00:00Z'".to_string(),
        "SELECT tenant_id, day, count(*) FROM events GROUP BY 1, 2".to_string(),
        "SELECT * FROM events ORDER BY time DESC LIMIT 3".to_string(),
    ] {
        same(lake, &[], &sql);
    }
    // A lookup that matches rows finds them; one that cannot match finds none.
    assert_ne!(
        same(
            lake,
            &[],
            &format!("SELECT count(*) AS n FROM events WHERE ouid = '{ouid}'")
        ),
        ["0", "n"]
    );
    assert_eq!(
        same(
            lake,
            &[],
            "SELECT count(*) AS n FROM events WHERE ouid = 'nothing-like-it'"
        ),
        ["0", "n"]
    );
    // Scoped to a tenant.
    same(
        lake,
        &["--tenant", &tenant],
        "SELECT count(*), count(DISTINCT ouid) FROM events",
    );
    same(lake, &["--tenant", &tenant], "SELECT * FROM failed_logins");
    // A report over a period, every format's data.
    let report = |plan: &str| {
        let out = bin()
            .env("AUDITLAKE_PLAN", plan)
            .args([
                "report",
                "--format",
                "json",
                "--from",
                "2025-03-01",
                "--to",
                "2025-04-15",
                "--lake",
            ])
            .arg(lake)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["reports"].clone()
    };
    assert_eq!(report("manifest"), report("listing"));
}

#[test]
fn verify_finds_a_damaged_short_stale_or_altered_manifest_and_fix_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    assert_eq!(convert(lake, &sample_files(), &[]).code, 0);
    let count = || lines(lake, "manifest", &[], "SELECT count(*) AS n FROM events");
    let want = count();
    assert_eq!(verify_lake(lake, false).0, 0);
    // One convert: an empty checkpoint and one log entry adding every file.
    let log = lake.join("_manifest/log/00000000000000000001.json");
    let original: Value = serde_json::from_slice(&std::fs::read(&log).unwrap()).unwrap();

    // Short: one file left out; queries do not see it, verify says so, --fix adds it.
    let mut short = original.clone();
    let gone = short["add"].as_array_mut().unwrap().remove(7);
    std::fs::write(&log, serde_json::to_vec(&short).unwrap()).unwrap();
    assert_ne!(count(), want);
    let (code, v) = verify_lake(lake, false);
    assert_eq!(
        (code, finding_kinds(&v)),
        (1, vec!["manifest_missing".to_string()]),
        "{v}"
    );
    assert_eq!(v["findings"][0]["path"], gone["path"]);
    assert_eq!(verify_lake(lake, true).0, 0);
    assert_eq!((verify_lake(lake, false).0, count()), (0, want.clone()));

    // Stale: a file that is not there.
    let mut stale = original.clone();
    let mut ghost = stale["add"][0].clone();
    ghost["path"] = Value::from("events/tenant_id=ghost/day=2025-01-01/ghost.parquet");
    stale["add"].as_array_mut().unwrap().push(ghost);
    std::fs::write(&log, serde_json::to_vec(&stale).unwrap()).unwrap();
    let (code, v) = verify_lake(lake, false);
    assert_eq!(
        (code, finding_kinds(&v)),
        (1, vec!["manifest_stale".to_string()]),
        "{v}"
    );
    assert_eq!(verify_lake(lake, true).0, 0);
    assert_eq!((verify_lake(lake, false).0, count()), (0, want.clone()));

    // Altered filters that still read: every bloom of `ouid` in the entry's `.filters`
    // emptied. A lookup planned from them misses its rows; verify compares each filter
    // with its file's rows, and --fix writes those entries again.
    let key = one_value(lake, "SELECT min(ouid) AS value FROM events");
    let lookup = format!("SELECT count(*) AS n FROM events WHERE ouid = '{key}'");
    let found = lines(lake, "listing", &[], &lookup);
    let filters = log.with_extension("filters");
    let mut bytes = std::fs::read(&filters).unwrap();
    let [from, to] = [0, 1].map(|i| original["filters"]["ouid"][i].as_u64().unwrap() as usize);
    let section = &mut bytes[from..to];
    let u32_at =
        |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    // A section: name length, name, body length (u64), then per file its path and filter
    // (each u32 length first); a filter is its probe count, then its bits.
    let mut at = 1 + section[0] as usize + 8;
    while at < section.len() {
        at += 4 + u32_at(section, at);
        let n = u32_at(section, at);
        section[at + 5..at + 4 + n].fill(0);
        at += 4 + n;
    }
    std::fs::write(&filters, bytes).unwrap();
    assert_ne!(lines(lake, "manifest", &[], &lookup), found);
    let (code, v) = verify_lake(lake, false);
    let kinds = finding_kinds(&v);
    assert!(
        code == 1 && !kinds.is_empty() && kinds.iter().all(|k| k == "manifest_stale"),
        "{v}"
    );
    assert!(v["findings"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("the ouid filter differs from its rows"));
    assert_eq!(verify_lake(lake, true).0, 0);
    assert_eq!(same(lake, &[], &lookup), found);
    assert_eq!((verify_lake(lake, false).0, count()), (0, want.clone()));

    // An altered time range: one entry's latest time moved to its earliest, so a query
    // after that time skips the file. Verify names it; --fix writes the entry again.
    let newest = std::fs::read_dir(lake.join("_manifest/log"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .max()
        .unwrap();
    let mut entry: Value = serde_json::from_slice(&std::fs::read(&newest).unwrap()).unwrap();
    let moved = entry["add"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["time_min"] != a["time_max"])
        .unwrap();
    moved["time_max"] = moved["time_min"].clone();
    let (path, after) = (moved["path"].clone(), moved["time_min"].as_i64().unwrap());
    std::fs::write(&newest, serde_json::to_vec(&entry).unwrap()).unwrap();
    let later = format!(
        "SELECT count(*) AS n FROM events WHERE time > arrow_cast({after}, 'Timestamp(Microsecond, Some(\"UTC\"))')"
    );
    let rows_later = lines(lake, "listing", &[], &later);
    assert_ne!(lines(lake, "manifest", &[], &later), rows_later);
    let (code, v) = verify_lake(lake, false);
    assert_eq!(
        (code, finding_kinds(&v)),
        (1, vec!["manifest_stale".to_string()]),
        "{v}"
    );
    assert_eq!(v["findings"][0]["path"], path);
    assert!(v["findings"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("time to"));
    assert_eq!(verify_lake(lake, true).0, 0);
    assert_eq!(same(lake, &[], &later), rows_later);
    assert_eq!((verify_lake(lake, false).0, count()), (0, want.clone()));

    // Damaged: the checkpoint is no JSON; a query says what to do, --fix writes it again.
    let cp = std::fs::read_dir(lake.join("_manifest"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("checkpoint-")
                && p.extension().is_some_and(|x| x == "json")
        })
        .unwrap();
    std::fs::write(&cp, b"{ not json").unwrap();
    let out = bin()
        .args(["query", "--lake"])
        .arg(lake)
        .arg("SELECT count(*) FROM events")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verify --fix"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v) = verify_lake(lake, false);
    assert_eq!(
        (code, finding_kinds(&v)),
        (1, vec!["manifest_damaged".to_string()]),
        "{v}"
    );
    assert_eq!(verify_lake(lake, true).0, 0);
    assert_eq!((verify_lake(lake, false).0, count()), (0, want.clone()));

    // Damaged bloom filters: a lookup says what to do, verify finds them, --fix rewrites.
    let filters = std::fs::read_dir(lake.join("_manifest"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "filters"))
        .unwrap();
    let mut bytes = std::fs::read(&filters).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&filters, bytes).unwrap();
    let out = bin()
        .args(["query", "--lake"])
        .arg(lake)
        .arg("SELECT count(*) FROM events WHERE ouid = 'x'")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("verify --fix"));
    let (code, v) = verify_lake(lake, false);
    assert_eq!(
        (code, finding_kinds(&v)),
        (1, vec!["manifest_damaged".to_string()]),
        "{v}"
    );
    assert_eq!(verify_lake(lake, true).0, 0);
    assert_eq!((verify_lake(lake, false).0, count()), (0, want));
}

#[test]
fn a_lake_from_before_the_manifest_is_read_by_listing_and_gets_one_on_its_next_convert() {
    let all = tempfile::tempdir().unwrap();
    assert_eq!(convert(all.path(), &sample_files(), &[]).code, 0);
    let full = lines(
        all.path(),
        "listing",
        &[],
        "SELECT tenant_id, count(*) FROM events GROUP BY 1",
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    let half = sample_files().len() / 2;
    assert_eq!(convert(lake, &sample_files()[..half], &[]).code, 0);
    let before = lines(
        lake,
        "listing",
        &[],
        "SELECT tenant_id, count(*) FROM events GROUP BY 1",
    );
    std::fs::remove_dir_all(lake.join("_manifest")).unwrap();
    // Read by listing meanwhile, whatever the session would prefer.
    assert_eq!(
        lines(
            lake,
            "manifest",
            &[],
            "SELECT tenant_id, count(*) FROM events GROUP BY 1"
        ),
        before
    );
    let out = bin().args(["verify", "--lake"]).arg(lake).output().unwrap();
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no manifest yet"));
    let run = convert(lake, &sample_files(), &[]);
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.contains("writing the manifest of"),
        "{}",
        run.stderr
    );
    assert!(lake.join("_manifest/last_checkpoint.json").exists());
    assert_eq!(
        same(
            lake,
            &[],
            "SELECT tenant_id, count(*) FROM events GROUP BY 1"
        ),
        full
    );
    assert_eq!(verify_lake(lake, false).0, 0);
    // Or by a command, without converting: `verify --fix` writes manifest and index.
    std::fs::remove_dir_all(lake.join("_manifest")).unwrap();
    std::fs::remove_dir_all(lake.join("_index")).unwrap();
    assert_eq!(verify_lake(lake, true).0, 0);
    assert!(lake.join("_manifest/last_checkpoint.json").exists());
    assert!(lake.join("_index/format.json").exists());
    let q = "SELECT tenant_id, count(*) FROM events GROUP BY 1";
    assert_eq!(same(lake, &[], q), full);
    assert_eq!(verify_lake(lake, false).0, 0);
    // The bloom filters written from the files themselves find what the files hold.
    for col in ["ouid", "actor_id", "client_ip"] {
        let v = one_value(
            lake,
            &format!("SELECT max({col}) AS value FROM events WHERE {col} <> ''"),
        );
        let n = same(
            lake,
            &[],
            &format!("SELECT count(*) AS n FROM events WHERE {col} = '{v}'"),
        );
        assert!(n.last().is_some_and(|l| l != "0"), "{col} = {v}: {n:?}");
    }
}

#[test]
fn converts_killed_at_the_manifest_steps_are_completed_by_their_rerun() {
    let all = tempfile::tempdir().unwrap();
    assert_eq!(convert(all.path(), &sample_files(), &[]).code, 0);
    let expected = lake_rows(all.path());
    // One export at a time: the 16th entry folds the log into a checkpoint.
    for point in ["manifest-log:1", "manifest-checkpoint:1"] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path();
        let mut killed = false;
        for (k, f) in sample_files().into_iter().enumerate() {
            // The log step of the fifth export; every checkpoint.
            let pause = if point.starts_with("manifest-log") && k != 4 {
                "none:1"
            } else {
                point
            };
            let mut c = bin();
            c.arg("convert").arg(&f).arg("--lake").arg(lake);
            let paused = kill_at_pause(&mut c, pause);
            killed |= paused;
            if paused {
                let run = convert(lake, std::slice::from_ref(&f), &[]);
                assert_eq!(run.code, 0, "{}", run.stderr);
            }
        }
        assert!(killed, "{point} was reached");
        assert_eq!(lake_rows(lake), expected, "{point}");
        same(
            lake,
            &[],
            "SELECT tenant_id, day, count(*) FROM events GROUP BY 1, 2",
        );
        let (code, v) = verify_lake(lake, false);
        assert_eq!(code, 0, "{point}: {v}");
    }
}

#[test]
fn a_trace_id_lookup_opens_only_the_days_the_trace_index_gives() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    assert_eq!(convert(lake, &sample_files(), &[]).code, 0);
    let rows = lake_rows(lake);
    let (first, last) = (&rows[0], &rows[rows.len() - 1]);
    assert_ne!(first[1], last[1]);
    let (a, b) = (&first[col("trace_id")], &last[col("trace_id")]);
    let one = format!("SELECT tenant_id, day, trace_id FROM events WHERE trace_id = '{a}'");
    let both = format!("SELECT count(*) AS n FROM events WHERE trace_id IN ('{a}', '{b}')");
    assert_eq!(same(lake, &[], &one).len(), 2, "a header and the row");
    assert_eq!(same(lake, &[], &both), vec!["2", "n"]);
    // Every file of the days in between turned to garbage (sizes kept): the lookups
    // never open them; a listing-planned one reads their footers and fails.
    let mut spoiled = 0;
    for r in &rows {
        if r[1] == first[1] || r[1] == last[1] {
            continue;
        }
        let day = lake
            .join("events")
            .join(format!("tenant_id={}", r[0]))
            .join(format!("day={}", r[1]));
        for f in std::fs::read_dir(&day).into_iter().flatten() {
            let p = f.unwrap().path();
            let len = std::fs::metadata(&p).unwrap().len() as usize;
            if std::fs::read(&p).unwrap() != vec![b'x'; len] {
                std::fs::write(&p, vec![b'x'; len]).unwrap();
                spoiled += 1;
            }
        }
    }
    assert!(spoiled > 100, "{spoiled}");
    assert_eq!(lines(lake, "manifest", &[], &one).len(), 2);
    assert_eq!(lines(lake, "manifest", &[], &both), vec!["2", "n"]);
    let out = bin()
        .env("AUDITLAKE_PLAN", "listing")
        .args(["query", "--lake"])
        .arg(lake)
        .arg(&one)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "the listing opened no garbage file"
    );
}

/// Turns to garbage (sizes kept) every partition whose rows `out` rules out, so that
/// only a query that opens one of its files notices; returns how many it spoiled.
fn spoil_partitions(lake: &Path, out: impl Fn(&[&Row]) -> bool) -> usize {
    let rows = lake_rows(lake);
    let mut by_day: std::collections::BTreeMap<(&str, &str), Vec<&Row>> = Default::default();
    for r in &rows {
        by_day.entry((&r[0], &r[1])).or_default().push(r);
    }
    let mut spoiled = 0;
    for ((tenant, day), rs) in by_day {
        if !out(&rs) {
            continue;
        }
        let part = lake
            .join("events")
            .join(format!("tenant_id={tenant}"))
            .join(format!("day={day}"));
        for f in std::fs::read_dir(&part).unwrap().flatten() {
            let len = f.metadata().unwrap().len() as usize;
            std::fs::write(f.path(), vec![b'x'; len]).unwrap();
        }
        spoiled += 1;
    }
    spoiled
}

#[test]
fn filters_on_outcome_action_and_a_key_being_there_skip_the_files_the_manifest_rules_out() {
    let failures = "SELECT count(*) AS n FROM events WHERE outcome = 'failure'";
    let keyed = "SELECT count(*) AS n FROM events WHERE ouid IS NOT NULL AND action = 'LUNA_SIGN'";
    let is = |r: &Row, c: &str, v: &str| r[col(c)] == v;
    type RulesOut<'a> = Box<dyn Fn(&[&Row]) -> bool + 'a>;
    let cases: [(&str, RulesOut<'_>); 2] = [
        (
            failures,
            Box::new(|rs| !rs.iter().any(|r| is(r, "outcome", "failure"))),
        ),
        (
            keyed,
            // No key in any row, or every action sorting before or after LUNA_SIGN.
            Box::new(|rs| {
                rs.iter().all(|r| is(r, "ouid", "∅"))
                    || rs.iter().all(|r| r[col("action")].as_str() < "LUNA_SIGN")
                    || rs.iter().all(|r| r[col("action")].as_str() > "LUNA_SIGN")
            }),
        ),
    ];
    for (sql, out) in cases {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path();
        assert_eq!(convert(lake, &sample_files(), &[]).code, 0);
        let want = same(lake, &[], sql);
        let spoiled = spoil_partitions(lake, out);
        assert!(spoiled > 0, "{sql}: no partition to rule out");
        assert_eq!(lines(lake, "manifest", &[], sql), want, "{sql}");
        let listed = bin()
            .env("AUDITLAKE_PLAN", "listing")
            .args(["query", "--lake"])
            .arg(lake)
            .arg(sql)
            .output()
            .unwrap();
        assert_ne!(
            listed.status.code(),
            Some(0),
            "{sql}: the listing opened no garbage file"
        );
    }
}
