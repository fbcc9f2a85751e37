//! Findings (issue 14): each baseline rule on a hand-made history where it must fire and
//! where it must not, allowlists, time zones, `--fail-on` exit codes, and recall and
//! noise on a generated year with planted incidents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use auditlake::time::{days_from_civil, parse_time, MICROS_PER_DAY};
use serde_json::{json, Value};

use crate::common::*;

const T: &str = "t-hand";
const H: i64 = 3_600_000_000;
const M: i64 = 60_000_000;

/// One record of a hand-made export.
struct Rec {
    time: i64,
    actor: &'static str,
    action: &'static str,
    ok: bool,
    ip: String,
    ouid: Option<String>,
    part: &'static str,
}

fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
    days_from_civil(y, mo, d) * MICROS_PER_DAY + h * H + mi * M
}

fn rec(time: i64, actor: &'static str, action: &'static str, ip: &str) -> Rec {
    Rec {
        time,
        actor,
        action,
        ok: true,
        ip: ip.into(),
        ouid: None,
        part: "100",
    }
}

fn key(mut r: Rec, k: &str) -> Rec {
    r.ouid = Some(k.into());
    r
}

fn write_export(path: &Path, tenant: &str, recs: &[Rec]) {
    let arr: Vec<Value> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s = r.time.div_euclid(1_000_000);
            let t = chrono::DateTime::from_timestamp(s, 0).unwrap();
            json!({
                "time": t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                "source": format!("thales/cloudhsm/{}", r.part),
                "resourceID": "res-1",
                "actorID": r.actor,
                "tenantID": tenant,
                "action": r.action,
                "status": if r.ok { "LUNA_RET_OK" } else { "LUNA_RET_UM_PIN_INCORRECT" },
                "traceID": format!("{tenant}-{i}"),
                "meta": {"clientip": r.ip, "hsmid": if r.part == "777" { "9" } else { "1" },
                         "partid": r.part, "role": "CU", "ouid": r.ouid},
            })
        })
        .collect();
    std::fs::write(path, serde_json::to_vec(&arr).unwrap()).unwrap();
}

/// A tenant's working routine: weekdays 09:00-16:00 UTC, each actor logging in and using its key.
fn routine(recs: &mut Vec<Rec>, from: (i64, u32, u32), days: i64) {
    let start = days_from_civil(from.0, from.1, from.2);
    for d in start..start + days {
        let dow = (d + 4).rem_euclid(7); // 0 = Sunday
        if dow == 0 || dow == 6 {
            continue;
        }
        for (actor, ip, k) in [
            ("actor-a", "10.0.0.1", "KA"),
            ("actor-c", "10.0.0.2", "KC"),
            ("actor-d", "10.0.0.3", "KD"),
            ("actor-e", "10.0.0.4", "KE"),
        ] {
            let t0 = d * MICROS_PER_DAY + 9 * H;
            // actor-e works in another partition than the others.
            let part = if actor == "actor-e" { "200" } else { "100" };
            let mut login = rec(t0, actor, "LUNA_LOGIN", ip);
            login.part = part;
            recs.push(login);
            for h in 0..8 {
                let mut r = key(rec(t0 + h * H + 5 * M, actor, "LUNA_SIGN", ip), k);
                r.part = part;
                recs.push(r);
            }
        }
    }
}

/// The hand-made lake: January to March as history, April with one case of each rule.
fn hand_lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("findings-hand");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Vec::new();
        routine(&mut r, (2025, 1, 1), 120);
        // History: a PIN change, a clone into the tenant's own partition, keys made.
        r.push(rec(
            at(2025, 2, 10, 10, 0),
            "actor-c",
            "LUNA_SET_PIN",
            "10.0.0.2",
        ));
        r.push(rec(
            at(2025, 2, 11, 10, 0),
            "actor-c",
            "LUNA_CLONE_AS_TARGET",
            "10.0.0.2",
        ));
        r.push(key(
            rec(
                at(2025, 1, 6, 10, 0),
                "actor-c",
                "LUNA_GENERATE_KEY",
                "10.0.0.2",
            ),
            "K-OLD",
        ));
        r.push(key(
            rec(
                at(2025, 3, 20, 10, 0),
                "actor-c",
                "LUNA_GENERATE_KEY",
                "10.0.0.2",
            ),
            "K-NEW",
        ));
        for i in 0..12 {
            for p in ["M", "N"] {
                r.push(key(
                    rec(
                        at(2025, 3, 3, 10, i),
                        "actor-c",
                        "LUNA_GENERATE_KEY",
                        "10.0.0.2",
                    ),
                    &format!("{p}{i}"),
                ));
            }
        }
        // April.
        r.push(rec(
            at(2025, 4, 8, 10, 30),
            "actor-c",
            "LUNA_SET_PIN",
            "10.0.0.2",
        ));
        r.push(rec(
            at(2025, 4, 9, 10, 30),
            "actor-a",
            "LUNA_LOGIN",
            "203.0.113.50",
        ));
        r.push(rec(
            at(2025, 4, 10, 11, 0),
            "actor-b",
            "LUNA_LOGIN",
            "10.0.0.9",
        ));
        r.push(rec(
            at(2025, 4, 10, 11, 1),
            "actor-b",
            "LUNA_INIT_PIN",
            "10.0.0.9",
        ));
        r.push(rec(
            at(2025, 4, 13, 3, 0),
            "actor-e",
            "LUNA_LOGIN",
            "10.0.0.4",
        ));
        r.push(key(
            rec(at(2025, 4, 13, 3, 5), "actor-e", "LUNA_SIGN", "10.0.0.4"),
            "KE",
        ));
        r.push(key(
            rec(
                at(2025, 4, 15, 10, 0),
                "actor-c",
                "LUNA_DECRYPT",
                "10.0.0.2",
            ),
            "K-OLD",
        ));
        r.push(key(
            rec(
                at(2025, 4, 15, 10, 5),
                "actor-c",
                "LUNA_DECRYPT",
                "10.0.0.2",
            ),
            "K-NEW",
        ));
        r.push(key(
            rec(at(2025, 4, 16, 10, 0), "actor-d", "LUNA_SIGN", "10.0.0.3"),
            "KA",
        ));
        // actor-e, at home in partition 200, uses KA of partition 100.
        r.push(key(
            rec(at(2025, 4, 16, 11, 0), "actor-e", "LUNA_SIGN", "10.0.0.4"),
            "KA",
        ));
        for i in 0..12 {
            let mut f = rec(
                at(2025, 4, 17, 14, 0) + i * 15_000_000,
                "actor-a",
                "LUNA_LOGIN",
                "198.51.100.7",
            );
            f.ok = false;
            r.push(f);
            let mut g = rec(
                at(2025, 4, 17, 9, 0) + i * 10 * M,
                "actor-a",
                "LUNA_LOGIN",
                "198.51.100.8",
            );
            g.ok = false;
            r.push(g);
        }
        for i in 0..12 {
            r.push(key(
                rec(
                    at(2025, 4, 22, 10, i),
                    "actor-c",
                    "LUNA_DESTROY_OBJECT",
                    "10.0.0.2",
                ),
                &format!("M{i}"),
            ));
            r.push(key(
                rec(
                    at(2025, 4, 23, 9, 0) + i * 40 * M,
                    "actor-c",
                    "LUNA_DESTROY_OBJECT",
                    "10.0.0.2",
                ),
                &format!("N{i}"),
            ));
        }
        r.push(rec(
            at(2025, 4, 24, 10, 0),
            "actor-c",
            "LUNA_PARTITION_ZEROIZE",
            "10.0.0.2",
        ));
        r.push(rec(
            at(2025, 4, 25, 10, 0),
            "actor-c",
            "LUNA_CLONE_AS_TARGET",
            "10.0.0.2",
        ));
        let mut c = rec(
            at(2025, 4, 25, 10, 10),
            "actor-c",
            "LUNA_CLONE_AS_TARGET",
            "10.0.0.2",
        );
        c.part = "777";
        r.push(c);
        let export = dir.join("export.json");
        write_export(&export, T, &r);
        let lake = dir.join("lake");
        let run = convert(&lake, &[export], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        lake
    })
}

