//! `--cluster`: the binary's queries, views and reports on a real Ballista cluster, a
//! scheduler and two executors started here from the stock crates' library entry points
//! (gRPC and Arrow Flight on free loopback ports), against the same lake read locally.
//!
//! Part of every `cargo test` (the scheduler and executor crates are dev-dependencies);
//! the S3 one (`cluster::remote::…`, ignored: it needs moto_server) runs in `.ci/run`
//! with the object-store suite.

use std::net::TcpStream;

use crate::common::free_port;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ballista_core::object_store::{
    runtime_env_with_s3_support, session_config_with_s3_support, session_state_with_s3_support,
};
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::prelude::SessionConfig;

use crate::common::*;

/// A scheduler and two executors on loopback, on a runtime of their own that lives as
/// long as the test process.
pub struct TestCluster {
    scheduler_port: u16,
}

impl TestCluster {
    /// The stock setup (the S3-capable object-store registry of the stock binaries);
    /// `s3` presets its settings (`s3.endpoint`, ...) as an operator would give them.
    pub fn start(s3: &[(&str, String)]) -> TestCluster {
        let s3: Vec<(String, String)> =
            s3.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let producer = Arc::new(move || {
            let mut c = session_config_with_s3_support();
            for (k, v) in &s3 {
                c.options_mut().set(k, v).expect("an S3 option");
            }
            c
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(32 << 20)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let port = free_port();
                let config = SchedulerConfig::default()
                    .with_hostname("127.0.0.1")
                    .with_port(port)
                    .with_override_config_producer(producer.clone())
                    .with_override_session_builder(Arc::new(session_state_with_s3_support));
                let cluster = BallistaCluster::new_from_config(&config).await.unwrap();
                let addr = ([127, 0, 0, 1], port).into();
                tokio::spawn(start_server(cluster, addr, Arc::new(config)));
                wait_for(port).await;
                let mut work_dirs = Vec::new();
                for _ in 0..2 {
                    let dir = tempfile::tempdir().unwrap();
                    let (flight, grpc) = (free_port(), free_port());
                    let config = ExecutorProcessConfig {
                        bind_host: "127.0.0.1".into(),
                        external_host: Some("127.0.0.1".into()),
                        port: flight,
                        grpc_port: grpc,
                        scheduler_host: "127.0.0.1".into(),
                        scheduler_port: port,
                        vcores: 2,
                        work_dir: Some(dir.path().to_string_lossy().into_owned()),
                        executor_heartbeat_interval_seconds: 1,
                        override_config_producer: Some(producer.clone()),
                        override_runtime_producer: Some(Arc::new(|c: &SessionConfig| {
                            runtime_env_with_s3_support(c)
                        })),
                        ..Default::default()
                    };
                    work_dirs.push(dir);
                    tokio::spawn(start_executor_process(Arc::new(config)));
                    wait_for(flight).await;
                    wait_for(grpc).await;
                }
                // (A job that comes before the executors have registered waits for them.)
                tx.send(port).unwrap();
                // Runs until the test process ends.
                std::future::pending::<()>().await;
                drop(work_dirs);
            });
        });
        let scheduler_port = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the test cluster started");
        TestCluster { scheduler_port }
    }

    pub fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.scheduler_port)
    }
}

/// Waits until a port on loopback accepts connections.
async fn wait_for(port: u16) {
    for _ in 0..1200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// The cluster the local-lake tests share.
fn shared() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| TestCluster::start(&[]))
}

/// The sample year, converted into a temp lake once for every test here.
fn sample_lake() -> &'static Path {
    static LAKE: OnceLock<tempfile::TempDir> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = convert(dir.path(), &sample_files(), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        dir
    })
    .path()
}

/// `query --format csv` of `sql`: the header, then the rows sorted (row order is not
/// part of a result without ORDER BY).
fn csv(cmd: Command, lake: &str, cluster: Option<&str>, sql: &str) -> (String, Vec<String>) {
    csv_with(cmd, lake, cluster, &[], sql)
}

