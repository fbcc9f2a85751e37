//! `auditlake fetch` against the DPoD API test server (`tests/dpod_server.py`, started
//! here on loopback with TLS and a test CA made with the `openssl` CLI), with its fault
//! knobs: polling, expired tokens, 5xx, failed jobs, too-large windows, expired signed
//! URLs, cut downloads, SIGKILL anywhere, and no secret in any output or in the lake.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::common::{bin, convert, lake_rows, Row};

const CLIENT_ID: &str = "auditlake-test-client";
const SECRET: &str = "sup3r-s3cret-client-value";

/// The test CA and the server's certificate (for 127.0.0.1), made once per test run.
pub(crate) fn tls() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dpod-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("the openssl CLI (.ci/run installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        ssl(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3",
                "-subj",
                "/CN=auditlake test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        ssl(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat());
        ssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "3",
            "-extfile",
            "server.ext",
        ]);
        dir
    })
}

/// A year of generated exports for one tenant (monthly, overlapping at the edges).
fn exports() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("dpod-exports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = bin()
            .args([
                "generate",
                "--events",
                "2400",
                "--tenants",
                "1",
                "--seed",
                "12",
                "--output",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// The test server, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(faults: Value) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls();
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dpod_server.py"))
            .arg("--exports")
            .arg(exports())
            .arg("--cert")
            .arg(tls.join("server.pem"))
            .arg("--key")
            .arg(tls.join("server.key"))
            .args([
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                SECRET,
                "--faults",
            ])
            .arg(faults.to_string())
            .arg("--log")
            .arg(dir.path().join("requests.ndjson"))
            .arg("--records-out")
            .arg(dir.path().join("records.ndjson"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 for the DPoD test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the test server did not start: {line:?}"));
        Server { child, port, dir }
    }

    pub fn api(&self) -> String {
        format!("https://127.0.0.1:{}/api", self.port)
    }

    pub fn token_url(&self) -> String {
        format!("https://127.0.0.1:{}/oauth/token", self.port)
    }

    /// `auditlake fetch --json` for the year 2025 into `lake`, trusting the test CA.
    pub fn fetch(&self, lake: &Path) -> Command {
        let mut c = self.fetch_with(lake, true, "2025-01-01", "2026-01-01");
        c.arg("--ca-cert").arg(tls().join("ca.pem"));
        c
    }

    /// The same without `--ca-cert`, and with `--json` only when asked.
    pub fn fetch_with(&self, lake: &Path, json: bool, from: &str, to: &str) -> Command {
        let mut c = bin();
        c.args([
            "fetch",
            "--api",
            &self.api(),
            "--token-url",
            &self.token_url(),
        ])
        .args(["--client-id", CLIENT_ID, "--from", from, "--to", to])
        .arg("--lake")
        .arg(lake)
        .env("AUDITLAKE_DPOD_CLIENT_SECRET", SECRET)
        .env("AUDITLAKE_FETCH_BACKOFF_MS", "5")
        .env_remove("SSL_CERT_FILE");
        if json {
            c.arg("--json");
        }
        c
    }

    /// The requests the server saw, and what it handed out.
    pub fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("requests.ndjson"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every token and signature the server handed out.
    pub fn issued(&self) -> Vec<String> {
        self.log()
            .iter()
            .filter_map(|l| l["value"].as_str().map(str::to_string))
            .collect()
    }

    pub fn records_file(&self) -> PathBuf {
        self.dir.path().join("records.ndjson")
    }
}

/// The rows of converting the server's records from a file: what every fetch must equal.
fn reference_rows() -> &'static Vec<Row> {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| {
        let server = Server::start(json!({}));
        let lake = tempfile::tempdir().unwrap();
        let run = convert(lake.path(), &[server.records_file()], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        lake_rows(lake.path())
    })
}

/// The summary of a fetch run, with the run's own outputs.
struct Fetched {
    code: i32,
    summary: Value,
    stdout: String,
    stderr: String,
}

impl Fetched {
    fn n(&self, key: &str) -> u64 {
        self.summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {}\nstderr: {}", self.summary, self.stderr))
    }
}

fn run(cmd: &mut Command) -> Fetched {
    let out: Output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let f = Fetched {
        code: out.status.code().unwrap_or(-1),
        summary,
        stdout,
        stderr,
    };
    if f.summary.is_object() && !f.summary["dry_run"].as_bool().unwrap_or(false) {
        assert_eq!(
            f.n("records_read"),
            f.n("written") + f.n("duplicates") + f.n("rejected"),
            "{}",
            f.summary
        );
    }
    f
}

fn ok(f: &Fetched) {
    assert_eq!(f.code, 0, "stdout: {}\nstderr: {}", f.stdout, f.stderr);
}

/// The trace ids of a set of rows.
fn traces(rows: &[Row]) -> std::collections::BTreeSet<String> {
    let c = crate::common::col("trace_id");
    rows.iter().map(|r| r[c].clone()).collect()
}

#[test]
fn a_year_in_31_day_windows_equals_converting_the_same_records_from_files() {
    let server = Server::start(json!({"polls_active": 2}));
    let lake = tempfile::tempdir().unwrap();

    // --dry-run: the twelve windows, and nothing asked of the server.
    let dry = run(server.fetch(lake.path()).arg("--dry-run"));
    ok(&dry);
    let planned: Vec<&str> = dry.summary["planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(planned.len(), 12, "{planned:?}");
    assert_eq!(planned[0], "2025-01-01T00:00:00Z..2025-02-01T00:00:00Z");
    assert_eq!(planned[11], "2025-12-08T00:00:00Z..2026-01-01T00:00:00Z");
    assert!(server.log().is_empty(), "{:?}", server.log());

    // Signed: the chain's checkpoint after the fetch verifies with the public key.
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = crate::chain::keys(keys.path(), "k");
    let f = run(server.fetch(lake.path()).args(["--signing-key", &private]));
    ok(&f);
    assert_eq!(
        (f.n("windows"), f.n("jobs"), f.n("windows_failed")),
        (12, 12, 0)
    );
    let rows = lake_rows(lake.path());
    assert_eq!(&rows, reference_rows());
    // The same events as converting the generated monthly exports themselves.
    let from_files = tempfile::tempdir().unwrap();
    let c = convert(from_files.path(), &[exports().to_path_buf()], &[]);
    assert_eq!(c.code, 0);
    assert_eq!(traces(&rows), traces(&lake_rows(from_files.path())));

    let log = server.log();
    // Each job polled ACTIVE, then SUCCEEDED; windows asked as whole-second RFC 3339.
    let polls = log
        .iter()
        .filter(|l| {
            l["path"]
                .as_str()
                .is_some_and(|p| p.contains("/v1/audit-log-exports/"))
        })
        .count();
    assert_eq!(
        polls,
        12 * 3,
        "two ACTIVE answers and one SUCCEEDED per job"
    );
    let creates: Vec<&Value> = log.iter().filter_map(|l| l.get("create")).collect();
    assert_eq!(creates.len(), 12);
    assert_eq!(creates[1]["from"], "2025-02-01T00:00:00Z");
    // Signed downloads carry no Authorization header; API calls do.
    for l in &log {
        if let Some(p) = l["path"].as_str() {
            assert_eq!(l["auth"].as_bool(), Some(p.starts_with("/api/")), "{l}");
        }
    }

    // A rerun of the same period asks for nothing.
    let again = run(&mut server.fetch(lake.path()));
    ok(&again);
    assert_eq!(again.n("jobs"), 0, "{}", again.stdout);
    assert_eq!(lake_rows(lake.path()), rows);
    let dry = run(server.fetch(lake.path()).arg("--dry-run"));
    assert_eq!(dry.summary["planned"], json!([]));
    // Without --from: from the end of the coverage less the overlap, to now.
    let dry = run(&mut dry_run_defaults(&server, lake.path()));
    ok(&dry);
    assert_eq!(
        dry.summary["from"], "2025-12-31T22:00:00Z",
        "{}",
        dry.stdout
    );
    assert!(dry.summary["planned"][0]
        .as_str()
        .unwrap()
        .starts_with("2025-12-31T22:00:00Z.."));
    // On a lake that has fetched nothing: the last 12 months, in 12 windows.
    let empty = tempfile::tempdir().unwrap();
    let dry = run(&mut dry_run_defaults(&server, empty.path()));
    ok(&dry);
    assert_eq!(
        dry.summary["planned"].as_array().unwrap().len(),
        12,
        "{}",
        dry.stdout
    );
    assert!(!empty.path().join("_ledger").exists());

    // status: the fetched coverage per tenant API and source.
    let out = bin()
        .args(["status", "--json", "--lake"])
        .arg(lake.path())
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fetched = &s["fetched"][0];
    assert_eq!(fetched["api"], server.api());
    assert_eq!(fetched["windows"], 12);
    assert_eq!(
        fetched["covered"],
        json!(["2025-01-01T00:00:00Z..2026-01-01T00:00:00Z"])
    );
    let out = bin()
        .args(["status", "--lake"])
        .arg(lake.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("fetched from {} (source (all))", server.api()))
            && text.contains("2025-01-01T00:00:00Z..2026-01-01T00:00:00Z"),
        "{text}"
    );
    // verify: the lake is as its ledger says, and its chain is signed.
    let out = bin()
        .args(["verify", "--public-key", &public, "--lake"])
        .arg(lake.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `fetch --dry-run` with the default period (and a 2h overlap).
fn dry_run_defaults(server: &Server, lake: &Path) -> Command {
    let mut c = bin();
    c.args([
        "fetch",
        "--dry-run",
        "--json",
        "--overlap",
        "2h",
        "--api",
        &server.api(),
    ])
    .arg("--lake")
    .arg(lake);
    c
}

#[test]
fn a_token_that_expires_mid_run_is_renewed_on_401() {
    let server = Server::start(json!({"revoke_tokens_after": 7}));
    let lake = tempfile::tempdir().unwrap();
    let f = run(&mut server.fetch(lake.path()));
    ok(&f);
    assert!(f.n("token_refreshes") >= 1, "{}", f.stdout);
    assert!(server.log().iter().any(|l| l["status"] == 401));
    assert_eq!(&lake_rows(lake.path()), reference_rows());
}

#[test]
fn server_errors_and_429_on_create_are_retried_then_succeed() {
    let server = Server::start(json!({"create_errors": [503, 500, 429]}));
    let lake = tempfile::tempdir().unwrap();
    let f = run(&mut server.fetch(lake.path()));
    ok(&f);
    assert!(f.n("retries") >= 3, "{}", f.stdout);
    assert_eq!(f.n("windows"), 12);
    assert_eq!(&lake_rows(lake.path()), reference_rows());
}

#[test]
fn a_failed_job_is_one_clear_error_and_a_rerun_fetches_only_its_window() {
    let server = Server::start(json!({"fail_jobs": [3]}));
    let lake = tempfile::tempdir().unwrap();
    let f = run(&mut server.fetch(lake.path()));
    assert_eq!(f.code, 2, "{}", f.stderr);
    assert_eq!((f.n("windows"), f.n("windows_failed")), (11, 1));
    let lines: Vec<&str> = f.stderr.lines().filter(|l| l.contains("FAILED")).collect();
    assert_eq!(lines.len(), 1, "{}", f.stderr);
    assert!(
        lines[0].starts_with(
            "auditlake: window 2025-03-04T00:00:00Z..2025-04-04T00:00:00Z: export job job-0003"
        ) && lines[0].contains("ended FAILED: the export could not be generated"),
        "{}",
        lines[0]
    );
    // The rerun asks for that one window (the server's third job was the only failure).
    let again = run(&mut server.fetch(lake.path()));
    ok(&again);
    assert_eq!((again.n("windows"), again.n("jobs")), (1, 1));
    assert_eq!(&lake_rows(lake.path()), reference_rows());
}

#[test]
fn a_cancelled_job_or_one_that_never_ends_fails_its_window_clearly() {
    let server = Server::start(json!({"cancel_jobs": [1]}));
    let lake = tempfile::tempdir().unwrap();
    let f = run(server
        .fetch_with(lake.path(), true, "2025-01-01", "2025-01-03")
        .arg("--ca-cert")
        .arg(tls().join("ca.pem")));
    assert_eq!((f.code, f.n("windows"), f.n("windows_failed")), (2, 0, 1));
    assert!(f.stderr.contains("ended CANCELLED"), "{}", f.stderr);
    // A job still ACTIVE when --job-timeout runs out.
    let server = Server::start(json!({"polls_active": 1_000_000_000}));
    let f = run(server
        .fetch_with(lake.path(), true, "2025-01-01", "2025-01-03")
        .args(["--job-timeout", "1s", "--ca-cert"])
        .arg(tls().join("ca.pem")));
    assert_eq!((f.code, f.n("windows_failed")), (2, 1));
    assert!(
        f.stderr.contains("still ACTIVE after 1s (--job-timeout)"),
        "{}",
        f.stderr
    );
    assert!(lake_rows(lake.path()).is_empty());
}

#[test]
fn a_window_too_large_for_one_export_is_split_until_it_fits() {
    let server = Server::start(json!({"max_records": 120}));
    let lake = tempfile::tempdir().unwrap();
    let f = run(&mut server.fetch(lake.path()));
    ok(&f);
    assert!(f.n("windows_split") >= 12, "{}", f.stdout);
    assert_eq!(f.n("windows"), 12 + f.n("windows_split"));
    assert_eq!(&lake_rows(lake.path()), reference_rows());
    assert!(
        f.stderr.contains("too large for one export"),
        "{}",
        f.stderr
    );
    // The halves are in the ledger: nothing is asked again.
    let again = run(&mut server.fetch(lake.path()));
    assert_eq!(again.n("jobs"), 0);
}

#[test]
fn an_expired_signed_url_gets_a_new_job() {
    let server = Server::start(json!({"expired_urls": 2}));
    let lake = tempfile::tempdir().unwrap();
    let f = run(&mut server.fetch(lake.path()));
    ok(&f);
    assert_eq!(
        (f.n("jobs_recreated"), f.n("jobs")),
        (2, 14),
        "{}",
        f.stdout
    );
    assert_eq!(
        server.log().iter().filter(|l| l["status"] == 403).count(),
        2
    );
    assert_eq!(&lake_rows(lake.path()), reference_rows());
}

#[test]
fn a_download_cut_mid_body_resumes_or_starts_over() {
    // Resumed with a Range request.
    let server = Server::start(json!({"cut_downloads": 3}));
    let lake = tempfile::tempdir().unwrap();
    let f = run(&mut server.fetch(lake.path()));
    ok(&f);
    assert!(f.n("resumed_downloads") >= 3, "{}", f.stdout);
    assert!(server
        .log()
        .iter()
        .any(|l| l["range"].as_u64().is_some_and(|r| r > 0)));
    assert_eq!(&lake_rows(lake.path()), reference_rows());
    // A server that ignores Range: the download starts over.
    let server = Server::start(json!({"cut_downloads": 3, "no_range": true}));
    let lake = tempfile::tempdir().unwrap();
    let f = run(&mut server.fetch(lake.path()));
    ok(&f);
    assert_eq!(f.n("resumed_downloads"), 0);
    assert_eq!(&lake_rows(lake.path()), reference_rows());
}

/// Starts a fetch that pauses at `point` and kills it there with SIGKILL.
fn kill_at(server: &Server, lake: &Path, point: &str) {
    let mut child = server
        .fetch(lake)
        .env("AUDITLAKE_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("ended before pausing at {point}: {seen}");
        }
        seen.push_str(&line);
        if line.contains("paused at") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn sigkill_anywhere_then_a_rerun_gives_the_rows_of_an_uninterrupted_run() {
    let server = Server::start(json!({"polls_active": 1}));
    for point in [
        "fetch-download:3",
        "decode:2",
        "ledger:4",
        "fetch-window:6",
        "fetch-located:9",
    ] {
        let lake = tempfile::tempdir().unwrap();
        kill_at(&server, lake.path(), point);
        let windows = std::fs::read_dir(lake.path().join("_ledger/windows"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(
            windows < 12,
            "{point}: {windows} windows recorded before the kill"
        );
        let f = run(&mut server.fetch(lake.path()));
        ok(&f);
        assert!(
            f.n("windows") >= (12 - windows) as u64,
            "{point}: {}",
            f.stdout
        );
        assert_eq!(
            &lake_rows(lake.path()),
            reference_rows(),
            "after a kill at {point}"
        );
        let out = bin()
            .args(["verify", "--lake"])
            .arg(lake.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{point}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// Every file below `dir`, as text (lossy).
fn all_text(dir: &Path, out: &mut String) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_text(&p, out);
        } else {
            out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
        }
    }
}

#[test]
fn no_secret_token_or_signature_in_any_output_or_in_the_lake() {
    let server = Server::start(json!({
        "revoke_tokens_after": 5, "expired_urls": 1, "cut_downloads": 2, "fail_jobs": [4],
        "create_errors": [503]
    }));
    let lake = tempfile::tempdir().unwrap();
    let mut captured = String::new();
    let mut keep = |f: &Fetched| {
        captured.push_str(&f.stdout);
        captured.push_str(&f.stderr);
    };
    // Verbose, with every fault on; then plain, human-readable; then failures.
    let f = run(server.fetch(lake.path()).arg("-vv"));
    assert_eq!(f.code, 2);
    keep(&f);
    let f = run(server
        .fetch_with(lake.path(), false, "2025-01-01", "2026-01-01")
        .arg("--ca-cert")
        .arg(tls().join("ca.pem")));
    ok(&f);
    keep(&f);
    // A wrong secret: one clear line, and not the secret given.
    let f = run(server
        .fetch_with(lake.path(), true, "2026-01-01", "2026-01-02")
        .arg("--ca-cert")
        .arg(tls().join("ca.pem"))
        .env("AUDITLAKE_DPOD_CLIENT_SECRET", "wrong-sup3r-s3cret"));
    assert_eq!(f.code, 2);
    assert!(
        f.stderr
            .contains("refused the client credentials (HTTP 401)"),
        "{}",
        f.stderr
    );
    assert!(!f.stderr.contains("wrong-sup3r-s3cret"), "{}", f.stderr);
    keep(&f);
    let status = bin()
        .args(["status", "--lake"])
        .arg(lake.path())
        .output()
        .unwrap();
    captured.push_str(&String::from_utf8_lossy(&status.stdout));

    let issued = server.issued();
    assert!(
        issued.iter().filter(|v| v.starts_with("tok-")).count() >= 2,
        "{issued:?}"
    );
    assert!(
        issued.iter().filter(|v| !v.starts_with("tok-")).count() >= 12,
        "{issued:?}"
    );
    let mut in_lake = String::new();
    all_text(lake.path(), &mut in_lake);
    assert!(in_lake.contains("/v1/audit-log-exports/job-"));
    for (what, text) in [("output", &captured), ("lake", &in_lake)] {
        assert!(!text.contains(SECRET), "the secret in the {what}");
        assert!(
            !text.contains("X-Signature"),
            "a signed query string in the {what}"
        );
        for v in &issued {
            assert!(!text.contains(v.as_str()), "{v} in the {what}");
        }
    }
    assert_eq!(&lake_rows(lake.path()), reference_rows());
}

#[test]
fn tls_is_verified_and_the_test_ca_is_trusted_by_ca_cert_or_ssl_cert_file() {
    let server = Server::start(json!({}));
    let lake = tempfile::tempdir().unwrap();
    // Without the CA: refused, one line saying why.
    let f = run(&mut server.fetch_with(lake.path(), true, "2025-01-01", "2025-01-02"));
    assert_eq!(f.code, 2, "{}", f.stderr);
    assert!(
        f.stderr.to_lowercase().contains("certificate"),
        "{}",
        f.stderr
    );
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    // SSL_CERT_FILE names the CA: trusted (and the secret comes from a file this time).
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("dpod-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let f = run(server
        .fetch_with(lake.path(), true, "2025-01-01", "2025-01-02")
        .env_remove("AUDITLAKE_DPOD_CLIENT_SECRET")
        .arg("--secret-file")
        .arg(&secret)
        .env("SSL_CERT_FILE", tls().join("ca.pem")));
    ok(&f);
    assert_eq!(f.n("windows"), 1);
}
