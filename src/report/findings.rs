//! Findings: the few rows of a period that need a person's attention, each with a
//! severity and a reason in words, judged against the tenant's own history.
//!
//! Each rule is a `.sql` file under `sql/findings/` (its header names its kind, the
//! evidence report it belongs to and its rule) over `events`, `events_baseline` (the
//! look-back window) and the shared views of `baseline.sql`. Rust turns the rows into
//! findings: severities, reasons, merging overlapping windows, downgrading where a
//! tenant has too little history, allowlists, and the ranking.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::{MemTable, TableProvider};
use datafusion::prelude::SessionContext;

use super::rules::{ip_matches, window_bounds, Rules};
use crate::query::{run_statements, Session, BUILTIN_SQL};
use crate::time::{format_day, parse_time};
use crate::{Error, Result};

/// How much a finding needs attention, least first (so `Ord` ranks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
    fn up(self) -> Severity {
        match self {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            _ => Severity::High,
        }
    }
}

/// One finding.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// Stable across runs: the same incident has the same id tomorrow and in a rerun
    /// over a longer period (see [`finding_id`]); acknowledgements name it.
    pub id: String,
    pub severity: Severity,
    pub kind: String,
    /// The evidence report its rows are in.
    pub report: String,
    pub tenant_id: String,
    /// First event it is about (UTC).
    pub time: String,
    /// Last event it is about (UTC).
    pub until: String,
    pub actor_id: Option<String>,
    pub client_ip: Option<String>,
    pub ouid: Option<String>,
    pub reason: String,
    /// Why an allowlist expects it; suppressed findings are listed, never counted.
    pub suppressed: Option<String>,
    /// Who acknowledged it, when, why and until when; acknowledged findings are listed
    /// apart and do not fail `--fail-on`.
    pub acknowledged: Option<super::acks::Ack>,
    #[serde(skip)]
    pub time_us: i64,
    #[serde(skip)]
    pub until_us: i64,
}

/// A finding rule as defined by its file, with the rules' numbers filled in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FindingRule {
    pub kind: String,
    pub report: String,
    pub rule: String,
    #[serde(skip)]
    pub sql: String,
}

/// The built-in finding rules, in the order they run.
pub const BUILTIN_RULES: &[&str] = &[
    include_str!("../../sql/findings/partition_admin.sql"),
    include_str!("../../sql/findings/mass_key_destruction.sql"),
    include_str!("../../sql/findings/failed_login_burst.sql"),
    include_str!("../../sql/findings/new_actor.sql"),
    include_str!("../../sql/findings/new_client_ip.sql"),
    include_str!("../../sql/findings/off_hours.sql"),
    include_str!("../../sql/findings/dormant_key.sql"),
    include_str!("../../sql/findings/new_key_user.sql"),
    include_str!("../../sql/findings/pin_change.sql"),
    include_str!("../../sql/findings/new_replication_target.sql"),
    include_str!("../../sql/findings/key_past_cryptoperiod.sql"),
    include_str!("../../sql/findings/unused_key.sql"),
    include_str!("../../sql/findings/key_users_widen.sql"),
];

const BASELINE_SQL: &str = include_str!("../../sql/findings/baseline.sql");

/// Kinds judged against the look-back window: downgraded when a tenant has too little of it.
const BASELINE_KINDS: &[&str] = &[
    "new_actor",
    "new_client_ip",
    "off_hours",
    "new_key_user",
    "new_replication_target",
];

/// What the baseline of one tenant rests on, for the coverage section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantBaseline {
    pub tenant_id: String,
    /// The look-back window, inclusive UTC days.
    pub from: String,
    pub to: String,
    pub history_days: u64,
    pub history_events: u64,
    /// Whether there is enough history to judge what is new.
    pub enough: bool,
    /// `learned` from history, or `set` in the rules (with the hours).
    pub business_hours: String,
    /// The tenant's clock: an IANA zone (`Europe/Berlin`) or a fixed `UTC+09:00`.
    pub timezone: String,
    /// Its offset from UTC at the start of the period, in minutes.
    pub utc_offset_minutes: i32,
}

/// Findings of a period and what they were judged against.
pub struct Findings {
    pub findings: Vec<Finding>,
    pub baselines: Vec<TenantBaseline>,
    pub rules: Vec<FindingRule>,
}

/// The rules' numbers by name, as `{name}` in the SQL files.
fn params(rules: &Rules) -> Vec<(&'static str, u32)> {
    vec![
        ("baseline_days", rules.baseline_days),
        ("min_history_days", rules.min_history_days),
        ("worked_min_days", rules.worked_min_days),
        ("dormant_days", rules.dormant_days),
        ("burst_failures", rules.burst_failures),
        ("burst_window_minutes", rules.burst_window_minutes),
        ("mass_destroy_count", rules.mass_destroy_count),
        (
            "mass_destroy_window_minutes",
            rules.mass_destroy_window_minutes,
        ),
        ("key_owner_min_uses", rules.key_owner_min_uses),
        ("key_owner_max_actors", rules.key_owner_max_actors),
        ("key_widen_min_new", rules.key_widen_min_new),
        ("cryptoperiod_days", rules.cryptoperiod_days),
        ("routine_factor", rules.routine_factor),
        ("routine_new_per_30_days", rules.routine_new_per_30_days),
        ("unused_key_days", rules.unused_key_days),
    ]
}

