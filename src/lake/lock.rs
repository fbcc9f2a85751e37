//! One converter at a time per lake: `<lake>/_lock.json`, created with a
//! conditional PUT (local disk: create-new), kept alive by a heartbeat, and
//! removed at the end. A second `convert` waits for it; a lock whose holder
//! died (its pid gone on this host, or no heartbeat for 90 s) is taken over.
//! Serialising converters is what keeps dedupe exact: each run sees every
//! row the previous one published.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::store::LakeStore;
use crate::Result;

const LOCK: &str = "_lock.json";
const HEARTBEAT: Duration = Duration::from_secs(20);
const STALE_AFTER_SECS: u64 = 90;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Holder {
    owner: String,
    host: String,
    pid: u32,
    heartbeat: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

impl Holder {
    fn is_stale(&self) -> bool {
        let dead_here =
            self.host == host() && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        dead_here || now_secs().saturating_sub(self.heartbeat) > STALE_AFTER_SECS
    }
}

/// A held lake lock; released by [`LakeLock::release`] (or, best effort, on drop).
pub struct LakeLock {
    store: LakeStore,
    rt: tokio::runtime::Handle,
    me: Holder,
    stop: Arc<AtomicBool>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl LakeLock {
    /// Takes the lock, waiting for another converter to finish.
    pub fn acquire(store: &LakeStore, rt: &tokio::runtime::Handle) -> Result<LakeLock> {
        let me = Holder {
            owner: format!("{:x}-{}", now_secs(), std::process::id()),
            host: host(),
            pid: std::process::id(),
            heartbeat: now_secs(),
        };
        let mut told = false;
        loop {
            let body = bytes::Bytes::from(serde_json::to_vec(&Holder {
                heartbeat: now_secs(),
                ..me.clone()
            })?);
            if rt.block_on(store.put_new(LOCK, body))? {
                break;
            }
            let holder: Option<Holder> = rt
                .block_on(store.get(LOCK))?
                .and_then(|b| serde_json::from_slice(&b).ok());
            match holder {
                Some(h) if !h.is_stale() => {
                    if !told {
                        eprintln!("auditlake: waiting for another convert into this lake (pid {} on {}) to finish", h.pid, h.host);
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                // Stale or unreadable: take it over.
                _ => rt.block_on(store.delete(LOCK))?,
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let beat = {
            let (store, rt, stop, me) = (store.clone(), rt.clone(), stop.clone(), me.clone());
            std::thread::Builder::new()
                .name("lock-heartbeat".into())
                .spawn(move || {
                    let mut last = std::time::Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(200));
                        if last.elapsed() >= HEARTBEAT {
                            last = std::time::Instant::now();
                            if let Ok(b) = serde_json::to_vec(&Holder {
                                heartbeat: now_secs(),
                                ..me.clone()
                            }) {
                                let _ = rt.block_on(store.put(LOCK, bytes::Bytes::from(b)));
                            }
                        }
                    }
                })
                .ok()
        };
        Ok(LakeLock {
            store: store.clone(),
            rt: rt.clone(),
            me,
            stop,
            beat,
        })
    }

    /// Stops the heartbeat and removes the lock if it is still ours.
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.beat.take() {
            let _ = h.join();
            let holder: Option<Holder> = self
                .rt
                .block_on(self.store.get(LOCK))?
                .and_then(|b| serde_json::from_slice(&b).ok());
            if holder.is_some_and(|h| h.owner == self.me.owner) {
                self.rt.block_on(self.store.delete(LOCK))?;
            }
        }
        Ok(())
    }
}

impl Drop for LakeLock {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}
