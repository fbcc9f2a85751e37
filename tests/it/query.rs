//! The SQL layer: every view against an independent computation over the lake's
//! rows, partition pruning, tenant scope, output formats, errors, the REPL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use auditlake::time::parse_time;
use serde_json::Value;

use crate::common::*;

/// The sample year converted once for all query tests.
pub fn sample_lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sample-lake-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = convert(&dir, &sample_files(), &[]);
        assert_eq!(run.code, 0);
        dir
    })
}

/// The sample year and a generated March and April 2025 of every other vendor (a
/// second CloudHSM cluster, Azure Key Vault, Azure Managed HSM, Google Cloud KMS,
/// HashiCorp Vault) in one lake, converted once: the views and reports are checked
/// over it against the independent model.
pub fn mixed_lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("mixed-lake-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let lake = root.join("lake");
        let mut inputs = sample_files();
        inputs.push(testdata("sample/aws-cloudhsm"));
        let mut vault = None;
        for (vendor, events) in [
            ("aws-cloudhsm", "500"),
            ("azure-keyvault", "1500"),
            ("azure-mhsm", "800"),
            ("gcp-kms", "1500"),
            ("hashicorp-vault", "1500"),
        ] {
            let out = root.join(vendor);
            let done = bin()
                .args([
                    "generate",
                    "--vendor",
                    vendor,
                    "--events",
                    events,
                    "--tenants",
                    "1",
                ])
                .args([
                    "--start", "2025-03", "--months", "2", "--seed", "29", "-q", "--output",
                ])
                .arg(&out)
                .output()
                .unwrap();
            assert!(
                done.status.success(),
                "{}",
                String::from_utf8_lossy(&done.stderr)
            );
            if vendor == "hashicorp-vault" {
                vault = Some(out);
            } else {
                inputs.push(out);
            }
        }
        let run = convert(&lake, &inputs, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let run = convert(&lake, &[vault.unwrap()], &["--tenant", "vault-prod"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let vendors = query(
            &lake,
            &[],
            "SELECT DISTINCT vendor FROM events ORDER BY vendor",
        );
        assert_eq!(vendors.len(), 6, "{vendors:?}");
        lake
    })
}

/// Runs `query --format ndjson` and parses the lines.
pub fn query(lake: &Path, extra: &[&str], sql: &str) -> Vec<Value> {
    let out = bin()
        .args(["query", "--format", "ndjson", "--lake"])
        .arg(lake)
        .args(extra)
        .arg(sql)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events() -> Vec<Ev> {
    events_of(mixed_lake())
}

fn t(v: &Value) -> Option<i64> {
    v.as_str()
        .map(|s| parse_time(s).unwrap_or_else(|| panic!("time {s}")))
}
fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}
fn n(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

/// The independent models' rows, keyed as each view groups them.
type FailedLogins = BTreeMap<(String, Option<String>), (u64, BTreeSet<String>, i64, i64)>;
type ClientIps = BTreeMap<(String, Option<String>, Option<String>), (i64, i64, u64)>;
type Daily = BTreeMap<
    (String, String),
    (
        u64,
        u64,
        BTreeSet<String>,
        BTreeSet<String>,
        BTreeSet<String>,
    ),
>;

#[test]
fn failed_logins_matches_an_independent_count() {
    let mut want: FailedLogins = BTreeMap::new();
    for e in events()
        .iter()
        .filter(|e| category(&e.action) == "auth" && e.outcome == "failure")
    {
        let w = want.entry((e.tenant.clone(), e.ip.clone())).or_insert((
            0,
            BTreeSet::new(),
            i64::MAX,
            i64::MIN,
        ));
        w.0 += 1;
        w.1.extend(e.actor.clone());
        w.2 = w.2.min(e.time);
        w.3 = w.3.max(e.time);
    }
    let want: BTreeSet<_> = want
        .into_iter()
        .map(|(k, v)| (k.0, k.1, v.0, v.1.len() as u64, v.2, v.3))
        .collect();
    let got: BTreeSet<_> = query(mixed_lake(), &[], "SELECT * FROM failed_logins")
        .iter()
        .map(|r| {
            (
                s(&r["tenant_id"]).unwrap(),
                s(&r["client_ip"]),
                n(&r["failures"]),
                n(&r["actors"]),
                t(&r["first_failure"]).unwrap(),
                t(&r["last_failure"]).unwrap(),
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

#[test]
fn login_bursts_matches_an_independent_count() {
    let mut buckets: BTreeMap<(String, Option<String>, i64), u64> = BTreeMap::new();
    for e in events()
        .iter()
        .filter(|e| category(&e.action) == "auth" && e.outcome == "failure")
    {
        *buckets
            .entry((
                e.tenant.clone(),
                e.ip.clone(),
                e.time - e.time.rem_euclid(600_000_000),
            ))
            .or_default() += 1;
    }
    let want: BTreeSet<_> = buckets
        .into_iter()
        .filter(|(_, c)| *c >= 10)
        .map(|(k, c)| (k.0, k.1, k.2, c))
        .collect();
    let got: BTreeSet<_> = query(mixed_lake(), &[], "SELECT * FROM login_bursts")
        .iter()
        .map(|r| {
            (
                s(&r["tenant_id"]).unwrap(),
                s(&r["client_ip"]),
                t(&r["window_start"]).unwrap(),
                n(&r["failures"]),
            )
        })
        .collect();
    assert!(want.len() >= 3, "the sample has bursts");
    assert_eq!(got, want);
}

#[test]
fn key_first_use_matches_an_independent_computation() {
    let evs = events();
    let mut first: BTreeMap<(String, String), (&Ev, u64)> = BTreeMap::new();
    let mut created: BTreeMap<(String, String), i64> = BTreeMap::new();
    for e in &evs {
        let Some(o) = &e.ouid else { continue };
        let key = (e.tenant.clone(), o.clone());
        if e.outcome != "success" {
            continue;
        }
        match category(&e.action) {
            "key_use" => {
                let f = first.entry(key).or_insert((e, 0));
                f.1 += 1;
                if (e.time, &e.trace) < (f.0.time, &f.0.trace) {
                    f.0 = e;
                }
            }
            "key_create" => {
                let c = created.entry(key).or_insert(e.time);
                *c = (*c).min(e.time);
            }
            _ => {}
        }
    }
    let want: BTreeSet<_> = first
        .iter()
        .map(|(k, (e, uses))| {
            (
                k.0.clone(),
                k.1.clone(),
                e.time,
                e.action.clone(),
                e.actor.clone(),
                e.ip.clone(),
                e.role.clone(),
                created.get(k).copied(),
                *uses,
            )
        })
        .collect();
    let got: BTreeSet<_> = query(mixed_lake(), &[], "SELECT * FROM key_first_use")
        .iter()
        .map(|r| {
            (
                s(&r["tenant_id"]).unwrap(),
                s(&r["ouid"]).unwrap(),
                t(&r["first_use"]).unwrap(),
                s(&r["action"]).unwrap(),
                s(&r["actor_id"]),
                s(&r["client_ip"]),
                s(&r["role"]),
                t(&r["created_at"]),
                n(&r["uses"]),
            )
        })
        .collect();
    assert!(
        want.iter().any(|w| w.7.is_some_and(|c| c < w.2)),
        "keys created and first used later"
    );
    assert!(
        want.iter().any(|w| w.7.is_none()),
        "keys used with no creation seen"
    );
    assert_eq!(got, want);
}

/// The window of key_first_use sorts strings copied out of the join, not views into the
/// pages the events were read from: the sort counts what its batches point at against
/// its share of the memory pool, and over a large year the views made it fail.
#[test]
fn key_first_use_sorts_copied_strings_not_views_into_the_scanned_pages() {
    for scope in [
        &[][..],
        &["--tenant", "35f59976-ca06-46fb-a04e-39c938f74f5b"][..],
    ] {
        let out = bin()
            .args(["query", "--format", "csv", "--lake"])
            .arg(mixed_lake())
            .args(scope)
            .arg("EXPLAIN SELECT * FROM key_first_use")
            .output()
            .unwrap();
        assert_success(&out);
        let plan = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = plan.lines().collect();
        let sorts: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains("SortExec: expr=[") && lines[i].contains("trace_id@"))
            .collect();
        assert!(!sorts.is_empty(), "{scope:?}: the window's sort: {plan}");
        for i in sorts {
            let below = lines.get(i + 1).copied().unwrap_or_default();
            assert!(
                below.contains("ProjectionExec")
                    && below.contains("AS Utf8) as trace_id")
                    && below.contains("AS Utf8) as action"),
                "{scope:?}: the sort reads copied strings: {below}\n{plan}"
            );
        }
    }
}

/// Two first uses of a key in the same microsecond: the view takes the one with the
/// smaller trace ID, whatever order the export has them in, and counts every use.
#[test]
fn key_first_use_breaks_a_tie_on_time_by_the_smaller_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |time: &str, trace: &str, action: &str, actor: &str, ip: &str| {
        format!(
            r#"{{"time": "2025-05-06 {time} UTC", "source": "thales/cloudhsm/9000001", "resourceID": "svc", "actorID": "{actor}", "tenantID": "t-tie", "action": "{action}", "status": "LUNA_RET_OK", "traceID": "{trace}", "meta": {{"clientip": "{ip}", "hsmid": "150001", "partid": "9000001", "role": "CU", "ouid": "00aa01"}}}}"#
        )
    };
    let records = [
        rec(
            "09:00:00.000001",
            "tie-0",
            "LUNA_GENERATE_KEY",
            "creator",
            "10.0.0.9",
        ),
        rec("10:00:00.000002", "tie-3", "LUNA_SIGN", "later", "10.0.0.3"),
        rec(
            "10:00:00.000001",
            "tie-2",
            "LUNA_ENCRYPT",
            "second",
            "10.0.0.2",
        ),
        rec(
            "10:00:00.000001",
            "tie-1",
            "LUNA_DECRYPT",
            "first",
            "10.0.0.1",
        ),
    ];
    let src = dir.path().join("tie.json");
    std::fs::write(&src, format!("[\n{}\n]\n", records.join(",\n"))).unwrap();
    let lake = dir.path().join("lake");
    assert_eq!(convert(&lake, &[src], &[]).code, 0);
    let rows = query(&lake, &[], "SELECT * FROM key_first_use");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(s(&r["ouid"]).as_deref(), Some("00aa01"));
    assert_eq!(
        t(&r["first_use"]),
        Some(parse_time("2025-05-06 10:00:00.000001 UTC").unwrap())
    );
    assert_eq!(s(&r["action"]).as_deref(), Some("LUNA_DECRYPT"));
    assert_eq!(s(&r["actor_id"]).as_deref(), Some("first"));
    assert_eq!(s(&r["client_ip"]).as_deref(), Some("10.0.0.1"));
    assert_eq!(
        t(&r["created_at"]),
        Some(parse_time("2025-05-06 09:00:00.000001 UTC").unwrap())
    );
    assert_eq!(n(&r["uses"]), 3);
}

#[test]
fn key_lifecycle_matches_an_independent_computation() {
    #[derive(Default, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct L {
        created: Option<i64>,
        first: Option<i64>,
        last: Option<i64>,
        uses: u64,
        failed: u64,
        destroyed: Option<i64>,
    }
    fn min(a: &mut Option<i64>, t: i64) {
        *a = Some(a.map_or(t, |x| x.min(t)));
    }
    let mut want: BTreeMap<(String, String), L> = BTreeMap::new();
    for e in events() {
        let Some(o) = e.ouid.clone() else { continue };
        let (c, ok) = (category(&e.action), e.outcome == "success");
        if !["key_create", "key_use", "key_destroy"].contains(&c) {
            continue;
        }
        let l = want.entry((e.tenant.clone(), o)).or_default();
        match (c, ok) {
            ("key_create", true) => min(&mut l.created, e.time),
            ("key_use", true) => {
                min(&mut l.first, e.time);
                l.last = Some(l.last.map_or(e.time, |x| x.max(e.time)));
                l.uses += 1;
            }
            ("key_use", false) => l.failed += 1,
            ("key_destroy", true) => min(&mut l.destroyed, e.time),
            _ => {}
        }
    }
    let got: BTreeMap<(String, String), L> =
        query(mixed_lake(), &[], "SELECT * FROM key_lifecycle")
            .iter()
            .map(|r| {
                let k = (s(&r["tenant_id"]).unwrap(), s(&r["ouid"]).unwrap());
                (
                    k,
                    L {
                        created: t(&r["created_at"]),
                        first: t(&r["first_use"]),
                        last: t(&r["last_use"]),
                        uses: n(&r["uses"]),
                        failed: n(&r["failed_uses"]),
                        destroyed: t(&r["destroyed_at"]),
                    },
                )
            })
            .collect();
    assert!(want.values().any(|l| l.destroyed.is_some()) && want.values().any(|l| l.failed > 0));
    assert_eq!(got, want);
}

#[test]
fn actions_by_role_and_new_client_ips_match_independent_counts() {
    let evs = events();
    let mut roles: BTreeMap<(String, Option<String>, String, String), u64> = BTreeMap::new();
    let mut ips: ClientIps = BTreeMap::new();
    for e in &evs {
        *roles
            .entry((
                e.tenant.clone(),
                e.role.clone(),
                e.action.clone(),
                e.outcome.clone(),
            ))
            .or_default() += 1;
        let w = ips
            .entry((e.tenant.clone(), e.actor.clone(), e.ip.clone()))
            .or_insert((i64::MAX, i64::MIN, 0));
        w.0 = w.0.min(e.time);
        w.1 = w.1.max(e.time);
        w.2 += 1;
    }
    let got: BTreeMap<_, _> = query(mixed_lake(), &[], "SELECT * FROM actions_by_role")
        .iter()
        .map(|r| {
            (
                (
                    s(&r["tenant_id"]).unwrap(),
                    s(&r["role"]),
                    s(&r["action"]).unwrap(),
                    s(&r["outcome"]).unwrap(),
                ),
                n(&r["events"]),
            )
        })
        .collect();
    assert_eq!(got, roles);
    let got: BTreeMap<_, _> = query(mixed_lake(), &[], "SELECT * FROM new_client_ips")
        .iter()
        .map(|r| {
            (
                (
                    s(&r["tenant_id"]).unwrap(),
                    s(&r["actor_id"]),
                    s(&r["client_ip"]),
                ),
                (
                    t(&r["first_seen"]).unwrap(),
                    t(&r["last_seen"]).unwrap(),
                    n(&r["events"]),
                ),
            )
        })
        .collect();
    assert_eq!(got, ips);
}

#[test]
fn off_hours_privileged_and_daily_match_independent_counts() {
    let evs = events();
    let day_us = 86_400_000_000i64;
    let mut off: BTreeMap<(String, String, Option<String>, Option<String>), u64> = BTreeMap::new();
    let mut daily: Daily = BTreeMap::new();
    let mut privileged = BTreeSet::new();
    for e in &evs {
        let hour = e.time.rem_euclid(day_us) / 3_600_000_000;
        let dow = (e.time.div_euclid(day_us) + 4).rem_euclid(7); // 1970-01-01 was a Thursday; 0 = Sunday
        if !(6..22).contains(&hour) || dow == 0 || dow == 6 {
            *off.entry((
                e.tenant.clone(),
                e.day.clone(),
                e.actor.clone(),
                e.ip.clone(),
            ))
            .or_default() += 1;
        }
        if [
            "key_destroy",
            "user_admin",
            "partition_admin",
            "replication",
        ]
        .contains(&category(&e.action))
        {
            privileged.insert((
                e.tenant.clone(),
                e.trace.clone(),
                category(&e.action).to_string(),
            ));
        }
        let d = daily.entry((e.tenant.clone(), e.day.clone())).or_default();
        d.0 += 1;
        d.1 += (e.outcome == "failure") as u64;
        d.2.extend(e.actor.clone());
        d.3.extend(e.ip.clone());
        if category(&e.action) == "key_use" && e.outcome == "success" {
            d.4.extend(e.ouid.clone());
        }
    }
    let got: BTreeMap<_, _> = query(mixed_lake(), &[], "SELECT * FROM off_hours_activity")
        .iter()
        .map(|r| {
            (
                (
                    s(&r["tenant_id"]).unwrap(),
                    s(&r["day"]).unwrap(),
                    s(&r["actor_id"]),
                    s(&r["client_ip"]),
                ),
                n(&r["events"]),
            )
        })
        .collect();
    assert_eq!(got, off);
    let got: BTreeSet<_> = query(
        mixed_lake(),
        &[],
        "SELECT tenant_id, trace_id, category FROM privileged_actions",
    )
    .iter()
    .map(|r| {
        (
            s(&r["tenant_id"]).unwrap(),
            s(&r["trace_id"]).unwrap(),
            s(&r["category"]).unwrap(),
        )
    })
    .collect();
    assert!(
        privileged.iter().any(|p| p.2 == "user_admin")
            && privileged.iter().any(|p| p.2 == "key_destroy")
    );
    assert_eq!(got, privileged);
    let want: BTreeMap<_, _> = daily
        .into_iter()
        .map(|(k, d)| {
            (
                k,
                (
                    d.0,
                    d.1,
                    d.2.len() as u64,
                    d.3.len() as u64,
                    d.4.len() as u64,
                ),
            )
        })
        .collect();
    let got: BTreeMap<_, _> = query(mixed_lake(), &[], "SELECT * FROM daily_activity")
        .iter()
        .map(|r| {
            (
                (s(&r["tenant_id"]).unwrap(), s(&r["day"]).unwrap()),
                (
                    n(&r["events"]),
                    n(&r["failures"]),
                    n(&r["actors"]),
                    n(&r["client_ips"]),
                    n(&r["keys_used"]),
                ),
            )
        })
        .collect();
    assert_eq!(got, want);
    // Each tenant's files (61 to 365 days) are grouped by the hash of their day, so each
    // tenant's days are aggregated in one stage (no repartition on day, no second stage);
    // without that grouping, the same rows.
    let plan = explain(mixed_lake(), &[], "SELECT * FROM daily_activity");
    assert!(
        plan.contains("mode=SinglePartitioned")
            && plan.contains("output_partitioning=Hash([day@")
            && !plan.contains("RepartitionExec: partitioning=Hash([day@"),
        "{plan}"
    );
    // Over a month, runs of days as before (hashed, a few days leave partitions uneven).
    let month = explain(
        mixed_lake(),
        &[],
        "SELECT * FROM daily_activity WHERE day BETWEEN DATE '2025-03-01' AND DATE '2025-03-31'",
    );
    assert!(
        month.contains("DataSourceExec") && !month.contains("output_partitioning=Hash("),
        "{month}"
    );
    let sql = "SELECT * FROM daily_activity ORDER BY tenant_id, day";
    let off = format!("SET datafusion.optimizer.preserve_file_partitions = 0; {sql}");
    assert_eq!(
        query(mixed_lake(), &[], &off),
        query(mixed_lake(), &[], sql)
    );
}

#[test]
fn action_catalog_holds_every_luna_action_of_the_seed_list() {
    let rows = query(
        sample_lake(),
        &[],
        "SELECT * FROM action_catalog WHERE vendor = 'dpod' AND action LIKE 'LUNA_%'",
    );
    assert_eq!(rows.len(), 45);
    for r in &rows {
        let a = r["action"].as_str().unwrap();
        assert_eq!(r["category"].as_str().unwrap(), category(a), "{a}");
        assert!(!r["description"].as_str().unwrap().is_empty());
    }
}

#[test]
fn action_catalog_of_every_vendor_has_the_documented_categories() {
    let rows = query(
        sample_lake(),
        &[],
        "SELECT vendor, count(*) AS n FROM action_catalog GROUP BY vendor ORDER BY vendor",
    );
    let per: BTreeMap<String, u64> = rows
        .iter()
        .map(|r| (s(&r["vendor"]).unwrap(), n(&r["n"])))
        .collect();
    for (vendor, at_least) in [
        ("aws-cloudhsm", 30),
        ("azure-keyvault", 35),
        ("azure-mhsm", 35),
        ("dpod", 48),
        ("gcp-kms", 25),
        ("hashicorp-vault", 20),
    ] {
        assert!(
            per.get(vendor).is_some_and(|n| *n >= at_least),
            "{vendor}: {per:?}"
        );
    }
    for r in query(sample_lake(), &[], "SELECT * FROM action_catalog") {
        let a = r["action"].as_str().unwrap();
        assert_eq!(r["category"].as_str().unwrap(), category(a), "{r}");
    }
}

#[test]
fn action_catalog_holds_one_row_per_vendor_and_action() {
    // events_categorized and privileged_actions join it on (vendor, action): a second row
    // for a pair would repeat that pair's events.
    let rows = query(
        sample_lake(),
        &[],
        "SELECT count(*) AS n, count(DISTINCT (vendor, action)) AS pairs FROM action_catalog",
    );
    assert_eq!(n(&rows[0]["n"]), n(&rows[0]["pairs"]), "{rows:?}");
}

#[test]
fn cdspaas_actions_in_words_are_categorised_and_success_is_their_success() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |t: &str, action: &str, status: &str, trace: &str| {
        format!(
            r#"{{"time":"2025-03-01 10:00:0{t} UTC","source":"thales/cdsp/ks-1","resourceID":"ks-1","actorID":"ana@example.com","tenantID":"t-cdsp","action":"{action}","status":"{status}","traceID":"{trace}","meta":{{"clientip":"192.0.2.7"}}}}"#
        )
    };
    let text = [
        rec("1", "Login", "success", "c1"),
        rec("2", "Login", "failure", "c2"),
        rec("3", "Create Key", "success", "c3"),
        rec("4", "Delete User", "success", "c4"),
    ]
    .join("\n");
    let f = dir.path().join("cdsp.ndjson");
    std::fs::write(&f, text).unwrap();
    let lake = dir.path().join("lake");
    assert_eq!(convert(&lake, &[f], &[]).code, 0);
    let rows = query(
        &lake,
        &[],
        "SELECT action, outcome, category FROM events_categorized ORDER BY time",
    );
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                s(&r["action"]).unwrap(),
                s(&r["outcome"]).unwrap(),
                s(&r["category"]).unwrap(),
            )
        })
        .collect();
    let want = [
        ("Login", "success", "auth"),
        ("Login", "failure", "auth"),
        ("Create Key", "success", "key_create"),
        ("Delete User", "success", "user_admin"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
    let failed = query(&lake, &[], "SELECT client_ip, failures FROM failed_logins");
    assert_eq!(
        failed,
        vec![serde_json::json!({"client_ip": "192.0.2.7", "failures": 1})]
    );
}

// ---- pruning, scope, formats, errors, REPL --------------------------------------------------

fn explain(lake: &Path, extra: &[&str], sql: &str) -> String {
    let out = bin()
        .args(["query", "--format", "csv", "--lake"])
        .arg(lake)
        .args(extra)
        .arg(format!("EXPLAIN {sql}"))
        .output()
        .unwrap();
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

fn tenants() -> Vec<String> {
    query(
        sample_lake(),
        &[],
        "SELECT DISTINCT tenant_id FROM events ORDER BY tenant_id",
    )
    .iter()
    .map(|r| s(&r["tenant_id"]).unwrap())
    .collect()
}

#[test]
fn filters_on_day_and_tenant_read_only_matching_partitions() {
    let t = &tenants()[0];
    let plan = explain(sample_lake(), &[], &format!("SELECT action, count(*) FROM events WHERE tenant_id = '{t}' AND day = DATE '2025-03-03' GROUP BY action"));
    let files: Vec<&str> = plan
        .split(['[', ']', ',', ' '])
        .filter(|w| w.contains(".parquet"))
        .collect();
    assert!(!files.is_empty(), "{plan}");
    assert!(
        files
            .iter()
            .all(|f| f.contains(&format!("tenant_id={t}/day=2025-03-03/"))),
        "{files:?}"
    );
    // Through a view that keeps tenant_id: only that tenant's files.
    let plan = explain(sample_lake(), &[], &format!("SELECT * FROM daily_activity WHERE tenant_id = '{t}' AND day BETWEEN DATE '2025-03-01' AND DATE '2025-03-31'"));
    let files: Vec<&str> = plan
        .split(['[', ']', ',', ' '])
        .filter(|w| w.contains(".parquet"))
        .collect();
    assert!(
        !files.is_empty()
            && files
                .iter()
                .all(|f| f.contains(&format!("tenant_id={t}/day=2025-03-"))),
        "{files:?}"
    );
}

#[test]
fn a_count_under_a_partition_filter_counts_only_its_files_rows() {
    // upper(..) is beyond the pruning predicate: the exact filter alone chooses the files,
    // and the row count DataFusion may answer count(*) from must be theirs.
    let t = &tenants()[0];
    let count = |sql: &str| query(sample_lake(), &[], sql)[0]["n"].as_i64().unwrap();
    let exact = count(&format!(
        "SELECT count(*) AS n FROM events WHERE upper(tenant_id) = upper('{t}')"
    ));
    // Counted per group, from the rows themselves.
    let rows = count(&format!(
        "SELECT n FROM (SELECT tenant_id, count(*) AS n FROM events GROUP BY tenant_id) \
         WHERE tenant_id = '{t}'"
    ));
    let all = count("SELECT count(*) AS n FROM events");
    assert!(exact > 0 && exact < all, "{exact} of {all}");
    assert_eq!(exact, rows);
}

#[test]
fn a_tenant_scoped_session_sees_only_that_tenant() {
    let ts = tenants();
    assert_eq!(ts.len(), 3);
    let t = &ts[1];
    for view in [
        "events",
        "failed_logins",
        "login_bursts",
        "key_first_use",
        "key_lifecycle",
        "actions_by_role",
        "new_client_ips",
        "off_hours_activity",
        "privileged_actions",
        "daily_activity",
    ] {
        let all = query(
            sample_lake(),
            &[],
            &format!("SELECT count(*) AS n FROM {view} WHERE tenant_id = '{t}'"),
        );
        let scoped = query(
            sample_lake(),
            &["--tenant", t],
            &format!("SELECT DISTINCT tenant_id FROM {view}"),
        );
        assert!(
            scoped.iter().all(|r| r["tenant_id"] == t.as_str()),
            "{view}: {scoped:?}"
        );
        let n_scoped = query(
            sample_lake(),
            &["--tenant", t],
            &format!("SELECT count(*) AS n FROM {view}"),
        );
        assert_eq!(all[0]["n"], n_scoped[0]["n"], "{view}");
    }
    // Other tenants' files are not registered at all.
    let plan = explain(sample_lake(), &["--tenant", t], "SELECT * FROM events");
    assert!(
        plan.contains(&format!("tenant_id={t}/"))
            && !ts
                .iter()
                .filter(|o| *o != t)
                .any(|o| plan.contains(o.as_str()))
    );
}

#[test]
fn a_tenant_scoped_session_refuses_ddl_and_copy() {
    let t = &tenants()[0];
    let events = sample_lake().join("events");
    for sql in [
        format!(
            "CREATE EXTERNAL TABLE other STORED AS PARQUET LOCATION '{}'",
            events.display()
        ),
        format!(
            "COPY (SELECT * FROM events) TO '{}/x.parquet'",
            sample_lake().display()
        ),
        "CREATE VIEW v AS SELECT 1".to_string(),
    ] {
        let out = bin()
            .args(["query", "--tenant", t, "--lake"])
            .arg(sample_lake())
            .arg(&sql)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{sql}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("scoped to one tenant"), "{err}");
    }
    assert!(!sample_lake().join("x.parquet").exists());
}

fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("AUDITLAKE_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no snapshot {name}: run with AUDITLAKE_UPDATE_SNAPSHOTS=1"));
    assert_eq!(actual, expected, "snapshot {name}");
}

