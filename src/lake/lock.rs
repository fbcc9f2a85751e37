//! One writer at a time per lake. Serialising converters is what keeps dedupe
//! exact: each run sees every row the previous one published.
//!
//! **Local disk**: an OS advisory lock (`flock`, through std's `File::lock`) on
//! `<lake>/_lock`, held for the life of the run. The kernel releases it when
//! the process ends, however it ends, so there is nothing to judge stale. The
//! file is never removed (removing a locked file would let a later run lock a
//! new file while a waiter locks the old one); it holds the holder's pid, for
//! the waiting message only.
//!
//! **Object stores**: the lock object `<lake>/_lock.json` is created with
//! `PutMode::Create` and every later write of it is a conditional update
//! (`PutMode::Update`) against the exact version (ETag / generation) the writer
//! last saw:
//! - the holder rewrites it every heartbeat period with a new sequence number,
//!   so its version changes;
//! - a waiter watches the version; one that has not changed for the stale
//!   period, measured on the waiter's own clock (no clock agreement needed), is
//!   taken over by an update against that very version, so of two waiters
//!   racing exactly one wins and the other goes back to waiting;
//! - a heartbeat that fails its precondition means someone took the lock over:
//!   the holder marks it lost ([`LockHeld`]), and every publishing write
//!   ([`LakeStore::check_held`]: Parquet files, rejects files, ledger entries)
//!   fails from then on with "lost the lake lock …". So do they once no
//!   heartbeat has landed for half the stale period (judged at each check, even
//!   while a heartbeat request hangs in retries), well before a waiter can take
//!   it over. What stays open is a write already under way when the lock goes:
//!   it can land after a takeover only if it takes longer than the other half of
//!   the stale period (object stores offer no fencing token to close that);
//! - at the end the holder marks the object released (again conditionally) and
//!   leaves it: a waiter takes a released lock at once. It is not deleted, since
//!   object stores have no conditional delete here and an unconditional one could
//!   remove a lock someone else has just taken.
//!
//! A conditional write answered by a retry (the first attempt landed, its answer
//! was lost) fails its precondition against itself; the object is then read back
//! and, if it holds exactly what was written, the write counts as done.
//!
//! Stores without conditional writes (`NotImplemented`, e.g. S3 with
//! `aws_conditional_put=disabled`) get a best-effort lock, said so on stderr:
//! plain overwrites, each read back after a poll interval to see who won, and a
//! heartbeat that first checks the object still names this run. Two runs
//! starting within that interval may both proceed.
//!
//! Periods: heartbeat 20 s, stale 90 s; `AUDITLAKE_LOCK_STALE_MS` sets the
//! stale period (the heartbeat becomes a fifth of it), for tests.

use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::store::LakeStore;
use crate::{Error, Result};

const LOCK_OBJECT: &str = "_lock.json";
const LOCK_FILE: &str = "_lock";

/// How often the holder heartbeats, when a silent lock counts as stale, how often a
/// waiter looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    pub heartbeat: Duration,
    pub stale: Duration,
    pub poll: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        LockTiming {
            heartbeat: Duration::from_secs(20),
            stale: Duration::from_secs(90),
            poll: Duration::from_millis(500),
        }
    }
}

impl LockTiming {
    /// A stale period with the heartbeat and poll periods that go with it.
    pub fn with_stale(stale: Duration) -> LockTiming {
        LockTiming {
            heartbeat: stale / 5,
            stale,
            poll: (stale / 10).min(Duration::from_millis(500)),
        }
    }

    /// The defaults, or `AUDITLAKE_LOCK_STALE_MS` when set.
    pub fn from_env() -> LockTiming {
        std::env::var("AUDITLAKE_LOCK_STALE_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map_or_else(LockTiming::default, |ms| {
                LockTiming::with_stale(Duration::from_millis(ms))
            })
    }
}

