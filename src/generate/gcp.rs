//! Writes realistic Google Cloud KMS audit logs (`generate --vendor gcp-kms`): Cloud
//! Logging `LogEntry`s of `cloudkms.googleapis.com` with an `AuditLog` payload, Data
//! Access (`Decrypt`, `AsymmetricSign`, ...) and Admin Activity (`CreateCryptoKey`,
//! `SetIamPolicy`, ...), one project per tenant.
//!
//! [`GcpForm::Sink`] lays them out as a log sink to Cloud Storage does, one JSON Lines
//! file per log and hour for all projects,
//! `cloudaudit.googleapis.com/<data_access|activity>/YYYY/MM/DD/HH:00:00_HH:59:59_S0.json`;
//! in about one hour in a hundred an `_A0` shard repeats some lines of `_S0` (Logging
//! does not promise to deliver an entry once). [`GcpForm::Gcloud`] writes what
//! `gcloud logging read --format=json` prints, per project and month:
//! `<project>/gcloud-YYYY-MM.json`, one pretty-printed JSON array, newest entry first.
//! One project's `Decrypt`s carry Key Access Justifications now and then. The traffic
//! is [`super::cloud`]'s. Deterministic for a seed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::cloud::{
    pretty, utc, ymdh, Act, Obj, Outcome, Plan, Profile, Purpose, Tenant, UseOp, What, Who, MILLI,
};
use super::Rng;
use crate::{Error, Result};

/// How the entries are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GcpForm {
    /// A log sink's Cloud Storage objects: one JSON Lines file per log and hour.
    Sink,
    /// `gcloud logging read --format=json` output: a JSON array per project and month,
    /// newest first.
    Gcloud,
}

#[derive(Debug, Clone)]
pub struct GcpOptions {
    pub out: PathBuf,
    /// Entries over all projects and months (the `_A0` shards' repeats not counted).
    pub events: u64,
    pub projects: u32,
    /// First month, `YYYY-MM`.
    pub start: String,
    pub months: u32,
    pub seed: u64,
    pub form: GcpForm,
}

/// Writes the files; returns their paths.
pub fn generate(opts: &GcpOptions) -> Result<Vec<PathBuf>> {
    let profile = Profile {
        containers: (2, 4),
        purge: false,
        logins: false,
        container_created: true,
    };
    let plan = Plan::new(
        opts.events,
        opts.projects,
        (&opts.start, opts.months),
        opts.seed,
        profile,
    )?;
    let projects: Vec<Project> = plan
        .tenants
        .iter()
        .enumerate()
        .map(|(ti, t)| Project::new(&mut plan.rng(ti, 0, 0x9C9), t))
        .collect();
    // One tenant's Decrypts carry Key Access Justifications.
    let entries = |ti: usize, h: usize| -> Vec<Entry> {
        let mut rng = plan.rng(ti, h, 0x6C);
        let t = &plan.tenants[ti];
        plan.acts(ti, h)
            .iter()
            .map(|a| projects[ti].entry(t, a, &mut rng, ti == 0))
            .collect()
    };
    match opts.form {
        GcpForm::Sink => write_sink(&opts.out, &plan, &entries),
        GcpForm::Gcloud => write_gcloud(&opts.out, &plan, &projects, &entries),
    }
}

const LOGS: [&str; 2] = ["data_access", "activity"];

fn write_sink(
    out: &Path,
    plan: &Plan,
    entries: &dyn Fn(usize, usize) -> Vec<Entry>,
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for h in 0..plan.period.hours() {
        let mut logs: [Vec<Entry>; 2] = [Vec::new(), Vec::new()];
        for ti in 0..plan.tenants.len() {
            for e in entries(ti, h) {
                logs[e.activity as usize].push(e);
            }
        }
        let (y, m, d, hh) = ymdh(plan.period.hour_start(h));
        let mut shards = plan.rng(usize::MAX, h, 0xA0);
        for (log, entries) in LOGS.iter().zip(&mut logs) {
            if entries.is_empty() {
                continue;
            }
            entries.sort_by_key(|e| e.time);
            let dir = out.join(format!(
                "cloudaudit.googleapis.com/{log}/{y:04}/{m:02}/{d:02}"
            ));
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let name = |shard: &str| format!("{hh:02}:00:00_{hh:02}:59:59_{shard}.json");
            paths.push(write_lines(&dir.join(name("S0")), entries)?);
            if shards.chance(0.01) {
                // Some entries delivered again, byte for byte.
                let n = entries.len() as u64;
                let from = shards.below(n) as usize;
                let len = 1 + shards.below((n / 3).max(1)) as usize;
                let again = &entries[from..(from + len).min(entries.len())];
                paths.push(write_lines(&dir.join(name("A0")), again)?);
            }
        }
    }
    Ok(paths)
}

