//! `auditlake prune`: retention. Partitions whose day is older than the age the user
//! gives (there is no default: DPoD keeps 12 months, compliance regimes often keep
//! longer) leave the lake, and the ledger stops naming their files.
//!
//! Under the lake lock: first every ledger entry drops the files of those partitions
//! (its counts stay: they say what was converted, and the entry still keeps the
//! same export from being converted again), then the manifest stops naming them, then
//! the partitions' objects are deleted, then the trace index and the compaction
//! manifest forget them. Killed at any point, a rerun with the same age finishes it (`verify` meanwhile names the files not yet deleted as
//! unexpected). A query running meanwhile may see part of a partition that is going.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::Serialize;

use crate::lake::ledger;
use crate::lake::lock::LakeLock;
use crate::lake::store::LakeStore;
use crate::lake::switch::Switches;
use crate::lake::{list_partitions, partition_files};
use crate::testhook::point;
use crate::time::format_day;
use crate::Result;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("--older-than {0:?}: give an age such as 12mo, 400d, 2y or 8w")]
    BadAge(String),
    #[error("--older-than {0}: reaches before year 1")]
    TooOld(String),
}

/// An age: days, weeks, months or years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    Days(u32),
    Months(u32),
}

impl std::str::FromStr for Age {
    type Err = PruneError;
    fn from_str(s: &str) -> std::result::Result<Age, PruneError> {
        let t = s.trim().to_ascii_lowercase();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u32 = num.parse().map_err(|_| PruneError::BadAge(s.into()))?;
        let age = match unit.trim() {
            "d" | "day" | "days" => Age::Days(n),
            "w" | "week" | "weeks" => Age::Days(n.saturating_mul(7)),
            "mo" | "month" | "months" => Age::Months(n),
            "y" | "year" | "years" => Age::Months(n.saturating_mul(12)),
            _ => return Err(PruneError::BadAge(s.into())),
        };
        Ok(age)
    }
}

impl std::fmt::Display for Age {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Age::Days(n) => write!(f, "{n}d"),
            Age::Months(n) => write!(f, "{n}mo"),
        }
    }
}

impl Age {
    /// The first day kept: `today` less the age (Date32). A month back from the 31st is
    /// the last day of the shorter month.
    pub fn cutoff(self, today: i32) -> Result<i32> {
        let shown = self.to_string();
        use chrono::{Days, Months, NaiveDate};
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        let day = epoch
            .checked_add_signed(chrono::Duration::days(today as i64))
            .ok_or_else(|| PruneError::TooOld(shown.clone()))?;
        let back = match self {
            Age::Days(n) => day.checked_sub_days(Days::new(n as u64)),
            Age::Months(n) => day.checked_sub_months(Months::new(n)),
        }
        .filter(|d| d >= &NaiveDate::from_ymd_opt(1, 1, 1).expect("valid date"))
        .ok_or_else(|| PruneError::TooOld(shown.clone()))?;
        Ok((back - epoch).num_days() as i32)
    }
}

