//! `auditlake status`: what the lake holds, per tenant.

use std::process::ExitCode;

use super::common::{print_summary, runtime, Global, LakeArg};
use super::EXIT_OK;
use crate::status::{render, status};
use crate::Result;

/// Show what the lake holds: tenants, days covered and missing, events, files, bytes, sources.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the lake's status.
pub fn run(args: StatusArgs, _global: &Global) -> Result<ExitCode> {
    let rt = runtime()?;
    let s = rt.block_on(status(&args.lake.open_existing(&rt)?))?;
    print_summary(args.json, &s, render)?;
    Ok(ExitCode::from(EXIT_OK))
}