/// Runs a JSON report; returns the exit code and the document.
fn report(lake: &Path, args: &[&str]) -> (i32, Value) {
    let out = bin()
        .args(["report", "--format", "json", "--lake"])
        .arg(lake)
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

/// `auditlake query --format csv` over `lake` (with `extra` flags): its output.
fn query_csv(lake: &Path, extra: &[&str], sql: &str) -> String {
    let out = bin()
        .args(["query", "--format", "csv", "--lake"])
        .arg(lake)
        .args(extra)
        .arg(sql)
        .output()
        .unwrap();
    assert_success(&out);
    String::from_utf8(out.stdout).unwrap()
}

/// April's findings on the hand-made lake (one report run, shared by the tests below).
fn april() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| report(hand_lake(), &["--from", "2025-04-01", "--to", "2025-04-30"]).1)
}

/// The unsuppressed findings of one kind: (severity, actor, client_ip, ouid, reason).
fn of_kind(doc: &Value, kind: &str) -> Vec<(String, String, String, String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind && f["suppressed"].is_null())
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (
                s("severity"),
                s("actor_id"),
                s("client_ip"),
                s("ouid"),
                s("reason"),
            )
        })
        .collect()
}

#[test]
fn new_client_ip_fires_for_a_known_actor_on_a_new_ip_only() {
    let f = of_kind(april(), "new_client_ip");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].0.as_str(), f[0].1.as_str(), f[0].2.as_str()),
        ("medium", "actor-a", "203.0.113.50")
    );
    assert!(
        f[0].4
            .contains("never seen for this actor in the 90 days before"),
        "{}",
        f[0].4
    );
}

#[test]
fn new_actor_fires_for_an_actor_never_seen_only() {
    let f = of_kind(april(), "new_actor");
    assert_eq!(
        f.iter()
            .map(|x| (x.0.as_str(), x.1.as_str()))
            .collect::<Vec<_>>(),
        [("medium", "actor-b")]
    );
}

#[test]
fn off_hours_fires_on_a_sunday_night_not_in_working_hours() {
    let f = of_kind(april(), "off_hours");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].0.as_str(), f[0].1.as_str()), ("medium", "actor-e"));
    assert!(
        f[0].4.contains("Sunday 2025-04-13 from 03:00"),
        "{}",
        f[0].4
    );
}

#[test]
fn dormant_key_fires_for_a_key_first_used_long_after_creation_only() {
    let f = of_kind(april(), "dormant_key");
    assert_eq!(
        f.iter()
            .map(|x| (x.0.as_str(), x.3.as_str()))
            .collect::<Vec<_>>(),
        [("medium", "K-OLD")]
    );
    assert!(
        f[0].4.contains("99 days after its creation on 2025-01-06"),
        "{}",
        f[0].4
    );
}

#[test]
fn new_key_user_fires_when_another_actor_uses_an_owned_key_only() {
    // actor-d works with other keys of KA's partition: routine (low); actor-e never
    // used a key of it: medium.
    let f = of_kind(april(), "new_key_user");
    assert_eq!(
        f.iter()
            .map(|x| (x.0.as_str(), x.1.as_str(), x.3.as_str()))
            .collect::<Vec<_>>(),
        [("medium", "actor-e", "KA"), ("low", "actor-d", "KA")]
    );
    assert!(
        f[0].4.contains("never used a key of partition 100"),
        "{}",
        f[0].4
    );
    assert!(
        f[1].4
            .contains("already works with other keys of partition 100"),
        "{}",
        f[1].4
    );
}

#[test]
fn failed_login_burst_fires_for_a_burst_not_for_failures_spread_out() {
    let f = of_kind(april(), "failed_login_burst");
    assert_eq!(
        f.iter()
            .map(|x| (x.0.as_str(), x.2.as_str()))
            .collect::<Vec<_>>(),
        [("medium", "198.51.100.7")]
    );
    assert!(
        f[0].4
            .contains("failed to log in 12 times within 10 minutes"),
        "{}",
        f[0].4
    );
}

#[test]
fn mass_key_destruction_is_high_for_many_at_once_not_spread_out() {
    let f = of_kind(april(), "mass_key_destruction");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "high");
    assert!(
        f[0].4
            .contains("12 keys destroyed within 60 minutes (2025-04-22"),
        "{}",
        f[0].4
    );
}

#[test]
fn zeroize_is_always_high() {
    let f = of_kind(april(), "partition_admin");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "high");
    // And a month without one has none.
    let (_, march) = report(hand_lake(), &["--from", "2025-03-01", "--to", "2025-03-31"]);
    assert!(of_kind(&march, "partition_admin").is_empty());
}

#[test]
fn pin_change_is_evidence_and_a_new_actor_is_new_actors_finding() {
    // actor-b is new to the tenant: new_actor reports it, its PIN change is evidence.
    let f = of_kind(april(), "pin_change");
    let got: Vec<(&str, &str)> = f.iter().map(|x| (x.0.as_str(), x.1.as_str())).collect();
    assert_eq!(got, [("low", "actor-c"), ("low", "actor-b")], "{f:?}");
    assert!(f[1].4.contains("(see new_actor)"), "{}", f[1].4);
    let n = of_kind(april(), "new_actor");
    assert!(
        n.iter().any(|x| x.0 == "medium" && x.1 == "actor-b"),
        "{n:?}"
    );
}

#[test]
fn a_clone_into_a_new_partition_fires_into_a_known_target_does_not() {
    let f = of_kind(april(), "new_replication_target");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "medium");
    assert!(f[0].4.contains("partition 777 on HSM 9"), "{}", f[0].4);
}

#[test]
fn findings_come_first_ranked_and_every_format_carries_severity_and_reason() {
    let doc = april();
    let sev: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    let rank = |s: &str| {
        ["high", "medium", "low", "info"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    assert!(sev.windows(2).all(|w| rank(w[0]) <= rank(w[1])), "{sev:?}");
    assert_eq!(doc["summary"]["high"], 2);
    let md = bin()
        .args([
            "report",
            "--from",
            "2025-04-01",
            "--to",
            "2025-04-30",
            "--lake",
        ])
        .arg(hand_lake())
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    let (findings_at, evidence_at) = (
        md.find("## Findings").unwrap(),
        md.find("## Evidence").unwrap(),
    );
    assert!(findings_at < evidence_at);
    assert!(md[findings_at..evidence_at].contains("| high | partition_admin |"));
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let out = bin()
        .args([
            "report",
            "--format",
            "html",
            "--from",
            "2025-04-01",
            "--to",
            "2025-04-30",
            "-o",
        ])
        .arg(&html)
        .arg("--lake")
        .arg(hand_lake())
        .output()
        .unwrap();
    assert_success(&out);
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.find("<tr class=\"sev-high\">").unwrap()
            < html.find("<details id=\"privileged\">").unwrap()
    );
    let csv = dir.path().join("csv");
    let out = bin()
        .args([
            "report",
            "--format",
            "csv",
            "--from",
            "2025-04-01",
            "--to",
            "2025-04-30",
            "-o",
        ])
        .arg(&csv)
        .arg("--lake")
        .arg(hand_lake())
        .output()
        .unwrap();
    assert_success(&out);
    let text = std::fs::read_to_string(csv.join("findings.csv")).unwrap();
    assert!(text.starts_with(
        "severity,kind,tenant_id,time,until,actor_id,client_ip,ouid,reason,id,suppressed,acknowledged\n"
    ));
    assert!(text.lines().nth(1).unwrap().starts_with("high,"));
}

#[test]
fn allowlists_suppress_and_the_suppressed_are_still_listed() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"
[allow]
nat_addresses = ["203.0.113.0/24"]
batch_clients = [{ actor = "actor-e", note = "weekend batch" }]
maintenance_windows = [{ tenant = "t-hand", from = "2025-04-24T09:00:00Z", to = "2025-04-24T11:00:00Z", note = "re-init" }]
"#,
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let (_, doc) = report(
        hand_lake(),
        &["--from", "2025-04-01", "--to", "2025-04-30", "--rules", r],
    );
    for kind in ["new_client_ip", "off_hours", "partition_admin"] {
        assert!(of_kind(&doc, kind).is_empty(), "{kind} suppressed");
    }
    let suppressed: BTreeMap<String, String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["suppressed"].is_null())
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["suppressed"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(suppressed["new_client_ip"], "NAT address 203.0.113.0/24");
    assert_eq!(
        suppressed["off_hours"],
        "batch client actor-e (weekend batch)"
    );
    assert!(
        suppressed["partition_admin"].starts_with("maintenance window"),
        "{suppressed:?}"
    );
    // And actor-e's first use of a key of another partition (the batch client's, expected).
    assert_eq!(
        suppressed["new_key_user"],
        "batch client actor-e (weekend batch)"
    );
    assert_eq!(doc["summary"]["suppressed"], 4);
    let md = bin()
        .args([
            "report",
            "--from",
            "2025-04-01",
            "--to",
            "2025-04-30",
            "--rules",
            r,
            "--lake",
        ])
        .arg(hand_lake())
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    let tail = &md[md.find("### Suppressed findings").unwrap()..];
    assert!(
        tail.contains("NAT address 203.0.113.0/24") && tail.contains("| high | partition_admin |")
    );
    // The zeroize in its window no longer fails a run at --fail-on high.
    let day = ["--from", "2025-04-24", "--to", "2025-04-24"];
    assert_eq!(
        report(hand_lake(), &[&day[..], &["--fail-on", "high"]].concat()).0,
        1
    );
    assert_eq!(
        report(
            hand_lake(),
            &[&day[..], &["--fail-on", "high", "--rules", r]].concat()
        )
        .0,
        0
    );
}