/// One partition removed (or, with `--dry-run`, to be).
#[derive(Debug, Clone, Serialize)]
pub struct PrunedPartition {
    pub tenant_id: String,
    pub day: String,
    pub files: u64,
    pub bytes: u64,
    pub events: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PruneSummary {
    pub lake: String,
    pub dry_run: bool,
    /// The first day kept; every partition before it is removed.
    pub keep_from: String,
    pub partitions: Vec<PrunedPartition>,
    pub files: u64,
    pub bytes: u64,
    pub events: u64,
    pub ledger_entries_updated: u64,
    pub seconds: f64,
}

/// Removes the partitions before `cutoff` (Date32), under the lake lock unless `dry_run`.
pub fn prune(
    store: &LakeStore,
    rt: &tokio::runtime::Runtime,
    cutoff: i32,
    dry_run: bool,
) -> Result<PruneSummary> {
    let started = Instant::now();
    let mut summary = if dry_run {
        rt.block_on(run(store, cutoff, true))?
    } else {
        let lock = LakeLock::acquire(store, rt.handle())?;
        let held = store.holding(lock.held());
        let result = rt.block_on(run(&held, cutoff, false));
        let released = lock.release();
        let s = result?;
        released?;
        s
    };
    summary.lake = store.display.clone();
    summary.dry_run = dry_run;
    summary.keep_from = format_day(cutoff);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

async fn run(store: &LakeStore, cutoff: i32, dry_run: bool) -> Result<PruneSummary> {
    let mut summary = PruneSummary::default();
    let parts: Vec<_> = list_partitions(store, None)
        .await?
        .into_iter()
        .filter(|p| p.key.day < cutoff)
        .collect();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for part in &parts {
        let mut p = PrunedPartition {
            tenant_id: part.key.tenant.to_string(),
            day: format_day(part.key.day),
            files: 0,
            bytes: 0,
            events: 0,
        };
        for (rel, size) in partition_files(store, &part.rel).await? {
            p.files += 1;
            p.bytes += size;
            p.events += crate::status::row_count(store, &rel, size).await?;
        }
        summary.files += p.files;
        summary.bytes += p.bytes;
        summary.events += p.events;
        summary.partitions.push(p);
        dirs.insert(format!("{}/", part.rel));
    }
    if dry_run || parts.is_empty() {
        return Ok(summary);
    }
    let gone = |f: &str| dirs.iter().any(|d| f.starts_with(d.as_str()));

    // 1. The ledger stops naming the files.
    let (mut changed, mut removed) = (Vec::new(), Vec::new());
    for mut entry in ledger::load(store).await? {
        let before = (entry.files.len(), entry.file_details.len());
        removed.extend(entry.files.iter().filter(|f| gone(f)).cloned());
        entry.files.retain(|f| !gone(f));
        entry.file_details.retain(|r| !gone(&r.path));
        if before != (entry.files.len(), entry.file_details.len()) {
            changed.push(entry);
        }
    }
    removed.sort();
    removed.dedup();
    let why = format!(
        "{} partitions before {} pruned",
        parts.len(),
        crate::time::format_day(cutoff)
    );
    ledger::write(store, "prune", &changed, removed, Some(why), "prune-ledger").await?;
    summary.ledger_entries_updated = changed.len() as u64;
    // 2. Manifest-planned queries stop reading them.
    if let Some(state) = crate::lake::manifest::load(store).await? {
        let removes: Vec<String> = state.files.keys().filter(|f| gone(f)).cloned().collect();
        crate::lake::manifest::append(store, vec![], removes).await?;
    }
    // 3. Every object of the partitions goes (temporary files of killed runs too).
    for part in &parts {
        for (rel, _) in store.list_all(&part.rel).await? {
            store.delete(&rel).await?;
            point("prune-delete");
        }
        if let Some(root) = store.local_dir() {
            // Empty directories are no partitions; ignore a directory that is not empty.
            let day = root.join(&part.rel);
            let _ = std::fs::remove_dir(&day);
            if let Some(tenant) = day.parent() {
                let _ = std::fs::remove_dir(tenant);
            }
        }
    }
    // 4. The trace index forgets their rows (after them: an entry may outlive its row,
    // never the other way round).
    let tenants: BTreeSet<&str> = parts.iter().map(|p| &*p.key.tenant).collect();
    for t in tenants {
        crate::lake::index::rewrite_tenant(store, t, Some(cutoff)).await?;
    }
    // 5. The compaction manifest forgets them.
    let mut manifest = Switches::load(store).await?;
    let before = manifest.switches.len();
    manifest
        .switches
        .retain(|s| !gone(&format!("{}/", s.partition)));
    if manifest.switches.len() != before {
        manifest.save(store).await?;
    }
    Ok(summary)
}

/// The human-readable form.
pub fn render(s: &PruneSummary) -> String {
    use crate::status::human_bytes;
    let mut out = String::new();
    for p in &s.partitions {
        out.push_str(&format!(
            "{} {} day {}: {} files ({}), {} events\n",
            if s.dry_run { "would remove" } else { "removed" },
            p.tenant_id,
            p.day,
            p.files,
            human_bytes(p.bytes),
            p.events
        ));
    }
    out.push_str(&format!(
        "{} {} partitions before {}: {} files ({}), {} events{}\n",
        if s.dry_run {
            "dry run: would remove"
        } else {
            "removed"
        },
        s.partitions.len(),
        s.keep_from,
        s.files,
        human_bytes(s.bytes),
        s.events,
        if s.dry_run {
            "; nothing changed".to_string()
        } else {
            format!("; {} ledger entries updated", s.ledger_entries_updated)
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_day;

    #[test]
    fn ages_count_back_from_today() {
        let today = parse_day("2026-03-31").unwrap();
        let cut = |a: &str| format_day(a.parse::<Age>().unwrap().cutoff(today).unwrap());
        assert_eq!(cut("12mo"), "2025-03-31");
        assert_eq!(cut("1mo"), "2026-02-28");
        assert_eq!(cut("1y"), "2025-03-31");
        assert_eq!(cut("30d"), "2026-03-01");
        assert_eq!(cut("2w"), "2026-03-17");
        assert_eq!(cut("0d"), "2026-03-31");
        for bad in ["", "12", "mo", "-1mo", "12 parsecs"] {
            assert!(bad.parse::<Age>().is_err(), "{bad}");
        }
        assert!("9999y".parse::<Age>().unwrap().cutoff(today).is_err());
    }
}
