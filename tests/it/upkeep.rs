//! Lake upkeep: `compact` (several files of a partition into one, exactly once while
//! readers query and when killed at any step) and `prune` (retention).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::OnceLock;

use auditlake::lake::store::LakeStore;
use auditlake::lake::{list_partitions, listed_files, partition_files};
use serde_json::Value;

use crate::common::*;

/// The sample year converted in two runs (odd months, then even ones): the days where
/// exports overlap get two files. Built once; each test works on a copy.
fn split_lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("upkeep-split-lake-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = sample_files();
        for half in [0, 1] {
            let part: Vec<PathBuf> = files
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == half)
                .map(|(_, f)| f.clone())
                .collect();
            let run = convert(&dir, &part, &[]);
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A fresh copy of the split lake.
fn split_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(split_lake(), dir.path());
    dir
}

fn run(args: &[&str], lake: &Path) -> Output {
    bin().args(args).arg("--lake").arg(lake).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    assert_success(out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn compact(lake: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["compact", "--json", "--grace", "0s"];
    args.extend_from_slice(extra);
    json_of(&run(&args, lake))
}

/// Files per partition directory, as listed (no compaction rule applied).
fn files_per_partition(lake: &Path) -> BTreeMap<String, usize> {
    let store = LakeStore::local(lake).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = BTreeMap::new();
        for p in list_partitions(&store, None).await.unwrap() {
            let n = listed_files(&store, &p.rel).await.unwrap().len();
            out.insert(p.rel, n);
        }
        out
    })
}

/// `verify --json`: its findings (exit code 0 asserted when `clean`).
fn verify(lake: &Path) -> Vec<Value> {
    let out = run(&["verify", "--json"], lake);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap().clone();
    assert_eq!(
        out.status.code(),
        Some(if findings.is_empty() { 0 } else { 1 }),
        "{v}"
    );
    findings
}