#[test]
fn fail_on_exit_codes_follow_the_highest_severity() {
    let lake = hand_lake();
    // 8 April: only a PIN change by a known actor (low).
    let day = ["--from", "2025-04-08", "--to", "2025-04-08"];
    let code = |extra: &[&str]| report(lake, &[&day[..], extra].concat()).0;
    assert_eq!(code(&[]), 0);
    assert_eq!(code(&["--fail-on", "high"]), 0);
    assert_eq!(code(&["--fail-on", "medium"]), 0);
    assert_eq!(code(&["--fail-on", "low"]), 1);
    assert_eq!(code(&["--fail-on-findings"]), 1);
    let (c, _) = report(
        lake,
        &[
            "--from",
            "2025-04-22",
            "--to",
            "2025-04-22",
            "--fail-on",
            "high",
        ],
    );
    assert_eq!(c, 1, "a mass destruction is high");
    let out = bin()
        .args(["report", "--fail-on", "severe", "--lake"])
        .arg(lake)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn business_hours_set_per_tenant_follow_its_utc_offset() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    // 18:00-24:00 at UTC+09:00 is 09:00-15:00 UTC: the routine's 15:05 and 16:05 uses fall outside.
    std::fs::write(&rules, "[tenants.t-hand]\ntimezone = \"+09:00\"\nbusiness_hours = \"18:00-24:00\"\nbusiness_days = [\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\"]\n").unwrap();
    let (_, doc) = report(
        hand_lake(),
        &[
            "--from",
            "2025-04-08",
            "--to",
            "2025-04-08",
            "--rules",
            rules.to_str().unwrap(),
        ],
    );
    let f = of_kind(&doc, "off_hours");
    assert_eq!(f.len(), 4, "one per actor: {f:?}");
    assert!(
        f.iter().all(|x| x
            .4
            .contains("Wednesday 2025-04-09 from 00:05 to 01:05 local time (2 events)")),
        "{f:?}"
    );
    // The same hours in UTC: nothing outside them.
    std::fs::write(&rules, "business_hours = \"09:00-17:00\"\n").unwrap();
    let (_, doc) = report(
        hand_lake(),
        &[
            "--from",
            "2025-04-08",
            "--to",
            "2025-04-08",
            "--rules",
            rules.to_str().unwrap(),
        ],
    );
    assert!(of_kind(&doc, "off_hours").is_empty());
}

#[test]
fn an_iana_zone_follows_summer_time_where_a_fixed_offset_does_not() {
    // A New York tenant logs in at 09:00 and at 03:00 local time on a Wednesday in
    // January (UTC-5) and in July (summer time, UTC-4).
    let dir = tempfile::tempdir().unwrap();
    let (lake, export) = (dir.path().join("lake"), dir.path().join("ny.json"));
    let recs = [
        rec(
            at(2025, 1, 15, 14, 0),
            "actor-day",
            "LUNA_LOGIN",
            "10.0.0.1",
        ),
        rec(
            at(2025, 1, 15, 8, 0),
            "actor-night",
            "LUNA_LOGIN",
            "10.0.0.2",
        ),
        rec(
            at(2025, 7, 16, 13, 0),
            "actor-day",
            "LUNA_LOGIN",
            "10.0.0.1",
        ),
        rec(
            at(2025, 7, 16, 7, 0),
            "actor-night",
            "LUNA_LOGIN",
            "10.0.0.2",
        ),
    ];
    write_export(&export, "t-ny", &recs);
    assert_eq!(convert(&lake, &[export], &[]).code, 0);
    let rules = dir.path().join("rules.toml");
    let off_hours = |zone: &str| {
        std::fs::write(
            &rules,
            format!("[tenants.t-ny]\ntimezone = \"{zone}\"\nbusiness_hours = \"09:00-17:00\"\n"),
        )
        .unwrap();
        let (_, doc) = report(
            &lake,
            &[
                "--from",
                "2025-01-01",
                "--to",
                "2025-07-31",
                "--rules",
                rules.to_str().unwrap(),
            ],
        );
        let mut f: Vec<(String, String)> = of_kind(&doc, "off_hours")
            .into_iter()
            .map(|x| (x.1, x.4))
            .collect();
        f.sort();
        (f, doc)
    };
    let (f, doc) = off_hours("America/New_York");
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f.iter().all(|(actor, _)| actor == "actor-night"), "{f:?}");
    assert!(f[0].1.contains("2025-01-15 from 03:00"), "{f:?}");
    assert!(f[1].1.contains("2025-07-16 from 03:00"), "{f:?}");
    let text = doc["baselines"].to_string();
    assert!(text.contains("America/New_York"), "{text}");
    // A fixed -05:00 puts July's 09:00 login at 08:00: off hours as well.
    let (f, _) = off_hours("-05:00");
    assert_eq!(f.len(), 3, "{f:?}");
    assert!(
        f.iter()
            .any(|(a, r)| a == "actor-day" && r.contains("2025-07-16 from 08:00")),
        "{f:?}"
    );

    // The public view judges hours on the same clock: the rules' zone, UTC without one.
    std::fs::write(&rules, "[tenants.t-ny]\ntimezone = \"America/New_York\"\n").unwrap();
    let view = |extra: &[&str]| {
        query_csv(
            &lake,
            extra,
            "SELECT day, actor_id, events FROM off_hours_activity ORDER BY day",
        )
    };
    assert_eq!(
        view(&["--rules", rules.to_str().unwrap()]),
        "day,actor_id,events\n2025-01-15,actor-night,1\n2025-07-16,actor-night,1\n"
    );
    // In UTC the 03:00 logins are at 08:00 and 07:00: office hours.
    assert_eq!(view(&[]), "day,actor_id,events\n");
}

#[test]
fn too_little_history_is_said_in_coverage_and_downgraded_to_info() {
    // Judged from the first day of the archive, the tenant has no history: every actor is new.
    let (_, doc) = report(hand_lake(), &["--from", "2025-01-01", "--to", "2025-01-31"]);
    let b = &doc["baselines"][0];
    assert_eq!(
        (b["history_days"].as_u64(), b["enough"].as_bool()),
        (Some(0), Some(false))
    );
    let md = bin()
        .args([
            "report",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-31",
            "--lake",
        ])
        .arg(hand_lake())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&md.stdout)
        .contains("NOT ENOUGH HISTORY (data on 0 days, 14 needed)"));
    let new = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "new_actor")
        .collect::<Vec<_>>();
    assert_eq!(new.len(), 4);
    assert!(new
        .iter()
        .all(|f| f["severity"] == "info"
            && f["reason"].as_str().unwrap().contains("downgraded to info")));
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] != "medium" && f["severity"] != "high"),
        "{}",
        doc["findings"]
    );
}