/// Whether the lake lock is still ours: cheap to clone and to check (an atomic load or
/// two and a clock read).
#[derive(Clone, Debug)]
pub struct LockHeld(Arc<HeldState>);

#[derive(Debug)]
struct HeldState {
    lost: AtomicBool,
    /// Why it was lost, or the last heartbeat error.
    why: Mutex<String>,
    lake: String,
    /// How long the lock counts as ours after the last heartbeat that landed (local: ever).
    grace: Option<Duration>,
    epoch: Instant,
    /// When the last heartbeat that landed was sent, in ms since `epoch`.
    last_ok_ms: AtomicU64,
}

impl LockHeld {
    fn new(lake: &str, grace: Option<Duration>) -> LockHeld {
        LockHeld(Arc::new(HeldState {
            lost: AtomicBool::new(false),
            why: Mutex::new(String::new()),
            lake: lake.to_string(),
            grace,
            epoch: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
        }))
    }

    /// Time since the last heartbeat that landed, when that is longer than the grace.
    fn overdue(&self) -> Option<Duration> {
        let grace = self.0.grace?;
        let last = Duration::from_millis(self.0.last_ok_ms.load(Ordering::Acquire));
        let since = self.0.epoch.elapsed().saturating_sub(last);
        (since > grace).then_some(since)
    }

    pub fn is_held(&self) -> bool {
        !self.0.lost.load(Ordering::Acquire) && self.overdue().is_none()
    }

    /// `Err(Error::LockLost)` once the lock is lost, or once no heartbeat has landed for
    /// half the stale period (a waiter may take it over at the stale period).
    pub fn check(&self) -> Result<()> {
        let why = || self.0.why.lock().map(|w| w.clone()).unwrap_or_default();
        let why = if self.0.lost.load(Ordering::Acquire) {
            why()
        } else if let Some(since) = self.overdue() {
            let last = why();
            let last = if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            };
            format!("no heartbeat landed for {:.1} s{last}", since.as_secs_f64())
        } else {
            return Ok(());
        };
        Err(Error::LockLost {
            lake: self.0.lake.clone(),
            why,
        })
    }

    /// A heartbeat sent at `sent` landed.
    fn renew(&self, sent: Instant) {
        let ms = sent.saturating_duration_since(self.0.epoch).as_millis() as u64;
        self.0.last_ok_ms.fetch_max(ms, Ordering::AcqRel);
    }

    fn note(&self, why: String) {
        if let Ok(mut w) = self.0.why.lock() {
            *w = why;
        }
    }

    fn lose(&self, why: String) {
        self.note(why);
        self.0.lost.store(true, Ordering::Release);
    }
}

/// How a lock was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The OS file lock of a lake on local disk.
    LocalFile,
    /// The lock object did not exist and was created.
    Created,
    /// The previous holder had released it.
    Released,
    /// The previous holder stopped heartbeating; `from` names it.
    TookOver { from: String },
}

/// What `_lock.json` holds. All but `owner` and `seq` is for people.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(default)]
struct Holder {
    /// Unique per run.
    owner: String,
    /// Bumped at every write, so every write makes a new version (S3's ETag is the MD5).
    seq: u64,
    pid: u32,
    host: String,
    /// Unix seconds of the write; informational (staleness is judged by versions).
    heartbeat: u64,
    released: bool,
}

impl Holder {
    fn me() -> Holder {
        // RandomState is seeded from the OS: an owner id no other run has.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(now().as_nanos());
        h.write_u32(std::process::id());
        Holder {
            owner: format!("{:016x}", h.finish()),
            seq: 0,
            pid: std::process::id(),
            host: host(),
            heartbeat: now().as_secs(),
            released: false,
        }
    }

    /// The next write of this holder's lock.
    fn next(&mut self, released: bool) -> Bytes {
        self.seq += 1;
        self.heartbeat = now().as_secs();
        self.released = released;
        Bytes::from(serde_json::to_vec(self).expect("a holder serialises"))
    }

