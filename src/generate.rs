//! Writes realistic DPoD exports of any size, for tests, the sample data and benchmarks
//! (AWS CloudHSM logs: [`cloudhsm`]; Azure Key Vault and Managed HSM: [`azure`]; Google
//! Cloud KMS: [`gcp`]; HashiCorp Vault: [`vault`]; what the last three share: `cloud`).
//!
//! Per tenant: a few partitions and clients with their usual IPs; logins
//! (mostly successful), keys created then used later, occasional destroys,
//! PIN changes, clones and the odd zeroize; bursts of failed logins from a few
//! hostile IPs; a little off-hours work. One export per tenant and month,
//! each overlapping the next by a few hours as real export windows do, with
//! both time forms, RFC 3339, and `meta` as an object or as a string.
//! Deterministic for a given seed. With a manifest path (`--incidents`) it also plants
//! incidents of every kind the findings look for, in every tenant, and lists them —
//! and the bursts and zeroizes of the ordinary traffic — in the manifest.

pub mod azure;
mod cloud;
pub mod cloudhsm;
pub mod gcp;
pub mod vault;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::report::rules::Zone;
use crate::time::{civil_from_days, days_from_civil, format_day, MICROS_PER_DAY};
use crate::{Error, Result};

/// Whose audit logs `generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Vendor {
    /// Thales DPoD exports.
    Dpod,
    /// AWS CloudHSM audit logs as CloudWatch Logs hands them out.
    #[value(name = "aws-cloudhsm")]
    AwsCloudhsm,
    /// Azure Key Vault (vaults) audit events as a diagnostic setting archives them.
    #[value(name = "azure-keyvault")]
    AzureKeyvault,
    /// Azure Managed HSM audit events as a diagnostic setting archives them.
    #[value(name = "azure-mhsm")]
    AzureMhsm,
    /// Google Cloud KMS audit logs (Cloud Logging entries).
    #[value(name = "gcp-kms")]
    GcpKms,
    /// HashiCorp Vault audit device files.
    #[value(name = "hashicorp-vault")]
    HashicorpVault,
}

/// Container and layout of the exports written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A zip holding one JSON array (the documented shape).
    Zip,
    /// Gzip-compressed NDJSON.
    Gzip,
    /// A plain JSON array.
    Json,
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    /// Events over all tenants and months (before the overlaps repeat some).
    pub events: u64,
    pub tenants: u32,
    /// First month, `YYYY-MM`.
    pub start: String,
    pub months: u32,
    pub seed: u64,
    pub format: ExportFormat,
    /// Hours each export reaches into the next month.
    pub overlap_hours: u32,
    /// Plant incidents and write their manifest here.
    pub manifest: Option<PathBuf>,
    /// Each tenant works office hours in its own time zone ([`ZONES`], in turn) instead
    /// of all of them in UTC.
    pub zones: bool,
    /// With `zones`: write a rules file naming each tenant's zone here.
    pub rules: Option<PathBuf>,
    /// Every Nth export (per tenant, counting from its first month) holds its whole JSON
    /// array on one single line; 0: none.
    pub one_line_every: u32,
    /// Routine that findings must not call high: a monthly batch key rotation and new
    /// hires (drawn from a generator of their own; the new hires then take part in the
    /// ordinary traffic).
    pub routine: bool,
}

/// The tenants' time zones with `zones`, in turn: two with summer time, two without.
pub const ZONES: [&str; 4] = [
    "Europe/London",
    "Asia/Tokyo",
    "America/New_York",
    "Asia/Kolkata",
];

/// SplitMix64: small, fast, and the same on every platform.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }
    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

/// One generated event (all that the writer needs).
#[derive(Clone)]
struct Event {
    time: i64,
    source: String,
    resource: String,
    actor: String,
    action: &'static str,
    status: &'static str,
    trace: String,
    clientip: String,
    hsmid: String,
    partid: String,
    role: &'static str,
    ouid: Option<String>,
    /// Planted by `--incidents`: written without drawing from the ordinary generator.
    planted: bool,
}

struct Client {
    actor: String,
    ips: Vec<String>,
    role: &'static str,
    partition: usize,
    /// With `routine`: a batch job that works every night in the tenant's batch hour
    /// (01:00 local); the others work office hours on weekdays.
    batch: bool,
}

struct Tenant {
    id: String,
    resource: String,
    partitions: Vec<(String, String)>, // (partid, hsmid)
    clients: Vec<Client>,
    hostile_ips: Vec<String>,
    /// Where the tenant's office hours fall (UTC when none).
    zone: Option<Zone>,
    /// With `routine`: each client works on its own schedule ([`Client::batch`]) and uses
    /// the keys of its own partition ([`Tenant::part_keys`]), as applications do.
    routine: bool,
    keys: Vec<String>,
    /// With `routine`: the live keys of each partition, oldest first.
    part_keys: Vec<Vec<String>>,
    destroyed: Vec<String>,
    /// What the ordinary traffic holds that a reviewer should see (bursts, zeroize, init),
    /// for the manifest of `--incidents`.
    notable: Vec<Incident>,
}

