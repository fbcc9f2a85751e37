//! `auditlake status`: what the lake holds — per tenant the days covered and
//! the gaps inside them, events, files and bytes — and what the ledger says
//! of the sources converted into it. For AWS CloudHSM tenants it also shows, per HSM
//! and reboot counter, the sequence numbers held and every gap between them: the HSM
//! numbers its audit events without gaps, so a gap is an event missing from the lake.

use std::collections::BTreeMap;

use parquet::file::metadata::ParquetMetaDataReader;
use serde::Serialize;

use crate::lake::coverage::{hourly_coverage, HourlyCoverage};
use crate::lake::sequence::sequence_of;
use crate::lake::store::LakeStore;
use crate::lake::writer::read_file;
use crate::lake::{ledger, live_set, Col, VENDOR_CLOUDHSM};
use crate::time::format_day;
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
    /// AWS CloudHSM sequence numbers, per HSM and reboot counter (none for other vendors).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<SequenceStatus>,
}

/// The sequence numbers of one CloudHSM HSM's events since one reboot.
#[derive(Debug, Serialize, Default, Clone, PartialEq)]
pub struct SequenceStatus {
    /// The HSM (log stream); null when the inputs did not name it, and then the events
    /// of the cluster's HSMs are counted together.
    pub hsm_id: Option<String>,
    /// Hex, as the log writes it (`0x2a`).
    pub reboot_counter: String,
    pub first: String,
    pub last: String,
    pub events: u64,
    /// Sequence numbers missing between `first` and `last`: `0x13` or `0x13..0x15`.
    pub gaps: Vec<String>,
    /// How many numbers the gaps hold.
    pub missing: u64,
}

/// What `fetch` brought from one DPoD tenant's API for one source filter.
#[derive(Debug, Serialize, Default)]
pub struct FetchedCoverage {
    /// The tenant's API base URL.
    pub api: String,
    /// The `--source` filter of those fetches (`None`: every source).
    pub source: Option<String>,
    /// The other filters, `key=value`, when there were any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// The time fetched, as joined `FROM..TO` ranges (RFC 3339, `TO` exclusive).
    pub covered: Vec<String>,
    pub windows: u64,
    pub records_read: u64,
    pub written: u64,
    pub last_fetched_at: String,
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
    /// Windows fetched from the DPoD API, per tenant API and source.
    pub fetched: Vec<FetchedCoverage>,
    /// Sources delivered one per resource and hour (Azure diagnostic settings' blobs):
    /// the hours each resource's deliveries cover, and those missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hourly: Vec<HourlyCoverage>,
    /// The lake's chain: the SHA-256 of its last event (the head) and its length; a
    /// report computed now names the same head (absent before the lake's first write
    /// with a chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::lake::chain::Head>,
}

/// Reads the manifest (in a lake from before it: the layout and file footers), the
/// ledger, and the rows of CloudHSM files for their sequence numbers.
pub async fn status(store: &LakeStore) -> Result<LakeStatus> {
    let mut per_tenant: BTreeMap<String, (Vec<i32>, TenantStatus)> = BTreeMap::new();
    let mut seqs: BTreeMap<(String, Option<String>, u64), Vec<u64>> = BTreeMap::new();
    // Which files are live, with rows and vendors, from the manifest; a footer is read
    // only where it does not say (a lake from before it).
    for (part, files) in live_set(store, None).await? {
        let (days, t) = per_tenant.entry(part.key.tenant.to_string()).or_default();
        days.push(part.key.day);
        for f in files {
            t.bytes += f.bytes;
            let (rows, cloudhsm) = match (f.rows, &f.vendors) {
                (Some(rows), Some(v)) => (rows, v.iter().any(|v| v == VENDOR_CLOUDHSM)),
                _ => footer_facts(store, &f.path, f.bytes).await?,
            };
            t.events += rows;
            t.files += 1;
            if cloudhsm {
                collect_sequences(store, &f.path, &part.key.tenant, &mut seqs).await?;
            }
        }
    }
    for ((tenant, hsm, reboot), mut numbers) in seqs {
        numbers.sort_unstable();
        numbers.dedup();
        if let Some((_, t)) = per_tenant.get_mut(&tenant) {
            t.sequences.push(sequence_status(hsm, reboot, &numbers));
        }
    }
    if per_tenant.is_empty() && store.list_all("").await?.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no lake here (convert something into it first)",
            store.display
        )));
    }
    let mut out = LakeStatus {
        lake: store.display.clone(),
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
    let entries = ledger::load(store).await?;
    out.hourly = hourly_coverage(entries.iter().map(|e| e.name.as_str()));
    for e in entries {
        out.sources += 1;
        out.records_read += e.records_read;
        out.duplicates += e.duplicates;
        out.rejected += e.rejected;
        out.incomplete_members +=
            e.members.iter().filter(|m| m.incomplete.is_some()).count() as u64;
    }
    out.fetched = fetched(store).await?;
    out.chain = crate::lake::chain::head(store).await?;
    Ok(out)
}