fn csv_with(
    mut cmd: Command,
    lake: &str,
    cluster: Option<&str>,
    extra: &[&str],
    sql: &str,
) -> (String, Vec<String>) {
    cmd.args(["query", "--format", "csv", "--lake", lake])
        .args(extra);
    if let Some(url) = cluster {
        cmd.args(["--cluster", url]);
    }
    let out = cmd.arg(sql).output().unwrap();
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap_or_default();
    let mut rows: Vec<String> = lines.collect();
    rows.sort();
    (header, rows)
}

/// Every table and view of a session over `lake`, from its information schema.
fn relations(lake: &str) -> Vec<String> {
    let (_, names) = csv(
        bin(),
        lake,
        None,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY table_name",
    );
    names
}

/// Asserts that `sql` gives the same rows on the cluster as locally, and returns them.
fn same_rows(lake: &str, cluster: &str, sql: &str) -> Vec<String> {
    let local = csv(bin(), lake, None, sql);
    let remote = csv(bin(), lake, Some(cluster), sql);
    assert_eq!(remote.0, local.0, "{sql}: columns");
    assert_eq!(
        remote.1.len(),
        local.1.len(),
        "{sql}: {} rows on the cluster, {} locally",
        remote.1.len(),
        local.1.len()
    );
    assert_eq!(remote.1, local.1, "{sql}: rows");
    local.1
}

#[test]
fn every_view_and_table_on_the_cluster_returns_the_local_rows() {
    let lake = sample_lake().to_str().unwrap();
    let cluster = shared().url();
    let names = relations(lake);
    // The standard views are all there (and so compared below).
    for (name, _) in auditlake::query::BUILTIN_SQL {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    assert!(names.iter().any(|n| n == "events"));
    for name in &names {
        same_rows(lake, &cluster, &format!("SELECT * FROM {name}"));
    }
    let total = same_rows(lake, &cluster, "SELECT count(*) AS n FROM events");
    assert_eq!(total, vec![lake_rows(sample_lake()).len().to_string()]);
}

/// The logical plan `EXPLAIN` gives for `sql`, locally or on the cluster.
fn logical_plan(lake: &str, cluster: Option<&str>, sql: &str) -> String {
    let mut cmd = bin();
    cmd.args(["query", "--format", "json", "--lake", lake]);
    if let Some(url) = cluster {
        cmd.args(["--cluster", url]);
    }
    let out = cmd.arg(format!("EXPLAIN {sql}")).output().unwrap();
    assert_success(&out);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["plan_type"] == "logical_plan")
        .and_then(|r| r["plan"].as_str())
        .unwrap_or_else(|| panic!("{sql}: no logical plan in {rows}"))
        .to_string()
}

#[test]
fn a_cluster_session_plans_the_views_once_per_tenant_as_a_local_one_does() {
    let lake = sample_lake().to_str().unwrap();
    let cluster = shared().url();
    let tenants: std::collections::BTreeSet<String> = lake_rows(sample_lake())
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(tenants.len() > 1, "{tenants:?}");
    for name in [
        "key_lifecycle",
        "key_first_use",
        "daily_activity",
        "actions_by_role",
        "new_client_ips",
    ] {
        let sql = format!("SELECT * FROM {name}");
        let local = logical_plan(lake, None, &sql);
        // The cluster's plan is the one it was handed: each scan as the lake's listing
        // with the manifest's partitions, the branch for later tenants as no rows.
        let remote = logical_plan(lake, Some(&cluster), &sql);
        for (plan, at) in [(&local, "locally"), (&remote, "on the cluster")] {
            assert!(plan.contains("Union"), "{name} {at}: no union in\n{plan}");
            for t in &tenants {
                assert!(
                    plan.contains(&format!("Utf8(\"{t}\") AS tenant_id")),
                    "{name} {at}: no branch with tenant {t} as a literal in\n{plan}"
                );
            }
        }
        assert!(
            local.contains("tenant_id NOT IN") || local.contains("tenant_id != "),
            "{name}: no branch for later tenants in\n{local}"
        );
        assert!(
            remote.contains("EmptyRelation"),
            "{name}: the later tenants' branch was sent as a scan"
        );
        same_rows(lake, &cluster, &sql);
    }
}

