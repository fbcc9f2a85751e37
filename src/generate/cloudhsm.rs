//! Writes realistic AWS CloudHSM audit logs of any size (`generate --vendor aws-cloudhsm`),
//! in any of the forms CloudWatch Logs hands them out, for tests and benchmarks.
//!
//! Per cluster: two HSMs (log streams) numbering their events without gaps from a reboot
//! counter on (a rare reboot starts the numbers again), a crypto officer and a few crypto
//! users logging in and out (a few wrong passwords), keys generated, synchronised to the
//! other HSM, wrapped, shared and now and then destroyed, the odd user change. One file
//! per cluster and month (per HSM too, for the forms that hold one stream), each reaching
//! a few hours into the next month as overlapping exports do. Deterministic for a seed.
//! With a manifest path (`--incidents`) it also plants, in every cluster, incidents of the
//! kinds CloudHSM's log can show (a password-guessing burst that ends in a login, a
//! zeroize, a new crypto officer, a mass destruction, a dormant key) and lists them.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{rfc3339, Incident, Rng};
use crate::time::{civil_from_days, days_from_civil, MICROS_PER_DAY};
use crate::{Error, Result};

/// How the generated events are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CloudHsmForm {
    /// Subscription / Firehose deliveries: gzip, concatenated envelopes naming the log
    /// group, so `convert` needs no --tenant.
    Subscription,
    /// `aws logs filter-log-events` JSON output (convert with --tenant <cluster-id>).
    FilterLogEvents,
    /// CloudWatch export-to-S3 objects, one per HSM stream (convert with --tenant).
    S3Export,
    /// Plain text blocks, one file per HSM (convert with --tenant).
    Text,
}

#[derive(Debug, Clone)]
pub struct CloudHsmOptions {
    pub out: PathBuf,
    /// Events over all clusters and months (before the overlaps repeat some).
    pub events: u64,
    pub clusters: u32,
    /// First month, `YYYY-MM`.
    pub start: String,
    pub months: u32,
    pub seed: u64,
    pub form: CloudHsmForm,
    pub overlap_hours: u32,
    /// Plant incidents and write their manifest here.
    pub manifest: Option<PathBuf>,
}

/// One planted operation: written where its time falls, numbered like the others.
struct Planted {
    time: i64,
    hsm: usize,
    op: &'static str,
    resp: String,
    log_type: &'static str,
    detail: String,
}

/// One generated event.
struct Ev {
    time: i64,
    hsm: usize,
    reboot: u64,
    seq: u64,
    body: String,
}

fn id(rng: &mut Rng, prefix: &str) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let s: String = (0..11)
        .map(|_| A[rng.below(A.len() as u64) as usize] as char)
        .collect();
    format!("{prefix}{s}")
}

/// `MM/DD/YY HH:MM:SS.ffffff` of a UTC time.
fn mdy(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(MICROS_PER_DAY));
    let rest = t.rem_euclid(MICROS_PER_DAY);
    let s = rest / 1_000_000;
    format!(
        "{m:02}/{d:02}/{:02} {:02}:{:02}:{:02}.{:06}",
        y.rem_euclid(100),
        s / 3600,
        s / 60 % 60,
        s % 60,
        rest % 1_000_000
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a UTC time.
fn iso_ms(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(MICROS_PER_DAY));
    let rest = t.rem_euclid(MICROS_PER_DAY);
    let s = rest / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        rest % 1_000_000 / 1000
    )
}

/// A cluster's users, keys and HSMs.
struct Cluster {
    id: String,
    hsms: [String; 2],
    sep: &'static str,
    reboot: [u64; 2],
    seq: [u64; 2],
    users: Vec<String>,
    keys: Vec<u64>,
    /// Keys made and not used yet, oldest first: an application makes a key to use it.
    unused: std::collections::VecDeque<u64>,
    next_key: u64,
}

impl Cluster {
    fn new(rng: &mut Rng) -> Self {
        let sep = *[" : ", ": ", "\t: "]
            .get(rng.below(3) as usize)
            .unwrap_or(&" : ");
        Cluster {
            id: id(rng, "cluster-"),
            hsms: [id(rng, "hsm-"), id(rng, "hsm-")],
            sep,
            reboot: [0x20 + rng.below(0x100), 0x20 + rng.below(0x100)],
            seq: [0, 0],
            users: (1..=3).map(|i| format!("app_cu{i}")).collect(),
            keys: Vec::new(),
            unused: Default::default(),
            next_key: 262_144 + rng.below(1000),
        }
    }

