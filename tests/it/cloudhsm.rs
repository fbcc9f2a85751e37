//! AWS CloudHSM audit logs (issue 16): each of the four forms CloudWatch Logs hands them
//! out converts to the expected rows, overlapping exports dedupe exactly in any order,
//! and a block that is no event is rejected with its text. The fixtures are written here
//! in the documented shapes (made-up cluster, HSM and users).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{col, convert, lake_rows, rejects, Row};

const CLUSTER: &str = "cluster-4mxq7tbz2wd";
const HSM: &str = "hsm-pq3xd7kafu2";
const GROUP: &str = "/aws/cloudhsm/cluster-4mxq7tbz2wd";

/// One audit event of the fixture, and the row fields it must become.
struct Event {
    usecs: i64,
    day: &'static str,
    block: String,
    action: &'static str,
    status: &'static str,
    outcome: &'static str,
    actor: Option<&'static str>,
    role: Option<&'static str>,
    ouid: Option<&'static str>,
    seq: &'static str,
    meta: Value,
}

/// Three events: a CO login (` : `), a key generation (`: `), and a failed CU login on
/// the next day with tab separators and its fields in another order.
fn events() -> Vec<Event> {
    vec![
        Event {
            usecs: 1_717_243_200_123_456,
            day: "2024-06-01",
            block: "Time: 06/01/24 12:00:00.123456, usecs:1717243200123456\n\
                    Sequence No : 0x10\n\
                    Reboot counter : 0x2a\n\
                    Command Type(hex) : CN_MGMT_CMD (0x0)\n\
                    Opcode : CN_LOGIN (0xd)\n\
                    Session Handle : 0x4008001\n\
                    Response : 0:HSM Return: SUCCESS\n\
                    Log type : MGMT_USER_DETAILS_LOG (2)\n\
                    User Name : ops_admin\n\
                    User Type : CN_CRYPTO_OFFICER (2)"
                .into(),
            action: "CN_LOGIN",
            status: "0:HSM Return: SUCCESS",
            outcome: "success",
            actor: Some("ops_admin"),
            role: Some("CO"),
            ouid: None,
            seq: "0x10",
            meta: json!({
                "Time": "06/01/24 12:00:00.123456, usecs:1717243200123456",
                "Sequence No": "0x10", "Reboot counter": "0x2a",
                "Command Type(hex)": "CN_MGMT_CMD (0x0)", "Opcode": "CN_LOGIN (0xd)",
                "Session Handle": "0x4008001", "Response": "0:HSM Return: SUCCESS",
                "Log type": "MGMT_USER_DETAILS_LOG (2)", "User Name": "ops_admin",
                "User Type": "CN_CRYPTO_OFFICER (2)"
            }),
        },
        Event {
            usecs: 1_717_243_205_000_001,
            day: "2024-06-01",
            block: "Time: 06/01/24 12:00:05.000001, usecs:1717243205000001\n\
                    Sequence No: 0x11\n\
                    Reboot counter: 0x2a\n\
                    Command Type(hex): CN_MGMT_CMD (0x0)\n\
                    Opcode: CN_GENERATE_KEY (0x17)\n\
                    Session Handle: 0x4008002\n\
                    Response: 0:HSM Return: SUCCESS\n\
                    Log type: MGMT_KEY_DETAILS_LOG (1)\n\
                    Priv/Secret Key Handle: 524301\n\
                    Public Key Handle: 0"
                .into(),
            action: "CN_GENERATE_KEY",
            status: "0:HSM Return: SUCCESS",
            outcome: "success",
            actor: None,
            role: None,
            ouid: Some("524301"),
            seq: "0x11",
            meta: json!({
                "Time": "06/01/24 12:00:05.000001, usecs:1717243205000001",
                "Sequence No": "0x11", "Reboot counter": "0x2a",
                "Command Type(hex)": "CN_MGMT_CMD (0x0)", "Opcode": "CN_GENERATE_KEY (0x17)",
                "Session Handle": "0x4008002", "Response": "0:HSM Return: SUCCESS",
                "Log type": "MGMT_KEY_DETAILS_LOG (1)", "Priv/Secret Key Handle": "524301",
                "Public Key Handle": "0"
            }),
        },
        Event {
            usecs: 1_717_286_401_500_000,
            day: "2024-06-02",
            block: "Time: 06/02/24 00:00:01.500000, usecs:1717286401500000\n\
                    Opcode\t: CN_LOGIN (0xd)\n\
                    Reboot counter\t: 0x2a\n\
                    Sequence No\t: 0x12\n\
                    Command Type(hex)\t: CN_MGMT_CMD (0x0)\n\
                    Session Handle\t: 0x4008003\n\
                    Response\t: 163:HSM Error: RET_USER_LOGIN_FAILURE\n\
                    Log type\t: MGMT_USER_DETAILS_LOG (2)\n\
                    User Name\t: signer\n\
                    User Type\t: CN_CRYPTO_USER (1)"
                .into(),
            action: "CN_LOGIN",
            status: "163:HSM Error: RET_USER_LOGIN_FAILURE",
            outcome: "failure",
            actor: Some("signer"),
            role: Some("CU"),
            ouid: None,
            seq: "0x12",
            meta: json!({
                "Time": "06/02/24 00:00:01.500000, usecs:1717286401500000",
                "Opcode": "CN_LOGIN (0xd)", "Reboot counter": "0x2a", "Sequence No": "0x12",
                "Command Type(hex)": "CN_MGMT_CMD (0x0)", "Session Handle": "0x4008003",
                "Response": "163:HSM Error: RET_USER_LOGIN_FAILURE",
                "Log type": "MGMT_USER_DETAILS_LOG (2)", "User Name": "signer",
                "User Type": "CN_CRYPTO_USER (1)"
            }),
        },
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `2024-06-01T12:00:00.123Z`: the millisecond ISO-8601 time CloudWatch prefixes.
fn iso_ms(usecs: i64) -> String {
    let ms = usecs / 1000;
    let secs = ms / 1000;
    let day = secs.div_euclid(86_400);
    let (y, m, d) = auditlake::time::civil_from_days(day);
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

/// The plain text blocks, one blank line between them.
fn text_blocks(evs: &[&Event]) -> String {
    let blocks: Vec<&str> = evs.iter().map(|e| e.block.as_str()).collect();
    format!("{}\n", blocks.join("\n\n"))
}

/// `aws logs filter-log-events` output.
fn filter_log_events(evs: &[&Event]) -> String {
    let events: Vec<Value> = evs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "logStreamName": HSM,
                "timestamp": e.usecs / 1000,
                "message": e.block,
                "ingestionTime": e.usecs / 1000 + 900,
                "eventId": format!("3816219447000000000000000000000000000000000000000{i:07}"),
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({"events": events, "searchedLogStreams": []})).unwrap()
}

/// A CloudWatch export-to-S3 object, before gzip.
fn s3_export(evs: &[&Event]) -> String {
    evs.iter()
        .map(|e| format!("{} {}\n", iso_ms(e.usecs), e.block))
        .collect()
}

/// Subscription deliveries: a CONTROL_MESSAGE, then DATA_MESSAGEs of one event each,
/// concatenated with no separator, before gzip.
fn subscription(evs: &[&Event]) -> String {
    let mut out = json!({
        "messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs",
        "logGroup": "", "logStream": "", "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 1717243100000i64,
                       "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]
    })
    .to_string();
    for (i, e) in evs.iter().enumerate() {
        out.push_str(
            &json!({
                "messageType": "DATA_MESSAGE", "owner": "111122223333",
                "logGroup": GROUP, "logStream": HSM, "subscriptionFilters": ["to-firehose"],
                "logEvents": [{"id": format!("3816219447{i:046}"),
                               "timestamp": e.usecs / 1000, "message": e.block}]
            })
            .to_string(),
        );
    }
    out
}

/// The row an event must become; `hsm` when the form names the log stream.
fn expected(e: &Event, hsm: bool) -> Row {
    let n = |v: Option<&str>| v.unwrap_or("∅").to_string();
    let trace = if hsm {
        format!("{CLUSTER}/{HSM}/0x2a/{}", e.seq)
    } else {
        format!("{CLUSTER}/-/0x2a/{}/{}", e.seq, e.usecs)
    };
    let hsm = hsm.then_some(HSM);
    vec![
        CLUSTER.into(),
        e.day.into(),
        e.usecs.to_string(),
        "aws-cloudhsm".into(),
        n(hsm),
        "∅".into(),
        n(e.actor),
        e.action.into(),
        e.status.into(),
        e.outcome.into(),
        trace,
        "∅".into(),
        n(hsm),
        "∅".into(),
        n(e.role),
        n(e.ouid),
        e.meta.to_string(),
        "∅".into(),
    ]
}

/// The lake's rows with `meta` normalised (parsed and printed again), sorted by time.
fn rows_by_time(lake: &Path) -> Vec<Row> {
    let mut rows = lake_rows(lake);
    for r in &mut rows {
        let m = col("meta");
        if r[m] != "∅" {
            r[m] = serde_json::from_str::<Value>(&r[m]).unwrap().to_string();
        }
    }
    rows.sort_by_key(|r| r[2].parse::<i64>().unwrap());
    rows
}

fn assert_rows(lake: &Path, hsm: bool) {
    let evs = events();
    let got = rows_by_time(lake);
    let want: Vec<Row> = evs.iter().map(|e| expected(e, hsm)).collect();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert_eq!(a, b, "column {i} of the row at {}", w[2]);
        }
    }
}

