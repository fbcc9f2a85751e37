//! The trace index: exactly-once across years of history without reading it, found
//! out by `verify` when damaged, deleted or stale, rebuilt by `--fix`, built once for a
//! lake from before it, and kept exact by `compact` and `prune`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// One DPoD record of tenant `t-years`.
fn record(time: &str, trace: &str, status: &str) -> String {
    format!(
        r#"{{"time": "{time} UTC", "source": "thales/cloudhsm/9000001", "resourceID": "svc", "actorID": "client-1", "tenantID": "t-years", "action": "LUNA_SIGN", "status": "{status}", "traceID": "{trace}", "meta": {{"clientip": "10.0.0.1", "hsmid": "150001", "partid": "9000001", "role": "CU", "ouid": "00aa01"}}}}"#
    )
}

fn export(dir: &Path, name: &str, records: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("[\n{}\n]\n", records.join(",\n"))).unwrap();
    p
}

/// A year of traffic: `n` records spread over its days.
fn year(dir: &Path, y: u32, n: usize) -> PathBuf {
    let recs: Vec<String> = (0..n)
        .map(|i| {
            let day = 1 + i % 28;
            let month = 1 + (i / 28) % 12;
            record(
                &format!(
                    "{y}-{month:02}-{day:02} 10:{:02}:{:02}.000001",
                    i / 60 % 60,
                    i % 60
                ),
                &format!("y{y}-{i:05}"),
                "LUNA_RET_OK",
            )
        })
        .collect();
    export(dir, &format!("year-{y}.json"), &recs)
}