    /// One operation: its opcode, response, log type and the detail lines after them.
    fn operation(&mut self, rng: &mut Rng) -> (&'static str, String, &'static str, String) {
        const OK: &str = "0:HSM Return: SUCCESS";
        let s = self.sep;
        let user = |name: &str, ty: &str| format!("User Name{s}{name}\nUser Type{s}{ty}");
        let key = |h: u64| format!("Priv/Secret Key Handle{s}{h}\nPublic Key Handle{s}0");
        let cu = self.users[rng.below(self.users.len() as u64) as usize].clone();
        let r = rng.below(100);
        match r {
            0..=29 => {
                if rng.chance(0.06) {
                    let resp = "163:HSM Error: RET_USER_LOGIN_FAILURE".to_string();
                    let u = user(&cu, "CN_CRYPTO_USER (1)");
                    ("CN_LOGIN (0xd)", resp, "MGMT_USER_DETAILS_LOG (2)", u)
                } else {
                    let u = user(&cu, "CN_CRYPTO_USER (1)");
                    ("CN_LOGIN (0xd)", OK.into(), "MGMT_USER_DETAILS_LOG (2)", u)
                }
            }
            30..=54 => (
                "CN_LOGOUT (0xe)",
                OK.into(),
                "MGMT_USER_DETAILS_LOG (2)",
                user(&cu, "CN_CRYPTO_USER (1)"),
            ),
            55..=66 => {
                let h = self.next_key;
                self.next_key += 1 + rng.below(3);
                self.keys.push(h);
                self.unused.push_back(h);
                let op = if rng.chance(0.3) {
                    "CN_GENERATE_KEY_PAIR (0x19)"
                } else {
                    "CN_GENERATE_KEY (0x17)"
                };
                (op, OK.into(), "MGMT_KEY_DETAILS_LOG (1)", key(h))
            }
            67..=88 if !self.keys.is_empty() => {
                // Keys are made to be used: the oldest key not used yet comes first,
                // then half the uses go to the 8 newest keys, so a new key is first used
                // within days (not flagged as dormant).
                let n = self.keys.len() as u64;
                let i = if rng.chance(0.5) {
                    n - 1 - rng.below(n.min(8))
                } else {
                    rng.below(n)
                };
                let fresh = self.unused.pop_front();
                let h = fresh.unwrap_or(self.keys[i as usize]);
                let op = *[
                    "CN_WRAP_KEY (0x1a)",
                    "CN_NIST_AES_WRAP (0x1e)",
                    "CN_SHARE_OBJECT (0x12)",
                    "CN_EXTRACT_MASKED_OBJECT_USER (0xf0)",
                    "CN_INSERT_MASKED_OBJECT_USER (0xf1)",
                ]
                // A fresh key's first operation uses it (a wrap), then any.
                .get(rng.below(5) as usize % if fresh.is_some() { 2 } else { 5 })
                .unwrap_or(&"CN_WRAP_KEY (0x1a)");
                (op, OK.into(), "MGMT_KEY_DETAILS_LOG (1)", key(h))
            }
            89..=92 if !self.keys.is_empty() => {
                let i = rng.below(self.keys.len() as u64) as usize;
                // `remove`: the keys stay in creation order (the newest last).
                let h = self.keys.remove(i);
                self.unused.retain(|&u| u != h);
                (
                    "CN_DESTROY_OBJECT (0x11)",
                    OK.into(),
                    "MGMT_KEY_DETAILS_LOG (1)",
                    key(h),
                )
            }
            93..=94 => {
                let op = *["CN_CREATE_USER (0x3)", "CN_CHANGE_PSWD (0x9)"]
                    .get(rng.below(2) as usize)
                    .unwrap_or(&"CN_CHANGE_PSWD (0x9)");
                (
                    op,
                    OK.into(),
                    "MGMT_USER_DETAILS_LOG (2)",
                    user(&cu, "CN_CRYPTO_USER (1)"),
                )
            }
            _ => (
                "CN_LOGIN (0xd)",
                OK.into(),
                "MGMT_USER_DETAILS_LOG (2)",
                user("admin", "CN_CRYPTO_OFFICER (2)"),
            ),
        }
    }