fn ok(run: &crate::common::Run, written: u64) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.n("written"), written, "{}", run.summary);
    assert_eq!(run.n("rejected"), 0, "{}", run.summary);
}

#[test]
fn text_blocks_convert_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let all: Vec<&Event> = evs.iter().collect();
    let f = write(dir.path(), "audit.log", text_blocks(&all).as_bytes());
    let lake = dir.path().join("lake");
    ok(&convert(&lake, &[f], &["--tenant", CLUSTER]), 3);
    assert_rows(&lake, false);
}

#[test]
fn filter_log_events_json_converts_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let all: Vec<&Event> = evs.iter().collect();
    let f = write(
        dir.path(),
        "events.json",
        filter_log_events(&all).as_bytes(),
    );
    let lake = dir.path().join("lake");
    ok(&convert(&lake, &[f], &["--tenant", CLUSTER]), 3);
    assert_rows(&lake, true);
}

#[test]
fn an_s3_export_converts_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let all: Vec<&Event> = evs.iter().collect();
    // No .gz name: the content says what it is.
    let f = write(dir.path(), "000000", &gzip(s3_export(&all).as_bytes()));
    let lake = dir.path().join("lake");
    ok(&convert(&lake, &[f], &["--tenant", CLUSTER]), 3);
    assert_rows(&lake, false);
}

