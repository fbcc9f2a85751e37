//! `auditlake verify`: the lake's files against the ledger, its trace index and
//! manifest against its files, and `--fix` for what can be put right.

use std::process::ExitCode;

use super::common::{print_summary, runtime, Global, LakeArg};
use super::{EXIT_FINDINGS, EXIT_OK};
use crate::Result;

/// Check the lake's files against the ledger: missing, altered (size, SHA-256) and
/// unexpected files, row counts (footers against the ledger, per file and per
/// partition), and temporary files left by killed runs; the ledger against its hash
/// chain (edited, inserted, removed or reordered events; records altered, removed or
/// written outside auditlake; signed checkpoints); and the trace index and the
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
    /// Exit 1 unless this head (from an earlier `status`, report or verify) is an event
    /// of the lake's chain: the lake may have grown since, not been rewritten.
    #[arg(long, value_name = "HEX")]
    pub expect_head: Option<String>,
    /// Check every signed checkpoint of the chain with this public key (`keys
    /// generate`'s .pub file), and that no unsigned event follows the last one.
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<std::path::PathBuf>,
}

/// Verifies; exit code 1 when findings remain open.
pub fn run(args: VerifyArgs, _global: &Global) -> Result<ExitCode> {
    let VerifyArgs {
        lake,
        json,
        fix,
        expect_head,
        public_key,
    } = args;
    let expect = crate::verify::Expect {
        public_key: public_key
            .map(|p| crate::lake::chain::read_public(&p))
            .transpose()?,
        head: expect_head,
    };
    let rt = runtime()?;
    let store = lake.open_existing(&rt)?;
    // Removing temporary files is a write: not while a convert may be making them.
    let lock = if fix {
        Some(crate::lake::lock::LakeLock::acquire(&store, rt.handle())?)
    } else {
        None
    };
    let v = rt.block_on(crate::verify::verify(&store, fix, &expect));
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
