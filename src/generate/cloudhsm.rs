//! Writes realistic AWS CloudHSM audit logs of any size (`generate --vendor aws-cloudhsm`),
//! in any of the forms CloudWatch Logs hands them out, for tests and benchmarks.
//!
//! Per cluster: two HSMs (log streams) numbering their events without gaps from a reboot
//! counter on (a rare reboot starts the numbers again), a crypto officer and a few crypto
//! users logging in and out (a few wrong passwords), keys generated, synchronised to the
//! other HSM, wrapped, shared and now and then destroyed, the odd user change. One file
//! per cluster and month (per HSM too, for the forms that hold one stream), each reaching
//! a few hours into the next month as overlapping exports do. Deterministic for a seed.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::Rng;
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
                let op = if rng.chance(0.3) {
                    "CN_GENERATE_KEY_PAIR (0x19)"
                } else {
                    "CN_GENERATE_KEY (0x17)"
                };
                (op, OK.into(), "MGMT_KEY_DETAILS_LOG (1)", key(h))
            }
            67..=88 if !self.keys.is_empty() => {
                // Keys are made to be used: half the uses go to the 8 newest keys, so a
                // new key is first used within days (not flagged as dormant).
                let n = self.keys.len() as u64;
                let i = if rng.chance(0.5) {
                    n - 1 - rng.below(n.min(8))
                } else {
                    rng.below(n)
                };
                let h = self.keys[i as usize];
                let op = *[
                    "CN_WRAP_KEY (0x1a)",
                    "CN_NIST_AES_WRAP (0x1e)",
                    "CN_SHARE_OBJECT (0x12)",
                    "CN_EXTRACT_MASKED_OBJECT_USER (0xf0)",
                    "CN_INSERT_MASKED_OBJECT_USER (0xf1)",
                ]
                .get(rng.below(5) as usize)
                .unwrap_or(&"CN_WRAP_KEY (0x1a)");
                (op, OK.into(), "MGMT_KEY_DETAILS_LOG (1)", key(h))
            }
            89..=92 if !self.keys.is_empty() => {
                let i = rng.below(self.keys.len() as u64) as usize;
                // `remove`: the keys stay in creation order (the newest last).
                let h = self.keys.remove(i);
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

    /// `n` events between `from` and `to`, numbered per HSM in time order.
    fn month(&mut self, rng: &mut Rng, from: i64, to: i64, n: u64) -> Vec<Ev> {
        let mut times: Vec<(i64, usize)> = (0..n)
            .map(|_| {
                let t = from + rng.below((to - from).max(1) as u64) as i64;
                (t, rng.below(2) as usize)
            })
            .collect();
        times.sort_unstable();
        let s = self.sep;
        let mut out = Vec::with_capacity(times.len());
        for (i, (time, hsm)) in times.into_iter().enumerate() {
            if rng.chance(0.0005) {
                self.reboot[hsm] += 1;
                self.seq[hsm] = 0;
            }
            let (seq, reboot) = (self.seq[hsm], self.reboot[hsm]);
            self.seq[hsm] += 1;
            let (op, resp, log_type, detail) = self.operation(rng);
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
    let mut paths = Vec::new();
    for _ in 0..clusters {
        let mut c = Cluster::new(&mut rng);
        let mut next: Option<Vec<Ev>> = None;
        for k in 0..opts.months {
            let (s, e) = (month_start(k), month_start(k + 1));
            let this = next
                .take()
                .unwrap_or_else(|| c.month(&mut rng, s, e, per_month));
            let following =
                (k + 1 < opts.months).then(|| c.month(&mut rng, e, month_start(k + 2), per_month));
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
    Ok(paths)
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
            // Deliveries of up to 100 events of one stream each.
            for (h, hsm) in c.hsms.iter().enumerate() {
                let mine: Vec<&&Ev> = evs.iter().filter(|e| e.hsm == h).collect();
                for batch in mine.chunks(100) {
                    let events: Vec<_> = batch
                        .iter()
                        .map(|e| json!({"id": event_id(e), "timestamp": e.time / 1000, "message": e.body}))
                        .collect();
                    out.push_str(
                        &json!({
                            "messageType": "DATA_MESSAGE", "owner": "123456789012",
                            "logGroup": group, "logStream": hsm,
                            "subscriptionFilters": ["cloudhsm-to-firehose"], "logEvents": events
                        })
                        .to_string(),
                    );
                }
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
