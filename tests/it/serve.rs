//! `auditlake serve` with a real PostgreSQL client (tokio-postgres, simple and extended
//! protocol) and psql (sslmode=verify-full against a test CA), on loopback: every view
//! as `query` answers it, SCRAM users and tenant scope, the read-only guard, TLS that
//! fails closed, refusals off loopback, and SIGTERM draining a running statement.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::common::*;
use crate::query::{query, sample_lake};

const ADMIN_PW: &str = "admin-pass-1";
const SCOPED_PW: &str = "scoped-pass-2";
const PAIR_PW: &str = "pair-pass-3";

/// A running server, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    log: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Starts `serve` on a free loopback port and waits for its "listening on" line.
    fn start(lake: &Path, extra: &[&str]) -> Server {
        let mut child = bin()
            .args(["serve", "-v", "--listen", "127.0.0.1:0", "--lake"])
            .arg(lake)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        // Killed on a panic below too (Drop).
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        let mut seen = Vec::new();
        loop {
            let line = server
                .log
                .recv_timeout(std::time::Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("serve did not start: {seen:#?}"));
            if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
                let port = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                server.port = port;
                return server;
            }
            seen.push(line);
        }
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname=auditlake",
            self.port
        )
    }

    /// Everything the server logged so far.
    fn logged(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    /// SIGTERM, then the exit code and the rest of the log.
    fn stop(mut self) -> (Option<i32>, Vec<String>) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.log.iter().collect();
        (status.code(), rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// The rows of a simple-protocol query, as text (None for NULL).
async fn simple(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    simple_with_columns(client, sql).await.1
}

/// The column names and rows of a simple-protocol query.
async fn simple_with_columns(
    client: &tokio_postgres::Client,
    sql: &str,
) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let mut cols = Vec::new();
    let mut rows = Vec::new();
    for m in client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    {
        match m {
            SimpleQueryMessage::RowDescription(d) => {
                cols = d.iter().map(|c| c.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => {}
        }
    }
    (cols, rows)
}

/// A value as text in one canonical form, whether it came from `query --format json`
/// or over the wire: timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC, booleans as
/// PostgreSQL writes them.
fn canonical(text: &str) -> String {
    let b = text.as_bytes();
    let is_ts = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':';
    if !is_ts {
        return match text {
            "true" => "t".into(),
            "false" => "f".into(),
            other => other.to_string(),
        };
    }
    let mut t = text.replacen('T', " ", 1);
    for zone in ["Z", "+00:00", "+00"] {
        if let Some(s) = t.strip_suffix(zone) {
            t = s.to_string();
        }
    }
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    t
}

fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(canonical(s)),
        Value::Bool(b) => Some(if *b { "t" } else { "f" }.into()),
        Value::Array(a) => Some(format!(
            "{{{}}}",
            a.iter()
                .map(|v| json_text(v).unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join(",")
        )),
        other => Some(canonical(&other.to_string())),
    }
}

/// `auditlake query`'s rows of `sql` in canonical text, columns in the order given, sorted.
fn query_table(
    lake: &Path,
    extra: &[&str],
    sql: &str,
    cols: &[String],
) -> Vec<Vec<Option<String>>> {
    let mut table: Vec<Vec<Option<String>>> = query(lake, extra, sql)
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| json_text(r.get(c).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect();
    table.sort();
    table
}

/// The one value of a one-row, one-column query.
fn query_one(lake: &Path, extra: &[&str], sql: &str) -> String {
    let rows = query(lake, extra, sql);
    assert_eq!(rows.len(), 1, "{sql}");
    let row = rows[0].as_object().unwrap();
    json_text(row.values().next().unwrap()).unwrap()
}

const VIEWS: &[&str] = &[
    "failed_logins",
    "login_bursts",
    "key_first_use",
    "key_lifecycle",
    "actions_by_role",
    "new_client_ips",
    "off_hours_activity",
    "privileged_actions",
    "daily_activity",
    "key_inventory",
    "ocsf_authentication",
    "ocsf_api_activity",
    "ocsf_entity_management",
];

/// The users file: `admin` sees every tenant, `scoped` one.
fn users_file(dir: &Path, tenant: &str) -> PathBuf {
    let path = dir.join("users.toml");
    for (name, pw, scope) in [
        ("admin", ADMIN_PW, None),
        ("scoped", SCOPED_PW, Some(tenant)),
    ] {
        let mut cmd = bin();
        cmd.args(["users", "add", name, "--users"]).arg(&path);
        if let Some(t) = scope {
            cmd.args(["--tenant", t]);
        }
        let out = with_stdin(&mut cmd, &format!("{pw}\n"));
        assert_success(&out);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("SCRAM-SHA-256$4096:"), "{text}");
    assert!(!text.contains(ADMIN_PW) && !text.contains(SCOPED_PW));
    let listed = bin()
        .args(["users", "list", "--users"])
        .arg(&path)
        .output()
        .unwrap();
    assert_success(&listed);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("admin\t(every tenant)") && listed.contains(&format!("scoped\t{tenant}")),
        "{listed}"
    );
    path
}

fn tenants_of(lake: &Path) -> Vec<String> {
    query(
        lake,
        &[],
        "SELECT DISTINCT tenant_id FROM events ORDER BY 1",
    )
    .iter()
    .map(|r| r["tenant_id"].as_str().unwrap().to_string())
    .collect()
}

#[test]
fn every_view_over_the_wire_equals_query_in_both_protocols() {
    let lake = sample_lake();
    let server = Server::start(lake, &[]);
    rt().block_on(async {
        // No users file, on loopback: anyone may connect, as an administrator.
        let client = connect(&server.url("analyst", "")).await.unwrap();
        for view in VIEWS {
            let sql = format!("SELECT * FROM {view}");
            let (cols, mut got) = simple_with_columns(&client, &sql).await;
            let want = query_table(lake, &[], &sql, &cols);
            for row in &mut got {
                for v in row.iter_mut() {
                    *v = v.as_deref().map(canonical);
                }
            }
            got.sort();
            assert_eq!(got.len(), want.len(), "{view}: row count");
            assert_eq!(got, want, "{view} ({cols:?})");
        }
        // The extended protocol: a bound parameter, typed results.
        let tenants = tenants_of(lake);
        for t in &tenants {
            let want = query_one(
                lake,
                &[],
                &format!("SELECT count(*) FROM events WHERE tenant_id = '{t}'"),
            );
            let row = client
                .query_one("SELECT count(*) FROM events WHERE tenant_id = $1", &[t])
                .await
                .unwrap();
            assert_eq!(row.get::<_, i64>(0).to_string(), want, "tenant {t}");
        }
        // The server says which PostgreSQL it speaks as, the same way everywhere.
        let shown = simple(&client, "SHOW server_version").await;
        assert_eq!(shown, vec![vec![Some("16.6".to_string())]]);
        let v = client.query_one("SHOW server_version_num", &[]).await.unwrap();
        assert_eq!(v.get::<_, String>(0), "160006");
        let v = simple(&client, "SELECT version()").await;
        assert!(v[0][0].as_deref().unwrap().starts_with("PostgreSQL 16.6 "), "{v:?}");
                // Views are found unqualified and under `public`, and listed there.
        let n = simple(&client, "SELECT count(*) FROM public.failed_logins").await;
        let want = query_one(lake, &[], "SELECT count(*) FROM failed_logins");
        assert_eq!(n[0][0].as_deref(), Some(want.as_str()));
        let listed = simple(
            &client,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        )
        .await;
        let names: Vec<String> = listed.into_iter().filter_map(|r| r[0].clone()).collect();
        for name in ["events", "action_catalog", "failed_logins", "ocsf_authentication"] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
    });
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log:#?}");
}

#[test]
fn users_are_scoped_to_their_tenant_and_nothing_writes() {
    let lake = sample_lake();
    let tenants = tenants_of(lake);
    assert!(tenants.len() >= 2, "{tenants:?}");
    let (a, b) = (&tenants[0], &tenants[1]);
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), a);
    let mut cmd = bin();
    cmd.args([
        "users", "add", "pair", "--tenant", a, "--tenant", b, "--users",
    ])
    .arg(&users);
    assert_success(&with_stdin(&mut cmd, &format!("{PAIR_PW}\n")));
    // A short password is refused, and the file keeps what it had.
    let mut cmd = bin();
    cmd.args(["users", "add", "weak", "--users"]).arg(&users);
    let out = with_stdin(&mut cmd, "short\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(!std::fs::read_to_string(&users)
        .unwrap()
        .contains("[users.weak]"));
    let server = Server::start(
        lake,
        &["--users", users.to_str().unwrap(), "--max-connections", "3"],
    );
    rt().block_on(async {
        // A wrong password, and an unknown user, are refused alike.
        for (user, pw) in [("admin", "not-the-password"), ("nobody", ADMIN_PW)] {
            let Err(e) = connect(&server.url(user, pw)).await else {
                panic!("{user} with a wrong password was let in");
            };
            let db = e.as_db_error().expect("a PostgreSQL error");
            assert_eq!(db.code().code(), "28P01", "{e}");
            assert!(db.message().contains("password authentication failed"), "{e}");
        }

        let scoped = connect(&server.url("scoped", SCOPED_PW)).await.unwrap();
        let seen = simple(&scoped, "SELECT DISTINCT tenant_id FROM events").await;
        assert_eq!(seen, vec![vec![Some(a.clone())]]);
        let other = simple(&scoped, &format!("SELECT count(*) FROM events WHERE tenant_id = '{b}'")).await;
        assert_eq!(other[0][0].as_deref(), Some("0"));
        let want = vec![vec![Some(query_one(lake, &["--tenant", a], "SELECT count(*) FROM failed_logins"))]];
        let got = simple(&scoped, "SELECT count(*) FROM failed_logins").await;
        assert_eq!(got, want);

        // Writes and escapes are refused with 25006 and leave nothing behind.
        let out = dir.path().join("copied.csv");
        let passwd = dir.path().join("passwd.csv");
        std::fs::write(&passwd, "a,b\n1,2\n").unwrap();
        for sql in [
            format!("CREATE EXTERNAL TABLE escape STORED AS CSV LOCATION '{}'", passwd.display()),
            format!("COPY (SELECT * FROM events) TO '{}'", out.display()),
            "CREATE VIEW mine AS SELECT 1".to_string(),
            "DROP VIEW failed_logins".to_string(),
            "INSERT INTO action_catalog SELECT * FROM action_catalog".to_string(),
            "SET datafusion.execution.target_partitions = 1".to_string(),
            "CREATE TABLE t AS SELECT * FROM events".to_string(),
        ] {
            let e = scoped.simple_query(&sql).await.err().unwrap_or_else(|| panic!("{sql} ran"));
            let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
            assert_eq!(db.code().code(), "25006", "{sql}: {db:?}");
            assert!(db.message().contains("read-only"), "{sql}: {db:?}");
            // The extended protocol refuses it at Parse.
            let e = scoped.prepare(&sql).await.err().unwrap_or_else(|| panic!("{sql} prepared"));
            assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("25006"), "{sql}: {e}");
        }
        assert!(!out.exists());
        assert!(simple(&scoped, "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('escape', 'mine', 't')").await[0][0].as_deref() == Some("0"));
        // The refused SET changed nothing; another client and this one still run.
        let admin = connect(&server.url("admin", ADMIN_PW)).await.unwrap();
        let all = simple(&admin, "SELECT count(DISTINCT tenant_id) FROM events").await;
        assert_eq!(all[0][0].as_deref(), Some(tenants.len().to_string().as_str()));
        let still = simple(&scoped, "SELECT count(*) FROM failed_logins").await;
        assert_eq!(still, want);
        // A user of two tenants sees those two, in `events` and in the table behind it.
        let pair = connect(&server.url("pair", PAIR_PW)).await.unwrap();
        for table in ["events", "lake_events"] {
            let seen = simple(&pair, &format!("SELECT DISTINCT tenant_id FROM {table} ORDER BY 1")).await;
            assert_eq!(seen, vec![vec![Some(a.clone())], vec![Some(b.clone())]], "{table}");
        }
        let want = query_one(lake, &[], &format!("SELECT count(*) FROM key_inventory WHERE tenant_id IN ('{a}', '{b}')"));
        let got = simple(&pair, "SELECT count(*) FROM key_inventory").await;
        assert_eq!(got[0][0].as_deref(), Some(want.as_str()));
        // A fourth connection is one too many (--max-connections 3).
        let Err(e) = connect(&server.url("admin", ADMIN_PW)).await else {
            panic!("a fourth connection was let in");
        };
        assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("53300"), "{e}");
        // The scoped user cannot reach around `events` either.
        // (Scoped to one tenant, the table is that tenant's directory alone.)
        let own = query_one(lake, &[], &format!("SELECT count(*) FROM events WHERE tenant_id = '{a}'"));
        let seen = simple(&scoped, "SELECT count(*) FROM lake_events").await;
        assert_eq!(seen[0][0].as_deref(), Some(own.as_str()));
        // The harmless SETs clients send at startup pass.
        for sql in ["SET application_name = 'grafana'", "SET extra_float_digits = 3", "SET TimeZone = 'UTC'", "SET statement_timeout = 0"] {
            scoped.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    });
    // `users remove` and `users add` take effect for the next connection.
    let removed = bin()
        .args(["users", "remove", "scoped", "--users"])
        .arg(&users)
        .output()
        .unwrap();
    assert_success(&removed);
    let mut cmd = bin();
    cmd.args(["users", "add", "late", "--tenant", b, "--users"])
        .arg(&users);
    assert_success(&with_stdin(&mut cmd, "late-pass-4\n"));
    rt().block_on(async {
        let Err(e) = connect(&server.url("scoped", SCOPED_PW)).await else {
            panic!("a removed user was let in");
        };
        assert_eq!(
            e.as_db_error().map(|d| d.code().code()),
            Some("28P01"),
            "{e}"
        );
        let late = connect(&server.url("late", "late-pass-4")).await.unwrap();
        let seen = simple(&late, "SELECT DISTINCT tenant_id FROM events").await;
        assert_eq!(seen, vec![vec![Some(b.clone())]]);
    });
    let log = server.logged();
    let text = log.join("\n");
    assert!(text.contains("user=scoped"), "{text}");
    assert!(text.contains("rows="), "{text}");
    assert!(!text.contains(SCOPED_PW) && !text.contains(ADMIN_PW));
}