/// A filter on the days that have several files in the split lake: what compaction
/// touches (a query over the whole lake takes seconds in a debug build).
fn watched() -> &'static str {
    static WHERE: OnceLock<String> = OnceLock::new();
    WHERE.get_or_init(|| {
        let days: std::collections::BTreeSet<String> = files_per_partition(split_lake())
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(rel, _)| format!("DATE '{}'", &rel[rel.len() - 10..]))
            .collect();
        assert!(!days.is_empty());
        format!(
            "WHERE day IN ({})",
            days.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

/// What the query layer sees: rows, distinct (tenant, trace_id), and a digest of the rows.
fn seen_by_query(lake: &Path, filter: &str) -> (u64, u64, String) {
    let out = bin()
        .args(["query", "--format", "csv", "--lake"])
        .arg(lake)
        .arg(format!(
            "SELECT count(*) AS n, count(DISTINCT tenant_id || '/' || trace_id) AS d, \
             sum(CAST(extract(epoch FROM time) AS BIGINT) % 1000003) AS s FROM events {filter}"
        ))
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().nth(1).unwrap().to_string();
    let mut it = line.split(',');
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().to_string(),
    )
}

/// The rows of the watched days, counted straight from the files.
fn watched_rows(rows: &[Row]) -> u64 {
    let w = watched();
    rows.iter()
        .filter(|r| w.contains(&format!("'{}'", r[1])))
        .count() as u64
}

#[test]
fn compaction_keeps_every_row_and_verify_agrees_before_and_after() {
    let dir = split_copy();
    let lake = dir.path();
    let before = lake_rows(lake);
    let multi = files_per_partition(lake)
        .values()
        .filter(|n| **n > 1)
        .count();
    assert!(multi >= 5, "the split lake has days in two files: {multi}");
    assert!(verify(lake).is_empty());
    let seen = seen_by_query(lake, watched());
    let n = watched_rows(&before);
    assert_eq!((seen.0, seen.1), (n, n));

    // A dry run says what it would do and changes nothing.
    let dry = compact(lake, &["--dry-run"]);
    assert_eq!(dry["partitions"].as_array().unwrap().len(), multi);
    assert!(files_per_partition(lake).values().any(|n| *n > 1));

    let s = compact(lake, &[]);
    assert_eq!(s["partitions"].as_array().unwrap().len(), multi, "{s}");
    assert_eq!(s["files_removed"].as_u64().unwrap(), 2 * multi as u64);
    assert!(files_per_partition(lake).values().all(|n| *n == 1));
    // Row for row what it was, and what one conversion of everything gives.
    let after = lake_rows(lake);
    assert_eq!(after, before);
    assert_eq!(after, lake_rows(crate::query::sample_lake()));
    assert!(verify(lake).is_empty());
    assert_eq!(seen_by_query(lake, watched()), seen);
    let all = seen_by_query(lake, "");
    assert_eq!((all.0, all.1), (before.len() as u64, before.len() as u64));

    // The merged files are written as the converter writes: sorted, statistics and a
    // page index on time, bloom filters on the lookup columns.
    let merged: Vec<String> = s["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["merged"].as_str().unwrap().to_string())
        .collect();
    for rel in &merged {
        let bytes = bytes::Bytes::from(std::fs::read(lake.join(rel)).unwrap());
        let meta = parquet::file::metadata::ParquetMetaDataReader::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required)
            .parse_and_finish(&bytes)
            .unwrap();
        assert!(meta.column_index().is_some(), "{rel}: page index");
        let rg = meta.row_group(0);
        for i in 0..rg.num_columns() {
            let c = rg.column(i);
            let name = c.column_descr().name();
            // Statistics where something reads them: time (the page index) and vendor.
            let stats = ["time", "vendor"].contains(&name);
            assert_eq!(
                c.statistics().is_some(),
                stats,
                "{rel}: statistics of {name}"
            );
            let bloom = ["ouid", "client_ip", "actor_id", "trace_id"].contains(&name);
            assert_eq!(
                c.bloom_filter_offset().is_some(),
                bloom,
                "{rel}: bloom filter of {name}"
            );
        }
        let batches = auditlake::lake::writer::read_bytes(bytes, None).unwrap();
        assert!(
            auditlake::lake::writer::in_order(&batches),
            "{rel}: rows in time order"
        );
    }

    // Again: nothing to do.
    let again = compact(lake, &[]);
    assert_eq!(again["partitions"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(lake_rows(lake), before);
}

#[test]
fn compaction_takes_only_the_tenant_and_days_asked_for() {
    let dir = split_copy();
    let lake = dir.path();
    let before = files_per_partition(lake);
    let tenant = lake_rows(lake)[0][0].clone();
    let s = compact(
        lake,
        &[
            "--tenant",
            &tenant,
            "--from",
            "2025-03-01",
            "--to",
            "2025-06-30",
        ],
    );
    let parts = s["partitions"].as_array().unwrap();
    assert!(!parts.is_empty(), "{s}");
    for p in parts {
        assert_eq!(p["tenant_id"], tenant.as_str());
        let day = p["day"].as_str().unwrap();
        assert!(("2025-03-01"..="2025-06-30").contains(&day), "{day}");
    }
    let after = files_per_partition(lake);
    for (rel, n) in &before {
        let inside = rel.contains(&format!("tenant_id={tenant}/"))
            && (&rel[rel.len() - 10..] >= "2025-03-01" && &rel[rel.len() - 10..] <= "2025-06-30");
        assert_eq!(after[rel], if inside { 1 } else { *n }, "{rel}");
    }
    assert!(verify(lake).is_empty());
    let bad = run(
        &["compact", "--from", "2025-06-01", "--to", "2025-01-01"],
        lake,
    );
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--from 2025-06-01 is after --to 2025-01-01"),
        "{err}"
    );
}

/// Starts a compaction that pauses at `point` (NAME:N).
fn paused_compaction(lake: &Path, point: &str, grace: &str) -> Child {
    let mut child = bin()
        .args(["compact", "--json", "--grace", grace, "--lake"])
        .arg(lake)
        .env("AUDITLAKE_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the compaction ended before reaching {point}"
        );
        if line.contains(&format!("paused at {point}")) {
            break;
        }
    }
    child
}

/// Named points of a compaction, in the order it reaches them (`file` is the writer's
/// own, `chain` the lake chain's: after the event, before the entries it commits to).
const POINTS: [&str; 9] = [
    "compact-plan:1",
    "file:1",
    "compact-file:7",
    "compact-switch:1",
    "chain:1",
    "compact-ledger:5",
    "compact-delete:1",
    "compact-delete:10",
    "compact-done:1",
];

#[test]
fn killed_at_any_step_a_compaction_loses_nothing_and_a_rerun_completes_it() {
    let expected = lake_rows(split_lake());
    let seen = seen_by_query(split_lake(), watched());
    for point in POINTS {
        let dir = split_copy();
        let lake = dir.path();
        let mut child = paused_compaction(lake, point, "0s");
        // While it is stopped there, readers see every row exactly once.
        assert_eq!(lake_rows(lake), expected, "{point}: rows while paused");
        assert_eq!(
            seen_by_query(lake, watched()),
            seen,
            "{point}: the query layer while paused"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(lake_rows(lake), expected, "{point}: rows after the kill");
        // verify names what the compaction left in flight as such.
        for f in verify(lake) {
            assert!(
                f["kind"] == "rows"
                    || ((f["kind"] == "unexpected" || f["kind"] == "ledger_altered")
                        && f["detail"]
                            .as_str()
                            .unwrap()
                            .contains("compaction in flight")),
                "{point}: {f}"
            );
        }
        assert_eq!(
            seen_by_query(lake, watched()),
            seen,
            "{point}: query after the kill"
        );

        let s = compact(lake, &[]);
        assert!(
            files_per_partition(lake).values().all(|n| *n == 1),
            "{point}: one file per partition after the rerun: {s}"
        );
        assert_eq!(lake_rows(lake), expected, "{point}: rows after the rerun");
        assert_eq!(seen_by_query(lake, watched()), seen, "{point}");
        let findings = verify(lake);
        assert!(findings.is_empty(), "{point}: {findings:?}");
        // A conversion of everything again adds nothing.
        let again = convert(lake, &sample_files(), &[]);
        assert_eq!((again.code, again.n("written")), (0, 0), "{point}");
    }
}

/// Runs `job` while a reader queries `filter` over and over, each time asserting it sees
/// exactly the rows it saw before the job; returns the job's result and how many
/// queries ran during it.
fn while_a_reader_watches<T>(lake: &Path, filter: &str, job: impl FnOnce() -> T) -> (T, usize) {
    let seen = seen_by_query(lake, filter);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (lake, filter, stop) = (lake.to_path_buf(), filter.to_string(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                assert_eq!(
                    seen_by_query(&lake, &filter),
                    seen,
                    "query {n} during the job"
                );
                n += 1;
            }
            n
        })
    };
    let out = job();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    (out, reader.join().unwrap())
}