#[test]
fn rules_show_prints_the_rules_in_force_from_the_file_or_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin().args(["rules", "show"]).output().unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.starts_with("# rules in force, from defaults") && text.contains("baseline_days = 90"),
        "{text}"
    );
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[rules]\ndormant_days = 30\n[rules.tenants.acme]\ntimezone = \"+09:00\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .args(["rules", "show", "--baseline", "30"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("[rules] of")
            && text.contains("dormant_days = 30")
            && text.contains("baseline_days = 30")
            && text.contains("timezone = \"+09:00\""),
        "{text}"
    );
    std::fs::write(&cfg, "[rules]\nburst_failures = 0\n").unwrap();
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .args(["rules", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("burst_failures must be at least 1"));
    // A rules file lies over the config's [rules] key by key: its numbers and its tenant's
    // business hours win, the config's other numbers and the tenant's zone stay.
    std::fs::write(
        &cfg,
        "[rules]\ndormant_days = 30\nburst_failures = 7\n[rules.tenants.acme]\ntimezone = \"+09:00\"\n",
    )
    .unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        "burst_failures = 3\n[tenants.acme]\nbusiness_hours = \"08:00-18:00\"\n[tenants.other]\ntimezone = \"Asia/Kolkata\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .args(["rules", "show", "--rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for line in [
        "dormant_days = 30",
        "burst_failures = 3",
        "timezone = \"+09:00\"",
        "business_hours = \"08:00-18:00\"",
        "timezone = \"Asia/Kolkata\"",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(text.contains("over the [rules] of"), "{text}");
}

/// Recall and noise of monthly reports against a manifest of planted incidents.
pub struct Measure {
    /// Per kind: (planted, found at medium or higher).
    pub recall: BTreeMap<String, (u32, u32)>,
    /// Per finding kind: medium-or-higher findings that match no incident at all.
    pub noise: BTreeMap<String, u32>,
    /// Per finding kind: medium-or-higher findings that match a background incident.
    pub background: BTreeMap<String, u32>,
    /// Highest count of unexplained medium-or-higher findings in one tenant-month.
    pub worst_tenant_month: u32,
    /// High findings that match no incident at all.
    pub high_noise: u32,
    pub tenant_months: u32,
}

/// `extra`: flags for every report (e.g. `--rules FILE`).
pub fn measure(lake: &Path, manifest: &Path, months: &[(i64, u32)], extra: &[&str]) -> Measure {
    let incidents: Vec<Value> = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let t = |v: &Value| parse_time(v.as_str().unwrap()).unwrap();
    let mut m = Measure {
        recall: BTreeMap::new(),
        noise: BTreeMap::new(),
        background: BTreeMap::new(),
        worst_tenant_month: 0,
        high_noise: 0,
        tenant_months: 0,
    };
    let mut found = vec![false; incidents.len()];
    for &(y, mo) in months {
        let from = days_from_civil(y, mo, 1);
        let to = if mo == 12 {
            days_from_civil(y + 1, 1, 1)
        } else {
            days_from_civil(y, mo + 1, 1)
        } - 1;
        let day = |d: i64| auditlake::time::format_day(d as i32);
        let (from, to) = (day(from), day(to));
        let mut args = vec!["--from", &from, "--to", &to];
        args.extend(extra);
        let (_, doc) = report(lake, &args);
        let mut per_tenant: BTreeMap<String, u32> = BTreeMap::new();
        for tc in doc["coverage"]["tenants"].as_array().unwrap() {
            per_tenant.insert(tc["tenant_id"].as_str().unwrap().into(), 0);
        }
        for f in doc["findings"].as_array().unwrap() {
            if !f["suppressed"].is_null() || !(f["severity"] == "high" || f["severity"] == "medium")
            {
                continue;
            }
            let (a, b) = (t(&f["time"]), t(&f["until"]));
            let mut matched = None;
            for (i, inc) in incidents.iter().enumerate() {
                let kinds = inc["expect"].as_array().unwrap();
                if inc["tenant"] == f["tenant_id"]
                    && kinds.iter().any(|k| *k == f["kind"])
                    && a <= t(&inc["end"]) + H
                    && b >= t(&inc["start"]) - H
                {
                    found[i] = true;
                    matched = Some(inc["origin"].as_str().unwrap().to_string());
                }
            }
            let kind = f["kind"].as_str().unwrap().to_string();
            match matched.as_deref() {
                Some("planted") => {}
                Some(_) => *m.background.entry(kind).or_default() += 1,
                None => {
                    if std::env::var_os("AUDITLAKE_SHOW_NOISE").is_some() {
                        eprintln!("noise: {} {} {}", f["kind"], f["severity"], f["reason"]);
                    }
                    m.high_noise += (f["severity"] == "high") as u32;
                    *m.noise.entry(kind).or_default() += 1;
                    *per_tenant
                        .entry(f["tenant_id"].as_str().unwrap().into())
                        .or_default() += 1;
                }
            }
        }
        m.tenant_months += per_tenant.len() as u32;
        m.worst_tenant_month = m
            .worst_tenant_month
            .max(per_tenant.values().copied().max().unwrap_or(0));
    }
    let first = days_from_civil(months[0].0, months[0].1, 1) * MICROS_PER_DAY;
    for (inc, ok) in incidents.iter().zip(&found) {
        if inc["origin"] != "planted" || t(&inc["start"]) < first {
            continue;
        }
        let e = m
            .recall
            .entry(inc["kind"].as_str().unwrap().to_string())
            .or_default();
        e.0 += 1;
        e.1 += *ok as u32;
    }
    m
}

fn print(m: &Measure) {
    for (k, (n, f)) in &m.recall {
        eprintln!("recall {k}: {f}/{n}");
    }
    eprintln!("noise (medium+, matching no incident): {:?}, {} of them high; background matches: {:?}; worst tenant-month: {} of {} tenant-months", m.noise, m.high_noise, m.background, m.worst_tenant_month, m.tenant_months);
}

/// A year of `generate --events 6000 --tenants 3 --seed 2025 --incidents` (and `extra`),
/// converted and reported month by month: its recall and noise, printed.
fn generated_year(extra: &[&str]) -> Measure {
    let dir = tempfile::tempdir().unwrap();
    let (exports, manifest) = (
        dir.path().join("year"),
        dir.path().join("year.incidents.json"),
    );
    let out = bin()
        .args([
            "generate",
            "--events",
            "6000",
            "--tenants",
            "3",
            "--seed",
            "2025",
            "--incidents",
        ])
        .args(extra)
        .arg("-o")
        .arg(&exports)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        manifest.is_file(),
        "the manifest is beside the exports, not in them"
    );
    let lake = dir.path().join("lake");
    assert_eq!(convert(&lake, &[exports], &[]).code, 0);
    let months: Vec<(i64, u32)> = (1..=12).map(|mo| (2025, mo)).collect();
    // With --zones, the tenants' zones as a user would set them.
    let rules = dir.path().join("year.rules.toml");
    let rules = rules.to_str().unwrap();
    let with_rules = ["--rules", rules];
    let extra_report: &[&str] = if extra.contains(&"--zones") {
        &with_rules
    } else {
        &[]
    };
    let m = measure(&lake, &manifest, &months, extra_report);
    print(&m);
    assert_eq!(m.recall.len(), 9, "every kind planted: {:?}", m.recall);
    for (k, (n, f)) in &m.recall {
        assert_eq!(n, f, "recall of {k}");
    }
    m
}

#[test]
fn a_generated_year_with_planted_incidents_has_full_recall_and_little_noise() {
    let m = generated_year(&[]);
    assert!(m.worst_tenant_month <= 5, "{:?}", m.noise);
}

#[test]
fn a_realistic_year_in_four_zones_has_full_recall_and_little_noise() {
    // The same year with --routine (people on weekdays, nightly batch jobs, each partition's
    // clients sharing its keys, a batch rotation of 12 keys every month, new hires) and
    // --zones (London, Tokyo, New York, Mumbai: two with summer time), judged with the
    // tenants' zones in the rules. Every planted incident is found (above); no high finding
    // matches no incident; at most 2 unexplained medium-or-higher findings per
    // tenant-month on average, 5 in any.
    let m = generated_year(&["--routine", "--zones"]);
    assert_eq!(m.high_noise, 0, "{:?}", m.noise);
    let noise: u32 = m.noise.values().sum();
    assert!(
        noise <= 2 * m.tenant_months,
        "{noise} in {} tenant-months: {:?}",
        m.tenant_months,
        m.noise
    );
    assert!(m.worst_tenant_month <= 5, "{:?}", m.noise);
}

