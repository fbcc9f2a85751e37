//! The compliance report pack: named reports over a period, with the
//! coverage of that period first, rendered for people or machines.
//!
//! Each report is a `.sql` file under `sql/reports/` (embedded) whose header
//! gives its title, the question it answers and the rows it *flags* for review — a
//! SQL boolean over the report's own columns. Its rows are the evidence; the few
//! that need attention are the findings (`findings`), ranked by severity, judged by
//! the rules (`rules`) against each tenant's history. The period is applied to
//! `events` before any view sees a row, so only its partitions are read.

pub mod acks;
pub mod findings;
pub mod local_offset;
pub mod ocsf;
pub mod render;
pub mod rules;
pub mod svg;

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use datafusion::common::DFSchema;

use crate::lake::store::LakeStore;
use crate::lake::{ledger, live_set};
use crate::query::{build_session, SessionOptions};
use crate::status::gaps;
use crate::time::format_day;
use crate::{Error, Result};
use findings::{Finding, FindingRule, Severity, TenantBaseline};
use rules::Rules;

/// The built-in reports, in the order they are printed.
pub const BUILTIN_REPORTS: &[(&str, &str)] = &[
    (
        "failed_auth",
        include_str!("../../sql/reports/failed_auth.sql"),
    ),
    (
        "brute_force",
        include_str!("../../sql/reports/brute_force.sql"),
    ),
    (
        "key_first_use",
        include_str!("../../sql/reports/key_first_use.sql"),
    ),
    (
        "key_lifecycle",
        include_str!("../../sql/reports/key_lifecycle.sql"),
    ),
    (
        "privileged",
        include_str!("../../sql/reports/privileged.sql"),
    ),
    (
        "new_client_ips",
        include_str!("../../sql/reports/new_client_ips.sql"),
    ),
    ("off_hours", include_str!("../../sql/reports/off_hours.sql")),
    (
        "daily_summary",
        include_str!("../../sql/reports/daily_summary.sql"),
    ),
    ("keys", include_str!("../../sql/reports/keys.sql")),
];

/// Reports that run only when named (`auditlake report keys`): a table of every key.
pub const ON_REQUEST: &[&str] = &["keys"];

/// A report as defined by its file.
#[derive(Debug, Clone)]
pub struct ReportDef {
    pub name: String,
    pub title: String,
    pub question: String,
    /// SQL boolean over the report's columns flagging a row for review.
    pub flag: String,
    pub flag_rule: String,
    pub sql: String,
}

impl ReportDef {
    /// Reads the `-- key: value` header of a report file.
    pub fn parse(name: &str, text: &str) -> Result<ReportDef> {
        let mut head: BTreeMap<&str, String> = BTreeMap::new();
        for line in text
            .lines()
            .take_while(|l| l.trim_start().starts_with("--"))
        {
            if let Some((k, v)) = line.trim_start().trim_start_matches('-').split_once(':') {
                head.insert(k.trim(), v.trim().to_string());
            }
        }
        let get = |k: &str| {
            head.get(k)
                .cloned()
                .ok_or_else(|| Error::Usage(format!("report {name}: header has no `-- {k}:` line")))
        };
        Ok(ReportDef {
            name: name.to_string(),
            title: get("title")?,
            question: get("question")?,
            flag: get("flag")?,
            flag_rule: get("flag_rule")?,
            sql: text.to_string(),
        })
    }
}

/// All built-in reports.
pub fn builtin() -> Vec<ReportDef> {
    BUILTIN_REPORTS
        .iter()
        .map(|(n, t)| ReportDef::parse(n, t).expect("built-in report headers are valid"))
        .collect()
}

/// What the period's evidence covers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Coverage {
    pub lake: String,
    pub tenant: Option<String>,
    pub from: String,
    pub to: String,
    pub days_in_period: u64,
    /// Per tenant: days with data and the days of the period without any.
    pub tenants: Vec<TenantCoverage>,
    /// Converted sources whose time range touches the period.
    pub sources: Vec<String>,
    pub generated_at: String,
    pub auditlake_version: String,
    /// The lake state the report was computed from: its chain's head and length
    /// (`verify --expect-head` checks that a later lake still holds it).
    pub chain: Option<crate::lake::chain::Head>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantCoverage {
    pub tenant_id: String,
    pub days_with_data: u64,
    pub days_without_data: Vec<String>,
}

