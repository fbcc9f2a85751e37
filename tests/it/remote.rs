//! Object storage end to end against a real S3-compatible server on loopback (moto),
//! signed HTTPS-style URLs from a local HTTP server, faults injected by a proxy, and
//! two converters on one lake at once.
//!
//! The S3 tests need `moto_server` (PyPI `moto[server]`): `.ci/run` installs it and runs
//! them with `cargo test -- --ignored`; set AUDITLAKE_MOTO_SERVER to its path to run them
//! by hand.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auditlake::lake::store::LakeStore;
use object_store::ObjectStoreExt;

use crate::common::*;

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// A server with the buckets every test here uses: `exports` and `lake`.
    fn start() -> Moto {
        let moto = Moto::spawn();
        moto.bucket("exports");
        moto.bucket("lake");
        moto
    }

    fn spawn() -> Moto {
        let server =
            std::env::var("AUDITLAKE_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {server} ({e}): install moto[server] or set AUDITLAKE_MOTO_SERVER"));
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Moto { child, port };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not start");
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn bucket(&self, name: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary with S3 settings pointing at `endpoint`.
fn s3_bin(endpoint: &str) -> Command {
    let mut c = bin();
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true");
    c
}

fn s3_store(endpoint: &str, url: &str) -> LakeStore {
    // The library reads the same variables as the binary.
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    LakeStore::open(url, &[("aws_endpoint".into(), endpoint.into())]).unwrap()
}

fn upload(store: &LakeStore, files: &[PathBuf]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            store
                .store
                .put(&store.path(&name), std::fs::read(f).unwrap().into())
                .await
                .unwrap();
        }
    });
}

fn s3_convert(endpoint: &str, inputs: &[&str], lake: &str) -> Run {
    parse_run(
        s3_bin(endpoint)
            .arg("convert")
            .args(inputs)
            .args(["--lake", lake, "--json"])
            .output()
            .unwrap(),
    )
}

