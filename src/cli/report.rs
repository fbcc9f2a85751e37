//! `auditlake report`: the compliance report pack over a period, and `--fail-on` for
//! the exit code.

use std::process::ExitCode;

use super::common::{
    runtime, write_output, AcksArg, ClusterArg, Global, Judging, PeriodArgs, RulesArgs,
};
use super::{EXIT_FINDINGS, EXIT_OK};
use crate::report::findings::Severity;
use crate::report::ocsf;
use crate::report::render::{self, ReportFormat};
use crate::Result;

/// Run the compliance report pack (all reports when none is named) over a period.
///
/// Every report opens with the coverage of the period: which days have data and which
/// have none. Reports: failed_auth, brute_force, key_first_use, key_lifecycle,
/// privileged, new_client_ips, off_hours, daily_summary; and keys, the key inventory
/// (every key up to the period's end), only when named. Example (last month, for cron):
///   auditlake report --lake ./lake --from 2025-06-01 --to 2025-06-30 --format html -o june.html --fail-on-findings
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Reports to run (default: all but keys).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub period: PeriodArgs,
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Write to this file (csv: this directory) instead of stdout; a path or a URL
    /// (s3://bucket/reports/june.html).
    #[arg(short = 'o', long = "output", alias = "out", value_name = "PATH|URL")]
    pub output: Option<String>,
    /// Exit with 1 when a finding of this severity or higher is neither suppressed by an
    /// allowlist nor acknowledged.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// The same as --fail-on low.
    #[arg(long, conflicts_with = "fail_on")]
    pub fail_on_findings: bool,
    /// Memory for sorts, joins and aggregates (e.g. 2G) before they spill to temporary
    /// files (default: half the machine's memory). The findings keep the period and its
    /// look-back in memory only when they fit in a quarter of it, else read them again.
    #[arg(long, value_name = "SIZE", value_parser = crate::query::parse_size)]
    pub memory_limit: Option<usize>,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub acks: AcksArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
}

/// The lowest severity that fails a report run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    High,
    Medium,
    Low,
}

impl From<FailOn> for Severity {
    fn from(f: FailOn) -> Severity {
        match f {
            FailOn::High => Severity::High,
            FailOn::Medium => Severity::Medium,
            FailOn::Low => Severity::Low,
        }
    }
}

/// Runs the reports and writes them; exit code 1 when `--fail-on` says so.
pub fn run(args: ReportArgs, global: &Global) -> Result<ExitCode> {
    let ReportArgs {
        names,
        period,
        format,
        output,
        fail_on,
        fail_on_findings,
        memory_limit,
        rules,
        acks,
        cluster,
    } = args;
    let rt = runtime()?;
    let judging = Judging {
        names,
        memory_limit,
        rules: &rules,
        acks: &acks,
        cluster: &cluster,
    };
    let opts = period.report_options(&rt, global, judging)?;
    let lake = &period.lake;
    let pack = rt.block_on(crate::report::run(&opts))?;
    match (format, &output) {
        (ReportFormat::Csv, None) => {
            return Err(crate::Error::Usage(
                "--format csv writes one file per report: give --output DIR".into(),
            ))
        }
        (ReportFormat::Csv, Some(dir)) => {
            for (name, text) in render::csv_files(&pack)? {
                write_output(dir, Some(&name), text.into_bytes(), &lake.storage_options)?;
            }
        }
        (f, output) => {
            let text = match f {
                ReportFormat::Md => render::markdown(&pack)?,
                ReportFormat::Html => render::html(&pack)?,
                ReportFormat::Ocsf => {
                    ocsf::lines(&pack.findings, &pack.finding_rules, &pack.coverage)
                }
                _ => render::json(&pack)?,
            };
            match output {
                Some(path) => write_output(path, None, text.into_bytes(), &lake.storage_options)?,
                None => crate::write_stdout(&text)?,
            }
        }
    }
    let findings = pack.active().count();
    if output.is_some() {
        crate::notes::note(&format!(
            "{} reports, {findings} findings",
            pack.reports.len()
        ));
    }
    let threshold = fail_on
        .map(Severity::from)
        .or(fail_on_findings.then_some(Severity::Low));
    Ok(exit_code(threshold, &pack))
}

/// 1 when an active finding (not suppressed, not acknowledged) reaches `threshold`.
pub(crate) fn exit_code(threshold: Option<Severity>, pack: &crate::report::ReportPack) -> ExitCode {
    let fail = match (threshold, pack.max_severity()) {
        (Some(t), Some(max)) => max >= t,
        _ => false,
    };
    ExitCode::from(if fail { EXIT_FINDINGS } else { EXIT_OK })
}