#[test]
fn filters_on_the_partition_columns_and_a_tenant_scope_give_the_local_rows() {
    let lake = sample_lake().to_str().unwrap();
    let cluster = shared().url();
    let rows = lake_rows(sample_lake());
    let (tenant, day) = (&rows[0][0], &rows[0][1]);
    let n = same_rows(
        lake,
        &cluster,
        &format!(
            "SELECT count(*) AS n FROM events WHERE tenant_id = '{tenant}' AND day = DATE '{day}'"
        ),
    );
    let expected = rows
        .iter()
        .filter(|r| &r[0] == tenant && &r[1] == day)
        .count();
    assert_eq!(n, vec![expected.to_string()]);
    same_rows(
        lake,
        &cluster,
        &format!(
            "SELECT day, count(*) AS n, count(DISTINCT actor_id) AS actors FROM events \
             WHERE tenant_id = '{tenant}' AND day >= DATE '{day}' GROUP BY day"
        ),
    );
    // A tenant-scoped session: only that tenant's directory, on the cluster too.
    let sql = "SELECT tenant_id, count(*) AS n FROM events GROUP BY tenant_id";
    let scope = ["--tenant", tenant.as_str()];
    let local_rows = csv_with(bin(), lake, None, &scope, sql);
    let remote_rows = csv_with(bin(), lake, Some(&cluster), &scope, sql);
    assert_eq!(remote_rows, local_rows);
    let expected = rows.iter().filter(|r| &r[0] == tenant).count();
    assert_eq!(local_rows.1, vec![format!("{tenant},{expected}")]);
}

#[test]
fn a_cluster_session_is_planned_from_the_manifest_and_reads_no_file_it_rules_out() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    assert_eq!(convert(lake, &sample_files(), &[]).code, 0);
    let lake_s = lake.to_str().unwrap();
    let cluster = shared().url();
    let rows = lake_rows(lake);
    let (day, other) = (&rows[0][1], &rows[rows.len() - 1][1]);
    assert_ne!(day, other);
    // `time` is no partition column: only the manifest's time ranges rule a file out
    // before its footer is read.
    let sql = format!(
        "SELECT count(*) AS n FROM events \
         WHERE time >= TIMESTAMP '{day}T00:00:00Z' AND time < TIMESTAMP '{day}T00:00:00Z' + INTERVAL '1' DAY"
    );
    let expected = rows.iter().filter(|r| &r[1] == day).count();
    assert_eq!(
        same_rows(lake_s, &cluster, &sql),
        vec![expected.to_string()]
    );
    let ouid = rows
        .iter()
        .map(|r| r[col("ouid")].clone())
        .filter(|o| !o.is_empty() && o != "∅")
        .min()
        .unwrap();
    let lookup = format!("SELECT * FROM events WHERE ouid = '{ouid}'");
    assert!(!same_rows(lake_s, &cluster, &lookup).is_empty());
    // An input the manifest selects no file for, inside a join: handed over as no rows
    // of its columns (Ballista 55 waits forever on a scan of no file).
    let joined = format!(
        "SELECT a.day, count(*) AS n, count(b.trace_id) AS matched FROM events a \
         LEFT JOIN (SELECT * FROM events WHERE day < DATE '2000-01-01') b ON a.trace_id = b.trace_id \
         WHERE a.day = DATE '{day}' GROUP BY a.day"
    );
    assert_eq!(
        same_rows(lake_s, &cluster, &joined),
        vec![format!("{day},{expected},0")]
    );
    // A file of another day turned to garbage (its size kept): the session planned from
    // the manifest never opens it; one planned by listing reads its footer and fails.
    let part = std::fs::read_dir(lake.join("events"))
        .unwrap()
        .flat_map(|t| std::fs::read_dir(t.unwrap().path().join(format!("day={other}"))))
        .flatten()
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    let len = std::fs::metadata(&part).unwrap().len() as usize;
    std::fs::write(&part, vec![b'x'; len]).unwrap();
    let there = csv(bin(), lake_s, Some(&cluster), &sql);
    assert_eq!(there.1, vec![expected.to_string()]);
    let mut listing = bin();
    listing.env("AUDITLAKE_PLAN", "listing");
    listing.args(["query", "--lake", lake_s, "--cluster", &cluster, &sql]);
    let out = listing.output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "the listing read the garbage file"
    );
}

