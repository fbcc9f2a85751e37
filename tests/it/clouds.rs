//! Cloud key services (issue 29): Azure Key Vault and Managed HSM, Google Cloud KMS and
//! HashiCorp Vault logs convert field by field to the expected rows in every documented
//! form, overlapping deliveries in any order give one row per event, a malformed record
//! is rejected alone with its raw text, and JSON that no format claims is rejected as
//! `unknown_format`, never read as DPoD. The fixtures are written here in the documented
//! shapes (made-up subscriptions, projects, vaults and people).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{col, convert, lake_rows, rejects, Row};

pub(crate) const SUB: &str = "1f0c3a9e-5d2b-4c6a-9e8f-0a1b2c3d4e5f";
pub(crate) const VAULT_ID: &str = "/SUBSCRIPTIONS/1F0C3A9E-5D2B-4C6A-9E8F-0A1B2C3D4E5F/RESOURCEGROUPS/PAYMENTS/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/PAY-KEYS-WEU";
const POOL_ID: &str = "/SUBSCRIPTIONS/1F0C3A9E-5D2B-4C6A-9E8F-0A1B2C3D4E5F/RESOURCEGROUPS/PAYMENTS/PROVIDERS/MICROSOFT.KEYVAULT/MANAGEDHSMS/PAYHSM01";
const VERSION: &str = "6b1e0f7c2a9d4e3b8c5f1a2d3e4b5c6d";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