const USE_ACTIONS: [&str; 8] = [
    "LUNA_SIGN",
    "LUNA_SIGN_SINGLEPART",
    "LUNA_VERIFY",
    "LUNA_ENCRYPT",
    "LUNA_DECRYPT",
    "LUNA_WRAP_KEY",
    "LUNA_UNWRAP_KEY",
    "LUNA_DIGEST_KEY",
];

impl Tenant {
    fn new(rng: &mut Rng, n: u32) -> Self {
        let id = rng.uuid();
        let resource = rng.uuid();
        let partitions: Vec<(String, String)> = (0..2 + rng.below(2))
            .map(|_| {
                (
                    format!("{}", 1_000_000 + rng.below(9_000_000)),
                    format!("{}", 150_000 + rng.below(50_000)),
                )
            })
            .collect();
        let clients = (0..4 + rng.below(4))
            .map(|i| Client {
                actor: rng.uuid(),
                ips: (0..1 + rng.below(3))
                    .map(|_| {
                        format!(
                            "{}.{}.{}.{}",
                            20 + n * 10 + rng.below(10) as u32,
                            rng.below(256),
                            rng.below(256),
                            1 + rng.below(254)
                        )
                    })
                    .collect(),
                // The first user is always the CO; the chance is drawn only after it.
                role: if i == 0 || rng.chance(0.2) {
                    "CO"
                } else {
                    "CU"
                },
                partition: rng.below(partitions.len() as u64) as usize,
                batch: false,
            })
            .collect();
        let hostile_ips = (0..3)
            .map(|_| {
                format!(
                    "185.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    1 + rng.below(254)
                )
            })
            .collect();
        Tenant {
            id,
            resource,
            partitions,
            clients,
            hostile_ips,
            zone: None,
            routine: false,
            keys: Vec::new(),
            part_keys: Vec::new(),
            destroyed: Vec::new(),
            notable: Vec::new(),
        }
    }

    fn base(&self, rng: &mut Rng, time: i64, c: usize) -> Event {
        let cl = &self.clients[c];
        let (partid, hsmid) = &self.partitions[cl.partition];
        Event {
            time,
            source: format!("thales/cloudhsm/{partid}"),
            resource: self.resource.clone(),
            actor: cl.actor.clone(),
            action: "LUNA_LOGIN",
            status: "LUNA_RET_OK",
            trace: if rng.chance(0.5) {
                rng.uuid()
            } else {
                base64url(rng)
            },
            clientip: if rng.chance(0.995) {
                cl.ips[0].clone()
            } else {
                rng.pick(&cl.ips).clone()
            },
            hsmid: hsmid.clone(),
            partid: partid.clone(),
            role: cl.role,
            ouid: None,
            planted: false,
        }
    }

    /// Microseconds east of UTC at `utc` in the tenant's zone.
    fn offset(&self, utc: i64) -> i64 {
        self.zone
            .map_or(0, |z| z.offset_seconds_at(utc) as i64 * 1_000_000)
    }

    /// The UTC time of a wall-clock time in the tenant's zone.
    fn utc_of(&self, local: i64) -> i64 {
        local - self.offset(local - self.offset(local))
    }

    /// The live keys `c` may use: its partition's with `routine`, else the tenant's.
    fn keys_of(&mut self, c: usize) -> &mut Vec<String> {
        if self.routine {
            let p = self.clients[c].partition;
            &mut self.part_keys[p]
        } else {
            &mut self.keys
        }
    }

    /// A time in `start..start + span` when client `c` works (with `routine`): a batch
    /// client in the batch hour, 01:00-02:00 local, any day; the others 07:00-19:00 local
    /// on weekdays.
    fn work_time(&self, rng: &mut Rng, c: usize, start: i64, span: u64) -> i64 {
        const H: i64 = 3_600_000_000;
        let end = start + span as i64;
        if self.clients[c].batch {
            let days = (span as i64 / MICROS_PER_DAY).max(1);
            for _ in 0..8 {
                let day = start.div_euclid(MICROS_PER_DAY) + rng.below(days as u64) as i64;
                let local = day * MICROS_PER_DAY + H + rng.below(H as u64) as i64;
                let t = self.utc_of(local);
                if (start..end).contains(&t) {
                    return t;
                }
            }
        } else {
            for _ in 0..64 {
                let t = start + rng.below(span) as i64;
                let local = t + self.offset(t);
                let h = local.rem_euclid(MICROS_PER_DAY) / H;
                if (7..19).contains(&h) && is_workday(local.div_euclid(MICROS_PER_DAY)) {
                    return t;
                }
            }
        }
        start + rng.below(span) as i64
    }

    /// One ordinary event at `time`, by a client drawn at random.
    fn event(&mut self, rng: &mut Rng, time: i64) -> Event {
        let c = rng.below(self.clients.len() as u64) as usize;
        self.event_by(rng, time, c)
    }

