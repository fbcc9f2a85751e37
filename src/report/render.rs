//! Renders a [`ReportPack`] as Markdown, self-contained HTML, CSV files or one JSON
//! document: coverage and baselines, the findings ranked by severity, then the evidence.

use std::collections::BTreeMap;
use std::fmt::Write;

use arrow::array::Array;
use arrow::compute::concat_batches;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::findings::{counts, Finding};
use super::svg::{bars, hbars, Series};
use super::{Coverage, ReportPack, ReportResult};
use crate::Result;

/// Rows shown per report in Markdown and HTML (CSV and JSON have them all).
pub const MAX_ROWS_SHOWN: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Csv,
    Json,
    /// The findings alone, one OCSF Detection Finding (class 2004) per line, for a SIEM.
    Ocsf,
}

/// A report's rows as text cells (nulls empty), with its column names.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

pub fn table(r: &ReportResult) -> Result<Table> {
    let Some(first) = r.batches.first() else {
        return Ok(Table {
            columns: vec![],
            rows: vec![],
        });
    };
    let schema = first.schema();
    let all = concat_batches(&schema, &r.batches)?;
    let opts = FormatOptions::default();
    let fmts: Vec<ArrayFormatter> = all
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
        .collect::<Result<_, _>>()?;
    let rows = (0..all.num_rows())
        .map(|i| {
            all.columns()
                .iter()
                .zip(&fmts)
                .map(|(c, f)| c.is_valid(i).then(|| f.value(i).to_string()))
                .collect()
        })
        .collect();
    Ok(Table {
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        rows,
    })
}

fn coverage_lines(c: &Coverage) -> Vec<String> {
    let mut v = vec![
        format!("Lake: {}", c.lake),
        format!("Tenant: {}", c.tenant.as_deref().unwrap_or("all tenants")),
        format!(
            "Period: {} to {} (UTC, {} days)",
            c.from, c.to, c.days_in_period
        ),
        format!(
            "Generated: {} by auditlake {}",
            c.generated_at, c.auditlake_version
        ),
        match &c.chain {
            Some(h) => format!(
                "Lake state: chain head {} after {} events (`auditlake verify --expect-head {}` checks that a later lake still holds it)",
                h.head, h.length, h.head
            ),
            None => "Lake state: no chain yet (the lake has not been written since auditlake kept one)".into(),
        },
    ];
    if c.tenants.is_empty() {
        v.push("Coverage: NO DATA in the period".into());
    }
    for t in &c.tenants {
        if t.days_without_data.is_empty() {
            v.push(format!(
                "Coverage of {}: data on all {} days",
                t.tenant_id, t.days_with_data
            ));
        } else {
            v.push(format!(
                "Coverage of {}: data on {} of {} days; GAPS (no data): {}",
                t.tenant_id,
                t.days_with_data,
                c.days_in_period,
                t.days_without_data.join(", ")
            ));
        }
    }
    v.push(format!(
        "Sources: {} converted exports touch the period",
        c.sources.len()
    ));
    v
}