#[test]
fn subscription_envelopes_convert_field_by_field_with_the_cluster_from_the_log_group() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let all: Vec<&Event> = evs.iter().collect();
    let f = write(
        dir.path(),
        "delivery-1",
        &gzip(subscription(&all).as_bytes()),
    );
    let lake = dir.path().join("lake");
    // No --tenant: the log group names the cluster; the CONTROL_MESSAGE is no event.
    let run = convert(&lake, &[f], &[]);
    ok(&run, 3);
    assert_eq!(run.n("records_read"), 3);
    assert_rows(&lake, true);
}

#[test]
fn overlapping_exports_in_any_order_give_one_row_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let a = write(
        dir.path(),
        "a.json",
        filter_log_events(&[&evs[0], &evs[1]]).as_bytes(),
    );
    let b = write(
        dir.path(),
        "b",
        &gzip(subscription(&[&evs[1], &evs[2]]).as_bytes()),
    );
    let t = ["--tenant", CLUSTER];
    let mut lakes = Vec::new();
    for (i, order) in [vec![&a, &b], vec![&b, &a]].into_iter().enumerate() {
        let lake = dir.path().join(format!("lake{i}"));
        let first = convert(&lake, &[order[0].clone()], &t);
        ok(&first, 2);
        let second = convert(&lake, &[order[1].clone()], &t);
        assert_eq!(second.code, 0, "{}", second.stderr);
        assert_eq!(
            (second.n("written"), second.n("duplicates")),
            (1, 1),
            "{}",
            second.summary
        );
        assert_rows(&lake, true);
        lakes.push(rows_by_time(&lake));
    }
    // Both in one run.
    let lake = dir.path().join("lake-one-run");
    let run = convert(&lake, &[b.clone(), a.clone()], &t);
    assert_eq!((run.n("written"), run.n("duplicates")), (3, 1));
    assert_rows(&lake, true);
    assert_eq!(lakes[0], lakes[1]);
}

#[test]
fn a_block_that_is_no_event_is_rejected_with_its_text_and_the_rest_convert() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let text = format!(
        "{}\n\nthis line is no audit field\nnor is this one\n\n\
         Time: 13/45/24 99:00:00, usecs:none\nOpcode : CN_LOGIN (0xd)\n\n{}\n",
        evs[0].block, evs[2].block
    );
    let f = write(dir.path(), "audit.txt", text.as_bytes());
    let lake = dir.path().join("lake");
    let run = convert(&lake, std::slice::from_ref(&f), &["--tenant", CLUSTER]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (run.n("written"), run.n("rejected")),
        (2, 2),
        "{}",
        run.summary
    );
    let rej = rejects(&lake);
    let reasons: Vec<(&str, &str)> = rej
        .iter()
        .map(|r| (r["reason"].as_str().unwrap(), r["raw"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            (
                "unparseable_block",
                "this line is no audit field\nnor is this one"
            ),
            (
                "time_invalid",
                "Time: 13/45/24 99:00:00, usecs:none\nOpcode : CN_LOGIN (0xd)"
            ),
        ]
    );
    let offset = text.find("this line").unwrap() as u64;
    assert_eq!(rej[0]["offset"], json!(offset));
    assert_eq!(rej[0]["index"], json!(1));
    assert_eq!(rej[0]["source"], json!(f.display().to_string()));
}

