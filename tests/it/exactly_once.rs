//! The lake never holds two rows with the same (tenant_id, trace_id), whatever
//! the sequence of conversions — including one killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use crate::common::*;

fn full_run(lake: &Path) -> Vec<Row> {
    let run = convert(lake, &sample_files(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = lake_rows(lake);
    assert_eq!(rows.len() as u64, run.n("written"));
    rows
}

#[test]
fn overlapping_exports_in_one_run_keep_one_row_per_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let run = convert(dir.path(), &sample_files(), &[]);
    assert!(
        run.n("duplicates") > 0,
        "the sample's exports overlap at their edges"
    );
    assert_eq!(
        run.n("rejected"),
        0,
        "overlapping copies are duplicates, not conflicts (meta form differs, content does not)"
    );
    assert_unique(&lake_rows(dir.path()));
    // Few, large files: one per partition.
    assert_eq!(run.n("files"), run.n("partitions"));
}

#[test]
fn the_same_exports_twice_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = full_run(dir.path());
    // Second time: every source is in the ledger and skipped at once.
    let again = convert(dir.path(), &sample_files(), &[]);
    assert_eq!(
        (again.n("skipped"), again.n("sources"), again.n("written")),
        (36, 0, 0)
    );
    // Even without the ledger, every row is recognised as a duplicate.
    std::fs::remove_dir_all(dir.path().join("_ledger")).unwrap();
    let forced = convert(dir.path(), &sample_files(), &[]);
    assert_eq!((forced.n("written"), forced.n("rejected")), (0, 0));
    assert_eq!(forced.n("duplicates"), forced.n("records_read"));
    assert_eq!(lake_rows(dir.path()), first);
}

/// An export of many chunks is read while its SHA-256 is still being taken: the first
/// run keeps every record read before the ledger's verdict, the second drops them.
#[test]
fn a_large_export_read_ahead_of_its_hash_is_kept_once_and_then_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let exports = tmp.path().join("exports");
    let gen = bin()
        .args([
            "-q",
            "generate",
            "--events",
            "20000",
            "--tenants",
            "1",
            "--months",
            "1",
        ])
        .arg("--output")
        .arg(&exports)
        .output()
        .unwrap();
    assert_success(&gen);
    let zips: Vec<_> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(zips.len(), 1, "{zips:?}");
    let lake = tmp.path().join("lake");
    let first = convert(&lake, &zips, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.n("records_read") >= 20000, "{}", first.summary);
    let rows = lake_rows(&lake);
    assert_eq!(rows.len() as u64, first.n("written"));
    assert_eq!(
        first.n("written") + first.n("duplicates"),
        first.n("records_read")
    );
    let again = convert(&lake, &zips, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        (
            again.n("skipped"),
            again.n("sources"),
            again.n("records_read"),
            again.n("written")
        ),
        (1, 0, 0, 0)
    );
    assert_eq!(lake_rows(&lake), rows);
}

#[test]
fn one_at_a_time_in_any_order_equals_all_at_once() {
    let all = tempfile::tempdir().unwrap();
    let expected = full_run(all.path());
    let each = tempfile::tempdir().unwrap();
    let mut files = sample_files();
    files.reverse();
    let mut written = 0;
    for f in &files {
        let run = convert(each.path(), std::slice::from_ref(f), &["--buffer-mb", "1"]);
        assert_eq!(run.code, 0);
        written += run.n("written");
    }
    let rows = lake_rows(each.path());
    assert_eq!(rows.len() as u64, written);
    assert_eq!(rows, expected);
}

/// Starts a conversion that pauses at `point`, kills it with SIGKILL there, then runs it again.
fn kill_at(point: &str, expected: &[Row]) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .arg("convert")
        .args(sample_files())
        .arg("--lake")
        .arg(dir.path())
        .args(["--json", "--buffer-mb", "1", "--threads", "2"])
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
            "the run ended before reaching {point}"
        );
        if line.contains(&format!("paused at {point}")) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // What the killed run left is readable and partial; the rerun completes it exactly.
    let partial = lake_rows(dir.path());
    if point.starts_with("ledger")
        || point.starts_with("index-run")
        || point.starts_with("manifest")
    {
        // The index's merged runs, then ledger entries, come after all the data.
        assert_eq!(
            partial, expected,
            "{point}: data complete before the ledger"
        );
    } else {
        assert!(
            partial.len() < expected.len(),
            "{point}: killed before the end"
        );
    }
    let run = convert(dir.path(), &sample_files(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The killed run's lake lock died with it: nothing to wait for.
    assert!(
        !run.stderr.contains("waiting for another convert"),
        "{point}: {}",
        run.stderr
    );
    let rows = lake_rows(dir.path());
    assert_eq!(rows.len(), expected.len(), "{point}");
    assert_eq!(rows, expected, "{point}: same rows as an uninterrupted run");
    // The ledger names every file again, the killed run's too: verify finds nothing
    // but the killed run's temporary files, which --fix removes.
    let out = bin()
        .args(["verify", "--json", "--fix", "--lake"])
        .arg(dir.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in v["findings"].as_array().unwrap() {
        assert_eq!(f["kind"], "leftover_tmp", "{point}: {f}");
    }
    let out = bin()
        .args(["verify", "--lake"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_success(&out);
}

#[test]
fn a_run_killed_with_sigkill_and_restarted_gives_the_same_rows() {
    let all = tempfile::tempdir().unwrap();
    let expected = full_run(all.path());
    for point in [
        "file:1",
        "tmpfile:40",
        "file:300",
        "index-fragment:1",
        "index-fragment:200",
        "index-run:1",
        "manifest-log:1",
        "ledger:3",
    ] {
        kill_at(point, &expected);
    }
}