    /// `n` events between `from` and `to`, with the `planted` ones that fall there,
    /// numbered per HSM in time order.
    fn month(
        &mut self,
        rng: &mut Rng,
        (from, to): (i64, i64),
        n: u64,
        planted: &mut Vec<Planted>,
    ) -> Vec<Ev> {
        let mut planted: Vec<Option<Planted>> = planted
            .extract_if(.., |p| p.time >= from && p.time < to)
            .map(Some)
            .collect();
        // (time, HSM, the planted operation's index or usize::MAX).
        let mut times: Vec<(i64, usize, usize)> = (0..n)
            .map(|_| {
                let t = from + rng.below((to - from).max(1) as u64) as i64;
                (t, rng.below(2) as usize, usize::MAX)
            })
            .chain(planted.iter().enumerate().map(|(i, p)| {
                let p = p.as_ref().expect("each planted operation is taken once");
                (p.time, p.hsm, i)
            }))
            .collect();
        times.sort_unstable();
        let s = self.sep;
        let mut out = Vec::with_capacity(times.len());
        for (i, (time, hsm, k)) in times.into_iter().enumerate() {
            // A planted operation draws nothing from `rng`: the ordinary traffic stays the same.
            let plant = planted.get_mut(k).and_then(Option::take);
            if plant.is_none() && rng.chance(0.0005) {
                self.reboot[hsm] += 1;
                self.seq[hsm] = 0;
            }
            let (seq, reboot) = (self.seq[hsm], self.reboot[hsm]);
            self.seq[hsm] += 1;
            let (op, resp, log_type, detail) = match plant {
                Some(p) => (p.op, p.resp, p.log_type, p.detail),
                None => self.operation(rng),
            };
            let session = 0x0100_4000 + (i as u64 % 64);
            let body = format!(
                "Time: {}, usecs:{time}\nSequence No{s}{seq:#x}\nReboot counter{s}{reboot:#x}\n\
                 Command Type(hex){s}CN_MGMT_CMD (0x0)\nOpcode{s}{op}\nSession Handle{s}{session:#x}\n\
                 Response{s}{resp}\nLog type{s}{log_type}\n{detail}",
                mdy(time)
            );
            out.push(Ev {
                time,
                hsm,
                reboot,
                seq,
                body,
            });
        }
        out
    }
}

/// Writes the logs; returns their paths.
pub fn generate(opts: &CloudHsmOptions) -> Result<Vec<PathBuf>> {
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
    let mut rng = Rng::new(opts.seed ^ 0xC10D_4A5D);
    let clusters = opts.clusters.max(1);
    let per_month = opts.events / clusters as u64 / opts.months.max(1) as u64;
    let overlap = opts.overlap_hours as i64 * 3_600_000_000;
    if opts.manifest.is_some() && opts.months < 5 {
        return Err(Error::Usage(
            "--incidents needs at least 5 months (incidents are judged against history)".into(),
        ));
    }
    let mut incident_rng = Rng::new(opts.seed ^ 0x1BAD_5EED);
    let mut manifest = Vec::new();
    let mut paths = Vec::new();
    for ci in 0..clusters {
        let mut c = Cluster::new(&mut rng);
        let mut planted = match opts.manifest {
            Some(_) => {
                let (p, m) = plant(&c, &mut incident_rng, ci, opts.months, &month_start);
                manifest.extend(m);
                p
            }
            None => Vec::new(),
        };
        let mut next: Option<Vec<Ev>> = None;
        for k in 0..opts.months {
            let (s, e) = (month_start(k), month_start(k + 1));
            let this = next
                .take()
                .unwrap_or_else(|| c.month(&mut rng, (s, e), per_month, &mut planted));
            let following = (k + 1 < opts.months)
                .then(|| c.month(&mut rng, (e, month_start(k + 2)), per_month, &mut planted));
            let head = following.as_ref().map_or(&[][..], |f| {
                let n = f.iter().take_while(|ev| ev.time < e + overlap).count();
                &f[..n]
            });
            let evs: Vec<&Ev> = this.iter().chain(head).collect();
            let (yy, mm, _) = civil_from_days(s / MICROS_PER_DAY);
            let stem = format!("{}-{yy:04}-{mm:02}", c.id);
            paths.extend(write_month(&opts.out, &stem, opts.form, &c, &evs)?);
            next = following;
        }
    }
    if let Some(path) = &opts.manifest {
        let text = serde_json::to_string_pretty(&manifest)? + "\n";
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    }
    Ok(paths)
}