fn local_rows(files: &[PathBuf]) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let run = convert(dir.path(), files, &[]);
    assert_eq!(run.code, 0);
    lake_rows(dir.path())
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn s3_in_s3_lake_query_and_report_out_equal_the_local_run() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    upload(&s3_store(&ep, "s3://exports/in"), &sample_files());
    let run = s3_convert(&ep, &["s3://exports/in/"], "s3://lake/year");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.n("sources"), 36);
    let rows = store_rows(&s3_store(&ep, "s3://lake/year"));
    assert_eq!(rows, local_rows(&sample_files()));
    assert_unique(&rows);
    // Query and status from the S3 lake.
    let out = s3_bin(&ep)
        .args([
            "query",
            "--format",
            "csv",
            "--lake",
            "s3://lake/year",
            "SELECT count(*) AS n FROM events",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("n\n{}\n", rows.len())
    );
    let out = s3_bin(&ep)
        .args(["status", "--json", "--lake", "s3://lake/year"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["events"].as_u64(), Some(rows.len() as u64));
    assert_eq!(status["sources"].as_u64(), Some(36));
    // A report written to the bucket.
    let out = s3_bin(&ep)
        .args([
            "report",
            "brute_force",
            "--format",
            "json",
            "--lake",
            "s3://lake/year",
            "--out",
            "s3://lake/reports/bursts.json",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let store = s3_store(&ep, "s3://lake/reports");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let doc = rt
        .block_on(store.get("bursts.json"))
        .unwrap()
        .expect("report in the bucket");
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    let local = tempfile::tempdir().unwrap();
    convert(local.path(), &sample_files(), &[]);
    let out = bin()
        .args(["report", "brute_force", "--format", "json", "--lake"])
        .arg(local.path())
        .output()
        .unwrap();
    let local_doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["reports"], local_doc["reports"]);
    // Converting again: every source skipped through the ledger in the bucket.
    let again = s3_convert(&ep, &["s3://exports/in/"], "s3://lake/year");
    assert_eq!((again.n("skipped"), again.n("written")), (36, 0));
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn two_converts_at_once_on_one_s3_lake_lose_and_double_nothing() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    let files = sample_files();
    upload(&s3_store(&ep, "s3://exports/a"), &files[..24]);
    upload(&s3_store(&ep, "s3://exports/b"), &files[12..]);
    let start = |prefix: &str| {
        s3_bin(&ep)
            .args(["convert", prefix, "--lake", "s3://lake/shared", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start("s3://exports/a/"), start("s3://exports/b/"));
    let (a, b) = (
        parse_run(a.wait_with_output().unwrap()),
        parse_run(b.wait_with_output().unwrap()),
    );
    assert_eq!((a.code, b.code), (0, 0), "{} / {}", a.stderr, b.stderr);
    // They ran one after the other: the second waited for the lake lock.
    assert!(
        a.stderr.contains("waiting for another convert")
            || b.stderr.contains("waiting for another convert"),
        "{} / {}",
        a.stderr,
        b.stderr
    );
    let rows = store_rows(&s3_store(&ep, "s3://lake/shared"));
    assert_unique(&rows);
    assert_eq!(rows.len() as u64, a.n("written") + b.n("written"));
    assert_eq!(rows, local_rows(&files));
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn of_waiters_racing_for_a_stale_s3_lock_exactly_one_takes_it_over() {
    let moto = Moto::start();
    crate::lock::waiters_racing_for_a_stale_lock(&s3_store(&moto.endpoint(), "s3://lake/race"));
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn an_s3_heartbeat_after_a_takeover_fails_and_the_holder_publishes_nothing_more() {
    let moto = Moto::start();
    crate::lock::a_holder_taken_over_learns_it_at_its_next_heartbeat(&s3_store(
        &moto.endpoint(),
        "s3://lake/takeover",
    ));
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn without_conditional_writes_the_lock_is_best_effort_and_says_so() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    let files = sample_files();
    upload(&s3_store(&ep, "s3://exports/all"), &files);
    let run = || {
        parse_run(
            s3_bin(&ep)
                .args(["convert", "s3://exports/all/", "--lake", "s3://lake/plain"])
                .args(["--json", "--storage-option", "aws_conditional_put=disabled"])
                // Heartbeats every 600 ms, so the run writes the lock several times.
                .env("AUDITLAKE_LOCK_STALE_MS", "3000")
                .output()
                .unwrap(),
        )
    };
    let first = run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("the lake lock is best effort"),
        "{}",
        first.stderr
    );
    assert_eq!(
        store_rows(&s3_store(&ep, "s3://lake/plain")),
        local_rows(&files)
    );
    // Released at the end: the next run takes it at once and skips everything.
    let again = run();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!again.stderr.contains("waiting"), "{}", again.stderr);
    assert_eq!((again.n("skipped"), again.n("written")), (36, 0));
}

/// A proxy in front of `upstream` that answers 503 to the first connection and cuts the
/// third one off after a few bytes of the response; everything else passes through.
fn faulty_proxy(upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let n = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for conn in listener.incoming().take(10_000) {
            let Ok(mut client) = conn else { continue };
            let k = n.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                if k == 0 {
                    let mut reader = BufReader::new(client.try_clone().unwrap());
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(std::net::Shutdown::Write);
                });
                let mut server = server;
                if k == 2 {
                    let mut buf = [0u8; 64];
                    if let Ok(m) = server.read(&mut buf) {
                        let _ = client.write_all(&buf[..m]);
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                } else {
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Write);
                }
            });
        }
    });
    port
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn faults_between_auditlake_and_the_store_end_exact() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    let files: Vec<PathBuf> = sample_files().into_iter().take(6).collect();
    upload(&s3_store(&ep, "s3://exports/in"), &files);
    let proxy = format!("http://127.0.0.1:{}", faulty_proxy(moto.port));
    let first = s3_convert(&proxy, &["s3://exports/in/"], "s3://lake/faults");
    if first.code != 0 {
        // A clear error naming the store, never a credential, then a rerun completes it.
        let line = first.stderr.lines().last().unwrap_or("");
        assert!(
            line.starts_with("auditlake: ") && !line.contains("test:test"),
            "{}",
            first.stderr
        );
        let again = s3_convert(&proxy, &["s3://exports/in/"], "s3://lake/faults");
        assert_eq!(again.code, 0, "{}", again.stderr);
    }
    let rows = store_rows(&s3_store(&ep, "s3://lake/faults"));
    assert_eq!(rows, local_rows(&files));
}