    fn is(&self, other: &Holder) -> bool {
        self.owner == other.owner && self.seq == other.seq
    }

    fn describe(&self) -> String {
        if self.owner.is_empty() {
            "an unknown holder".into()
        } else {
            format!("pid {} on {}", self.pid, self.host)
        }
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The host name, for messages only.
fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The lock object as read: its holder (`Default` if unreadable), version and bytes.
#[derive(Clone)]
struct Seen {
    holder: Holder,
    version: UpdateVersion,
    bytes: Bytes,
}

impl Seen {
    /// Same object version (bytes too, for stores that give neither ETag nor version).
    fn same(&self, other: &Seen) -> bool {
        self.version == other.version && self.bytes == other.bytes
    }
}

/// A conditional write's outcome.
enum Put {
    Done(UpdateVersion),
    /// Create: it exists; update: its version changed (or it is gone).
    Conflict,
    /// The store has no conditional writes.
    Unsupported,
}

async fn put_lock(store: &LakeStore, body: Bytes, mode: PutMode) -> Result<Put> {
    let opts = PutOptions {
        mode,
        ..Default::default()
    };
    match store
        .store
        .put_opts(&store.path(LOCK_OBJECT), PutPayload::from_bytes(body), opts)
        .await
    {
        Ok(r) => Ok(Put::Done(r.into())),
        Err(
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotFound { .. },
        ) => Ok(Put::Conflict),
        Err(object_store::Error::NotImplemented { .. }) => Ok(Put::Unsupported),
        Err(e) => Err(store.err(LOCK_OBJECT, e)),
    }
}

async fn read_lock(store: &LakeStore) -> Result<Option<Seen>> {
    let r = match store.store.get(&store.path(LOCK_OBJECT)).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store.err(LOCK_OBJECT, e)),
    };
    let version = UpdateVersion {
        e_tag: r.meta.e_tag.clone(),
        version: r.meta.version.clone(),
    };
    let bytes = r.bytes().await.map_err(|e| store.err(LOCK_OBJECT, e))?;
    Ok(Some(Seen {
        holder: serde_json::from_slice(&bytes).unwrap_or_default(),
        version,
        bytes,
    }))
}

/// After a conflict: whether the object holds exactly our last write (a retried request
/// whose first attempt landed), and its version if so.
async fn landed(store: &LakeStore, me: &Holder) -> Result<Option<UpdateVersion>> {
    Ok(read_lock(store)
        .await?
        .filter(|s| s.holder.is(me))
        .map(|s| s.version))
}

/// The remote lease: who we are and the version of our last write.
struct Lease {
    me: Holder,
    version: UpdateVersion,
    /// False on stores without conditional writes (best effort).
    conditional: bool,
}

/// A held lake lock; released by [`LakeLock::release`] (or, best effort, on drop).
pub struct LakeLock {
    held: LockHeld,
    acquired: Acquired,
    inner: Inner,
}

enum Inner {
    /// The locked file; closing it releases the lock.
    Local(Option<File>),
    Remote(Box<Remote>),
}

struct Remote {
    store: LakeStore,
    rt: tokio::runtime::Handle,
    stop: Option<mpsc::Sender<()>>,
    beat: Option<std::thread::JoinHandle<Lease>>,
}

impl LakeLock {
    /// Takes the lock, waiting for another converter to finish.
    pub fn acquire(store: &LakeStore, rt: &tokio::runtime::Handle) -> Result<LakeLock> {
        LakeLock::acquire_with(store, rt, LockTiming::from_env())
    }

    /// [`LakeLock::acquire`] with the given periods.
    pub fn acquire_with(
        store: &LakeStore,
        rt: &tokio::runtime::Handle,
        timing: LockTiming,
    ) -> Result<LakeLock> {
        match store.local_dir() {
            Some(dir) => acquire_local(dir, &store.display),
            None => acquire_remote(store, rt, timing),
        }
    }