const SNAP_SQL: &str = "SELECT tenant_id, day, events, failures, keys_used FROM daily_activity ORDER BY tenant_id, day LIMIT 4; \
                        SELECT client_ip, failures, first_failure FROM failed_logins ORDER BY failures DESC, client_ip LIMIT 3";

#[test]
fn query_output_in_every_format_matches_its_snapshot() {
    for format in ["table", "csv", "json", "ndjson"] {
        let out = bin()
            .args(["query", "--format", format, "--lake"])
            .arg(sample_lake())
            .arg(SNAP_SQL)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        snapshot(
            &format!("query.{format}"),
            &String::from_utf8(out.stdout).unwrap(),
        );
    }
    // Parquet goes to a file; read it back.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.parquet");
    let out = bin()
        .args(["query", "--format", "parquet", "-o"])
        .arg(&file)
        .arg("--lake")
        .arg(sample_lake())
        .arg("SELECT * FROM failed_logins")
        .output()
        .unwrap();
    assert_success(&out);
    let rows: usize =
        auditlake::lake::writer::read_bytes(std::fs::read(&file).unwrap().into(), None)
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
    assert_eq!(
        rows,
        query(sample_lake(), &[], "SELECT * FROM failed_logins").len()
    );
    // SQL from a file and from stdin give the same as the argument.
    let sql_file = dir.path().join("q.sql");
    std::fs::write(&sql_file, SNAP_SQL).unwrap();
    let from_file = bin()
        .args(["query", "--format", "csv", "-f"])
        .arg(&sql_file)
        .arg("--lake")
        .arg(sample_lake())
        .output()
        .unwrap();
    let from_stdin = with_stdin(
        bin()
            .args(["query", "--format", "csv", "--lake"])
            .arg(sample_lake()),
        SNAP_SQL,
    );
    snapshot("query.csv", &String::from_utf8(from_file.stdout).unwrap());
    snapshot("query.csv", &String::from_utf8(from_stdin.stdout).unwrap());
}

