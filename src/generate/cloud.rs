//! What the cloud key-service generators ([`super::azure`], [`super::gcp`],
//! [`super::vault`]) share: the period cut into hours, each tenant's estate and its
//! activity as vendor-neutral [`Act`]s, and the small JSON writer they render with.
//!
//! A tenant's estate: a few key containers (vaults, key rings, transit mounts), a handful
//! of keys in each, created during the period (the first ones in its first days), some
//! rotated, a few deleted; a few applications using the keys of their own container many
//! times a day, from a small stable pool of addresses; a few people doing administration in
//! office hours (weekdays 08:00-18:00 UTC); a few denied calls and failed logins from
//! addresses nobody else uses. Only the estate and how many events each hour holds are
//! planned up front: one tenant's hour is drawn from a generator of its own (seeded by the
//! seed, the tenant and the hour), so a vendor may write the hours in any order (newest
//! first, too) and get the same events, and memory holds one hour at a time whatever the
//! number of events.

use std::fmt::Write as _;

use super::{next_workday, weekday, Rng};
use crate::time::{civil_from_days, days_from_civil};
use crate::{Error, Result};

pub const SECOND: i64 = 1_000_000_000;
pub const MILLI: i64 = 1_000_000;
pub const HOUR: i64 = 3600 * SECOND;
pub const DAY: i64 = 24 * HOUR;

/// The months generated, as nanoseconds since the epoch.
pub struct Period {
    /// The start of each month and the end of the last: `months + 1` entries.
    pub months: Vec<i64>,
}

impl Period {
    /// `months` months from `start` (`YYYY-MM`).
    pub fn parse(start: &str, months: u32) -> Result<Period> {
        let (y, m) = start
            .split_once('-')
            .and_then(|(y, m)| Some((y.parse::<i64>().ok()?, m.parse::<u32>().ok()?)))
            .filter(|(y, m)| (1..=12).contains(m) && (1970..=2200).contains(y))
            .ok_or_else(|| Error::Usage(format!("--start {start:?} is not YYYY-MM")))?;
        let months = (0..=months.max(1) as i64)
            .map(|k| {
                let mi = m as i64 - 1 + k;
                days_from_civil(y + mi / 12, (mi % 12) as u32 + 1, 1) * DAY
            })
            .collect();
        Ok(Period { months })
    }

    pub fn start(&self) -> i64 {
        self.months[0]
    }

    pub fn end(&self) -> i64 {
        self.months[self.months.len() - 1]
    }

    pub fn hours(&self) -> usize {
        ((self.end() - self.start()) / HOUR) as usize
    }

    pub fn hour_start(&self, h: usize) -> i64 {
        self.start() + h as i64 * HOUR
    }

    /// The hours of month `k`.
    pub fn month_hours(&self, k: usize) -> std::ops::Range<usize> {
        let at = |t: i64| ((t - self.start()) / HOUR) as usize;
        at(self.months[k])..at(self.months[k + 1])
    }
}

/// Weekdays 08:00-18:00 UTC.
fn is_office(t: i64) -> bool {
    let h = t.rem_euclid(DAY) / HOUR;
    (1..=5).contains(&weekday(t.div_euclid(DAY))) && (8..18).contains(&h)
}

/// A time in office hours on the first workday on or after a time drawn in `[from, to)`,
/// if it falls in `[from, to)`.
fn office_time(rng: &mut Rng, from: i64, to: i64) -> Option<i64> {
    if to <= from {
        return None;
    }
    (0..16).find_map(|_| {
        let t = from + rng.below((to - from) as u64) as i64;
        let at =
            next_workday(t.div_euclid(DAY)) * DAY + 8 * HOUR + rng.below(10 * HOUR as u64) as i64;
        (from..to).contains(&at).then_some(at)
    })
}