fn fill(text: &str, rules: &Rules) -> String {
    params(rules)
        .into_iter()
        .fold(text.to_string(), |s, (k, v)| {
            s.replace(&format!("{{{k}}}"), &v.to_string())
        })
}

/// The built-in rules with the numbers of `rules` filled in.
pub fn builtin(rules: &Rules) -> Vec<FindingRule> {
    BUILTIN_RULES
        .iter()
        .map(|text| {
            let head = |k: &str| {
                text.lines()
                    .take_while(|l| l.starts_with("--"))
                    .find_map(|l| {
                        l.trim_start_matches('-')
                            .trim()
                            .strip_prefix(k)?
                            .strip_prefix(':')
                            .map(|v| v.trim().to_string())
                    })
                    .expect("built-in finding rules have kind, report and rule")
            };
            FindingRule {
                kind: head("kind"),
                report: head("report"),
                rule: fill(&head("rule"), rules),
                sql: fill(text, rules),
            }
        })
        .collect()
}

/// `rule_tenants`: each tenant's working time from the rules, and a `*` row for the
/// others; and `local_offset(tenant_id, time)`, each tenant's clock (see
/// [`super::local_offset`]).
fn register_clocks(ctx: &SessionContext, rules: &Rules) -> Result<()> {
    let mut names = vec!["*".to_string()];
    let mut clocks = vec![rules.clock_of(None).map_err(usage)?];
    for t in rules.tenants.keys() {
        names.push(t.clone());
        clocks.push(rules.clock_of(Some(t)).map_err(usage)?);
    }
    ctx.register_udf(super::local_offset::LocalOffset::udf(
        names
            .iter()
            .zip(&clocks)
            .skip(1)
            .map(|(n, c)| (n.clone(), c.zone))
            .collect(),
        clocks[0].zone,
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("tenant_id", DataType::Utf8, false),
        Field::new("work_start", DataType::Int32, true),
        Field::new("work_end", DataType::Int32, true),
        Field::new("work_days", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(Int32Array::from(
                clocks
                    .iter()
                    .map(|c| c.hours.map(|h| h.0 as i32))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int32Array::from(
                clocks
                    .iter()
                    .map(|c| c.hours.map(|h| h.1 as i32))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                clocks.iter().map(|c| c.days.clone()).collect::<Vec<_>>(),
            )),
        ],
    )?;
    ctx.register_table(
        "rule_tenants",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    register_cryptoperiods(ctx, rules)
}

/// `rule_cryptoperiods`: the rules' `[[cryptoperiods]]` in order (`priority`), patterns as
/// SQL LIKE patterns, and last a catch-all row with `cryptoperiod_days`.
fn register_cryptoperiods(ctx: &SessionContext, rules: &Rules) -> Result<()> {
    let like = |p: &str| {
        p.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
            .replace('*', "%")
    };
    let mut rows: Vec<(Option<String>, String, i64, String)> = rules
        .cryptoperiods
        .iter()
        .map(|c| {
            let what = match (&c.tenant, &c.key) {
                (Some(t), Some(k)) => format!("the rules' cryptoperiod for keys {k} of tenant {t}"),
                (Some(t), None) => format!("the rules' cryptoperiod for tenant {t}"),
                (None, Some(k)) => format!("the rules' cryptoperiod for keys {k}"),
                (None, None) => "the rules' cryptoperiod".to_string(),
            };
            (
                c.tenant.clone(),
                like(c.key.as_deref().unwrap_or("*")),
                c.days as i64,
                c.reason
                    .clone()
                    .map_or(what.clone(), |r| format!("{what}: {r}")),
            )
        })
        .collect();
    rows.push((
        None,
        "%".into(),
        rules.cryptoperiod_days as i64,
        "the default cryptoperiod (NIST SP 800-57 Part 1: up to 2 years of originator usage; PCI DSS 3.7)".into(),
    ));
    let schema = Arc::new(Schema::new(vec![
        Field::new("priority", DataType::Int64, false),
        Field::new("tenant_id", DataType::Utf8, true),
        Field::new("pattern", DataType::Utf8, false),
        Field::new("days", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows.len() as i64)),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0.clone()))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.clone()),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.3.clone()),
            )),
        ],
    )?;
    ctx.deregister_table("rule_cryptoperiods")?;
    ctx.register_table(
        "rule_cryptoperiods",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}

fn usage(e: super::rules::RulesError) -> Error {
    Error::Usage(e.to_string())
}

/// A result row: column name to its text (None: null).
type Row = BTreeMap<String, Option<String>>;

fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Row>> {
    let opts = FormatOptions::default();
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<_, _>>()?;
        let names: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for i in 0..b.num_rows() {
            out.push(
                names
                    .iter()
                    .zip(b.columns().iter().zip(&fmts))
                    .map(|(n, (c, f))| (n.clone(), c.is_valid(i).then(|| f.value(i).to_string())))
                    .collect(),
            );
        }
    }
    Ok(out)
}

fn get<'a>(r: &'a Row, k: &str) -> Option<&'a str> {
    r.get(k)
        .and_then(|v| v.as_deref())
        .filter(|v| !v.is_empty())
}

fn flag(r: &Row, k: &str) -> bool {
    get(r, k) == Some("true")
}

fn num(r: &Row, k: &str) -> u64 {
    get(r, k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `2025-03-01T10:00:00.123456Z` as `2025-03-01 10:00:00`.
fn short(t: &str) -> String {
    t.replace('T', " ").chars().take(19).collect()
}

/// An id shortened for reading (the full one is in its column).
fn id(s: Option<&str>) -> String {
    match s {
        Some(s) if s.chars().count() > 12 => format!("{}…", s.chars().take(8).collect::<String>()),
        Some(s) => s.to_string(),
        None => "(none)".into(),
    }
}

fn weekday(local: &str) -> &'static str {
    let day = local
        .get(..10)
        .and_then(crate::time::parse_day)
        .unwrap_or(0) as i64;
    [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ][day.rem_euclid(7) as usize]
}

/// The columns the rules read (not the record's meta, extra, source or resource id), strings
/// as plain Utf8: a string view array keeps the whole page it was read from, and a hash
/// join's build side accounts for every page its few rows point into.
const RULE_COLUMNS: &str = "time, arrow_cast(tenant_id, 'Utf8') AS tenant_id, day, \
arrow_cast(vendor, 'Utf8') AS vendor, arrow_cast(actor_id, 'Utf8') AS actor_id, \
arrow_cast(action, 'Utf8') AS action, arrow_cast(status, 'Utf8') AS status, \
arrow_cast(outcome, 'Utf8') AS outcome, arrow_cast(trace_id, 'Utf8') AS trace_id, \
arrow_cast(client_ip, 'Utf8') AS client_ip, arrow_cast(hsm_id, 'Utf8') AS hsm_id, \
arrow_cast(part_id, 'Utf8') AS part_id, arrow_cast(role, 'Utf8') AS role, \
arrow_cast(ouid, 'Utf8') AS ouid";

/// What a row of the lake costs held in memory, all columns (a generous estimate: the
/// lake's own rows average 150-250 bytes as Arrow arrays).
const BYTES_PER_ROW: u64 = 256;

/// Runs the rules whose evidence report is among `reports` over the session's period.
///
/// The rules run over in-memory copies of what they read. On a cluster those cannot be
/// sent to the executors, so the cluster reads the period and its look-back once and
/// the rules run here, in a local session over the rows it returned (the same rows,
/// so the same findings).
pub async fn run(
    session: &Session,
    rules: &Rules,
    acks: &super::acks::Acks,
    memory_limit: usize,
    period: (i32, i32),
    tenants: &[String],
    reports: &[String],
) -> Result<Findings> {
    let source = &session.ctx;
    let local;
    let ctx = if session.on_cluster {
        local = SessionContext::new();
        let (name, catalog) = BUILTIN_SQL[0];
        debug_assert_eq!(name, "action_catalog");
        local.sql(catalog).await?;
        &local
    } else {
        source
    };
    register_clocks(ctx, rules)?;
    // Every rule reads the period and its look-back: read them from the lake once and keep
    // them in memory when they fit in a quarter of the memory limit (at an estimated
    // BYTES_PER_ROW); otherwise every rule streams them from the lake again, within the
    // limit however long the period and look-back.
    let mut rows_of_source: BTreeMap<&str, u64> = BTreeMap::new();
    for view in ["events", "events_baseline", "events_before_period"] {
        let n = source
            .sql(&format!("SELECT count(*) AS n FROM {view}"))
            .await?
            .collect()
            .await?;
        let n = n
            .first()
            .and_then(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
            })
            .map_or(0, |a| a.value(0).max(0) as u64);
        rows_of_source.insert(view, n);
    }
    for (name, sql) in [
        ("events", format!("SELECT {RULE_COLUMNS} FROM events")),
        (
            "events_baseline",
            format!("SELECT {RULE_COLUMNS} FROM events_baseline"),
        ),
        (
            "key_events_before_period",
            "SELECT time, tenant_id, vendor, action, ouid, actor_id, client_ip \
             FROM events_before_period WHERE outcome = 'success' AND ouid IS NOT NULL"
                .to_string(),
        ),
        (
            "actor_ips_before_period",
            "SELECT DISTINCT tenant_id, actor_id, client_ip FROM events_before_period \
             WHERE outcome = 'success'"
                .to_string(),
        ),
    ] {
        let df = source.sql(&sql).await?;
        let from = match name {
            "events" | "events_baseline" => name,
            _ => "events_before_period",
        };
        let rows = rows_of_source.get(from).copied().unwrap_or(0);
        let fits = rows.saturating_mul(BYTES_PER_ROW) <= memory_limit as u64 / 4;
        tracing::info!(
            table = name,
            rows,
            in_memory = fits || session.on_cluster,
            "findings input"
        );
        let table: Arc<dyn TableProvider> = if session.on_cluster {
            let declared = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await?;
            let schema = batches.first().map_or(declared, |b| b.schema());
            Arc::new(MemTable::try_new(schema, vec![batches])?)
        } else if fits {
            df.cache().await?.into_view()
        } else {
            df.into_view()
        };
        ctx.deregister_table(name)?;
        ctx.register_table(name, table)?;
    }
    run_statements(
        ctx,
        &fill(BASELINE_SQL, rules),
        &datafusion::execution::context::SQLOptions::new(),
    )
    .await
    .map_err(|e| Error::Usage(format!("finding baseline: {e}")))?;
    let history: BTreeMap<String, (u64, u64)> = rows_of(
        &ctx.sql("SELECT tenant_id, history_days, history_events FROM tenant_history")
            .await?
            .collect()
            .await?,
    )?
    .into_iter()
    .map(|r| {
        (
            get(&r, "tenant_id").unwrap_or_default().to_string(),
            (num(&r, "history_days"), num(&r, "history_events")),
        )
    })
    .collect();
    let baselines: Vec<TenantBaseline> = tenants
        .iter()
        .map(|t| {
            let (days, events) = history.get(t).copied().unwrap_or((0, 0));
            let clock = rules.clock_of(Some(t)).map_err(usage)?;
            Ok(TenantBaseline {
                tenant_id: t.clone(),
                from: format_day(period.0 - rules.baseline_days as i32),
                to: format_day(period.0 - 1),
                history_days: days,
                history_events: events,
                enough: days >= rules.min_history_days as u64,
                business_hours: match clock.hours {
                    Some((a, b)) => format!(
                        "set: {:02}:{:02}-{:02}:{:02} on days {}",
                        a / 60,
                        a % 60,
                        b / 60,
                        b % 60,
                        clock.days
                    ),
                    None => "learned".into(),
                },
                timezone: clock.zone.name(),
                utc_offset_minutes: clock
                    .zone
                    .offset_seconds_at(period.0 as i64 * crate::time::MICROS_PER_DAY)
                    / 60,
            })
        })
        .collect::<Result<_>>()?;
    let enough: BTreeMap<&str, u64> = baselines
        .iter()
        .map(|b| (b.tenant_id.as_str(), b.history_days))
        .collect();
    let defs: Vec<FindingRule> = builtin(rules)
        .into_iter()
        .filter(|d| reports.iter().any(|r| r == &d.report))
        .collect();
    let mut findings = Vec::new();
    // The period's bounds, for rules that ask when something falls due in it.
    let bounds = |sql: &str| {
        sql.replace(
            "{period_start_us}",
            &(period.0 as i64 * crate::time::MICROS_PER_DAY).to_string(),
        )
        .replace(
            "{period_end_us}",
            &((period.1 as i64 + 1) * crate::time::MICROS_PER_DAY - 1).to_string(),
        )
    };
    for def in &defs {
        let started = std::time::Instant::now();
        let batches = ctx
            .sql(&bounds(&def.sql))
            .await
            .map_err(|e| Error::Usage(format!("finding rule {}: {e}", def.kind)))?
            .collect()
            .await?;
        let rows = rows_of(&batches)?;
        tracing::info!(kind = %def.kind, rows = rows.len(), ms = started.elapsed().as_millis() as u64, "finding rule");
        let mut made = judge(def, &rows, rules);
        for f in &mut made {
            let days = enough.get(f.tenant_id.as_str()).copied().unwrap_or(0);
            if BASELINE_KINDS.contains(&f.kind.as_str()) && days < rules.min_history_days as u64 {
                f.severity = Severity::Info;
                f.reason.push_str(&format!(
                    " (only {days} days of history before the period, {} needed: downgraded to info)",
                    rules.min_history_days
                ));
            }
        }
        findings.extend(made);
    }
    for f in &mut findings {
        f.suppressed = suppression(f, rules);
    }
    acks.apply(
        &mut findings,
        &crate::time::format_day(crate::time::today()),
    );
    // Active first, then acknowledged, then suppressed by an allowlist.
    let place = |f: &Finding| (f.suppressed.is_some(), f.acknowledged.is_some());
    findings.sort_by(|a, b| {
        place(a)
            .cmp(&place(b))
            .then(b.severity.cmp(&a.severity))
            .then(a.time_us.cmp(&b.time_us))
            .then(a.tenant_id.cmp(&b.tenant_id))
            .then(a.kind.cmp(&b.kind))
    });
    Ok(Findings {
        findings,
        baselines,
        rules: defs,
    })
}