/// The findings line: counts by severity, the acknowledged and the suppressed.
fn findings_summary(pack: &ReportPack) -> String {
    let c = counts(&pack.findings);
    let total: usize = c.iter().map(|(_, n)| n).sum();
    let suppressed = pack.suppressed().count();
    let acknowledged = pack.acknowledged().count();
    format!(
        "{total} findings: {}; {acknowledged} acknowledged, {suppressed} suppressed by allowlists (listed after the evidence)",
        c.iter()
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// One line per tenant on what its baseline rests on.
fn baseline_lines(pack: &ReportPack) -> Vec<String> {
    pack.baselines
        .iter()
        .map(|b| {
            let offset = &b.timezone;
            if b.enough {
                format!(
                    "Baseline of {}: {}..{} ({} days before the period): history on {} days, {} events; business hours {}; clock {offset}",
                    b.tenant_id, b.from, b.to, pack.rules.baseline_days, b.history_days, b.history_events, b.business_hours
                )
            } else {
                format!(
                    "Baseline of {}: {}..{}: NOT ENOUGH HISTORY (data on {} days, {} needed): what is new for this tenant is shown as info, not judged; business hours {}; clock {offset}",
                    b.tenant_id, b.from, b.to, b.history_days, pack.rules.min_history_days, b.business_hours
                )
            }
        })
        .collect()
}

/// The columns of a findings table and each finding's cells.
const FINDING_COLUMNS: &[&str] = &[
    "severity",
    "kind",
    "tenant_id",
    "time",
    "until",
    "actor_id",
    "client_ip",
    "ouid",
    "reason",
    "id",
];

/// What a findings table shows beyond the common columns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    Active,
    Acknowledged,
    Suppressed,
}

impl Listed {
    fn column(self) -> Option<&'static str> {
        match self {
            Listed::Active => None,
            Listed::Acknowledged => Some("acknowledged"),
            Listed::Suppressed => Some("suppressed"),
        }
    }
    fn cell(self, f: &Finding) -> String {
        match self {
            Listed::Active => String::new(),
            Listed::Acknowledged => ack_text(f),
            Listed::Suppressed => f.suppressed.clone().unwrap_or_default(),
        }
    }
}

/// `by alice on 2026-12-04: a planned rotation (until 2026-12-31)`.
pub fn ack_text(f: &Finding) -> String {
    match &f.acknowledged {
        Some(a) => format!(
            "by {} on {}: {}{}",
            a.by,
            a.at.get(..10).unwrap_or(&a.at),
            a.reason,
            a.until
                .as_ref()
                .map(|u| format!(" (until {u})"))
                .unwrap_or_default()
        ),
        None => String::new(),
    }
}

fn finding_cells(f: &Finding) -> Vec<String> {
    vec![
        f.severity.as_str().to_string(),
        f.kind.clone(),
        f.tenant_id.clone(),
        f.time.clone(),
        f.until.clone(),
        f.actor_id.clone().unwrap_or_default(),
        f.client_ip.clone().unwrap_or_default(),
        f.ouid.clone().unwrap_or_default(),
        f.reason.clone(),
        f.id.clone(),
    ]
}

