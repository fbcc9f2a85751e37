//! `auditlake verify`: the lake's files against the ledger, its trace index and
//! manifest against its files, and `--fix` for what can be put right.

use std::process::ExitCode;

use super::common::{print_summary, runtime, Global, LakeArg};
use super::{EXIT_FINDINGS, EXIT_OK};
use crate::Result;

/// Check the lake's files against the ledger: missing, altered (size, SHA-256) and
/// unexpected files, row counts (footers against the ledger, per file and per
/// partition), and temporary files left by killed runs; and the trace index and the
/// manifest against the files (damaged, missing or stale entries).
///
/// One line per finding, then a summary. Exit code 1 when there are findings, 0 when
/// the lake is as the ledger says; nothing is changed except with --fix.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Remove the leftover temporary files, rebuild a tenant's trace index and put the
    /// manifest right where they are wrong (and write both for a lake from before them),
    /// and nothing else; what was fixed no longer counts toward the exit code.
    #[arg(long)]
    pub fix: bool,
}

/// Verifies; exit code 1 when findings remain open.
pub fn run(args: VerifyArgs, _global: &Global) -> Result<ExitCode> {
    let VerifyArgs { lake, json, fix } = args;
    let rt = runtime()?;
    let store = lake.open_existing(&rt)?;
    // Removing temporary files is a write: not while a convert may be making them.
    let lock = if fix {
        Some(crate::lake::lock::LakeLock::acquire(&store, rt.handle())?)
    } else {
        None
    };
    let v = rt.block_on(crate::verify::verify(&store, fix));
    if let Some(lock) = lock {
        lock.release()?;
    }
    let v = v?;
    print_summary(json, &v, crate::verify::render)?;
    Ok(ExitCode::from(if v.open_findings() > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }))
}
