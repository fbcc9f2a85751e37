//! `auditlake compact`: partitions that gathered several files (daily conversions
//! touching the same day) rewritten as one file each, exactly once throughout.
//!
//! The merged file holds the partition's rows in time order (ties in file order), written
//! with the converter's own writer settings (statistics, page indexes, bloom
//! filters), under a name derived from the files it replaces, so a rerun writes the
//! same file again. The steps, under the lake lock, each one safe to be killed at:
//! 1. **plan**: the compaction manifest ([`crate::lake::switch`]) records each
//!    partition's files and the merged file to come, as `pending` (one PUT);
//! 2. **write** each merged file (one atomic PUT each; readers leave a pending
//!    merged file out, so it is invisible while its old files are live);
//! 3. **switch**: one PUT of the manifest turns every pending partition to
//!    `switched`: from here on readers take the merged file and leave the old ones out;
//! 4. **ledger**: every entry naming an old file names the merged file instead;
//! 5. **delete** the old files, after `--grace` (queries planned before the switch
//!    may still be reading them), then mark the partitions `done` (one PUT); done
//!    entries leave the manifest at a later run, once the grace has passed again.
//!
//! A rerun first finishes what the manifest holds in flight (writes what is pending,
//! switches, rewrites the ledger, deletes), then compacts what is left. A reader that
//! lists a partition and then reads the manifest plans with all its old files or with
//! its merged file; see [`crate::lake::switch`] for why that holds at every moment.
//! Engines that list directories themselves (Spark, Trino) do not read the manifest:
//! during steps 2 to 5 they may see a partition's rows twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::lake::ledger::{self, FileRecord};
use crate::lake::lock::LakeLock;
use crate::lake::store::LakeStore;
use crate::lake::switch::{State, Switch, Switches};
use crate::lake::writer::{read_file, sorted_batches, write_file};
use crate::lake::{decode_part_value, live_set, PartKey};
use crate::testhook::point;
use crate::time::{format_day, parse_day};
use crate::Result;

/// What can stop a compaction, besides the store itself.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("{path}: a file the compaction manifest replaces is gone before its switch (was the lake changed by hand? `auditlake verify` says more)")]
    InputMissing { path: String },
    #[error("{partition}: the merged file would hold {got} rows, the files it replaces hold {want}; nothing switched")]
    RowsDiffer {
        partition: String,
        got: u64,
        want: u64,
    },
    #[error("{0}: not a partition directory (events/tenant_id=<id>/day=<YYYY-MM-DD>)")]
    NotAPartition(String),
    #[error("--from {from} is after --to {to}")]
    BadPeriod { from: String, to: String },
}

/// What to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    pub tenant: Option<String>,
    /// Inclusive day range (Date32).
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub dry_run: bool,
    /// zstd level of the merged files (the converter's default is 1).
    pub zstd_level: i32,
    /// How long old files stay after the switch, for queries planned before it.
    pub grace: Duration,
}

/// One partition compacted (or, with `--dry-run`, to be).
#[derive(Debug, Clone, Serialize)]
pub struct PartitionCompaction {
    pub partition: String,
    pub tenant_id: String,
    pub day: String,
    /// The files replaced.
    pub files: Vec<String>,
    pub bytes_before: u64,
    /// The merged file.
    pub merged: String,
    /// Its size and rows (not known in a dry run).
    pub bytes_after: Option<u64>,
    pub rows: Option<u64>,
    /// Finished from a run that did not complete, rather than planned by this one.
    pub resumed: bool,
}

/// The summary printed at the end (and as JSON with `--json`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct CompactSummary {
    pub lake: String,
    pub dry_run: bool,
    pub partitions: Vec<PartitionCompaction>,
    /// Partitions in scope that have one file already.
    pub already_compact: u64,
    pub files_removed: u64,
    pub ledger_entries_updated: u64,
    pub seconds: f64,
}