/// What each cloud service logs of the common activity.
pub struct Profile {
    /// Key containers per tenant, at least and at most.
    pub containers: (u64, u64),
    /// Deleted keys are purged some days later (Azure's soft delete).
    pub purge: bool,
    /// Successful logins are logged (Vault): applications and people log in now and then
    /// (people mistype a password now and then too).
    pub logins: bool,
    /// A container's creation is logged, minutes before its first key (Cloud KMS key rings).
    pub container_created: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Encrypt,
    Sign,
    /// Wraps other keys (asymmetric decryption in Cloud KMS).
    Wrap,
    Mac,
}

/// How an application uses a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseOp {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Wrap,
    Unwrap,
    Mac,
    GetPublicKey,
}

pub struct Key {
    pub name: String,
    pub container: usize,
    pub purpose: Purpose,
    pub created: i64,
    /// Each makes a new version.
    pub rotations: Vec<i64>,
    pub deleted: Option<i64>,
    /// Brought in rather than made in the service.
    pub imported: bool,
    /// A 32-hex version id per version (Azure names versions so).
    pub versions: Vec<String>,
}

impl Key {
    pub fn live(&self, t: i64) -> bool {
        self.created <= t && self.deleted.is_none_or(|d| t < d)
    }

    /// The current version at `t`, from 0 (a rotation at `t` counts).
    pub fn version_at(&self, t: i64) -> usize {
        self.rotations.iter().filter(|&&r| r <= t).count()
    }
}

pub struct Container {
    /// The team it serves (`payments`): vendors name it from this.
    pub team: &'static str,
    pub keys: Vec<usize>,
}

/// An application or a person.
pub struct Principal {
    /// `payments-api`, `alice`.
    pub name: String,
    /// Directory object id / entity id (a uuid).
    pub oid: String,
    /// Application id (a uuid; for a person, the tool they use).
    pub appid: String,
    pub ips: Vec<String>,
    /// An application's container (a person's: 0, they administer all).
    pub container: usize,
    /// Which client the principal runs: an index into a vendor's list of user agents.
    pub agent: usize,
    weight: u64,
}

pub struct Tenant {
    /// `contoso`: vendors name the tenant's accounts, projects and directories from it.
    pub name: String,
    /// `contoso.com`: where its people's addresses are.
    pub domain: String,
    pub containers: Vec<Container>,
    pub keys: Vec<Key>,
    pub apps: Vec<Principal>,
    pub humans: Vec<Principal>,
    /// Addresses of failed logins: nobody of the tenant's uses them.
    pub strangers: Vec<String>,
    /// Key creations, rotations, deletions (and purges, container creations), in time order.
    lifecycle: Vec<Act>,
    /// Ordinary events per hour (lifecycle events come on top).
    counts: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    App(usize),
    Human(usize),
    /// A failed login from the tenant's `strangers[i]`.
    Stranger(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Use(usize, UseOp),
    GetKey(usize),
    ListKeys,
    CreateKey(usize),
    RotateKey(usize),
    DeleteKey(usize),
    PurgeKey(usize),
    CreateContainer,
    /// A secret read (applications, people) or written (people).
    Secret {
        write: bool,
    },
    /// An administrative call of the vendor's own (role assignments, backups, policies...):
    /// the vendor chooses from [`Act::pick`].
    Admin,
    Login,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The caller lacks the right (403, PERMISSION_DENIED, permission denied).
    Denied,
    /// A deleted key asked for.
    NotFound,
    /// A login that failed (401, invalid credentials).
    BadCredentials,
}

/// One call to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Act {
    /// Nanoseconds since the epoch.
    pub time: i64,
    pub container: usize,
    pub who: Who,
    pub what: What,
    pub outcome: Outcome,
    /// A random number for the vendor's own choices (which secret, which admin call).
    pub pick: u32,
}