/// Serves one file over HTTP, only to requests carrying the expected signature.
fn signed_server(body: Vec<u8>, signature: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(20) {
            let Ok(mut s) = conn else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            if first.contains(&format!("X-Amz-Signature={signature}"))
                && first.starts_with("GET /exports/june.zip?")
            {
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
            } else {
                let _ = s.write_all(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    });
    port
}

#[test]
fn a_signed_url_input_converts_and_its_signature_is_never_shown() {
    let body = std::fs::read(testdata("cases/two-members.zip")).unwrap();
    let port = signed_server(body, "s3cr3t");
    let url = format!(
        "http://127.0.0.1:{port}/exports/june.zip?X-Amz-Expires=86400&X-Amz-Signature=s3cr3t"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["convert", &url, "--json", "--lake"])
        .arg(dir.path())
        .output()
        .unwrap();
    let run = parse_run(out);
    assert_eq!((run.code, run.n("written")), (0, 5), "{}", run.stderr);
    assert_eq!(lake_rows(dir.path()).len(), 5);
    let ledger: String = std::fs::read_dir(dir.path().join("_ledger"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        ledger.contains("june.zip") && !ledger.contains("s3cr3t"),
        "{ledger}"
    );
    // A wrong signature: one clear line, no secret in it.
    let bad = url.replace("s3cr3t", "wrong-s3cr3t");
    let out = bin()
        .args(["convert", &bad, "--lake"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("403") && err.contains("june.zip") && !err.contains("s3cr3t"),
        "{err}"
    );
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn verify_an_s3_lake_against_its_ledger_and_fix_its_leftovers() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    upload(&s3_store(&ep, "s3://exports/v"), &sample_files()[..2]);
    let run = s3_convert(&ep, &["s3://exports/v/"], "s3://lake/v");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let verify = |lake: &str, extra: &[&str]| {
        let out = s3_bin(&ep)
            .args(["verify", "--json", "--lake", lake])
            .args(extra)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let kinds: Vec<String> = v["findings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f["kind"].as_str().unwrap().into())
                    .collect()
            })
            .unwrap_or_default();
        (out.status.code().unwrap(), kinds, out.stderr)
    };
    let (code, kinds, err) = verify("s3://lake/v", &[]);
    assert_eq!(
        (code, kinds),
        (0, vec![]),
        "{}",
        String::from_utf8_lossy(&err)
    );

    let store = s3_store(&ep, "s3://lake/v");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let files: Vec<String> = rt
        .block_on(store.list_all("events"))
        .unwrap()
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    let dir = |rel: &str| rel.rsplit_once('/').unwrap().0.to_string();
    let tmp = format!("{}/.part-killed-00001.parquet.tmp", dir(&files[2]));
    rt.block_on(async {
        store.delete(&files[0]).await.unwrap();
        let mut b = store.get(&files[1]).await.unwrap().unwrap().to_vec();
        b[100] ^= 0xff;
        store.put(&files[1], b.into()).await.unwrap();
        let copy = store.get(&files[2]).await.unwrap().unwrap();
        store
            .put(&format!("{}/part-copy.parquet", dir(&files[2])), copy)
            .await
            .unwrap();
        store.put(&tmp, "half".into()).await.unwrap();
    });
    let (code, kinds, _) = verify("s3://lake/v", &[]);
    assert_eq!(code, 1);
    assert_eq!(
        kinds,
        [
            "missing",
            "altered",
            "unexpected",
            "rows",
            "rows",
            "leftover_tmp"
        ]
    );
    let (code, kinds, _) = verify("s3://lake/v", &["--fix"]);
    assert_eq!((code, kinds.len()), (1, 6));
    assert_eq!(rt.block_on(store.get(&tmp)).unwrap(), None);
    let (_, kinds, _) = verify("s3://lake/v", &[]);
    assert_eq!(kinds, ["missing", "altered", "unexpected", "rows", "rows"]);

    let (code, _, err) = verify("s3://lake/nothing", &[]);
    assert_eq!(code, 2);
    assert_eq!(
        String::from_utf8_lossy(&err).trim_end(),
        "auditlake: no lake at s3://lake/nothing"
    );
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn tenant_ids_that_need_escaping_read_back_the_same_from_s3_as_from_disk() {
    use crate::faults::{odd_tenant_export, ODD_TENANTS};
    let moto = Moto::start();
    let ep = moto.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let body = odd_tenant_export();
    let a = dir.path().join("odd.json");
    let b = dir.path().join("odd-again.json");
    std::fs::write(&a, &body).unwrap();
    std::fs::write(&b, format!("{body}\n")).unwrap();
    let run = s3_convert(&ep, &[a.to_str().unwrap()], "s3://lake/odd");
    assert_eq!((run.code, run.n("written")), (0, 5), "{}", run.stderr);
    // Dedupe across runs finds the rows of the first.
    let run = s3_convert(&ep, &[b.to_str().unwrap()], "s3://lake/odd");
    assert_eq!(
        (run.n("written"), run.n("duplicates")),
        (0, 5),
        "{}",
        run.stderr
    );
    let store = s3_store(&ep, "s3://lake/odd");
    let rows = store_rows(&store);
    assert_eq!(rows, local_rows(&[a]));
    // The keys hold each value escaped once, as on disk.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dirs = rt.block_on(store.list_dirs("events")).unwrap();
    assert!(dirs.contains(&"tenant_id=a%2Fb".to_string()), "{dirs:?}");
    assert!(dirs.contains(&"tenant_id=100%25".to_string()), "{dirs:?}");
    // SQL over the bucket, whole and scoped to each tenant.
    let out = s3_bin(&ep)
        .args(["query", "--format", "csv", "--lake", "s3://lake/odd"])
        .arg("SELECT tenant_id FROM events ORDER BY tenant_id")
        .output()
        .unwrap();
    assert_success(&out);
    let mut want: Vec<&str> = ODD_TENANTS.to_vec();
    want.sort();
    assert_eq!(crate::faults::csv_values(&out.stdout), want);
    for t in ODD_TENANTS {
        let out = s3_bin(&ep)
            .args([
                "query",
                "--format",
                "csv",
                "--tenant",
                t,
                "--lake",
                "s3://lake/odd",
            ])
            .arg("SELECT trace_id FROM events")
            .output()
            .unwrap();
        assert_success(&out);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            2,
            "{t}"
        );
    }
    let out = s3_bin(&ep)
        .args(["status", "--json", "--lake", "s3://lake/odd"])
        .output()
        .unwrap();
    assert_success(&out);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["events"].as_u64(), Some(5), "{status}");
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn compact_and_prune_an_s3_lake_as_a_local_one() {
    let moto = Moto::start();
    let ep = moto.endpoint();
    // Odd months in one run, even ones in another: days where exports overlap get two files.
    let files = sample_files();
    let odd: Vec<PathBuf> = files.iter().step_by(2).cloned().collect();
    let even: Vec<PathBuf> = files.iter().skip(1).step_by(2).cloned().collect();
    upload(&s3_store(&ep, "s3://exports/odd"), &odd);
    upload(&s3_store(&ep, "s3://exports/even"), &even);
    for input in ["s3://exports/odd/", "s3://exports/even/"] {
        let run = s3_convert(&ep, &[input], "s3://lake/up");
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let lake = s3_store(&ep, "s3://lake/up");
    let expected = local_rows(&files);
    assert_eq!(store_rows(&lake), expected);

    let json = |args: &[&str]| -> serde_json::Value {
        let out = s3_bin(&ep)
            .args(args)
            .args(["--json", "--lake", "s3://lake/up"])
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let s = json(&["compact", "--grace", "0s"]);
    let merged = s["partitions"].as_array().unwrap().len();
    assert!(merged > 0, "{s}");
    assert_eq!(s["files_removed"].as_u64(), Some(2 * merged as u64));
    assert_eq!(store_rows(&lake), expected);
    let v = json(&["verify"]);
    assert!(v["findings"].as_array().unwrap().is_empty(), "{v}");
    let st = json(&["status"]);
    assert_eq!(st["events"].as_u64(), Some(expected.len() as u64));
    let out = s3_bin(&ep)
        .args([
            "query",
            "--format",
            "csv",
            "--lake",
            "s3://lake/up",
            "SELECT count(*) AS n FROM events",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("n\n{}\n", expected.len())
    );
    let again = json(&["compact", "--grace", "0s"]);
    assert_eq!(again["partitions"].as_array().unwrap().len(), 0, "{again}");

    let p = json(&["prune", "--older-than", "6mo", "--today", "2025-12-15"]);
    let kept: Vec<Row> = expected
        .iter()
        .filter(|r| r[1].as_str() >= "2025-06-15")
        .cloned()
        .collect();
    assert_eq!(
        p["events"].as_u64(),
        Some((expected.len() - kept.len()) as u64)
    );
    assert_eq!(store_rows(&lake), kept);
    let v = json(&["verify"]);
    assert!(v["findings"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(
        json(&["status"])["events"].as_u64(),
        Some(kept.len() as u64)
    );
}
