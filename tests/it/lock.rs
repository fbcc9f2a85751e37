//! The lake lock: of waiters racing for a stale lock exactly one wins, a holder that
//! was taken over learns it at its next heartbeat and publishes nothing more, and two
//! converts into one local lake at once double nothing.
//!
//! The object-store cases run here over object_store's `InMemory` store (conditional
//! writes included); `remote.rs` runs the same functions against moto's S3.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use auditlake::lake::lock::{Acquired, LakeLock, LockTiming};
use auditlake::lake::store::LakeStore;
use auditlake::lake::{ledger, rejects, writer, PartKey};
use futures::stream::BoxStream;
use object_store::path::Path as ObjPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::common::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits for `cond`, failing after a generous deadline (a hang guard, not a timing assertion).
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A lock object left by a holder that died: it never changes again.
fn leave_a_dead_lock(store: &LakeStore, rt: &tokio::runtime::Runtime) {
    let body = r#"{"owner":"dead","seq":7,"pid":4242,"host":"gone","heartbeat":0}"#;
    rt.block_on(store.put("_lock.json", body.into())).unwrap();
}

/// A store that holds back the first `n` conditional updates of the lock object until all
/// `n` are in flight, so that racing takeovers really race; it counts how many of them won.
#[derive(Debug)]
struct Gate {
    inner: Arc<dyn ObjectStore>,
    n: usize,
    arrived: Mutex<usize>,
    all_in: Condvar,
    won: AtomicUsize,
    /// Every write of the lock object fails, as if the store were out of reach.
    unreachable: std::sync::atomic::AtomicBool,
}

