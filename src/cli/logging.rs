//! Diagnostics for `-v`/`-vv`: tracing events on stderr (never stdout, so data output
//! stays clean). `RUST_LOG`, when set, chooses the filter instead.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber: with `RUST_LOG` set, its filter; else `verbose` 1 is
/// auditlake's info events, 2 its debug events, 3 or more trace; 0 installs nothing.
pub fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => match verbose {
            0 => return,
            1 => EnvFilter::new("auditlake=info"),
            2 => EnvFilter::new("auditlake=debug"),
            _ => EnvFilter::new("auditlake=trace"),
        },
    };
    // A second init (tests calling `run` twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_thread_names(true)
        .try_init();
}