const NAMES: [&str; 8] = [
    "contoso",
    "fabrikam",
    "northwind",
    "tailspin",
    "woodgrove",
    "adatum",
    "litware",
    "proseware",
];
const TEAMS: [&str; 10] = [
    "payments",
    "billing",
    "identity",
    "backup",
    "analytics",
    "orders",
    "ledger",
    "hr",
    "crm",
    "edge",
];
const PEOPLE: [&str; 10] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
];
/// Key purposes in turn (each at most twice in six keys) and their names.
const PURPOSES: [Purpose; 6] = [
    Purpose::Wrap,
    Purpose::Encrypt,
    Purpose::Sign,
    Purpose::Encrypt,
    Purpose::Mac,
    Purpose::Sign,
];
fn key_word(p: Purpose, nth: usize) -> &'static str {
    let words: [&str; 2] = match p {
        Purpose::Encrypt => ["dek", "pii"],
        Purpose::Sign => ["signing", "jwt"],
        Purpose::Wrap => ["kek", "tde"],
        Purpose::Mac => ["hmac", "token-mac"],
    };
    words[nth % 2]
}

impl Tenant {
    fn new(rng: &mut Rng, index: usize, period: &Period, profile: &Profile) -> Tenant {
        let base = NAMES[index % NAMES.len()];
        let name = match index / NAMES.len() {
            0 => base.to_string(),
            k => format!("{base}{}", k + 1),
        };
        let domain = format!("{name}.com");
        let net = 16 + index % 200;
        let (lo, hi) = profile.containers;
        let nc = (lo + rng.below(hi - lo + 1)) as usize;
        let first = rng.below(TEAMS.len() as u64) as usize;
        let mut containers = Vec::new();
        let mut keys = Vec::new();
        let mut apps = Vec::new();
        for c in 0..nc {
            let team = TEAMS[(first + 3 * c) % TEAMS.len()];
            let turn = rng.below(6) as usize;
            let n = 3 + rng.below(4) as usize;
            let mut idx = Vec::new();
            for j in 0..n {
                let purpose = PURPOSES[(turn + j) % 6];
                let nth = (0..j)
                    .filter(|&i| PURPOSES[(turn + i) % 6] == purpose)
                    .count();
                idx.push(keys.len());
                keys.push(Key {
                    name: format!("{team}-{}", key_word(purpose, nth)),
                    container: c,
                    purpose,
                    created: 0,
                    rotations: Vec::new(),
                    deleted: None,
                    imported: rng.chance(0.15),
                    versions: Vec::new(),
                });
            }
            containers.push(Container { team, keys: idx });
            for role in ["api", "worker"].iter().take(1 + rng.below(2) as usize) {
                apps.push(Principal {
                    name: format!("{team}-{role}"),
                    oid: rng.uuid(),
                    appid: rng.uuid(),
                    ips: (0..2 + rng.below(2))
                        .map(|_| format!("10.{net}.{}.{}", 10 + c, 4 + rng.below(250)))
                        .collect(),
                    container: c,
                    agent: rng.below(4) as usize,
                    weight: if apps.is_empty() { 6 } else { 1 + rng.below(4) },
                });
            }
        }
        let first = rng.below(PEOPLE.len() as u64) as usize;
        let humans = (0..2 + rng.below(3) as usize)
            .map(|i| Principal {
                name: PEOPLE[(first + i) % PEOPLE.len()].to_string(),
                oid: rng.uuid(),
                appid: rng.uuid(),
                ips: (0..1 + rng.below(2))
                    .map(|_| format!("10.{net}.200.{}", 4 + rng.below(250)))
                    .collect(),
                container: 0,
                agent: rng.below(4) as usize,
                weight: 1,
            })
            .collect::<Vec<_>>();
        let strangers = ["198.51.100", "203.0.113", "192.0.2"]
            .iter()
            .map(|net| format!("{net}.{}", 1 + rng.below(254)))
            .collect();
        let mut t = Tenant {
            name,
            domain,
            containers,
            keys,
            apps,
            humans,
            strangers,
            lifecycle: Vec::new(),
            counts: Vec::new(),
        };
        t.plan_keys(rng, period, profile);
        t
    }