impl Coverage {
    /// Whether any day of the period has no data for some tenant.
    pub fn has_gaps(&self) -> bool {
        self.tenants.is_empty() || self.tenants.iter().any(|t| !t.days_without_data.is_empty())
    }
}

/// One report's result.
pub struct ReportResult {
    pub def: ReportDef,
    pub batches: Vec<RecordBatch>,
    /// Per row, in order: whether the report's flag rule picks it out.
    pub flagged_rows: Vec<bool>,
}

impl ReportResult {
    pub fn rows(&self) -> usize {
        self.flagged_rows.len()
    }
    pub fn flagged(&self) -> usize {
        self.flagged_rows.iter().filter(|f| **f).count()
    }
}

/// The whole pack.
pub struct ReportPack {
    pub coverage: Coverage,
    /// Ranked: unsuppressed by severity, then the suppressed ones.
    pub findings: Vec<Finding>,
    pub baselines: Vec<TenantBaseline>,
    pub finding_rules: Vec<FindingRule>,
    pub rules: Rules,
    pub reports: Vec<ReportResult>,
}

impl ReportPack {
    /// The highest severity among the findings no allowlist suppresses.
    pub fn max_severity(&self) -> Option<Severity> {
        self.active().map(|f| f.severity).max()
    }
    /// Findings no allowlist suppresses and no one has acknowledged.
    pub fn active(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.suppressed.is_none() && f.acknowledged.is_none())
    }
    /// Findings someone acknowledged (and no allowlist suppresses): listed, not counted.
    pub fn acknowledged(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.suppressed.is_none() && f.acknowledged.is_some())
    }
    /// Findings an allowlist suppresses (listed as such, never dropped).
    pub fn suppressed(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.suppressed.is_some())
    }
    /// Unsuppressed findings whose evidence is in report `name`.
    pub fn findings_of(&self, name: &str) -> usize {
        self.active().filter(|f| f.report == name).count()
    }
}

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub store: LakeStore,
    pub tenant: Option<String>,
    /// Inclusive UTC days; default: the lake's first/last day with data.
    pub from: Option<i32>,
    pub to: Option<i32>,
    /// Report names; empty: all.
    pub names: Vec<String>,
    /// The rules findings are judged by.
    pub rules: Rules,
    /// Findings people have acknowledged.
    pub acks: acks::Acks,
    /// Bytes the query engine may hold (None: half the machine's memory); the findings keep
    /// the period in memory only when it fits in a quarter of it.
    pub memory_limit: Option<usize>,
    /// A Ballista scheduler (`df://host:port`) that runs the reports' queries.
    pub cluster: Option<String>,
}

/// Runs the reports over the period.
pub async fn run(opts: &ReportOptions) -> Result<ReportPack> {
    run_with(opts, true).await
}

/// Only the findings of the period (of the named reports' rules, or all): the pack
/// without its evidence tables, for `auditlake findings`.
pub async fn run_findings(opts: &ReportOptions) -> Result<ReportPack> {
    run_with(opts, false).await
}