#[test]
fn text_without_a_log_group_or_tenant_fails_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let f = write(dir.path(), "audit.log", text_blocks(&[&evs[0]]).as_bytes());
    let lake = dir.path().join("lake");
    let run = convert(&lake, &[f], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.n("failed"), 1);
    assert!(
        run.stderr.contains("--tenant") && run.stderr.contains("/aws/cloudhsm/"),
        "{}",
        run.stderr
    );
}

/// Every opcode of the CloudHSM audit log reference and its category, written out again
/// here on purpose (issue 16's grouping).
const OPCODES: &[(&str, &str)] = &[
    ("CN_LOGIN", "auth"),
    ("CN_LOGOUT", "other"),
    ("CN_APP_FINALIZE", "other"),
    ("CN_CLOSE_SESSION", "other"),
    ("CN_CREATE_USER", "user_admin"),
    ("CN_CREATE_CO", "user_admin"),
    ("CN_CREATE_APPLIANCE_USER", "user_admin"),
    ("CN_DELETE_USER", "user_admin"),
    ("CN_CHANGE_PSWD", "user_admin"),
    ("CN_SET_M_VALUE", "user_admin"),
    ("CN_APPROVE_TOKEN", "user_admin"),
    ("CN_GENERATE_KEY", "key_create"),
    ("CN_GENERATE_KEY_PAIR", "key_create"),
    ("CN_CREATE_OBJECT", "key_create"),
    ("CN_UNWRAP_KEY", "key_create"),
    ("CN_MODIFY_OBJECT", "key_modify"),
    ("CN_SHARE_OBJECT", "key_modify"),
    ("CN_WRAP_KEY", "key_use"),
    ("CN_NIST_AES_WRAP", "key_use"),
    ("CN_DESTROY_OBJECT", "key_destroy"),
    ("CN_TOMBSTONE_OBJECT", "key_destroy"),
    ("CN_INSERT_MASKED_OBJECT_USER", "replication"),
    ("CN_EXTRACT_MASKED_OBJECT_USER", "replication"),
    ("CN_CLONE_SOURCE_INIT", "replication"),
    ("CN_CLONE_SOURCE_STAGE1", "replication"),
    ("CN_CLONE_TARGET_INIT", "replication"),
    ("CN_CLONE_TARGET_STAGE1", "replication"),
    ("CN_CERT_AUTH_STORE_CERT", "other"),
    ("CN_CERT_AUTH_VALIDATE_PEER_CERTS", "other"),
    ("CN_CERT_AUTH_SOURCE_KEY_EXCHANGE", "replication"),
    ("CN_CERT_AUTH_TARGET_KEY_EXCHANGE", "replication"),
    ("CN_INIT_TOKEN", "partition_admin"),
    ("CN_INIT_DONE", "partition_admin"),
    ("CN_GEN_KEY_ENC_KEY", "partition_admin"),
    ("CN_GEN_PSWD_ENC_KEY", "partition_admin"),
    ("CN_CLOSE_PARTITION_SESSIONS", "partition_admin"),
    ("CN_STORE_KBK_SHARE", "partition_admin"),
    ("CN_SET_NODEID", "partition_admin"),
    ("CN_ZEROIZE", "partition_admin"),
];