    /// When each key is made, rotated, deleted (and purged); the acts that log it.
    fn plan_keys(&mut self, rng: &mut Rng, period: &Period, profile: &Profile) {
        let (start, end) = (period.start(), period.end());
        let early = (start + 4 * DAY).min(end);
        let later = start + (end - start) * 7 / 10;
        let people = self.humans.len() as u64;
        let mut acts = Vec::new();
        let mut act = |rng: &mut Rng, time, container, what| {
            acts.push(Act {
                time,
                container,
                who: Who::Human(rng.below(people) as usize),
                what,
                outcome: Outcome::Ok,
                pick: rng.next_u64() as u32,
            })
        };
        let mut any_deleted = false;
        for (c, container) in self.containers.iter().enumerate() {
            let mut first_created = end;
            for (j, &k) in container.keys.iter().enumerate() {
                let key = &mut self.keys[k];
                let window = if j < 2 { early } else { later.max(early) };
                key.created = office_time(rng, start, window)
                    .unwrap_or(next_workday(start.div_euclid(DAY)) * DAY + 9 * HOUR);
                first_created = first_created.min(key.created);
                key.rotations = (0..rng.below(3))
                    .filter_map(|_| office_time(rng, key.created + 7 * DAY, end))
                    .collect();
                key.rotations.sort_unstable();
                // A few keys are deleted (at least one a tenant, if there is time).
                let delete = rng.chance(0.12) || (c == 0 && j == 2 && !any_deleted);
                if delete {
                    key.deleted = office_time(rng, key.created + 14 * DAY, end);
                }
                if let Some(d) = key.deleted {
                    any_deleted = true;
                    key.rotations.retain(|&r| r < d);
                }
                key.versions = (0..=key.rotations.len()).map(|_| rng.hex(32)).collect();
                act(rng, key.created, c, What::CreateKey(k));
                for &r in &key.rotations {
                    act(rng, r, c, What::RotateKey(k));
                }
                if let Some(d) = key.deleted {
                    act(rng, d, c, What::DeleteKey(k));
                    let purge = profile
                        .purge
                        .then(|| office_time(rng, d + 3 * DAY, (d + 10 * DAY).min(end)))
                        .flatten();
                    if let Some(p) = purge {
                        act(rng, p, c, What::PurgeKey(k));
                    }
                }
            }
            if profile.container_created {
                // Minutes before, in the same office hours.
                let opening = first_created.div_euclid(DAY) * DAY + 8 * HOUR;
                let at = first_created - (5 + rng.below(55) as i64) * 60 * SECOND;
                act(rng, at.max(opening).max(start), c, What::CreateContainer);
            }
        }
        acts.sort_by_key(|a| a.time);
        self.lifecycle = acts;
    }

    /// How many ordinary events each hour holds: `n` in all, more in office hours.
    fn plan_hours(&mut self, rng: &mut Rng, period: &Period, n: u64) {
        let weights: Vec<u64> = (0..period.hours())
            .map(|h| {
                let t = period.hour_start(h);
                let base = if is_office(t) {
                    12
                } else if (1..=5).contains(&weekday(t.div_euclid(DAY))) {
                    4
                } else {
                    3
                };
                base * (75 + rng.below(51))
            })
            .collect();
        let total: u128 = weights.iter().map(|&w| w as u128).sum::<u128>().max(1);
        let (mut acc, mut before) = (0u128, 0u64);
        self.counts = weights
            .iter()
            .map(|&w| {
                acc += w as u128;
                let upto = (n as u128 * acc / total) as u64;
                let c = upto - before;
                before = upto;
                c as u32
            })
            .collect();
    }