/// A report pack as JSON, its generation time taken out.
fn report_json(mut cmd: Command, lake: &str, cluster: Option<&str>) -> serde_json::Value {
    cmd.args(["report", "--format", "json", "--lake", lake]);
    if let Some(url) = cluster {
        cmd.args(["--cluster", url]);
    }
    let out = cmd.output().unwrap();
    assert_success(&out);
    let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["coverage"]["generated_at"] = serde_json::Value::Null;
    doc
}

#[test]
fn every_report_and_finding_on_the_cluster_is_the_local_one() {
    let lake = sample_lake().to_str().unwrap();
    let cluster = shared().url();
    let local = report_json(bin(), lake, None);
    let remote = report_json(bin(), lake, Some(&cluster));
    let reports = local["reports"].as_array().expect("reports");
    assert!(reports.len() >= 8, "{}", local["reports"]);
    for (l, r) in reports.iter().zip(remote["reports"].as_array().unwrap()) {
        assert_eq!(r, l, "report {}", l["name"]);
    }
    assert_eq!(remote["findings"], local["findings"]);
    assert_eq!(remote, local);
}

/// A lake in S3 (moto on loopback): the executors read it with the stock S3 store.
mod remote {
    use super::*;
    use crate::remote::{s3_bin, s3_convert, s3_store, upload, Moto};

    #[test]
    #[ignore = "needs moto_server: run by .ci/run"]
    fn a_lake_in_s3_reads_on_the_cluster_as_the_local_lake() {
        // One month of the three sample tenants: every file an executor opens is a few
        // requests to moto, and the whole year (1,400 files) made this the slowest test
        // of CI (162 s alone); what it shows does not depend on the lake's length.
        let month = sample_months(&["2025-03"]);
        assert_eq!(month.len(), 3);
        let local_lake = tempfile::tempdir().unwrap();
        let run = convert(local_lake.path(), &month, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let moto = Moto::start();
        let endpoint = moto.endpoint();
        upload(&s3_store(&endpoint, "s3://exports/in"), &month);
        let lake = "s3://lake/year";
        let run = s3_convert(&endpoint, &["s3://exports/in/"], lake);
        assert_eq!(run.code, 0, "{}", run.stderr);
        // The executors' S3 settings, as an operator gives them (the process environment
        // is shared by the tests running in parallel, so not AWS_*).
        let cluster = TestCluster::start(&[
            ("s3.endpoint", endpoint.clone()),
            ("s3.allow_http", "true".into()),
            ("s3.access_key_id", "test".into()),
            ("s3.secret_access_key", "test".into()),
            ("s3.region", "us-east-1".into()),
        ]);
        let local = local_lake.path().to_str().unwrap();
        for sql in [
            "SELECT count(*) AS n FROM events",
            "SELECT * FROM daily_activity",
            "SELECT * FROM key_lifecycle",
            "SELECT * FROM failed_logins",
        ] {
            let here = csv(bin(), local, None, sql);
            assert!(!here.1.is_empty(), "{sql}: no rows to compare");
            let there = csv(s3_bin(&endpoint), lake, Some(&cluster.url()), sql);
            assert_eq!(there, here, "{sql}");
        }
        let here = report_json(bin(), local, None);
        let there = report_json(s3_bin(&endpoint), lake, Some(&cluster.url()));
        assert_eq!(there["reports"], here["reports"]);
        assert_eq!(there["findings"], here["findings"]);
    }
}

#[test]
fn a_cluster_address_that_is_not_df_host_port_is_one_line_and_exit_2() {
    let lake = sample_lake().to_str().unwrap();
    for url in ["http://127.0.0.1:50050", "df://", "127.0.0.1:50050"] {
        let out = bin()
            .args(["query", "--lake", lake, "--cluster", url, "SELECT 1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("auditlake: --cluster {url:?}: "))
                && err.ends_with("(df://HOST:PORT)\n")
                && err.lines().count() == 1,
            "{url}: {err}"
        );
    }
}