fn lines(records: &[&Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// The lake's rows sorted by time, `meta` parsed.
fn rows(lake: &Path) -> Vec<(Row, Value)> {
    let mut rows: Vec<(Row, Value)> = lake_rows(lake)
        .into_iter()
        .map(|r| {
            let meta = serde_json::from_str(&r[col("meta")]).unwrap_or(Value::Null);
            (r, meta)
        })
        .collect();
    rows.sort_by_key(|(r, _)| r[2].parse::<i64>().unwrap());
    rows
}

/// The named columns of a row, `∅` for null.
fn cols(r: &Row, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| match *n {
            "tenant_id" => r[0].clone(),
            "day" => r[1].clone(),
            "time" => r[2].clone(),
            n => r[col(n)].clone(),
        })
        .collect()
}

const COLS: [&str; 16] = [
    "tenant_id",
    "day",
    "time",
    "vendor",
    "source",
    "resource_id",
    "actor_id",
    "action",
    "status",
    "outcome",
    "client_ip",
    "hsm_id",
    "part_id",
    "role",
    "ouid",
    "extra",
];

fn want(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---- Azure Key Vault -------------------------------------------------------------------

/// Three vault events: an app signs (no UPN: its object id is the actor), a caller fails
/// to authenticate, a person creates a key on the next day.
pub(crate) fn vault_events() -> Vec<Value> {
    let key = "https://pay-keys-weu.vault.azure.net/keys/card-signing";
    vec![
        json!({"time": "2024-06-01T23:59:58.1234567Z", "resourceId": VAULT_ID,
               "operationName": "KeySign", "operationVersion": "7.4", "category": "AuditEvent",
               "resultType": "Success", "resultSignature": "OK", "resultDescription": "",
               "durationMs": "14", "callerIpAddress": "10.20.0.7",
               "correlationId": "7c0d1e2f-3a4b-4c5d-8e9f-a0b1c2d3e4f5",
               "identity": {"claim": {
                   "http://schemas.microsoft.com/identity/claims/objectidentifier": "5e6f7a8b-0000-4000-8000-00000000a001",
                   "appid": "9a8b7c6d-0000-4000-8000-00000000b001"}},
               "properties": {"id": format!("{key}/{VERSION}"), "clientInfo": "azsdk-net-Security.KeyVault.Keys/4.5.0",
                              "requestUri": format!("{key}/{VERSION}/sign?api-version=7.4"),
                              "httpStatusCode": 200}}),
        json!({"time": "2024-06-01T23:59:59.0000001Z", "resourceId": VAULT_ID,
               "operationName": "Authentication", "operationVersion": "7.4", "category": "AuditEvent",
               "resultType": "Success", "resultSignature": "Unauthorized",
               "resultDescription": "AKV10032: Invalid issuer.", "durationMs": "2",
               "callerIpAddress": "203.0.113.50", "correlationId": "", "identity": {},
               "properties": {"clientInfo": "curl/8.4.0",
                              "requestUri": "https://pay-keys-weu.vault.azure.net/keys?api-version=7.4",
                              "httpStatusCode": 401}}),
        json!({"time": "2024-06-02T08:15:00.5000000Z", "resourceId": VAULT_ID,
               "operationName": "KeyCreate", "operationVersion": "7.4", "category": "AuditEvent",
               "resultType": "Success", "resultSignature": "OK", "resultDescription": "",
               "durationMs": "180", "callerIpAddress": "198.51.100.23",
               "correlationId": "00000000-1111-4222-8333-444444444444",
               "identity": {"claim": {
                   "http://schemas.microsoft.com/identity/claims/objectidentifier": "5e6f7a8b-0000-4000-8000-00000000c001",
                   "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "dana.okafor@example.com",
                   "appid": "04b07795-0000-4000-8000-00000000d001"}},
               "properties": {"id": format!("https://pay-keys-weu.vault.azure.net/keys/tokenization/{VERSION}"),
                              "clientInfo": "AzureCLI/2.61.0",
                              "requestUri": "https://pay-keys-weu.vault.azure.net/keys/tokenization/create?api-version=7.4",
                              "httpStatusCode": 200}}),
    ]
}

pub(crate) fn assert_vault_rows(lake: &Path) {
    let got = rows(lake);
    let name = "pay-keys-weu";
    let expect = [
        want(&[
            SUB,
            "2024-06-01",
            "1717286398123456",
            "azure-keyvault",
            VAULT_ID,
            name,
            "5e6f7a8b-0000-4000-8000-00000000a001",
            "KeySign",
            "OK",
            "success",
            "10.20.0.7",
            VAULT_ID,
            name,
            "∅",
            "https://pay-keys-weu.vault.azure.net/keys/card-signing",
            "∅",
        ]),
        want(&[
            SUB,
            "2024-06-01",
            "1717286399000000",
            "azure-keyvault",
            VAULT_ID,
            name,
            "∅",
            "Authentication",
            "Unauthorized",
            "failure",
            "203.0.113.50",
            VAULT_ID,
            name,
            "∅",
            "∅",
            "∅",
        ]),
        want(&[
            SUB,
            "2024-06-02",
            "1717316100500000",
            "azure-keyvault",
            VAULT_ID,
            name,
            "dana.okafor@example.com",
            "KeyCreate",
            "OK",
            "success",
            "198.51.100.23",
            VAULT_ID,
            name,
            "∅",
            "https://pay-keys-weu.vault.azure.net/keys/tokenization",
            "∅",
        ]),
    ];
    assert_eq!(got.len(), 3, "{got:#?}");
    for ((r, _), w) in got.iter().zip(&expect) {
        assert_eq!(&cols(r, &COLS), w);
        assert!(r[col("trace_id")].starts_with("az:") && r[col("trace_id")].len() == 35);
    }
    // Every field not in a column of its own is in meta, as written.
    let (_, meta) = &got[0];
    let src = &vault_events()[0];
    for k in [
        "operationVersion",
        "category",
        "resultType",
        "resultSignature",
        "durationMs",
        "correlationId",
        "identity",
        "properties",
    ] {
        assert_eq!(meta[k], src[k], "meta.{k}");
    }
    assert_eq!(meta["objectVersion"], json!(VERSION));
    assert!(meta.get("time").is_none() && meta.get("operationName").is_none());
}

#[test]
fn azure_key_vault_lines_and_envelopes_convert_field_by_field_and_overlaps_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let ev = vault_events();
    // The hourly JSON Lines blob holds the first two events; an older-style envelope (as
    // Event Hubs also delivers) the last two, pretty-printed.
    let blob = write(
        dir.path(),
        "h=23/PT1H.json",
        lines(&[&ev[0], &ev[1]]).as_bytes(),
    );
    let envelope = json!({"records": [ev[1], ev[2]]});
    let env = write(
        dir.path(),
        "eventhub/batch.json",
        serde_json::to_string_pretty(&envelope).unwrap().as_bytes(),
    );
    for (name, inputs) in [("ab", [&blob, &env]), ("ba", [&env, &blob])] {
        let lake = dir.path().join(name);
        let run = convert(&lake, &[inputs[0].clone()], &[]);
        assert_eq!((run.code, run.n("written")), (0, 2), "{}", run.stderr);
        let run = convert(&lake, &[inputs[1].clone()], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            (run.n("written"), run.n("duplicates")),
            (1, 1),
            "{}",
            run.summary
        );
        assert_vault_rows(&lake);
    }
    // The same rows whichever delivery came first (meta as each delivery wrote it).
    let same = |name: &str| -> Vec<(Row, Value)> {
        rows(&dir.path().join(name))
            .into_iter()
            .map(|(mut r, m)| {
                r[col("meta")].clear();
                (r, m)
            })
            .collect()
    };
    assert_eq!(same("ab"), same("ba"));
}

#[test]
fn azure_managed_hsm_records_are_azure_not_dpod_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let identity = |claims: &str| Value::String(claims.to_string());
    let ev = [
        json!({"TenantId": "72f988bf-0000-4000-8000-000000000001", "time": "2024-06-03T10:00:00.250Z",
               "resourceId": POOL_ID, "operationName": "BackupCreate", "operationVersion": "7.4",
               "category": "AuditEvent", "resultType": "Success",
               "properties": {"PoolType": "M-HSM", "sku_Family": "B", "sku_Name": "Standard_B1"},
               "durationMs": 512, "callerIpAddress": "198.51.100.23",
               "identity": identity(r#"{"claim":{"appid":"04b07795-0000-4000-8000-00000000d001","http_schemas_microsoft_com_identity":{"claims":{"objectidentifier":"5e6f7a8b-0000-4000-8000-00000000c001"}},"http_schemas_xmlsoap_org_ws_2005_05_identity":{"claims":{"upn":"dana.okafor@example.com"}}}}"#),
               "clientInfo": "azsdk-python-core/1.29.0", "correlationId": "aaaa0000-1111-4222-8333-000000000001",
               "subnetId": "(unknown)", "httpStatusCode": 202, "PoolName": "payhsm01",
               "requestUri": "https://payhsm01.managedhsm.azure.net/backup",
               "resourceGroup": "payments", "resourceProvider": "MICROSOFT.KEYVAULT",
               "resource": "PAYHSM01", "resourceType": "managedHSMs"}),
        json!({"TenantId": "72f988bf-0000-4000-8000-000000000001", "time": "2024-06-03T10:00:01.5Z",
               "resourceId": POOL_ID, "operationName": "KeyUnwrap", "operationVersion": "7.4",
               "category": "AuditEvent", "resultType": "Success", "properties": {},
               "durationMs": 9, "callerIpAddress": "10.20.0.8",
               "identity": identity(r#"{"claim":{"appid":"9a8b7c6d-0000-4000-8000-00000000b002"}}"#),
               "clientInfo": "azsdk-java-azure-security-keyvault-keys/4.8.0", "correlationId": "",
               "subnetId": "(unknown)", "httpStatusCode": 403, "PoolName": "payhsm01",
               "requestUri": format!("https://payhsm01.managedhsm.azure.net/keys/pan-kek/{VERSION}/unwrapkey?api-version=7.4"),
               "resourceGroup": "payments", "resourceProvider": "MICROSOFT.KEYVAULT",
               "resource": "PAYHSM01", "resourceType": "managedHSMs"}),
    ];
    // Exported as one JSON array (as Microsoft's documentation shows it).
    let f = write(
        dir.path(),
        "mhsm.json",
        serde_json::to_string_pretty(&json!(ev)).unwrap().as_bytes(),
    );
    let lake = dir.path().join("lake");
    let run = convert(&lake, &[f], &[]);
    assert_eq!(
        (run.code, run.n("written"), run.n("rejected")),
        (0, 2, 0),
        "{}",
        run.stderr
    );
    let got = rows(&lake);
    let pool = "payhsm01";
    assert_eq!(
        cols(&got[0].0, &COLS),
        want(&[
            SUB,
            "2024-06-03",
            "1717408800250000",
            "azure-mhsm",
            POOL_ID,
            pool,
            "dana.okafor@example.com",
            "BackupCreate",
            "202",
            "success",
            "198.51.100.23",
            POOL_ID,
            pool,
            "∅",
            "∅",
            "∅"
        ])
    );
    assert_eq!(
        cols(&got[1].0, &COLS),
        want(&[
            SUB,
            "2024-06-03",
            "1717408801500000",
            "azure-mhsm",
            POOL_ID,
            pool,
            "9a8b7c6d-0000-4000-8000-00000000b002",
            "KeyUnwrap",
            "403",
            "failure",
            "10.20.0.8",
            POOL_ID,
            pool,
            "∅",
            "https://payhsm01.managedhsm.azure.net/keys/pan-kek",
            "∅"
        ])
    );
    assert_eq!(got[1].1["TenantId"], ev[1]["TenantId"]);
    assert_eq!(got[1].1["objectVersion"], json!(VERSION));
    assert_eq!(got[0].1["durationMs"], json!(512));
}

// ---- Google Cloud KMS ------------------------------------------------------------------

const PROJECT: &str = "acme-payments-prod";
const RING: &str = "projects/acme-payments-prod/locations/europe-west1/keyRings/payments";

/// Three entries: a service account decrypts (with a Key Access Justification), a
/// person is denied an asymmetric signature on a key version, a key is created.
fn gcp_entries() -> Vec<Value> {
    let key = format!("{RING}/cryptoKeys/card-data");
    let log = |kind: &str| format!("projects/{PROJECT}/logs/cloudaudit.googleapis.com%2F{kind}");
    let entry = |stamp: &str,
                 insert: &str,
                 kind: &str,
                 method: &str,
                 resource: &str,
                 who: &str,
                 ip: &str,
                 status: Value,
                 extra: Value| {
        let mut payload = json!({
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "status": status,
            "authenticationInfo": {"principalEmail": who},
            "requestMetadata": {"callerIp": ip, "callerSuppliedUserAgent": "grpc-java-netty/1.60.0",
                                "requestAttributes": {"time": stamp, "auth": {}},
                                "destinationAttributes": {}},
            "serviceName": "cloudkms.googleapis.com",
            "methodName": method,
            "authorizationInfo": [{"resource": resource, "permission": "cloudkms.cryptoKeyVersions.useToDecrypt",
                                   "granted": true, "resourceAttributes": {}}],
            "resourceName": resource,
            "request": {"name": resource}
        });
        if let Value::Object(m) = extra {
            payload.as_object_mut().unwrap().extend(m);
        }
        json!({"protoPayload": payload, "insertId": insert,
               "resource": {"type": "cloudkms_cryptokey",
                            "labels": {"project_id": PROJECT, "location": "europe-west1",
                                       "key_ring_id": "payments", "crypto_key_id": "card-data"}},
               "timestamp": stamp, "severity": "INFO", "logName": log(kind),
               "receiveTimestamp": "2024-06-04T09:00:00.100000000Z"})
    };
    vec![
        entry(
            "2024-06-04T08:59:59.123456789Z",
            "1x2y3z4a5b6c",
            "data_access",
            "Decrypt",
            &key,
            "billing-app@acme-payments-prod.iam.gserviceaccount.com",
            "10.128.0.12",
            json!({}),
            json!({"metadata": {"keyAccessJustification": {"reason": "CUSTOMER_INITIATED_ACCESS"}}}),
        ),
        entry(
            "2024-06-04T09:10:00.5Z",
            "9q8w7e6r5t4y",
            "data_access",
            "AsymmetricSign",
            &format!("{key}/cryptoKeyVersions/3"),
            "sam.lee@example.com",
            "203.0.113.9",
            json!({"code": 7, "message": "Permission 'cloudkms.cryptoKeyVersions.useToSign' denied"}),
            json!({}),
        ),
        entry(
            "2024-06-05T14:00:00Z",
            "a1s2d3f4g5h6",
            "activity",
            "google.cloud.kms.v1.KeyManagementService.CreateCryptoKey",
            &format!("{RING}/cryptoKeys/tokens"),
            "sam.lee@example.com",
            "203.0.113.9",
            json!({}),
            json!({}),
        ),
    ]
}

#[test]
fn gcp_kms_sink_files_and_gcloud_arrays_convert_field_by_field_and_overlaps_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let e = gcp_entries();
    let sink = write(
        dir.path(),
        "cloudaudit.googleapis.com/data_access/2024/06/04/08:00:00_08:59:59_S0.json",
        lines(&[&e[0], &e[1]]).as_bytes(),
    );
    // `gcloud logging read --format=json`: one array, newest first.
    let gcloud = write(
        dir.path(),
        "gcloud.json",
        serde_json::to_string_pretty(&json!([e[2], e[1], e[0]]))
            .unwrap()
            .as_bytes(),
    );
    let lake = dir.path().join("lake");
    let run = convert(&lake, std::slice::from_ref(&sink), &[]);
    assert_eq!((run.code, run.n("written")), (0, 2), "{}", run.stderr);
    let run = convert(&lake, std::slice::from_ref(&gcloud), &[]);
    assert_eq!(
        (run.code, run.n("written"), run.n("duplicates")),
        (0, 1, 2),
        "{}",
        run.summary
    );
    let got = rows(&lake);
    let key = format!("{RING}/cryptoKeys/card-data");
    let svc = "cloudkms.googleapis.com";
    assert_eq!(
        cols(&got[0].0, &COLS),
        want(&[
            PROJECT,
            "2024-06-04",
            "1717491599123456",
            "gcp-kms",
            svc,
            &key,
            "billing-app@acme-payments-prod.iam.gserviceaccount.com",
            "Decrypt",
            "OK",
            "success",
            "10.128.0.12",
            "∅",
            RING,
            "∅",
            &key,
            "∅"
        ])
    );
    assert_eq!(
        cols(&got[1].0, &COLS),
        want(&[
            PROJECT,
            "2024-06-04",
            "1717492200500000",
            "gcp-kms",
            svc,
            &format!("{key}/cryptoKeyVersions/3"),
            "sam.lee@example.com",
            "AsymmetricSign",
            "PERMISSION_DENIED",
            "failure",
            "203.0.113.9",
            "∅",
            RING,
            "∅",
            &key,
            "∅"
        ])
    );
    assert_eq!(
        cols(&got[2].0, &COLS),
        want(&[
            PROJECT,
            "2024-06-05",
            "1717596000000000",
            "gcp-kms",
            svc,
            &format!("{RING}/cryptoKeys/tokens"),
            "sam.lee@example.com",
            "CreateCryptoKey",
            "OK",
            "success",
            "203.0.113.9",
            "∅",
            RING,
            "∅",
            &format!("{RING}/cryptoKeys/tokens"),
            "∅"
        ])
    );
    assert_eq!(
        got[0].0[col("trace_id")],
        "gcp:1x2y3z4a5b6c@2024-06-04T08:59:59.123456789Z"
    );
    // The nanoseconds live on in meta, with the justification and the version.
    assert_eq!(
        got[0].1["timestamp"],
        json!("2024-06-04T08:59:59.123456789Z")
    );
    assert_eq!(
        got[0].1["protoPayload"]["metadata"]["keyAccessJustification"]["reason"],
        json!("CUSTOMER_INITIATED_ACCESS")
    );
    assert_eq!(got[1].1["cryptoKeyVersion"], json!("3"));
    assert_eq!(got[1].1["severity"], json!("INFO"));
    assert!(got[1].1["protoPayload"].get("methodName").is_none());
    // The other order: the gcloud array first, then the sink file.
    let other = dir.path().join("other");
    let run = convert(&other, &[gcloud], &[]);
    assert_eq!((run.code, run.n("written")), (0, 3), "{}", run.stderr);
    let run = convert(&other, &[sink], &[]);
    assert_eq!(
        (run.n("written"), run.n("duplicates")),
        (0, 2),
        "{}",
        run.summary
    );
    let strip = |rows: Vec<(Row, Value)>| -> Vec<Row> {
        rows.into_iter()
            .map(|(mut r, _)| {
                r[col("meta")].clear();
                r
            })
            .collect()
    };
    assert_eq!(strip(rows(&other)), strip(got));
}

// ---- bad input -------------------------------------------------------------------------

#[test]
fn a_malformed_record_in_each_format_is_rejected_alone_with_its_raw_text() {
    let dir = tempfile::tempdir().unwrap();
    let v = vault_events();
    let g = gcp_entries();
    let bad_azure =
        r#"{"time": "2024-06-01T23:59:59Z", "operationName": "KeyGet", "resourceId": tru}"#;
    let no_time =
        r#"{"resourceId": "/SUBSCRIPTIONS/X/RESOURCEGROUPS/R", "operationName": "KeyGet"}"#;
    let azure = format!("{}\n{bad_azure}\n{no_time}\n{}\n", v[0], v[2]);
    let bad_gcp = r#"{"protoPayload": {"methodName": "Decrypt"}, "insertId": "x", "timestamp": "2024-13-01T00:00:00Z"}"#;
    let gcp = format!("{}\n{bad_gcp}\n{}\n", g[0], g[1]);
    let fa = write(dir.path(), "azure/PT1H.json", azure.as_bytes());
    let fg = write(dir.path(), "gcp/08:00:00_08:59:59_S0.json", gcp.as_bytes());
    let (t1, t2) = ("2024-06-06T10:00:00Z", "2024-06-06T10:00:01Z");
    let bad_vault =
        r#"{"time": "2024-06-06T10:00:00Z", "type": "request", "request": {"id": "r-9", }}"#;
    let vault = format!(
        "{}\n{bad_vault}\n{}\n",
        vault_entry("request", "r-8", t1, "app", "update", "transit/sign/k", ""),
        vault_entry("response", "r-8", t2, "app", "update", "transit/sign/k", "")
    );
    let fv = write(dir.path(), "vault/vault_audit.log", vault.as_bytes());
    let lake = dir.path().join("lake");
    // Azure and Cloud KMS records name their tenants; --tenant is Vault's.
    let run = convert(
        &lake,
        &[fa.clone(), fg.clone(), fv.clone()],
        &["--tenant", "v"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        (run.n("written"), run.n("rejected")),
        (5, 4),
        "{}",
        run.summary
    );
    let rej = rejects(&lake);
    let mut got: Vec<(String, String, String, u64)> = rej
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
                r["raw"].as_str().unwrap().to_string(),
                r["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let at = |text: &str, raw: &str| text.find(raw).unwrap() as u64;
    assert_eq!(
        got,
        vec![
            (
                fa.display().to_string(),
                "invalid_json".into(),
                bad_azure.into(),
                at(&azure, bad_azure)
            ),
            (
                fa.display().to_string(),
                "time_missing".into(),
                no_time.into(),
                at(&azure, no_time)
            ),
            (
                fg.display().to_string(),
                "time_invalid".into(),
                bad_gcp.into(),
                at(&gcp, bad_gcp)
            ),
            (
                fv.display().to_string(),
                "invalid_json".into(),
                bad_vault.into(),
                at(&vault, bad_vault)
            ),
        ]
    );
    let detail = rej.iter().find(|r| r["reason"] == "invalid_json").unwrap();
    assert!(
        detail["detail"].as_str().unwrap().contains("at byte"),
        "{detail}"
    );
}

#[test]
fn json_that_no_format_claims_is_rejected_as_unknown_format_not_read_as_dpod() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{\"timestamp\": \"2024-06-01T00:00:00Z\", \"message\": \"disk full\", \"tenantId\": \"t1\"}\n\
                {\"timestamp\": \"2024-06-01T00:00:01Z\", \"message\": \"disk fine\"}\n";
    let f = write(dir.path(), "app.log", text.as_bytes());
    let lake = dir.path().join("lake");
    let run = convert(&lake, std::slice::from_ref(&f), &[]);
    assert_eq!(
        (run.n("written"), run.n("rejected")),
        (0, 2),
        "{}",
        run.summary
    );
    let rej = rejects(&lake);
    assert_eq!(rej.len(), 2);
    for (r, line) in rej.iter().zip(text.lines()) {
        assert_eq!(r["reason"], json!("unknown_format"));
        assert_eq!(r["raw"], json!(line));
    }
    assert!(
        rej[0]["detail"]
            .as_str()
            .unwrap()
            .contains("timestamp, message"),
        "{}",
        rej[0]
    );
    assert!(lake_rows(&lake).is_empty());
}

// ---- every vendor in one lake ----------------------------------------------------------

/// Over the lake of all six vendors: every event is in exactly one of the OCSF
/// authentication and API activity views, with the documented class, activity and status
/// ids for its category and outcome, and each vendor's product named.
#[test]
fn ocsf_views_over_every_vendor_give_the_documented_ids() {
    use crate::query::{mixed_lake, query};
    let lake = mixed_lake();
    let n = |sql: &str| query(lake, &[], sql)[0]["n"].as_u64().unwrap();
    let events = n("SELECT count(*) AS n FROM events");
    let auth = n("SELECT count(*) AS n FROM ocsf_authentication");
    let api = n("SELECT count(*) AS n FROM ocsf_api_activity");
    assert_eq!(auth + api, events);
    // The ids follow from the category and the outcome, row by row, for every vendor.
    let wrong = n(
        "SELECT count(*) AS n FROM ( \
           SELECT a.class_uid, a.activity_id, a.status_id, a.type_uid, e.outcome, e.vendor, \
                  coalesce(c.category, 'other') AS category \
           FROM ocsf_api_activity a JOIN events e ON a.metadata_uid = e.trace_id AND a.tenant_id = e.tenant_id \
           LEFT JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action) x \
         WHERE class_uid <> 6003 OR type_uid <> 600300 + activity_id \
            OR activity_id <> CASE category WHEN 'key_create' THEN 1 WHEN 'key_modify' THEN 3 \
                                            WHEN 'key_destroy' THEN 4 ELSE 99 END \
            OR status_id <> CASE outcome WHEN 'success' THEN 1 WHEN 'failure' THEN 2 ELSE 0 END",
    );
    assert_eq!(wrong, 0);
    let wrong = n(
        "SELECT count(*) AS n FROM ocsf_authentication a JOIN events e \
           ON a.metadata_uid = e.trace_id AND a.tenant_id = e.tenant_id \
         WHERE a.class_uid <> 3002 OR a.activity_id <> 1 OR a.type_uid <> 300201 \
            OR a.status_id <> CASE e.outcome WHEN 'success' THEN 1 WHEN 'failure' THEN 2 ELSE 0 END",
    );
    assert_eq!(wrong, 0);
    let products: Vec<(String, String)> = query(
        lake,
        &[],
        "SELECT DISTINCT metadata_product_vendor_name AS v, metadata_product_name AS p \
         FROM ocsf_api_activity ORDER BY p",
    )
    .iter()
    .map(|r| {
        (
            r["v"].as_str().unwrap().into(),
            r["p"].as_str().unwrap().into(),
        )
    })
    .collect();
    let want: Vec<(String, String)> = [
        ("Amazon Web Services", "AWS CloudHSM"),
        ("Microsoft", "Azure Key Vault"),
        ("Microsoft", "Azure Key Vault Managed HSM"),
        ("Google", "Cloud KMS"),
        ("Thales", "Data Protection on Demand"),
        ("HashiCorp", "Vault"),
    ]
    .iter()
    .map(|(v, p)| (v.to_string(), p.to_string()))
    .collect();
    assert_eq!(products, want);
    // Logins of the cloud services are authentications too, failed ones among them.
    let logins = query(
        lake,
        &[],
        "SELECT e.vendor, count(*) AS n, count(*) FILTER (WHERE a.status_id = 2) AS failed \
         FROM ocsf_authentication a JOIN events e ON a.metadata_uid = e.trace_id AND a.tenant_id = e.tenant_id \
         GROUP BY e.vendor ORDER BY e.vendor",
    );
    let vendors: Vec<&str> = logins
        .iter()
        .map(|r| r["vendor"].as_str().unwrap())
        .collect();
    for v in ["azure-keyvault", "azure-mhsm", "hashicorp-vault"] {
        assert!(vendors.contains(&v), "{v}: {logins:?}");
    }
    assert!(
        logins.iter().all(|r| r["failed"].as_u64().unwrap() > 0),
        "{logins:?}"
    );
}

// ---- HashiCorp Vault -------------------------------------------------------------------

/// A Vault audit entry in the documented shape (HMAC'd values as Vault writes them).
fn vault_entry(
    kind: &str,
    id: &str,
    time: &str,
    who: &str,
    op: &str,
    path: &str,
    tail: &str,
) -> Value {
    let mut e = json!({
        "time": time, "type": kind,
        "auth": {"client_token": "hmac-sha256:aa01", "accessor": "hmac-sha256:bb02",
                 "display_name": who, "policies": ["default", "payments"],
                 "entity_id": "4c1d-entity", "token_type": "service"},
        "request": {"id": id, "operation": op, "mount_type": path.split('/').next().unwrap(),
                    "client_token": "hmac-sha256:aa01", "namespace": {"id": "root"},
                    "path": path, "data": {"input": "hmac-sha256:cc03"},
                    "remote_address": "10.30.0.4"}
    });
    if !tail.is_empty() {
        let extra: Value = serde_json::from_str(tail).unwrap();
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
    }
    e
}

#[test]
fn vault_requests_and_responses_are_one_row_each_and_a_lone_request_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let denied = r#"{"error": "1 error occurred:\n\t* permission denied\n\n"}"#;
    let ok =
        r#"{"response": {"mount_type": "transit", "data": {"signature": "hmac-sha256:dd04"}}}"#;
    let (t1, t2) = (
        "2024-06-06T10:00:00.123456789Z",
        "2024-06-06T10:00:00.200000000Z",
    );
    let log = [
        vault_entry(
            "request",
            "r-1",
            t1,
            "approle-billing",
            "update",
            "transit/sign/card-key",
            "",
        ),
        vault_entry(
            "request",
            "r-2",
            t1,
            "userpass-eve",
            "update",
            "transit/decrypt/card-key",
            "",
        ),
        vault_entry(
            "response",
            "r-1",
            t2,
            "approle-billing",
            "update",
            "transit/sign/card-key",
            ok,
        ),
        vault_entry(
            "response",
            "r-2",
            t2,
            "userpass-eve",
            "update",
            "transit/decrypt/card-key",
            denied,
        ),
        // Vault stopped before answering this one.
        vault_entry(
            "request",
            "r-3",
            t2,
            "approle-billing",
            "update",
            "transit/keys/new-key",
            "",
        ),
        // A failed login: no token yet, the user in the path.
        json!({"time": t2, "type": "request", "auth": {"token_type": "default"},
               "request": {"id": "r-4", "operation": "update", "mount_type": "userpass",
                           "namespace": {"id": "root"}, "path": "auth/userpass/login/mallory",
                           "data": {"password": "hmac-sha256:ee05"}, "remote_address": "203.0.113.66"}}),
        json!({"time": t2, "type": "response", "auth": {"token_type": "default"},
               "request": {"id": "r-4", "operation": "update", "mount_type": "userpass",
                           "namespace": {"id": "root"}, "path": "auth/userpass/login/mallory",
                           "data": {"password": "hmac-sha256:ee05"}, "remote_address": "203.0.113.66"},
               "response": {"mount_type": "userpass"}, "error": "invalid username or password"}),
    ];
    let text = lines(&log.iter().collect::<Vec<_>>());
    let f = write(dir.path(), "vault/vault_audit.log", text.as_bytes());
    let lake = dir.path().join("lake");
    // Vault names no tenant: one clear line, nothing written.
    let run = convert(&lake, std::slice::from_ref(&f), &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--tenant"), "{}", run.stderr);
    assert!(lake_rows(&lake).is_empty());
    let run = convert(&lake, &[f], &["--tenant", "vault-eu"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Seven entries read: four rows, the three responses' requests counted as duplicates.
    assert_eq!(
        (
            run.n("records_read"),
            run.n("written"),
            run.n("duplicates"),
            run.n("rejected")
        ),
        (7, 4, 3, 0),
        "{}",
        run.summary
    );
    let got = rows(&lake);
    let c = |i: usize| {
        cols(
            &got[i].0,
            &[
                "tenant_id",
                "vendor",
                "source",
                "resource_id",
                "actor_id",
                "action",
                "status",
                "outcome",
                "trace_id",
                "client_ip",
                "part_id",
                "role",
                "ouid",
            ],
        )
    };
    let mut all: Vec<Vec<String>> = (0..4).map(c).collect();
    all.sort_by(|a, b| a[8].cmp(&b[8]));
    assert_eq!(
        all,
        vec![
            want(&[
                "vault-eu",
                "hashicorp-vault",
                "transit",
                "transit/sign/card-key",
                "approle-billing",
                "sign",
                "ok",
                "success",
                "vault:r-1",
                "10.30.0.4",
                "root",
                "default,payments",
                "card-key"
            ]),
            want(&[
                "vault-eu",
                "hashicorp-vault",
                "transit",
                "transit/decrypt/card-key",
                "userpass-eve",
                "decrypt",
                "permission denied",
                "failure",
                "vault:r-2",
                "10.30.0.4",
                "root",
                "default,payments",
                "card-key"
            ]),
            want(&[
                "vault-eu",
                "hashicorp-vault",
                "transit",
                "transit/keys/new-key",
                "approle-billing",
                "create-key",
                "unknown",
                "unknown",
                "vault:r-3#request",
                "10.30.0.4",
                "root",
                "default,payments",
                "new-key"
            ]),
            want(&[
                "vault-eu",
                "hashicorp-vault",
                "userpass",
                "auth/userpass/login/mallory",
                "mallory",
                "login",
                "invalid username or password",
                "failure",
                "vault:r-4",
                "203.0.113.66",
                "root",
                "∅",
                "∅"
            ]),
        ]
    );
    // The response's time (to the microsecond), its fields in meta as written.
    let signed = got
        .iter()
        .find(|(r, _)| r[col("trace_id")] == "vault:r-1")
        .unwrap();
    assert_eq!(signed.0[2], "1717668000200000");
    assert_eq!(
        signed.1["response"]["data"]["signature"],
        json!("hmac-sha256:dd04")
    );
    assert_eq!(signed.1["auth"]["entity_id"], json!("4c1d-entity"));
}