#[test]
fn a_cloudhsm_year_with_planted_incidents_has_full_recall_and_little_noise() {
    // Two clusters, a year of CloudHSM's own traffic (logins, keys made, synchronised,
    // wrapped and destroyed, the odd user change) with five incidents planted in each.
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("year");
    let manifest = dir.path().join("year.incidents.json");
    let out = bin()
        .args([
            "generate",
            "--vendor",
            "aws-cloudhsm",
            "--events",
            "24000",
            "--tenants",
            "2",
            "--seed",
            "2025",
            "--incidents",
        ])
        .arg("-o")
        .arg(&exports)
        .output()
        .unwrap();
    assert_success(&out);
    let lake = dir.path().join("lake");
    assert_eq!(convert(&lake, &[exports], &[]).code, 0);
    let months: Vec<(i64, u32)> = (1..=12).map(|mo| (2025, mo)).collect();
    let m = measure(&lake, &manifest, &months, &[]);
    print(&m);
    assert_eq!(m.recall.len(), 5, "every kind planted: {:?}", m.recall);
    for (k, (n, f)) in &m.recall {
        assert_eq!((k, n), (k, f), "recall");
    }
    assert_eq!(m.high_noise, 0, "{:?}", m.noise);
    let noise: u32 = m.noise.values().sum();
    assert!(noise <= 2 * m.tenant_months, "{noise}: {:?}", m.noise);
    assert!(m.worst_tenant_month <= 5, "{:?}", m.noise);
}

/// The same measurement on a year generated and converted by hand (e.g. 1M events):
/// AUDITLAKE_RECALL_DIR holds `lake/` and `year.incidents.json`; set
/// AUDITLAKE_TEST_BIN=target/release/auditlake so twelve monthly reports over a large
/// lake do not run on a debug build.
#[test]
#[ignore = "by hand: set AUDITLAKE_RECALL_DIR"]
fn recall_and_noise_on_a_year_by_hand() {
    let dir = PathBuf::from(std::env::var("AUDITLAKE_RECALL_DIR").unwrap());
    let months: Vec<(i64, u32)> = std::env::var("AUDITLAKE_RECALL_MONTHS")
        .unwrap_or_else(|_| "1,2,3,4,5,6,7,8,9,10,11,12".into())
        .split(',')
        .map(|x| (2025, x.trim().parse().unwrap()))
        .collect();
    let rules = dir.join("year.rules.toml");
    let rules = rules.to_str().unwrap();
    let extra: &[&str] = if Path::new(rules).is_file() {
        &["--rules", rules]
    } else {
        &[]
    };
    print(&measure(
        &dir.join("lake"),
        &dir.join("year.incidents.json"),
        &months,
        extra,
    ));
}

/// (kind, id) of every finding of a JSON report or findings document.
fn ids(doc: &Value) -> Vec<(String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn id_of(doc: &Value, kind: &str) -> String {
    let got: Vec<String> = ids(doc)
        .into_iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, id)| id)
        .collect();
    assert_eq!(got.len(), 1, "{kind}: {got:?}");
    got[0].clone()
}

#[test]
fn finding_ids_are_the_same_in_a_rerun_a_longer_period_and_the_day_itself() {
    let lake = hand_lake();
    let first = ids(april());
    let mut unique = first.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first.len(), "ids are unique: {first:?}");
    assert!(first.iter().all(|(_, id)| id.len() == 16));
    // A rerun of the same period.
    let (_, again) = report(lake, &["--from", "2025-04-01", "--to", "2025-04-30"]);
    assert_eq!(ids(&again), first);
    // The day of the mass destruction alone, and March to April: the same incidents.
    let (_, day) = report(lake, &["--from", "2025-04-22", "--to", "2025-04-22"]);
    let (_, longer) = report(lake, &["--from", "2025-03-01", "--to", "2025-04-30"]);
    for kind in ["mass_key_destruction", "partition_admin"] {
        let id = id_of(april(), kind);
        assert!(
            ids(&longer).contains(&(kind.to_string(), id.clone())),
            "{kind} over March-April"
        );
        if kind == "mass_key_destruction" {
            assert_eq!(id_of(&day, kind), id);
        }
    }
    // `findings` gives the ids `report` gives.
    let out = bin()
        .args([
            "findings",
            "--format",
            "json",
            "--from",
            "2025-04-01",
            "--to",
            "2025-04-30",
            "--lake",
        ])
        .arg(lake)
        .output()
        .unwrap();
    assert_success(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&doc), first);
}

