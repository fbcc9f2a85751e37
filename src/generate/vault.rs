//! Writes realistic HashiCorp Vault audit logs (`generate --vendor hashicorp-vault`): what
//! a `file` audit device writes, one JSON object per line, a `request` entry and a
//! `response` entry per call joined by `request.id`, every string value HMAC'd
//! (`hmac-sha256:<64 hex>`) but the structural ones. Calls overlap, so a response may come
//! a few lines after its request; about one call in a thousand has no response (Vault
//! restarted).
//!
//! Per tenant, a directory `<tenant>/` (convert it with `--tenant <tenant>`) holding the
//! current month as `vault_audit.log` and each month before it rotated as
//! `vault_audit-YYYY-MM.log.gz`. Transit mounts are the key containers (`transit`,
//! `transit-<team>`); applications log in with AppRole, people with userpass; KV v2
//! secrets under `secret/`. The traffic is [`super::cloud`]'s. Deterministic for a seed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::cloud::{
    utc, Act, Obj, Outcome, Plan, Profile, Tenant, UseOp, What, Who, DAY, HOUR, MILLI,
};
use super::Rng;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct VaultOptions {
    pub out: PathBuf,
    /// Calls over all tenants and months (each a request and, mostly, a response line).
    pub events: u64,
    pub tenants: u32,
    /// First month, `YYYY-MM`.
    pub start: String,
    pub months: u32,
    pub seed: u64,
}

/// Writes the audit files; returns their paths.
pub fn generate(opts: &VaultOptions) -> Result<Vec<PathBuf>> {
    let profile = Profile {
        containers: (2, 3),
        purge: false,
        logins: true,
        container_created: false,
    };
    let plan = Plan::new(
        opts.events,
        opts.tenants,
        (&opts.start, opts.months),
        opts.seed,
        profile,
    )?;
    let months = plan.period.months.len() - 1;
    let mut paths = Vec::new();
    for (ti, t) in plan.tenants.iter().enumerate() {
        let server = Server::new(&mut plan.rng(ti, 0, 0x5A17), t);
        let dir = opts.out.join(&t.name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // Responses that come after their hour, written with the next one.
        let mut later: Vec<(i64, String)> = Vec::new();
        for k in 0..months {
            let (y, m, _, _) = super::cloud::ymdh(plan.period.months[k]);
            let path = if k + 1 == months {
                dir.join("vault_audit.log")
            } else {
                dir.join(format!("vault_audit-{y:04}-{m:02}.log.gz"))
            };
            let mut w = AuditFile::create(&path, k + 1 < months)?;
            for h in plan.period.month_hours(k) {
                let end = plan.period.hour_start(h) + HOUR;
                let mut lines = std::mem::take(&mut later);
                let mut rng = plan.rng(ti, h, 0x7A);
                for a in plan.acts(ti, h) {
                    server.lines(t, &a, &mut rng, &mut lines);
                }
                lines.sort_by_key(|l| l.0);
                let now = lines.partition_point(|l| l.0 < end);
                later = lines.split_off(now);
                for (_, line) in &lines {
                    w.line(line).map_err(|e| Error::io(&path, e))?;
                }
                if k + 1 == months && h + 1 == plan.period.hours() {
                    for (_, line) in later.drain(..) {
                        w.line(&line).map_err(|e| Error::io(&path, e))?;
                    }
                }
            }
            w.finish().map_err(|e| Error::io(&path, e))?;
            paths.push(path);
        }
    }
    Ok(paths)
}

/// One month's file, rotated (gzip) or current.
enum AuditFile {
    Current(BufWriter<File>),
    Rotated(Box<flate2::write::GzEncoder<BufWriter<File>>>),
}

impl AuditFile {
    fn create(path: &Path, rotated: bool) -> Result<AuditFile> {
        let f = BufWriter::new(File::create(path).map_err(|e| Error::io(path, e))?);
        Ok(if rotated {
            // Fast: a year of a busy Vault is gigabytes.
            let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            AuditFile::Rotated(Box::new(gz))
        } else {
            AuditFile::Current(f)
        })
    }

    fn line(&mut self, line: &str) -> std::io::Result<()> {
        let w: &mut dyn Write = match self {
            AuditFile::Current(w) => w,
            AuditFile::Rotated(w) => w.as_mut(),
        };
        w.write_all(line.as_bytes())?;
        w.write_all(b"\n")
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            AuditFile::Current(mut w) => w.flush(),
            AuditFile::Rotated(w) => w.finish()?.flush(),
        }
    }
}

const DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";
const SECRETS: [&str; 3] = ["config", "db", "api-key"];
const GUESSES: [&str; 4] = ["admin", "root", "vault", "ops"];

/// A tenant's Vault: its mounts and the audit device's HMAC salt.
struct Server {
    /// Per container: `transit`, `transit-<team>`.
    mounts: Vec<String>,
    salt: [u8; 16],
}

/// What a call asks.
struct Call {
    operation: &'static str,
    mount_type: &'static str,
    path: String,
    /// The request's `data`, written (JSON), if any.
    data: Option<String>,
    /// The response's `data`, written, if any.
    response: Option<String>,
    /// A login: the auth method.
    login: Option<&'static str>,
    millis: (u64, u64),
}

/// `hmac-sha256:<64 hex>` of something random.
fn h(rng: &mut Rng) -> String {
    format!("hmac-sha256:{}", rng.hex(64))
}

/// An object written by `f`.
fn obj(f: impl FnOnce(&mut Obj)) -> String {
    let mut s = String::with_capacity(200);
    let mut o = Obj::open(&mut s);
    f(&mut o);
    o.close();
    s
}

impl Server {
    fn new(rng: &mut Rng, t: &Tenant) -> Server {
        let mounts = t
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| match i {
                0 => "transit".to_string(),
                _ => format!("transit-{}", c.team),
            })
            .collect();
        let mut salt = [0u8; 16];
        salt[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        salt[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        Server { mounts, salt }
    }

    /// The HMAC the device writes for a principal's token of the day (and its accessor).
    fn token(&self, oid: &str, day: i64, what: &str) -> String {
        let mut d = Sha256::new();
        d.update(self.salt);
        d.update(oid.as_bytes());
        d.update(day.to_le_bytes());
        d.update(what.as_bytes());
        let mut s = String::with_capacity(76);
        s.push_str("hmac-sha256:");
        for b in d.finalize() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    fn call(&self, t: &Tenant, a: &Act, rng: &mut Rng) -> Call {
        let mount = &self.mounts[a.container];
        let transit = |operation, path: String, data, response, millis| Call {
            operation,
            mount_type: "transit",
            path,
            data,
            response,
            login: None,
            millis,
        };
        let team = t.containers[a.container].team;
        match a.what {
            What::Use(k, op) => {
                let key = &t.keys[k];
                let v = key.version_at(a.time) + 1;
                let (action, data, response) = match op {
                    UseOp::Encrypt | UseOp::Wrap => (
                        "encrypt",
                        obj(|o| {
                            o.str("plaintext", &h(rng));
                        }),
                        obj(|o| {
                            o.str("ciphertext", &h(rng)).raw("key_version", v);
                        }),
                    ),
                    UseOp::Decrypt | UseOp::Unwrap => (
                        "decrypt",
                        obj(|o| {
                            o.str("ciphertext", &h(rng));
                        }),
                        obj(|o| {
                            o.str("plaintext", &h(rng));
                        }),
                    ),
                    UseOp::Sign | UseOp::Mac => (
                        "sign",
                        obj(|o| {
                            o.str("input", &h(rng));
                        }),
                        obj(|o| {
                            o.str("signature", &h(rng)).raw("key_version", v);
                        }),
                    ),
                    UseOp::Verify => (
                        "verify",
                        obj(|o| {
                            o.str("input", &h(rng)).str("signature", &h(rng));
                        }),
                        obj(|o| {
                            o.raw("valid", true);
                        }),
                    ),
                    UseOp::GetPublicKey => return self.read_key(t, a, k, rng),
                };
                let path = format!("{mount}/{action}/{}", key.name);
                transit("update", path, Some(data), Some(response), (1, 8))
            }
            What::GetKey(k) => self.read_key(t, a, k, rng),
            What::ListKeys => {
                let names: Vec<String> = t.containers[a.container]
                    .keys
                    .iter()
                    .filter(|&&k| t.keys[k].live(a.time))
                    .map(|_| h(rng))
                    .collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let response = obj(|o| {
                    o.strs("keys", &names);
                });
                transit(
                    "list",
                    format!("{mount}/keys/"),
                    None,
                    Some(response),
                    (1, 5),
                )
            }
            What::CreateKey(k) => {
                let data = obj(|o| {
                    o.str("type", &h(rng));
                });
                let path = format!("{mount}/keys/{}", t.keys[k].name);
                transit("update", path, Some(data), None, (2, 20))
            }
            What::RotateKey(k) => {
                let path = format!("{mount}/keys/{}/rotate", t.keys[k].name);
                transit("update", path, None, None, (2, 20))
            }
            What::DeleteKey(k) | What::PurgeKey(k) => {
                let path = format!("{mount}/keys/{}", t.keys[k].name);
                transit("delete", path, None, None, (2, 10))
            }
            What::CreateContainer => {
                transit("read", format!("{mount}/config/keys"), None, None, (1, 4))
            }
            What::Secret { write } => {
                let owner = match a.who {
                    Who::App(i) => t.apps[i].name.as_str(),
                    _ => team,
                };
                let path = format!(
                    "secret/data/{owner}/{}",
                    SECRETS[a.pick as usize % SECRETS.len()]
                );
                let version = 1 + a.pick % 7;
                let (operation, data, response) = if write {
                    (
                        "update",
                        Some(obj(|o| {
                            o.obj("data", |o| {
                                o.str("value", &h(rng));
                            })
                            .obj("options", |_| {});
                        })),
                        obj(|o| {
                            o.str("created_time", &h(rng))
                                .str("deletion_time", &h(rng))
                                .raw("destroyed", false)
                                .raw("version", version + 1);
                        }),
                    )
                } else {
                    (
                        "read",
                        None,
                        obj(|o| {
                            o.obj("data", |o| {
                                o.str("value", &h(rng));
                            })
                            .obj("metadata", |o| {
                                o.str("created_time", &h(rng)).raw("version", version);
                            });
                        }),
                    )
                };
                Call {
                    operation,
                    mount_type: "kv",
                    path,
                    data,
                    response: Some(response),
                    login: None,
                    millis: (1, 5),
                }
            }
            What::Admin => {
                let system = |operation, path, data, response| Call {
                    operation,
                    mount_type: "system",
                    path,
                    data,
                    response,
                    login: None,
                    millis: (1, 10),
                };
                match a.pick % 100 {
                    0..=44 => {
                        let policy = t
                            .apps
                            .iter()
                            .filter(|p| p.container == a.container)
                            .map(|p| p.name.as_str())
                            .nth(a.pick as usize % 2)
                            .unwrap_or("admin");
                        let data = obj(|o| {
                            o.str("policy", &h(rng));
                        });
                        system(
                            "update",
                            format!("sys/policies/acl/{policy}"),
                            Some(data),
                            None,
                        )
                    }
                    45..=69 => {
                        let response = obj(|o| {
                            o.obj("file/", |o| {
                                o.str("type", &h(rng))
                                    .str("description", &h(rng))
                                    .str("path", &h(rng));
                            });
                        });
                        system("read", "sys/audit".into(), None, Some(response))
                    }
                    _ => self.call(
                        t,
                        &Act {
                            what: What::Secret { write: true },
                            ..*a
                        },
                        rng,
                    ),
                }
            }
            What::Login => {
                let (method, path, data) = match a.who {
                    Who::App(_) => (
                        "approle",
                        "auth/approle/login".to_string(),
                        obj(|o| {
                            o.str("role_id", &h(rng)).str("secret_id", &h(rng));
                        }),
                    ),
                    Who::Stranger(_) if a.pick.is_multiple_of(4) => (
                        "approle",
                        "auth/approle/login".to_string(),
                        obj(|o| {
                            o.str("role_id", &h(rng)).str("secret_id", &h(rng));
                        }),
                    ),
                    Who::Human(i) => (
                        "userpass",
                        format!("auth/userpass/login/{}", t.humans[i].name),
                        obj(|o| {
                            o.str("password", &h(rng));
                        }),
                    ),
                    Who::Stranger(_) => {
                        let guess = match a.pick as usize % (GUESSES.len() + 1) {
                            i if i < GUESSES.len() => GUESSES[i],
                            _ => t.humans[a.pick as usize % t.humans.len()].name.as_str(),
                        };
                        (
                            "userpass",
                            format!("auth/userpass/login/{guess}"),
                            obj(|o| {
                                o.str("password", &h(rng));
                            }),
                        )
                    }
                };
                Call {
                    operation: "update",
                    mount_type: method,
                    path,
                    data: Some(data),
                    response: None,
                    login: Some(method),
                    millis: if method == "userpass" {
                        (40, 160)
                    } else {
                        (3, 20)
                    },
                }
            }
        }
    }

    fn read_key(&self, t: &Tenant, a: &Act, k: usize, rng: &mut Rng) -> Call {
        let key = &t.keys[k];
        let response = obj(|o| {
            o.str("name", &h(rng))
                .str("type", &h(rng))
                .raw("latest_version", key.version_at(a.time) + 1);
        });
        Call {
            operation: "read",
            mount_type: "transit",
            path: format!("{}/keys/{}", self.mounts[key.container], key.name),
            data: None,
            response: Some(response),
            login: None,
            millis: (1, 4),
        }
    }

    /// The request and response lines of an act, with their times.
    fn lines(&self, t: &Tenant, a: &Act, rng: &mut Rng, out: &mut Vec<(i64, String)>) {
        let call = self.call(t, a, rng);
        let id = rng.uuid();
        let (lo, hi) = call.millis;
        let took =
            (lo as i64 * MILLI + rng.below(((hi - lo) as i64 * MILLI) as u64) as i64).max(200_000);
        let principal = match a.who {
            Who::App(i) => Some((&t.apps[i], "approle", "role_name")),
            Who::Human(i) => Some((&t.humans[i], "userpass", "username")),
            Who::Stranger(_) => None,
        };
        // The token of the day (a login's: the one it is given).
        let day = a.time.div_euclid(DAY);
        let identity = principal.map(|(p, method, meta)| {
            let policies: Vec<&str> = if method == "userpass" {
                vec!["default", "admin"]
            } else {
                vec!["default", p.name.as_str()]
            };
            (
                p,
                format!("{method}-{}", p.name),
                policies,
                meta,
                self.token(&p.oid, day, "token"),
                self.token(&p.oid, day, "accessor"),
                if method == "userpass" { 28_800 } else { 3600 },
            )
        });
        let logged_in = call.login.is_some() && a.outcome == Outcome::Ok;
        let write_auth = |o: &mut Obj, inner: bool| {
            let Some((p, display, policies, meta, token, accessor, ttl)) = &identity else {
                return;
            };
            o.str("client_token", token)
                .str("accessor", accessor)
                .str("display_name", display)
                .strs("policies", policies)
                .strs("token_policies", policies)
                .obj("metadata", |o| {
                    o.str(meta, &p.name);
                })
                .str("entity_id", &p.oid)
                .str("token_type", "service");
            if !inner {
                o.raw("token_ttl", ttl);
            }
        };
        let ip = match a.who {
            Who::App(i) => &t.apps[i].ips[a.pick as usize % t.apps[i].ips.len()],
            Who::Human(i) => &t.humans[i].ips[a.pick as usize % t.humans[i].ips.len()],
            Who::Stranger(i) => &t.strangers[i],
        };
        let error = match (a.outcome, call.login) {
            (Outcome::Ok, _) => None,
            (Outcome::Denied, _) => Some(DENIED),
            (Outcome::BadCredentials, Some("userpass")) => Some("invalid credentials"),
            (Outcome::BadCredentials, _) => Some("permission denied"),
            (Outcome::NotFound, _) => Some("invalid request"),
        };
        let error_hmac = error.map(|_| h(rng));
        // Denials are decided before the request is logged; other failures after.
        let request_error = if a.outcome == Outcome::Denied {
            error
        } else {
            None
        };
        let line = |response: bool| -> String {
            let time = utc(a.time + if response { took } else { 0 }, 9);
            let mut s = String::with_capacity(1200);
            let mut o = Obj::open(&mut s);
            o.str("time", &time)
                .str("type", if response { "response" } else { "request" });
            o.obj("auth", |o| {
                if call.login.is_some() && !(response && logged_in) {
                    o.str("token_type", "default");
                } else {
                    write_auth(o, false);
                }
            });
            o.obj("request", |o| {
                o.str("id", &id)
                    .str("operation", call.operation)
                    .str("mount_type", call.mount_type);
                if call.login.is_none() {
                    if let Some((_, _, _, _, token, accessor, _)) = &identity {
                        o.str("client_token", token)
                            .str("client_token_accessor", accessor);
                    }
                }
                o.obj("namespace", |o| {
                    o.str("id", "root");
                })
                .str("path", &call.path);
                if let Some(data) = &call.data {
                    o.raw("data", data);
                }
                o.str("remote_address", ip);
            });
            if response {
                o.obj("response", |o| {
                    o.str("mount_type", call.mount_type);
                    if logged_in {
                        o.obj("auth", |o| write_auth(o, true));
                    } else if let Some(e) = &error_hmac {
                        o.obj("data", |o| {
                            o.str("error", e);
                        });
                    } else if let Some(data) = &call.response {
                        o.raw("data", data);
                    }
                });
            }
            if let Some(e) = if response { error } else { request_error } {
                o.str("error", e);
            }
            o.close();
            s
        };
        out.push((a.time, line(false)));
        // Now and then Vault restarts before it answers.
        if !rng.chance(0.001) {
            out.push((a.time + took, line(true)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::cloud::snapshot;
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::Read;

    fn options(dir: &Path) -> VaultOptions {
        VaultOptions {
            out: dir.to_path_buf(),
            events: 6000,
            tenants: 2,
            start: "2025-01".into(),
            months: 3,
            seed: 9,
        }
    }

    #[test]
    fn generate_vault_writes_request_and_response_lines_per_tenant_and_month() {
        let dir = tempfile::tempdir().unwrap();
        generate(&options(dir.path())).unwrap();
        let files = snapshot(dir.path());
        let names: BTreeSet<&str> = files.keys().map(|k| k.as_str()).collect();
        for tenant in ["contoso", "fabrikam"] {
            for f in [
                "vault_audit-2025-01.log.gz",
                "vault_audit-2025-02.log.gz",
                "vault_audit.log",
            ] {
                assert!(
                    names.contains(format!("{tenant}/{f}").as_str()),
                    "{names:?}"
                );
            }
        }
        assert_eq!(names.len(), 6);
        let (mut requests, mut responses) = (BTreeMap::new(), 0);
        let (mut late, mut denied, mut failed_logins) = (0, 0, 0);
        let mut paths = BTreeSet::new();
        for (rel, bytes) in &files {
            let text = if rel.ends_with(".gz") {
                let mut s = String::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut s)
                    .unwrap();
                s
            } else {
                String::from_utf8(bytes.clone()).unwrap()
            };
            let month = match rel.rsplit_once("vault_audit-") {
                Some((_, m)) => m[..7].to_string(),
                None => "2025-03".to_string(),
            };
            let mut last = String::new();
            for (n, line) in text.lines().enumerate() {
                let v: Value = serde_json::from_str(line).unwrap();
                let time = v["time"].as_str().unwrap().to_string();
                assert_eq!(time.len(), 30, "{time}");
                assert_eq!(&time[..7], month, "{rel}");
                assert!(time >= last, "{rel}: out of order");
                last = time;
                let r = &v["request"];
                let id = r["id"].as_str().unwrap().to_string();
                let path = r["path"].as_str().unwrap();
                assert_eq!(r["namespace"]["id"], "root");
                assert!(r["operation"].is_string() && r["mount_type"].is_string());
                assert!(r["remote_address"].is_string());
                let login = path.starts_with("auth/");
                paths.insert(path.split('/').take(2).collect::<Vec<_>>().join("/"));
                match v["type"].as_str().unwrap() {
                    "request" => {
                        if login {
                            assert!(v["auth"].get("entity_id").is_none());
                        } else {
                            assert!(v["auth"]["client_token"]
                                .as_str()
                                .unwrap()
                                .starts_with("hmac-sha256:"));
                            assert!(v["auth"]["entity_id"].is_string());
                        }
                        assert!(requests
                            .insert((rel.split('/').next().unwrap().to_string(), id), n)
                            .is_none());
                    }
                    "response" => {
                        responses += 1;
                        let tenant = rel.split('/').next().unwrap().to_string();
                        if let Some(&at) = requests.get(&(tenant, id)) {
                            late += (n > at + 1) as usize;
                        }
                        assert!(v["response"]["mount_type"].is_string());
                        if let Some(e) = v["error"].as_str() {
                            assert!(v["response"]["data"]["error"]
                                .as_str()
                                .unwrap()
                                .starts_with("hmac-sha256:"));
                            denied += e.contains("permission denied") as usize;
                            failed_logins += (login
                                && (e == "invalid credentials" || e == "permission denied"))
                                as usize;
                        }
                    }
                    t => panic!("type {t}"),
                }
            }
        }
        assert_eq!(requests.len(), 6000);
        // About one request in a thousand has no response.
        assert!(requests.len() - responses <= 20, "{responses}");
        assert!(late > 100, "{late} responses not right after their request");
        assert!(denied > 5 && failed_logins > 2, "{denied} {failed_logins}");
        for p in [
            "transit/encrypt",
            "transit/decrypt",
            "transit/sign",
            "transit/keys",
            "auth/approle",
            "auth/userpass",
            "secret/data",
            "sys/policies",
            "sys/audit",
        ] {
            assert!(paths.contains(p), "no {p}: {paths:?}");
        }
        let again = tempfile::tempdir().unwrap();
        generate(&options(again.path())).unwrap();
        assert!(files == snapshot(again.path()));
    }
}