/// A finding of `kind` about the row's tenant, actor, client IP and key.
fn finding(def: &FindingRule, r: &Row, severity: Severity, reason: String) -> Finding {
    let time = get(r, "time").unwrap_or_default().to_string();
    let time_us = parse_time(&time).unwrap_or(0);
    Finding {
        id: finding_id(&def.kind, r),
        severity,
        kind: def.kind.clone(),
        report: def.report.clone(),
        tenant_id: get(r, "tenant_id").unwrap_or_default().to_string(),
        until: time.clone(),
        time,
        actor_id: get(r, "actor_id").map(str::to_string),
        client_ip: get(r, "client_ip").map(str::to_string),
        ouid: get(r, "ouid").map(str::to_string),
        reason,
        suppressed: None,
        acknowledged: None,
        time_us,
        until_us: time_us,
    }
}

/// A finding's id: a hash of its kind, tenant and the columns that name the incident,
/// which do not change when the period grows or moves on (the episode's first event, the
/// actor, the key; never a count, a list of addresses or a severity). 16 hex digits.
pub fn finding_id(kind: &str, r: &Row) -> String {
    let names: &[&str] = match kind {
        "failed_login_burst" => &["client_ip", "time"],
        "mass_key_destruction" => &["time"],
        "new_actor" => &["actor_id", "time"],
        "new_client_ip" | "off_hours" => &["actor_id", "client_ip", "time"],
        "dormant_key" => &["ouid", "time"],
        "new_key_user" => &["ouid", "actor_id", "time"],
        "new_replication_target" => &["part_id", "hsm_id", "time"],
        // The key is overdue however long the period: one incident per key.
        "key_past_cryptoperiod" => &["ouid"],
        "unused_key" => &["ouid", "time"],
        "key_users_widen" => &["ouid", "time"],
        _ => &["actor_id", "client_ip", "ouid", "part_id", "time"],
    };
    let mut text = format!("{kind}\u{1f}{}", get(r, "tenant_id").unwrap_or_default());
    for n in names {
        let v = get(r, n).unwrap_or_default();
        // Times as microseconds: the same instant whatever its text form.
        let v = match *n {
            "time" => parse_time(v).map_or(v.to_string(), |t| t.to_string()),
            _ => v.to_string(),
        };
        text.push_str(&format!("\u{1f}{n}={v}"));
    }
    crate::lake::chain::sha256(text.as_bytes())[..16].to_string()
}

