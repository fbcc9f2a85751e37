//! Each sample and bad input gets the outcome SPEC §3 prescribes.

use crate::common::*;

fn case(name: &str) -> std::path::PathBuf {
    testdata(&format!("cases/{name}"))
}

/// Converts one case into a fresh lake; checks the lake holds exactly `written` rows.
fn one(name: &str) -> (tempfile::TempDir, Run, Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let run = convert(dir.path(), &[case(name)], &[]);
    let rows = lake_rows(dir.path());
    assert_eq!(
        rows.len() as u64,
        run.n("written"),
        "{name}: lake rows = written"
    );
    (dir, run, rows)
}

#[test]
fn a_zip_without_its_directory_is_rejected_whole() {
    let (dir, run, _) = one("truncated.zip");
    assert_eq!(run.code, 2);
    assert_eq!((run.n("failed"), run.n("records_read")), (1, 0));
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one clear line: {}", run.stderr);
    assert!(
        lines[0].starts_with("auditlake: ")
            && lines[0].contains("truncated.zip")
            && lines[0].contains("zip"),
        "{}",
        lines[0]
    );
    let rej = rejects(dir.path());
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0]["reason"], "unreadable_source");
}

#[test]
fn a_file_that_is_not_an_export_is_rejected_whole() {
    let (_, run, _) = one("notes.txt");
    assert_eq!(run.code, 2);
    assert_eq!(run.n("failed"), 1);
    assert!(
        run.stderr.contains("notes.txt") && run.stderr.contains("not an export"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_member_that_is_not_json_ends_only_that_member() {
    let (dir, run, _) = one("not-json-member.zip");
    assert_eq!(run.code, 2);
    assert_eq!((run.n("written"), run.n("incomplete_members")), (3, 1));
    assert!(
        run.stderr
            .contains("not-json-member.zip: member README.txt: offset 0:"),
        "{}",
        run.stderr
    );
    let ledger = std::fs::read_dir(dir.path().join("_ledger"))
        .unwrap()
        .count();
    assert_eq!(
        ledger, 1,
        "the source is ledgered with its incomplete member"
    );
    let rej = rejects(dir.path());
    assert_eq!(rej.len(), 1);
    assert_eq!(
        (
            rej[0]["reason"].as_str(),
            rej[0]["member"].as_str(),
            rej[0]["offset"].as_u64()
        ),
        (Some("incomplete_member"), Some("README.txt"), Some(0))
    );
}

#[test]
fn json_broken_mid_array_keeps_the_records_before_the_break() {
    let (dir, run, rows) = one("broken-mid-array.json");
    assert_eq!(run.code, 2);
    assert_eq!(
        (
            run.n("records_read"),
            run.n("written"),
            run.n("incomplete_members")
        ),
        (3, 3, 1)
    );
    let traces: Vec<&str> = rows.iter().map(|r| r[col("trace_id")].as_str()).collect();
    assert_eq!(traces, vec!["case-0020", "case-0021", "case-0022"]);
    // The break is reported at its byte offset, inside the broken record.
    let text = std::fs::read_to_string(case("broken-mid-array.json")).unwrap();
    let start = text
        .find(r#"{"time": "2025-06-01 10:00:00 UTC", "tenantID" "x"}"#)
        .unwrap() as u64;
    let rej = rejects(dir.path());
    let off = rej[0]["offset"].as_u64().unwrap();
    assert!(
        off > start && off < start + 50,
        "offset {off} within the broken record at {start}"
    );
    assert!(
        run.stderr.contains(&format!("offset {off}:")),
        "{}",
        run.stderr
    );
}

#[test]
fn records_that_cannot_be_placed_are_rejected_and_the_rest_kept() {
    let (dir, run, rows) = one("mixed-records.ndjson");
    assert_eq!(run.code, 0);
    assert_eq!(
        (run.n("records_read"), run.n("written"), run.n("rejected")),
        (12, 6, 6)
    );
    let rej = rejects(dir.path());
    let reasons: Vec<(u64, &str)> = rej
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (1, "time_missing"),
            (2, "time_invalid"),
            (3, "tenant_missing"),
            (4, "tenant_missing"),
            (5, "field_not_scalar"),
            (6, "not_object")
        ]
    );
    assert_eq!(rej[5]["raw"], "[1, 2, 3]");
    assert!(rej.iter().all(|r| r["source"]
        .as_str()
        .unwrap()
        .ends_with("mixed-records.ndjson")));
    let by_trace = |t: &str| {
        rows.iter()
            .find(|r| r[col("trace_id")] == t)
            .unwrap_or_else(|| panic!("{t} kept"))
    };
    // Odd meta is kept whole, with the flattened columns null.
    for (t, meta) in [
        ("case-0036", "[1, 2]"),
        ("case-0037", "42"),
        ("case-0038", "\"not json at all\""),
    ] {
        let r = by_trace(t);
        assert_eq!(r[col("meta")], meta);
        assert_eq!(
            (r[col("client_ip")].as_str(), r[col("ouid")].as_str()),
            ("∅", "∅")
        );
    }
    // Numbers and booleans in text fields are kept as text.
    let r = by_trace("case-0039");
    assert_eq!(
        (
            r[col("actor_id")].as_str(),
            r[col("status")].as_str(),
            r[col("outcome")].as_str()
        ),
        ("12345", "true", "failure")
    );
    // RFC 3339 with an offset is converted to UTC.
    let r = by_trace("case-0040");
    assert_eq!(
        (r[col("time")].as_str(), r[1].as_str()),
        ("1748774400000000", "2025-06-01")
    );
    let r = by_trace("case-0030");
    assert_eq!(
        (
            r[col("client_ip")].as_str(),
            r[col("role")].as_str(),
            r[col("vendor")].as_str(),
            r[col("outcome")].as_str()
        ),
        ("10.9.8.7", "CU", "dpod", "success")
    );
}

#[test]
fn a_record_with_a_100_kb_field_is_kept_whole() {
    let (_, run, rows) = one("big-field.json");
    assert_eq!((run.code, run.n("written")), (0, 3));
    let big = rows
        .iter()
        .find(|r| r[col("trace_id")] == "case-0051")
        .unwrap();
    let extra: serde_json::Value = serde_json::from_str(&big[col("extra")]).unwrap();
    assert_eq!(extra["comment"].as_str().unwrap().len(), 100_000);
}

#[test]
fn an_empty_export_converts_to_nothing() {
    let (_, run, rows) = one("empty.json");
    assert_eq!(
        (run.code, run.n("records_read"), run.n("sources")),
        (0, 0, 1)
    );
    assert!(rows.is_empty());
}

#[test]
fn gzip_ndjson_and_multi_member_zips_and_misnamed_zips_are_sniffed() {
    for (name, n) in [
        ("gzip-ndjson.ndjson.gz", 5),
        ("two-members.zip", 5),
        ("looks-like.json", 2),
    ] {
        let (dir, run, _) = one(name);
        assert_eq!((run.code, run.n("written")), (0, n), "{name}");
        if name == "two-members.zip" {
            let entry = std::fs::read_dir(dir.path().join("_ledger"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            let entry: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap();
            let members: Vec<(&str, u64)> = entry["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap(),
                        m["records_read"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(members, vec![("part-1.json", 3), ("part-2.json", 2)]);
        }
    }
}

#[test]
fn a_gzip_stream_cut_short_keeps_what_came_before() {
    let (_, run, rows) = one("cut-gzip.ndjson.gz");
    assert_eq!(run.code, 2);
    assert_eq!(run.n("incomplete_members"), 1);
    assert!(rows.len() > 100 && rows.len() < 330, "{}", rows.len());
    assert!(
        run.stderr
            .contains("cut-gzip.ndjson.gz: member cut-gzip.ndjson.gz: offset "),
        "{}",
        run.stderr
    );
}

#[test]
fn records_without_trace_id_are_deduplicated_by_digest() {
    let (_, run, rows) = one("no-trace-id.json");
    assert_eq!((run.n("written"), run.n("duplicates")), (2, 1));
    assert!(rows
        .iter()
        .all(|r| r[col("trace_id")].starts_with("h:") && r[col("trace_id")].len() == 66));
}

#[test]
fn the_same_trace_id_with_other_content_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    convert(dir.path(), &[case("not-json-member.zip")], &[]);
    let run = convert(dir.path(), &[case("conflict.json")], &[]);
    assert_eq!(
        (
            run.n("records_read"),
            run.n("written"),
            run.n("duplicates"),
            run.n("rejected")
        ),
        (2, 0, 1, 1)
    );
    let rej: Vec<_> = rejects(dir.path())
        .into_iter()
        .filter(|r| r["reason"] == "duplicate_conflict")
        .collect();
    assert_eq!(rej.len(), 1);
    assert!(
        rej[0]["detail"].as_str().unwrap().contains("status"),
        "{}",
        rej[0]
    );
    // The first copy stays.
    let rows = lake_rows(dir.path());
    let r = rows
        .iter()
        .find(|r| r[col("trace_id")] == "case-0011")
        .unwrap();
    assert_eq!(r[col("status")], "LUNA_RET_OK");
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<_> = [
        "truncated.zip",
        "gzip-ndjson.ndjson.gz",
        "notes.txt",
        "two-members.zip",
    ]
    .iter()
    .map(|n| case(n))
    .collect();
    let run = convert(dir.path(), &inputs, &[]);
    assert_eq!(run.code, 2);
    assert_eq!(
        (run.n("failed"), run.n("sources"), run.n("written")),
        (2, 2, 10)
    );
    assert_eq!(run.stderr.lines().count(), 2, "{}", run.stderr);
}

#[test]
fn every_case_at_once_accounts_for_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let run = convert(dir.path(), &[testdata("cases")], &[]);
    assert_eq!(run.code, 2);
    let rows = lake_rows(dir.path());
    assert_eq!(rows.len() as u64, run.n("written"));
    assert_unique(&rows);
    let rejected = rejects(dir.path())
        .iter()
        .filter(|r| r.get("index").is_some())
        .count() as u64;
    assert_eq!(
        rejected,
        run.n("rejected"),
        "every rejected record is in _rejected/"
    );
}

#[test]
fn convert_without_a_lake_is_a_clear_error() {
    let out = bin().args(["convert", "x.zip"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lake"));
}