    /// One ordinary event at `time` by client `c`.
    fn event_by(&mut self, rng: &mut Rng, time: i64, c: usize) -> Event {
        let mut e = self.base(rng, time, c);
        let roll = rng.below(1000);
        let live = self.keys_of(c).len();
        match roll {
            0..=99 => {
                e.action = "LUNA_LOGIN";
                if rng.chance(0.03) {
                    e.status = "LUNA_RET_UM_PIN_INCORRECT";
                }
                e.role = "public";
            }
            100..=129 => {
                e.action = if rng.chance(0.5) {
                    "LUNA_GENERATE_KEY"
                } else {
                    "LUNA_GENERATE_KEY_PAIR"
                };
                let k = rng.hex(16);
                e.ouid = Some(k.clone());
                self.keys_of(c).push(k);
            }
            130..=134 if live > 10 => {
                e.action = "LUNA_DESTROY_OBJECT";
                let i = rng.below(live as u64) as usize;
                // `remove`, not `swap_remove`: the keys stay in the order they were made
                // (a swap would move the newest key among the old ones, unused for months).
                let k = self.keys_of(c).remove(i);
                e.ouid = Some(k.clone());
                self.destroyed.push(k);
            }
            135..=137 => {
                e.action = if rng.chance(0.5) {
                    "LUNA_SET_PIN"
                } else {
                    "LUNA_INIT_PIN"
                }
            }
            138..=139 => {
                e.action = *rng.pick(&[
                    "LUNA_CLONE_AS_SOURCE",
                    "LUNA_REPLICATE_AS_SOURCE",
                    "LUNA_CLONE_AS_TARGET_INIT",
                ]);
                e.ouid = self.keys_of(c).last().cloned();
            }
            140 if rng.chance(0.05) => {
                e.action = if rng.chance(0.5) {
                    "LUNA_PARTITION_INIT"
                } else {
                    "LUNA_PARTITION_ZEROIZE"
                };
                self.notable.push(Incident::background(
                    if e.action == "LUNA_PARTITION_INIT" {
                        "partition_init"
                    } else {
                        "zeroize"
                    },
                    &self.id,
                    &e,
                    e.time,
                    &["partition_admin"],
                ));
            }
            141..=160 => {
                e.action = *rng.pick(&[
                    "LUNA_DIGEST_INIT",
                    "LUNA_DIGEST",
                    "LUNA_DIGEST_END",
                    "LUNA_CANCEL_CRYPTO_OPERATION",
                    "LUNA_MODIFY_OBJECT",
                    "LUNA_GEN_KCV",
                ]);
                e.ouid = if e.action == "LUNA_MODIFY_OBJECT" || e.action == "LUNA_GEN_KCV" {
                    self.keys_of(c).last().cloned()
                } else {
                    None
                };
            }
            _ => {
                // Key use: mostly keys created a while ago; now and then a destroyed one (fails)
                // or one never seen created (it predates the archive).
                e.action = *rng.pick(&USE_ACTIONS);
                if !self.destroyed.is_empty() && rng.chance(0.002) {
                    e.ouid = Some(rng.pick(&self.destroyed).clone());
                    e.status = "LUNA_RET_OBJECT_HANDLE_INVALID";
                } else if self.keys_of(c).is_empty() || rng.chance(0.01) {
                    // With `routine`, each partition has pre-archive keys of its own.
                    let p = if self.routine {
                        (self.clients[c].partition as u64 + 1) << 8
                    } else {
                        0
                    };
                    e.ouid = Some(format!(
                        "{:016x}",
                        0xfeed_0000_0000_0000u64 | p | rng.below(64)
                    ));
                } else {
                    // A key is made because an application is about to use it: half the
                    // uses go to the 16 newest keys, so each is first used within days; the
                    // others are skewed toward older keys (long-lived keys in steady use).
                    // (Two draws either way, so the rest of the year is as before.)
                    let n = self.keys_of(c).len() as u64;
                    let (a, b) = (rng.below(n), rng.below(n));
                    let i = if a % 2 == 0 {
                        n - 1 - b % n.min(16)
                    } else {
                        a * b / n.max(1)
                    };
                    e.ouid = Some(self.keys_of(c)[i as usize].clone());
                }
                if e.status == "LUNA_RET_OK" && rng.chance(0.005) {
                    e.status = "LUNA_RET_BAD_PARAMETER";
                }
            }
        }
        e
    }

    /// A burst of failed logins from a hostile IP starting at `time`.
    fn burst(&mut self, rng: &mut Rng, time: i64, out: &mut Vec<Event>) {
        let from = out.len();
        let ip = rng.pick(&self.hostile_ips).clone();
        let c = rng.below(self.clients.len() as u64) as usize;
        let n = 10 + rng.below(20);
        for i in 0..n {
            let step = 5_000_000 + rng.below(15_000_000) as i64;
            let mut e = self.base(rng, time + i as i64 * step, c);
            e.clientip = ip.clone();
            e.status = "LUNA_RET_UM_PIN_INCORRECT";
            e.role = "public";
            out.push(e);
        }
        let end = out.last().map_or(time, |e| e.time);
        self.notable.push(Incident::background(
            "brute_force",
            &self.id,
            &out[from],
            end,
            // A burst at an hour the tenant does not work is off-hours activity, too.
            &["failed_login_burst", "off_hours"],
        ));
    }
}

/// The day of the week of a day since the epoch, 0 for Sunday (1970-01-01 was a Thursday).
fn weekday(day: i64) -> i64 {
    (day + 4).rem_euclid(7)
}

fn is_workday(day: i64) -> bool {
    (1..=5).contains(&weekday(day))
}

/// `day`, or the first weekday after it.
fn next_workday(mut day: i64) -> i64 {
    while !is_workday(day) {
        day += 1;
    }
    day
}

