//! Helpers: run the binary, read a lake back independently of the query layer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};
use auditlake::lake::store::LakeStore;
use auditlake::lake::{list_partitions, partition_files, writer::read_file, COLUMN_NAMES};
use serde_json::Value;

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// The binary under test: the one cargo built for this test run, or the one named by
/// AUDITLAKE_TEST_BIN (by-hand runs of ignored tests against a release build).
pub fn bin() -> Command {
    let exe = std::env::var_os("AUDITLAKE_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_auditlake")),
        PathBuf::from,
    );
    let mut c = Command::new(exe);
    c.env_remove("AUDITLAKE_LAKE")
        .env_remove("AUDITLAKE_PAUSE_AT")
        .env_remove("AUDITLAKE_CONFIG")
        .env_remove("AUDITLAKE_PROFILE")
        .env_remove("AUDITLAKE_CLUSTER")
        .env_remove("AUDITLAKE_ACKS")
        // No config file of the machine's user: a test that wants one says so.
        .env(
            "XDG_CONFIG_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-config-home"),
        );
    c
}

/// Runs a command with `input` on its stdin, collecting stdout and stderr.
pub fn with_stdin(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Asserts that a run of the binary exited 0, showing its stderr otherwise.
pub fn assert_success(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The outcome of one `convert --json` run.
pub struct Run {
    pub code: i32,
    pub summary: Value,
    pub stderr: String,
}

impl Run {
    pub fn n(&self, key: &str) -> u64 {
        self.summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("summary has no {key}: {}", self.summary))
    }
}

pub fn convert(lake: &Path, inputs: &[PathBuf], extra: &[&str]) -> Run {
    let out = bin()
        .arg("convert")
        .args(inputs)
        .arg("--lake")
        .arg(lake)
        .arg("--json")
        .args(extra)
        .output()
        .expect("run auditlake");
    parse_run(out)
}

pub fn parse_run(out: Output) -> Run {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        summary,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // The accounting invariant holds for every conversion.
    assert_eq!(
        run.n("records_read"),
        run.n("written") + run.n("duplicates") + run.n("rejected"),
        "records_read = written + duplicates + rejected: {}",
        run.summary
    );
    run
}

/// One lake row: partition values then every file column, as text (null as "∅").
pub type Row = Vec<String>;

/// Every row of the lake, sorted, read straight from the Parquet files.
pub fn lake_rows(lake: &Path) -> Vec<Row> {
    store_rows(&LakeStore::local(lake).unwrap())
}

/// Every row of a lake in any store, sorted.
pub fn store_rows(store: &LakeStore) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        for part in list_partitions(store, None).await.unwrap() {
            for (f, _) in partition_files(store, &part.rel).await.unwrap() {
                for b in read_file(store, &f, None).await.unwrap() {
                    rows.extend(batch_rows(
                        &b,
                        &part.key.tenant,
                        &auditlake::time::format_day(part.key.day),
                    ));
                }
            }
        }
    });
    rows.sort();
    rows
}

fn batch_rows(b: &RecordBatch, tenant: &str, day: &str) -> Vec<Row> {
    assert_eq!(
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        COLUMN_NAMES
    );
    let times = b
        .column(0)
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    (0..b.num_rows())
        .map(|i| {
            let mut r = vec![
                tenant.to_string(),
                day.to_string(),
                times.value(i).to_string(),
            ];
            for c in 1..b.num_columns() {
                let col = b.column(c).as_string::<i32>();
                r.push(if col.is_null(i) {
                    "∅".into()
                } else {
                    col.value(i).to_string()
                });
            }
            r
        })
        .collect()
}

/// Index of a column in a [`Row`].
pub fn col(name: &str) -> usize {
    2 + COLUMN_NAMES
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// Lines of every rejects file.
pub fn rejects(lake: &Path) -> Vec<Value> {
    let dir = lake.join("_rejected");
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
            .collect();
        paths.sort();
        for p in paths {
            for line in std::fs::read_to_string(p).unwrap().lines() {
                out.push(serde_json::from_str(line).unwrap());
            }
        }
    }
    out
}

/// Asserts that no (tenant_id, trace_id) appears twice.
pub fn assert_unique(rows: &[Row]) {
    let mut keys: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[col("trace_id")].as_str()))
        .collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!(
        before,
        keys.len(),
        "duplicate (tenant_id, trace_id) in the lake"
    );
}

