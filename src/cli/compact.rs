//! `auditlake compact`: partitions that gathered several files rewritten as one each.

use std::process::ExitCode;

use super::common::{
    parse_day_arg, parse_duration_arg, print_summary, runtime, sign_checkpoint, Global, LakeArg,
    SigningArg,
};
use super::EXIT_OK;
use crate::Result;

/// Rewrite partitions that gathered several files as one file each, exactly once.
///
/// Daily conversions that touch the same day leave it several files; compaction merges
/// them into one, rows in time order, with the converter's statistics and bloom filters.
/// Queries running meanwhile see every row exactly once: the merged file is written
/// first, one manifest write switches readers over, and the old files are removed after
/// --grace. Killed at any point, run it again to finish. Example (weekly, after the
/// nightly fetches):
///   auditlake compact --lake /data/lake --from 2025-06-01 --to 2025-06-30
#[derive(clap::Args, Debug)]
pub struct CompactArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub signing: SigningArg,
    /// Only this tenant's partitions.
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Only days from this one (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DAY", value_parser = parse_day_arg)]
    pub from: Option<i32>,
    /// Only days up to this one (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DAY", value_parser = parse_day_arg)]
    pub to: Option<i32>,
    /// Print the partitions that would be compacted, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long the old files stay after the switch, for queries planned before it
    /// (s, m, h or d); longer than your longest query.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub grace: i64,
    /// zstd level of the merged files: lower is faster, higher is smaller.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Compacts (or, with --dry-run, lists what would be).
pub fn run(args: CompactArgs, global: &Global) -> Result<ExitCode> {
    let CompactArgs {
        lake,
        signing,
        tenant,
        from,
        to,
        dry_run,
        grace,
        zstd_level,
        json,
    } = args;
    let signer = signing.signer(global)?;
    let rt = runtime()?;
    let store = lake.open_existing(&rt)?;
    let opts = crate::compact::CompactOptions {
        tenant,
        from,
        to,
        dry_run,
        zstd_level,
        grace: std::time::Duration::from_secs(grace.max(0) as u64),
    };
    let summary = crate::compact::compact(&store, &rt, &opts)?;
    if let Some(s) = signer.as_ref().filter(|_| !dry_run) {
        sign_checkpoint(&lake, s)?;
    }
    print_summary(json, &summary, crate::compact::render)?;
    Ok(ExitCode::from(EXIT_OK))
}