fn base64url(rng: &mut Rng) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..43).map(|_| A[rng.below(64) as usize] as char).collect()
}

/// Generates one month of a tenant's events, in time order.
fn month_events(t: &mut Tenant, rng: &mut Rng, start: i64, end: i64, n: u64) -> Vec<Event> {
    let span = (end - start) as u64;
    // A third of the events carry whole seconds (exports show both forms).
    let whole = |rng: &mut Rng, t: i64| {
        if rng.chance(0.3) {
            t - t.rem_euclid(1_000_000)
        } else {
            t
        }
    };
    let mut out: Vec<Event> = if t.routine {
        // Each client on its own schedule.
        let mut plan: Vec<(i64, usize)> = (0..n)
            .map(|_| {
                let c = rng.below(t.clients.len() as u64) as usize;
                let time = t.work_time(rng, c, start, span);
                (whole(rng, time), c)
            })
            .collect();
        plan.sort_unstable();
        plan.into_iter()
            .map(|(time, c)| t.event_by(rng, time, c))
            .collect()
    } else {
        let mut times: Vec<i64> = (0..n)
            .map(|_| {
                // Busier during working hours: half the events are drawn again until they
                // land 07-19h, local time.
                let mut time = start + rng.below(span) as i64;
                if rng.chance(0.5) {
                    for _ in 0..3 {
                        let h =
                            ((time + t.offset(time)).rem_euclid(MICROS_PER_DAY)) / 3_600_000_000;
                        if (7..19).contains(&h) {
                            break;
                        }
                        time = start + rng.below(span) as i64;
                    }
                }
                whole(rng, time)
            })
            .collect();
        times.sort_unstable();
        times.into_iter().map(|time| t.event(rng, time)).collect()
    };
    for _ in 0..1 + rng.below(2) {
        let at = start + rng.below(span.saturating_sub(3_600_000_000).max(1)) as i64;
        t.burst(rng, at, &mut out);
    }
    out.sort_by_key(|e| e.time);
    out
}

/// A month's routine (`--routine`): a new hire now and then, and the monthly batch key
/// rotation in the tenant's maintenance hour (the first Sunday, 02:00 local): the CO makes
/// twelve keys, then destroys the twelve oldest within the hour.
fn month_routine(t: &mut Tenant, rng: &mut Rng, start: i64, end: i64) -> Vec<Event> {
    const H: i64 = 3_600_000_000;
    const M: i64 = 60_000_000;
    let mut out = Vec::new();
    if rng.chance(0.5) {
        // A new hire, working from the next weekday on like the others (a new IP, too).
        let partition = rng.below(t.partitions.len() as u64) as usize;
        let ip = format!(
            "{}.{}.{}.{}",
            60 + rng.below(10),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        );
        t.clients.push(Client {
            actor: rng.uuid(),
            ips: vec![ip],
            role: "CU",
            partition,
            batch: false,
        });
    }
    let mut day = start / MICROS_PER_DAY;
    while weekday(day) != 0 {
        day += 1;
    }
    let local = day * MICROS_PER_DAY + 2 * H;
    let at = t.utc_of(local);
    if at + H >= end {
        return out;
    }
    let co = t.clients.iter().position(|c| c.role == "CO").unwrap_or(0);
    for i in 0..12 {
        let mut e = t.base(rng, at + i * M, co);
        e.action = "LUNA_GENERATE_KEY";
        let k = rng.hex(16);
        e.ouid = Some(k.clone());
        // Its check value computed at once, as a key ceremony does.
        let mut kcv = t.base(rng, at + i * M + 20_000_000, co);
        kcv.action = "LUNA_GEN_KCV";
        kcv.ouid = Some(k.clone());
        t.keys_of(co).push(k);
        out.push(e);
        out.push(kcv);
    }
    for i in 0..12 {
        let mut e = t.base(rng, at + 15 * M + i * 3 * M, co);
        e.action = "LUNA_DESTROY_OBJECT";
        // The oldest keys; early in the archive, keys made before it began.
        let k = if t.keys_of(co).len() > 24 {
            t.keys_of(co).remove(0)
        } else {
            format!("{:016x}", 0xfeed_0100_0000_0000u64 | rng.below(1 << 40))
        };
        e.ouid = Some(k.clone());
        t.destroyed.push(k);
        out.push(e);
    }
    out
}

/// Writes one event as JSON, choosing its time form and meta form.
fn write_event(w: &mut impl Write, e: &Event, tenant: &str, rng: &mut Rng) -> std::io::Result<()> {
    let day = e.time.div_euclid(MICROS_PER_DAY);
    let rest = e.time.rem_euclid(MICROS_PER_DAY);
    let s = rest / 1_000_000;
    let (hh, mm, ss, us) = (s / 3600, s / 60 % 60, s % 60, rest % 1_000_000);
    let d = format_day(day as i32);
    // The form follows from the time itself, so an event repeated in the next export reads the same.
    let time = if us == 0 {
        format!("{d} {hh:02}:{mm:02}:{ss:02} UTC")
    } else if us % 10 == 0 {
        format!("{d}T{hh:02}:{mm:02}:{ss:02}.{us:06}Z")
    } else {
        format!("{d} {hh:02}:{mm:02}:{ss:02}.{us:06} UTC")
    };
    let ouid = e
        .ouid
        .as_ref()
        .map_or("null".to_string(), |o| format!("\"{o}\""));
    let meta = format!(
        r#"{{"clientip":"{}","hsmid":"{}","partid":"{}","role":"{}","ouid":{}}}"#,
        e.clientip, e.hsmid, e.partid, e.role, ouid
    );
    let meta = if !e.planted && rng.chance(0.2) {
        serde_json::to_string(&meta).expect("string")
    } else {
        meta
    };
    write!(
        w,
        r#"{{"time":"{time}","source":"{}","resourceID":"{}","actorID":"{}","tenantID":"{}","action":"{}","status":"{}","traceID":"{}","meta":{meta}}}"#,
        e.source, e.resource, e.actor, tenant, e.action, e.status, e.trace
    )
}