#[test]
fn broken_sql_is_one_line_on_stderr_and_exit_2() {
    for sql in [
        "SELEC * FROM events",
        "SELECT nope FROM events",
        "SELECT * FROM no_such_view",
    ] {
        let out = bin()
            .args(["query", "--lake"])
            .arg(sample_lake())
            .arg(sql)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{sql}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("auditlake: "), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn user_views_from_sql_dir_join_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("busy_days.sql"), "-- busy_days: days with more than 20 events\nCREATE VIEW busy_days AS SELECT * FROM daily_activity WHERE events > 20;\n").unwrap();
    let rows = query(
        sample_lake(),
        &["--sql-dir", dir.path().to_str().unwrap()],
        "SELECT count(*) AS n FROM busy_days",
    );
    let want = query(
        sample_lake(),
        &[],
        "SELECT count(*) AS n FROM daily_activity WHERE events > 20",
    );
    assert_eq!(rows, want);
}

#[test]
fn the_repl_runs_statements_and_commands_and_survives_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = "SELECT count(*) AS n\n  FROM failed_logins;\n\\views\nSELECT nope FROM events;\n\\d login_bursts\n\\format csv\nSELECT 41 + 1 AS answer;\n\\q\nSELECT 'not reached';\n";
    let out = with_stdin(
        bin()
            .args(["repl", "--lake"])
            .arg(sample_lake())
            .env("AUDITLAKE_HISTORY", dir.path().join("history")),
        input,
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let n = query(
        sample_lake(),
        &[],
        "SELECT count(*) AS n FROM failed_logins",
    )[0]["n"]
        .as_u64()
        .unwrap();
    assert!(
        stdout.contains(&format!("| {n} ")),
        "multi-line statement ran: {stdout}"
    );
    assert!(
        stdout.contains("1 row in "),
        "row count and time under results: {stdout}"
    );
    assert!(
        stdout.contains("login_bursts") && stdout.contains("10-minute window"),
        "\\views lists purposes: {stdout}"
    );
    assert!(
        stdout.contains("window_start"),
        "\\d NAME shows columns: {stdout}"
    );
    assert!(stderr.contains("nope"), "the error is shown: {stderr}");
    assert!(
        stdout.contains("answer\n42\n"),
        "csv after \\format, after the error: {stdout}"
    );
    assert!(!stdout.contains("not reached"), "\\q quits");
}

