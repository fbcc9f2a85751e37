//! `auditlake status`: what the lake holds — per tenant the days covered and
//! the gaps inside them, events, files and bytes — and what the ledger says
//! of the sources converted into it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde::Serialize;

use crate::ingest::time::format_day;
use crate::lake::{ledger, list_partitions, parquet_files};
use crate::{Error, Result};

#[derive(Debug, Serialize, Default)]
pub struct TenantStatus {
    pub tenant_id: String,
    pub first_day: String,
    pub last_day: String,
    pub days: u64,
    /// Days between the first and last with no data, as `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD` ranges.
    pub missing_days: Vec<String>,
    pub events: u64,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Default)]
pub struct LakeStatus {
    pub lake: String,
    pub tenants: Vec<TenantStatus>,
    pub events: u64,
    pub files: u64,
    pub bytes: u64,
    pub sources: u64,
    pub records_read: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub incomplete_members: u64,
}

/// Reads the lake's layout, file footers and ledger.
pub fn status(lake: &Path) -> Result<LakeStatus> {
    if !lake.is_dir() {
        return Err(Error::Usage(format!(
            "{}: no lake here (convert something into it first)",
            lake.display()
        )));
    }
    let mut per_tenant: BTreeMap<String, (Vec<i32>, TenantStatus)> = BTreeMap::new();
    for part in list_partitions(lake, None).map_err(|e| Error::io(lake, e))? {
        let files = parquet_files(&part.path).map_err(|e| Error::io(&part.path, e))?;
        if files.is_empty() {
            continue;
        }
        let (days, t) = per_tenant.entry(part.key.tenant.to_string()).or_default();
        days.push(part.key.day);
        for f in files {
            let file = File::open(&f).map_err(|e| Error::io(&f, e))?;
            t.bytes += file.metadata().map_err(|e| Error::io(&f, e))?.len();
            let reader = SerializedFileReader::new(file).map_err(|e| Error::parquet(&f, e))?;
            t.events += reader.metadata().file_metadata().num_rows() as u64;
            t.files += 1;
        }
    }
    let mut out = LakeStatus {
        lake: lake.display().to_string(),
        ..Default::default()
    };
    for (tenant, (mut days, mut t)) in per_tenant {
        days.sort_unstable();
        t.tenant_id = tenant;
        t.first_day = format_day(days[0]);
        t.last_day = format_day(*days.last().expect("non-empty"));
        t.days = days.len() as u64;
        t.missing_days = gaps(&days);
        out.events += t.events;
        out.files += t.files;
        out.bytes += t.bytes;
        out.tenants.push(t);
    }
    for e in ledger::load(lake)? {
        out.sources += 1;
        out.records_read += e.records_read;
        out.duplicates += e.duplicates;
        out.rejected += e.rejected;
        out.incomplete_members +=
            e.members.iter().filter(|m| m.incomplete.is_some()).count() as u64;
    }
    Ok(out)
}

/// Ranges of days missing between sorted, distinct days.
pub fn gaps(days: &[i32]) -> Vec<String> {
    days.windows(2)
        .filter(|w| w[1] > w[0] + 1)
        .map(|w| {
            let (a, b) = (w[0] + 1, w[1] - 1);
            if a == b {
                format_day(a)
            } else {
                format!("{}..{}", format_day(a), format_day(b))
            }
        })
        .collect()
}

/// The human-readable form.
pub fn render(s: &LakeStatus) -> String {
    let mut out = format!("lake {}\n", s.lake);
    if s.tenants.is_empty() {
        out.push_str("no events yet\n");
    }
    for t in &s.tenants {
        out.push_str(&format!(
            "tenant {}\n  days     {} .. {} ({} with data)\n  missing  {}\n  events   {}\n  files    {} ({})\n",
            t.tenant_id,
            t.first_day,
            t.last_day,
            t.days,
            if t.missing_days.is_empty() { "none".to_string() } else { t.missing_days.join(", ") },
            t.events,
            t.files,
            human_bytes(t.bytes),
        ));
    }
    out.push_str(&format!(
        "total: {} events in {} files ({}) from {} sources; {} duplicates skipped, {} rejected, {} incomplete members\n",
        s.events,
        s.files,
        human_bytes(s.bytes),
        s.sources,
        s.duplicates,
        s.rejected,
        s.incomplete_members
    ));
    out
}

pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gaps_are_ranges() {
        assert_eq!(
            super::gaps(&[0, 1, 3, 7]),
            vec!["1970-01-03", "1970-01-05..1970-01-07"]
        );
        assert!(super::gaps(&[5]).is_empty());
    }
}