/// `auditlake findings ack ID …` into `acks`.
fn ack(acks: &Path, id: &str, extra: &[&str]) -> std::process::Output {
    bin()
        .args([
            "findings",
            "ack",
            id,
            "--reason",
            "planned key rotation",
            "--by",
            "tester",
            "--acks",
        ])
        .arg(acks)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn acks_keep_a_finding_out_of_fail_on_until_they_expire_and_survive_a_rerun() {
    let lake = hand_lake();
    let dir = tempfile::tempdir().unwrap();
    let acks = dir.path().join("acks.toml");
    let acks_arg = acks.to_str().unwrap();
    let day = [
        "--from",
        "2025-04-22",
        "--to",
        "2025-04-22",
        "--fail-on",
        "high",
    ];
    let (code, doc) = report(lake, &day);
    assert_eq!(code, 1, "a mass destruction is high");
    let id = id_of(&doc, "mass_key_destruction");

    assert_success(&ack(&acks, &id, &["--kind", "mass_key_destruction"]));
    let text = std::fs::read_to_string(&acks).unwrap();
    assert!(
        text.contains(&format!("id = \"{id}\"")) && text.contains("by = \"tester\""),
        "{text}"
    );
    for _ in 0..2 {
        // Acknowledged: listed apart, not counted, does not fail; the same in a rerun.
        let (code, doc) = report(lake, &[&day[..], &["--acks", acks_arg]].concat());
        assert_eq!(code, 0);
        assert_eq!(doc["summary"]["high"], 0);
        assert_eq!(doc["summary"]["acknowledged"], 1);
        let f = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id.as_str())
            .unwrap();
        assert_eq!(f["acknowledged"]["by"], "tester");
        assert_eq!(f["acknowledged"]["reason"], "planned key rotation");
    }
    let md = bin()
        .args([
            "report",
            "--from",
            "2025-04-22",
            "--to",
            "2025-04-22",
            "--acks",
            acks_arg,
            "--lake",
        ])
        .arg(lake)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    let at = md
        .find("### Acknowledged findings")
        .expect("an acknowledged section");
    assert!(
        md[at..].contains("by tester on") && md[at..].contains(&id),
        "{}",
        &md[at..]
    );
    // `findings --fail-on high` agrees.
    let findings_code = |extra: &[&str]| {
        bin()
            .args([
                "findings",
                "--from",
                "2025-04-22",
                "--to",
                "2025-04-22",
                "--fail-on",
                "high",
                "--lake",
            ])
            .arg(lake)
            .args(extra)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(findings_code(&["--acks", acks_arg]), Some(0));
    assert_eq!(findings_code(&[]), Some(1));

    // An ack that ran out brings the finding back (the later ack of one id replaces the earlier).
    assert_success(&ack(&acks, &id, &["--until", "2000-01-31"]));
    let (code, doc) = report(lake, &[&day[..], &["--acks", acks_arg]].concat());
    assert_eq!(code, 1);
    assert_eq!(doc["summary"]["acknowledged"], 0);
    assert!(doc["findings"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("until 2000-01-31: expired"));
    // One still in force.
    assert_success(&ack(&acks, &id, &["--until", "2999-12-31"]));
    assert_eq!(
        report(lake, &[&day[..], &["--acks", acks_arg]].concat()).0,
        0
    );
    assert_eq!(
        std::fs::read_to_string(&acks)
            .unwrap()
            .matches("[[ack]]")
            .count(),
        1
    );

    // The config file's `acks` is used when no flag is given.
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, format!("acks = {:?}\n", acks_arg)).unwrap();
    assert_eq!(findings_code(&["--config", cfg.to_str().unwrap()]), Some(0));

    // Not an id: one line, exit 2, nothing written.
    let before = std::fs::read_to_string(&acks).unwrap();
    let out = ack(&acks, "not-an-id", &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("not a finding id"), "{err}");
    assert_eq!(std::fs::read_to_string(&acks).unwrap(), before);
}

#[test]
fn ocsf_findings_are_detection_findings_with_the_class_required_attributes() {
    let lake = hand_lake();
    let dir = tempfile::tempdir().unwrap();
    let acks = dir.path().join("acks.toml");
    let zeroize = id_of(april(), "partition_admin");
    assert_success(&ack(&acks, &zeroize, &[]));
    let period = [
        "--from",
        "2025-04-01",
        "--to",
        "2025-04-30",
        "--acks",
        acks.to_str().unwrap(),
    ];
    let run = |cmd: &str| {
        let out = bin()
            .args([cmd, "--format", "ocsf"])
            .args(period)
            .arg("--lake")
            .arg(lake)
            .output()
            .unwrap();
        assert_success(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let (from_report, from_findings) = (run("report"), run("findings"));
    let lines: Vec<Value> = from_report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = ids(april());
    assert_eq!(lines.len(), expected.len());
    let sev_ids = [("info", 1), ("low", 2), ("medium", 3), ("high", 4)];
    let mut got: Vec<&str> = lines
        .iter()
        .map(|l| l["finding_info"]["uid"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = expected.iter().map(|(_, id)| id.as_str()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every finding once");
    for line in &lines {
        let (kind, id) = expected
            .iter()
            .find(|(_, id)| line["finding_info"]["uid"] == id.as_str())
            .unwrap();
        // Required by OCSF 1.3 for class 2004 (base event, finding, detection finding).
        assert_eq!(line["class_uid"], 2004);
        assert_eq!(line["category_uid"], 2);
        assert_eq!(line["activity_id"], 1);
        assert_eq!(line["type_uid"], 2004 * 100 + 1);
        let sev = line["severity_id"].as_u64().unwrap();
        assert!((1..=4).contains(&sev));
        assert!(
            line["time"].as_i64().unwrap() > 1_700_000_000_000,
            "time in ms"
        );
        assert_eq!(line["metadata"]["version"], "1.3.0");
        assert_eq!(line["metadata"]["product"]["name"], "auditlake");
        assert!(line["metadata"]["product"]["vendor_name"].is_string());
        assert_eq!(line["finding_info"]["uid"], id.as_str());
        assert!(line["finding_info"]["title"].is_string());
        assert_eq!(line["finding_info"]["analytic"]["name"], kind.as_str());
        assert!(line["start_time"].as_i64() <= line["end_time"].as_i64());
        assert_eq!(line["metadata"]["tenant_uid"], "t-hand");
        let f = april()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id.as_str())
            .unwrap();
        let want = sev_ids.iter().find(|(s, _)| f["severity"] == *s).unwrap().1;
        assert_eq!(sev, want, "{kind}");
        assert_eq!(line["message"], f["reason"]);
        let settled = id == &zeroize || !f["suppressed"].is_null();
        assert_eq!(line["status_id"], if settled { 3 } else { 1 }, "{kind}");
        assert_eq!(line["is_alert"], !settled);
    }
    let acked = lines
        .iter()
        .find(|l| l["finding_info"]["uid"] == zeroize.as_str())
        .unwrap();
    assert!(acked["status_detail"]
        .as_str()
        .unwrap()
        .contains("by tester"));
    // `findings --format ocsf` writes the same objects (made at its own time).
    let strip = |t: &str| -> Vec<Value> {
        t.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v["time"] = Value::Null;
                v["finding_info"]["created_time"] = Value::Null;
                v
            })
            .collect()
    };
    assert_eq!(strip(&from_findings), strip(&from_report));
}

/// A lake of four keys with known lives (tenant t-keys), shared by the key tests.
fn keys_lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("findings-keys-lake");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let k = |t: i64, actor: &'static str, action: &'static str, ip: &str, ouid: &str| {
            key(rec(t, actor, action, ip), ouid)
        };
        let mut failed = k(
            at(2025, 4, 12, 10, 0),
            "actor-c",
            "LUNA_SIGN",
            "10.0.0.3",
            "k-young",
        );
        failed.ok = false;
        let recs = vec![
            // Created in 2023, used once then, and again in April 2025: past two years.
            k(
                at(2023, 1, 10, 10, 0),
                "actor-a",
                "LUNA_GENERATE_KEY",
                "10.0.0.1",
                "k-old",
            ),
            k(
                at(2023, 1, 11, 10, 0),
                "actor-a",
                "LUNA_SIGN",
                "10.0.0.1",
                "k-old",
            ),
            k(
                at(2025, 4, 10, 10, 0),
                "actor-b",
                "LUNA_SIGN",
                "10.0.0.2",
                "k-old",
            ),
            k(
                at(2025, 4, 11, 10, 0),
                "actor-b",
                "LUNA_SIGN",
                "10.0.0.2",
                "k-old",
            ),
            // Created in January 2025, used in April (and refused once).
            k(
                at(2025, 1, 5, 10, 0),
                "actor-c",
                "LUNA_GENERATE_KEY",
                "10.0.0.3",
                "k-young",
            ),
            k(
                at(2025, 4, 10, 11, 0),
                "actor-c",
                "LUNA_SIGN",
                "10.0.0.3",
                "k-young",
            ),
            failed,
            // Last used on 2 October 2024: 180 days later is 31 March 2025.
            k(
                at(2024, 10, 1, 10, 0),
                "actor-d",
                "LUNA_GENERATE_KEY",
                "10.0.0.4",
                "k-rest",
            ),
            k(
                at(2024, 10, 2, 12, 0),
                "actor-d",
                "LUNA_SIGN",
                "10.0.0.4",
                "k-rest",
            ),
            // Destroyed on 3 October 2024, and used once more the day after.
            k(
                at(2024, 10, 1, 10, 0),
                "actor-e",
                "LUNA_GENERATE_KEY",
                "10.0.0.5",
                "k-gone",
            ),
            k(
                at(2024, 10, 2, 10, 0),
                "actor-e",
                "LUNA_SIGN",
                "10.0.0.5",
                "k-gone",
            ),
            k(
                at(2024, 10, 3, 10, 0),
                "actor-e",
                "LUNA_DESTROY_OBJECT",
                "10.0.0.5",
                "k-gone",
            ),
            k(
                at(2024, 10, 4, 10, 0),
                "actor-f",
                "LUNA_SIGN",
                "10.0.0.6",
                "k-gone",
            ),
        ];
        let export = dir.join("keys.json");
        write_export(&export, "t-keys", &recs);
        let lake = dir.join("lake");
        assert_eq!(convert(&lake, &[export], &[]).code, 0);
        lake
    })
}