    /// Live keys of container `c` at `t`.
    fn live(&self, c: usize, t: i64) -> impl Iterator<Item = usize> + '_ {
        self.containers[c]
            .keys
            .iter()
            .copied()
            .filter(move |&k| self.keys[k].live(t))
    }

    /// A key of container `c` live at `t`, chosen by `pick`.
    pub fn live_key(&self, c: usize, t: i64, pick: u32) -> Option<usize> {
        let n = self.live(c, t).count();
        (n > 0)
            .then(|| pick as usize % n)
            .and_then(|i| self.live(c, t).nth(i))
    }

    /// A key of container `c` deleted in the three days before `t`.
    fn lately_deleted(&self, c: usize, t: i64) -> Option<usize> {
        self.containers[c].keys.iter().copied().find(|&k| {
            self.keys[k]
                .deleted
                .is_some_and(|d| d <= t && t - d < 3 * DAY)
        })
    }

    fn use_op(&self, rng: &mut Rng, k: usize) -> UseOp {
        let r = rng.below(100);
        match self.keys[k].purpose {
            Purpose::Encrypt if r < 55 => UseOp::Decrypt,
            Purpose::Encrypt => UseOp::Encrypt,
            Purpose::Sign if r < 85 => UseOp::Sign,
            Purpose::Sign if r < 95 => UseOp::Verify,
            Purpose::Sign => UseOp::GetPublicKey,
            Purpose::Wrap if r < 60 => UseOp::Unwrap,
            Purpose::Wrap => UseOp::Wrap,
            Purpose::Mac => UseOp::Mac,
        }
    }

    /// An application at work; `last` is the time of the one before (calls come in
    /// bursts, so some overlap).
    fn app_act(&self, rng: &mut Rng, start: i64, last: &mut i64, profile: &Profile) -> Act {
        let sum: u64 = self.apps.iter().map(|a| a.weight).sum();
        let mut r = rng.below(sum);
        let a = self
            .apps
            .iter()
            .position(|p| {
                let hit = r < p.weight;
                r = r.saturating_sub(p.weight);
                hit
            })
            .unwrap_or(0);
        let time = if rng.chance(0.3) {
            (*last + rng.below(3 * MILLI as u64) as i64).min(start + HOUR - 1)
        } else {
            start + rng.below(HOUR as u64) as i64
        };
        *last = time;
        let c = self.apps[a].container;
        let mut act = Act {
            time,
            container: c,
            who: Who::App(a),
            what: What::ListKeys,
            outcome: Outcome::Ok,
            pick: rng.next_u64() as u32,
        };
        if profile.logins && rng.chance(0.02) {
            act.what = What::Login;
        } else if rng.chance(0.02) {
            act.what = What::Secret { write: false };
        } else if let Some(k) = self.lately_deleted(c, time).filter(|_| rng.chance(0.03)) {
            // A deleted key still asked for by an application not told yet.
            act.what = What::Use(k, self.use_op(rng, k));
            act.outcome = Outcome::NotFound;
        } else if let Some(k) = self.live_key(c, time, rng.next_u64() as u32) {
            act.what = if rng.chance(0.04) {
                What::GetKey(k)
            } else {
                What::Use(k, self.use_op(rng, k))
            };
        }
        act
    }

    /// A person at work (office hours).
    fn human_act(&self, rng: &mut Rng, start: i64, profile: &Profile) -> Act {
        let h = rng.below(self.humans.len() as u64) as usize;
        let c = rng.below(self.containers.len() as u64) as usize;
        let time = start + rng.below(HOUR as u64) as i64;
        let mut act = Act {
            time,
            container: c,
            who: Who::Human(h),
            what: What::ListKeys,
            outcome: Outcome::Ok,
            pick: rng.next_u64() as u32,
        };
        match rng.below(100) {
            0..=9 if profile.logins => {
                act.what = What::Login;
                if rng.chance(0.04) {
                    act.outcome = Outcome::BadCredentials;
                }
            }
            0..=39 => {
                if let Some(k) = self.lately_deleted(c, time).filter(|_| rng.chance(0.1)) {
                    act.what = What::GetKey(k);
                    act.outcome = Outcome::NotFound;
                } else if let Some(k) = self.live_key(c, time, rng.next_u64() as u32) {
                    act.what = What::GetKey(k);
                }
            }
            40..=59 => {}
            60..=74 => {
                act.what = What::Secret {
                    write: rng.chance(0.3),
                }
            }
            _ => act.what = What::Admin,
        }
        act
    }

    /// A call the caller has no right to: mostly an application reaching into another
    /// container, now and then a person (in office hours).
    fn denied_act(&self, rng: &mut Rng, start: i64, office: bool) -> Act {
        let time = start + rng.below(HOUR as u64) as i64;
        let nc = self.containers.len() as u64;
        let pick = rng.next_u64() as u32;
        if office && rng.chance(0.2) {
            let h = rng.below(self.humans.len() as u64) as usize;
            let c = rng.below(nc) as usize;
            let what = match self.live_key(c, time, rng.next_u64() as u32) {
                Some(k) if rng.chance(0.5) => What::DeleteKey(k),
                _ => What::ListKeys,
            };
            return Act {
                time,
                container: c,
                who: Who::Human(h),
                what,
                outcome: Outcome::Denied,
                pick,
            };
        }
        let a = rng.below(self.apps.len() as u64) as usize;
        let own = self.apps[a].container;
        let c = if nc > 1 {
            (own + 1 + rng.below(nc - 1) as usize) % nc as usize
        } else {
            own
        };
        let what = match self.live_key(c, time, rng.next_u64() as u32) {
            Some(k) => What::Use(k, self.use_op(rng, k)),
            None => What::ListKeys,
        };
        Act {
            time,
            container: c,
            who: Who::App(a),
            what,
            outcome: Outcome::Denied,
            pick,
        }
    }
}