fn write_lines(path: &Path, entries: &[Entry]) -> Result<PathBuf> {
    let io = |e| Error::io(path, e);
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    for e in entries {
        w.write_all(e.line.as_bytes()).map_err(io)?;
        w.write_all(b"\n").map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(path.to_path_buf())
}

fn write_gcloud(
    out: &Path,
    plan: &Plan,
    projects: &[Project],
    entries: &dyn Fn(usize, usize) -> Vec<Entry>,
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for (ti, p) in projects.iter().enumerate() {
        let dir = out.join(&p.id);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        for k in 0..plan.period.months.len() - 1 {
            let (y, m, _, _) = ymdh(plan.period.months[k]);
            let path = dir.join(format!("gcloud-{y:04}-{m:02}.json"));
            let io = |e| Error::io(&path, e);
            let mut w = BufWriter::new(File::create(&path).map_err(io)?);
            let mut buf = Vec::with_capacity(4096);
            let mut first = true;
            // Newest first: the hours backwards, each hour's entries backwards.
            for h in plan.period.month_hours(k).rev() {
                for e in entries(ti, h).iter().rev() {
                    buf.clear();
                    buf.extend_from_slice(if first { b"[\n  " } else { b",\n  " });
                    first = false;
                    pretty(&e.line, 1, &mut buf);
                    w.write_all(&buf).map_err(io)?;
                }
            }
            w.write_all(if first { b"[]\n" } else { b"\n]\n" })
                .map_err(io)?;
            w.flush().map_err(io)?;
            paths.push(path);
        }
    }
    Ok(paths)
}

/// One `LogEntry`, written.
struct Entry {
    time: i64,
    /// In the Admin Activity log (else Data Access).
    activity: bool,
    line: String,
}

/// A key ring.
struct Ring {
    location: &'static str,
    name: &'static str,
    /// `projects/<p>/locations/<l>/keyRings/<r>`.
    path: String,
}

struct Project {
    id: String,
    rings: Vec<Ring>,
}

/// What a call is about.
enum Target {
    /// Creating a ring: its location.
    Location,
    Ring,
    Key(usize),
    /// A key's version, numbered from 1.
    Version(usize, usize),
}

const LOCATIONS: [&str; 6] = [
    "europe-west1",
    "us-central1",
    "global",
    "europe-west3",
    "asia-northeast1",
    "us-east4",
];
const APP_AGENTS: [&str; 4] = [
    "grpc-java-netty/1.60.1,gzip(gfe)",
    "grpc-python/1.60.0 grpc-c/37.0.0 (linux; chttp2),gzip(gfe)",
    "grpc-go/1.60.1,gzip(gfe)",
    "grpc-node-js/1.9.13,gzip(gfe)",
];
const PEOPLE_AGENTS: [&str; 4] = [
    "google-cloud-sdk gcloud/460.0.0 command/gcloud.kms.keys.list invocation-id/6f1e0a2b9c3d4e5f8a7b6c5d4e3f2a1b environment/None environment-version/None client-os/MACOSX client-os-ver/23.2.0 client-pltf-arch/arm interactive/True from-script/False python/3.11.7 term/xterm-256color (Macintosh; Intel Mac OS X 23.2.0),gzip(gfe)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36,gzip(gfe)",
    "Terraform/1.6.6 (+https://www.terraform.io) Terraform-Plugin-SDK/2.10.1 terraform-provider-google/5.10.0,gzip(gfe)",
    "google-cloud-sdk gcloud/461.0.0 command/gcloud.kms.keys.describe invocation-id/0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d environment/None environment-version/None client-os/LINUX client-os-ver/6.5.0 client-pltf-arch/x86_64 interactive/True from-script/False python/3.11.7 term/xterm-256color (Linux 6.5.0-14-generic),gzip(gfe)",
];
const STRANGE_AGENTS: [&str; 3] = [
    "python-requests/2.31.0,gzip(gfe)",
    "curl/8.4.0,gzip(gfe)",
    "Go-http-client/2.0,gzip(gfe)",
];

impl Project {
    fn new(rng: &mut Rng, t: &Tenant) -> Project {
        let id = format!("{}-kms-{:06}", t.name, rng.below(1_000_000));
        let rings = t
            .containers
            .iter()
            .map(|c| {
                let location = LOCATIONS[rng.below(LOCATIONS.len() as u64) as usize];
                Ring {
                    location,
                    name: c.team,
                    path: format!("projects/{id}/locations/{location}/keyRings/{}", c.team),
                }
            })
            .collect();
        Project { id, rings }
    }

    /// The method an act calls and what it calls it on.
    fn method(&self, t: &Tenant, a: &Act) -> (&'static str, Target) {
        let version = |k: usize| Target::Version(k, t.keys[k].version_at(a.time) + 1);
        let live = t.live_key(a.container, a.time, a.pick);
        match a.what {
            What::Use(k, op) => match op {
                UseOp::Encrypt | UseOp::Wrap if t.keys[k].purpose == Purpose::Encrypt => {
                    ("Encrypt", Target::Key(k))
                }
                UseOp::Decrypt | UseOp::Unwrap if t.keys[k].purpose == Purpose::Encrypt => {
                    ("Decrypt", Target::Key(k))
                }
                UseOp::Unwrap | UseOp::Decrypt => ("AsymmetricDecrypt", version(k)),
                UseOp::Sign => ("AsymmetricSign", version(k)),
                UseOp::Mac => ("MacSign", version(k)),
                // Verifying and wrapping are done with the public key, fetched.
                UseOp::Verify | UseOp::Wrap | UseOp::Encrypt | UseOp::GetPublicKey => {
                    ("GetPublicKey", version(k))
                }
            },
            What::GetKey(k) => ("GetCryptoKey", Target::Key(k)),
            What::ListKeys => ("ListCryptoKeys", Target::Ring),
            What::CreateKey(k) => ("CreateCryptoKey", Target::Key(k)),
            What::RotateKey(k) => ("CreateCryptoKeyVersion", version(k)),
            What::DeleteKey(k) | What::PurgeKey(k) => ("DestroyCryptoKeyVersion", version(k)),
            What::CreateContainer => ("CreateKeyRing", Target::Location),
            What::Secret { write: false } | What::Login => match live {
                Some(k) => ("GetCryptoKey", Target::Key(k)),
                None => ("ListCryptoKeys", Target::Ring),
            },
            What::Secret { write: true } => match live {
                Some(k) => ("SetIamPolicy", Target::Key(k)),
                None => ("SetIamPolicy", Target::Ring),
            },
            What::Admin => match (a.pick % 100, live) {
                (0..=34, Some(k)) => ("SetIamPolicy", Target::Key(k)),
                (35..=59, Some(k)) => ("UpdateCryptoKeyPrimaryVersion", Target::Key(k)),
                (60..=69, Some(k)) => ("RestoreCryptoKeyVersion", Target::Key(k)),
                (70..=84, Some(k)) => ("ImportCryptoKeyVersion", Target::Key(k)),
                _ => ("SetIamPolicy", Target::Ring),
            },
        }
    }

    /// One entry of an act; `kaj`: this project's Decrypts may carry a justification.
    fn entry(&self, t: &Tenant, a: &Act, rng: &mut Rng, kaj: bool) -> Entry {
        let (method, target) = self.method(t, a);
        let ring = &self.rings[a.container];
        let location = format!("projects/{}/locations/{}", self.id, ring.location);
        let key_path = |k: usize| format!("{}/cryptoKeys/{}", ring.path, t.keys[k].name);
        let resource_name = match target {
            Target::Location | Target::Ring => ring.path.clone(),
            Target::Key(k) => key_path(k),
            Target::Version(k, n) => format!("{}/cryptoKeyVersions/{n}", key_path(k)),
        };
        let key = match target {
            Target::Key(k) | Target::Version(k, _) => Some(k),
            _ => None,
        };
        let activity = matches!(
            method,
            "CreateCryptoKey"
                | "CreateKeyRing"
                | "CreateCryptoKeyVersion"
                | "UpdateCryptoKeyPrimaryVersion"
                | "DestroyCryptoKeyVersion"
                | "RestoreCryptoKeyVersion"
                | "SetIamPolicy"
                | "ImportCryptoKeyVersion"
        );
        let permission = match method {
            "Encrypt" => "cloudkms.cryptoKeyVersions.useToEncrypt",
            "Decrypt" | "AsymmetricDecrypt" => "cloudkms.cryptoKeyVersions.useToDecrypt",
            "AsymmetricSign" | "MacSign" => "cloudkms.cryptoKeyVersions.useToSign",
            "GetPublicKey" => "cloudkms.cryptoKeyVersions.viewPublicKey",
            "GetCryptoKey" => "cloudkms.cryptoKeys.get",
            "ListCryptoKeys" => "cloudkms.cryptoKeys.list",
            "CreateCryptoKey" => "cloudkms.cryptoKeys.create",
            "CreateKeyRing" => "cloudkms.keyRings.create",
            "CreateCryptoKeyVersion" | "ImportCryptoKeyVersion" => {
                "cloudkms.cryptoKeyVersions.create"
            }
            "UpdateCryptoKeyPrimaryVersion" => "cloudkms.cryptoKeys.update",
            "DestroyCryptoKeyVersion" => "cloudkms.cryptoKeyVersions.destroy",
            "RestoreCryptoKeyVersion" => "cloudkms.cryptoKeyVersions.restore",
            _ if key.is_some() => "cloudkms.cryptoKeys.setIamPolicy",
            _ => "cloudkms.keyRings.setIamPolicy",
        };
        // The permission is checked on the parent of what is created.
        let authorized = match method {
            "CreateKeyRing" => location.clone(),
            "CreateCryptoKey" => ring.path.clone(),
            _ => resource_name.clone(),
        };
        let (principal, ip, agent) = match a.who {
            Who::App(i) => {
                let p = &t.apps[i];
                (
                    format!("{}@{}.iam.gserviceaccount.com", p.name, self.id),
                    p.ips[a.pick as usize % p.ips.len()].as_str(),
                    APP_AGENTS[p.agent],
                )
            }
            Who::Human(i) => {
                let p = &t.humans[i];
                (
                    format!("{}@{}", p.name, t.domain),
                    p.ips[a.pick as usize % p.ips.len()].as_str(),
                    PEOPLE_AGENTS[p.agent],
                )
            }
            Who::Stranger(i) => (
                format!(
                    "svc-{:04}@ext-{:06}.iam.gserviceaccount.com",
                    a.pick % 10_000,
                    a.pick % 999_983
                ),
                t.strangers[i].as_str(),
                STRANGE_AGENTS[a.pick as usize % STRANGE_AGENTS.len()],
            ),
        };
        let time = utc(a.time, 9);
        let received = utc(a.time + 30 * MILLI + rng.below(60 * MILLI as u64) as i64, 9);
        let insert_len = 12 + rng.below(5) as usize;
        let insert_id: String = (0..insert_len)
            .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.below(36) as usize] as char)
            .collect();
        let justified = kaj && method == "Decrypt" && rng.chance(0.1);
        let failure = match a.outcome {
            Outcome::Ok => None,
            Outcome::Denied | Outcome::BadCredentials => Some((
                7,
                format!("Permission '{permission}' denied on resource '{authorized}' (or it may not exist)."),
            )),
            Outcome::NotFound => Some((
                9,
                format!("{resource_name} is not enabled, current state is: DESTROYED."),
            )),
        };
        let severity = match (&failure, activity) {
            (Some(_), _) => "ERROR",
            (None, true) => "NOTICE",
            (None, false) => "INFO",
        };
        let mut line = String::with_capacity(1500);
        let mut o = Obj::open(&mut line);
        o.obj("protoPayload", |o| {
            o.str("@type", "type.googleapis.com/google.cloud.audit.AuditLog")
                .obj("status", |o| {
                    if let Some((code, message)) = &failure {
                        o.raw("code", code).str("message", message);
                    }
                })
                .obj("authenticationInfo", |o| {
                    o.str("principalEmail", &principal);
                })
                .obj("requestMetadata", |o| {
                    o.str("callerIp", ip)
                        .str("callerSuppliedUserAgent", agent)
                        .obj("requestAttributes", |o| {
                            o.str("time", &time).obj("auth", |_| {});
                        })
                        .obj("destinationAttributes", |_| {});
                })
                .str("serviceName", "cloudkms.googleapis.com")
                .str("methodName", method)
                .objs("authorizationInfo", 1, |_, o| {
                    o.str("resource", &authorized)
                        .str("permission", permission)
                        .raw(
                            "granted",
                            a.outcome != Outcome::Denied && a.outcome != Outcome::BadCredentials,
                        )
                        .obj("resourceAttributes", |_| {});
                })
                .str("resourceName", &resource_name)
                .obj("request", |o| {
                    let parent_of_version = || key.map(key_path).unwrap_or_default();
                    match method {
                        "ListCryptoKeys" => {
                            o.str("parent", &ring.path);
                        }
                        "CreateKeyRing" => {
                            o.str("parent", &location).str("keyRingId", ring.name);
                        }
                        "CreateCryptoKey" => {
                            let k = key.map(|k| &t.keys[k]);
                            o.str("parent", &ring.path)
                                .str("cryptoKeyId", k.map_or("", |k| &k.name))
                                .obj("cryptoKey", |o| {
                                    o.str("purpose", purpose_name(k.map(|k| k.purpose)));
                                });
                        }
                        "CreateCryptoKeyVersion" => {
                            o.str("parent", &parent_of_version());
                        }
                        "ImportCryptoKeyVersion" => {
                            o.str("parent", &resource_name).str(
                                "importJob",
                                &format!("{}/importJobs/import-{}", ring.path, a.pick % 9 + 1),
                            );
                        }
                        "UpdateCryptoKeyPrimaryVersion" => {
                            let n = key.map_or(1, |k| t.keys[k].version_at(a.time) + 1);
                            o.str("name", &resource_name)
                                .str("cryptoKeyVersionId", &n.to_string());
                        }
                        "SetIamPolicy" => {
                            o.str("resource", &resource_name);
                        }
                        _ => {
                            o.str("name", &resource_name);
                        }
                    }
                    let ty = if method == "SetIamPolicy" {
                        "type.googleapis.com/google.iam.v1.SetIamPolicyRequest".to_string()
                    } else {
                        format!("type.googleapis.com/google.cloud.kms.v1.{method}Request")
                    };
                    o.str("@type", &ty);
                });
            if justified {
                let reason = if a.pick.is_multiple_of(10) {
                    "GOOGLE_INITIATED_SYSTEM_OPERATION"
                } else {
                    "CUSTOMER_INITIATED_ACCESS"
                };
                o.obj("metadata", |o| {
                    o.obj("keyAccessJustification", |o| {
                        o.str("reason", reason);
                    });
                });
            }
        })
        .str("insertId", &insert_id)
        .obj("resource", |o| {
            let ty = if key.is_some() {
                "cloudkms_cryptokey"
            } else {
                "cloudkms_keyring"
            };
            o.str("type", ty).obj("labels", |o| {
                o.str("project_id", &self.id)
                    .str("location", ring.location)
                    .str("key_ring_id", ring.name);
                if let Some(k) = key {
                    o.str("crypto_key_id", &t.keys[k].name);
                }
            });
        })
        .str("timestamp", &time)
        .str("severity", severity)
        .str(
            "logName",
            &format!(
                "projects/{}/logs/cloudaudit.googleapis.com%2F{}",
                self.id, LOGS[activity as usize]
            ),
        )
        .str("receiveTimestamp", &received);
        o.close();
        Entry {
            time: a.time,
            activity,
            line,
        }
    }
}

