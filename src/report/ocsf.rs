//! Findings as OCSF Detection Findings (class 2004, category 2 Findings), one JSON
//! object per line: what Splunk, Elastic, Sentinel and Security Lake ingest as it is.
//!
//! Filled (OCSF 1.3.0): the required `class_uid`, `category_uid`, `activity_id` (1 Create),
//! `type_uid` (200401), `severity_id`, `time` (when the finding was made, ms),
//! `metadata.version` and `metadata.product`, `finding_info.uid` (the finding's stable id);
//! and `finding_info.{title, desc, types, analytic, first_seen_time, last_seen_time,
//! created_time}`, `start_time`/`end_time` (the events it is about), `status_id` (1 New;
//! 3 Suppressed when acknowledged or expected by an allowlist, with `status_detail`
//! saying by whom), `is_alert`, `message` (the reason), `metadata.tenant_uid`,
//! `actor.user.name`, `evidences` (one per client IP), `resources` (the key), and under
//! `unmapped` the evidence report and the acknowledgement.

use serde_json::{json, Map, Value};

use super::findings::{Finding, FindingRule, Severity};
use super::Coverage;
use crate::time::parse_time;

/// The OCSF schema version the objects follow.
pub const OCSF_VERSION: &str = "1.3.0";

fn severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
    }
}

/// `mass_key_destruction` as "Mass key destruction".
fn title(kind: &str) -> String {
    let words = kind.replace('_', " ");
    let mut c = words.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// One finding as a Detection Finding.
pub fn detection_finding(f: &Finding, rule: Option<&FindingRule>, coverage: &Coverage) -> Value {
    let ms = |us: i64| us.div_euclid(1000);
    let made = parse_time(&coverage.generated_at).map_or(0, ms);
    let (severity_id, severity_name) = severity(f.severity);
    let settled = f.suppressed.is_some() || f.acknowledged.is_some();
    let mut analytic = json!({"name": f.kind, "uid": f.kind, "type_id": 1, "type": "Rule"});
    if let Some(r) = rule {
        analytic["desc"] = Value::String(r.rule.clone());
    }
    let mut doc = json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity_name,
        "time": made,
        "start_time": ms(f.time_us),
        "end_time": ms(f.until_us),
        "status_id": if settled { 3 } else { 1 },
        "status": if settled { "Suppressed" } else { "New" },
        "is_alert": !settled,
        "message": f.reason,
        "finding_info": {
            "uid": f.id,
            "title": title(&f.kind),
            "desc": f.reason,
            "types": [f.kind],
            "analytic": analytic,
            "created_time": made,
            "first_seen_time": ms(f.time_us),
            "last_seen_time": ms(f.until_us),
            "data_sources": [format!("auditlake lake {}", coverage.lake)],
        },
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "name": "auditlake",
                "vendor_name": "auditlake",
                "version": coverage.auditlake_version,
            },
            "log_name": "findings",
            "tenant_uid": f.tenant_id,
        },
    });
    let mut unmapped = Map::new();
    unmapped.insert("report".into(), Value::String(f.report.clone()));
    unmapped.insert("tenant_id".into(), Value::String(f.tenant_id.clone()));
    if let Some(s) = &f.suppressed {
        doc["status_detail"] = Value::String(format!("expected by an allowlist: {s}"));
        unmapped.insert("suppressed".into(), Value::String(s.clone()));
    }
    if let Some(a) = &f.acknowledged {
        doc["status_detail"] =
            Value::String(format!("acknowledged: {}", super::render::ack_text(f)));
        unmapped.insert("acknowledged".into(), json!(a));
    }
    let user = f.actor_id.as_ref().map(|a| json!({"user": {"name": a}}));
    if let Some(u) = &user {
        doc["actor"] = u.clone();
    }
    let ips: Vec<&str> = f
        .client_ip
        .as_deref()
        .map(|s| s.split(", ").filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let evidences: Vec<Value> = if ips.is_empty() {
        user.iter().map(|u| json!({"actor": u})).collect()
    } else {
        ips.iter()
            .map(|ip| {
                let mut e = json!({"src_endpoint": {"ip": ip}});
                if let Some(u) = &user {
                    e["actor"] = u.clone();
                }
                e
            })
            .collect()
    };
    if !evidences.is_empty() {
        doc["evidences"] = Value::Array(evidences);
    }
    if let Some(k) = &f.ouid {
        doc["resources"] = json!([{"uid": k, "type": "Key"}]);
    }
    doc["unmapped"] = Value::Object(unmapped);
    doc
}

/// Every finding (active, acknowledged and suppressed), one Detection Finding per line.
pub fn lines(findings: &[Finding], rules: &[FindingRule], coverage: &Coverage) -> String {
    let mut out = String::new();
    for f in findings {
        let rule = rules.iter().find(|r| r.kind == f.kind);
        out.push_str(&detection_finding(f, rule, coverage).to_string());
        out.push('\n');
    }
    out
}