#[test]
fn the_catalog_holds_every_cloudhsm_opcode_and_the_views_use_it() {
    use crate::query::query;
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let all: Vec<&Event> = evs.iter().collect();
    let f = write(dir.path(), "delivery", &gzip(subscription(&all).as_bytes()));
    let lake = dir.path().join("lake");
    ok(&convert(&lake, &[f], &[]), 3);
    let rows = query(
        &lake,
        &[],
        "SELECT action, category, description FROM action_catalog \
         WHERE vendor = 'aws-cloudhsm' ORDER BY action",
    );
    let mut want: Vec<(&str, &str)> = OPCODES.to_vec();
    want.sort();
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            assert!(!r["description"].as_str().unwrap().is_empty());
            (
                r["action"].as_str().unwrap(),
                r["category"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // The views see the CloudHSM rows through the catalog.
    let cats = query(
        &lake,
        &[],
        "SELECT action, outcome, category FROM events_categorized ORDER BY time",
    );
    let cats: Vec<(&str, &str, &str)> = cats
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["category"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cats,
        vec![
            ("CN_LOGIN", "success", "auth"),
            ("CN_GENERATE_KEY", "success", "key_create"),
            ("CN_LOGIN", "failure", "auth"),
        ]
    );
    let failed = query(
        &lake,
        &[],
        "SELECT tenant_id, failures, actors FROM failed_logins",
    );
    assert_eq!(
        failed,
        vec![json!({"tenant_id": CLUSTER, "failures": 1, "actors": 1})]
    );
}

fn status_json(lake: &Path) -> Value {
    let out = crate::common::bin()
        .args(["status", "--json", "--lake"])
        .arg(lake)
        .output()
        .unwrap();
    crate::common::assert_success(&out);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_shows_each_hsms_sequence_numbers_and_the_gaps_between_them() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let lake = dir.path().join("lake");
    // 0x10 and 0x12 of the HSM: 0x11 is missing.
    let gappy = write(
        dir.path(),
        "gappy",
        &gzip(subscription(&[&evs[0], &evs[2]]).as_bytes()),
    );
    ok(&convert(&lake, &[gappy], &[]), 2);
    let s = status_json(&lake);
    assert_eq!(
        s["tenants"][0]["sequences"],
        json!([{"hsm_id": HSM, "reboot_counter": "0x2a", "first": "0x10", "last": "0x12",
                "events": 2, "gaps": ["0x11"], "missing": 1}])
    );
    let out = crate::common::bin()
        .args(["status", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "sequence {HSM} reboot 0x2a: 0x10 .. 0x12 (2 events), 1 missing: 0x11"
        )),
        "{text}"
    );
    // The missing event arrives (in another form): no gap left.
    let rest = write(
        dir.path(),
        "rest.json",
        filter_log_events(&[&evs[1]]).as_bytes(),
    );
    ok(&convert(&lake, &[rest], &["--tenant", CLUSTER]), 1);
    let s = status_json(&lake);
    assert_eq!(s["tenants"][0]["sequences"][0]["gaps"], json!([]));
    assert_eq!(s["tenants"][0]["sequences"][0]["events"], json!(3));
    // DPoD tenants show no sequences at all.
    let dpod = dir.path().join("dpod");
    convert(&dpod, &[crate::common::sample_files()[0].clone()], &[]);
    let s = status_json(&dpod);
    assert!(s["tenants"][0].get("sequences").is_none(), "{s}");
}

/// The views named in SPEC §4.
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
];

fn sorted(rows: Vec<Value>) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