/// Runs a compaction over `store` (taking the lake lock unless it is a dry run).
pub fn compact(
    store: &LakeStore,
    rt: &tokio::runtime::Runtime,
    opts: &CompactOptions,
) -> Result<CompactSummary> {
    if let (Some(a), Some(b)) = (opts.from, opts.to) {
        if a > b {
            return Err(CompactError::BadPeriod {
                from: format_day(a),
                to: format_day(b),
            }
            .into());
        }
    }
    let started = Instant::now();
    let mut summary = if opts.dry_run {
        rt.block_on(run(store, opts))?
    } else {
        let lock = LakeLock::acquire(store, rt.handle())?;
        let held = store.holding(lock.held());
        let result = rt.block_on(async {
            let summary = run(&held, opts).await?;
            // The trace index's small runs merged too, so a convert opens few of them.
            for t in crate::lake::index::list_tenants(&held).await? {
                crate::lake::index::rewrite_tenant(&held, &t, None).await?;
            }
            Ok::<_, crate::Error>(summary)
        });
        let released = lock.release();
        let s = result?;
        released?;
        s
    };
    summary.lake = store.display.clone();
    summary.dry_run = opts.dry_run;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The partition of a partition directory (`events/tenant_id=<enc>/day=<day>`).
fn part_key(rel: &str) -> Result<PartKey> {
    let bad = || CompactError::NotAPartition(rel.to_string());
    let mut it = rel.split('/');
    let (Some(_), Some(t), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad().into());
    };
    let tenant = t
        .strip_prefix("tenant_id=")
        .and_then(decode_part_value)
        .ok_or_else(bad)?;
    let day = d.strip_prefix("day=").and_then(parse_day).ok_or_else(bad)?;
    Ok(PartKey {
        tenant: tenant.into(),
        day,
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn since(at: Option<&str>) -> Duration {
    at.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or_default()
}

/// The merged file's name: from the files it replaces, so that a rerun of a plan
/// writes the same file.
fn merged_name(partition: &str, replaced: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in replaced {
        h.update(f.as_bytes());
        h.update(b"\n");
    }
    let hex = crate::lake::writer::hex(&h.finalize());
    format!("{partition}/compact-{}.parquet", &hex[..20])
}

fn report_of(s: &Switch, sizes: &BTreeMap<String, u64>, resumed: bool) -> PartitionCompaction {
    let key = part_key(&s.partition).ok();
    PartitionCompaction {
        partition: s.partition.clone(),
        tenant_id: key.as_ref().map_or(String::new(), |k| k.tenant.to_string()),
        day: key.as_ref().map_or(String::new(), |k| format_day(k.day)),
        files: s.replaced.clone(),
        bytes_before: s.replaced.iter().filter_map(|f| sizes.get(f)).sum(),
        merged: s.merged.clone(),
        bytes_after: s.merged_record.as_ref().map(|r| r.bytes),
        rows: s.merged_record.as_ref().map(|r| r.rows),
        resumed,
    }
}

async fn run(store: &LakeStore, opts: &CompactOptions) -> Result<CompactSummary> {
    let mut summary = CompactSummary::default();
    let mut manifest = Switches::load(store).await?;
    let in_flight: Vec<String> = manifest
        .switches
        .iter()
        .filter(|s| s.state != State::Done)
        .map(|s| s.partition.clone())
        .collect();
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();

    // Plan: partitions in scope with several live files and nothing in flight.
    let mut planned = Vec::new();
    // Which files are live comes from the lake's manifest (a lake from before it is
    // listed), so planning costs the same however many days the lake holds.
    for (part, live) in live_set(store, opts.tenant.as_deref()).await? {
        let day = part.key.day;
        if opts.from.is_some_and(|a| day < a) || opts.to.is_some_and(|b| day > b) {
            continue;
        }
        if in_flight.contains(&part.rel) {
            continue;
        }
        let live: Vec<(String, u64)> = live.into_iter().map(|f| (f.path, f.bytes)).collect();
        if live.len() < 2 {
            summary.already_compact += u64::from(live.len() == 1);
            continue;
        }
        let replaced: Vec<String> = live.iter().map(|(p, _)| p.clone()).collect();
        sizes.extend(live);
        planned.push(Switch {
            merged: merged_name(&part.rel, &replaced),
            partition: part.rel,
            replaced,
            state: State::Pending,
            merged_record: None,
            switched_at: None,
            done_at: None,
        });
    }
    if opts.dry_run {
        for s in manifest.switches.iter().filter(|s| s.state != State::Done) {
            summary.partitions.push(report_of(s, &sizes, true));
        }
        for s in &planned {
            summary.partitions.push(report_of(s, &sizes, false));
        }
        return Ok(summary);
    }

    // Done entries whose grace has passed again leave the manifest.
    let before = manifest.switches.len();
    manifest
        .switches
        .retain(|s| !(s.state == State::Done && since(s.done_at.as_deref()) >= opts.grace));
    let dropped = before != manifest.switches.len();
    let resumed = manifest
        .switches
        .iter()
        .filter(|s| s.state != State::Done)
        .count();
    let planned_any = !planned.is_empty();
    manifest.switches.extend(planned);
    if planned_any || dropped {
        manifest.save(store).await?;
        point("compact-plan");
    }

    // Write every pending merged file.
    let mut pending_any = false;
    for s in manifest
        .switches
        .iter_mut()
        .filter(|s| s.state == State::Pending)
    {
        pending_any = true;
        s.merged_record = Some(write_merged(store, s, opts.zstd_level, &mut sizes).await?);
        point("compact-file");
    }
    // The switch: one PUT.
    if pending_any {
        let now = now_rfc3339();
        for s in manifest
            .switches
            .iter_mut()
            .filter(|s| s.state == State::Pending)
        {
            s.state = State::Switched;
            s.switched_at = Some(now.clone());
        }
        manifest.save(store).await?;
        point("compact-switch");
    }

    let switched: Vec<usize> = (0..manifest.switches.len())
        .filter(|&i| manifest.switches[i].state == State::Switched)
        .collect();
    if switched.is_empty() {
        return Ok(summary);
    }
    // Manifest-planned readers switch here: the merged files in, the old ones out (again
    // after a kill: the same entry twice changes nothing).
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    for &i in &switched {
        let s = &manifest.switches[i];
        let size = match &s.merged_record {
            Some(r) => r.bytes,
            None => store.size(&s.merged).await?.unwrap_or_default(),
        };
        adds.push(crate::lake::manifest::entry_of_lake_file(store, &s.merged, size).await?);
        removes.extend(s.replaced.iter().cloned());
    }
    crate::lake::manifest::append(store, adds, removes).await?;
    for (n, &i) in switched.iter().enumerate() {
        let s = &manifest.switches[i];
        for f in &s.replaced {
            if !sizes.contains_key(f) {
                if let Some(size) = store.size(f).await? {
                    sizes.insert(f.clone(), size);
                }
            }
        }
        summary.partitions.push(report_of(s, &sizes, n < resumed));
    }

    // The ledger names the merged files instead of the old ones.
    summary.ledger_entries_updated = rewrite_ledger(store, &manifest, &switched).await?;

    // Old files go once queries planned before the switch have had their time.
    let latest = switched
        .iter()
        .map(|&i| since(manifest.switches[i].switched_at.as_deref()))
        .min()
        .unwrap_or_default();
    if let Some(wait) = opts.grace.checked_sub(latest) {
        if !wait.is_zero() {
            crate::notes::note(&format!(
                "switched; removing the old files in {:.0}s (--grace), for queries planned before the switch",
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
        }
    }
    for &i in &switched {
        for f in &manifest.switches[i].replaced {
            store.delete(f).await?;
            summary.files_removed += 1;
            point("compact-delete");
        }
    }
    let now = now_rfc3339();
    for &i in &switched {
        let s = &mut manifest.switches[i];
        s.state = State::Done;
        s.done_at = Some(now.clone());
    }
    manifest.save(store).await?;
    point("compact-done");
    Ok(summary)
}

/// Reads a pending switch's files, checks their rows, writes the merged file.
async fn write_merged(
    store: &LakeStore,
    s: &Switch,
    zstd_level: i32,
    sizes: &mut BTreeMap<String, u64>,
) -> Result<FileRecord> {
    let key = part_key(&s.partition)?;
    let mut batches = Vec::new();
    let mut want = 0u64;
    for f in &s.replaced {
        let Some(size) = store.size(f).await? else {
            return Err(CompactError::InputMissing { path: f.clone() }.into());
        };
        sizes.insert(f.clone(), size);
        let file = read_file(store, f, None).await?;
        want += file.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        batches.extend(file);
    }
    let batches = sorted_batches(batches)?;
    let got: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    if got != want {
        return Err(CompactError::RowsDiffer {
            partition: s.partition.clone(),
            got,
            want,
        }
        .into());
    }
    let name = s.merged.rsplit('/').next().unwrap_or(&s.merged);
    let w = write_file(store, &key, name, &batches, zstd_level).await?;
    Ok(FileRecord {
        path: w.rel_path,
        bytes: w.bytes,
        sha256: w.sha256,
        rows: w.rows as u64,
    })
}

/// Every ledger entry naming a replaced file names the merged file instead (once).
/// Returns how many entries changed.
async fn rewrite_ledger(store: &LakeStore, manifest: &Switches, switched: &[usize]) -> Result<u64> {
    let mut to: BTreeMap<&str, &Switch> = BTreeMap::new();
    for &i in switched {
        let s = &manifest.switches[i];
        for f in &s.replaced {
            to.insert(f.as_str(), s);
        }
    }
    let mut changed = Vec::new();
    for mut entry in ledger::load(store).await? {
        if !entry.files.iter().any(|f| to.contains_key(f.as_str())) {
            continue;
        }
        let mut files: Vec<String> = Vec::with_capacity(entry.files.len());
        for f in &entry.files {
            let name = to.get(f.as_str()).map_or(f.as_str(), |s| s.merged.as_str());
            if !files.iter().any(|g| g == name) {
                files.push(name.to_string());
            }
        }
        let mut details: Vec<FileRecord> = Vec::with_capacity(entry.file_details.len());
        for r in &entry.file_details {
            let record = match to.get(r.path.as_str()) {
                Some(s) => match &s.merged_record {
                    Some(m) => m.clone(),
                    None => FileRecord::of_lake_file(store, &s.merged).await?,
                },
                None => r.clone(),
            };
            if !details.iter().any(|d| d.path == record.path) {
                details.push(record);
            }
        }
        entry.files = files;
        entry.file_details = details;
        changed.push(entry);
    }
    let replaced: Vec<String> = to.keys().map(|f| f.to_string()).collect();
    let why = format!(
        "{} files merged into {} ({})",
        replaced.len(),
        switched.len(),
        switched
            .iter()
            .map(|&i| manifest.switches[i].merged.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    ledger::write(
        store,
        "compact",
        &changed,
        replaced,
        Some(why),
        "compact-ledger",
    )
    .await?;
    Ok(changed.len() as u64)
}

/// The human-readable form.
pub fn render(s: &CompactSummary) -> String {
    use crate::status::human_bytes;
    let mut out = String::new();
    for p in &s.partitions {
        let after = match (p.bytes_after, p.rows) {
            (Some(b), Some(r)) => format!("1 file ({}), {r} rows", human_bytes(b)),
            _ => "1 file".to_string(),
        };
        out.push_str(&format!(
            "{}{} day {}: {} files ({}) -> {after}\n",
            if p.resumed { "(finished) " } else { "" },
            p.tenant_id,
            p.day,
            p.files.len(),
            human_bytes(p.bytes_before),
        ));
    }
    let files: usize = s.partitions.iter().map(|p| p.files.len()).sum();
    if s.dry_run {
        out.push_str(&format!(
            "dry run: would compact {} partitions ({files} files into {}); {} already have one file; nothing changed\n",
            s.partitions.len(),
            s.partitions.len(),
            s.already_compact
        ));
    } else {
        out.push_str(&format!(
            "compacted {} partitions in {:.2}s: {files} files into {}, {} old files removed, {} ledger entries updated; {} partitions already had one file\n",
            s.partitions.len(),
            s.seconds,
            s.partitions.len(),
            s.files_removed,
            s.ledger_entries_updated,
            s.already_compact
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_directories_parse_back_to_their_key() {
        let k = part_key("events/tenant_id=a%2Fb/day=2025-03-01").unwrap();
        assert_eq!(&*k.tenant, "a/b");
        assert_eq!(k.rel_dir(), "events/tenant_id=a%2Fb/day=2025-03-01");
        assert!(part_key("events/tenant_id=a").is_err());
        assert!(part_key("events/tenant_id=a/day=2025-13-01").is_err());
        // A plan writes the same merged file each time it runs.
        let files = vec!["x/a.parquet".to_string(), "x/b.parquet".to_string()];
        assert_eq!(merged_name("x", &files), merged_name("x", &files));
        assert_ne!(merged_name("x", &files), merged_name("x", &files[..1]));
    }
}