/// The incidents planted in cluster `ci` (the `ci`th), each in its own month, and their
/// manifest entries.
fn plant(
    c: &Cluster,
    rng: &mut Rng,
    ci: u32,
    months: u32,
    month_start: &dyn Fn(u32) -> i64,
) -> (Vec<Planted>, Vec<Incident>) {
    const H: i64 = 3_600_000_000;
    const M: i64 = 60_000_000;
    const OK: &str = "0:HSM Return: SUCCESS";
    let s = c.sep;
    let user = |name: &str, ty: &str| format!("User Name{s}{name}\nUser Type{s}{ty}");
    let key = |h: u64| format!("Priv/Secret Key Handle{s}{h}\nPublic Key Handle{s}0");
    let op =
        |time: i64, op: &'static str, resp: &str, log_type: &'static str, detail: String| Planted {
            time,
            hsm: 0,
            op,
            resp: resp.to_string(),
            log_type,
            detail,
        };
    let login = |time: i64, name: &str, ty: &str, ok: bool| {
        let resp = if ok {
            OK
        } else {
            "163:HSM Error: RET_USER_LOGIN_FAILURE"
        };
        op(
            time,
            "CN_LOGIN (0xd)",
            resp,
            "MGMT_USER_DETAILS_LOG (2)",
            user(name, ty),
        )
    };
    const CU: &str = "CN_CRYPTO_USER (1)";
    const CO: &str = "CN_CRYPTO_OFFICER (2)";
    const KEY_LOG: &str = "MGMT_KEY_DETAILS_LOG (1)";
    let span = months.saturating_sub(3).max(1);
    let mut planted = Vec::new();
    let mut manifest = Vec::new();
    for (j, kind) in [
        "brute_force",
        "zeroize",
        "new_officer",
        "mass_destroy",
        "dormant_key",
    ]
    .iter()
    .enumerate()
    {
        let start = month_start(1 + (j as u32 + 2 * ci) % span);
        let day = |d: i64| start + d * MICROS_PER_DAY;
        let mut new = Vec::new();
        let mut keys = Vec::new();
        let (actor, expect): (Option<String>, &[&str]) = match *kind {
            "brute_force" => {
                // 25 wrong passwords for a crypto user in four minutes at night, then a login.
                let at = day(11) + 3 * H + 7 * M;
                for i in 0..25 {
                    new.push(login(at + i * 9_000_000, "app_cu2", CU, false));
                }
                new.push(login(at + 25 * 9_000_000 + M, "app_cu2", CU, true));
                (Some("app_cu2".into()), &["failed_login_burst", "off_hours"])
            }
            "zeroize" => {
                let at = day(14) + 23 * H + 31 * M;
                new.push(login(at, "admin", CO, true));
                new.push(op(
                    at + M,
                    "CN_ZEROIZE (0x27)",
                    OK,
                    "MGMT_USER_DETAILS_LOG (2)",
                    user("admin", CO),
                ));
                (Some("admin".into()), &["partition_admin", "off_hours"])
            }
            "new_officer" => {
                // The officer adds a second crypto officer, who logs in and works.
                let at = day(16) + 10 * H;
                let name = format!("officer{}", 7 + ci);
                new.push(op(
                    at,
                    "CN_CREATE_CO (0x4)",
                    OK,
                    "MGMT_USER_DETAILS_LOG (2)",
                    user(&name, CO),
                ));
                new.push(login(at + 5 * M, &name, CO, true));
                (Some(name), &["pin_change", "new_actor"])
            }
            "mass_destroy" => {
                // Fifteen keys made over the month, destroyed within fifteen minutes.
                let at = day(20) + 15 * H;
                for i in 0..15 {
                    let h = 900_000 + ci as u64 * 1000 + j as u64 * 100 + i as u64;
                    new.push(op(
                        day(2 + i) + 9 * H,
                        "CN_GENERATE_KEY (0x17)",
                        OK,
                        KEY_LOG,
                        key(h),
                    ));
                    new.push(op(
                        at + i * M,
                        "CN_DESTROY_OBJECT (0x11)",
                        OK,
                        KEY_LOG,
                        key(h),
                    ));
                    keys.push(h.to_string());
                }
                (None, &["mass_key_destruction"])
            }
            "dormant_key" => {
                // A key made early in the month and first used 80 days later.
                let h = 900_000 + ci as u64 * 1000 + j as u64 * 100;
                new.push(op(
                    day(2) + 9 * H,
                    "CN_GENERATE_KEY (0x17)",
                    OK,
                    KEY_LOG,
                    key(h),
                ));
                new.push(op(
                    day(82) + 11 * H,
                    "CN_WRAP_KEY (0x1a)",
                    OK,
                    KEY_LOG,
                    key(h),
                ));
                keys.push(h.to_string());
                (None, &["dormant_key"])
            }
            _ => unreachable!("every planted kind is handled"),
        };
        for p in &mut new {
            p.hsm = rng.below(2) as usize;
        }
        // Only the events the incident is about: not the key creations before it.
        let about: Vec<i64> = new
            .iter()
            .filter(|p| !(p.op.starts_with("CN_GENERATE_KEY") && *kind != "zeroize"))
            .map(|p| p.time)
            .collect();
        manifest.push(Incident {
            kind: kind.to_string(),
            origin: "planted".into(),
            tenant: c.id.clone(),
            actor,
            client_ips: Vec::new(),
            keys,
            start: rfc3339(about.iter().copied().min().unwrap_or(start)),
            end: rfc3339(about.iter().copied().max().unwrap_or(start)),
            expect: expect.iter().map(|s| s.to_string()).collect(),
        });
        planted.extend(new);
    }
    (planted, manifest)
}