/// The tenants and what each does when: a tenant's hour is [`Plan::acts`].
pub struct Plan {
    pub period: Period,
    pub tenants: Vec<Tenant>,
    profile: Profile,
    seed: u64,
}

impl Plan {
    /// `events` over all tenants and months (lifecycle events included; a tenant with fewer
    /// events than key creations and rotations still gets those).
    pub fn new(
        events: u64,
        tenants: u32,
        (start, months): (&str, u32),
        seed: u64,
        profile: Profile,
    ) -> Result<Plan> {
        let period = Period::parse(start, months)?;
        let nt = tenants.max(1) as usize;
        // Uneven tenants: weights 3:2:1:1...
        let weight = |i: usize| [3, 2].get(i).copied().unwrap_or(1u64);
        let wsum: u64 = (0..nt).map(weight).sum();
        let share = |i: usize| {
            let n = events * weight(i) / wsum;
            // The rounding's remainder goes to the first tenant: the total is exact.
            if i == 0 {
                n + events - (0..nt).map(|j| events * weight(j) / wsum).sum::<u64>()
            } else {
                n
            }
        };
        let tenants = (0..nt)
            .map(|i| {
                let mut rng =
                    Rng::new(seed ^ 0xC1_0D5E ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
                let mut t = Tenant::new(&mut rng, i, &period, &profile);
                let ordinary = share(i).saturating_sub(t.lifecycle.len() as u64);
                t.plan_hours(&mut rng, &period, ordinary);
                t
            })
            .collect();
        Ok(Plan {
            period,
            tenants,
            profile,
            seed,
        })
    }

    /// A generator for tenant `t`'s hour `h`, one per `salt`: the same whatever the order
    /// the hours are written in.
    pub fn rng(&self, t: usize, h: usize, salt: u64) -> Rng {
        let mut r = Rng::new(self.seed ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let a = r.next_u64() ^ (t as u64).wrapping_mul(0xA24B_AED4_963E_E407);
        Rng::new(Rng::new(a ^ (h as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25)).next_u64())
    }

    /// What tenant `ti` does in hour `h`, in time order.
    pub fn acts(&self, ti: usize, h: usize) -> Vec<Act> {
        let t = &self.tenants[ti];
        let start = self.period.hour_start(h);
        let mut rng = self.rng(ti, h, 1);
        let n = t.counts[h] as usize;
        let lo = t.lifecycle.partition_point(|a| a.time < start);
        let hi = t.lifecycle.partition_point(|a| a.time < start + HOUR);
        let mut out = Vec::with_capacity(n + hi - lo);
        let office = is_office(start);
        // An hour's failed logins come from one address.
        let stranger = rng.below(t.strangers.len() as u64) as usize;
        let mut last = start + rng.below(HOUR as u64) as i64;
        for _ in 0..n {
            let r = rng.below(10_000);
            out.push(if r < 10 {
                Act {
                    time: start + rng.below(HOUR as u64) as i64,
                    container: rng.below(t.containers.len() as u64) as usize,
                    who: Who::Stranger(stranger),
                    what: What::Login,
                    outcome: Outcome::BadCredentials,
                    pick: rng.next_u64() as u32,
                }
            } else if r < 40 {
                t.denied_act(&mut rng, start, office)
            } else if office && r < 540 {
                t.human_act(&mut rng, start, &self.profile)
            } else {
                t.app_act(&mut rng, start, &mut last, &self.profile)
            });
        }
        out.extend_from_slice(&t.lifecycle[lo..hi]);
        out.sort_by_key(|a| a.time);
        out
    }

    /// All events of all tenants (what `--events` asked for, or more when it was too few
    /// for the keys' lifecycles).
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.tenants
            .iter()
            .map(|t| t.counts.iter().map(|&c| c as u64).sum::<u64>() + t.lifecycle.len() as u64)
            .sum()
    }
}

/// `YYYY-MM-DDTHH:MM:SS.f…Z` with `digits` fractional digits (at most 9).
pub fn utc(t: i64, digits: u32) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let ns = t.rem_euclid(DAY);
    let s = ns / SECOND;
    let frac = ns % SECOND / 10i64.pow(9 - digits);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:0w$}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        w = digits as usize
    )
}

