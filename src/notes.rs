//! Notes on stderr — progress and informational lines such as "waiting for another
//! convert…" — that `--quiet` silences. Errors and warnings never go through here.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silences (or restores) every later note, process-wide.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether notes are silenced.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints `auditlake: {text}` on stderr, unless notes are silenced; also a tracing event,
/// so that `-v` logs show it in order with the rest.
pub fn note(text: &str) {
    tracing::info!("{text}");
    if !quiet() {
        eprintln!("auditlake: {text}");
    }
}
