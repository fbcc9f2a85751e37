//! Record-level faults stay record-level: far years, invalid UTF-8, records over
//! the size limit, white space padding, zips re-packed on a Mac, panics.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::common::*;

/// A DPoD record with this trace id and time.
fn rec(trace: &str, time: &str) -> String {
    format!(
        r#"{{"time":"{time}","source":"thales/cloudhsm/p1","resourceID":"r1","actorID":"a1","tenantID":"t-far","action":"LUNA_LOGIN","status":"LUNA_RET_OK","traceID":"{trace}","meta":{{"clientip":"10.0.0.1","role":"CO"}}}}"#
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn far_years_are_stored_exactly_once_within_and_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let zero = rec("go-zero-time", "0001-01-01T00:00:00Z");
    let first = rec("year-zero", "0000-01-01 00:00:00 UTC");
    let last = rec("year-9999", "9999-12-31 23:59:59.999999 UTC");
    // The same trace id on another day of year 1: a conflict, across partitions.
    let moved = rec("go-zero-time", "0001-01-02T00:00:00Z");
    let body = format!("[{zero},{zero},{first},{first},{last},{last},{moved}]");
    let a = write(dir.path(), "a.json", body.as_bytes());
    let run = convert(&lake, &[a], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (run.n("written"), run.n("duplicates"), run.n("rejected")),
        (3, 3, 1)
    );
    let rej = rejects(&lake);
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0]["reason"], "duplicate_conflict");

    // Another export (other bytes) with the same records: all duplicates.
    let b = write(dir.path(), "b.json", format!("{body}\n").as_bytes());
    let run = convert(&lake, &[b], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!((run.n("written"), run.n("duplicates")), (0, 6));
    let rows = lake_rows(&lake);
    assert_eq!(rows.len(), 3);
    assert_unique(&rows);
    let days: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(days, ["0000-01-01", "0001-01-01", "9999-12-31"]);
}

