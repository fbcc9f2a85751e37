//! The `auditlake` binary: parse the command line, run it, turn the outcome into an exit code.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;

/// See Cargo.toml for why (the `system-alloc` feature leaves it out, for heap profilers).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    install_panic_hook();
    // A panic anywhere (a worker thread's reaches here through its scope) is one line
    // from the hook and exit code 2.
    let code = match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(_) => ExitCode::from(auditlake::cli::EXIT_ERROR),
    };
    #[cfg(not(feature = "system-alloc"))]
    keep_memory_at_exit();
    code
}

fn run() -> ExitCode {
    let args = match auditlake::cli::Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Usage errors as one line, like every other error.
            let text = e.to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!(
                "auditlake: {} (see --help)",
                first.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(auditlake::cli::EXIT_ERROR);
        }
    };
    #[cfg(not(feature = "system-alloc"))]
    if args.command.runs_sql() {
        tune_allocator();
    }
    match auditlake::cli::run(args) {
        Ok(code) => code,
        // `auditlake query ... | head`: the reader has what it wanted.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            // One line, whatever the error's own formatting.
            let text = err.to_string();
            eprintln!(
                "auditlake: {}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::from(auditlake::cli::EXIT_ERROR)
        }
    }
}

/// mimalloc's options for a long streamed scan, where buffers are allocated on one
/// thread (a blocking-pool file read) and freed on another (the query's worker): freed
/// pages are reclaimed by the freeing thread and returned to the OS after 1000 ms unused,
/// instead of staying with the idle thread that allocated them. On a streamed `SELECT
/// meta` over a 10M-event lake peak RSS went from 627 MB to 239 MB (303 MB with the
/// blocking-pool cap alone). Session 49 chose 100 ms: returning pages at once (0) made
/// a query fault back in the pages its next batches needed. Over the 10M-event year, one session,
/// medians of 3, best of 3 interleaved rounds: key_first_use 2.81 s against 3.13,
/// privileged_actions 0.99 against 1.20, daily_activity 1.42 against 1.61, a point
/// lookup 5 against 10 ms, the light views within noise; a streamed `SELECT *` to CSV
/// peaked at 234 MiB against 197 MiB. Only for the commands that run SQL: convert's
/// buffers are allocated and freed on the same threads, and returning every freed
/// page at once made it fault them back in (10M-event year: 18 s of system time
/// against 6 s, twice the page faults).
/// Session 55 raised the delay from 100 ms to 1000: the key views, once run per tenant,
/// spent less time faulting their hash tables back in. One REPL session each, key_lifecycle
/// 0.92 against 1.07 s and 1.15 against 1.45 (two interleaved pairs), fresh processes 1.21
/// against 1.27 s (medians of 6); a streamed `SELECT *` to CSV peaked at 212 MiB against 201.
/// An option the environment sets (MIMALLOC_PURGE_DELAY=...) is left as it says.
#[cfg(not(feature = "system-alloc"))]
fn tune_allocator() {
    const OPTIONS: [(i32, &str, std::ffi::c_long); 3] = [
        (4, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
        (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 1000),
        (35, "MIMALLOC_PAGE_RECLAIM_ON_FREE", 1),
    ];
    for (option, env, value) in OPTIONS {
        if std::env::var_os(env).is_none() {
            // SAFETY: a plain setter of mimalloc's option table; the index is in range.
            unsafe { mi_option_set(option, value) };
        }
    }
}

/// The process is ending and the OS takes all its memory back at once: mimalloc need
/// not hand its free pages back one range at a time in its exit handler (a purge,
/// `madvise` and TLB shootdowns: 31 ms of the main thread after converting one monthly
/// export). A purge delay below zero turns that purge off.
#[cfg(not(feature = "system-alloc"))]
fn keep_memory_at_exit() {
    // SAFETY: as in `tune_allocator`.
    unsafe { mi_option_set(PURGE_DELAY, -1) };
}

// Indices in mimalloc 3.x's `mi_option_t` (libmimalloc-sys 0.1.49, pinned by Cargo.lock).
#[cfg(not(feature = "system-alloc"))]
const PURGE_DELAY: i32 = 15;

#[cfg(not(feature = "system-alloc"))]
extern "C" {
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// Every panic, in any thread, becomes one line on stderr: the first one only, since
/// a worker's panic is raised again where its thread is joined. The release profile
/// aborts on panic instead of unwinding: there the hook itself ends the process with
/// exit code 2, and a second panicking thread waits for that exit instead of aborting.
fn install_panic_hook() {
    static SEEN: AtomicBool = AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        if SEEN.swap(true, Ordering::SeqCst) {
            if cfg!(panic = "abort") {
                loop {
                    std::thread::park();
                }
            }
            return;
        }
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .map(|n| format!(" in thread {n}"))
            .unwrap_or_default();
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        eprintln!("auditlake: internal error: {msg}{thread}{at}");
        if cfg!(panic = "abort") {
            std::process::exit(auditlake::cli::EXIT_ERROR.into());
        }
    }));
}