/// The sample year's DPoD exports, in name order (the files directly in
/// `testdata/sample`; its AWS CloudHSM cluster is in a directory of its own).
pub fn sample_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(testdata("sample"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Every tenant's sample export of each month given as `YYYY-MM`, in `sample_files` order.
pub fn sample_months(months: &[&str]) -> Vec<PathBuf> {
    sample_files()
        .into_iter()
        .filter(|f| {
            let name = f.to_string_lossy();
            months.iter().any(|m| name.ends_with(&format!("-{m}.zip")))
        })
        .collect()
}

// ---- an independent model of the events, computed from the raw rows ----------------------

/// One event as the independent model sees it.
pub struct Ev {
    pub tenant: String,
    pub day: String,
    pub time: i64,
    pub actor: Option<String>,
    pub action: String,
    pub outcome: String,
    pub trace: String,
    pub ip: Option<String>,
    pub role: Option<String>,
    pub ouid: Option<String>,
}

pub fn opt(s: &str) -> Option<String> {
    (s != "∅").then(|| s.to_string())
}

pub fn events_of(lake: &Path) -> Vec<Ev> {
    lake_rows(lake)
        .into_iter()
        .map(|r| Ev {
            tenant: r[0].clone(),
            day: r[1].clone(),
            time: r[2].parse().unwrap(),
            actor: opt(&r[col("actor_id")]),
            action: r[col("action")].clone(),
            outcome: r[col("outcome")].clone(),
            trace: r[col("trace_id")].clone(),
            ip: opt(&r[col("client_ip")]),
            role: opt(&r[col("role")]),
            ouid: opt(&r[col("ouid")]),
        })
        .collect()
}

/// SPEC §4's categories of every vendor's actions, written out again here on purpose
/// (from the vendors' documentation, not from the catalog): DPoD's `LUNA_*`, AWS
/// CloudHSM's `CN_*`, Azure Key Vault and Managed HSM operations, Cloud KMS methods and
/// the Vault decoder's actions. No action name means two things across vendors.
pub fn category(action: &str) -> &'static str {
    if let Some(a) = action.strip_prefix("LUNA_") {
        return luna_category(a);
    }
    if let Some(a) = action.strip_prefix("CN_") {
        return cloudhsm_category(a);
    }
    match action {
        "Authentication" | "login" | "Login" => "auth",
        "KeyCreate"
        | "KeyImport"
        | "CreateCryptoKey"
        | "CreateCryptoKeyVersion"
        | "ImportCryptoKeyVersion"
        | "create-key"
        | "import-key"
        | "restore"
        | "Create Key" => "key_create",
        "KeySign" | "KeyVerify" | "KeyWrap" | "KeyUnwrap" | "KeyEncrypt" | "KeyDecrypt"
        | "KeyRelease" | "Encrypt" | "Decrypt" | "RawEncrypt" | "RawDecrypt" | "AsymmetricSign"
        | "AsymmetricDecrypt" | "MacSign" | "MacVerify" | "encrypt" | "decrypt" | "rewrap"
        | "sign" | "verify" | "hmac" | "datakey" => "key_use",
        "KeyUpdate"
        | "KeyRotate"
        | "KeyRotateIfDue"
        | "KeyRotationPolicySet"
        | "KeyRecover"
        | "UpdateCryptoKey"
        | "UpdateCryptoKeyPrimaryVersion"
        | "UpdateCryptoKeyVersion"
        | "RestoreCryptoKeyVersion"
        | "rotate-key"
        | "config-key" => "key_modify",
        "KeyDelete" | "KeyPurge" | "DestroyCryptoKeyVersion" | "delete-key" | "trim-key" => {
            "key_destroy"
        }
        "KeyBackup" | "KeyRestore" | "SelectiveKeyRestore" | "backup" | "export" => "replication",
        "RoleAssignmentCreate"
        | "RoleAssignmentDelete"
        | "RoleDefinitionCreate"
        | "RoleDefinitionDelete"
        | "SetIamPolicy"
        | "Delete User"
        | "update sys/policies"
        | "delete sys/policies"
        | "update sys/auth"
        | "delete sys/auth" => "user_admin",
        "VaultPut"
        | "VaultPatch"
        | "VaultDelete"
        | "VaultPurge"
        | "VaultRecover"
        | "SecurityDomainDownload"
        | "SecurityDomainUpload"
        | "BackupCreate"
        | "RestoreStart"
        | "CreateKeyRing"
        | "update sys/mounts"
        | "delete sys/mounts"
        | "update sys/audit"
        | "delete sys/audit"
        | "update sys/seal"
        | "update sys/unseal"
        | "update sys/rotate" => "partition_admin",
        _ => "other",
    }
}

fn luna_category(a: &str) -> &'static str {
    match a {
        "LOGIN" => "auth",
        "GENERATE_KEY"
        | "GENERATE_KEY_PAIR"
        | "CREATE_OBJECT"
        | "COPY_OBJECT"
        | "GENERATE_DOMAIN_PARAM" => "key_create",
        "MODIFY_OBJECT" => "key_modify",
        "DESTROY_OBJECT" => "key_destroy",
        "INIT_PIN" | "SET_PIN" => "user_admin",
        "PARTITION_INIT" | "PARTITION_ZEROIZE" => "partition_admin",
        _ if a.starts_with("CLONE_AS_") || a.starts_with("REPLICATE_AS_") => "replication",
        _ if ["ENCRYPT", "DECRYPT", "SIGN", "VERIFY"]
            .iter()
            .any(|p| a == *p || a.starts_with(&format!("{p}_")))
            || [
                "WRAP_KEY",
                "UNWRAP_KEY",
                "DERIVE_KEY",
                "DERIVE_KEY_AND_WRAP",
                "DIGEST_KEY",
                "DIGEST_KEY_VALUE",
                "GEN_KCV",
            ]
            .contains(&a) =>
        {
            "key_use"
        }
        _ => "other",
    }
}