#[test]
fn psql_connects_with_verify_full_and_lists_the_views() {
    let lake = sample_lake();
    let tls = crate::fetch::tls();
    let dir = tempfile::tempdir().unwrap();
    let tenants = tenants_of(lake);
    let users = users_file(dir.path(), &tenants[0]);
    let server = Server::start(
        lake,
        &[
            "--users",
            users.to_str().unwrap(),
            "--tls-cert",
            tls.join("server.pem").to_str().unwrap(),
            "--tls-key",
            tls.join("server.key").to_str().unwrap(),
        ],
    );
    let psql = |extra: &[&str], pw: &str| {
        Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user=admin dbname=auditlake sslmode=verify-full sslrootcert={}",
                server.port,
                tls.join("ca.pem").display()
            ))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(extra)
            .env("PGPASSWORD", pw)
            .env("PGCONNECT_TIMEOUT", "20")
            .output()
            .expect("psql (.ci/run installs postgresql-client)")
    };
    let out = psql(
        &["-c", "SELECT count(*) FROM events", "-c", "\\dv"],
        ADMIN_PW,
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = query_one(lake, &[], "SELECT count(*) FROM events");
    assert_eq!(text.lines().next(), Some(want.as_str()), "{text}");
    for view in [
        "|events|view",
        "|failed_logins|view",
        "|ocsf_authentication|view",
    ] {
        assert!(text.contains(view), "{view} not listed: {text}");
    }
    let ssl = psql(&["-c", "SELECT 1"], ADMIN_PW);
    assert!(ssl.status.success());
    // With a certificate, a client that does not ask for TLS is turned away.
    let plain = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=admin dbname=auditlake sslmode=disable",
            server.port
        ))
        .args(["-X", "-c", "SELECT 1"])
        .env("PGPASSWORD", ADMIN_PW)
        .output()
        .unwrap();
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("TLS connections only"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let wrong = psql(&["-c", "SELECT 1"], "wrong-password");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"));
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log:#?}");
}

