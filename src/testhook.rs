//! Named pause points for crash tests: with `AUDITLAKE_PAUSE_AT=NAME:N` the
//! process announces `auditlake: paused at NAME:N` on stderr the N-th time it
//! reaches point NAME and then waits forever, so a test can SIGKILL it at a
//! known place. With `AUDITLAKE_PANIC_AT=NAME` it panics there instead, for
//! tests of how a panic (in any thread) is reported. With
//! `AUDITLAKE_TEST_STEP_DELAY_MS=N` every point sleeps N ms, so that a test's
//! concurrent reader falls between the steps. Without the variables a point costs
//! a few atomic loads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);
static PANIC_AT: OnceLock<Option<String>> = OnceLock::new();
static DELAY: OnceLock<Option<u64>> = OnceLock::new();

/// Marks that the process reached `name`.
pub fn point(name: &str) {
    if PANIC_AT
        .get_or_init(|| std::env::var("AUDITLAKE_PANIC_AT").ok())
        .as_deref()
        == Some(name)
    {
        panic!("test panic at {name}");
    }
    if let Some(ms) = DELAY.get_or_init(|| {
        std::env::var("AUDITLAKE_TEST_STEP_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    }) {
        std::thread::sleep(std::time::Duration::from_millis(*ms));
    }
    let target = TARGET.get_or_init(|| {
        let v = std::env::var("AUDITLAKE_PAUSE_AT").ok()?;
        let (n, k) = v.rsplit_once(':')?;
        Some((n.to_string(), k.parse().ok()?))
    });
    if let Some((n, k)) = target {
        if n == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *k {
            eprintln!("auditlake: paused at {name}:{k}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}