/// Writes the exports; returns their paths.
pub fn generate(opts: &GenerateOptions) -> Result<Vec<PathBuf>> {
    let (y, m) = opts
        .start
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<i64>().ok()?, m.parse::<u32>().ok()?)))
        .filter(|(_, m)| (1..=12).contains(m))
        .ok_or_else(|| Error::Usage(format!("--start {:?} is not YYYY-MM", opts.start)))?;
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let month_start = |k: u32| -> i64 {
        let mi = (m - 1 + k) as i64;
        days_from_civil(y + mi / 12, (mi % 12) as u32 + 1, 1) * MICROS_PER_DAY
    };
    let mut rng = Rng::new(opts.seed);
    let tenants = opts.tenants.max(1);
    // Uneven tenants: weights 3:2:1:1...
    let weights: Vec<u64> = (0..tenants)
        .map(|i| {
            if i == 0 {
                3
            } else if i == 1 {
                2
            } else {
                1
            }
        })
        .collect();
    let wsum: u64 = weights.iter().sum();
    let overlap = opts.overlap_hours as i64 * 3_600_000_000;
    if opts.manifest.is_some() && opts.months < 5 {
        return Err(Error::Usage(
            "--incidents needs at least 5 months (incidents are judged against history)".into(),
        ));
    }
    // Incidents draw from their own generator, so the ordinary traffic stays the same.
    let mut incident_rng = Rng::new(opts.seed ^ 0x1BAD_5EED);
    let mut routine_rng = Rng::new(opts.seed ^ 0x0C0F_FEE5);
    let mut manifest = Vec::new();
    let mut rules = String::from("# The tenants' time zones (auditlake generate --zones).\n");
    let mut paths = Vec::new();
    for ti in 0..tenants {
        let mut t = Tenant::new(&mut rng, ti);
        if opts.zones {
            let name = ZONES[ti as usize % ZONES.len()];
            t.zone = Zone::parse(name);
            rules.push_str(&format!("[tenants.{}]\ntimezone = \"{name}\"\n", t.id));
        }
        if opts.routine {
            // Batch jobs among the crypto users; every partition's keys its own.
            t.routine = true;
            t.part_keys = vec![Vec::new(); t.partitions.len()];
            for c in t.clients.iter_mut().skip(1) {
                c.batch = c.role == "CU" && routine_rng.chance(0.3);
            }
        }
        let (mut planted, incidents) = match opts.manifest {
            Some(_) => plant(&t, &mut incident_rng, ti, opts.months, &month_start),
            None => (vec![], vec![]),
        };
        manifest.extend(incidents);
        let per_month = opts.events * weights[ti as usize] / wsum / opts.months.max(1) as u64;
        let routine = opts.routine;
        let mut month = |t: &mut Tenant, rng: &mut Rng, s: i64, e: i64| {
            let mut v = month_events(t, rng, s, e, per_month);
            if routine {
                v.extend(month_routine(t, &mut routine_rng, s, e));
                v.sort_by_key(|x| x.time);
            }
            if !planted.is_empty() {
                v.extend(planted.extract_if(.., |x| x.time >= s && x.time < e));
                v.sort_by_key(|x| x.time);
            }
            v
        };
        let mut next: Option<Vec<Event>> = None;
        for k in 0..opts.months {
            let (s, e) = (month_start(k), month_start(k + 1));
            let this = next.take().unwrap_or_else(|| month(&mut t, &mut rng, s, e));
            let following =
                (k + 1 < opts.months).then(|| month(&mut t, &mut rng, e, month_start(k + 2)));
            let head: Vec<&Event> = following.as_ref().map_or(vec![], |f| {
                f.iter().take_while(|ev| ev.time < e + overlap).collect()
            });
            let (yy, mm, _) = civil_from_days(s / MICROS_PER_DAY);
            let stem = format!("dpod-audit-{}-{yy:04}-{mm:02}", &t.id[..8]);
            let events = this.iter().chain(head);
            let one_line = opts.one_line_every > 0 && k % opts.one_line_every == 0;
            let path = write_export(
                &opts.out,
                &stem,
                (opts.format, one_line),
                &t.id,
                events,
                &mut rng,
            )?;
            paths.push(path);
            next = following;
        }
        if opts.manifest.is_some() {
            manifest.append(&mut t.notable);
        }
    }
    if let Some(path) = &opts.manifest {
        let text = serde_json::to_string_pretty(&manifest)? + "\n";
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    }
    if let Some(path) = opts.rules.as_ref().filter(|_| opts.zones) {
        std::fs::write(path, rules).map_err(|e| Error::io(path, e))?;
    }
    Ok(paths)
}