    /// The still-held check to publish under (see [`LakeStore::holding`]).
    pub fn held(&self) -> LockHeld {
        self.held.clone()
    }

    pub fn acquired(&self) -> &Acquired {
        &self.acquired
    }

    /// Stops the heartbeat and marks the lock released if it is still ours.
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        let remote = match &mut self.inner {
            Inner::Local(file) => {
                drop(file.take());
                return Ok(());
            }
            Inner::Remote(r) => r,
        };
        drop(remote.stop.take());
        let Some(mut lease) = remote.beat.take().and_then(|h| h.join().ok()) else {
            return Ok(());
        };
        // Even when overdue: the write is conditional, it lands only if still ours.
        if self.held.0.lost.load(Ordering::Acquire) {
            return Ok(());
        }
        let store = &remote.store;
        remote.rt.block_on(async {
            if lease.conditional {
                let body = lease.me.next(true);
                // A conflict: someone took it over meanwhile; nothing of ours to release.
                put_lock(store, body, PutMode::Update(lease.version.clone())).await?;
            } else if landed(store, &lease.me).await?.is_some() {
                put_lock(store, lease.me.next(true), PutMode::Overwrite).await?;
            }
            Ok(())
        })
    }
}

impl Drop for LakeLock {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

fn waiting(who: &str) {
    crate::notes::note(&format!(
        "waiting for another convert into this lake ({who}) to finish"
    ));
}

fn acquire_local(dir: &Path, display: &str) -> Result<LakeLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut who = String::new();
            let _ = file.read_to_string(&mut who);
            let who = who.trim();
            waiting(if who.is_empty() {
                "another process"
            } else {
                who
            });
            file.lock().map_err(|e| Error::io(&path, e))?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
    }
    // Who holds it, for the next one's waiting message.
    let who = format!("pid {} on {}\n", std::process::id(), host());
    (|| {
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(who.as_bytes())
    })()
    .map_err(|e| Error::io(&path, e))?;
    Ok(LakeLock {
        held: LockHeld::new(display, None),
        acquired: Acquired::LocalFile,
        inner: Inner::Local(Some(file)),
    })
}

fn acquire_remote(
    store: &LakeStore,
    rt: &tokio::runtime::Handle,
    timing: LockTiming,
) -> Result<LakeLock> {
    let mut me = Holder::me();
    let (version, conditional, acquired) = rt.block_on(take(store, &mut me, timing))?;
    // Ours from about now (the write that took it landed a moment ago).
    let held = LockHeld::new(&store.display, Some(timing.stale / 2));
    let (stop_tx, stop_rx) = mpsc::channel();
    let lease = Lease {
        me,
        version,
        conditional,
    };
    let beat = {
        let (store, rt, held) = (store.clone(), rt.clone(), held.clone());
        std::thread::Builder::new()
            .name("lock-heartbeat".into())
            .spawn(move || heartbeat(&store, &rt, timing, lease, &held, stop_rx))
            .map_err(|e| Error::Usage(format!("cannot start the lock heartbeat: {e}")))?
    };
    Ok(LakeLock {
        held,
        acquired,
        inner: Inner::Remote(Box::new(Remote {
            store: store.clone(),
            rt: rt.clone(),
            stop: Some(stop_tx),
            beat: Some(beat),
        })),
    })
}