/// `(YYYY, MM, DD, HH)` of a time.
pub fn ymdh(t: i64) -> (i64, u32, u32, i64) {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    (y, m, d, t.rem_euclid(DAY) / HOUR)
}

/// Writes `s` as a JSON string, quoted and escaped.
pub fn quote(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        run = i + c.len_utf8();
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// A JSON object written straight into a string, its members in the order given.
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub fn open(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        quote(self.out, k);
        self.out.push(':');
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        quote(self.out, v);
        self
    }

    /// A number, `true`, `false`, or any JSON already written.
    pub fn raw(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }

    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj)) -> &mut Self {
        self.key(k);
        let mut o = Obj::open(self.out);
        f(&mut o);
        o.close();
        self
    }

    /// An array of strings.
    pub fn strs(&mut self, k: &str, v: &[&str]) -> &mut Self {
        self.key(k);
        self.out.push('[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            quote(self.out, s);
        }
        self.out.push(']');
        self
    }

    /// An array of objects, one written by each call of `f`.
    pub fn objs(&mut self, k: &str, n: usize, mut f: impl FnMut(usize, &mut Obj)) -> &mut Self {
        self.key(k);
        self.out.push('[');
        for i in 0..n {
            if i > 0 {
                self.out.push(',');
            }
            let mut o = Obj::open(self.out);
            f(i, &mut o);
            o.close();
        }
        self.out.push(']');
        self
    }

    pub fn close(self) {
        self.out.push('}');
    }
}