#[test]
fn a_record_with_invalid_utf8_is_rejected_alone_with_its_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let bad: Vec<u8> = rec("bad", "2025-03-01 10:00:00 UTC")
        .replace("\"a1\"", "\"a\u{1}\"")
        .into_bytes()
        .into_iter()
        .map(|b| if b == 1 { 0xFF } else { b })
        .collect();
    let mut body = b"[".to_vec();
    body.extend(rec("one", "2025-03-01 09:00:00 UTC").as_bytes());
    body.push(b',');
    body.extend(&bad);
    body.push(b',');
    body.extend(rec("three", "2025-03-01 11:00:00 UTC").as_bytes());
    body.push(b']');
    let file = write(dir.path(), "utf8.json", &body);
    let run = convert(&lake, &[file], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!((run.n("written"), run.n("rejected")), (2, 1));
    let rej = rejects(&lake);
    assert_eq!(rej[0]["reason"], "invalid_utf8");
    assert_eq!(rej[0]["index"], 1);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rej[0]["raw_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, bad);
    let traces: Vec<String> = lake_rows(&lake)
        .iter()
        .map(|r| r[col("trace_id")].clone())
        .collect();
    assert_eq!(traces, ["one", "three"]);
}

#[test]
fn a_record_over_the_limit_is_streamed_aside_and_the_records_after_it_convert() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let big = rec("big", "2025-03-01 10:00:00 UTC")
        .replace("\"a1\"", &format!("\"{}\"", "x".repeat(1_500_000)));
    for (name, body) in [
        (
            "big.json",
            format!(
                "[{},{big},{}]",
                rec("before", "2025-03-01 09:00:00 UTC"),
                rec("after", "2025-03-01 11:00:00 UTC")
            ),
        ),
        (
            "big.ndjson",
            format!(
                "{}\n{big}\n{}\n",
                rec("before-nd", "2025-03-02 09:00:00 UTC"),
                rec("after-nd", "2025-03-02 11:00:00 UTC")
            ),
        ),
    ] {
        let file = write(dir.path(), name, body.as_bytes());
        let run = convert(&lake, &[file], &["--max-record-mb", "1"]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(
            (run.n("written"), run.n("rejected"), run.n("records_read")),
            (2, 1, 3),
            "{name}"
        );
        let offset = body.find(&big).unwrap() as u64;
        let rej = rejects(&lake);
        let r = rej
            .iter()
            .find(|r| r["reason"] == "record_too_large" && r["member"] == name)
            .unwrap_or_else(|| panic!("{name}: {rej:?}"));
        assert_eq!(r["index"], 1);
        assert_eq!(r["offset"], offset);
        assert_eq!(r["end_offset"], offset + big.len() as u64);
        assert_eq!(r["raw_bytes"], big.len() as u64);
        let kept = std::fs::read(lake.join(r["raw_file"].as_str().unwrap())).unwrap();
        assert!(
            kept == big.as_bytes(),
            "{name}: the raw file holds the record"
        );
        let digest: String = Sha256::digest(&kept)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(r["raw_sha256"], digest);
    }
    assert_eq!(lake_rows(&lake).len(), 4);
}

#[test]
fn white_space_between_records_never_counts_toward_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let pad = " \n\t\r".repeat(600_000); // 2.4 MB, over the 1 MiB limit below
    let body = format!(
        "{pad}[{pad}{}{pad},{pad}{}{pad}]{pad}",
        rec("w1", "2025-03-01 09:00:00 UTC"),
        rec("w2", "2025-03-01 10:00:00 UTC")
    );
    let nd = format!(
        "{pad}{}{pad}{}{pad}",
        rec("w3", "2025-03-01 11:00:00 UTC"),
        rec("w4", "2025-03-01 12:00:00 UTC")
    );
    let a = write(dir.path(), "padded.json", body.as_bytes());
    let b = write(dir.path(), "padded.ndjson", nd.as_bytes());
    let run = convert(&lake, &[a, b], &["--max-record-mb", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!((run.n("written"), run.n("rejected")), (4, 0));
}

#[test]
fn a_zip_repacked_on_a_mac_converts_and_names_what_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let path = dir.path().join("export-mac.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.add_directory("export/", opts).unwrap();
        z.start_file("export/audit.json", opts).unwrap();
        z.write_all(
            format!(
                "[{},{}]",
                rec("m1", "2025-03-01 09:00:00 UTC"),
                rec("m2", "2025-03-01 10:00:00 UTC")
            )
            .as_bytes(),
        )
        .unwrap();
        z.add_directory("__MACOSX/", opts).unwrap();
        z.add_directory("__MACOSX/export/", opts).unwrap();
        // An AppleDouble header, as the Finder writes one per file.
        z.start_file("__MACOSX/export/._audit.json", opts).unwrap();
        z.write_all(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
            .unwrap();
        z.start_file("export/.DS_Store", opts).unwrap();
        z.write_all(b"\x00\x00\x00\x01Bud1\x00\x00").unwrap();
        z.finish().unwrap();
    }
    let run = convert(&lake, &[path], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.n("written"), 2);
    assert_eq!(run.n("incomplete_members"), 0);
    let skipped: Vec<String> = run.summary["skipped_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().rsplit(": ").next().unwrap().to_string())
        .collect();
    assert_eq!(
        skipped,
        [
            "export/",
            "__MACOSX/",
            "__MACOSX/export/",
            "__MACOSX/export/._audit.json",
            "export/.DS_Store"
        ]
    );
    assert!(
        run.stderr.contains("skipped 5 zip entries"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_panic_in_a_worker_thread_is_one_line_exit_2_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = bin()
        .arg("convert")
        .arg(&sample_files()[0])
        .arg("--lake")
        .arg(&lake)
        .env("AUDITLAKE_PANIC_AT", "decode")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("auditlake: internal error: test panic at decode"),
        "{err}"
    );
    // No ledger entry: the next run converts the export again.
    let ledger = lake.join("_ledger");
    assert!(!ledger.exists() || std::fs::read_dir(&ledger).unwrap().next().is_none());
    let run = convert(&lake, &[sample_files()[0].clone()], &[]);
    assert_eq!((run.code, run.n("sources")), (0, 1));
}

/// The values of a one-column CSV answer, header dropped, quotes removed.
pub fn csv_values(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .skip(1)
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

/// Tenant ids that need escaping in a partition path.
pub const ODD_TENANTS: [&str; 5] = ["a/b", "100%", "k=v", "with space", "é-ü"];

/// An export with one record per odd tenant.
pub fn odd_tenant_export() -> String {
    let recs: Vec<String> = ODD_TENANTS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            rec(&format!("odd-{i}"), "2025-03-01 09:00:00 UTC")
                .replace("\"t-far\"", &serde_json::to_string(t).unwrap())
        })
        .collect();
    format!("[{}]", recs.join(","))
}

#[test]
fn tenant_ids_that_need_escaping_read_back_byte_for_byte_and_dedupe_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let body = odd_tenant_export();
    let a = write(dir.path(), "odd.json", body.as_bytes());
    let run = convert(&lake, &[a], &[]);
    assert_eq!((run.code, run.n("written")), (0, 5), "{}", run.stderr);
    // Escaped once on disk.
    assert!(lake.join("events/tenant_id=a%2Fb").is_dir());
    assert!(lake.join("events/tenant_id=100%25").is_dir());
    let b = write(dir.path(), "odd-again.json", format!("{body}\n").as_bytes());
    let run = convert(&lake, &[b], &[]);
    assert_eq!((run.n("written"), run.n("duplicates")), (0, 5));
    let mut tenants: Vec<String> = lake_rows(&lake).into_iter().map(|r| r[0].clone()).collect();
    tenants.sort();
    let mut want: Vec<String> = ODD_TENANTS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(tenants, want);
    // SQL sees the same values, and a tenant-scoped session finds each one.
    let out = bin()
        .args(["query", "--format", "csv", "--lake"])
        .arg(&lake)
        .arg("SELECT tenant_id FROM events ORDER BY tenant_id")
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(csv_values(&out.stdout), want);
    for t in ODD_TENANTS {
        let out = bin()
            .args(["query", "--format", "csv", "--tenant", t, "--lake"])
            .arg(&lake)
            .arg("SELECT tenant_id, trace_id FROM events")
            .output()
            .unwrap();
        assert_success(&out);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 2, "{t}: {text}");
    }
    let out = bin()
        .args(["status", "--json", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    assert_success(&out);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = status.to_string();
    for t in ODD_TENANTS {
        assert!(
            text.contains(&serde_json::to_string(t).unwrap()),
            "{t}: {text}"
        );
    }
}