#[test]
fn every_view_over_a_mixed_lake_keeps_dpod_answers_and_counts_the_cluster() {
    use crate::query::query;
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let all: Vec<&Event> = evs.iter().collect();
    let f = write(dir.path(), "delivery", &gzip(subscription(&all).as_bytes()));
    // Two months of one DPoD tenant, alone and next to the cluster.
    let dpod: Vec<PathBuf> = crate::common::sample_files().into_iter().take(2).collect();
    let (alone, lake) = (dir.path().join("dpod"), dir.path().join("lake"));
    assert_eq!(convert(&alone, &dpod, &[]).code, 0);
    let mut inputs = dpod.clone();
    inputs.push(f);
    let run = convert(&lake, &inputs, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The DPoD tenant's answers are those of the DPoD-only lake, view by view.
    for v in VIEWS {
        let sql = format!("SELECT * FROM {v} WHERE tenant_id <> '{CLUSTER}'");
        let want = sorted(query(&alone, &[], &format!("SELECT * FROM {v}")));
        assert!(!want.is_empty() || *v == "privileged_actions", "{v}");
        assert_eq!(sorted(query(&lake, &[], &sql)), want, "{v}");
    }
    let of = |sql: &str| query(&lake, &[], &sql.replace("{C}", CLUSTER));
    // The cluster's, computed by hand from the fixture: two events on Saturday
    // 2024-06-01, a failed CU login on Sunday just after midnight.
    let daily: Vec<_> = of("SELECT * FROM daily_activity WHERE tenant_id = '{C}' ORDER BY day")
        .iter()
        .map(|r| {
            (
                r["day"].clone(),
                r["events"].clone(),
                r["failures"].clone(),
                r["actors"].clone(),
                r["keys_used"].clone(),
            )
        })
        .collect();
    assert_eq!(
        daily,
        vec![
            (json!("2024-06-01"), json!(2), json!(0), json!(1), json!(0)),
            (json!("2024-06-02"), json!(1), json!(1), json!(1), json!(0)),
        ]
    );
    let roles: Vec<_> = of(
        "SELECT role, action, outcome, events FROM actions_by_role WHERE tenant_id = '{C}' \
         ORDER BY action DESC, role",
    )
    .iter()
    .map(|r| {
        (
            r["role"].clone(),
            r["action"].clone(),
            r["outcome"].clone(),
            r["events"].clone(),
        )
    })
    .collect();
    assert_eq!(
        roles,
        vec![
            (json!("CO"), json!("CN_LOGIN"), json!("success"), json!(1)),
            (json!("CU"), json!("CN_LOGIN"), json!("failure"), json!(1)),
            (
                Value::Null,
                json!("CN_GENERATE_KEY"),
                json!("success"),
                json!(1)
            ),
        ]
    );
    let key =
        of("SELECT created_at FROM key_lifecycle WHERE tenant_id = '{C}' AND ouid = '524301'");
    assert_eq!(key.len(), 1);
    assert_eq!(
        auditlake::time::parse_time(key[0]["created_at"].as_str().unwrap()),
        Some(evs[1].usecs)
    );
    let off = of("SELECT sum(events) AS n FROM off_hours_activity WHERE tenant_id = '{C}'");
    assert_eq!(off[0]["n"], json!(3));
    let privileged = of("SELECT count(*) AS n FROM privileged_actions WHERE tenant_id = '{C}'");
    assert_eq!(privileged[0]["n"], json!(0));
}

fn generate(out: &Path, form: &str, clusters: &str) {
    let out = crate::common::bin()
        .args([
            "generate",
            "--vendor",
            "aws-cloudhsm",
            "--cloudhsm-form",
            form,
        ])
        .args([
            "--events",
            "800",
            "--months",
            "2",
            "--seed",
            "11",
            "--tenants",
            clusters,
        ])
        .arg("--output")
        .arg(out)
        .output()
        .unwrap();
    crate::common::assert_success(&out);
}

#[test]
fn generated_cloudhsm_logs_convert_in_every_form_to_the_same_gap_free_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    let mut lakes = Vec::new();
    for form in ["subscription", "filter-log-events", "s3-export", "text"] {
        let out = dir.path().join(form);
        generate(&out, form, "1");
        let cluster = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .min()
            .unwrap()[..19]
            .to_string();
        let lake = dir.path().join(format!("lake-{form}"));
        let run = convert(&lake, &[out], &["--tenant", &cluster]);
        assert_eq!(run.code, 0, "{form}: {}", run.stderr);
        assert_eq!(run.n("rejected"), 0, "{form}: {}", run.summary);
        assert!(run.n("duplicates") > 0, "{form}: the months overlap");
        written.push(run.n("written"));
        let s = status_json(&lake);
        let seqs = s["tenants"][0]["sequences"].as_array().unwrap();
        assert!(!seqs.is_empty(), "{form}");
        let held: u64 = seqs.iter().map(|q| q["events"].as_u64().unwrap()).sum();
        assert_eq!(held, run.n("written"), "{form}");
        for q in seqs {
            assert_eq!(q["gaps"], json!([]), "{form}: {q}");
        }
        lakes.push(lake);
    }
    assert_eq!(written, vec![800; 4]);
    // The forms that name the HSM give the very same rows.
    assert_eq!(lake_rows(&lakes[0]), lake_rows(&lakes[1]));
    // Two clusters in subscription deliveries: two tenants, no --tenant needed.
    let out = dir.path().join("two");
    generate(&out, "subscription", "2");
    let lake = dir.path().join("lake-two");
    let run = convert(&lake, &[out], &[]);
    assert_eq!((run.code, run.n("written"), run.n("rejected")), (0, 800, 0));
    assert_eq!(status_json(&lake)["tenants"].as_array().unwrap().len(), 2);
}