/// `auditlake query ... | head -c 100`, repeated: an answer of about 40 MB, so the writer is
/// still writing when the reader goes away, and every format (arrow's CSV writer keeps
/// only the text of an I/O error) ends with exit 0 and nothing on stderr.
#[test]
fn a_closed_pipe_ends_quietly_with_exit_0_in_every_format() {
    use std::io::Read;
    use std::process::Stdio;
    let sql = "SELECT e.*, g.value FROM events e \
               CROSS JOIN (SELECT value FROM generate_series(1, 40)) g";
    // (--format parquet writes only to a file.)
    for format in ["table", "csv", "json", "ndjson"] {
        for round in 0..4 {
            let mut child = bin()
                .args(["query", "--format", format, "--lake"])
                .arg(sample_lake())
                .arg(sql)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Read 100 bytes, then close the pipe, as `| head -c 100` does.
            let mut first = [0u8; 100];
            child.stdout.take().unwrap().read_exact(&mut first).unwrap();
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{format} #{round}: {err}");
            assert!(err.is_empty(), "{format} #{round}: {err}");
        }
    }
}

/// Every command that prints, with its stdout a pipe whose reader is already gone:
/// exit 0, nothing on stderr.
#[test]
fn every_command_that_prints_ends_quietly_on_a_closed_stdout() {
    use std::io::Write;
    use std::process::Stdio;
    let lake = sample_lake().to_str().unwrap();
    let cases: Vec<(Vec<&str>, Option<&str>)> = vec![
        (
            vec!["query", "--lake", lake, "SELECT count(*) FROM events"],
            None,
        ),
        (
            vec!["repl", "--format", "csv", "--lake", lake],
            Some("SELECT * FROM events;\nSELECT 1;\n"),
        ),
        (vec!["repl", "--lake", lake], Some("\\views\n")),
        (vec!["status", "--lake", lake], None),
        (vec!["status", "--json", "--lake", lake], None),
        (vec!["report", "--lake", lake], None),
        (vec!["report", "--format", "json", "--lake", lake], None),
        (vec!["verify", "--lake", lake], None),
        (vec!["rules", "show"], None),
        (vec!["config", "show", "--lake", lake], None),
        (vec!["completions", "bash"], None),
        (vec!["manpage"], None),
    ];
    for (args, input) in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = bin()
            .args(&args)
            .env("AUDITLAKE_HISTORY", "/dev/null")
            .stdin(Stdio::piped())
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The REPL may be gone before it read it all.
        let _ = stdin.write_all(input.unwrap_or("").as_bytes());
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("auditlake:"), "{args:?}: {err}");
    }
}