/// Waits for the lock object and takes it: the version written, whether the store has
/// conditional writes, and how it was obtained.
async fn take(
    store: &LakeStore,
    me: &mut Holder,
    timing: LockTiming,
) -> Result<(UpdateVersion, bool, Acquired)> {
    let mut told = false;
    let mut may_create = true;
    // The version seen and since when (this process's clock), while it does not change.
    let mut watch: Option<(Seen, Instant)> = None;
    loop {
        if may_create {
            match put_lock(store, me.next(false), PutMode::Create).await? {
                Put::Done(v) => return Ok((v, true, Acquired::Created)),
                Put::Conflict => may_create = false,
                Put::Unsupported => return take_best_effort(store, me, timing).await,
            }
        }
        let Some(seen) = read_lock(store).await? else {
            may_create = true;
            continue;
        };
        if seen.holder.is(me) {
            // Our create landed; its answer did not.
            return Ok((seen.version, true, Acquired::Created));
        }
        let unchanged = watch.as_ref().is_some_and(|(w, _)| w.same(&seen));
        if !unchanged {
            watch = Some((seen, Instant::now()));
        }
        let (w, since) = watch.as_ref().expect("set above");
        let stale = unchanged && since.elapsed() >= timing.stale;
        if w.holder.released || stale {
            let how = if w.holder.released {
                Acquired::Released
            } else {
                Acquired::TookOver {
                    from: w.holder.describe(),
                }
            };
            match put_lock(store, me.next(false), PutMode::Update(w.version.clone())).await? {
                Put::Done(v) => return Ok((v, true, how)),
                Put::Unsupported => return take_best_effort(store, me, timing).await,
                Put::Conflict => {
                    if let Some(v) = landed(store, me).await? {
                        return Ok((v, true, how));
                    }
                    // Another waiter won, or the holder beat: watch again.
                    watch = None;
                    continue;
                }
            }
        }
        if !told {
            waiting(&w.holder.describe());
            told = true;
        }
        tokio::time::sleep(timing.poll).await;
    }
}

/// [`take`] for stores without conditional writes: overwrite, wait, read back.
async fn take_best_effort(
    store: &LakeStore,
    me: &mut Holder,
    timing: LockTiming,
) -> Result<(UpdateVersion, bool, Acquired)> {
    eprintln!(
        "auditlake: {} has no conditional writes: the lake lock is best effort (two converts starting together may both run)",
        store.display
    );
    let mut told = false;
    let mut watch: Option<(Seen, Instant)> = None;
    loop {
        let seen = read_lock(store).await?;
        let unchanged = match (&watch, &seen) {
            (Some((w, _)), Some(s)) => w.same(s),
            _ => false,
        };
        if !unchanged {
            watch = seen.clone().map(|s| (s, Instant::now()));
        }
        let how = match (&seen, &watch) {
            (None, _) => Some(Acquired::Created),
            (Some(s), _) if s.holder.released => Some(Acquired::Released),
            (Some(s), Some((_, since))) if unchanged && since.elapsed() >= timing.stale => {
                Some(Acquired::TookOver {
                    from: s.holder.describe(),
                })
            }
            _ => None,
        };
        if let Some(how) = how {
            put_lock(store, me.next(false), PutMode::Overwrite).await?;
            tokio::time::sleep(timing.poll).await;
            if let Some(v) = landed(store, me).await? {
                return Ok((v, false, how));
            }
            watch = None;
            continue;
        }
        if !told {
            if let Some(s) = &seen {
                waiting(&s.holder.describe());
            }
            told = true;
        }
        tokio::time::sleep(timing.poll).await;
    }
}

/// Why a heartbeat did not land.
enum Missed {
    /// Someone else holds the lock now.
    Lost(String),
    /// The store did not answer; the lock may still be ours.
    Failed(Error),
}

/// The heartbeat thread: rewrites the lock every period until told to stop (the sender
/// dropped) or the lock is lost; hands the lease back for the release. A heartbeat that
/// does not land is tried again a poll period later (not a whole heartbeat later: the
/// grace is only a few heartbeats long), and [`LockHeld::check`] fails by itself once the
/// last one that landed is half a stale period old, even while a request hangs.
fn heartbeat(
    store: &LakeStore,
    rt: &tokio::runtime::Handle,
    timing: LockTiming,
    mut lease: Lease,
    held: &LockHeld,
    stop: mpsc::Receiver<()>,
) -> Lease {
    let mut wait = timing.heartbeat;
    loop {
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return lease,
        }
        let sent = Instant::now();
        wait = match rt.block_on(beat(store, &mut lease)) {
            Ok(()) => {
                held.renew(sent);
                timing.heartbeat
            }
            Err(Missed::Lost(why)) => {
                held.lose(why);
                return lease;
            }
            Err(Missed::Failed(e)) => {
                held.note(e.to_string());
                timing.poll.min(timing.heartbeat)
            }
        };
    }
}