/// Re-indents compact JSON (no white space outside strings, as [`Obj`] writes it) as
/// Python's `json.dumps(indent=2)` does, gcloud's `--format=json`, from `depth` levels in.
pub fn pretty(json: &str, depth: usize, out: &mut Vec<u8>) {
    let b = json.as_bytes();
    let (mut depth, mut in_str, mut esc, mut empty) = (depth, false, false, false);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.resize(out.len() + 2 * depth, b' ');
    };
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                let close = if c == b'{' { b'}' } else { b']' };
                if b.get(i + 1) == Some(&close) {
                    empty = true;
                } else {
                    depth += 1;
                    newline(out, depth);
                }
            }
            b'}' | b']' => {
                if !std::mem::take(&mut empty) {
                    depth -= 1;
                    newline(out, depth);
                }
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(c),
        }
    }
}

/// Every file under `dir` and its bytes, by path relative to `dir`.
#[cfg(test)]
pub fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, Vec<u8>>,
    ) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(events: u64) -> Plan {
        let profile = Profile {
            containers: (2, 4),
            purge: true,
            logins: true,
            container_created: true,
        };
        Plan::new(events, 3, ("2025-01", 3), 7, profile).unwrap()
    }

    #[test]
    fn the_hours_hold_the_events_asked_for_and_keys_are_used_only_while_they_live() {
        let p = plan(20_000);
        assert_eq!(p.total(), 20_000);
        let (mut ops, mut people_off_hours) = (0, 0);
        for (ti, t) in p.tenants.iter().enumerate() {
            assert!(t.keys.iter().any(|k| k.deleted.is_some()), "{}", t.name);
            assert!(t.keys.iter().any(|k| !k.rotations.is_empty()), "{}", t.name);
            for h in 0..p.period.hours() {
                for a in p.acts(ti, h) {
                    if let (What::Use(k, _), Outcome::Ok) = (a.what, a.outcome) {
                        assert!(t.keys[k].live(a.time));
                        ops += 1;
                    }
                    if matches!(a.who, Who::Human(_)) && !is_office(a.time) {
                        people_off_hours += 1;
                    }
                }
            }
        }
        assert!(ops > 15_000, "{ops}");
        assert_eq!(people_off_hours, 0);
    }

    #[test]
    fn an_hour_is_the_same_whatever_order_the_hours_are_drawn_in() {
        let p = plan(5_000);
        let forward: Vec<_> = (0..100).map(|h| p.acts(1, h)).collect();
        let backward: Vec<_> = (0..100).rev().map(|h| p.acts(1, h)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
    }

    #[test]
    fn json_is_escaped_and_reindented_like_gcloud() {
        let mut s = String::new();
        let mut o = Obj::open(&mut s);
        o.str("a\"b", "line\nnext\t\u{1}é")
            .obj("empty", |_| {})
            .strs("list", &["x", "y"])
            .raw("n", 12);
        o.close();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a\"b"], "line\nnext\t\u{1}é");
        let mut out = Vec::new();
        pretty(&s, 0, &mut out);
        let want = serde_json::to_string_pretty(&v).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want);
        // Members stay in the order written (gcloud's own output sorts them; readers don't care).
        let mut s = String::new();
        let mut o = Obj::open(&mut s);
        o.str("z", "1")
            .objs("list", 2, |i, o| {
                o.raw("i", i).obj("none", |_| {});
            })
            .strs("empty", &[]);
        o.close();
        let mut out = Vec::new();
        pretty(&s, 1, &mut out);
        let want = "{\n    \"z\": \"1\",\n    \"list\": [\n      {\n        \"i\": 0,\n        \"none\": {}\n      },\n      {\n        \"i\": 1,\n        \"none\": {}\n      }\n    ],\n    \"empty\": []\n  }";
        assert_eq!(String::from_utf8(out).unwrap(), want);
        assert_eq!(
            utc(1_735_895_564_123_456_789, 7),
            "2025-01-03T09:12:44.1234567Z"
        );
        assert_eq!(
            utc(1_735_895_564_123_456_789, 3),
            "2025-01-03T09:12:44.123Z"
        );
    }
}