/// Writes one export; `one_line`: a JSON array with no line breaks at all.
fn write_export<'a>(
    dir: &Path,
    stem: &str,
    (format, one_line): (ExportFormat, bool),
    tenant: &str,
    events: impl Iterator<Item = &'a Event>,
    rng: &mut Rng,
) -> Result<PathBuf> {
    let ext = match format {
        ExportFormat::Zip => "zip",
        ExportFormat::Gzip => "ndjson.gz",
        ExportFormat::Json => "json",
    };
    let path = dir.join(format!("{stem}.{ext}"));
    let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
    let io = |e| Error::io(&path, e);
    let body = |w: &mut dyn Write, ndjson: bool| -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(512);
        if !ndjson {
            w.write_all(b"[")?;
        }
        for (i, e) in events.enumerate() {
            buf.clear();
            if i > 0 {
                buf.extend_from_slice(match (ndjson, one_line) {
                    (true, _) => b"\n",
                    (false, false) => b",\n",
                    (false, true) => b",",
                });
            }
            write_event(&mut buf, e, tenant, rng)?;
            w.write_all(&buf)?;
        }
        w.write_all(match (ndjson, one_line) {
            (true, _) => b"\n",
            (false, false) => b"]\n",
            (false, true) => b"]",
        })
    };
    match format {
        ExportFormat::Zip => {
            let mut z = zip::ZipWriter::new(BufWriter::new(file));
            let opt = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            z.start_file(format!("{stem}.json"), opt)
                .map_err(|e| Error::io(&path, e.into()))?;
            body(&mut z, false).map_err(io)?;
            z.finish()
                .map_err(|e| Error::io(&path, e.into()))?
                .flush()
                .map_err(io)?;
        }
        ExportFormat::Gzip => {
            let mut g =
                flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
            body(&mut g, true).map_err(io)?;
            g.finish().map_err(io)?.flush().map_err(io)?;
        }
        ExportFormat::Json => {
            let mut w = BufWriter::new(file);
            body(&mut w, false).map_err(io)?;
            w.flush().map_err(io)?;
        }
    }
    Ok(path)
}

/// One incident in the generated exports, as the manifest of `--incidents` lists it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    pub kind: String,
    /// `planted` by `--incidents`, or `background`: part of the ordinary traffic.
    pub origin: String,
    pub tenant: String,
    pub actor: Option<String>,
    pub client_ips: Vec<String>,
    pub keys: Vec<String>,
    /// First and last event of the incident, RFC 3339 UTC.
    pub start: String,
    pub end: String,
    /// The finding kinds that should report it.
    pub expect: Vec<String>,
}