/// The fetched windows of the ledger, grouped by API and filters, their times joined.
async fn fetched(store: &LakeStore) -> Result<Vec<FetchedCoverage>> {
    use crate::fetch::windows::{format_rfc3339, merge, parse_instant};
    // Per (API, filters): the coverage so far and the windows' times.
    type Group = (FetchedCoverage, Vec<(i64, i64)>);
    let mut groups: BTreeMap<(String, Vec<(String, String)>), Group> = BTreeMap::new();
    for w in ledger::load_windows(store).await? {
        let key = (w.api.clone(), w.filters.clone().into_iter().collect());
        let (c, times) = groups.entry(key).or_default();
        c.api = w.api.clone();
        c.source = w.filters.get("source").cloned();
        c.filters = w
            .filters
            .iter()
            .filter(|(k, _)| *k != "source")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        c.windows += 1;
        c.records_read += w.records_read;
        c.written += w.written;
        if w.fetched_at > c.last_fetched_at {
            c.last_fetched_at = w.fetched_at.clone();
        }
        if let (Ok(a), Ok(b)) = (parse_instant(&w.from), parse_instant(&w.to)) {
            times.push((a, b));
        }
    }
    Ok(groups
        .into_values()
        .map(|(mut c, times)| {
            c.covered = merge(&times)
                .into_iter()
                .map(|(a, b)| format!("{}..{}", format_rfc3339(a), format_rfc3339(b)))
                .collect();
            c
        })
        .collect())
}

/// The CloudHSM sequence numbers of a lake file's rows, by (tenant, HSM, reboot counter).
async fn collect_sequences(
    store: &LakeStore,
    rel: &str,
    tenant: &str,
    out: &mut BTreeMap<(String, Option<String>, u64), Vec<u64>>,
) -> Result<()> {
    use arrow::array::AsArray;
    let cols = [Col::Vendor, Col::TraceId];
    for b in read_file(store, rel, Some(&cols)).await? {
        let (Some(vendor), Some(trace)) = (
            b.column_by_name("vendor")
                .and_then(|c| c.as_string_opt::<i32>()),
            b.column_by_name("trace_id")
                .and_then(|c| c.as_string_opt::<i32>()),
        ) else {
            continue;
        };
        for (v, t) in vendor.iter().zip(trace.iter()) {
            if v != Some(VENDOR_CLOUDHSM) {
                continue;
            }
            if let Some((hsm, reboot, seq)) = t.and_then(sequence_of) {
                out.entry((tenant.to_string(), hsm.map(str::to_string), reboot))
                    .or_default()
                    .push(seq);
            }
        }
    }
    Ok(())
}

/// First, last and the gaps of sorted, distinct sequence numbers.
pub fn sequence_status(hsm_id: Option<String>, reboot: u64, numbers: &[u64]) -> SequenceStatus {
    let mut gaps = Vec::new();
    let mut missing = 0;
    for w in numbers.windows(2) {
        if w[1] > w[0] + 1 {
            let (a, b) = (w[0] + 1, w[1] - 1);
            missing += b - a + 1;
            gaps.push(if a == b {
                format!("{a:#x}")
            } else {
                format!("{a:#x}..{b:#x}")
            });
        }
    }
    SequenceStatus {
        hsm_id,
        reboot_counter: format!("{reboot:#x}"),
        first: numbers.first().map_or(String::new(), |n| format!("{n:#x}")),
        last: numbers.last().map_or(String::new(), |n| format!("{n:#x}")),
        events: numbers.len() as u64,
        gaps,
        missing,
    }
}

