//! Writes realistic Azure Key Vault and Managed HSM audit logs (`generate --vendor
//! azure-keyvault` and `azure-mhsm`) as a diagnostic setting archives them in a storage
//! account: one blob per resource and hour,
//! `insights-logs-auditevent/resourceId=/SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/MICROSOFT.KEYVAULT/<VAULTS|MANAGEDHSMS>/<NAME>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json`,
//! by the hour the event was received: about one event in fifty comes in the next hour's
//! blob. A blob is JSON Lines (the form since November 2018) or, with
//! [`AzureForm::Records`], the `{"records":[...]}` envelope before it.
//!
//! One subscription per tenant, holding a few vaults (or one or two Managed HSM pools) in
//! resource groups of their own; the traffic is [`super::cloud`]'s. Key Vault records
//! carry `identity` as an object, `durationMs` as a string and the request in
//! `properties`; Managed HSM records carry `identity` as a JSON-encoded string,
//! `durationMs` as a number, the request at the top level and no `resultSignature`.
//! Deterministic for a seed.

use std::path::{Path, PathBuf};

use super::cloud::{utc, ymdh, Act, Obj, Outcome, Plan, Profile, Tenant, UseOp, What, Who};
use super::Rng;
use crate::{Error, Result};

/// How each blob holds its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AzureForm {
    /// One JSON object per line, the blob format since 2018-11-01.
    Lines,
    /// `{"records":[...]}`, the blob format before it (and Event Hubs deliveries).
    Records,
}

/// Which Key Vault resource logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureService {
    /// Vaults (`MICROSOFT.KEYVAULT/VAULTS`).
    KeyVault,
    /// Managed HSM pools (`MICROSOFT.KEYVAULT/MANAGEDHSMS`).
    ManagedHsm,
}

#[derive(Debug, Clone)]
pub struct AzureOptions {
    pub out: PathBuf,
    /// Events over all subscriptions and months (the late ones are not repeated).
    pub events: u64,
    pub subscriptions: u32,
    /// First month, `YYYY-MM`.
    pub start: String,
    pub months: u32,
    pub seed: u64,
    pub service: AzureService,
    pub form: AzureForm,
}

/// Writes the blobs; returns their paths.
pub fn generate(opts: &AzureOptions) -> Result<Vec<PathBuf>> {
    let profile = Profile {
        containers: match opts.service {
            AzureService::KeyVault => (2, 4),
            AzureService::ManagedHsm => (1, 2),
        },
        purge: true,
        logins: false,
        container_created: false,
    };
    let plan = Plan::new(
        opts.events,
        opts.subscriptions,
        (&opts.start, opts.months),
        opts.seed,
        profile,
    )?;
    let root = opts.out.join("insights-logs-auditevent");
    let hours = plan.period.hours();
    let mut paths = Vec::new();
    for (ti, t) in plan.tenants.iter().enumerate() {
        let sub = Subscription::new(&mut plan.rng(ti, 0, 0x5AB), t, opts.service);
        // Records received in the next hour: (resource, record).
        let mut late: Vec<(usize, String)> = Vec::new();
        for h in 0..=hours {
            let mut blobs: Vec<Vec<String>> = vec![Vec::new(); sub.resources.len()];
            for (r, line) in late.drain(..) {
                blobs[r].push(line);
            }
            if h < hours {
                let mut rng = plan.rng(ti, h, 0xA2);
                for a in plan.acts(ti, h) {
                    let line = sub.record(t, &a, &mut rng);
                    if rng.chance(0.02) {
                        late.push((a.container, line));
                    } else {
                        blobs[a.container].push(line);
                    }
                }
            }
            for (r, lines) in blobs.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
                let at = plan.period.hour_start(h);
                paths.push(write_blob(&root, &sub.resources[r], at, lines, opts.form)?);
            }
        }
    }
    Ok(paths)
}