fn cloudhsm_category(a: &str) -> &'static str {
    match a {
        "LOGIN" => "auth",
        "CREATE_USER"
        | "CREATE_CO"
        | "CREATE_APPLIANCE_USER"
        | "DELETE_USER"
        | "CHANGE_PSWD"
        | "SET_M_VALUE"
        | "APPROVE_TOKEN" => "user_admin",
        "GENERATE_KEY" | "GENERATE_KEY_PAIR" | "CREATE_OBJECT" | "UNWRAP_KEY" => "key_create",
        "MODIFY_OBJECT" | "SHARE_OBJECT" => "key_modify",
        "WRAP_KEY" | "NIST_AES_WRAP" => "key_use",
        "DESTROY_OBJECT" | "TOMBSTONE_OBJECT" => "key_destroy",
        "INSERT_MASKED_OBJECT_USER"
        | "EXTRACT_MASKED_OBJECT_USER"
        | "CERT_AUTH_SOURCE_KEY_EXCHANGE"
        | "CERT_AUTH_TARGET_KEY_EXCHANGE" => "replication",
        _ if a.starts_with("CLONE_") => "replication",
        "INIT_TOKEN"
        | "INIT_DONE"
        | "GEN_KEY_ENC_KEY"
        | "GEN_PSWD_ENC_KEY"
        | "CLOSE_PARTITION_SESSIONS"
        | "STORE_KBK_SHARE"
        | "SET_NODEID"
        | "ZEROIZE" => "partition_admin",
        _ => "other",
    }
}

/// A loopback port nothing listens on (for the test servers: moto, Azurite, Ballista).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `cmd` with `AUDITLAKE_PAUSE_AT=point`: when it pauses there, kills it with
/// SIGKILL and returns true; false when it ends without reaching the point.
pub fn kill_at_pause(cmd: &mut Command, point: &str) -> bool {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .env("AUDITLAKE_PAUSE_AT", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut paused = false;
    while stderr.read_line(&mut line).unwrap() > 0 {
        if line.contains("paused at") {
            paused = true;
            child.kill().unwrap();
            break;
        }
        line.clear();
    }
    child.wait().unwrap();
    paused
}

/// `verify --json` (with `--fix` if asked): its exit code and output.
pub fn verify_lake(lake: &Path, fix: bool) -> (i32, Value) {
    let mut c = bin();
    c.args(["verify", "--json", "--lake"]).arg(lake);
    if fix {
        c.arg("--fix");
    }
    let out = c.output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

/// The kind of every finding of a `verify --json` output, in order.
pub fn finding_kinds(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}