/// Rows in a lake file, from its footer alone.
pub(crate) async fn row_count(store: &LakeStore, rel: &str, size: u64) -> Result<u64> {
    Ok(footer_facts(store, rel, size).await?.0)
}

/// Rows in a lake file, and whether it may hold CloudHSM rows (its `vendor` statistics
/// include the value, or are missing), from its footer alone.
async fn footer_facts(store: &LakeStore, rel: &str, size: u64) -> Result<(u64, bool)> {
    use object_store::ObjectStoreExt;
    let bad = |why: String| Error::Usage(format!("{}: {why}", store.show(rel)));
    let path = store.path(rel);
    if size < 12 {
        return Err(bad("not a Parquet file (too short)".into()));
    }
    let tail = store
        .store
        .get_range(&path, size - 8..size)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let len = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
    if &tail[4..] != b"PAR1" || len + 8 > size {
        return Err(bad("not a Parquet file (no footer)".into()));
    }
    let footer = store
        .store
        .get_range(&path, size - 8 - len..size - 8)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let meta = ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| bad(e.to_string()))?;
    let schema = meta.file_metadata().schema_descr();
    let vendor = (0..schema.num_columns()).find(|&i| schema.column(i).name() == "vendor");
    let want = VENDOR_CLOUDHSM.as_bytes();
    let cloudhsm = vendor.is_some_and(|i| {
        meta.row_groups().iter().any(|rg| {
            let stats = rg.column(i).statistics();
            match stats.map(|s| (s.min_bytes_opt(), s.max_bytes_opt())) {
                Some((Some(lo), Some(hi))) => lo <= want && want <= hi,
                _ => true,
            }
        })
    });
    Ok((meta.file_metadata().num_rows() as u64, cloudhsm))
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
        for q in &t.sequences {
            out.push_str(&format!(
                "  sequence {} reboot {}: {} .. {} ({} events), {}\n",
                q.hsm_id.as_deref().unwrap_or("(HSM not named)"),
                q.reboot_counter,
                q.first,
                q.last,
                q.events,
                if q.gaps.is_empty() {
                    "no gaps".to_string()
                } else {
                    format!("{} missing: {}", q.missing, q.gaps.join(", "))
                }
            ));
        }
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
    if let Some(h) = &s.chain {
        out.push_str(&format!(
            "chain: head {} after {} events\n",
            h.head, h.length
        ));
    }
    for c in &s.hourly {
        out.push_str(&format!(
            "hourly deliveries of {}\n  hours    {} .. {} ({} with a delivery)\n  missing  {}\n",
            c.resource,
            c.first_hour,
            c.last_hour,
            c.hours,
            if c.missing_hours.is_empty() {
                "none".to_string()
            } else {
                c.missing_hours.join(", ")
            }
        ));
    }
    for f in &s.fetched {
        let mut what = format!("source {}", f.source.as_deref().unwrap_or("(all)"));
        if !f.filters.is_empty() {
            what.push_str(&format!(", {}", f.filters.join(", ")));
        }
        out.push_str(&format!(
            "fetched from {} ({what})\n  covered  {}\n  windows  {} ({} records, {} new), last fetched {}\n",
            f.api,
            f.covered.join(", "),
            f.windows,
            f.records_read,
            f.written,
            f.last_fetched_at
        ));
    }
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

    #[test]
    fn sequence_gaps_are_hex_ranges() {
        let s = super::sequence_status(Some("hsm-a".into()), 0x2a, &[0, 1, 3, 7, 8]);
        assert_eq!((s.first.as_str(), s.last.as_str()), ("0x0", "0x8"));
        assert_eq!(s.gaps, vec!["0x2", "0x4..0x6"]);
        assert_eq!((s.events, s.missing), (5, 4));
    }
}