#[test]
fn queries_running_during_a_compaction_see_every_row_exactly_once() {
    let dir = split_copy();
    let lake = dir.path().to_path_buf();
    let seen = seen_by_query(&lake, watched());
    // Slowed down at each step so that the reader's queries fall between them.
    let (s, queries) = while_a_reader_watches(&lake, watched(), || {
        json_of(
            &bin()
                .args(["compact", "--json", "--grace", "3s", "--lake"])
                .arg(&lake)
                .env("AUDITLAKE_TEST_STEP_DELAY_MS", "100")
                .output()
                .unwrap(),
        )
    });
    assert!(queries >= 3, "{queries} queries ran during the compaction");
    assert!(!s["partitions"].as_array().unwrap().is_empty());
    assert!(files_per_partition(&lake).values().all(|n| *n == 1));
    assert_eq!(seen_by_query(&lake, watched()), seen);
    assert!(verify(&lake).is_empty());
}

#[test]
fn the_live_files_of_a_partition_follow_the_switch() {
    // The library's own view (used by convert's deduplication and by status) agrees
    // with the query layer at a pause between write and switch.
    let dir = split_copy();
    let lake = dir.path();
    let mut child = paused_compaction(lake, "compact-file:3", "0s");
    let store = LakeStore::local(lake).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (listed, live) = rt.block_on(async {
        let (mut listed, mut live) = (0, 0);
        for p in list_partitions(&store, None).await.unwrap() {
            listed += listed_files(&store, &p.rel).await.unwrap().len();
            live += partition_files(&store, &p.rel).await.unwrap().len();
        }
        (listed, live)
    });
    assert_eq!(
        listed,
        live + 3,
        "three merged files written, none live yet"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

// ---- prune ------------------------------------------------------------------------------

fn prune(lake: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["prune", "--json", "--today", "2025-12-15"];
    args.extend_from_slice(extra);
    json_of(&run(&args, lake))
}

fn status(lake: &Path) -> Value {
    json_of(&run(&["status", "--json"], lake))
}

#[test]
fn prune_removes_what_is_past_retention_and_status_and_verify_agree() {
    let dir = split_copy();
    let lake = dir.path();
    let rows = lake_rows(lake);
    let (old, kept): (Vec<Row>, Vec<Row>) = rows
        .iter()
        .cloned()
        .partition(|r| r[1].as_str() < "2025-06-15");
    assert!(!old.is_empty() && !kept.is_empty());

    let dry = prune(lake, &["--older-than", "6mo", "--dry-run"]);
    assert_eq!(dry["keep_from"], "2025-06-15");
    assert_eq!(dry["events"].as_u64().unwrap(), old.len() as u64);
    assert_eq!(lake_rows(lake), rows, "a dry run changes nothing");

    let s = prune(lake, &["--older-than", "6mo"]);
    assert_eq!(s["events"].as_u64().unwrap(), old.len() as u64, "{s}");
    let days: std::collections::BTreeSet<(String, String)> =
        old.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(s["partitions"].as_array().unwrap().len(), days.len());
    assert_eq!(lake_rows(lake), kept);
    assert!(verify(lake).is_empty());
    let st = status(lake);
    assert_eq!(st["events"].as_u64().unwrap(), kept.len() as u64);
    for t in st["tenants"].as_array().unwrap() {
        assert!(t["first_day"].as_str().unwrap() >= "2025-06-15", "{t}");
    }
    assert_eq!(seen_by_query(lake, "").0, kept.len() as u64);

    // Nothing more to remove; the exports are still known, so they do not come back.
    let again = prune(lake, &["--older-than", "6mo"]);
    assert_eq!(again["partitions"].as_array().unwrap().len(), 0);
    let conv = convert(lake, &sample_files(), &[]);
    assert_eq!((conv.code, conv.n("written")), (0, 0));
    assert_eq!(lake_rows(lake), kept);
}

#[test]
fn queries_running_during_a_prune_see_the_kept_rows_exactly_once() {
    let dir = split_copy();
    let lake = dir.path().to_path_buf();
    let kept = "WHERE day >= DATE '2025-06-15'";
    let seen = seen_by_query(&lake, kept);
    assert!(seen.0 > 0);
    // Slowed down at each step (every ledger entry rewritten, every file deleted).
    let (out, queries) = while_a_reader_watches(&lake, kept, || {
        bin()
            .args([
                "prune",
                "--json",
                "--today",
                "2025-12-15",
                "--older-than",
                "6mo",
                "--lake",
            ])
            .arg(&lake)
            .env("AUDITLAKE_TEST_STEP_DELAY_MS", "20")
            .output()
            .unwrap()
    });
    let s = json_of(&out);
    assert!(queries >= 3, "{queries} queries ran during the prune");
    assert!(s["events"].as_u64().unwrap() > 0, "{s}");
    // Afterwards the whole lake is the kept rows, and index and manifest are exact.
    assert_eq!(seen_by_query(&lake, ""), seen);
    assert!(verify(&lake).is_empty());
}

#[test]
fn prune_wants_an_age_and_says_so_in_one_line() {
    let dir = split_copy();
    for args in [
        &["prune"][..],
        &["prune", "--older-than", "soon"][..],
        &["prune", "--older-than", "12"][..],
    ] {
        let out = run(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--older-than"), "{err}");
    }
}

#[test]
fn a_prune_killed_midway_is_finished_by_a_rerun() {
    for point in ["prune-ledger:2", "prune-delete:5"] {
        let dir = split_copy();
        let lake = dir.path();
        let kept: Vec<Row> = lake_rows(lake)
            .into_iter()
            .filter(|r| r[1].as_str() >= "2025-06-15")
            .collect();
        let mut child = bin()
            .args([
                "prune",
                "--older-than",
                "6mo",
                "--today",
                "2025-12-15",
                "--lake",
            ])
            .arg(lake)
            .env("AUDITLAKE_PAUSE_AT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("paused at") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "{point} not reached"
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        prune(lake, &["--older-than", "6mo"]);
        assert_eq!(lake_rows(lake), kept, "{point}");
        assert!(verify(lake).is_empty(), "{point}");
    }
}