#[test]
fn the_repl_cuts_a_table_at_maxrows_and_says_how_many_rows_there_were() {
    let out = with_stdin(
        bin()
            .args(["repl", "--maxrows", "5", "--lake"])
            .arg(sample_lake())
            .env("AUDITLAKE_HISTORY", "/dev/null"),
        "SELECT trace_id FROM events ORDER BY trace_id;\n",
    );
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let total = query(sample_lake(), &[], "SELECT count(*) AS n FROM events")[0]["n"]
        .as_u64()
        .unwrap();
    assert!(
        text.contains(&format!("{total} rows")) && text.contains("(first 5 shown"),
        "{text}"
    );
    // Five data lines between the table's rules.
    let data = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("trace_id"))
        .count();
    assert_eq!(data, 5, "{text}");
    // The banner is not in the output.
    assert!(!text.contains("SQL over the audit lake"), "{text}");
}

#[test]
fn large_table_answers_print_in_pages_and_csv_has_every_row_once() {
    let out = bin()
        .args(["query", "--format", "csv", "--lake"])
        .arg(sample_lake())
        .arg("SELECT trace_id FROM events")
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    let total = query(sample_lake(), &[], "SELECT count(*) AS n FROM events")[0]["n"]
        .as_u64()
        .unwrap() as usize;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "trace_id");
    assert_eq!(lines.len(), total + 1);
    // An empty answer still has its header.
    let out = bin()
        .args(["query", "--format", "csv", "--lake"])
        .arg(sample_lake())
        .arg("SELECT trace_id, actor_id FROM events WHERE false")
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "trace_id,actor_id\n");
}