async fn beat(store: &LakeStore, lease: &mut Lease) -> std::result::Result<(), Missed> {
    let taken = |s: Option<Seen>| match s {
        Some(s) => format!("{} took it over", s.holder.describe()),
        None => "its lock object was removed".into(),
    };
    if lease.conditional {
        let body = lease.me.next(false);
        match put_lock(store, body, PutMode::Update(lease.version.clone())).await {
            Ok(Put::Done(v)) => {
                lease.version = v;
                return Ok(());
            }
            Ok(Put::Conflict) => {
                let seen = read_lock(store).await.map_err(Missed::Failed)?;
                return match seen {
                    Some(s) if s.holder.is(&lease.me) => {
                        lease.version = s.version;
                        Ok(())
                    }
                    other => Err(Missed::Lost(taken(other))),
                };
            }
            Ok(Put::Unsupported) => lease.conditional = false,
            Err(e) => return Err(Missed::Failed(e)),
        }
        // Created conditionally, but updates are not supported: best effort from here.
        lease.me.seq -= 1;
    }
    let seen = read_lock(store).await.map_err(Missed::Failed)?;
    match seen {
        Some(s) if s.holder.is(&lease.me) => {}
        other => return Err(Missed::Lost(taken(other))),
    }
    match put_lock(store, lease.me.next(false), PutMode::Overwrite).await {
        Ok(Put::Done(v)) => {
            lease.version = v;
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(Missed::Failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked_by_someone(dir: &Path) -> bool {
        let f = File::open(dir.join(LOCK_FILE)).unwrap();
        matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }

    #[test]
    fn a_local_lake_is_locked_by_the_os_for_as_long_as_the_lock_lives() {
        let dir = tempfile::tempdir().unwrap();
        let store = LakeStore::local(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let lock = LakeLock::acquire(&store, rt.handle()).unwrap();
        assert_eq!(lock.acquired(), &Acquired::LocalFile);
        assert!(locked_by_someone(dir.path()));
        let who = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert!(
            who.starts_with(&format!("pid {} on ", std::process::id())),
            "{who}"
        );
        assert!(store.holding(lock.held()).check_held().is_ok());
        lock.release().unwrap();
        assert!(!locked_by_someone(dir.path()));
        // Dropped without a release (a panic, an early return): released all the same.
        let lock = LakeLock::acquire(&store, rt.handle()).unwrap();
        assert!(locked_by_someone(dir.path()));
        drop(lock);
        assert!(!locked_by_someone(dir.path()));
    }

    #[test]
    fn a_second_local_lock_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = LakeStore::local(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let first = LakeLock::acquire(&store, rt.handle()).unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let second = std::thread::spawn({
            let (store, handle, got) = (store.clone(), rt.handle().clone(), got.clone());
            move || {
                let lock = LakeLock::acquire(&store, &handle).unwrap();
                got.store(true, Ordering::SeqCst);
                lock
            }
        });
        // Give a broken lock the chance to let the second one in.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!got.load(Ordering::SeqCst), "two holders at once");
        first.release().unwrap();
        let second = second.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
        second.release().unwrap();
    }

    #[test]
    fn lock_timing_from_the_stale_period() {
        let t = LockTiming::with_stale(Duration::from_millis(1000));
        assert_eq!(t.heartbeat, Duration::from_millis(200));
        assert_eq!(t.poll, Duration::from_millis(100));
        assert!(LockTiming::default().heartbeat * 4 < LockTiming::default().stale);
    }
}
