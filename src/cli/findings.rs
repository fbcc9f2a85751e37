//! `auditlake findings`: the findings of a period alone (for a SOC or a SIEM), and
//! `auditlake findings ack ID`, which records that a person has looked at one.

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::{
    parse_day_arg, runtime, write_output, AcksArg, ClusterArg, Global, Judging, PeriodArgs,
    RulesArgs,
};
use super::report::{exit_code, FailOn};
use super::EXIT_OK;
use crate::report::acks::{valid_id, Ack};
use crate::report::findings::{Finding, Severity};
use crate::report::ocsf;
use crate::report::render::{md_findings, Listed};
use crate::{Error, Result};

/// List the findings of a period, or acknowledge one (`findings ack ID`).
///
/// The findings are those of `report` (same rules, same ids), without the evidence
/// tables: a table for people, JSON or NDJSON for scripts, OCSF Detection Findings for a
/// SIEM. Acknowledged findings stay listed, apart, and do not fail --fail-on.
///
/// Examples:
///   auditlake findings --lake ./lake --from 2025-06-01 --to 2025-06-30
///   auditlake findings --lake ./lake --from 2025-06-01 --format ocsf -o findings.ndjson
///   auditlake findings ack 3fa2c1d9e0b7a411 --reason "planned key rotation" --until 2025-07-31
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct FindingsArgs {
    #[command(subcommand)]
    pub action: Option<FindingsAction>,
    #[command(flatten)]
    pub period: PeriodArgs,
    #[arg(long, value_enum, default_value_t = FindingsFormat::Md)]
    pub format: FindingsFormat,
    /// Write to this file instead of stdout; a path or a URL (s3://bucket/findings.ndjson).
    #[arg(short = 'o', long = "output", alias = "out", value_name = "PATH|URL")]
    pub output: Option<String>,
    /// Exit with 1 when a finding of this severity or higher is neither suppressed by an
    /// allowlist nor acknowledged.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
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

/// How the findings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FindingsFormat {
    /// A table: active findings, then the acknowledged and the suppressed.
    Md,
    /// One JSON document: the findings and the period's coverage.
    Json,
    /// One finding per line, as JSON.
    Ndjson,
    /// One OCSF Detection Finding (class 2004) per line.
    Ocsf,
}

#[derive(clap::Subcommand, Debug)]
pub enum FindingsAction {
    /// Acknowledge a finding by its id: it stays listed, apart, and no longer fails
    /// --fail-on (until the day after --until, when given).
    Ack(AckArgs),
}

#[derive(clap::Args, Debug)]
pub struct AckArgs {
    /// The finding's id (the `id` column of a report or of `auditlake findings`).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Why it needs no more attention (kept with the ack).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Last day (UTC, inclusive) the ack holds; afterwards the finding is back.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day_arg)]
    pub until: Option<i32>,
    /// Who acknowledges it (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// The finding's kind and tenant, kept in the file for whoever reads it.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub acks: AcksArg,
}

pub fn run(args: FindingsArgs, global: &Global) -> Result<ExitCode> {
    if let Some(FindingsAction::Ack(a)) = args.action {
        return ack(a, global);
    }
    let rt = runtime()?;
    let judging = Judging {
        names: Vec::new(),
        memory_limit: args.memory_limit,
        rules: &args.rules,
        acks: &args.acks,
        cluster: &args.cluster,
    };
    let opts = args.period.report_options(&rt, global, judging)?;
    let pack = rt.block_on(crate::report::run_findings(&opts))?;
    let text = match args.format {
        FindingsFormat::Md => table(&pack),
        FindingsFormat::Json => {
            let doc = serde_json::json!({
                "coverage": pack.coverage, "findings": pack.findings,
                "finding_rules": pack.finding_rules,
            });
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        FindingsFormat::Ndjson => {
            let mut s = String::new();
            for f in &pack.findings {
                s.push_str(&serde_json::to_string(f)?);
                s.push('\n');
            }
            s
        }
        FindingsFormat::Ocsf => ocsf::lines(&pack.findings, &pack.finding_rules, &pack.coverage),
    };
    match &args.output {
        Some(path) => {
            write_output(
                path,
                None,
                text.into_bytes(),
                &args.period.lake.storage_options,
            )?;
            crate::notes::note(&format!(
                "{} findings ({} active) written to {path}",
                pack.findings.len(),
                pack.active().count()
            ));
        }
        None => crate::write_stdout(&text)?,
    }
    Ok(exit_code(args.fail_on.map(Severity::from), &pack))
}

/// The findings as tables: active, acknowledged, suppressed.
fn table(pack: &crate::report::ReportPack) -> String {
    let c = &pack.coverage;
    let mut s = format!("Findings of {} to {} in {}", c.from, c.to, c.lake);
    if let Some(h) = &c.chain {
        s.push_str(&format!(
            " (chain head {} after {} events)",
            h.head, h.length
        ));
    }
    s.push_str(".\n");
    let sections: [(&str, Vec<&Finding>, Listed); 3] = [
        ("Active", pack.active().collect(), Listed::Active),
        (
            "Acknowledged",
            pack.acknowledged().collect(),
            Listed::Acknowledged,
        ),
        (
            "Suppressed by allowlists",
            pack.suppressed().collect(),
            Listed::Suppressed,
        ),
    ];
    for (title, list, listed) in sections {
        s.push_str(&format!("\n## {title}: {}\n", list.len()));
        if !list.is_empty() {
            s.push('\n');
            md_findings(&mut s, &list, listed);
        }
    }
    s
}

fn ack(a: AckArgs, global: &Global) -> Result<ExitCode> {
    if !valid_id(&a.id) {
        return Err(Error::Usage(format!(
            "{:?} is not a finding id (16 hex digits, the `id` column of a report)",
            a.id
        )));
    }
    if a.reason.trim().is_empty() {
        return Err(Error::Usage("--reason must say why".into()));
    }
    let cfg = global.load_config()?;
    let path: PathBuf = a.acks.path(&cfg).ok_or_else(|| {
        Error::Usage("no acks file: give --acks FILE (no config directory to put it in)".into())
    })?;
    let mut acks = crate::report::acks::Acks::load(&path)?;
    let by =
        a.by.or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".into());
    let until = a.until.map(crate::time::format_day);
    acks.add(Ack {
        id: a.id.to_ascii_lowercase(),
        reason: a.reason,
        by: by.clone(),
        at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        until: until.clone(),
        kind: a.kind,
        tenant_id: a.tenant,
    });
    acks.save(&path)?;
    crate::notes::note(&format!(
        "finding {} acknowledged by {by}{} in {}",
        a.id,
        until.map(|u| format!(" until {u}")).unwrap_or_default(),
        path.display()
    ));
    Ok(ExitCode::from(EXIT_OK))
}