/// (kind, ouid, severity, reason) of the key findings of a period, sorted.
fn key_findings(
    from: &str,
    to: &str,
    rules: Option<&str>,
) -> Vec<(String, String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    let mut args = vec!["--from", from, "--to", to];
    if let Some(text) = rules {
        std::fs::write(&file, text).unwrap();
        args.extend(["--rules", file.to_str().unwrap()]);
    }
    let (_, doc) = report(keys_lake(), &args);
    let mut out: Vec<_> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| ["key_past_cryptoperiod", "unused_key"].contains(&f["kind"].as_str().unwrap()))
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("kind"), s("ouid"), s("severity"), s("reason"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_key_used_past_its_cryptoperiod_is_found_and_not_within_the_one_the_rules_set() {
    // Default: two years from creation. k-old (2023-01-10) is used in April 2025.
    let f = key_findings("2025-04-01", "2025-04-30", None);
    assert_eq!(f.len(), 1, "{f:?}");
    let (kind, ouid, sev, reason) = &f[0];
    assert_eq!(
        (kind.as_str(), ouid.as_str(), sev.as_str()),
        ("key_past_cryptoperiod", "k-old", "medium")
    );
    assert!(
        reason.contains("used 2 times from 2025-04-10 10:00:00 UTC"),
        "{reason}"
    );
    assert!(
        reason.contains("cryptoperiod of 730 days ran out on 2025-01-09"),
        "{reason}"
    );
    assert!(
        reason.contains("created on 2023-01-10") && reason.contains("NIST SP 800-57"),
        "{reason}"
    );
    // A longer cryptoperiod for that key: nothing to say.
    let f = key_findings(
        "2025-04-01",
        "2025-04-30",
        Some("[[cryptoperiods]]\nkey = \"k-old*\"\ndays = 1000\n"),
    );
    assert!(f.is_empty(), "{f:?}");
    // A short one for one tenant's k-young, with the policy it comes from; k-old keeps the default.
    let f = key_findings(
        "2025-04-01",
        "2025-04-30",
        Some("[[cryptoperiods]]\ntenant = \"t-keys\"\nkey = \"k-young\"\ndays = 30\nreason = \"key policy KP-4\"\n"),
    );
    let got: Vec<&str> = f.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(got, ["k-old", "k-young"], "{f:?}");
    assert!(
        f[1].3.contains("cryptoperiod of 30 days") && f[1].3.contains("key policy KP-4"),
        "{}",
        f[1].3
    );
    // The same finding has the same id over March to May.
    let id = |from: &str, to: &str| {
        let (_, doc) = report(keys_lake(), &["--from", from, "--to", to]);
        id_of(&doc, "key_past_cryptoperiod")
    };
    assert_eq!(
        id("2025-04-01", "2025-04-30"),
        id("2025-03-01", "2025-05-31")
    );
}

#[test]
fn a_key_unused_for_months_is_a_retirement_candidate_once_and_a_destroyed_one_is_not() {
    // k-rest falls quiet for 180 days on 31 March; k-gone, as quiet, was destroyed.
    let f = key_findings("2025-03-01", "2025-03-31", None);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        (f[0].0.as_str(), f[0].1.as_str(), f[0].2.as_str()),
        ("unused_key", "k-rest", "low")
    );
    assert!(
        f[0].3.contains("unused for 180 days on 2025-03-31") && f[0].3.contains("actor-d"),
        "{}",
        f[0].3
    );
    // Not again in April: it became a candidate once.
    assert!(key_findings("2025-04-01", "2025-04-30", None)
        .iter()
        .all(|x| x.0 != "unused_key"));
    // A tenant that retires keys after a year: k-rest is not a candidate in March.
    let f = key_findings("2025-03-01", "2025-03-31", Some("unused_key_days = 365\n"));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn the_key_inventory_lists_every_key_with_its_life_in_every_format() {
    let got = query_csv(
        keys_lake(),
        &[],
        "SELECT ouid, vendor, created_at, first_use, last_use, uses, failed_uses, actors, client_ips, \
         destroyed_at, uses_after_destroy, age_days FROM key_inventory ORDER BY ouid",
    );
    assert_eq!(
        got,
        "ouid,vendor,created_at,first_use,last_use,uses,failed_uses,actors,client_ips,destroyed_at,uses_after_destroy,age_days\n\
         k-gone,dpod,2024-10-01T10:00:00Z,2024-10-02T10:00:00Z,2024-10-04T10:00:00Z,2,0,2,2,2024-10-03T10:00:00Z,1,3\n\
         k-old,dpod,2023-01-10T10:00:00Z,2023-01-11T10:00:00Z,2025-04-11T10:00:00Z,3,0,2,2,,0,822\n\
         k-rest,dpod,2024-10-01T10:00:00Z,2024-10-02T12:00:00Z,2024-10-02T12:00:00Z,1,0,1,1,,0,1\n\
         k-young,dpod,2025-01-05T10:00:00Z,2025-04-10T11:00:00Z,2025-04-10T11:00:00Z,1,1,1,1,,0,97\n"
    );
    // `report keys` to the end of March: April's uses are not there yet; the use after
    // destruction is flagged.
    let (_, doc) = report(
        keys_lake(),
        &["keys", "--from", "2025-03-01", "--to", "2025-03-31"],
    );
    let rep = &doc["reports"][0];
    assert_eq!(rep["name"], "keys");
    assert_eq!(rep["rows"], 4);
    assert_eq!(rep["flagged"], 1);
    let old = rep["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ouid"] == "k-old")
        .unwrap();
    assert_eq!(old["uses"], "1");
    let gone = rep["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ouid"] == "k-gone")
        .unwrap();
    assert_eq!(gone["flagged"], true);
    // Not among the reports run by default.
    let (_, all) = report(keys_lake(), &["--from", "2025-03-01", "--to", "2025-03-31"]);
    assert!(all["reports"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["name"] != "keys"));
    // md, csv and html (whose tables sort by a click on a header).
    let dir = tempfile::tempdir().unwrap();
    for (format, out) in [("md", "keys.md"), ("html", "keys.html"), ("csv", "csv")] {
        let path = dir.path().join(out);
        let o = bin()
            .args(["report", "keys", "--format", format, "-o"])
            .arg(&path)
            .arg("--lake")
            .arg(keys_lake())
            .output()
            .unwrap();
        assert_success(&o);
        let text = if format == "csv" {
            std::fs::read_to_string(path.join("keys.csv")).unwrap()
        } else {
            std::fs::read_to_string(&path).unwrap()
        };
        assert!(
            text.contains("k-young") && text.contains("uses_after_destroy"),
            "{format}"
        );
        if format == "html" {
            assert!(text.contains("<script>") && text.contains("sort by this column"));
        }
    }
}

/// Two tenants with the same April: twelve keys destroyed within an hour, twelve failed
/// logins within ten minutes from one address, a new actor, a known actor on a new
/// address. Their first quarter differs: t-quiet does nothing of the kind; t-busy
/// rotates fifteen keys an hour every fortnight, has a client that fails fifteen logins
/// in a row every ten days, and sees a new actor and a new address every three days.
fn calibration_lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("findings-calibration-lake");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let mut exports = Vec::new();
        for tenant in ["t-quiet", "t-busy"] {
            let busy = tenant == "t-busy";
            let mut r = Vec::new();
            let start = days_from_civil(2025, 1, 1);
            for d in start..days_from_civil(2025, 5, 1) {
                let dow = (d + 4).rem_euclid(7);
                if dow == 0 || dow == 6 {
                    continue;
                }
                for (actor, ip, k) in [
                    ("a1", "10.0.0.1", "K1"),
                    ("a2", "10.0.0.2", "K2"),
                    ("a3", "10.0.0.3", "K3"),
                ] {
                    let t0 = d * MICROS_PER_DAY + 9 * H;
                    r.push(rec(t0, actor, "LUNA_LOGIN", ip));
                    r.push(key(rec(t0 + H, actor, "LUNA_SIGN", ip), k));
                }
            }
            let q1_end = days_from_civil(2025, 4, 1);
            if busy {
                // A nightly job: a1 signs at 02:00 every weekday of the first quarter.
                for d in start..q1_end {
                    if (1..=5).contains(&(d + 4).rem_euclid(7)) {
                        let t0 = d * MICROS_PER_DAY + 2 * H;
                        r.push(key(rec(t0, "a1", "LUNA_SIGN", "10.0.0.1"), "K1"));
                    }
                }
                // Keys made in January and first used ten weeks later, as a matter of course.
                for n in 0..11 {
                    let d = days_from_civil(2025, 1, 6) + (n / 5) * 7 + n % 5;
                    let k = leak(format!("L{n}"));
                    let t0 = d * MICROS_PER_DAY + 10 * H;
                    r.push(key(rec(t0, "a2", "LUNA_GENERATE_KEY", "10.0.0.2"), k));
                    r.push(key(
                        rec(t0 + 70 * MICROS_PER_DAY, "a2", "LUNA_SIGN", "10.0.0.2"),
                        k,
                    ));
                }
            }
            if busy {
                for (n, d) in (start + 20..q1_end).enumerate() {
                    let t0 = d * MICROS_PER_DAY + 13 * H;
                    let n = n as i64;
                    if n % 14 == 0 {
                        for i in 0..15 {
                            let k = leak(format!("R{d}-{i}"));
                            r.push(key(
                                rec(t0 - 2 * H + i * M, "a1", "LUNA_GENERATE_KEY", "10.0.0.1"),
                                k,
                            ));
                            r.push(key(
                                rec(t0 + i * 3 * M, "a1", "LUNA_DESTROY_OBJECT", "10.0.0.1"),
                                k,
                            ));
                        }
                    }
                    if n % 10 == 0 {
                        for i in 0..15 {
                            let mut f =
                                rec(t0 + 3 * H + i * 20_000_000, "a2", "LUNA_LOGIN", "10.9.9.9");
                            f.ok = false;
                            r.push(f);
                        }
                    }
                    if n % 3 == 0 {
                        r.push(rec(
                            t0 + 2 * H,
                            leak(format!("temp-{n}")),
                            "LUNA_LOGIN",
                            "10.0.0.3",
                        ));
                        r.push(rec(
                            t0 + 2 * H,
                            "a1",
                            "LUNA_LOGIN",
                            leak(format!("10.1.{}.{}", n / 200, n % 200)),
                        ));
                    }
                }
            }
            // April, the same in both: a1 at work at 02:30 one Wednesday; a key made in
            // January first used in April.
            r.push(key(
                rec(at(2025, 4, 16, 2, 30), "a1", "LUNA_SIGN", "10.0.0.1"),
                "K1",
            ));
            r.push(key(
                rec(
                    at(2025, 1, 20, 10, 0),
                    "a3",
                    "LUNA_GENERATE_KEY",
                    "10.0.0.3",
                ),
                "DK",
            ));
            r.push(key(
                rec(at(2025, 4, 16, 10, 0), "a3", "LUNA_SIGN", "10.0.0.3"),
                "DK",
            ));
            for i in 0..12 {
                let k = leak(format!("D{i}"));
                r.push(key(
                    rec(
                        at(2025, 4, 9, 10, 0) + i * M,
                        "a1",
                        "LUNA_GENERATE_KEY",
                        "10.0.0.1",
                    ),
                    k,
                ));
                r.push(key(
                    rec(
                        at(2025, 4, 10, 11, 0) + i * 4 * M,
                        "a1",
                        "LUNA_DESTROY_OBJECT",
                        "10.0.0.1",
                    ),
                    k,
                ));
            }
            for i in 0..12 {
                let mut f = rec(
                    at(2025, 4, 11, 15, 0) + i * 30_000_000,
                    "a3",
                    "LUNA_LOGIN",
                    "198.51.100.9",
                );
                f.ok = false;
                r.push(f);
            }
            r.push(rec(
                at(2025, 4, 14, 10, 0),
                "newbie",
                "LUNA_LOGIN",
                "10.0.0.2",
            ));
            r.push(rec(at(2025, 4, 15, 10, 0), "a1", "LUNA_LOGIN", "10.7.7.7"));
            let export = dir.join(format!("{tenant}.json"));
            write_export(&export, tenant, &r);
            exports.push(export);
        }
        let lake = dir.join("lake");
        assert_eq!(convert(&lake, &exports, &[]).code, 0);
        lake
    })
}