/// Severities and reasons, rule by rule.
fn judge(def: &FindingRule, rows: &[Row], rules: &Rules) -> Vec<Finding> {
    let b = rules.baseline_days;
    match def.kind.as_str() {
        "failed_login_burst" => {
            merge_windows(def, rows, "failures", "last_failure", |r, n, last| {
                let who = match get(r, "client_ip") {
                    Some(ip) => format!("client IP {ip}"),
                    None => format!(
                        "actor {} (the log names no address)",
                        id(get(r, "actor_id"))
                    ),
                };
                let mut reason = format!(
                "{who} failed to log in {n} times within {} minutes ({} to {} UTC), as actor {} (threshold {})",
                rules.burst_window_minutes,
                short(get(r, "time").unwrap_or_default()),
                short(last),
                id(get(r, "actor_id")),
                rules.burst_failures
            );
                let peak = num(r, "baseline_peak");
                let enough = num(r, "history_days") >= rules.min_history_days as u64;
                let base = match peak {
                    0 => format!("no address failed that often in the {b} days before"),
                    p => format!(
                        "its worst {} minutes from one address in the {b} days before had {p}",
                        rules.burst_window_minutes
                    ),
                };
                let sev = match get(r, "success_after") {
                    Some(t) => {
                        reason.push_str(&format!(", then logged in successfully at {}", short(t)));
                        Severity::High
                    }
                    None if enough && n <= peak => {
                        reason.push_str(&format!("; within this tenant's routine: {base}"));
                        Severity::Low
                    }
                    None => {
                        if enough {
                            reason.push_str(&format!("; {base}"));
                        }
                        Severity::Medium
                    }
                };
                (sev, reason)
            })
        }
        "mass_key_destruction" => {
            merge_windows(def, rows, "destroys", "last_destroy", |r, n, last| {
                let w = rules.mass_destroy_window_minutes;
                let mut reason = format!(
                    "{n} keys destroyed within {w} minutes ({} to {} UTC), first by actor {} from {} (threshold {})",
                    short(get(r, "time").unwrap_or_default()),
                    short(last),
                    id(get(r, "actor_id")),
                    id(get(r, "client_ip")),
                    rules.mass_destroy_count
                );
                let peak = num(r, "baseline_peak");
                let days = num(r, "history_days");
                let base =
                    format!("this tenant's busiest {w} minutes in the {b} days before had {peak}");
                let sev = if days < rules.min_history_days as u64 {
                    reason.push_str(&format!(
                        "; too little history to compare with ({days} days, {} needed)",
                        rules.min_history_days
                    ));
                    Severity::Medium
                } else if n > peak * rules.routine_factor as u64 {
                    reason.push_str(&format!("; {base}"));
                    Severity::High
                } else if n > peak {
                    reason.push_str(&format!("; more than usual: {base}"));
                    Severity::Medium
                } else {
                    reason.push_str(&format!("; within this tenant's routine: {base}"));
                    Severity::Low
                };
                (sev, reason)
            })
        }
        _ => rows
            .iter()
            .map(|r| {
                let (sev, reason) = judge_row(&def.kind, r, rules, b);
                finding(def, r, sev, reason)
            })
            .collect(),
    }
}

