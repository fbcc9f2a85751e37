//! `auditlake verify`: a converted lake is clean; each kind of damage is named, and
//! `--fix` removes leftover temporary files and nothing else.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// Two months of one tenant: a lake of a few dozen files, quick to make in a debug build.
fn small_lake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let first = sample_files()[0].clone();
    let tenant = first.file_name().unwrap().to_string_lossy()[..19].to_string();
    let files: Vec<PathBuf> = sample_files()
        .into_iter()
        .filter(|f| {
            let n = f.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(&tenant) && (n.contains("2025-01") || n.contains("2025-02"))
        })
        .collect();
    assert_eq!(files.len(), 2);
    let run = convert(dir.path(), &files, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    dir
}

/// Runs `verify --json`: its exit code and output.
fn verify_json(lake: &Path, extra: &[&str]) -> (i32, Value) {
    let out = bin()
        .args(["verify", "--json", "--lake"])
        .arg(lake)
        .args(extra)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

/// The (kind, path) of every finding.
fn findings(v: &Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn count(v: &Value, kind: &str) -> u64 {
    v["counts"][kind].as_u64().unwrap()
}

/// Every file below the lake root, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The lake's Parquet files, relative, sorted.
fn parquet_files(root: &Path) -> Vec<String> {
    tree(root)
        .into_iter()
        .filter(|p| p.starts_with("events/") && p.ends_with(".parquet"))
        .collect()
}

fn dir_of(rel: &str) -> String {
    rel.rsplit_once('/').unwrap().0.to_string()
}

#[test]
fn verify_finds_a_converted_lake_clean_and_names_each_kind_of_damage() {
    let lake = small_lake();
    let root = lake.path();
    let files = parquet_files(root);
    assert!(files.len() >= 4, "{files:?}");
    let (code, v) = verify_json(root, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(findings(&v), vec![]);
    assert_eq!(v["lake_files"].as_u64(), Some(files.len() as u64));
    assert_eq!(v["ledger_files"].as_u64(), Some(files.len() as u64));
    assert_eq!(v["ledger_entries"].as_u64(), Some(2));
    assert!(v["existence_only"].as_array().unwrap().is_empty());

    // A file deleted: missing, and its partition's rows no longer add up.
    std::fs::remove_file(root.join(&files[0])).unwrap();
    let (code, v) = verify_json(root, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&v),
        vec![
            ("missing".into(), files[0].clone()),
            ("rows".into(), dir_of(&files[0])),
        ]
    );

    // Bytes appended to another: altered (by size); bytes changed in place in a third:
    // altered (by SHA-256).
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(root.join(&files[1]))
            .unwrap();
        f.write_all(b"tampered").unwrap();
        let p = root.join(&files[2]);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[100] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
    }
    // A copy under a new name: unexpected (and its partition holds twice the rows).
    let copy = format!("{}/part-copy.parquet", dir_of(&files[3]));
    std::fs::copy(root.join(&files[3]), root.join(&copy)).unwrap();
    // Temporary files of killed runs: the writer's, and object_store's local staging file.
    let tmp = format!("{}/.part-killed-00001.parquet.tmp", dir_of(&files[3]));
    let staged = format!("{}/part-killed-00002.parquet#1", dir_of(&files[1]));
    std::fs::write(root.join(&tmp), b"half a file").unwrap();
    std::fs::write(root.join(&staged), b"half a file").unwrap();

    let (code, v) = verify_json(root, &[]);
    assert_eq!(code, 1);
    let mut want = vec![
        ("missing".to_string(), files[0].clone()),
        ("altered".into(), files[1].clone()),
        ("altered".into(), files[2].clone()),
        ("unexpected".into(), copy.clone()),
        ("rows".into(), dir_of(&files[0])),
        ("rows".into(), dir_of(&files[3])),
        ("leftover_tmp".into(), staged.clone()),
        ("leftover_tmp".into(), tmp.clone()),
    ];
    want.sort_by_key(|(k, p)| (kind_order(k), p.clone()));
    assert_eq!(findings(&v), want);
    let details: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["detail"].as_str().unwrap())
        .collect();
    assert!(
        details.iter().any(|d| d.contains("bytes, the ledger says")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.starts_with("SHA-256 ")),
        "{details:?}"
    );
    assert_eq!(
        (
            count(&v, "missing"),
            count(&v, "altered"),
            count(&v, "unexpected")
        ),
        (1, 2, 1)
    );
    assert_eq!((count(&v, "rows"), count(&v, "leftover_tmp")), (2, 2));

    // The human form: a line per finding, then the summary.
    let out = bin().args(["verify", "--lake"]).arg(root).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // ... then the chain's head, then the summary.
    assert_eq!(lines.len(), want.len() + 2, "{text}");
    assert!(lines[want.len()].starts_with("chain: head "), "{text}");
    assert!(
        lines[0].starts_with("missing") && lines[0].contains(&files[0]),
        "{text}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("1 missing, 2 altered, 1 unexpected, 2 rows, 2 leftover_tmp"),
        "{text}"
    );

    // --fix removes the two temporary files and nothing else, and says so.
    let before = tree(root);
    let (code, v) = verify_json(root, &["--fix"]);
    assert_eq!(code, 1, "the other findings stand: {v}");
    let removed: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["removed"] == true)
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(removed, vec![staged.as_str(), tmp.as_str()]);
    let after = tree(root);
    let mut expect = before.clone();
    expect.retain(|p| *p != tmp && *p != staged);
    assert_eq!(after, expect);
    let (code, v) = verify_json(root, &[]);
    assert_eq!(code, 1);
    assert_eq!(count(&v, "leftover_tmp"), 0);
    assert_eq!(findings(&v).len(), want.len() - 2);
}