#[test]
fn under_a_small_memory_limit_a_sort_spills_and_gives_the_same_answer() {
    // One sorting partition whatever the machine's cores: with several, how the pool is
    // shared depends on which registers first, so whether 4 MiB spills or fails varies.
    // Sorted by a narrow unique key, carrying the wide `meta`: merging spilled runs holds
    // only the keys, so 1.5 and 2 MiB spill and finish; 1 MiB fails. Sorted by `meta`
    // itself, the window was 3 to 4 MiB and a loaded machine failed at 4 MiB: the
    // listing's order of files varies, and with it how full the pool is when the sort
    // spills (files without string statistics are listed in path order, and 3 MiB no
    // longer spilled).
    let sql = "SELECT trace_id, meta FROM events ORDER BY trace_id";
    let pinned = |sql: &str| format!("SET datafusion.execution.target_partitions = 1; {sql}");
    // Listing-planned: it reads this lake's 1,061 small files in batches that need more
    // than 2 MiB to sort (the manifest-planned scan sorts them within it, checked below).
    let run = |extra: &[&str], sql: &str| {
        let sql = &pinned(sql);
        let out = bin()
            .env("AUDITLAKE_PLAN", "listing")
            .args(["query", "--format", "csv", "--lake"])
            .arg(sample_lake())
            .args(extra)
            .arg(sql)
            .output()
            .unwrap();
        assert_success(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let free = run(&[], sql);
    let bounded = run(&["--memory-limit", "2M"], sql);
    assert!(bounded == free, "same rows in the same order under 2 MiB");
    let spills = |text: &str| -> u64 {
        text.split("spill_count=")
            .skip(1)
            .map(|s| {
                s.split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    };
    let plan = run(&["--memory-limit", "2M"], &format!("EXPLAIN ANALYZE {sql}"));
    assert!(spills(&plan) > 0, "{plan}");
    let planned = bin()
        .args(["query", "--format", "csv", "--memory-limit", "2M", "--lake"])
        .arg(sample_lake())
        .arg(pinned(sql))
        .output()
        .unwrap();
    assert_success(&planned);
    assert!(
        planned.stdout == free.as_bytes(),
        "the manifest-planned sort, same rows"
    );
    assert_eq!(spills(&run(&[], &format!("EXPLAIN ANALYZE {sql}"))), 0);
    // A limit too small to sort at all is one clear line, exit 2.
    let out = bin()
        .args(["query", "--memory-limit", "64K", "--lake"])
        .arg(sample_lake())
        .arg(pinned(sql))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `SET datafusion.execution.parquet.*` reaches the lake's scans: with filter pushdown
/// set, the filter moves into the Parquet scan and no `FilterExec` is left above it.
#[test]
fn a_session_set_of_parquet_options_reaches_the_lake_scans() {
    let dir = tempfile::tempdir().unwrap();
    let explain = "EXPLAIN SELECT client_ip FROM events WHERE outcome = 'failure';\n";
    let input = format!(
        "\\format csv\n{explain}SET datafusion.execution.parquet.pushdown_filters = true;\n{explain}"
    );
    let out = with_stdin(
        bin()
            .args(["repl", "--lake"])
            .arg(sample_lake())
            .env("AUDITLAKE_HISTORY", dir.path().join("history")),
        &input,
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let physical: Vec<&str> = stdout
        .split("physical_plan,")
        .skip(1)
        .map(|p| p.split("logical_plan,").next().unwrap())
        .collect();
    assert_eq!(physical.len(), 2, "two plans: {stdout}");
    assert!(
        physical[0].contains("FilterExec"),
        "default: {}",
        physical[0]
    );
    assert!(
        !physical[1].contains("FilterExec") && physical[1].contains("DataSourceExec"),
        "pushed down: {}",
        physical[1]
    );
}

/// The per-tenant views (key_lifecycle, key_first_use, actions_by_role run once per tenant the
/// session found) still see a tenant converted after the session was built: a REPL open on a
/// one-tenant lake answers, after a second tenant's export is converted beside it, what a new
/// process answers.
#[test]
fn a_tenant_converted_while_a_repl_is_open_shows_in_the_per_tenant_views() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let first = testdata("sample/dpod-audit-0b610cb6-2025-01.zip");
    let second = testdata("sample/dpod-audit-35f59976-2025-01.zip");
    assert_eq!(convert(&lake, &[first], &["-q"]).code, 0);

    let sql = [
        "SELECT tenant_id, count(*) AS keys, sum(uses) AS uses FROM key_lifecycle GROUP BY tenant_id ORDER BY tenant_id",
        "SELECT tenant_id, count(*) AS keys, count(action) AS actions FROM key_first_use GROUP BY tenant_id ORDER BY tenant_id",
        "SELECT tenant_id, sum(events) AS events FROM actions_by_role GROUP BY tenant_id ORDER BY tenant_id",
    ];
    let mut repl = bin()
        .args(["repl", "-q", "--format", "csv", "--lake"])
        .arg(&lake)
        .env("AUDITLAKE_HISTORY", dir.path().join("history"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = repl.stdin.take().unwrap();
    let mut output = BufReader::new(repl.stdout.take().unwrap());
    // Sends the statements and reads their output up to a marker.
    let mut ask = |round: usize| -> Vec<String> {
        for s in sql {
            writeln!(input, "{s};").unwrap();
        }
        writeln!(input, "SELECT 'end-{round}' AS marker;").unwrap();
        input.flush().unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                output.read_line(&mut line).unwrap() > 0,
                "repl ended: {lines:?}"
            );
            let line = line.trim_end().to_string();
            if line == format!("end-{round}") {
                return lines;
            }
            lines.push(line);
        }
    };
    let before = ask(1);
    assert_eq!(convert(&lake, &[second], &["-q"]).code, 0);
    let after = ask(2);
    drop(input);
    assert!(repl.wait().unwrap().success());

    let fresh: Vec<String> = sql
        .iter()
        .flat_map(|s| {
            let out = bin()
                .args(["query", "--format", "csv", "--lake"])
                .arg(&lake)
                .arg(s)
                .output()
                .unwrap();
            assert_success(&out);
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let tenants_in = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.starts_with("35f59976") || l.starts_with("0b610cb6"))
            .count()
    };
    assert_eq!(
        tenants_in(&before),
        3,
        "one tenant in each answer: {before:?}"
    );
    assert_eq!(
        tenants_in(&fresh),
        6,
        "both tenants in each answer: {fresh:?}"
    );
    // Every answer has two or three columns; the marker's header and the "N rows in" lines none.
    let answers: Vec<&String> = after.iter().filter(|l| l.contains(',')).collect();
    let fresh: Vec<&String> = fresh.iter().collect();
    assert_eq!(answers, fresh, "the open session answers as a new one");
}