fn judge_row(kind: &str, r: &Row, rules: &Rules, b: u32) -> (Severity, String) {
    let actor = id(get(r, "actor_id"));
    let ip = get(r, "client_ip").unwrap_or("(none)");
    let at = short(get(r, "time").unwrap_or_default());
    match kind {
        "partition_admin" => {
            // DPoD names a partition on an HSM; CloudHSM's whole HSM is the partition.
            let place = match (get(r, "part_id"), get(r, "hsm_id")) {
                (Some(p), h) => format!("partition {p} on HSM {}", h.unwrap_or("?")),
                (None, Some(h)) => format!("HSM {h}"),
                (None, None) => "the HSM".to_string(),
            };
            let action = get(r, "action").unwrap_or_default();
            let what = get(r, "what").unwrap_or(action);
            let grave = flag(r, "zeroize") || flag(r, "init");
            let done = if flag(r, "zeroize") {
                format!("{place} zeroized ({action})")
            } else if flag(r, "init") {
                format!("{place} initialized ({action})")
            } else {
                format!("{action} on {place}: {}", what.to_lowercase())
            };
            let why = if grave {
                "zeroize and init are always high"
            } else {
                "HSM administration"
            };
            if get(r, "outcome") == Some("success") {
                (
                    if grave { Severity::High } else { Severity::Medium },
                    format!("{done} at {at} UTC by actor {actor} from {ip} ({why})"),
                )
            } else if get(r, "outcome") == Some("unknown") {
                // Asked for, its result not in the log (a Vault seal is logged as a
                // request only): judged as if done.
                (
                    if grave { Severity::High } else { Severity::Medium },
                    format!(
                        "{done} at {at} UTC by actor {actor} from {ip} ({why}; its outcome is not in the log)"
                    ),
                )
            } else {
                (
                    if grave { Severity::Medium } else { Severity::Low },
                    format!(
                        "an attempt ({done}) at {at} UTC by actor {actor} from {ip} failed ({})",
                        get(r, "status").unwrap_or("?")
                    ),
                )
            }
        }
        "pin_change" => {
            let action = get(r, "action").unwrap_or_default();
            let mut reason = match get(r, "what") {
                Some(w) => format!("{action} ({}) by actor {actor} from {ip} at {at} UTC", w.to_lowercase()),
                None => format!("{action} by actor {actor} from {ip} at {at} UTC"),
            };
            let enough = num(r, "history_days") >= rules.min_history_days as u64;
            let mut sev = Severity::Low;
            if flag(r, "privilege_change") {
                sev = Severity::Medium;
                reason.push_str("; it changes who holds privileges on the HSM");
            }
            if enough && flag(r, "new_actor") {
                // The actor itself is new_actor's finding; its PIN changes are evidence.
                reason.push_str(&format!(
                    "; the actor was never seen in the {b} days before (see new_actor)"
                ));
            }
            if flag(r, "off_hours") {
                sev = Severity::Medium;
                reason.push_str(&format!(
                    "; at {} local time, outside the hours the tenant works",
                    short(get(r, "local_time").unwrap_or_default())
                ));
            }
            (sev, reason)
        }
        "new_actor" => {
            let mut reason = format!(
                "actor {actor} (role {}) first seen at {at} UTC from {ip}: {} successful events, never seen for this tenant in the {b} days before",
                get(r, "roles").unwrap_or("?"),
                num(r, "events")
            );
            let sev = churn(r, rules, "new actors", &mut reason);
            (sev, reason)
        }
        "new_client_ip" => {
            let mut sev;
            let mut reason = format!(
                "actor {actor} logged in from {ip}, never seen for this actor in the {b} days before ({} successful events from it, first at {at} UTC)",
                num(r, "events")
            );
            if flag(r, "ip_known_to_tenant") {
                sev = Severity::Low;
                reason.push_str("; the tenant's other actors use this address");
            } else if flag(r, "seen_earlier") {
                sev = Severity::Low;
                reason.push_str(&format!(
                    "; the actor used it before, more than {b} days ago"
                ));
            } else {
                sev = churn(r, rules, "new addresses of known actors", &mut reason);
            }
            if flag(r, "first_off_hours") {
                sev = sev.up();
                let local = get(r, "local_time").unwrap_or_default();
                reason.push_str(&format!(
                    "; on a {} at {} local time, outside the hours the tenant works",
                    weekday(local),
                    short(local).get(11..16).unwrap_or_default()
                ));
            }
            (sev, reason)
        }
        "off_hours" => {
            let first = get(r, "first_local").unwrap_or_default();
            let last = get(r, "last_local").unwrap_or_default();
            let why = if flag(r, "hours_set") {
                "outside the business hours set in the rules".to_string()
            } else {
                format!("an hour or weekday the tenant did not work in the {b} days before")
            };
            (
                Severity::Medium,
                format!(
                    "actor {actor} worked from {ip} on {} {} from {} to {} local time ({} events): {why}",
                    weekday(first),
                    first.get(..10).unwrap_or_default(),
                    short(first).get(11..16).unwrap_or_default(),
                    short(last).get(11..16).unwrap_or_default(),
                    num(r, "events")
                ),
            )
        }
        "dormant_key" => {
            let created = get(r, "created_at").unwrap_or_default();
            let days = (parse_time(get(r, "time").unwrap_or_default()).unwrap_or(0)
                - parse_time(created).unwrap_or(0))
                / 86_400_000_000;
            let mut reason = format!(
                "key {} first used at {at} UTC by actor {actor} from {ip}, {days} days after its creation on {} (dormant: over {} days)",
                get(r, "ouid").unwrap_or("?"),
                created.get(..10).unwrap_or_default(),
                rules.dormant_days
            );
            let what = format!("keys first used over {} days after creation", rules.dormant_days);
            let sev = churn(r, rules, &what, &mut reason);
            (sev, reason)
        }
        "new_key_user" => {
            let mut reason = format!(
                "actor {actor} used key {} {} times from {ip}, first at {at} UTC; in the {b} days before only {} used it ({} uses)",
                get(r, "ouid").unwrap_or("?"),
                num(r, "uses"),
                get(r, "owners")
                    .unwrap_or_default()
                    .split(", ")
                    .map(|a| id(Some(a)))
                    .collect::<Vec<_>>()
                    .join(", "),
                num(r, "baseline_uses")
            );
            let place = match get(r, "place") {
                Some(p) => format!("partition {p}"),
                None => "its partition".to_string(),
            };
            let known = num(r, "place_uses");
            let sev = if known > 0 {
                reason.push_str(&format!(
                    "; the actor already works with other keys of {place} ({known} uses in the {b} days before)"
                ));
                Severity::Low
            } else if !flag(r, "actor_known") {
                reason.push_str(&format!(
                    "; the actor is new to this tenant (not seen in the {b} days before: see new_actor)"
                ));
                Severity::Low
            } else {
                reason.push_str(&format!(
                    "; and never used a key of {place} in the {b} days before"
                ));
                Severity::Medium
            };
            (sev, reason)
        }
        "new_replication_target" => {
            let known = flag(r, "partition_known");
            (
                if known { Severity::Low } else { Severity::Medium },
                format!(
                    "partition {} on HSM {} received {} ({} events, first at {at} UTC by actor {actor} from {ip}): no clone or replication target in the {b} days before{}",
                    get(r, "part_id").unwrap_or("?"),
                    get(r, "hsm_id").unwrap_or("?"),
                    get(r, "actions").unwrap_or_default(),
                    num(r, "events"),
                    if known { "" } else { ", and a partition the tenant never used" }
                ),
            )
        }
        "key_past_cryptoperiod" => {
            let born = get(r, "born").unwrap_or_default();
            let how = if flag(r, "created_in_lake") {
                "created"
            } else {
                "first seen (its creation is not in the lake)"
            };
            (
                Severity::Medium,
                format!(
                    "key {} used {} times from {at} UTC to {} UTC, after its cryptoperiod of {} days ran out on {}: {how} on {}, {} days before its last use in the period; {}",
                    get(r, "ouid").unwrap_or("?"),
                    num(r, "uses"),
                    short(get(r, "last_use").unwrap_or_default()),
                    num(r, "days"),
                    get(r, "expired_on").unwrap_or_default().get(..10).unwrap_or_default(),
                    born.get(..10).unwrap_or_default(),
                    num(r, "age_days"),
                    get(r, "cited").unwrap_or_default()
                ),
            )
        }
        "unused_key" => (
            Severity::Low,
            format!(
                "key {} unused for {} days on {}: last used (or created) at {} UTC by actor {actor} from {ip}, and not destroyed: a candidate for retirement",
                get(r, "ouid").unwrap_or("?"),
                rules.unused_key_days,
                at.get(..10).unwrap_or_default(),
                short(get(r, "last_active").unwrap_or_default()),
            ),
        ),
        "key_users_widen" => {
            let names = |k: &str| {
                get(r, k)
                    .unwrap_or_default()
                    .split(", ")
                    .map(|a| id(Some(a)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            (
                Severity::Medium,
                format!(
                    "key {} gained {} users new to its partition {} from {at} to {} UTC ({}), where {} used it in the {b} days before ({})",
                    get(r, "ouid").unwrap_or("?"),
                    num(r, "new_users"),
                    get(r, "place").unwrap_or("?"),
                    short(get(r, "last_new").unwrap_or_default()),
                    names("new_actors"),
                    num(r, "baseline_users"),
                    names("baseline_actors")
                ),
            )
        }
        other => (Severity::Info, format!("{other}: a row of this rule")),
    }
}

/// Medium, or low for a tenant to which such news is routine: `what` (new actors, new
/// addresses) seen at `routine_new_per_30_days` or more per 30 days of the look-back after its
/// first `min_history_days` days. The reason says what the tenant's rate was.
fn churn(r: &Row, rules: &Rules, what: &str, reason: &mut String) -> Severity {
    let (n, days) = (num(r, "baseline_new"), num(r, "churn_days"));
    if days == 0 {
        return Severity::Medium;
    }
    if n * 30 >= rules.routine_new_per_30_days as u64 * days {
        reason.push_str(&format!(
            "; routine for this tenant: {n} {what} in the last {days} days of its look-back"
        ));
        Severity::Low
    } else {
        reason.push_str(&format!(
            "; this tenant saw {n} {what} in the last {days} days of its look-back"
        ));
        Severity::Medium
    }
}

/// Rows that each open a full window (`count` events up to `last`), per tenant and client
/// IP, merged where their windows overlap: one finding per episode.
fn merge_windows(
    def: &FindingRule,
    rows: &[Row],
    count: &str,
    last: &str,
    describe: impl Fn(&Row, u64, &str) -> (Severity, String),
) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut open: Option<(Row, u64, String, i64, bool)> = None;
    let key = |r: &Row| {
        (
            get(r, "tenant_id").map(str::to_string),
            if def.kind == "failed_login_burst" {
                get(r, "src").map(str::to_string)
            } else {
                None
            },
        )
    };
    let close = |o: Option<(Row, u64, String, i64, bool)>, out: &mut Vec<Finding>| {
        if let Some((mut first, n, last_t, last_us, success)) = o {
            if success && get(&first, "success_after").is_none() {
                first.insert("success_after".into(), Some(last_t.clone()));
            }
            let (sev, reason) = describe(&first, n, &last_t);
            let mut f = finding(def, &first, sev, reason);
            f.until = last_t;
            f.until_us = last_us;
            out.push(f);
        }
    };
    for r in rows {
        let t = parse_time(get(r, "time").unwrap_or_default()).unwrap_or(0);
        let l = get(r, last).unwrap_or_default().to_string();
        let l_us = parse_time(&l).unwrap_or(t);
        let n = num(r, count);
        let success = get(r, "success_after").is_some();
        match &mut open {
            Some((first, cnt, last_t, last_us, ok)) if key(first) == key(r) && t <= *last_us => {
                *cnt = (*cnt).max(n);
                if l_us > *last_us {
                    *last_us = l_us;
                    *last_t = l.clone();
                }
                *ok |= success;
            }
            _ => {
                close(open.take(), &mut out);
                open = Some((r.clone(), n, l, l_us, success));
            }
        }
    }
    close(open.take(), &mut out);
    out
}

/// Which allowlist expects this finding, if any.
fn suppression(f: &Finding, rules: &Rules) -> Option<String> {
    let note = |n: &Option<String>| n.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
    for w in &rules.allow.maintenance_windows {
        let Ok((a, b)) = window_bounds(w) else {
            continue;
        };
        if w.tenant.as_ref().is_none_or(|t| t == &f.tenant_id) && f.time_us <= b && f.until_us >= a
        {
            return Some(format!(
                "maintenance window {} to {}{}",
                w.from,
                w.to,
                note(&w.note)
            ));
        }
    }
    let ips: Vec<&str> = f
        .client_ip
        .as_deref()
        .map(|s| s.split(", ").collect())
        .unwrap_or_default();
    if ["new_client_ip", "new_actor"].contains(&f.kind.as_str()) && !ips.is_empty() {
        if let Some(e) = rules
            .allow
            .nat_addresses
            .iter()
            .find(|e| ips.iter().all(|ip| ip_matches(e, ip)))
        {
            return Some(format!("NAT address {e}"));
        }
    }
    if [
        "off_hours",
        "new_client_ip",
        "new_key_user",
        "dormant_key",
        "new_actor",
    ]
    .contains(&f.kind.as_str())
    {
        for c in &rules.allow.batch_clients {
            if c.actor.is_none() && c.client_ip.is_none() {
                continue;
            }
            let tenant_ok = c.tenant.as_ref().is_none_or(|t| t == &f.tenant_id);
            let actor_ok = c
                .actor
                .as_ref()
                .is_none_or(|a| f.actor_id.as_deref() == Some(a.as_str()));
            let ip_ok = c
                .client_ip
                .as_ref()
                .is_none_or(|e| !ips.is_empty() && ips.iter().all(|ip| ip_matches(e, ip)));
            if tenant_ok && actor_ok && ip_ok {
                let who = [c.actor.as_deref(), c.client_ip.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                return Some(format!("batch client {who}{}", note(&c.note)));
            }
        }
    }
    None
}

/// Counts of unsuppressed findings by severity, highest first.
pub fn counts(findings: &[Finding]) -> Vec<(Severity, usize)> {
    let findings: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.acknowledged.is_none())
        .collect();
    [
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ]
    .into_iter()
    .map(|s| {
        (
            s,
            findings
                .iter()
                .filter(|f| f.suppressed.is_none() && f.severity == s)
                .count(),
        )
    })
    .collect()
}