#[test]
fn each_rule_judges_the_same_counts_against_the_tenants_own_history() {
    let (_, doc) = report(
        calibration_lake(),
        &["--from", "2025-04-01", "--to", "2025-04-30"],
    );
    let sev = |tenant: &str, kind: &str| -> Vec<(String, String)> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["tenant_id"] == tenant && f["kind"] == kind)
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    for (kind, quiet, busy, quiet_says, busy_says) in [
        (
            "mass_key_destruction",
            "high",
            "low",
            "this tenant's busiest 60 minutes in the 90 days before had 0",
            "within this tenant's routine: this tenant's busiest 60 minutes in the 90 days before had 15",
        ),
        (
            "failed_login_burst",
            "medium",
            "low",
            "no address failed that often in the 90 days before",
            "within this tenant's routine: its worst 10 minutes from one address in the 90 days before had 15",
        ),
        ("new_actor", "medium", "low", "this tenant saw 0 new actors", "routine for this tenant: 24 new actors"),
        (
            "dormant_key",
            "medium",
            "low",
            "this tenant saw 0 keys first used over 60 days after creation",
            "routine for this tenant: 11 keys first used over 60 days after creation",
        ),
        (
            "new_client_ip",
            "medium",
            "low",
            "this tenant saw 0 new addresses of known actors",
            "routine for this tenant: 24 new addresses of known actors",
        ),
    ] {
        let q = sev("t-quiet", kind);
        let b = sev("t-busy", kind);
        assert_eq!(q.len(), 1, "{kind} in t-quiet: {q:?}");
        assert_eq!(b.len(), 1, "{kind} in t-busy: {b:?}");
        assert_eq!(q[0].0, quiet, "{kind} in t-quiet: {}", q[0].1);
        assert_eq!(b[0].0, busy, "{kind} in t-busy: {}", b[0].1);
        assert!(q[0].1.contains(quiet_says), "{kind}: {}", q[0].1);
        assert!(b[0].1.contains(busy_says), "{kind}: {}", b[0].1);
    }
    // Working at 02:30 is off hours for the tenant that never does, not for the one with
    // a nightly job.
    let night = |tenant: &str| {
        sev(tenant, "off_hours")
            .into_iter()
            .filter(|(_, r)| r.contains("on Wednesday 2025-04-16 from 02:30"))
            .count()
    };
    assert_eq!((night("t-quiet"), night("t-busy")), (1, 0));
    // A lower threshold does not turn a tenant's routine into news.
    let (_, doc) = report(
        calibration_lake(),
        &["--from", "2025-04-01", "--to", "2025-04-30", "--rules", {
            let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("calibration-rules.toml");
            std::fs::write(&p, "mass_destroy_count = 5\n").unwrap();
            Box::leak(p.to_string_lossy().into_owned().into_boxed_str())
        }],
    );
    let busy: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["tenant_id"] == "t-busy" && f["kind"] == "mass_key_destruction")
        .collect();
    assert_eq!(busy.len(), 1);
    assert_eq!(
        busy[0]["severity"], "low",
        "12 against a routine of 15 stays low at any threshold"
    );
}

#[test]
fn findings_over_a_year_within_a_small_memory_limit_are_the_same() {
    // The sample lake is a year of four tenants (7,076 rows). Under 6.8 MiB the period does not fit in a
    // quarter of the limit (7,076 x 256 bytes > 1.78 MB): every rule streams it from the lake again.
    let run = |limit: &str| {
        let out = bin()
            .args([
                "-v",
                "findings",
                "--format",
                "ndjson",
                "--memory-limit",
                limit,
                "--lake",
            ])
            .arg(crate::query::sample_lake())
            .output()
            .unwrap();
        assert_success(&out);
        let mut got: Vec<(String, String, String)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| f[k].as_str().unwrap().to_string();
                (s("id"), s("severity"), s("reason"))
            })
            .collect();
        got.sort();
        (got, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (big, log) = run("4G");
    assert!(
        log.contains("table=\"events\"") && log.contains("in_memory=true"),
        "{log}"
    );
    let (small, log) = run("6.8M");
    assert!(log.contains("in_memory=false"), "{log}");
    assert!(big.len() > 100, "a year has findings: {}", big.len());
    assert_eq!(small, big);
}

#[test]
fn a_key_whose_users_suddenly_widen_is_found_and_one_used_widely_all_along_is_not() {
    // K1 had two users in the first quarter, K9 ten; in April three and four of the
    // tenant's other actors, who worked in another partition, use them.
    let dir = tempfile::tempdir().unwrap();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut r = Vec::new();
    for d in days_from_civil(2025, 1, 1)..days_from_civil(2025, 4, 1) {
        let t0 = d * MICROS_PER_DAY + 10 * H;
        // b0..b3 work for the tenant too, with K5 of partition 200.
        for b in 0..4 {
            let mut u = key(
                rec(
                    t0 + 2 * H + b * M,
                    leak(format!("b{b}")),
                    "LUNA_SIGN",
                    "10.0.0.2",
                ),
                "K5",
            );
            u.part = "200";
            r.push(u);
        }
        for a in 0..10 {
            let actor = leak(format!("a{a}"));
            r.push(key(rec(t0 + a * M, actor, "LUNA_SIGN", "10.0.0.1"), "K9"));
            if a < 2 {
                r.push(key(
                    rec(t0 + H + a * M, actor, "LUNA_SIGN", "10.0.0.1"),
                    "K1",
                ));
            }
        }
    }
    for b in 0..4 {
        let actor = leak(format!("b{b}"));
        let t = at(2025, 4, 10, 10, 0) + b * H;
        r.push(key(rec(t, actor, "LUNA_SIGN", "10.0.0.2"), "K9"));
        if b < 3 {
            r.push(key(rec(t + M, actor, "LUNA_SIGN", "10.0.0.2"), "K1"));
        }
    }
    let export = dir.path().join("wide.json");
    write_export(&export, "t-wide", &r);
    let lake = dir.path().join("lake");
    assert_eq!(convert(&lake, &[export], &[]).code, 0);
    let (_, doc) = report(&lake, &["--from", "2025-04-01", "--to", "2025-04-30"]);
    let f = of_kind(&doc, "key_users_widen");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].0.as_str(), f[0].3.as_str()), ("medium", "K1"));
    assert!(
        f[0].4.contains("gained 3 users")
            && f[0]
                .4
                .contains("where 2 used it in the 90 days before (a0, a1)"),
        "{}",
        f[0].4
    );
}