#[test]
fn serve_refuses_to_start_unsafely() {
    let lake = sample_lake();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = bin()
            .arg("serve")
            .arg("--lake")
            .arg(lake)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // A certificate that does not load: one line naming it, exit 2, nothing listens.
    let (code, err) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        bad.to_str().unwrap(),
        "--tls-key",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("bad.pem") && !err.contains("listening"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Off loopback without users, or without TLS: refused before listening.
    let (code, err) = run(&["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("without a users file"), "{err}");
    let users = users_file(dir.path(), "t");
    let (code, err) = run(&["--listen", "0.0.0.0:0", "--users", users.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("without TLS") && err.contains("--insecure-plaintext"),
        "{err}"
    );
    // A users file that is named but missing is an error, not "no users".
    let (code, err) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--users",
        dir.path().join("none.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("none.toml"), "{err}");
}

#[test]
fn sigterm_lets_a_running_statement_finish() {
    let lake = sample_lake();
    let server = Server::start(lake, &[]);
    let want = vec![vec![Some(query_one(
        lake,
        &[],
        "SELECT count(*) FROM events a JOIN events b ON a.tenant_id = b.tenant_id",
    ))]];
    let url = server.url("analyst", "");
    let pid = server.child.id();
    let answer = std::thread::spawn(move || {
        rt().block_on(async {
            let client = connect(&url).await.unwrap();
            simple(
                &client,
                "SELECT count(*) FROM events a JOIN events b ON a.tenant_id = b.tenant_id",
            )
            .await
        })
    });
    // Once the statement is running (the server logs its session), ask it to stop.
    let mut waited = 0;
    while !server.logged().iter().any(|l| l.contains("session opened")) {
        std::thread::sleep(std::time::Duration::from_millis(20));
        waited += 1;
        assert!(waited < 6000, "no session opened");
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert_eq!(answer.join().unwrap(), want);
    let (code, log) = server.stop();
    assert_eq!(code, Some(0), "{log:#?}");
    // It did wait: the statement was still running when the signal came.
    let log = log.join("\n");
    assert!(log.contains("waiting for running statements"), "{log}");
    assert!(log.contains("shut down"), "{log}");
}