fn runs(lake: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(lake.join("_index")).unwrap().flatten() {
        if t.path().is_dir() {
            for f in std::fs::read_dir(t.path()).unwrap().flatten() {
                out.push(f.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_duplicate_and_a_conflict_years_apart_are_found_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (src, lake) = (dir.path().join("src"), dir.path().join("lake"));
    std::fs::create_dir(&src).unwrap();
    let first = export(
        &src,
        "2019.json",
        &[
            record("2019-03-01 08:00:00.000001", "old-1", "LUNA_RET_OK"),
            record("2019-03-02 08:00:00.000001", "old-2", "LUNA_RET_OK"),
        ],
    );
    let run = convert(&lake, &[first], &[]);
    assert_eq!((run.code, run.n("written")), (0, 2));
    // Seven years of other traffic, one convert each: the index gets several runs.
    for y in 2020..=2026 {
        let run = convert(&lake, &[year(&src, y, 400)], &[]);
        assert_eq!((run.code, run.n("written")), (0, 400), "{}", run.stderr);
    }
    // In 2026, an old record exported again, and another with the trace_id of 2019's
    // second record but other content and time.
    let late = export(
        &src,
        "2026-late.json",
        &[
            record("2019-03-01 08:00:00.000001", "old-1", "LUNA_RET_OK"),
            record(
                "2026-11-05 09:00:00.000001",
                "old-2",
                "LUNA_RET_BAD_PARAMETER",
            ),
            record("2026-11-05 09:00:01.000001", "new-1", "LUNA_RET_OK"),
        ],
    );
    let run = convert(&lake, std::slice::from_ref(&late), &[]);
    assert_eq!(
        (run.n("written"), run.n("duplicates"), run.n("rejected")),
        (1, 1, 1),
        "{}",
        run.summary
    );
    let conflict: Vec<Value> = rejects(&lake)
        .into_iter()
        .filter(|r| r["reason"] == "duplicate_conflict")
        .collect();
    assert_eq!(conflict.len(), 1);
    assert!(conflict[0]["detail"].as_str().unwrap().contains("time"));
    // The index is in use: runs merged as they came, no fragment left, few runs.
    let r = runs(&lake);
    assert!(r.iter().all(|n| n.starts_with("r-")), "{r:?}");
    assert!(r.len() <= 4, "runs merge as they come: {r:?}");
    assert!(lake.join("_index/format.json").exists());
    // Every export again without the ledger: all duplicates, nothing written.
    std::fs::remove_dir_all(lake.join("_ledger")).unwrap();
    let mut all: Vec<PathBuf> = std::fs::read_dir(&src)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    all.sort();
    let again = convert(&lake, &all, &[]);
    assert_eq!(again.n("written"), 0, "{}", again.summary);
    assert_eq!(lake_rows(&lake).len(), 2 + 7 * 400 + 1);
    let (_, v) = verify_lake(&lake, false);
    assert!(
        finding_kinds(&v).iter().all(|k| !k.starts_with("index")),
        "{v}"
    );
}

#[test]
fn another_trace_id_under_the_same_index_bits_is_no_duplicate_and_a_true_one_still_is() {
    // Found by search: the two share the top 40 bits of their hash, all an index entry keeps.
    let (a, b) = ("meet-00143335", "meet-01579741");
    let h = auditlake::lake::rows::trace_hash;
    assert_eq!(h(a) >> 24, h(b) >> 24);
    let dir = tempfile::tempdir().unwrap();
    let (src, lake) = (dir.path().join("src"), dir.path().join("lake"));
    std::fs::create_dir(&src).unwrap();
    let first = record("2021-03-01 08:00:00.000001", a, "LUNA_RET_OK");
    let run = convert(
        &lake,
        &[export(&src, "a.json", std::slice::from_ref(&first))],
        &[],
    );
    assert_eq!((run.code, run.n("written")), (0, 1), "{}", run.stderr);
    // Years later, `b`: the index names 2021-03-01, whose trace_ids do not hold it.
    let other = record("2027-06-01 08:00:00.000001", b, "LUNA_RET_OK");
    let run = convert(&lake, &[export(&src, "b.json", &[other])], &[]);
    assert_eq!(
        (run.code, run.n("written"), run.n("duplicates")),
        (0, 1, 0),
        "{}",
        run.stderr
    );
    // `a` again, and `a` with other content: a duplicate and a conflict, as always.
    let changed = record("2027-06-02 08:00:00.000001", a, "LUNA_RET_OK");
    let run = convert(&lake, &[export(&src, "again.json", &[first, changed])], &[]);
    assert_eq!(
        (run.n("written"), run.n("duplicates"), run.n("rejected")),
        (0, 1, 1),
        "{}",
        run.summary
    );
    assert_eq!(lake_rows(&lake).len(), 2);
}

#[test]
fn verify_finds_a_damaged_deleted_or_stale_index_and_fix_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    assert_eq!(convert(lake, &sample_files(), &[]).code, 0);
    let (code, v) = verify_lake(lake, false);
    assert_eq!(code, 0, "{v}");
    let tenant_dir = std::fs::read_dir(lake.join("_index"))
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let run = std::fs::read_dir(&tenant_dir)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();

    // Altered: one byte of a run.
    let mut bytes = std::fs::read(&run).unwrap();
    let k = bytes.len() / 2;
    bytes[k] ^= 0x40;
    std::fs::write(&run, &bytes).unwrap();
    let (code, v) = verify_lake(lake, false);
    assert_eq!(code, 1);
    assert!(
        finding_kinds(&v).contains(&"index_damaged".to_string()),
        "{v}"
    );
    let (code, v) = verify_lake(lake, true);
    assert_eq!(code, 0, "--fix rebuilds: {v}");
    assert_eq!(verify_lake(lake, false).0, 0);

    // Deleted: every run of the tenant.
    std::fs::remove_dir_all(&tenant_dir).unwrap();
    let (code, v) = verify_lake(lake, false);
    assert_eq!(code, 1);
    assert_eq!(finding_kinds(&v), ["index_missing"], "{v}");
    assert!(v["findings"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("rows of this tenant"));
    assert_eq!(verify_lake(lake, true).0, 0);
    assert_eq!(verify_lake(lake, false).0, 0);

    // Stale: an entry no row has (a copy of a run under another tenant's name).
    let other = lake.join("_index/tenant_id=nobody");
    std::fs::create_dir_all(&other).unwrap();
    let run = std::fs::read_dir(&tenant_dir)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    std::fs::copy(&run, other.join("r-copied.tix")).unwrap();
    let (code, v) = verify_lake(lake, false);
    assert_eq!(
        (code, finding_kinds(&v)),
        (1, vec!["index_stale".to_string()]),
        "{v}"
    );
    assert_eq!(verify_lake(lake, true).0, 0);
    assert_eq!(verify_lake(lake, false).0, 0);

    // After all that the index still keeps the lake exactly-once.
    std::fs::remove_dir_all(lake.join("_ledger")).unwrap();
    let rows = lake_rows(lake);
    let again = convert(lake, &sample_files(), &[]);
    assert_eq!((again.n("written"), again.n("rejected")), (0, 0));
    assert_eq!(lake_rows(lake), rows);
}

#[test]
fn a_lake_from_before_the_index_is_indexed_once_even_when_killed_doing_it() {
    let all = tempfile::tempdir().unwrap();
    assert_eq!(convert(all.path(), &sample_files(), &[]).code, 0);
    let expected = lake_rows(all.path());
    let half = sample_files().len() / 2;
    for kill in [None, Some("index-rebuilt:1")] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path();
        assert_eq!(convert(lake, &sample_files()[..half], &[]).code, 0);
        // What a lake written before the index looks like.
        std::fs::remove_dir_all(lake.join("_index")).unwrap();
        let out = bin().args(["verify", "--lake"]).arg(lake).output().unwrap();
        assert_success(&out);
        assert!(String::from_utf8_lossy(&out.stderr).contains("no trace index yet"));
        if let Some(point) = kill {
            let mut c = bin();
            c.arg("convert")
                .args(sample_files())
                .arg("--lake")
                .arg(lake);
            assert!(kill_at_pause(&mut c, point), "never paused at {point}");
            assert!(!lake.join("_index/format.json").exists());
        }
        let run = convert(lake, &sample_files(), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr.contains("indexing the trace_ids"),
            "{}",
            run.stderr
        );
        assert_eq!(lake_rows(lake), expected, "{kill:?}");
        assert!(lake.join("_index/format.json").exists());
        let (code, v) = verify_lake(lake, false);
        assert_eq!(code, 0, "{v}");
        // Once: the next convert that checks rows says nothing of it.
        std::fs::remove_dir_all(lake.join("_ledger")).unwrap();
        let run = convert(lake, &sample_files()[..1], &[]);
        assert!(
            run.n("duplicates") > 0 && !run.stderr.contains("indexing"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn compact_and_prune_keep_the_index_exact() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    // One export at a time: many files and many small index runs.
    let files = sample_files();
    for f in &files {
        assert_eq!(
            convert(lake, std::slice::from_ref(f), &["--buffer-mb", "1"]).code,
            0
        );
    }
    // Converts merge small runs as they go, so each tenant has one; a second copy of one
    // (what a merge killed before it deleted its inputs leaves) gives compact a merge.
    let tdir = std::fs::read_dir(lake.join("_index"))
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let run = std::fs::read_dir(&tdir)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    std::fs::copy(&run, tdir.join("r-extra.tix")).unwrap();
    let before = runs(lake).len();
    // Killed while merging the index's runs, then run again.
    let mut c = bin();
    c.args(["compact", "--grace", "0s", "--lake"]).arg(lake);
    assert!(kill_at_pause(&mut c, "index-rewrite:1"), "never paused");
    assert_eq!(
        verify_lake(lake, false).0,
        0,
        "a merged run beside its inputs is exact too"
    );
    let out = bin()
        .args(["compact", "--grace", "0s", "--lake"])
        .arg(lake)
        .output()
        .unwrap();
    assert_success(&out);
    let after = runs(lake).len();
    assert!(after <= before, "{before} -> {after}");
    let (code, v) = verify_lake(lake, false);
    assert_eq!(code, 0, "{v}");
    // Prune everything before the sample's last day: the index forgets those days.
    let out = bin()
        .args(["prune", "--older-than", "1d", "--lake"])
        .arg(lake)
        .output()
        .unwrap();
    assert_success(&out);
    let (code, v) = verify_lake(lake, false);
    assert_eq!(code, 0, "no stale entries after prune: {v}");
    // And the pruned rows, converted again, come back exactly once.
    std::fs::remove_dir_all(lake.join("_ledger")).unwrap();
    let run = convert(lake, &files, &[]);
    assert_eq!(run.n("rejected"), 0);
    assert_unique(&lake_rows(lake));
    assert_eq!(verify_lake(lake, false).0, 0);
}

#[test]
fn a_daily_convert_reads_none_of_the_history_it_does_not_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let (src, lake) = (dir.path().join("src"), dir.path().join("lake"));
    std::fs::create_dir(&src).unwrap();
    for y in 2020..=2025 {
        assert_eq!(convert(&lake, &[year(&src, y, 300)], &[]).code, 0);
    }
    // Every Parquet file of the history made unreadable: a convert that read them would fail.
    let mut history = Vec::new();
    let mut stack = vec![lake.join("events")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                history.push(e.path());
            }
        }
    }
    assert!(history.len() > 300, "{}", history.len());
    for f in &history {
        std::fs::write(f, b"not parquet").unwrap();
    }
    let day: Vec<String> = (0..50)
        .map(|i| {
            record(
                &format!("2026-01-01 09:00:{i:02}.000001"),
                &format!("new-{i}"),
                "LUNA_RET_OK",
            )
        })
        .collect();
    let run = convert(&lake, &[export(&src, "day.json", &day)], &[]);
    assert_eq!(
        (run.code, run.n("written"), run.n("duplicates")),
        (0, 50, 0),
        "{}",
        run.stderr
    );
    // A duplicate of an old row is confirmed against that day's rows: now the one read fails,
    // with one clear line naming the file.
    let old = record("2023-04-04 10:01:27.000001", "y2023-00087", "LUNA_RET_OK");
    let out = bin()
        .arg("convert")
        .arg(export(&src, "again.json", &[old]))
        .arg("--lake")
        .arg(&lake)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("day=2023-04-04"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