async fn run_with(opts: &ReportOptions, evidence: bool) -> Result<ReportPack> {
    let all = builtin();
    let defs: Vec<ReportDef> = if opts.names.is_empty() {
        all.into_iter()
            .filter(|d| !ON_REQUEST.contains(&d.name.as_str()))
            .collect()
    } else {
        opts.names
            .iter()
            .map(|n| {
                all.iter().find(|d| &d.name == n).cloned().ok_or_else(|| {
                    Error::Usage(format!(
                        "no report named {n:?}; reports: {}",
                        all.iter()
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?
    };
    // The partitions with live files, from the manifest: read once for the coverage
    // and the period's bounds.
    let parts: Vec<crate::lake::PartitionDir> = live_set(&opts.store, opts.tenant.as_deref())
        .await?
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    if opts.tenant.is_some() && parts.is_empty() {
        return Err(Error::Usage(format!(
            "tenant {:?} has no data in {}",
            opts.tenant.as_deref().unwrap_or(""),
            opts.store.display
        )));
    }
    let first = parts.iter().map(|p| p.key.day).min();
    let last = parts.iter().map(|p| p.key.day).max();
    let (from, to) = match (opts.from.or(first), opts.to.or(last)) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            return Err(Error::Usage(
                "the lake holds no events and no --from/--to was given".into(),
            ))
        }
    };
    if from > to {
        return Err(Error::Usage(format!(
            "--from {} is after --to {}",
            format_day(from),
            format_day(to)
        )));
    }
    let coverage = coverage(opts, &parts, from, to).await?;
    let session = build_session(&SessionOptions {
        store: opts.store.clone(),
        tenant: opts.tenant.clone(),
        tenants: Vec::new(),
        period: Some((from, to)),
        sql_dir: None,
        memory_limit: opts.memory_limit,
        baseline_days: Some(opts.rules.baseline_days),
        cluster: opts.cluster.clone(),
        zones: opts
            .rules
            .zones()
            .map_err(|e| Error::Usage(e.to_string()))?,
    })
    .await?;
    let names: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
    let mut reports = Vec::new();
    for def in defs.into_iter().filter(|_| evidence) {
        let batches = session
            .ctx
            .sql(&def.sql)
            .await
            .map_err(|e| Error::Usage(format!("report {}: {e}", def.name)))?
            .collect()
            .await?;
        let flagged_rows = evaluate_flags(&session.ctx, &def, &batches)?;
        reports.push(ReportResult {
            def,
            batches,
            flagged_rows,
        });
    }
    let tenants: Vec<String> = coverage
        .tenants
        .iter()
        .map(|t| t.tenant_id.clone())
        .collect();
    let limit = opts
        .memory_limit
        .unwrap_or_else(crate::query::default_memory_limit);
    let found = findings::run(
        &session,
        &opts.rules,
        &opts.acks,
        limit,
        (from, to),
        &tenants,
        &names,
    )
    .await?;
    Ok(ReportPack {
        coverage,
        findings: found.findings,
        baselines: found.baselines,
        finding_rules: found.rules,
        rules: opts.rules.clone(),
        reports,
    })
}

/// Evaluates the report's flag expression on each of its rows.
fn evaluate_flags(
    ctx: &datafusion::prelude::SessionContext,
    def: &ReportDef,
    batches: &[RecordBatch],
) -> Result<Vec<bool>> {
    let mut out = Vec::new();
    for b in batches {
        let schema = DFSchema::try_from(b.schema().as_ref().clone())?;
        let expr = ctx
            .parse_sql_expr(&def.flag, &schema)
            .map_err(|e| Error::Usage(format!("report {}: flag {:?}: {e}", def.name, def.flag)))?;
        let phys = ctx.create_physical_expr(expr, &schema)?;
        let values = phys.evaluate(b)?.into_array(b.num_rows())?;
        let bools = values.as_boolean_opt().ok_or_else(|| {
            Error::Usage(format!(
                "report {}: flag {:?} is not a boolean",
                def.name, def.flag
            ))
        })?;
        out.extend((0..b.num_rows()).map(|i| bools.is_valid(i) && bools.value(i)));
    }
    Ok(out)
}

async fn coverage(
    opts: &ReportOptions,
    parts: &[crate::lake::PartitionDir],
    from: i32,
    to: i32,
) -> Result<Coverage> {
    let mut by_tenant: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for p in parts {
        by_tenant.entry(p.key.tenant.to_string()).or_default();
        if p.key.day >= from && p.key.day <= to {
            by_tenant
                .get_mut(p.key.tenant.as_ref())
                .expect("inserted")
                .push(p.key.day);
        }
    }
    let tenants = by_tenant
        .into_iter()
        .map(|(tenant_id, mut days)| {
            days.sort_unstable();
            days.dedup();
            // Bracket with the days just outside the period, so its edges count as gaps too.
            let mut bracket = vec![from - 1];
            bracket.extend(&days);
            bracket.push(to + 1);
            TenantCoverage {
                tenant_id,
                days_with_data: days.len() as u64,
                days_without_data: gaps(&bracket),
            }
        })
        .collect();
    let period_start = format_day(from);
    let period_end = format!("{}T23:59:59.999999Z", format_day(to));
    let sources = ledger::load(&opts.store)
        .await?
        .into_iter()
        .filter(|e| match (&e.time_min, &e.time_max) {
            (Some(a), Some(b)) => {
                a.as_str() <= period_end.as_str() && b.as_str() >= period_start.as_str()
            }
            _ => false,
        })
        .map(|e| e.name)
        .collect();
    Ok(Coverage {
        lake: opts.store.display.clone(),
        tenant: opts.tenant.clone(),
        from: format_day(from),
        to: format_day(to),
        days_in_period: (to - from + 1) as u64,
        tenants,
        sources,
        generated_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        auditlake_version: env!("CARGO_PKG_VERSION").to_string(),
        chain: crate::lake::chain::head(&opts.store).await?,
    })
}
