//! `auditlake prune`: the partitions older than a retention period, removed.

use std::process::ExitCode;

use super::common::{
    parse_day_arg, print_summary, runtime, sign_checkpoint, Global, LakeArg, SigningArg,
};
use super::EXIT_OK;
use crate::Result;

/// Remove the partitions older than a retention period, and their files from the ledger.
///
/// There is no default age: DPoD keeps logs 12 months, compliance regimes often keep
/// them longer, so say what yours is. Days before today (UTC) less AGE go; the ledger
/// entries of their sources stay (without those files), so the same exports are not
/// converted back in. Try --dry-run first. Example:
///   auditlake prune --lake /data/lake --older-than 12mo --dry-run
#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub signing: SigningArg,
    /// The retention period: 400d, 8w, 12mo, 2y. Partitions whose day is before
    /// today less this are removed.
    #[arg(long, value_name = "AGE", required = true)]
    pub older_than: crate::prune::Age,
    /// Print what would be removed, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Count the age back from this day instead of today (for tests and replays).
    #[arg(long, hide = true, value_name = "DAY", value_parser = parse_day_arg)]
    pub today: Option<i32>,
}

/// Prunes (or, with --dry-run, lists what would go).
pub fn run(args: PruneArgs, global: &Global) -> Result<ExitCode> {
    let PruneArgs {
        lake,
        signing,
        older_than,
        dry_run,
        json,
        today,
    } = args;
    let signer = signing.signer(global)?;
    let rt = runtime()?;
    let store = lake.open_existing(&rt)?;
    let today = today.unwrap_or_else(crate::time::today);
    let cutoff = older_than.cutoff(today)?;
    let summary = crate::prune::prune(&store, &rt, cutoff, dry_run)?;
    if let Some(s) = signer.as_ref().filter(|_| !dry_run) {
        sign_checkpoint(&lake, s)?;
    }
    print_summary(json, &summary, crate::prune::render)?;
    Ok(ExitCode::from(EXIT_OK))
}