fn write_blob(
    root: &Path,
    r: &Resource,
    hour: i64,
    lines: &[String],
    form: AzureForm,
) -> Result<PathBuf> {
    let (y, m, d, h) = ymdh(hour);
    let dir = root.join(format!(
        "resourceId={}/y={y:04}/m={m:02}/d={d:02}/h={h:02}/m=00",
        r.id
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join("PT1H.json");
    let size = lines.iter().map(|l| l.len() + 2).sum::<usize>() + 16;
    let mut body = String::with_capacity(size);
    match form {
        AzureForm::Lines => {
            for l in lines {
                body.push_str(l);
                body.push('\n');
            }
        }
        AzureForm::Records => {
            body.push_str("{\"records\":[\n");
            body.push_str(&lines.join(",\n"));
            body.push_str("\n]}\n");
        }
    }
    std::fs::write(&path, body).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Well-known application ids of the tools people use (Azure CLI, the portal,
/// PowerShell), and their clients' `clientInfo`.
const TOOLS: [(&str, &str); 4] = [
    (
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "AZURECLI/2.56.0 (DEB) azsdk-python-keyvault-keys/4.8.0 Python/3.11.7 (Linux-6.5.0-1015-azure-x86_64-with-glibc2.35)",
    ),
    (
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0",
    ),
    (
        "1950a258-227b-4e31-a9cf-717495945fc2",
        "AzurePowershell/v11.2.0 PSVersion/7.4.1",
    ),
    (
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "AZURECLI/2.57.0 (MSI) azsdk-python-keyvault-keys/4.8.0 Python/3.11.7 (Windows-10-10.0.22631-SP0)",
    ),
];
const SDKS: [&str; 4] = [
    "azsdk-net-Security.KeyVault.Keys/4.5.0 (.NET 8.0.1; Microsoft Windows 10.0.20348)",
    "azsdk-java-azure-security-keyvault-keys/4.7.3 (17.0.9; Linux; 5.15.0-1053-azure)",
    "azsdk-python-keyvault-keys/4.8.0 Python/3.11.6 (Linux-5.15.0-1053-azure-x86_64-with-glibc2.36)",
    "azsdk-go-azkeys/v1.0.1 (go1.21.5; linux)",
];
const STRANGE_CLIENTS: [&str; 3] = ["python-requests/2.31.0", "curl/8.4.0", "Go-http-client/1.1"];
const SECRETS: [&str; 3] = ["db-password", "api-token", "storage-connection"];
const REGIONS: [(&str, &str); 4] = [
    ("westeurope", "weu"),
    ("northeurope", "neu"),
    ("eastus", "eus"),
    ("westus2", "wus2"),
];
const API: &str = "api-version=7.4";

/// A vault or a Managed HSM pool.
struct Resource {
    /// `kv-payments-x7q2`.
    name: String,
    /// `rg-payments`.
    group: String,
    /// `/SUBSCRIPTIONS/…/VAULTS/KV-PAYMENTS-X7Q2`, in capitals as Azure Monitor writes it.
    id: String,
    /// `https://kv-payments-x7q2.vault.azure.net`.
    host: String,
    /// The current version of each of [`SECRETS`].
    secrets: Vec<String>,
}

/// A tenant's subscription and resources.
struct Subscription {
    service: AzureService,
    /// In capitals.
    id: String,
    /// The Entra tenant.
    tenant_id: String,
    region: (&'static str, &'static str),
    resources: Vec<Resource>,
}

/// What a call was, as Key Vault names it.
struct Call {
    op: &'static str,
    /// `properties.id` of a Key Vault record: the object called.
    id: Option<String>,
    uri: String,
    version: &'static str,
    /// The status when it succeeds (202 for long-running Managed HSM calls).
    ok: u16,
    /// Typical duration, milliseconds.
    millis: (u64, u64),
}

impl Subscription {
    fn new(rng: &mut Rng, t: &Tenant, service: AzureService) -> Subscription {
        let id = rng.uuid().to_uppercase();
        let resources = t
            .containers
            .iter()
            .map(|c| {
                let suffix: String = (0..4)
                    .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.below(36) as usize] as char)
                    .collect();
                let group = format!("rg-{}", c.team);
                let (name, kind, host) = match service {
                    AzureService::KeyVault => {
                        let name = format!("kv-{}-{suffix}", c.team);
                        let host = format!("https://{name}.vault.azure.net");
                        (name, "VAULTS", host)
                    }
                    AzureService::ManagedHsm => {
                        let name = format!("mhsm-{}-{suffix}", c.team);
                        let host = format!("https://{name}.managedhsm.azure.net");
                        (name, "MANAGEDHSMS", host)
                    }
                };
                Resource {
                    id: format!(
                        "/SUBSCRIPTIONS/{id}/RESOURCEGROUPS/{}/PROVIDERS/MICROSOFT.KEYVAULT/{kind}/{}",
                        group.to_uppercase(),
                        name.to_uppercase()
                    ),
                    name,
                    group,
                    host,
                    secrets: SECRETS.iter().map(|_| rng.hex(32)).collect(),
                }
            })
            .collect();
        Subscription {
            service,
            id,
            tenant_id: rng.uuid(),
            region: REGIONS[rng.below(REGIONS.len() as u64) as usize],
            resources,
        }
    }

    /// The call an act makes.
    fn call(&self, t: &Tenant, a: &Act, rng: &mut Rng) -> Call {
        let r = &self.resources[a.container];
        let host = &r.host;
        let mhsm = self.service == AzureService::ManagedHsm;
        let key = |k: usize| {
            let key = &t.keys[k];
            format!(
                "{host}/keys/{}/{}",
                key.name,
                key.versions[key.version_at(a.time)]
            )
        };
        let call = |op, id: Option<String>, uri: String, millis| Call {
            op,
            id,
            uri,
            version: "7.4",
            ok: 200,
            millis,
        };
        match a.what {
            What::Use(k, op) => {
                let (name, action) = match op {
                    UseOp::Encrypt => ("KeyEncrypt", "/encrypt"),
                    UseOp::Decrypt => ("KeyDecrypt", "/decrypt"),
                    UseOp::Sign | UseOp::Mac => ("KeySign", "/sign"),
                    UseOp::Verify => ("KeyVerify", "/verify"),
                    UseOp::Wrap => ("KeyWrap", "/wrapkey"),
                    UseOp::Unwrap => ("KeyUnwrap", "/unwrapkey"),
                    UseOp::GetPublicKey => ("KeyGet", ""),
                };
                let id = key(k);
                let uri = format!("{id}{action}?{API}");
                call(name, Some(id), uri, (4, 40))
            }
            What::GetKey(k) => {
                let uri = format!("{host}/keys/{}/?{API}", t.keys[k].name);
                call("KeyGet", Some(key(k)), uri, (2, 15))
            }
            What::ListKeys => call(
                "KeyList",
                Some(format!("{host}/keys")),
                format!("{host}/keys?{API}"),
                (3, 25),
            ),
            What::CreateKey(k) => {
                let name = &t.keys[k].name;
                let (op, uri) = if t.keys[k].imported {
                    ("KeyImport", format!("{host}/keys/{name}?{API}"))
                } else {
                    ("KeyCreate", format!("{host}/keys/{name}/create?{API}"))
                };
                call(op, Some(key(k)), uri, (30, 400))
            }
            What::RotateKey(k) => {
                let uri = format!("{host}/keys/{}/rotate?{API}", t.keys[k].name);
                call("KeyRotate", Some(key(k)), uri, (30, 400))
            }
            What::DeleteKey(k) => {
                let id = format!("{host}/keys/{}", t.keys[k].name);
                let uri = format!("{id}?{API}");
                call("KeyDelete", Some(id), uri, (10, 80))
            }
            What::PurgeKey(k) => {
                let id = format!("{host}/deletedkeys/{}", t.keys[k].name);
                let uri = format!("{id}?{API}");
                call("KeyPurge", Some(id), uri, (10, 80))
            }
            // Managed HSM keeps no secrets: an application releases a key (to a
            // confidential VM), a person updates a key's attributes.
            What::Secret { write } if mhsm => match t.live_key(a.container, a.time, a.pick) {
                Some(k) if !write => {
                    let id = key(k);
                    let uri = format!("{id}/release?{API}");
                    call("KeyRelease", Some(id), uri, (20, 120))
                }
                Some(k) => {
                    let id = key(k);
                    let uri = format!("{id}?{API}");
                    call("KeyUpdate", Some(id), uri, (5, 40))
                }
                None => call(
                    "KeyList",
                    Some(format!("{host}/keys")),
                    format!("{host}/keys?{API}"),
                    (3, 25),
                ),
            },
            What::Secret { write } => {
                let s = a.pick as usize % SECRETS.len();
                let name = SECRETS[s];
                if write {
                    let id = format!("{host}/secrets/{name}/{}", rng.hex(32));
                    let uri = format!("{host}/secrets/{name}?{API}");
                    call("SecretSet", Some(id), uri, (10, 60))
                } else {
                    let id = format!("{host}/secrets/{name}/{}", r.secrets[s]);
                    let uri = format!("{host}/secrets/{name}/?{API}");
                    call("SecretGet", Some(id), uri, (2, 15))
                }
            }
            What::Admin if mhsm => {
                let role = |op| {
                    let id = format!(
                        "{host}/providers/Microsoft.Authorization/roleAssignments/{}",
                        uuid_of(a.pick)
                    );
                    let uri = format!("{id}?{API}");
                    call(op, Some(id), uri, (5, 40))
                };
                let long = |op, path: &str, millis| Call {
                    ok: 202,
                    ..call(op, None, format!("{host}/{path}?{API}"), millis)
                };
                match a.pick % 100 {
                    0..=29 => role("RoleAssignmentGet"),
                    30..=44 => role("RoleAssignmentCreate"),
                    45..=52 => role("RoleAssignmentDelete"),
                    53..=77 => long("BackupCreate", "backup", (300, 900)),
                    78..=79 => long("RestoreStart", "restore", (300, 900)),
                    80..=82 => long("SecurityDomainDownload", "securitydomain/download", (200, 700)),
                    83..=84 => long("SecurityDomainUpload", "securitydomain/upload", (200, 700)),
                    _ => call(
                        "KeyList",
                        Some(format!("{host}/keys")),
                        format!("{host}/keys?{API}"),
                        (3, 25),
                    ),
                }
            }
            What::Admin => match a.pick % 100 {
                0..=34 | 100.. => Call {
                    version: "2023-07-01",
                    ..call(
                        "VaultGet",
                        Some(format!("{host}/")),
                        format!(
                            "https://control-prod-{}.vaultcore.azure.net/subscriptions/{}/resourcegroups/{}/providers/Microsoft.KeyVault/vaults/{}?api-version=2023-07-01",
                            self.region.1,
                            self.id.to_lowercase(),
                            r.group,
                            r.name
                        ),
                        (20, 120),
                    )
                },
                35..=59 => call(
                    "SecretList",
                    Some(format!("{host}/secrets")),
                    format!("{host}/secrets?{API}"),
                    (3, 25),
                ),
                60..=84 => match t.live_key(a.container, a.time, a.pick) {
                    Some(k) => {
                        let id = key(k);
                        let uri = format!("{id}?{API}");
                        call("KeyUpdate", Some(id), uri, (5, 40))
                    }
                    None => call(
                        "KeyList",
                        Some(format!("{host}/keys")),
                        format!("{host}/keys?{API}"),
                        (3, 25),
                    ),
                },
                _ => call(
                    "KeyList",
                    Some(format!("{host}/keys")),
                    format!("{host}/keys?{API}"),
                    (3, 25),
                ),
            },
            What::CreateContainer => call("VaultGet", Some(format!("{host}/")), format!("{host}/?{API}"), (5, 30)),
            What::Login => {
                let path = if mhsm || a.pick.is_multiple_of(2) { "keys" } else { "secrets" };
                call("Authentication", None, format!("{host}/{path}?{API}"), (1, 6))
            }
        }
    }

    /// One record of an act.
    fn record(&self, t: &Tenant, a: &Act, rng: &mut Rng) -> String {
        let call = self.call(t, a, rng);
        let status = match a.outcome {
            Outcome::Ok => call.ok,
            Outcome::Denied => 403,
            Outcome::NotFound => 404,
            Outcome::BadCredentials => 401,
        };
        let (lo, hi) = call.millis;
        let millis = lo + rng.below(hi - lo + 1);
        let (claims, ip, client) = match a.who {
            Who::App(i) => {
                let p = &t.apps[i];
                let ip = &p.ips[a.pick as usize % p.ips.len()];
                (
                    Some((p.oid.as_str(), p.appid.as_str(), None)),
                    ip.as_str(),
                    SDKS[p.agent],
                )
            }
            Who::Human(i) => {
                let p = &t.humans[i];
                let (appid, client) = TOOLS[p.agent];
                let upn = format!("{}@{}", p.name, t.domain);
                let ip = &p.ips[a.pick as usize % p.ips.len()];
                (
                    Some((p.oid.as_str(), appid, Some(upn))),
                    ip.as_str(),
                    client,
                )
            }
            Who::Stranger(i) => (
                None,
                t.strangers[i].as_str(),
                STRANGE_CLIENTS[a.pick as usize % STRANGE_CLIENTS.len()],
            ),
        };
        let r = &self.resources[a.container];
        let time_digits = if self.service == AzureService::KeyVault {
            7
        } else {
            3
        };
        let time = utc(a.time, time_digits);
        let correlation = match (self.service, a.who) {
            (AzureService::ManagedHsm, _) | (_, Who::Human(_)) => rng.uuid(),
            (_, Who::App(_)) if rng.chance(0.35) => rng.uuid(),
            _ => String::new(),
        };
        let mut out = String::with_capacity(900);
        let mut o = Obj::open(&mut out);
        if self.service == AzureService::ManagedHsm {
            o.str("TenantId", &self.tenant_id);
        }
        o.str("time", &time)
            .str("resourceId", &r.id)
            .str("operationName", call.op)
            .str("operationVersion", call.version)
            .str("category", "AuditEvent")
            .str(
                "resultType",
                if status < 400 { "Success" } else { "Failure" },
            );
        match self.service {
            AzureService::KeyVault => {
                let (signature, description) =
                    self.outcome_text(t, a, status, claims.as_ref().map(|c| (c.0, c.1)));
                o.str("resultSignature", signature)
                    .str("resultDescription", &description)
                    .str("durationMs", &millis.to_string())
                    .str("callerIpAddress", ip)
                    .str("correlationId", &correlation);
                match claims {
                    Some((oid, appid, upn)) => {
                        o.obj("identity", |o| {
                            o.obj("claim", |o| {
                                o.str(OID_CLAIM, oid);
                                if let Some(upn) = &upn {
                                    o.str(UPN_CLAIM, upn);
                                }
                                o.str("appid", appid);
                            });
                        });
                    }
                    None if a.pick.is_multiple_of(2) => {
                        o.obj("identity", |_| {});
                    }
                    None => {}
                }
                o.obj("properties", |o| {
                    if let Some(id) = &call.id {
                        o.str("id", id);
                    }
                    o.str("clientInfo", client)
                        .str("requestUri", &call.uri)
                        .raw("httpStatusCode", status);
                });
            }
            AzureService::ManagedHsm => {
                o.obj("properties", |o| {
                    o.str("PoolType", "M-HSM")
                        .str("sku_Family", "B")
                        .str("sku_Name", "Standard_B1");
                })
                .raw("durationMs", millis)
                .str("callerIpAddress", ip);
                match claims {
                    Some((oid, appid, upn)) => {
                        let mut inner = String::with_capacity(300);
                        let mut i = Obj::open(&mut inner);
                        i.obj("claim", |o| {
                            o.str("appid", appid)
                                .obj("http_schemas_microsoft_com_identity", |o| {
                                    o.obj("claims", |o| {
                                        o.str("objectidentifier", oid);
                                    });
                                });
                            if let Some(upn) = &upn {
                                o.obj("http_schemas_xmlsoap_org_ws_2005_05_identity", |o| {
                                    o.obj("claims", |o| {
                                        o.str("upn", upn);
                                    });
                                });
                            }
                        });
                        i.close();
                        o.str("identity", &inner);
                    }
                    None if a.pick.is_multiple_of(2) => {
                        o.str("identity", "{}");
                    }
                    None => {}
                }
                o.str("clientInfo", client)
                    .str("correlationId", &correlation)
                    .str("subnetId", "(unknown)")
                    .raw("httpStatusCode", status)
                    .str("PoolName", &r.name)
                    .str("requestUri", &call.uri)
                    .str("resourceGroup", &r.group)
                    .str("resourceProvider", "MICROSOFT.KEYVAULT")
                    .str("resource", &r.name.to_uppercase())
                    .str("resourceType", "managedHSMs");
            }
        }
        o.close();
        out
    }

    /// `resultSignature` and `resultDescription` of a Key Vault record.
    fn outcome_text(
        &self,
        t: &Tenant,
        a: &Act,
        status: u16,
        caller: Option<(&str, &str)>,
    ) -> (&'static str, String) {
        let r = &self.resources[a.container];
        match status {
            403 => {
                let (oid, appid) = caller.unwrap_or(("", ""));
                let text = format!(
                    "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={appid};oid={oid};iss=https://sts.windows.net/{}/\r\nVault: {};location={}\r\n",
                    self.tenant_id, r.name, self.region.0
                );
                ("Forbidden", text)
            }
            404 => {
                let name = match a.what {
                    What::Use(k, _) | What::GetKey(k) => t.keys[k].name.as_str(),
                    _ => "",
                };
                let text = format!(
                    "A key with (name/id) {name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
                );
                ("NotFound", text)
            }
            401 => {
                let text = if a.pick.is_multiple_of(3) {
                    "AKV10000: Request is missing a Bearer or PoP token.".to_string()
                } else {
                    format!(
                        "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{}/, found https://sts.windows.net/{}/.",
                        self.tenant_id,
                        uuid_of(a.pick)
                    )
                };
                ("Unauthorized", text)
            }
            202 => ("Accepted", String::new()),
            _ => ("OK", String::new()),
        }
    }
}

const OID_CLAIM: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
const UPN_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn";

/// A uuid drawn from a number (role assignment names, foreign tenants).
fn uuid_of(n: u32) -> String {
    Rng::new(n as u64).uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::cloud::snapshot;
    use serde_json::Value;

    fn options(dir: &Path, service: AzureService, form: AzureForm) -> AzureOptions {
        AzureOptions {
            out: dir.to_path_buf(),
            events: 4000,
            subscriptions: 2,
            start: "2025-01".into(),
            months: 2,
            seed: 11,
            service,
            form,
        }
    }

    /// The blob's resource id and hour (`YYYY-MM-DDTHH`) from its path, checking the layout.
    fn blob_of(rel: &str, kind: &str) -> (String, String) {
        let rest = rel
            .strip_prefix("insights-logs-auditevent/resourceId=")
            .unwrap_or_else(|| panic!("{rel}"));
        let (id, hour) = rest.split_once("/y=").unwrap();
        let parts: Vec<&str> = id.split('/').collect();
        assert_eq!(parts.len(), 9, "{rel}");
        assert_eq!(
            (parts[1], parts[3], parts[5], parts[6], parts[7]),
            (
                "SUBSCRIPTIONS",
                "RESOURCEGROUPS",
                "PROVIDERS",
                "MICROSOFT.KEYVAULT",
                kind
            ),
            "{rel}"
        );
        for p in &parts[2..] {
            assert_eq!(*p, p.to_uppercase(), "{rel}");
        }
        let f: Vec<&str> = hour.split('/').collect();
        assert_eq!(f.len(), 6, "{rel}");
        assert!(
            f[0].len() == 4 && f[1].starts_with("m=") && f[2].starts_with("d="),
            "{rel}"
        );
        assert!(
            f[3].starts_with("h=") && f[4] == "m=00" && f[5] == "PT1H.json",
            "{rel}"
        );
        let hour = format!("{}-{}-{}T{}", f[0], &f[1][2..], &f[2][2..], &f[3][2..]);
        (id.to_string(), hour)
    }

    /// Every record of every blob (the `records` envelope opened), checked against its blob.
    fn records(dir: &Path, kind: &str, form: AzureForm) -> Vec<Value> {
        let mut all = Vec::new();
        let (mut late, mut blobs) = (0, 0);
        for (rel, bytes) in snapshot(dir) {
            let (id, hour) = blob_of(&rel, kind);
            let text = String::from_utf8(bytes).unwrap();
            let recs: Vec<Value> = match form {
                AzureForm::Lines => text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{rel}: {e}: {l}")))
                    .collect(),
                AzureForm::Records => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    v["records"].as_array().unwrap().clone()
                }
            };
            assert!(!recs.is_empty());
            blobs += 1;
            for r in recs {
                assert_eq!(r["resourceId"], id.as_str(), "{rel}");
                let time = r["time"].as_str().unwrap();
                assert!(time[..13] <= *hour, "{rel}: {time}");
                late += (time[..13] < *hour) as usize;
                all.push(r);
            }
        }
        assert!(blobs > 500, "{blobs} blobs");
        // About 2% of the events come in the next hour's blob.
        assert!((20..200).contains(&late), "{late} late of {}", all.len());
        all
    }

    #[test]
    fn generate_azure_keyvault_writes_hourly_blobs_of_audit_events() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), AzureService::KeyVault, AzureForm::Lines);
        generate(&opts).unwrap();
        let recs = records(dir.path(), "VAULTS", AzureForm::Lines);
        assert_eq!(recs.len(), 4000);
        let mut ops = std::collections::BTreeMap::new();
        for r in &recs {
            let op = r["operationName"].as_str().unwrap();
            *ops.entry(op.to_string()).or_insert(0) += 1;
            let time = r["time"].as_str().unwrap();
            assert_eq!(time.len(), 28, "{time}"); // 7 fractional digits
            assert!(time.ends_with('Z'));
            for k in [
                "operationVersion",
                "resultSignature",
                "resultDescription",
                "callerIpAddress",
                "correlationId",
            ] {
                assert!(r[k].is_string(), "{k}: {r}");
            }
            assert_eq!(r["category"], "AuditEvent");
            assert!(r["durationMs"].as_str().unwrap().parse::<u32>().is_ok());
            let p = &r["properties"];
            let status = p["httpStatusCode"].as_u64().unwrap();
            assert!(p["requestUri"].as_str().unwrap().starts_with("https://"));
            assert!(p["clientInfo"].is_string());
            let failed = r["resultType"] == "Failure";
            assert_eq!(failed, status >= 400, "{r}");
            let signature = r["resultSignature"].as_str().unwrap();
            let want = match status {
                200 => "OK",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                s => panic!("status {s}"),
            };
            assert_eq!(signature, want);
            if op == "Authentication" {
                assert!(p.get("id").is_none());
                assert_eq!(status, 401);
                assert!(r
                    .get("identity")
                    .is_none_or(|i| i.as_object().unwrap().is_empty()));
            } else {
                let id = p["id"].as_str().unwrap();
                let vault = r["resourceId"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap();
                assert!(
                    id.starts_with(&format!(
                        "https://{}.vault.azure.net/",
                        vault.to_lowercase()
                    )),
                    "{id}"
                );
                let claim = &r["identity"]["claim"];
                assert!(
                    claim["appid"].is_string() && claim[OID_CLAIM].is_string(),
                    "{r}"
                );
            }
            if op.starts_with("Key") && !["KeyList", "KeyDelete", "KeyPurge"].contains(&op) {
                let version = p["id"].as_str().unwrap().rsplit('/').next().unwrap();
                assert_eq!(version.len(), 32, "{r}");
            }
        }
        for op in [
            "KeyCreate",
            "KeyGet",
            "KeyList",
            "KeySign",
            "KeyVerify",
            "KeyWrap",
            "KeyUnwrap",
            "KeyEncrypt",
            "KeyDecrypt",
            "KeyRotate",
            "KeyDelete",
            "KeyPurge",
            "SecretGet",
            "VaultGet",
            "Authentication",
        ] {
            assert!(ops.contains_key(op), "no {op}: {ops:?}");
        }
        let status = |s: u64| {
            recs.iter()
                .filter(|r| r["properties"]["httpStatusCode"] == s)
                .count()
        };
        assert!(
            status(403) > 3 && status(401) > 1,
            "{} {}",
            status(403),
            status(401)
        );
        // People have a upn, applications none.
        let upn = recs
            .iter()
            .filter(|r| r["identity"]["claim"].get(UPN_CLAIM).is_some())
            .count();
        assert!(upn > 50 && upn < recs.len() / 4, "{upn}");
    }

    #[test]
    fn generate_azure_records_envelope_holds_the_same_records_and_is_deterministic() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        generate(&options(a.path(), AzureService::KeyVault, AzureForm::Lines)).unwrap();
        generate(&options(
            b.path(),
            AzureService::KeyVault,
            AzureForm::Records,
        ))
        .unwrap();
        let lines = records(a.path(), "VAULTS", AzureForm::Lines);
        let envelopes = records(b.path(), "VAULTS", AzureForm::Records);
        assert_eq!(lines, envelopes);
        let again = tempfile::tempdir().unwrap();
        generate(&options(
            again.path(),
            AzureService::KeyVault,
            AzureForm::Lines,
        ))
        .unwrap();
        assert!(snapshot(a.path()) == snapshot(again.path()));
    }

    #[test]
    fn generate_azure_mhsm_writes_the_managed_hsm_shape() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), AzureService::ManagedHsm, AzureForm::Lines);
        generate(&opts).unwrap();
        let recs = records(dir.path(), "MANAGEDHSMS", AzureForm::Lines);
        assert_eq!(recs.len(), 4000);
        let mut ops = std::collections::BTreeSet::new();
        for r in &recs {
            ops.insert(r["operationName"].as_str().unwrap().to_string());
            let time = r["time"].as_str().unwrap();
            assert_eq!(time.len(), 24, "{time}"); // 3 fractional digits
            assert!(r.get("resultSignature").is_none());
            assert!(r["durationMs"].is_u64());
            assert!(r["TenantId"].is_string() && r["correlationId"].is_string());
            assert_eq!(r["properties"]["PoolType"], "M-HSM");
            assert_eq!(r["subnetId"], "(unknown)");
            assert_eq!(r["resourceType"], "managedHSMs");
            assert_eq!(r["resourceProvider"], "MICROSOFT.KEYVAULT");
            let pool = r["PoolName"].as_str().unwrap();
            assert_eq!(r["resource"], pool.to_uppercase());
            assert!(r["resourceId"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/MANAGEDHSMS/{}", pool.to_uppercase())));
            let uri = r["requestUri"].as_str().unwrap();
            assert!(
                uri.starts_with(&format!("https://{pool}.managedhsm.azure.net/")),
                "{uri}"
            );
            let status = r["httpStatusCode"].as_u64().unwrap();
            assert_eq!(r["resultType"] == "Failure", status >= 400);
            match r.get("identity") {
                Some(Value::String(s)) => {
                    let id: Value = serde_json::from_str(s).unwrap();
                    if status != 401 {
                        assert!(id["claim"]["appid"].is_string(), "{s}");
                        assert!(id["claim"]["http_schemas_microsoft_com_identity"]["claims"]
                            ["objectidentifier"]
                            .is_string());
                    }
                }
                None => assert_eq!(status, 401),
                Some(other) => panic!("identity {other}"),
            }
        }
        for op in [
            "KeyCreate",
            "KeySign",
            "KeyWrap",
            "KeyUnwrap",
            "KeyDelete",
            "KeyPurge",
            "KeyRelease",
            "RoleAssignmentCreate",
            "RoleAssignmentGet",
            "BackupCreate",
            "Authentication",
        ] {
            assert!(ops.contains(op), "no {op}: {ops:?}");
        }
    }
}