fn rfc3339(t: i64) -> String {
    let day = t.div_euclid(MICROS_PER_DAY);
    let s = t.rem_euclid(MICROS_PER_DAY) / 1_000_000;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        format_day(day as i32),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

impl Incident {
    fn background(kind: &str, tenant: &str, e: &Event, end: i64, expect: &[&str]) -> Incident {
        Incident {
            kind: kind.into(),
            origin: "background".into(),
            tenant: tenant.into(),
            actor: Some(e.actor.clone()),
            client_ips: vec![e.clientip.clone()],
            keys: vec![],
            start: rfc3339(e.time),
            end: rfc3339(end),
            expect: expect.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The kinds `--incidents` plants, in every tenant, each in its own month.
pub const PLANTED_KINDS: &[&str] = &[
    "brute_force",
    "zeroize",
    "partition_init",
    "new_ip_at_night",
    "new_actor",
    "dormant_key",
    "new_key_user",
    "mass_destroy",
    "new_clone_target",
];

/// Events of the planted incidents of one tenant (any month), and their manifest.
fn plant(
    t: &Tenant,
    rng: &mut Rng,
    ti: u32,
    months: u32,
    month_start: &dyn Fn(u32) -> i64,
) -> (Vec<Event>, Vec<Incident>) {
    const H: i64 = 3_600_000_000;
    const M: i64 = 60_000_000;
    let mut events = Vec::new();
    let mut manifest = Vec::new();
    let co = t.clients.iter().position(|c| c.role == "CO").unwrap_or(0);
    let other = (co + 1) % t.clients.len();
    let span = months.saturating_sub(3).max(1);
    for (j, kind) in PLANTED_KINDS.iter().enumerate() {
        let m = 1 + (j as u32 + 2 * ti) % span;
        let start = month_start(m);
        let day = |d: i64| start + d * MICROS_PER_DAY;
        // Ordinary work happens on weekdays: the `d`th day of the month, or the next
        // weekday after it.
        let workday = |d: i64| next_workday(start / MICROS_PER_DAY + d) * MICROS_PER_DAY;
        // The first Saturday on or after the 8th of the month.
        let saturday = {
            let mut d = start / MICROS_PER_DAY + 7;
            while weekday(d) != 6 {
                d += 1;
            }
            d * MICROS_PER_DAY
        };
        // Times are the tenant's wall-clock times: a night is a night where it works.
        let ev =
            |rng: &mut Rng, c: usize, local: i64, action: &'static str, ouid: Option<String>| {
                let time = t.utc_of(local);
                let cl = &t.clients[c];
                let (partid, hsmid) = &t.partitions[cl.partition];
                Event {
                    time,
                    source: format!("thales/cloudhsm/{partid}"),
                    resource: t.resource.clone(),
                    actor: cl.actor.clone(),
                    action,
                    status: "LUNA_RET_OK",
                    trace: rng.uuid(),
                    clientip: cl.ips[0].clone(),
                    hsmid: hsmid.clone(),
                    partid: partid.clone(),
                    role: if action == "LUNA_LOGIN" {
                        "public"
                    } else {
                        cl.role
                    },
                    ouid,
                    planted: true,
                }
            };
        let mut new: Vec<Event> = Vec::new();
        let mut keys = Vec::new();
        let mut expect: Vec<&str> = Vec::new();
        match *kind {
            "brute_force" => {
                // 25 wrong PINs in four minutes from a new address, then a login that works.
                let ip = format!("193.56.28.{}", 10 + ti);
                let at = day(11) + 3 * H + 7 * M;
                for i in 0..25 {
                    let mut e = ev(rng, other, at + i * 9_000_000, "LUNA_LOGIN", None);
                    e.status = "LUNA_RET_UM_PIN_INCORRECT";
                    e.clientip = ip.clone();
                    new.push(e);
                }
                let mut e = ev(
                    rng,
                    other,
                    at + 25 * 9_000_000 + 30_000_000,
                    "LUNA_LOGIN",
                    None,
                );
                e.clientip = ip;
                new.push(e);
                expect.extend(["failed_login_burst", "new_client_ip", "off_hours"]);
            }
            "zeroize" | "partition_init" => {
                // Sunday night, by the crypto officer.
                let at = saturday + MICROS_PER_DAY + 23 * H + 31 * M;
                let action = if *kind == "zeroize" {
                    "LUNA_PARTITION_ZEROIZE"
                } else {
                    "LUNA_PARTITION_INIT"
                };
                new.push(ev(rng, co, at, "LUNA_LOGIN", None));
                new.push(ev(rng, co, at + M, action, None));
                expect.extend(["partition_admin", "off_hours"]);
            }
            "new_ip_at_night" => {
                // A Saturday-night session of a known actor from an address never seen.
                let ip = format!("45.155.205.{}", 100 + ti);
                let at = saturday + 2 * H + 14 * M;
                let key = t.keys.first().cloned();
                let mut e = ev(rng, other, at, "LUNA_LOGIN", None);
                e.clientip = ip.clone();
                new.push(e);
                for i in 1..6 {
                    let mut e = ev(rng, other, at + i * M, "LUNA_SIGN", key.clone());
                    e.clientip = ip.clone();
                    new.push(e);
                }
                expect.extend(["new_client_ip", "off_hours"]);
            }
            "new_actor" => {
                // Someone nobody saw before logs in, sets a PIN and makes a key.
                let actor = rng.uuid();
                let ip = format!("91.92.{}.{}", 240 + ti, 17);
                let at = workday(16) + 10 * H;
                let k = rng.hex(16);
                for (i, (action, ouid)) in [
                    ("LUNA_LOGIN", None),
                    ("LUNA_INIT_PIN", None),
                    ("LUNA_GENERATE_KEY", Some(k.clone())),
                ]
                .into_iter()
                .enumerate()
                {
                    let mut e = ev(rng, co, at + i as i64 * M, action, ouid);
                    e.actor = actor.clone();
                    e.clientip = ip.clone();
                    new.push(e);
                }
                keys.push(k);
                expect.extend(["new_actor", "pin_change"]);
            }
            "dormant_key" => {
                // A key made early in the month and first used 80 days later.
                let k = rng.hex(16);
                new.push(ev(
                    rng,
                    co,
                    workday(2) + 9 * H,
                    "LUNA_GENERATE_KEY",
                    Some(k.clone()),
                ));
                new.push(ev(
                    rng,
                    other,
                    workday(82) + 11 * H,
                    "LUNA_DECRYPT",
                    Some(k.clone()),
                ));
                keys.push(k);
                expect.push("dormant_key");
            }
            "new_key_user" => {
                // A key one actor uses every day; the next month another actor uses it too.
                // The key lives in a partition the other actor never works in (using a key
                // of one's own partition is routine, not news).
                let k = rng.hex(16);
                let kp = (t.clients[other].partition + 1) % t.partitions.len();
                let on_kp = |mut e: Event| {
                    let (partid, hsmid) = &t.partitions[kp];
                    e.partid = partid.clone();
                    e.hsmid = hsmid.clone();
                    e
                };
                new.push(on_kp(ev(
                    rng,
                    co,
                    workday(1) + 9 * H,
                    "LUNA_GENERATE_KEY",
                    Some(k.clone()),
                )));
                // Twice on every working day.
                for d in (1..26).filter(|&d| workday(d) == day(d)) {
                    for h in [10, 15] {
                        new.push(on_kp(ev(
                            rng,
                            co,
                            day(d) + h * H,
                            "LUNA_SIGN",
                            Some(k.clone()),
                        )));
                    }
                }
                let next = next_workday(month_start(m + 1) / MICROS_PER_DAY + 12) * MICROS_PER_DAY;
                for i in 0..3 {
                    new.push(on_kp(ev(
                        rng,
                        other,
                        next + 14 * H + i * M,
                        "LUNA_SIGN",
                        Some(k.clone()),
                    )));
                }
                keys.push(k);
                expect.push("new_key_user");
            }
            "mass_destroy" => {
                // Fifteen keys made over the month, destroyed within fifteen minutes.
                let at = workday(20) + 15 * H;
                for i in 0..15 {
                    let k = rng.hex(16);
                    new.push(ev(
                        rng,
                        co,
                        workday(3 + i) + 9 * H,
                        "LUNA_GENERATE_KEY",
                        Some(k.clone()),
                    ));
                    new.push(ev(
                        rng,
                        co,
                        at + i * M,
                        "LUNA_DESTROY_OBJECT",
                        Some(k.clone()),
                    ));
                    keys.push(k);
                }
                expect.push("mass_key_destruction");
            }
            "new_clone_target" => {
                // Keys cloned into a partition the tenant never used.
                let at = workday(9) + 13 * H;
                let key = t.keys.first().cloned();
                for (i, action) in ["LUNA_CLONE_AS_TARGET_INIT", "LUNA_CLONE_AS_TARGET"]
                    .into_iter()
                    .enumerate()
                {
                    let mut e = ev(rng, co, at + i as i64 * M, action, key.clone());
                    e.partid = format!("{}", 9_900_000 + ti);
                    e.hsmid = "299999".into();
                    e.source = format!("thales/cloudhsm/{}", e.partid);
                    new.push(e);
                }
                keys.extend(key);
                expect.push("new_replication_target");
            }
            _ => unreachable!("every planted kind is handled"),
        }
        // Only the events the incident is about: the mass destroy's key creations are not.
        let about: Vec<&Event> = new
            .iter()
            .filter(|e| !(*kind == "mass_destroy" && e.action == "LUNA_GENERATE_KEY"))
            .filter(|e| !(*kind == "new_key_user" && e.actor != t.clients[other].actor))
            .filter(|e| !(*kind == "dormant_key" && e.action == "LUNA_GENERATE_KEY"))
            .collect();
        let first = about.iter().map(|e| e.time).min().unwrap_or(start);
        let last = about.iter().map(|e| e.time).max().unwrap_or(start);
        let mut ips: Vec<String> = about.iter().map(|e| e.clientip.clone()).collect();
        ips.dedup();
        manifest.push(Incident {
            kind: kind.to_string(),
            origin: "planted".into(),
            tenant: t.id.clone(),
            actor: about.first().map(|e| e.actor.clone()),
            client_ips: ips,
            keys,
            start: rfc3339(first),
            end: rfc3339(last),
            expect: expect.iter().map(|s| s.to_string()).collect(),
        });
        events.extend(new);
    }
    (events, manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minutes after midnight UTC of an export's `time` (all forms put HH:MM at 11..16).
    fn minute_of_day(time: &str) -> i64 {
        let h: i64 = time[11..13].parse().unwrap();
        let m: i64 = time[14..16].parse().unwrap();
        h * 60 + m
    }

    #[test]
    fn zones_move_each_tenants_office_hours_and_one_line_exports_have_no_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate(&GenerateOptions {
            out: dir.path().to_path_buf(),
            events: 16_000,
            tenants: 4,
            start: "2025-01".into(),
            months: 2,
            seed: 3,
            format: ExportFormat::Json,
            overlap_hours: 6,
            manifest: None,
            zones: true,
            rules: None,
            one_line_every: 2,
            routine: false,
        })
        .unwrap();
        // Per tenant, in order: its January export (the 1st: one line), then February.
        assert_eq!(paths.len(), 8);
        for (i, path) in paths.iter().enumerate() {
            let bytes = std::fs::read(path).unwrap();
            let breaks = bytes.iter().filter(|&&b| b == b'\n').count();
            if i % 2 == 0 {
                assert_eq!(breaks, 0, "{}", path.display());
            } else {
                assert!(breaks > 1000, "{}: {breaks} line breaks", path.display());
            }
            let records: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
            // Share of the records in 07-19h local time in a zone (summer time followed).
            let office = |zone: &str| {
                let zone = Zone::parse(zone).unwrap();
                let inside = records
                    .iter()
                    .map(|r| {
                        let time = r["time"].as_str().unwrap();
                        let (y, m, d) = (&time[0..4], &time[5..7], &time[8..10]);
                        let day = days_from_civil(
                            y.parse().unwrap(),
                            m.parse().unwrap(),
                            d.parse().unwrap(),
                        );
                        day * MICROS_PER_DAY + minute_of_day(time) * 60_000_000
                    })
                    .map(|t| t + zone.offset_seconds_at(t) as i64 * 1_000_000)
                    .filter(|l| (7..19).contains(&(l.rem_euclid(MICROS_PER_DAY) / 3_600_000_000)))
                    .count();
                inside as f64 / records.len() as f64
            };
            // Busier in its own office hours than in those of any of the other zones.
            let own = office(ZONES[i / 2]);
            for other in ZONES.iter().filter(|&&z| z != ZONES[i / 2]) {
                let theirs = office(other);
                assert!(own > theirs + 0.04, "{}: {own} vs {theirs}", path.display());
            }
        }
    }
}