impl Gate {
    fn over(inner: Arc<dyn ObjectStore>, n: usize) -> Gate {
        Gate {
            inner,
            n,
            arrived: Mutex::new(0),
            all_in: Condvar::new(),
            won: AtomicUsize::new(0),
            unreachable: Default::default(),
        }
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Gate {
    async fn put_opts(
        &self,
        location: &ObjPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if location.filename() == Some("_lock.json") && self.unreachable.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "gate",
                source: "the store is out of reach".into(),
            });
        }
        let gated = location.filename() == Some("_lock.json")
            && matches!(opts.mode, PutMode::Update(_))
            && {
                let mut arrived = self.arrived.lock().unwrap();
                *arrived += 1;
                let gated = *arrived <= self.n;
                self.all_in.notify_all();
                let (arrived, timeout) = self
                    .all_in
                    .wait_timeout_while(arrived, Duration::from_secs(60), |a| *a < self.n)
                    .unwrap();
                drop(arrived);
                assert!(!timeout.timed_out(), "the racing updates never all came");
                gated
            };
        let r = self.inner.put_opts(location, payload, opts).await;
        if gated && r.is_ok() {
            self.won.fetch_add(1, Ordering::SeqCst);
        }
        r
    }
    async fn put_multipart_opts(
        &self,
        location: &ObjPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &ObjPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjPath>> {
        self.inner.delete_stream(locations)
    }
    fn list(
        &self,
        prefix: Option<&ObjPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &ObjPath,
        to: &ObjPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Three waiters start together on a stale lock and all three try to take it over against
/// the version they saw stale, at once: exactly one update succeeds. The other two get the
/// lock one after the other as it is released, and no two ever hold it at once.
/// `stale` is the stale period (a fifth of it the heartbeat): a server on loopback
/// beside other suites needs more slack than memory for a heartbeat to land in time.
pub fn waiters_racing_for_a_stale_lock(store: &LakeStore, stale: Duration) {
    let rt = runtime();
    leave_a_dead_lock(store, &rt);
    let gate = Arc::new(Gate::over(store.store.clone(), 3));
    let mut store = store.clone();
    store.store = gate.clone();
    let store = &store;
    let timing = LockTiming::with_stale(stale);
    let start = Arc::new(Barrier::new(3));
    let holding = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let how = Arc::new(Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (store, handle) = (store.clone(), rt.handle().clone());
            let (start, holding, most, how) =
                (start.clone(), holding.clone(), most.clone(), how.clone());
            std::thread::spawn(move || {
                start.wait();
                let lock = LakeLock::acquire_with(&store, &handle, timing).unwrap();
                let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Hold it across heartbeats.
                std::thread::sleep(timing.heartbeat * 3);
                if let Err(e) = lock.held().check() {
                    panic!("a holder that heartbeats keeps it: {e}");
                }
                how.lock().unwrap().push(lock.acquired().clone());
                holding.fetch_sub(1, Ordering::SeqCst);
                lock.release().unwrap();
            })
        })
        .collect();
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two holders at once");
    assert_eq!(
        gate.won.load(Ordering::SeqCst),
        1,
        "of three takeovers of one version, one succeeds"
    );
    let how = how.lock().unwrap();
    let took: Vec<_> = how
        .iter()
        .filter(|a| matches!(a, Acquired::TookOver { .. }))
        .collect();
    assert_eq!(
        took,
        [&Acquired::TookOver {
            from: "pid 4242 on gone".into()
        }],
        "exactly one waiter takes the stale lock over: {how:?}"
    );
    assert_eq!(
        how.iter().filter(|a| **a == Acquired::Released).count(),
        2,
        "{how:?}"
    );
}

/// A holder whose heartbeat is slower than another's stale period is taken over; its next
/// heartbeat fails, it knows the lock is lost, and its publishing writes are refused.
pub fn a_holder_taken_over_learns_it_at_its_next_heartbeat(store: &LakeStore) {
    let rt = runtime();
    let slow = LockTiming {
        heartbeat: Duration::from_secs(3),
        stale: Duration::from_secs(3600),
        poll: Duration::from_millis(50),
    };
    let a = LakeLock::acquire_with(store, rt.handle(), slow).unwrap();
    assert_eq!(a.acquired(), &Acquired::Created);
    let a_store = store.holding(a.held());
    // B judges A stale after 1 s without a new version (A heartbeats every 3 s). B holds
    // while a heartbeat of its own has landed within 500 ms: room for a slow store on a
    // loaded machine (with 100 ms, a moto PUT over 50 ms made B give the lock up).
    let b = LakeLock::acquire_with(
        store,
        rt.handle(),
        LockTiming::with_stale(Duration::from_secs(1)),
    )
    .unwrap();
    assert!(
        matches!(b.acquired(), Acquired::TookOver { .. }),
        "{:?}",
        b.acquired()
    );
    eventually("A learns it lost the lock", || !a.held().is_held());
    let err = a_store.check_held().unwrap_err().to_string();
    assert!(err.starts_with("lost the lake lock on "), "{err}");
    assert!(err.contains("took it over"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");

    // Every publish point refuses: a Parquet file, a rejects file, a ledger entry.
    let key = PartKey {
        tenant: "t".into(),
        day: 20_000,
    };
    let refused = |r: auditlake::Result<()>| {
        let e = r.unwrap_err().to_string();
        assert!(e.starts_with("lost the lake lock"), "{e}");
    };
    refused(
        rt.block_on(writer::write_file(&a_store, &key, "f.parquet", &[], 1))
            .map(|_| ()),
    );
    let mut log = rejects::RejectLog::new("abc");
    log.write(&rejects::Rejected {
        source: "s",
        member: "m",
        index: Some(0),
        offset: 0,
        reason: "not_an_object",
        detail: "",
        raw: "1",
        ..Default::default()
    })
    .unwrap();
    refused(rt.block_on(log.finish(&a_store)).map(|_| ()));
    let entry = ledger::LedgerEntry::new("s".into(), 0, "abc".into());
    refused(rt.block_on(ledger::write(
        &a_store,
        "convert",
        &[entry],
        vec![],
        None,
        "ledger",
    )));
    let objects = rt.block_on(store.list_all("")).unwrap();
    assert_eq!(
        objects.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["_lock.json"],
        "nothing published after the lock was lost"
    );

    // A's release leaves B's lock alone; B still holds it and releases it.
    a.release().unwrap();
    assert!(b.held().is_held());
    let c = std::thread::spawn({
        let (store, handle) = (store.clone(), rt.handle().clone());
        move || LakeLock::acquire_with(&store, &handle, slow).unwrap()
    });
    b.release().unwrap();
    let c = c.join().unwrap();
    assert_eq!(c.acquired(), &Acquired::Released);
    c.release().unwrap();
}

#[test]
fn a_holder_whose_heartbeats_do_not_land_stops_publishing_by_itself() {
    let rt = runtime();
    let gate = Arc::new(Gate::over(LakeStore::in_memory("lake").store, 0));
    let mut store = LakeStore::in_memory("lake");
    store.store = gate.clone();
    let lock = LakeLock::acquire_with(
        &store,
        rt.handle(),
        LockTiming::with_stale(Duration::from_millis(400)),
    )
    .unwrap();
    let guarded = store.holding(lock.held());
    guarded.check_held().unwrap();
    gate.unreachable.store(true, Ordering::SeqCst);
    eventually("the holder gives the lock up", || !lock.held().is_held());
    let err = rt
        .block_on(guarded.put("events/f.parquet", "x".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("lost the lake lock on memory:///lake (no heartbeat landed for"),
        "{err}"
    );
    assert!(err.contains("out of reach"), "{err}");
    let _ = lock.release();
}

#[test]
fn of_waiters_racing_for_a_stale_lock_exactly_one_takes_it_over() {
    waiters_racing_for_a_stale_lock(&LakeStore::in_memory("lake"), Duration::from_secs(2));
}

#[test]
fn a_heartbeat_after_a_takeover_fails_and_the_holder_publishes_nothing_more() {
    a_holder_taken_over_learns_it_at_its_next_heartbeat(&LakeStore::in_memory("lake"));
}

/// A convert running in the background; its stderr is read as it comes.
struct Background {
    child: Child,
    stderr: std::thread::JoinHandle<String>,
    waiting: std::sync::mpsc::Receiver<()>,
}

fn convert_in_background(lake: &Path, inputs: &[std::path::PathBuf]) -> Background {
    let mut child = bin()
        .arg("convert")
        .args(inputs)
        .arg("--lake")
        .arg(lake)
        .args(["--json", "--threads", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, waiting) = std::sync::mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in err.lines() {
            let line = line.unwrap();
            if line.contains("waiting for another convert into this lake") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    Background {
        child,
        stderr,
        waiting,
    }
}

impl Background {
    fn finish(self) -> Run {
        let mut out = self.child.wait_with_output().unwrap();
        out.stderr = self.stderr.join().unwrap().into_bytes();
        parse_run(out)
    }
}

#[test]
fn two_local_converts_at_once_of_overlapping_exports_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_files();
    // This test holds the lake's lock first, so that both converts are surely waiting
    // for it at once; then lets them go.
    std::fs::write(dir.path().join("_lock"), "pid 1 on the test\n").unwrap();
    let ours = std::fs::File::options()
        .write(true)
        .open(dir.path().join("_lock"))
        .unwrap();
    ours.lock().unwrap();
    let a = convert_in_background(dir.path(), &files[..24]);
    let b = convert_in_background(dir.path(), &files[12..]);
    for run in [&a, &b] {
        run.waiting
            .recv_timeout(Duration::from_secs(120))
            .expect("each convert waits for the lock the test holds");
    }
    drop(ours);
    let (a, b) = (a.finish(), b.finish());
    assert_eq!((a.code, b.code), (0, 0), "{} / {}", a.stderr, b.stderr);
    for run in [&a, &b] {
        assert!(run.stderr.contains("(pid 1 on the test)"), "{}", run.stderr);
    }
    let rows = lake_rows(dir.path());
    assert_unique(&rows);
    assert_eq!(rows.len() as u64, a.n("written") + b.n("written"));
    // The overlap (files 12..24) was converted by whichever ran first; the other skipped it.
    assert_eq!(a.n("sources") + b.n("sources"), 36);
    assert_eq!(a.n("skipped") + b.n("skipped"), 12);
    // One chain, not a fork: a genesis, then each convert's event after the other's.
    let (code, v) = verify_lake(dir.path(), false);
    assert_eq!((code, finding_kinds(&v)), (0, vec![]), "{v}");
    assert_eq!(v["chain"]["length"], 3, "{v}");
    let once = tempfile::tempdir().unwrap();
    let all = convert(once.path(), &files, &[]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(rows, lake_rows(once.path()));
}