fn write_month(
    dir: &Path,
    stem: &str,
    form: CloudHsmForm,
    c: &Cluster,
    evs: &[&Ev],
) -> Result<Vec<PathBuf>> {
    let write = |name: String, bytes: &[u8], gz: bool| -> Result<PathBuf> {
        let path = dir.join(name);
        let io = |e| Error::io(&path, e);
        if gz {
            let f = std::fs::File::create(&path).map_err(io)?;
            let mut g = flate2::write::GzEncoder::new(f, flate2::Compression::default());
            g.write_all(bytes).map_err(io)?;
            g.finish().map_err(io)?;
        } else {
            std::fs::write(&path, bytes).map_err(io)?;
        }
        Ok(path)
    };
    let group = format!("/aws/cloudhsm/{}", c.id);
    let event_id = |e: &Ev| format!("{:020}{:012}{:024}", e.time / 1000, e.reboot, e.seq);
    match form {
        CloudHsmForm::Subscription => {
            let mut out = json!({
                "messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
                "logStream": "", "subscriptionFilters": [],
                "logEvents": [{"id": "", "timestamp": evs.first().map_or(0, |e| e.time / 1000),
                               "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]
            })
            .to_string();
            // Deliveries of up to 100 events of one stream each, in the order of their
            // first event, as a month of a Firehose bucket's objects lists them: the
            // cluster's streams interleaved in time, not one HSM's month after another's.
            let mut deliveries: Vec<(i64, usize, String)> = Vec::new();
            for (h, hsm) in c.hsms.iter().enumerate() {
                let mine: Vec<&&Ev> = evs.iter().filter(|e| e.hsm == h).collect();
                for batch in mine.chunks(100) {
                    let events: Vec<_> = batch
                        .iter()
                        .map(|e| json!({"id": event_id(e), "timestamp": e.time / 1000, "message": e.body}))
                        .collect();
                    let doc = json!({
                        "messageType": "DATA_MESSAGE", "owner": "123456789012",
                        "logGroup": group, "logStream": hsm,
                        "subscriptionFilters": ["cloudhsm-to-firehose"], "logEvents": events
                    });
                    deliveries.push((batch[0].time, h, doc.to_string()));
                }
            }
            deliveries.sort_by_key(|d| (d.0, d.1));
            for (_, _, doc) in deliveries {
                out.push_str(&doc);
            }
            Ok(vec![write(
                format!("{stem}.firehose.gz"),
                out.as_bytes(),
                true,
            )?])
        }
        CloudHsmForm::FilterLogEvents => {
            let events: Vec<_> = evs
                .iter()
                .map(|e| {
                    json!({"logStreamName": c.hsms[e.hsm], "timestamp": e.time / 1000,
                           "message": e.body, "ingestionTime": e.time / 1000 + 700,
                           "eventId": event_id(e)})
                })
                .collect();
            let doc =
                serde_json::to_vec_pretty(&json!({"events": events, "searchedLogStreams": []}))?;
            Ok(vec![write(format!("{stem}.json"), &doc, false)?])
        }
        CloudHsmForm::S3Export | CloudHsmForm::Text => {
            let mut paths = Vec::new();
            for (h, hsm) in c.hsms.iter().enumerate() {
                let mut text = String::new();
                for e in evs.iter().filter(|e| e.hsm == h) {
                    if form == CloudHsmForm::S3Export {
                        text.push_str(&format!("{} {}\n", iso_ms(e.time), e.body));
                    } else {
                        text.push_str(&format!("{}\n\n", e.body));
                    }
                }
                let gz = form == CloudHsmForm::S3Export;
                let name = format!("{stem}-{hsm}.{}", if gz { "gz" } else { "log" });
                paths.push(write(name, text.as_bytes(), gz)?);
            }
            Ok(paths)
        }
    }
}