#[test]
fn ocsf_views_give_the_documented_class_activity_and_status_ids_for_every_vendor() {
    use crate::query::query;
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let all: Vec<&Event> = evs.iter().collect();
    let f = write(dir.path(), "delivery", &gzip(subscription(&all).as_bytes()));
    let dpod: Vec<PathBuf> = crate::common::sample_files().into_iter().take(1).collect();
    let lake = dir.path().join("lake");
    let mut inputs = dpod;
    inputs.push(f);
    assert_eq!(convert(&lake, &inputs, &[]).code, 0);
    let of = |sql: &str| query(&lake, &[], &sql.replace("{C}", CLUSTER));
    let tuple =
        |r: &Value, keys: &[&str]| -> Vec<Value> { keys.iter().map(|k| r[k].clone()).collect() };
    // The cluster's logins, field by field.
    let auth = of("SELECT * FROM ocsf_authentication WHERE tenant_id = '{C}' ORDER BY time");
    let keys = [
        "class_uid",
        "class_name",
        "category_uid",
        "activity_id",
        "activity_name",
        "type_uid",
        "status_id",
        "status",
        "status_detail",
        "severity_id",
        "actor_user_name",
        "src_endpoint_ip",
        "device_uid",
        "api_operation",
        "resource_uid",
        "metadata_uid",
        "metadata_product_vendor_name",
        "metadata_product_name",
        "tenant_id",
    ];
    let got: Vec<Vec<Value>> = auth.iter().map(|r| tuple(r, &keys)).collect();
    let login = |e: &Event, ok: bool| {
        vec![
            json!(3002),
            json!("Authentication"),
            json!(3),
            json!(1),
            json!("Logon"),
            json!(300201),
            json!(if ok { 1 } else { 2 }),
            json!(if ok { "Success" } else { "Failure" }),
            json!(e.status),
            json!(1),
            json!(e.actor),
            Value::Null,
            json!(HSM),
            json!("CN_LOGIN"),
            Value::Null,
            json!(format!("{CLUSTER}/{HSM}/0x2a/{}", e.seq)),
            json!("Amazon Web Services"),
            json!("AWS CloudHSM"),
            json!(CLUSTER),
        ]
    };
    assert_eq!(got, vec![login(&evs[0], true), login(&evs[2], false)]);
    let t = auditlake::time::parse_time(auth[0]["time"].as_str().unwrap());
    assert_eq!(t, Some(evs[0].usecs));
    // The key generation: an API call and an entity created.
    for (view, class, name) in [
        ("ocsf_api_activity", 6003, "API Activity"),
        ("ocsf_entity_management", 3004, "Entity Management"),
    ] {
        let rows = of(&format!("SELECT * FROM {view} WHERE tenant_id = '{{C}}'"));
        let got: Vec<Vec<Value>> = rows
            .iter()
            .map(|r| {
                tuple(
                    r,
                    &[
                        "class_uid",
                        "class_name",
                        "activity_id",
                        "activity_name",
                        "type_uid",
                        "status_id",
                        "resource_uid",
                        "api_operation",
                    ],
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![vec![
                json!(class),
                json!(name),
                json!(1),
                json!("Create"),
                json!(class * 100 + 1),
                json!(1),
                json!("524301"),
                json!("CN_GENERATE_KEY")
            ]],
            "{view}"
        );
    }
    // Over every vendor: each event is in exactly one of authentication and API activity,
    // entity management is the key create/modify/destroy part of API activity, and the ids
    // are the documented ones.
    let n = |sql: &str| of(sql)[0]["n"].as_u64().unwrap();
    let events = n("SELECT count(*) AS n FROM events");
    let auth_n = n("SELECT count(*) AS n FROM ocsf_authentication");
    let api_n = n("SELECT count(*) AS n FROM ocsf_api_activity");
    assert_eq!(auth_n + api_n, events);
    assert!(auth_n > 2 && api_n > 1, "{auth_n} {api_n}");
    assert_eq!(
        n("SELECT count(*) AS n FROM ocsf_entity_management"),
        n("SELECT count(*) AS n FROM ocsf_api_activity WHERE activity_id IN (1, 3, 4)")
    );
    let bad = n(
        "SELECT count(*) AS n FROM ocsf_authentication a JOIN events e ON a.metadata_uid = e.trace_id \
         AND a.tenant_id = e.tenant_id WHERE a.status_id <> CASE WHEN e.outcome = 'success' THEN 1 ELSE 2 END \
         OR a.class_uid <> 3002 OR a.activity_id <> 1",
    );
    assert_eq!(bad, 0);
    let ids = of("SELECT DISTINCT activity_id, status_id FROM ocsf_api_activity ORDER BY activity_id, status_id");
    for r in &ids {
        assert!(
            [1, 3, 4, 99].contains(&r["activity_id"].as_u64().unwrap()),
            "{r}"
        );
        assert!([1, 2].contains(&r["status_id"].as_u64().unwrap()), "{r}");
    }
    let vendors =
        of("SELECT DISTINCT metadata_product_name AS p FROM ocsf_api_activity ORDER BY p");
    assert_eq!(
        vendors,
        vec![
            json!({"p": "AWS CloudHSM"}),
            json!({"p": "Data Protection on Demand"})
        ]
    );
}

/// The README's first command, run as written (only the lake moved to a temp dir): the
/// sample converts into a lake of three DPoD tenants and one AWS CloudHSM cluster, and
/// `status` and `report` show both vendors (the cluster with its sequence evidence).
#[test]
fn readme_first_command_shows_both_vendors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the README opens with a sh block");
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("sample-lake");
    let mut outs = Vec::new();
    for step in block.trim().split("&&") {
        let words: Vec<&str> = step.split_whitespace().collect();
        assert_eq!(words[..4], ["cargo", "run", "-q", "--"], "{step}");
        let args: Vec<String> = words[4..]
            .iter()
            .map(|w| match *w {
                "target/sample-lake" => lake.display().to_string(),
                w => w.to_string(),
            })
            .collect();
        let out = crate::common::bin()
            .current_dir(root)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outs.push((args[0].clone(), String::from_utf8(out.stdout).unwrap()));
    }
    let names: Vec<&str> = outs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["convert", "status", "report"]);
    let (status, report) = (&outs[1].1, &outs[2].1);
    let dpod = ["0b610cb6", "35f59976", "f50c3209"];
    for t in dpod {
        assert!(status.contains(&format!("tenant {t}")), "{status}");
    }
    let cluster = status
        .lines()
        .find_map(|l| l.strip_prefix("tenant cluster-"))
        .map(|id| format!("cluster-{id}"))
        .expect("a CloudHSM cluster in the sample");
    assert!(
        status.contains("sequence hsm-") && status.contains("no gaps"),
        "{status}"
    );
    assert!(
        report.contains(&format!("Coverage of {cluster}")),
        "{report}"
    );
    let vendors = crate::query::query(
        &lake,
        &[],
        "SELECT vendor, count(DISTINCT tenant_id) AS tenants FROM events GROUP BY vendor ORDER BY vendor",
    );
    assert_eq!(
        vendors,
        vec![
            json!({"vendor": "aws-cloudhsm", "tenants": 1}),
            json!({"vendor": "dpod", "tenants": 3})
        ]
    );
}

