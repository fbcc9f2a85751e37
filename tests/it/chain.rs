//! The lake's hash chain: every kind of tampering is found by `verify` (a file altered
//! with its ledger entry, an entry removed with its files, an event edited, inserted or
//! reordered, a forged checkpoint, a head from before a rewrite), locally and on an S3
//! server (`remote::s3_tampering_…`); a lake written by convert, fetch, compact and prune
//! verifies clean with and without signatures; a convert killed while extending the
//! chain is completed by its rerun; two converts at once never fork it.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use serde_json::Value;

use auditlake::lake::store::LakeStore;

use crate::common::*;

/// A lake under test: the library's handle on it, its location, and the binary set up
/// to reach it.
pub struct Lake<'a> {
    pub store: LakeStore,
    pub location: String,
    pub bin: &'a dyn Fn() -> Command,
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Lake<'_> {
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = (self.bin)()
            .args(args)
            .args(["--lake", &self.location])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `verify --json` with `extra`: exit code, kinds of findings, and the output.
    fn verify(&self, extra: &[&str]) -> (i32, Vec<String>, Value) {
        let mut args = vec!["verify", "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = self.run(&args);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
        (code, finding_kinds(&v), v)
    }

    fn get(&self, rel: &str) -> Option<Bytes> {
        rt().block_on(self.store.get(rel)).unwrap()
    }

    fn put(&self, rel: &str, b: impl Into<Bytes>) {
        rt().block_on(self.store.put(rel, b.into())).unwrap()
    }

    fn delete(&self, rel: &str) {
        rt().block_on(self.store.delete(rel)).unwrap()
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let mut v: Vec<String> = rt()
            .block_on(self.store.list_all(dir))
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        v.sort();
        v
    }

    fn json(&self, rel: &str) -> Value {
        serde_json::from_slice(&self.get(rel).unwrap()).unwrap()
    }

    /// Every object of the ledger and the chain, to put back after a tampering.
    fn snapshot(&self) -> Vec<(String, Bytes)> {
        let mut v = Vec::new();
        for dir in ["_ledger", "_chain"] {
            for rel in self.list(dir) {
                v.push((rel.clone(), self.get(&rel).unwrap()));
            }
        }
        v
    }

    fn restore(&self, snap: &[(String, Bytes)]) {
        for dir in ["_ledger", "_chain"] {
            for rel in self.list(dir) {
                self.delete(&rel);
            }
        }
        for (rel, b) in snap {
            self.put(rel, b.clone());
        }
    }

    /// The chain's events, in order.
    fn events(&self) -> Vec<String> {
        self.list("_chain")
            .into_iter()
            .filter(|r| !r.ends_with("head.json"))
            .collect()
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rewrites events `from..` so that each names the one before it again (what a forger
/// with write access does after editing an event).
fn rechain(lake: &Lake, from: usize) {
    let events = lake.events();
    for i in from.max(1)..events.len() {
        let prev = sha256(&lake.get(&events[i - 1]).unwrap());
        let mut e = lake.json(&events[i]);
        e["prev"] = Value::from(prev);
        lake.put(&events[i], serde_json::to_vec_pretty(&e).unwrap());
    }
}

/// verify finds the chain broken, and nothing but that (a checkpoint among moved events
/// no longer signs the head before it, which is `checkpoint_invalid`).
fn assert_chain_broken(lake: &Lake) {
    let (code, kinds, v) = lake.verify(&[]);
    assert_eq!(code, 1, "{v}");
    assert!(kinds.contains(&"chain_broken".to_string()), "{v}");
    assert!(
        kinds
            .iter()
            .all(|k| k == "chain_broken" || k == "checkpoint_invalid"),
        "{v}"
    );
}

/// A signing key pair in `dir`: (private, public).
pub fn keys(dir: &Path, name: &str) -> (String, String) {
    let out = dir.join(name);
    let run = bin()
        .args(["keys", "generate", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_success(&run);
    let private = out.to_string_lossy().into_owned();
    (private.clone(), format!("{private}.pub"))
}

/// Converts the sample in two runs, signed, then checks each kind of tampering alone
/// (each undone before the next): verify names it, and finds nothing once it is undone.
pub fn every_kind_of_tampering_is_found(lake: &Lake, keydir: &Path, files: &[PathBuf]) {
    let (private, public) = keys(keydir, "lake-key");
    let (first, second) = files.split_at(files.len() / 2);
    for half in [first, second] {
        let mut args = vec!["convert", "-q", "--signing-key", &private];
        let names: Vec<String> = half.iter().map(|p| p.to_string_lossy().into()).collect();
        args.extend(names.iter().map(String::as_str));
        let (code, _, err) = lake.run(&args);
        assert_eq!(code, 0, "{err}");
    }
    let signed = ["--public-key", public.as_str()];
    let (code, kinds, v) = lake.verify(&signed);
    assert_eq!((code, kinds), (0, vec![]), "{v}");
    // genesis, convert, checkpoint, convert, checkpoint
    assert_eq!(v["chain"]["length"], 5, "{v}");
    let head = v["chain"]["head"].as_str().unwrap().to_string();
    let (_, status, _) = lake.run(&["status", "--json"]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["chain"]["head"], Value::from(head.clone()));
    let original = lake.snapshot();
    let events = lake.events();
    let entries: Vec<String> = lake
        .list("_ledger")
        .into_iter()
        .filter(|r| r.matches('/').count() == 1 && r.ends_with(".json"))
        .collect();

    // A lake file altered together with its ledger entry (size, SHA-256 and rows agree).
    let entry_rel = &entries[0];
    let mut entry = lake.json(entry_rel);
    let victim = entry["file_details"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let donor = lake
        .list("events")
        .into_iter()
        .find(|r| r.ends_with(".parquet") && *r != victim)
        .unwrap();
    let kept_file = lake.get(&victim).unwrap();
    let forged = lake.get(&donor).unwrap();
    let donor_rows = entries
        .iter()
        .flat_map(|e| lake.json(e)["file_details"].as_array().unwrap().clone())
        .find(|d| d["path"] == donor.as_str())
        .unwrap()["rows"]
        .clone();
    entry["file_details"][0]["rows"] = donor_rows;
    entry["file_details"][0]["bytes"] = Value::from(forged.len());
    entry["file_details"][0]["sha256"] = Value::from(sha256(&forged));
    lake.put(&victim, forged);
    lake.put(entry_rel, serde_json::to_vec_pretty(&entry).unwrap());
    let (code, kinds, v) = lake.verify(&[]);
    assert_eq!(code, 1, "{v}");
    assert!(kinds.contains(&"ledger_altered".to_string()), "{v}");
    assert!(v.to_string().contains(entry_rel.as_str()), "{v}");
    lake.put(&victim, kept_file);
    lake.restore(&original);
    assert_eq!(lake.verify(&signed).0, 0);

    // A source's entry removed with the files only it names.
    let named_by = |f: &str| {
        entries
            .iter()
            .filter(|e| {
                lake.json(e)["files"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == f)
            })
            .count()
    };
    let (gone_entry, gone_files) = entries
        .iter()
        .find_map(|e| {
            let files: Vec<String> = lake.json(e)["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            (!files.is_empty() && files.iter().all(|f| named_by(f) == 1))
                .then(|| (e.clone(), files))
        })
        .expect("a source whose files no other source shares");
    let kept: Vec<(String, Bytes)> = gone_files
        .iter()
        .map(|f| (f.clone(), lake.get(f).unwrap()))
        .collect();
    lake.delete(&gone_entry);
    for f in &gone_files {
        lake.delete(f);
    }
    let (code, kinds, v) = lake.verify(&[]);
    assert_eq!(code, 1, "{v}");
    assert!(kinds.contains(&"ledger_altered".to_string()), "{v}");
    let found = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "ledger_altered")
        .unwrap();
    assert_eq!(found["path"], Value::from(gone_entry.clone()));
    assert!(
        found["detail"].as_str().unwrap().starts_with("removed"),
        "{found}"
    );
    for (f, b) in kept {
        lake.put(&f, b);
    }
    lake.restore(&original);
    assert_eq!(lake.verify(&signed).0, 0);

    // An event edited: the one after it no longer follows it.
    let mut e = lake.json(&events[1]);
    e["at"] = Value::from("2020-01-01T00:00:00.000000Z");
    lake.put(&events[1], serde_json::to_vec_pretty(&e).unwrap());
    let (code, kinds, v) = lake.verify(&[]);
    assert_eq!((code, kinds), (1, vec!["chain_broken".to_string()]), "{v}");
    assert_eq!(v["findings"][0]["path"], Value::from(events[2].clone()));
    lake.restore(&original);

    // An event inserted: the events after it moved up by one, a new one in its place.
    for i in (2..events.len()).rev() {
        let next = events[i].replace(&format!("{:020}", i + 1), &format!("{:020}", i + 2));
        lake.put(&next, lake.get(&events[i]).unwrap());
    }
    let mut forged = lake.json(&events[1]);
    forged["seq"] = Value::from(3);
    forged["prev"] = Value::from(sha256(&lake.get(&events[1]).unwrap()));
    lake.put(&events[2], serde_json::to_vec_pretty(&forged).unwrap());
    assert_chain_broken(lake);
    lake.restore(&original);
    assert_eq!(lake.verify(&signed).0, 0);

    // Two events reordered.
    let (a, b) = (lake.get(&events[1]).unwrap(), lake.get(&events[3]).unwrap());
    lake.put(&events[1], b);
    lake.put(&events[3], a);
    assert_chain_broken(lake);
    lake.restore(&original);

    // A forged checkpoint: the last one signed again with another key. The chain still
    // links; the signature is not the lake's key's.
    let (other, _) = keys(keydir, "forger-key");
    lake.delete(events.last().unwrap());
    lake.put("_chain/head.json", "4");
    let first = files[0].to_string_lossy().into_owned();
    let (code, _, err) = lake.run(&["convert", "-q", "--signing-key", &other, &first]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lake.events().len(), 5);
    let (code, kinds, v) = lake.verify(&signed);
    assert_eq!(
        (code, kinds),
        (1, vec!["checkpoint_invalid".to_string()]),
        "{v}"
    );
    assert_eq!(lake.verify(&[]).0, 0, "without a key the chain links");
    lake.restore(&original);
    // Unsigned events after the last checkpoint are named with the key.
    lake.delete(events.last().unwrap());
    lake.put("_chain/head.json", "4");
    let (code, kinds, v) = lake.verify(&signed);
    assert_eq!(
        (code, kinds),
        (1, vec!["checkpoint_invalid".to_string()]),
        "{v}"
    );
    lake.restore(&original);

    // A head from before a rewrite: an early event edited and every later one linked
    // again. The head kept from before is on the chain no more.
    let before = head.clone();
    let first = events[1].clone();
    let mut e = lake.json(&first);
    e["at"] = Value::from("2020-01-01T00:00:00.000000Z");
    lake.put(&first, serde_json::to_vec_pretty(&e).unwrap());
    rechain(lake, 2);
    // Every event links; only the checkpoints, which the forger cannot sign again with
    // the lake's key, no longer match the heads before them.
    let (code, kinds, v) = lake.verify(&[]);
    assert_eq!(code, 1, "{v}");
    assert!(kinds.iter().all(|k| k == "checkpoint_invalid"), "{v}");
    let (code, kinds, v) = lake.verify(&["--expect-head", &before]);
    assert_eq!(code, 1, "{v}");
    assert!(kinds.contains(&"head_unknown".to_string()), "{v}");
    lake.restore(&original);

    // A head the lake has grown past is still on its chain.
    let early = sha256(&lake.get(&events[2]).unwrap());
    let (code, kinds, v) = lake.verify(&["--expect-head", &early, "--public-key", &public]);
    assert_eq!((code, kinds), (0, vec![]), "{v}");
}

#[test]
fn every_kind_of_tampering_is_found_locally() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lake");
    std::fs::create_dir(&path).unwrap();
    let lake = Lake {
        store: LakeStore::local(&path).unwrap(),
        location: path.to_string_lossy().into_owned(),
        bin: &bin,
    };
    every_kind_of_tampering_is_found(&lake, dir.path(), &sample_files());
}

#[test]
fn convert_compact_and_prune_leave_a_chain_that_verifies_signed_and_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let (private, public) = keys(dir.path(), "k");
    // Odd months, then even ones: the days where exports overlap get two files.
    let (odd, even): (Vec<_>, Vec<_>) = sample_files()
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let files =
        |v: Vec<(usize, std::path::PathBuf)>| v.into_iter().map(|(_, f)| f).collect::<Vec<_>>();
    // Unsigned first: a chain begins, and verifies without a key.
    assert_eq!(convert(&lake, &files(odd), &[]).code, 0);
    assert_eq!(verify_lake(&lake, false).0, 0);
    let signed = ["--signing-key", private.as_str()];
    assert_eq!(convert(&lake, &files(even), &signed).code, 0);
    let run = |args: &[&str]| {
        let out = bin().args(args).arg("--lake").arg(&lake).output().unwrap();
        assert_success(&out);
    };
    run(&["compact", "--grace", "0s", "--signing-key", &private]);
    run(&[
        "prune",
        "--today",
        "2025-12-15",
        "--older-than",
        "6mo",
        "--signing-key",
        &private,
    ]);
    let verify = |extra: &[&str]| {
        let out = bin()
            .args(["verify", "--json", "--lake"])
            .arg(&lake)
            .args(extra)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code().unwrap(), finding_kinds(&v), v)
    };
    let (code, kinds, v) = verify(&["--public-key", &public]);
    assert_eq!((code, kinds), (0, vec![]), "{v}");
    let chain = Path::new(&lake).join("_chain");
    let kinds: Vec<String> = std::fs::read_dir(&chain)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "head.json")
        .map(|e| {
            let v: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                v["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    assert_eq!(
        kinds,
        [
            "genesis",
            "convert",
            "convert",
            "checkpoint",
            "compact",
            "checkpoint",
            "prune",
            "checkpoint"
        ]
    );
    // The prune event names the files it let go of, and why.
    let prune: Value =
        serde_json::from_slice(&std::fs::read(chain.join(format!("{:020}.json", 7))).unwrap())
            .unwrap();
    assert!(
        !prune["files_removed"].as_array().unwrap().is_empty(),
        "{prune}"
    );
    assert!(
        prune["why"].as_str().unwrap().contains("before 2025-06-15"),
        "{prune}"
    );
    // Unsigned checks pass too; the first convert's events precede any checkpoint.
    assert_eq!(verify(&[]).0, 0);
    // A report names the head it was computed from.
    let (_, _, v) = verify(&[]);
    let head = v["chain"]["head"].as_str().unwrap().to_string();
    let out = bin()
        .args(["report", "--format", "json", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(&head), "{report}");
}

#[test]
fn a_convert_killed_while_extending_the_chain_is_completed_by_its_rerun() {
    let files = sample_files();
    let once = tempfile::tempdir().unwrap();
    assert_eq!(convert(once.path(), &files[..8], &[]).code, 0);
    let want = lake_rows(once.path());
    let keydir = tempfile::tempdir().unwrap();
    let (private, public) = keys(keydir.path(), "k");
    // After the convert's event, before its ledger entries; between two entries; after
    // the signed checkpoint's event.
    for point in ["chain:1", "ledger:3", "chain-checkpoint:1"] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path();
        let mut cmd = bin();
        cmd.arg("convert")
            .args(&files[..8])
            .args(["--signing-key", &private, "--lake"])
            .arg(lake);
        assert!(kill_at_pause(&mut cmd, point), "{point}");
        let rerun = convert(lake, &files[..8], &["--signing-key", &private]);
        assert_eq!(rerun.code, 0, "{point}: {}", rerun.stderr);
        assert_eq!(lake_rows(lake), want, "{point}");
        let out = bin()
            .args(["verify", "--json", "--public-key", &public, "--lake"])
            .arg(lake)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (out.status.code(), finding_kinds(&v)),
            (Some(0), vec![]),
            "{point}: {v}"
        );
    }
}

#[test]
fn a_lake_from_before_the_chain_gets_a_genesis_committing_to_its_ledger_on_its_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    let files = sample_files();
    assert_eq!(convert(lake, &files[..4], &[]).code, 0);
    // As auditlake left a lake before the chain: no _chain/.
    std::fs::remove_dir_all(lake.join("_chain")).unwrap();
    let entries = std::fs::read_dir(lake.join("_ledger"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    let (code, v) = verify_lake(lake, false);
    assert_eq!((code, finding_kinds(&v)), (0, vec![]), "{v}");
    assert!(v.get("chain").is_none(), "{v}");
    assert_eq!(convert(lake, &files[4..8], &[]).code, 0);
    let genesis: Value = serde_json::from_slice(
        &std::fs::read(lake.join("_chain/00000000000000000001.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(genesis["kind"], "genesis");
    assert_eq!(genesis["records"].as_object().unwrap().len(), entries);
    let (code, v) = verify_lake(lake, false);
    assert_eq!((code, finding_kinds(&v)), (0, vec![]), "{v}");
    assert_eq!(v["chain"]["length"], 2, "{v}");
}