fn kind_order(k: &str) -> usize {
    ["missing", "altered", "unexpected", "rows", "leftover_tmp"]
        .iter()
        .position(|x| *x == k)
        .unwrap()
}

#[test]
fn verify_fix_of_only_temporary_files_leaves_a_clean_lake() {
    let lake = small_lake();
    let root = lake.path();
    let files = parquet_files(root);
    let tmp = format!("{}/.{}.tmp", dir_of(&files[0]), "part-x-00001.parquet");
    let ledger_tmp = "_ledger/0123.json#1".to_string();
    std::fs::write(root.join(&tmp), b"PAR1").unwrap();
    std::fs::write(root.join(&ledger_tmp), b"{").unwrap();
    let (code, v) = verify_json(root, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&v),
        vec![
            ("leftover_tmp".into(), ledger_tmp.clone()),
            ("leftover_tmp".into(), tmp.clone()),
        ]
    );
    let out = bin()
        .args(["verify", "--fix", "--lake"])
        .arg(root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{tmp}: ")) && text.contains("(removed)"),
        "{text}"
    );
    assert!(text.contains("removed 2 temporary files"), "{text}");
    assert!(!root.join(&tmp).exists() && !root.join(&ledger_tmp).exists());
    assert!(!root.join("_lock.json").exists(), "the lock is released");
    assert_eq!(parquet_files(root), files);
    let (code, v) = verify_json(root, &[]);
    assert_eq!((code, findings(&v)), (0, vec![]));
}

#[test]
fn verify_checks_files_of_old_ledger_entries_for_existence_only() {
    let lake = small_lake();
    let root = lake.path();
    // Ledger entries as auditlake wrote them before file details: file names only.
    for e in std::fs::read_dir(root.join("_ledger")).unwrap() {
        let p = e.unwrap().path();
        let mut entry: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert!(!entry["file_details"].as_array().unwrap().is_empty());
        entry.as_object_mut().unwrap().remove("file_details");
        std::fs::write(&p, serde_json::to_vec_pretty(&entry).unwrap()).unwrap();
    }
    // ... in a lake from before the chain (which would call them altered, see chain.rs).
    std::fs::remove_dir_all(root.join("_chain")).unwrap();
    let files = parquet_files(root);
    let (code, v) = verify_json(root, &[]);
    assert_eq!((code, findings(&v)), (0, vec![]), "{v}");
    assert_eq!(v["existence_only"].as_array().unwrap().len(), files.len());
    let out = bin().args(["verify", "--lake"]).arg(root).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("checked for existence only"));

    // Without a recorded SHA-256, altered bytes are seen by their size (the manifest
    // records it); a missing file is seen as such.
    std::fs::write(root.join(&files[1]), b"not parquet").unwrap();
    std::fs::remove_file(root.join(&files[0])).unwrap();
    let (code, v) = verify_json(root, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&v),
        vec![
            ("missing".into(), files[0].clone()),
            ("altered".into(), files[1].clone())
        ]
    );
}

#[test]
fn verify_finds_rows_the_ledger_miscounts() {
    let lake = small_lake();
    let root = lake.path();
    let file = parquet_files(root)[0].clone();
    for e in std::fs::read_dir(root.join("_ledger")).unwrap() {
        let p = e.unwrap().path();
        let mut entry: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        for d in entry["file_details"].as_array_mut().unwrap() {
            if d["path"] == file.as_str() {
                d["rows"] = (d["rows"].as_u64().unwrap() + 1).into();
            }
        }
        std::fs::write(&p, serde_json::to_vec_pretty(&entry).unwrap()).unwrap();
    }
    // A lake from before the chain, whose ledger miscounts (a chain would also call the
    // edited entries altered, see chain.rs).
    std::fs::remove_dir_all(root.join("_chain")).unwrap();
    let (code, v) = verify_json(root, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        findings(&v),
        vec![
            ("rows".into(), dir_of(&file)),
            ("rows".into(), file.clone())
        ]
    );
}

#[test]
fn verify_of_no_lake_is_one_clear_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for lake in [dir.path().join("nope"), empty.clone()] {
        for extra in [&[][..], &["--fix"][..]] {
            let out = bin()
                .args(["verify", "--lake"])
                .arg(&lake)
                .args(extra)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                err.trim_end(),
                format!("auditlake: no lake at {}", lake.display())
            );
        }
    }
    assert!(!dir.path().join("nope").exists());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}