/// One CloudHSM management block: `opcode` by `user` (name, type), with its response.
fn mgmt_block(usecs: i64, seq: u32, opcode: &str, user: (&str, &str), response: &str) -> String {
    let secs = usecs.div_euclid(1_000_000);
    let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
    format!(
        "Time: {}.{:06}, usecs:{usecs}\nSequence No : {seq:#x}\nReboot counter : 0x2a\n\
         Command Type(hex) : CN_MGMT_CMD (0x0)\nOpcode : {opcode} (0x1)\nSession Handle : 0x4008001\n\
         Response : {response}\nLog type : MGMT_USER_DETAILS_LOG (2)\nUser Name : {}\nUser Type : {}",
        t.format("%m/%d/%y %H:%M:%S"),
        usecs.rem_euclid(1_000_000),
        user.0,
        user.1
    )
}

#[test]
fn findings_judge_cloudhsm_administration_by_what_it_does() {
    // A cluster's HSM is zeroized, initialized again, a crypto officer is added, a user
    // removed, a password changed, sessions closed; and one zeroize is refused.
    let day = 1_717_243_200_000_000; // 2024-06-01 12:00 UTC
    let co = ("ops_admin", "CN_CRYPTO_OFFICER (2)");
    let done = "0:HSM Return: SUCCESS";
    let blocks = [
        mgmt_block(day, 0x10, "CN_ZEROIZE", co, done),
        mgmt_block(day + 60_000_000, 0x11, "CN_INIT_TOKEN", co, done),
        mgmt_block(day + 120_000_000, 0x12, "CN_CREATE_CO", co, done),
        mgmt_block(day + 180_000_000, 0x13, "CN_DELETE_USER", co, done),
        mgmt_block(day + 240_000_000, 0x14, "CN_CHANGE_PSWD", co, done),
        mgmt_block(
            day + 300_000_000,
            0x15,
            "CN_CLOSE_PARTITION_SESSIONS",
            co,
            done,
        ),
        mgmt_block(
            day + 360_000_000,
            0x16,
            "CN_ZEROIZE",
            co,
            "163:HSM Error: RET_USER_LOGIN_FAILURE",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "audit.log",
        format!("{}\n", blocks.join("\n\n")).as_bytes(),
    );
    let lake = dir.path().join("lake");
    ok(&convert(&lake, &[f], &["--tenant", CLUSTER]), 7);
    let out = crate::common::bin()
        .args(["findings", "--format", "ndjson", "--lake"])
        .arg(&lake)
        .output()
        .unwrap();
    crate::common::assert_success(&out);
    let mut got: Vec<(String, String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|f| f["kind"] == "partition_admin" || f["kind"] == "pin_change")
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_string();
            (s("time"), s("severity"), s("reason"))
        })
        .collect();
    got.sort();
    let sev: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
    // zeroize, init: high; a new CO, a removed user: medium; a password change: low;
    // closing sessions: medium; the refused zeroize: medium.
    assert_eq!(
        sev,
        ["high", "high", "medium", "medium", "low", "medium", "medium"],
        "{got:#?}"
    );
    assert!(got[0].2.starts_with("the HSM zeroized"), "{}", got[0].2);
    assert!(got[0].2.contains("zeroized (CN_ZEROIZE)"), "{}", got[0].2);
    assert!(
        got[1].2.contains("initialized (CN_INIT_TOKEN)"),
        "{}",
        got[1].2
    );
    assert!(
        got[2].2.contains("adds a crypto officer") && got[2].2.contains("privileges"),
        "{}",
        got[2].2
    );
    assert!(
        got[5].2.contains("closes sessions on the hsm") && got[5].2.contains("HSM administration"),
        "{}",
        got[5].2
    );
    assert!(got[6].2.contains("failed"), "{}", got[6].2);
}