pub fn md_findings(s: &mut String, list: &[&Finding], listed: Listed) {
    let mut cols: Vec<&str> = FINDING_COLUMNS.to_vec();
    cols.extend(listed.column());
    let _ = writeln!(
        s,
        "| {} |\n|{}",
        cols.join(" | "),
        "---|".repeat(cols.len())
    );
    for f in list.iter().take(MAX_ROWS_SHOWN) {
        let mut cells = finding_cells(f);
        if listed != Listed::Active {
            cells.push(listed.cell(f));
        }
        let cells: Vec<String> = cells.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    if list.len() > MAX_ROWS_SHOWN {
        let _ = writeln!(
            s,
            "\n_First {MAX_ROWS_SHOWN} of {}; `--format csv` or `json` has them all._",
            list.len()
        );
    }
}

pub fn markdown(pack: &ReportPack) -> Result<String> {
    let mut s = String::from("# auditlake compliance report\n\n");
    for l in coverage_lines(&pack.coverage)
        .into_iter()
        .chain(baseline_lines(pack))
    {
        let _ = writeln!(s, "- {l}");
    }
    let _ = write!(s, "\n## Findings\n\n{}.\n\n", findings_summary(pack));
    let active: Vec<&Finding> = pack.active().collect();
    if active.is_empty() {
        s.push_str("_No findings._\n");
    } else {
        md_findings(&mut s, &active, Listed::Active);
    }
    s.push_str("\nSeverities: **high** needs action now (zeroize, partition init, mass key destruction, a burst followed by a login); **medium** deviates from the tenant's history (new actor, new IP, hours it never works, dormant key, new key user, new clone target, a burst); **low** worth a look (PIN changes, a new IP the tenant already uses); **info** could not be judged (too little history).\n\n| rule | evidence | finding |\n|---|---|---|\n");
    for r in &pack.finding_rules {
        let _ = writeln!(s, "| {} | {} | {} |", r.kind, r.report, md_cell(&r.rule));
    }
    s.push_str(
        "\n## Evidence\n\n| report | rows | flagged | flag rule | findings |\n|---|---:|---:|---|---:|\n",
    );
    for r in &pack.reports {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            md_cell(&r.def.title),
            r.rows(),
            r.flagged(),
            md_cell(&r.def.flag_rule),
            pack.findings_of(&r.def.name)
        );
    }
    for r in &pack.reports {
        let t = table(r)?;
        let _ = write!(
            s,
            "\n### {}\n\n{}\n\nFlagged: **{}** ({}) in {} rows.\n\n",
            r.def.title,
            r.def.question,
            r.flagged(),
            r.def.flag_rule,
            r.rows()
        );
        if t.rows.is_empty() {
            s.push_str("_No rows._\n");
            continue;
        }
        let _ = writeln!(
            s,
            "| flagged | {} |",
            t.columns
                .iter()
                .map(|c| md_cell(c))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(s, "|---|{}", "---|".repeat(t.columns.len()));
        for (i, row) in t.rows.iter().take(MAX_ROWS_SHOWN).enumerate() {
            let cells: Vec<String> = row
                .iter()
                .map(|c| md_cell(c.as_deref().unwrap_or("")))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} |",
                if r.flagged_rows[i] { "⚑" } else { "" },
                cells.join(" | ")
            );
        }
        if t.rows.len() > MAX_ROWS_SHOWN {
            let _ = writeln!(
                s,
                "\n_First {MAX_ROWS_SHOWN} of {} rows; `--format csv` or `json` has them all._",
                t.rows.len()
            );
        }
    }
    let acknowledged: Vec<&Finding> = pack.acknowledged().collect();
    let _ = write!(
        s,
        "\n### Acknowledged findings\n\nFindings a person acknowledged (`auditlake findings ack`): {}.\n\n",
        acknowledged.len()
    );
    if !acknowledged.is_empty() {
        md_findings(&mut s, &acknowledged, Listed::Acknowledged);
    }
    let suppressed: Vec<&Finding> = pack.suppressed().collect();
    let _ = write!(
        s,
        "\n### Suppressed findings\n\nFindings an allowlist of the rules expects: {}.\n\n",
        suppressed.len()
    );
    if !suppressed.is_empty() {
        md_findings(&mut s, &suppressed, Listed::Suppressed);
    }
    Ok(s)
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}\
th{background:#f3f3f3}tr.f td{background:#fff3f0}.gap{color:#b00;font-weight:bold}.ct{font:bold 13px sans-serif}\
.ax{font:11px sans-serif;fill:#555}.meta li{margin:.1em 0}.n{text-align:right}\
tr.sev-high td{background:#f8d7d3}tr.sev-medium td{background:#fdebd0}tr.sev-low td{background:#fcf8e3}\
details{margin:.6em 0}summary{cursor:pointer}";

/// Click a column's header to sort its table by it (numbers as numbers; again: reversed).
const SORT_JS: &str = "document.querySelectorAll('table').forEach(function(t){var h=t.rows[0];if(!h||!t.tBodies[0])return;\
Array.prototype.forEach.call(h.cells,function(th,i){th.style.cursor='pointer';th.title='sort by this column';\
th.onclick=function(){var asc=th.getAttribute('data-asc')!=='1';th.setAttribute('data-asc',asc?'1':'0');\
var rows=Array.prototype.slice.call(t.rows,1);var v=function(r){return r.cells[i]?r.cells[i].textContent:'';};\
var n=function(x){return x!==''&&!isNaN(x);};rows.sort(function(a,b){var x=v(a),y=v(b);\
var c=n(x)&&n(y)?x-y:x.localeCompare(y);return asc?c:-c;});rows.forEach(function(r){r.parentNode.appendChild(r);});};});});";

fn html_findings(s: &mut String, list: &[&Finding], listed: Listed) {
    s.push_str("<table class=\"findings\"><tr>");
    for c in FINDING_COLUMNS.iter().copied().chain(listed.column()) {
        let _ = write!(s, "<th>{c}</th>");
    }
    s.push_str("</tr>");
    for f in list.iter().take(MAX_ROWS_SHOWN) {
        let _ = write!(s, "<tr class=\"sev-{}\">", f.severity.as_str());
        let mut cells = finding_cells(f);
        if listed != Listed::Active {
            cells.push(listed.cell(f));
        }
        for c in cells {
            let _ = write!(s, "<td>{}</td>", escape_html(&c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    if list.len() > MAX_ROWS_SHOWN {
        let _ = write!(
            s,
            "<p><i>First {MAX_ROWS_SHOWN} of {}; --format csv or json has them all.</i></p>",
            list.len()
        );
    }
}

pub fn html(pack: &ReportPack) -> Result<String> {
    let mut s = String::from("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>auditlake compliance report</title><style>");
    s.push_str(CSS);
    s.push_str("</style></head><body><h1>auditlake compliance report</h1><ul class=\"meta\">");
    for l in coverage_lines(&pack.coverage)
        .into_iter()
        .chain(baseline_lines(pack))
    {
        let class = if l.contains("GAPS") || l.contains("NO DATA") || l.contains("NOT ENOUGH") {
            " class=\"gap\""
        } else {
            ""
        };
        let _ = write!(s, "<li{class}>{}</li>", escape_html(&l));
    }
    s.push_str("</ul>");
    let _ = write!(
        s,
        "<h2 id=\"findings\">Findings</h2><p>{}.</p>",
        escape_html(&findings_summary(pack))
    );
    let active: Vec<&Finding> = pack.active().collect();
    if active.is_empty() {
        s.push_str("<p><i>No findings.</i></p>");
    } else {
        html_findings(&mut s, &active, Listed::Active);
    }
    s.push_str("<details><summary>Rules and severities</summary><p>high: needs action now; medium: deviates from the tenant's history; low: worth a look; info: could not be judged (too little history).</p><table><tr><th>rule</th><th>evidence</th><th>finding</th></tr>");
    for r in &pack.finding_rules {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&r.kind),
            escape_html(&r.report),
            escape_html(&r.rule)
        );
    }
    s.push_str("</table></details>");
    s.push_str(&charts(pack)?);
    s.push_str("<h2>Evidence</h2><table><tr><th>report</th><th>rows</th><th>flagged</th><th>flag rule</th><th>findings</th></tr>");
    for r in &pack.reports {
        let _ = write!(
            s,
            "<tr><td><a href=\"#{}\">{}</a></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            r.def.name,
            escape_html(&r.def.title),
            r.rows(),
            r.flagged(),
            escape_html(&r.def.flag_rule),
            pack.findings_of(&r.def.name)
        );
    }
    s.push_str("</table>");
    for r in &pack.reports {
        let t = table(r)?;
        let _ = write!(
            s,
            "<details id=\"{}\"><summary><b>{}</b> — {} rows, {} flagged</summary><p>{}</p><p>Flagged: <b>{}</b> ({}) in {} rows.</p>",
            r.def.name,
            escape_html(&r.def.title),
            r.rows(),
            r.flagged(),
            escape_html(&r.def.question),
            r.flagged(),
            escape_html(&r.def.flag_rule),
            r.rows()
        );
        if t.rows.is_empty() {
            s.push_str("<p><i>No rows.</i></p></details>");
            continue;
        }
        s.push_str("<table><tr>");
        for c in &t.columns {
            let _ = write!(s, "<th>{}</th>", escape_html(c));
        }
        s.push_str("</tr>");
        for (i, row) in t.rows.iter().take(MAX_ROWS_SHOWN).enumerate() {
            s.push_str(if r.flagged_rows[i] {
                "<tr class=\"f\">"
            } else {
                "<tr>"
            });
            for c in row {
                let _ = write!(s, "<td>{}</td>", escape_html(c.as_deref().unwrap_or("")));
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>");
        if t.rows.len() > MAX_ROWS_SHOWN {
            let _ = write!(s, "<p><i>First {MAX_ROWS_SHOWN} of {} rows; --format csv or json has them all.</i></p>", t.rows.len());
        }
        s.push_str("</details>");
    }
    let acknowledged: Vec<&Finding> = pack.acknowledged().collect();
    let _ = write!(
        s,
        "<details id=\"acknowledged\"><summary><b>Acknowledged findings</b> — {} a person acknowledged</summary>",
        acknowledged.len()
    );
    if !acknowledged.is_empty() {
        html_findings(&mut s, &acknowledged, Listed::Acknowledged);
    }
    s.push_str("</details>");
    let suppressed: Vec<&Finding> = pack.suppressed().collect();
    let _ = write!(
        s,
        "<details id=\"suppressed\"><summary><b>Suppressed findings</b> — {} an allowlist expects</summary>",
        suppressed.len()
    );
    if !suppressed.is_empty() {
        html_findings(&mut s, &suppressed, Listed::Suppressed);
    }
    s.push_str("</details><script>");
    s.push_str(SORT_JS);
    s.push_str("</script></body></html>\n");
    Ok(s)
}

/// The charts people would rather look at than read, from the reports that feed them.
fn charts(pack: &ReportPack) -> Result<String> {
    let mut out = String::new();
    // Every day of the period, so that quiet days show as quiet.
    let all_days: Vec<String> = match (
        crate::time::parse_day(&pack.coverage.from),
        crate::time::parse_day(&pack.coverage.to),
    ) {
        (Some(a), Some(b)) => (a..=b).map(crate::time::format_day).collect(),
        _ => vec![],
    };
    let zeroes = |m: &mut BTreeMap<String, (f64, f64)>| {
        for d in &all_days {
            m.entry(d.clone()).or_default();
        }
    };
    let find = |name: &str| pack.reports.iter().find(|r| r.def.name == name);
    let idx = |t: &Table, c: &str| t.columns.iter().position(|x| x == c);
    if let Some(r) = find("daily_summary") {
        let t = table(r)?;
        if let (Some(d), Some(e), Some(f)) =
            (idx(&t, "day"), idx(&t, "events"), idx(&t, "failures"))
        {
            let mut per_day: BTreeMap<String, (f64, f64)> = BTreeMap::new();
            zeroes(&mut per_day);
            for row in &t.rows {
                let v = per_day
                    .entry(row[d].clone().unwrap_or_default())
                    .or_default();
                v.0 += num(&row[e]);
                v.1 += num(&row[f]);
            }
            let labels: Vec<String> = per_day.keys().cloned().collect();
            out.push_str(&bars(
                "Events and failures per day",
                &labels,
                &[
                    Series {
                        name: "events",
                        color: "#8aa6c1",
                        values: per_day.values().map(|v| v.0).collect(),
                    },
                    Series {
                        name: "failures",
                        color: "#d9534f",
                        values: per_day.values().map(|v| v.1).collect(),
                    },
                ],
            ));
        }
    }
    if let Some(r) = find("failed_auth") {
        let t = table(r)?;
        if let (Some(ip), Some(f)) = (idx(&t, "client_ip"), idx(&t, "failures")) {
            let mut items: Vec<(String, f64)> = t
                .rows
                .iter()
                .map(|row| {
                    (
                        row[ip].clone().unwrap_or_else(|| "(none)".into()),
                        num(&row[f]),
                    )
                })
                .collect();
            items.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            items.truncate(10);
            if !items.is_empty() {
                out.push_str(&hbars(
                    "Top failing client IPs (failed logins)",
                    &items,
                    "#d9534f",
                ));
            }
        }
    }
    if let Some(r) = find("key_first_use") {
        let t = table(r)?;
        if let Some(fu) = idx(&t, "first_use") {
            let mut per_day: BTreeMap<String, (f64, f64)> = BTreeMap::new();
            let any = !t.rows.is_empty();
            zeroes(&mut per_day);
            for row in &t.rows {
                let day: String = row[fu]
                    .clone()
                    .unwrap_or_default()
                    .chars()
                    .take(10)
                    .collect();
                per_day.entry(day).or_default().0 += 1.0;
            }
            if any {
                let labels: Vec<String> = per_day.keys().cloned().collect();
                out.push_str(&bars(
                    "Key first uses per day",
                    &labels,
                    &[Series {
                        name: "keys first used",
                        color: "#5b8c5a",
                        values: per_day.values().map(|v| v.0).collect(),
                    }],
                ));
            }
        }
    }
    Ok(out)
}

fn num(c: &Option<String>) -> f64 {
    c.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0.0)
}

/// One JSON document: coverage and baselines, the findings, then each report with its rows.
pub fn json(pack: &ReportPack) -> Result<String> {
    let mut reports = Vec::new();
    for r in &pack.reports {
        let t = table(r)?;
        let rows: Vec<serde_json::Value> = t
            .rows
            .iter()
            .zip(&r.flagged_rows)
            .map(|(row, f)| {
                let mut m = serde_json::Map::new();
                for (c, v) in t.columns.iter().zip(row) {
                    m.insert(
                        c.clone(),
                        v.clone()
                            .map_or(serde_json::Value::Null, serde_json::Value::String),
                    );
                }
                m.insert("flagged".into(), serde_json::Value::Bool(*f));
                serde_json::Value::Object(m)
            })
            .collect();
        reports.push(serde_json::json!({
            "name": r.def.name, "title": r.def.title, "question": r.def.question,
            "flag_rule": r.def.flag_rule, "rows": r.rows(), "flagged": r.flagged(),
            "findings": pack.findings_of(&r.def.name), "data": rows,
        }));
    }
    let summary: serde_json::Map<String, serde_json::Value> = counts(&pack.findings)
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), n.into()))
        .chain([
            (
                "acknowledged".to_string(),
                pack.acknowledged().count().into(),
            ),
            ("suppressed".to_string(), pack.suppressed().count().into()),
        ])
        .collect();
    let doc = serde_json::json!({
        "coverage": pack.coverage, "baselines": pack.baselines, "summary": summary,
        "findings": pack.findings, "finding_rules": pack.finding_rules, "reports": reports,
    });
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

/// One CSV file per report (name → contents), plus `coverage.csv`.
pub fn csv_files(pack: &ReportPack) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    let mut cov = String::from("item,value\n");
    for l in coverage_lines(&pack.coverage) {
        let (k, v) = l.split_once(": ").unwrap_or((&l, ""));
        let _ = writeln!(cov, "{},{}", csv_cell(k), csv_cell(v));
    }
    for l in baseline_lines(pack) {
        let (k, v) = l.split_once(": ").unwrap_or((&l, ""));
        let _ = writeln!(cov, "{},{}", csv_cell(k), csv_cell(v));
    }
    files.push(("coverage.csv".to_string(), cov));
    let mut f = FINDING_COLUMNS.join(",") + ",suppressed,acknowledged\n";
    for x in &pack.findings {
        let mut cells = finding_cells(x);
        cells.push(x.suppressed.clone().unwrap_or_default());
        cells.push(ack_text(x));
        let _ = writeln!(
            f,
            "{}",
            cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    files.push(("findings.csv".to_string(), f));
    for r in &pack.reports {
        let t = table(r)?;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "flagged,{}",
            t.columns
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(",")
        );
        for (row, f) in t.rows.iter().zip(&r.flagged_rows) {
            let _ = writeln!(
                s,
                "{f},{}",
                row.iter()
                    .map(|c| csv_cell(c.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        files.push((format!("{}.csv", r.def.name), s));
    }
    Ok(files)
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