fn purpose_name(p: Option<Purpose>) -> &'static str {
    match p {
        Some(Purpose::Encrypt) | None => "ENCRYPT_DECRYPT",
        Some(Purpose::Sign) => "ASYMMETRIC_SIGN",
        Some(Purpose::Wrap) => "ASYMMETRIC_DECRYPT",
        Some(Purpose::Mac) => "MAC",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::cloud::snapshot;
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};

    fn options(dir: &Path, form: GcpForm) -> GcpOptions {
        GcpOptions {
            out: dir.to_path_buf(),
            events: 5000,
            projects: 2,
            start: "2025-01".into(),
            months: 2,
            seed: 5,
            form,
        }
    }

    const VERSION_LEVEL: [&str; 6] = [
        "AsymmetricSign",
        "AsymmetricDecrypt",
        "MacSign",
        "GetPublicKey",
        "DestroyCryptoKeyVersion",
        "CreateCryptoKeyVersion",
    ];

    /// Checks one entry's shape; returns its method.
    fn check(e: &Value) -> String {
        let p = &e["protoPayload"];
        assert_eq!(
            p["@type"],
            "type.googleapis.com/google.cloud.audit.AuditLog"
        );
        assert_eq!(p["serviceName"], "cloudkms.googleapis.com");
        let method = p["methodName"].as_str().unwrap().to_string();
        let time = e["timestamp"].as_str().unwrap();
        assert_eq!(time.len(), 30, "{time}"); // 9 fractional digits
        assert_eq!(p["requestMetadata"]["requestAttributes"]["time"], time);
        let received = e["receiveTimestamp"].as_str().unwrap();
        assert!(received.len() == 30 && received > time, "{received}");
        assert!(p["requestMetadata"]["callerIp"].is_string());
        assert!(p["authenticationInfo"]["principalEmail"]
            .as_str()
            .unwrap()
            .contains('@'));
        let id = e["insertId"].as_str().unwrap();
        assert!((12..=16).contains(&id.len()), "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{id}"
        );
        let name = p["resourceName"].as_str().unwrap();
        assert!(name.starts_with("projects/"), "{name}");
        let project = e["resource"]["labels"]["project_id"].as_str().unwrap();
        assert!(
            name.starts_with(&format!("projects/{project}/locations/")),
            "{name}"
        );
        assert_eq!(
            name.contains("/cryptoKeyVersions/"),
            VERSION_LEVEL.contains(&method.as_str()),
            "{method} {name}"
        );
        let ty = p["request"]["@type"].as_str().unwrap();
        assert!(ty.ends_with(&format!("{method}Request")), "{ty}");
        let auth = &p["authorizationInfo"][0];
        assert!(auth["permission"]
            .as_str()
            .unwrap()
            .starts_with("cloudkms."));
        let activity = e["logName"].as_str().unwrap().ends_with("%2Factivity");
        assert!(activity || e["logName"].as_str().unwrap().ends_with("%2Fdata_access"));
        let code = p["status"]["code"].as_u64();
        let severity = e["severity"].as_str().unwrap();
        match code {
            None => assert_eq!(severity, if activity { "NOTICE" } else { "INFO" }),
            Some(c) => {
                assert_eq!(severity, "ERROR");
                assert_eq!(auth["granted"], c != 7);
                assert!(p["status"]["message"].is_string());
            }
        }
        method
    }

    #[test]
    fn generate_gcp_sink_writes_hourly_files_per_log() {
        let dir = tempfile::tempdir().unwrap();
        generate(&options(dir.path(), GcpForm::Sink)).unwrap();
        let files = snapshot(dir.path());
        let (mut entries, mut again) = (0, 0);
        let mut methods = BTreeMap::new();
        let mut ids = BTreeSet::new();
        let mut justified = BTreeSet::new();
        for (rel, bytes) in &files {
            let parts: Vec<&str> = rel.split('/').collect();
            assert_eq!(parts.len(), 6, "{rel}");
            assert_eq!(parts[0], "cloudaudit.googleapis.com");
            assert!(LOGS.contains(&parts[1]), "{rel}");
            let hour = &parts[5][..2];
            let shard = parts[5]
                .strip_prefix(&format!("{hour}:00:00_{hour}:59:59_"))
                .unwrap();
            assert!(shard == "S0.json" || shard == "A0.json", "{rel}");
            let text = std::str::from_utf8(bytes).unwrap();
            for line in text.lines() {
                let e: Value = serde_json::from_str(line).unwrap();
                let method = check(&e);
                let time = e["timestamp"].as_str().unwrap();
                assert_eq!(
                    &time[..13],
                    format!("{}-{}-{}T{hour}", parts[2], parts[3], parts[4])
                );
                assert!(e["logName"].as_str().unwrap().ends_with(parts[1]));
                if shard == "A0.json" {
                    // A repeat of a line of the hour's S0, byte for byte.
                    let s0 =
                        std::str::from_utf8(&files[&rel.replace("A0.json", "S0.json")]).unwrap();
                    assert!(s0.lines().any(|l| l == line), "{rel}");
                    again += 1;
                    continue;
                }
                entries += 1;
                assert!(ids.insert(e["insertId"].as_str().unwrap().to_string()));
                *methods.entry(method).or_insert(0) += 1;
                if e["protoPayload"]["metadata"]["keyAccessJustification"]["reason"].is_string() {
                    justified.insert(e["resource"]["labels"]["project_id"].to_string());
                }
            }
        }
        assert_eq!(entries, 5000);
        assert!(again > 0);
        assert_eq!(justified.len(), 1, "{justified:?}");
        for m in [
            "Decrypt",
            "Encrypt",
            "AsymmetricSign",
            "MacSign",
            "GetCryptoKey",
            "ListCryptoKeys",
            "GetPublicKey",
            "CreateCryptoKey",
            "CreateKeyRing",
            "CreateCryptoKeyVersion",
            "DestroyCryptoKeyVersion",
            "SetIamPolicy",
        ] {
            assert!(methods.contains_key(m), "no {m}: {methods:?}");
        }
    }

    #[test]
    fn generate_gcp_gcloud_holds_the_sinks_entries_newest_first_and_is_deterministic() {
        let (sink, gcloud) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        generate(&options(sink.path(), GcpForm::Sink)).unwrap();
        let paths = generate(&options(gcloud.path(), GcpForm::Gcloud)).unwrap();
        assert_eq!(paths.len(), 4);
        let mut from_sink = BTreeSet::new();
        for (rel, bytes) in snapshot(sink.path()) {
            if rel.ends_with("S0.json") {
                for line in std::str::from_utf8(&bytes).unwrap().lines() {
                    from_sink.insert(serde_json::from_str::<Value>(line).unwrap().to_string());
                }
            }
        }
        let mut from_gcloud = BTreeSet::new();
        for (rel, bytes) in snapshot(gcloud.path()) {
            let (project, file) = rel.split_once('/').unwrap();
            assert!(
                file == "gcloud-2025-01.json" || file == "gcloud-2025-02.json",
                "{rel}"
            );
            let text = std::str::from_utf8(&bytes).unwrap();
            assert!(
                text.starts_with("[\n  {\n    \"protoPayload\": {\n"),
                "{rel}"
            );
            let entries: Vec<Value> = serde_json::from_str(text).unwrap();
            assert!(text.ends_with("  }\n]\n"), "{rel}");
            let times: Vec<&str> = entries
                .iter()
                .map(|e| e["timestamp"].as_str().unwrap())
                .collect();
            assert!(
                times.windows(2).all(|w| w[0] >= w[1]),
                "{rel}: not newest first"
            );
            for e in &entries {
                check(e);
                assert_eq!(e["resource"]["labels"]["project_id"], project);
                assert!(from_gcloud.insert(e.to_string()));
            }
        }
        assert_eq!(from_sink.len(), 5000);
        assert!(from_sink == from_gcloud);
        let again = tempfile::tempdir().unwrap();
        generate(&options(again.path(), GcpForm::Gcloud)).unwrap();
        assert!(snapshot(gcloud.path()) == snapshot(again.path()));
    }
}
