//! `auditlake verify`: the lake's files against its ledger — files missing,
//! altered (size, SHA-256) or unexpected, row counts from the Parquet footers
//! (per file and per partition), and temporary files left by killed runs,
//! which `--fix` removes. Unexpected files of a compaction in flight are named as
//! such. The trace index is checked against the rows: runs that cannot be read, rows it
//! lacks, entries naming no row; `--fix` rebuilds a tenant's index from its files.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;
use parquet::file::metadata::ParquetMetaDataReader;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::lake::index::{self, INDEX_DIR};
use crate::lake::ledger::{self, FileRecord};
use crate::lake::manifest;
use crate::lake::store::LakeStore;
use crate::lake::writer::hex;
use crate::lake::{decode_part_value, EVENTS_DIR, LEDGER_DIR, REJECTED_DIR};
use crate::{Error, Result};

/// Files read at once: enough to keep an object store busy.
const CONCURRENT_READS: usize = 8;

/// What is wrong with a file or a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Named by the ledger, not in the lake.
    Missing,
    /// In the lake with another size or SHA-256 than the ledger's.
    Altered,
    /// A Parquet file that no ledger entry names.
    Unexpected,
    /// Rows in a file's footer (or a partition's files) other than the ledger's count.
    Rows,
    /// An event of the lake's chain that does not follow the one before it (edited,
    /// inserted, removed or reordered), or that cannot be read.
    ChainBroken,
    /// A ledger record whose bytes are not the ones the chain committed to last
    /// (altered), that the chain committed to but is gone (removed), or that no event
    /// names (written outside auditlake).
    LedgerAltered,
    /// A signed checkpoint whose signature does not verify, or unsigned events after the
    /// last one (with `--public-key`).
    CheckpointInvalid,
    /// `--expect-head` names no event of the chain.
    HeadUnknown,
    /// A temporary file of a run that did not finish.
    LeftoverTmp,
    /// A trace index run that cannot be read (damaged or altered).
    IndexDamaged,
    /// Rows of the lake the trace index lacks: a convert could let a duplicate of them in.
    IndexMissing,
    /// Trace index entries that name no row of the lake (harmless, but not exact).
    IndexStale,
    /// The manifest cannot be read.
    ManifestDamaged,
    /// A live file the ledger names that the manifest lacks: queries do not see it.
    ManifestMissing,
    /// A file the manifest names that is not live in the lake: queries fail on it.
    ManifestStale,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Altered => "altered",
            Kind::Unexpected => "unexpected",
            Kind::Rows => "rows",
            Kind::ChainBroken => "chain_broken",
            Kind::LedgerAltered => "ledger_altered",
            Kind::CheckpointInvalid => "checkpoint_invalid",
            Kind::HeadUnknown => "head_unknown",
            Kind::LeftoverTmp => "leftover_tmp",
            Kind::IndexDamaged => "index_damaged",
            Kind::IndexMissing => "index_missing",
            Kind::IndexStale => "index_stale",
            Kind::ManifestDamaged => "manifest_damaged",
            Kind::ManifestMissing => "manifest_missing",
            Kind::ManifestStale => "manifest_stale",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// The file, or for a partition's row count its directory, relative to the lake root.
    pub path: String,
    pub detail: String,
    /// Removed by `--fix` (leftover temporary files), or rebuilt (the trace index).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Counts {
    pub missing: u64,
    pub altered: u64,
    pub unexpected: u64,
    pub rows: u64,
    pub chain_broken: u64,
    pub ledger_altered: u64,
    pub checkpoint_invalid: u64,
    pub head_unknown: u64,
    pub leftover_tmp: u64,
    pub index_damaged: u64,
    pub index_missing: u64,
    pub index_stale: u64,
    pub manifest_damaged: u64,
    pub manifest_missing: u64,
    pub manifest_stale: u64,
}

/// The outcome of a verification (printed as JSON with `--json`).
#[derive(Debug, Serialize)]
pub struct Verification {
    pub lake: String,
    pub ledger_entries: u64,
    /// Distinct files the ledger names.
    pub ledger_files: u64,
    /// Parquet files under `events/`.
    pub lake_files: u64,
    /// Files named only by ledger entries written before sizes and SHA-256 were
    /// recorded: checked for existence only.
    pub existence_only: Vec<String>,
    /// The lake's chain: the SHA-256 of its last event and how many events it has
    /// (absent for a lake with no chain yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::lake::chain::Head>,
    pub counts: Counts,
    pub findings: Vec<Finding>,
}

impl Verification {
    /// Findings still standing (all but the temporary files `--fix` removed).
    pub fn open_findings(&self) -> usize {
        self.findings.iter().filter(|f| !f.removed).count()
    }
}

/// Where an object found in the lake is.
#[derive(Debug, Clone)]
enum Location {
    /// A file on local disk, read directly: object_store's listing hides its own
    /// temporary files (`name#N`), which verify is looking for.
    Local(PathBuf),
    Store(ObjPath),
}

#[derive(Debug, Clone)]
struct Found {
    /// Relative to the lake root, `/`-separated, partition values as written.
    rel: String,
    size: u64,
    at: Location,
}

/// Whether a file name is one of a temporary file: the writer's hidden `.<name>.tmp`
/// (and any other `*.tmp`), or object_store's local staging file `<name>#<n>`.
pub fn is_temporary(name: &str) -> bool {
    name.ends_with(".tmp")
        || name
            .rsplit_once('#')
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Fails with "no lake at L" unless the lake has `events/` or `_ledger/`.
pub async fn ensure_lake(store: &LakeStore) -> Result<()> {
    let here = match store.local_dir() {
        Some(root) => [EVENTS_DIR, LEDGER_DIR]
            .iter()
            .any(|d| root.join(d).is_dir()),
        None => {
            let mut any = false;
            for dir in [EVENTS_DIR, LEDGER_DIR] {
                // The first object of a listing is enough.
                match store.store.list(Some(&store.path(dir))).next().await {
                    Some(Ok(_)) => any = true,
                    None | Some(Err(object_store::Error::NotFound { .. })) => {}
                    Some(Err(e)) => return Err(Error::Usage(format!("{}: {e}", store.show(dir)))),
                }
            }
            any
        }
    };
    if here {
        Ok(())
    } else {
        Err(Error::Usage(format!("no lake at {}", store.display)))
    }
}

/// What verify checks besides the files: the chain against a public key and a head.
#[derive(Debug, Default)]
pub struct Expect {
    /// Every signed checkpoint must verify with this key, and none be followed by
    /// unsigned events.
    pub public_key: Option<ed25519_dalek::VerifyingKey>,
    /// A head an earlier report or status gave: it must be on the chain.
    pub head: Option<String>,
}

/// Checks every file below `events/` against the ledger, and the ledger against its
/// chain; with `fix`, removes the temporary files found (in `events/`, `_ledger/` and
/// `_rejected/`).
pub async fn verify(store: &LakeStore, fix: bool, expect: &Expect) -> Result<Verification> {
    ensure_lake(store).await?;
    if fix {
        // A lake from before the manifest or the trace index gets them here, once.
        manifest::ensure(store).await?;
        index::ensure(store).await?;
    }
    let entries = ledger::load(store).await?;
    // What the ledger says of each file: its record, or None when only its name is known.
    let mut named: BTreeMap<String, Option<FileRecord>> = BTreeMap::new();
    for e in &entries {
        for f in &e.files {
            named.entry(f.clone()).or_insert(None);
        }
        for r in &e.file_details {
            named
                .entry(r.path.clone())
                .or_insert(None)
                .get_or_insert_with(|| r.clone());
        }
    }

    let mut findings = Vec::new();
    let mut present: BTreeMap<String, Found> = BTreeMap::new();
    let mut temporary: Vec<Found> = Vec::new();
    for dir in [EVENTS_DIR, LEDGER_DIR, REJECTED_DIR, INDEX_DIR] {
        for f in list(store, dir).await? {
            let name = f.rel.rsplit('/').next().unwrap_or(&f.rel);
            if is_temporary(name) {
                findings.push(leftover(&f));
                temporary.push(f);
            } else if dir == EVENTS_DIR && name.ends_with(".parquet") {
                present.insert(f.rel.clone(), f);
            }
        }
    }

    for (rel, record) in &named {
        if !present.contains_key(rel) {
            let detail = match record {
                Some(r) => format!(
                    "named by the ledger ({} bytes, {} rows), not in the lake",
                    r.bytes, r.rows
                ),
                None => "named by the ledger, not in the lake".to_string(),
            };
            findings.push(finding(Kind::Missing, rel, detail));
        }
    }

    // Read what there is to read: every file's footer, and the SHA-256 of each file whose
    // size matches the ledger's. Files only named by old entries are not read.
    let to_read: Vec<(Found, Option<FileRecord>)> = present
        .values()
        .filter_map(|f| match named.get(&f.rel) {
            Some(None) => None,
            Some(Some(r)) => Some((f.clone(), Some(r.clone()))),
            None => Some((f.clone(), None)),
        })
        .collect();
    let read: Vec<FileCheck> = futures::stream::iter(to_read)
        .map(|(f, record)| read_file(store, f, record))
        .buffer_unordered(CONCURRENT_READS)
        .try_collect()
        .await?;

    // Rows per partition: the ledger's sum against the footers' sum, where both are known.
    let add = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| a + b);
    let mut sums: BTreeMap<&str, (Option<u64>, Option<u64>)> = BTreeMap::new();
    for (rel, record) in &named {
        let s = sums.entry(parent(rel)).or_insert((Some(0), Some(0)));
        s.0 = add(s.0, record.as_ref().map(|r| r.rows));
    }
    for rel in present
        .keys()
        .filter(|rel| matches!(named.get(*rel), Some(None)))
    {
        sums.entry(parent(rel)).or_insert((Some(0), Some(0))).1 = None; // not read
    }
    for r in &read {
        let s = sums
            .entry(parent(&r.found.rel))
            .or_insert((Some(0), Some(0)));
        s.1 = add(s.1, r.rows.as_ref().ok().copied());
        findings.extend(r.findings());
    }
    for (dir, sum) in &sums {
        if let (Some(ledger), Some(files)) = *sum {
            if ledger != files {
                findings.push(finding(
                    Kind::Rows,
                    dir,
                    format!(
                        "the ledger counts {ledger} rows in this partition, its files hold {files}"
                    ),
                ));
            }
        }
    }

    // Files a compaction left in flight (killed, or running now) say so.
    let switches = crate::lake::switch::Switches::load(store).await?;
    for s in switches
        .switches
        .iter()
        .filter(|s| s.state != crate::lake::switch::State::Done)
    {
        for f in findings.iter_mut().filter(|f| {
            f.kind == Kind::Unexpected && (f.path == s.merged || s.replaced.contains(&f.path))
        }) {
            f.detail.push_str(if f.path == s.merged {
                "; the merged file of a compaction in flight (`auditlake compact` finishes it)"
            } else {
                "; replaced by a compaction in flight (`auditlake compact` finishes it)"
            });
        }
    }
    // Rows of a tenant whose files are missing or damaged may come back (a restore): its
    // index entries for them are not called stale, and not dropped by --fix.
    let troubled: std::collections::BTreeSet<String> = findings
        .iter()
        .filter(|f| matches!(f.kind, Kind::Missing | Kind::Altered | Kind::Rows))
        .filter_map(|f| f.path.split('/').nth(1).map(str::to_string))
        .collect();
    let index_findings = check_index(store, &troubled).await?;
    findings.extend(index_findings.iter().map(|(_, f)| f.clone()));
    // A file already found missing or altered is not named again as the manifest's.
    let bad_files: std::collections::BTreeSet<String> = findings
        .iter()
        .filter(|f| matches!(f.kind, Kind::Missing | Kind::Altered))
        .map(|f| f.path.clone())
        .collect();
    let manifest_check = check_manifest(store, &named, &bad_files).await?;
    findings.extend(manifest_check.findings.iter().cloned());
    let chain =
        crate::lake::chain::check(store, expect.public_key.as_ref(), expect.head.as_deref())
            .await?;
    for (kind, list) in [
        (Kind::ChainBroken, &chain.broken),
        (Kind::LedgerAltered, &chain.ledger),
        (Kind::CheckpointInvalid, &chain.signatures),
    ] {
        findings.extend(list.iter().map(|(p, d)| finding(kind, p, d.clone())));
    }
    if let Some(d) = &chain.unknown_head {
        findings.push(finding(
            Kind::HeadUnknown,
            crate::lake::chain::CHAIN_DIR,
            d.clone(),
        ));
    }
    findings.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    if fix {
        for f in findings.iter_mut().filter(|f| f.kind == Kind::LeftoverTmp) {
            if let Some(t) = temporary.iter().find(|t| t.rel == f.path) {
                remove(store, t).await?;
                f.removed = true;
            }
        }
        let tenants: std::collections::BTreeSet<&str> =
            index_findings.iter().map(|(t, _)| t.as_str()).collect();
        if manifest_check
            .findings
            .iter()
            .any(|f| f.kind >= Kind::ManifestDamaged)
        {
            manifest_check.repair(store).await?;
            for f in findings
                .iter_mut()
                .filter(|f| f.kind >= Kind::ManifestDamaged)
            {
                f.removed = true;
            }
        }
        for t in tenants {
            index::rebuild_tenant(store, t).await?;
            let dir = index::tenant_dir(t);
            for f in findings.iter_mut().filter(|f| {
                f.path.starts_with(&dir)
                    && (Kind::IndexDamaged..=Kind::IndexStale).contains(&f.kind)
            }) {
                f.removed = true;
            }
        }
    }
    let mut counts = Counts::default();
    for f in &findings {
        *match f.kind {
            Kind::Missing => &mut counts.missing,
            Kind::Altered => &mut counts.altered,
            Kind::Unexpected => &mut counts.unexpected,
            Kind::Rows => &mut counts.rows,
            Kind::ChainBroken => &mut counts.chain_broken,
            Kind::LedgerAltered => &mut counts.ledger_altered,
            Kind::CheckpointInvalid => &mut counts.checkpoint_invalid,
            Kind::HeadUnknown => &mut counts.head_unknown,
            Kind::LeftoverTmp => &mut counts.leftover_tmp,
            Kind::IndexDamaged => &mut counts.index_damaged,
            Kind::IndexMissing => &mut counts.index_missing,
            Kind::IndexStale => &mut counts.index_stale,
            Kind::ManifestDamaged => &mut counts.manifest_damaged,
            Kind::ManifestMissing => &mut counts.manifest_missing,
            Kind::ManifestStale => &mut counts.manifest_stale,
        } += 1;
    }
    Ok(Verification {
        lake: store.display.clone(),
        ledger_entries: entries.len() as u64,
        ledger_files: named.len() as u64,
        lake_files: present.len() as u64,
        existence_only: named
            .iter()
            .filter(|(_, r)| r.is_none())
            .map(|(p, _)| p.clone())
            .collect(),
        chain: chain.head,
        counts,
        findings,
    })
}

/// The trace index of each tenant against its rows, with the tenant each finding is of.
/// A lake from before the index has none yet: its next convert builds it.
async fn check_index(
    store: &LakeStore,
    troubled: &std::collections::BTreeSet<String>,
) -> Result<Vec<(String, Finding)>> {
    let mut out = Vec::new();
    if store.get(index::FORMAT_REL).await?.is_none() {
        crate::notes::note(
            "the lake has no trace index yet (written before it): the next convert or `verify --fix` builds it",
        );
        return Ok(out);
    }
    for t in index::all_tenants(store).await? {
        let mut check = index::check_tenant(store, &t).await?;
        let dir = index::tenant_dir(&t);
        let tenant_part = dir.rsplit('/').next().unwrap_or_default();
        if troubled.contains(tenant_part) || check.unreadable {
            check.stale = 0;
        }
        for (rel, why) in check.damaged {
            out.push((t.clone(), finding(Kind::IndexDamaged, &rel, why)));
        }
        if check.missing > 0 {
            let detail = format!(
                "{} rows of this tenant are not in its trace index: a convert could let their duplicates in (`verify --fix` rebuilds it)",
                check.missing
            );
            out.push((t.clone(), finding(Kind::IndexMissing, &dir, detail)));
        }
        if check.stale > 0 {
            let detail = format!(
                "{} trace index entries name no row of the lake (`verify --fix` rebuilds it)",
                check.stale
            );
            out.push((t.clone(), finding(Kind::IndexStale, &dir, detail)));
        }
    }
    Ok(out)
}

/// The manifest against the live files the ledger names.
struct ManifestCheck {
    findings: Vec<Finding>,
    /// Live files to add (path, size) and paths to remove.
    add: Vec<(String, u64)>,
    remove: Vec<String>,
    /// Unreadable: written again whole.
    damaged: bool,
}

impl ManifestCheck {
    async fn repair(&self, store: &LakeStore) -> Result<()> {
        if self.damaged {
            for (rel, _) in store.list_all(manifest::MANIFEST_DIR).await? {
                store.delete(&rel).await?;
            }
            return manifest::ensure(store).await;
        }
        let mut adds = Vec::new();
        for (rel, size) in &self.add {
            adds.push(manifest::entry_of_lake_file(store, rel, *size).await?);
        }
        manifest::append(store, adds, self.remove.clone()).await
    }
}

async fn check_manifest(
    store: &LakeStore,
    named: &BTreeMap<String, Option<FileRecord>>,
    bad_files: &std::collections::BTreeSet<String>,
) -> Result<ManifestCheck> {
    let mut check = ManifestCheck {
        findings: vec![],
        add: vec![],
        remove: vec![],
        damaged: false,
    };
    if !manifest::exists(store).await? {
        crate::notes::note(
            "the lake has no manifest yet (written before it): queries list its files; the next convert or `verify --fix` writes it",
        );
        return Ok(check);
    }
    let mut state = match manifest::load(store).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(check),
        Err(e) => {
            check.damaged = true;
            check.findings.push(finding(
                Kind::ManifestDamaged,
                manifest::MANIFEST_DIR,
                format!("{e}"),
            ));
            return Ok(check);
        }
    };
    for rel in manifest::damaged_filters(store, &state).await? {
        check.damaged = true;
        check.findings.push(finding(
            Kind::ManifestDamaged,
            &rel,
            "its bloom filters cannot be read: lookups fail (`verify --fix` writes the manifest again)".into(),
        ));
    }
    if check.damaged {
        return Ok(check);
    }
    manifest::load_all_filters(store, &mut state).await?;
    // Partitions of a compaction in flight are between two states (`compact` finishes it).
    let in_flight: Vec<String> = crate::lake::switch::Switches::load(store)
        .await?
        .switches
        .iter()
        .filter(|s| s.state != crate::lake::switch::State::Done)
        .map(|s| format!("{}/", s.partition))
        .collect();
    let settled = |p: &str| !bad_files.contains(p) && !in_flight.iter().any(|d| p.starts_with(d));
    let live: BTreeMap<String, u64> = manifest::listed_live(store)
        .await?
        .into_iter()
        .filter(|(p, _)| named.contains_key(p) && settled(p))
        .collect();
    for (path, size) in &live {
        if !state.files.contains_key(path) {
            check.add.push((path.clone(), *size));
            check.findings.push(finding(
                Kind::ManifestMissing,
                path,
                "live and in the ledger, not in the manifest: queries do not see its rows (`verify --fix` adds it)".into(),
            ));
        }
    }
    let mut to_compare = Vec::new();
    for (path, e) in state.files.iter().filter(|(p, _)| settled(p)) {
        match live.get(path) {
            Some(size) if *size == e.bytes => to_compare.push(e),
            // The manifest is a second witness of each file's size.
            Some(size) => check.findings.push(finding(
                Kind::Altered,
                path,
                format!("{size} bytes; the manifest records {}", e.bytes),
            )),
            None => {
                check.remove.push(path.clone());
                check.findings.push(finding(
                    Kind::ManifestStale,
                    path,
                    "named by the manifest, not a live file: queries fail on it (`verify --fix` removes it)".into(),
                ));
            }
        }
    }
    // What the manifest says of each file's rows (time range, vendors, statistics,
    // filters) against its rows: a query trusts it to skip files.
    let compared: Vec<(&manifest::FileEntry, Vec<String>)> = futures::stream::iter(to_compare)
        .map(|e| async move {
            let actual = manifest::entry_of_lake_file(store, &e.path, e.bytes).await?;
            Ok::<_, Error>((e, manifest::differences(e, &actual)))
        })
        .buffer_unordered(CONCURRENT_READS)
        .try_collect()
        .await?;
    for (e, diff) in compared.into_iter().filter(|(_, d)| !d.is_empty()) {
        check.remove.push(e.path.clone());
        check.add.push((e.path.clone(), e.bytes));
        check.findings.push(finding(
            Kind::ManifestStale,
            &e.path,
            format!(
                "the manifest's entry differs from the file ({}): queries can skip rows it holds (`verify --fix` writes the entry again)",
                diff.join("; ")
            ),
        ));
    }
    Ok(check)
}

fn finding(kind: Kind, path: &str, detail: String) -> Finding {
    Finding {
        kind,
        path: path.to_string(),
        detail,
        removed: false,
    }
}

fn leftover(f: &Found) -> Finding {
    finding(
        Kind::LeftoverTmp,
        &f.rel,
        format!(
            "a temporary file ({} bytes) of a run that did not finish",
            f.size
        ),
    )
}

/// The directory part of a relative path.
fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(d, _)| d)
}

/// What was read of one Parquet file.
struct FileCheck {
    found: Found,
    record: Option<FileRecord>,
    /// None when the size already differs from the ledger's (not hashed).
    sha256: Option<String>,
    rows: std::result::Result<u64, String>,
}

impl FileCheck {
    fn findings(&self) -> Vec<Finding> {
        let rel = &self.found.rel;
        let Some(rec) = &self.record else {
            let rows = match &self.rows {
                Ok(n) => format!("{n} rows"),
                Err(e) => e.clone(),
            };
            return vec![finding(
                Kind::Unexpected,
                rel,
                format!(
                    "no ledger entry names this file ({} bytes, {rows})",
                    self.found.size
                ),
            )];
        };
        if self.found.size != rec.bytes {
            return vec![finding(
                Kind::Altered,
                rel,
                format!("{} bytes, the ledger says {}", self.found.size, rec.bytes),
            )];
        }
        if self.sha256.as_deref() != Some(rec.sha256.as_str()) {
            return vec![finding(
                Kind::Altered,
                rel,
                format!(
                    "SHA-256 {}, the ledger says {}",
                    self.sha256.as_deref().unwrap_or("-"),
                    rec.sha256
                ),
            )];
        }
        match &self.rows {
            Ok(n) if *n == rec.rows => vec![],
            Ok(n) => vec![finding(
                Kind::Rows,
                rel,
                format!("{n} rows in the footer, the ledger says {}", rec.rows),
            )],
            Err(e) => vec![finding(Kind::Rows, rel, e.clone())],
        }
    }
}

async fn read_file(
    store: &LakeStore,
    found: Found,
    record: Option<FileRecord>,
) -> Result<FileCheck> {
    let sha256 = match &record {
        Some(r) if r.bytes == found.size => Some(sha256_of(store, &found).await?),
        _ => None,
    };
    let rows = footer_rows(store, &found).await?;
    Ok(FileCheck {
        found,
        record,
        sha256,
        rows,
    })
}

/// Streams a file through SHA-256.
async fn sha256_of(store: &LakeStore, f: &Found) -> Result<String> {
    let mut h = Sha256::new();
    match &f.at {
        Location::Local(path) => {
            use tokio::io::AsyncReadExt;
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|e| Error::io(path, e))?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).await.map_err(|e| Error::io(path, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        Location::Store(path) => {
            let bad = |e: object_store::Error| Error::Usage(format!("{}: {e}", store.show(&f.rel)));
            let mut chunks = store.store.get(path).await.map_err(bad)?.into_stream();
            while let Some(chunk) = chunks.try_next().await.map_err(bad)? {
                h.update(&chunk);
            }
        }
    }
    Ok(hex(&h.finalize()))
}

/// Rows in a file by its footer; `Err` with the reason when it is no readable Parquet file.
async fn footer_rows(store: &LakeStore, f: &Found) -> Result<std::result::Result<u64, String>> {
    let size = f.size;
    if size < 12 {
        return Ok(Err("not a Parquet file (too short)".into()));
    }
    let tail = read_range(store, f, size - 8..size).await?;
    let len = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
    if &tail[4..] != b"PAR1" || len + 8 > size {
        return Ok(Err("not a Parquet file (no footer)".into()));
    }
    let footer = read_range(store, f, size - 8 - len..size - 8).await?;
    Ok(ParquetMetaDataReader::decode_metadata(&footer)
        .map(|m| m.file_metadata().num_rows() as u64)
        .map_err(|e| format!("unreadable footer: {e}")))
}

async fn read_range(store: &LakeStore, f: &Found, range: Range<u64>) -> Result<Bytes> {
    match &f.at {
        Location::Local(path) => {
            use std::io::{Read, Seek, SeekFrom};
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let mut file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                file.seek(SeekFrom::Start(range.start))
                    .map_err(|e| Error::io(&path, e))?;
                let mut buf = vec![0u8; (range.end - range.start) as usize];
                file.read_exact(&mut buf).map_err(|e| Error::io(&path, e))?;
                Ok(Bytes::from(buf))
            })
            .await
            .map_err(|e| Error::Usage(format!("{}: {e}", store.show(&f.rel))))?
        }
        Location::Store(path) => store
            .store
            .get_range(path, range)
            .await
            .map_err(|e| Error::Usage(format!("{}: {e}", store.show(&f.rel)))),
    }
}

/// Every object below `dir` (recursive), sorted. On local disk the directory is walked
/// itself, so that object_store's staging files show too.
async fn list(store: &LakeStore, dir: &str) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    match store.local_dir() {
        Some(root) => walk(&root.join(dir), dir, &mut out)?,
        None => {
            let skip = store.root.parts().count();
            let objects: Vec<object_store::ObjectMeta> =
                match store.store.list(Some(&store.path(dir))).try_collect().await {
                    Ok(v) => v,
                    Err(object_store::Error::NotFound { .. }) => vec![],
                    Err(e) => return Err(Error::Usage(format!("{}: {e}", store.show(dir)))),
                };
            for o in objects {
                // Back from object path parts to the lake's own names (each part was
                // percent-encoded once by object_store).
                let rel = o
                    .location
                    .parts()
                    .skip(skip)
                    .map(|p| decode_part_value(p.as_ref()).unwrap_or_else(|| p.as_ref().into()))
                    .collect::<Vec<_>>()
                    .join("/");
                out.push(Found {
                    rel,
                    size: o.size,
                    at: Location::Store(o.location),
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk(path: &std::path::Path, rel: &str, out: &mut Vec<Found>) -> Result<()> {
    let rd = match std::fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        let p = entry.path();
        let child = format!("{rel}/{}", entry.file_name().to_string_lossy());
        let kind = entry.file_type().map_err(|e| Error::io(&p, e))?;
        if kind.is_dir() {
            walk(&p, &child, out)?;
        } else if kind.is_file() {
            let size = entry.metadata().map_err(|e| Error::io(&p, e))?.len();
            out.push(Found {
                rel: child,
                size,
                at: Location::Local(p),
            });
        }
    }
    Ok(())
}

/// Removes a leftover temporary file.
async fn remove(store: &LakeStore, f: &Found) -> Result<()> {
    match &f.at {
        Location::Local(path) => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        },
        Location::Store(path) => match store.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::Usage(format!("{}: {e}", store.show(&f.rel)))),
        },
    }
}

/// The human-readable form: one line per finding, then a summary line.
pub fn render(v: &Verification) -> String {
    let mut out = String::new();
    for f in &v.findings {
        out.push_str(&format!(
            "{:<w$}{}: {}{}\n",
            f.kind.name(),
            f.path,
            f.detail,
            match (f.removed, f.kind >= Kind::IndexDamaged) {
                (false, _) => "",
                (true, false) => " (removed)",
                (true, true) => " (rebuilt)",
            },
            w = (f.kind.name().len() + 1).max(14)
        ));
    }
    if !v.existence_only.is_empty() {
        out.push_str(&format!(
            "note: {} files are named by ledger entries without their size and SHA-256 (older auditlake): checked for existence only\n",
            v.existence_only.len()
        ));
    }
    let c = &v.counts;
    let found = if v.findings.is_empty() {
        "no findings".to_string()
    } else {
        let index = c.index_damaged + c.index_missing + c.index_stale;
        let manifest = c.manifest_damaged + c.manifest_missing + c.manifest_stale;
        format!(
            "{} missing, {} altered, {} unexpected, {} rows, {} leftover_tmp{}{}{}",
            c.missing,
            c.altered,
            c.unexpected,
            c.rows,
            c.leftover_tmp,
            {
                let chain =
                    c.chain_broken + c.ledger_altered + c.checkpoint_invalid + c.head_unknown;
                if chain > 0 {
                    format!(
                        ", {} chain_broken, {} ledger_altered, {} checkpoint_invalid, {} head_unknown",
                        c.chain_broken, c.ledger_altered, c.checkpoint_invalid, c.head_unknown
                    )
                } else {
                    String::new()
                }
            },
            if index > 0 {
                format!(
                    ", {} index_damaged, {} index_missing, {} index_stale",
                    c.index_damaged, c.index_missing, c.index_stale
                )
            } else {
                String::new()
            },
            if manifest > 0 {
                format!(
                    ", {} manifest_damaged, {} manifest_missing, {} manifest_stale",
                    c.manifest_damaged, c.manifest_missing, c.manifest_stale
                )
            } else {
                String::new()
            }
        )
    };
    let removed = v
        .findings
        .iter()
        .filter(|f| f.removed && f.kind < Kind::IndexDamaged)
        .count();
    if let Some(h) = &v.chain {
        out.push_str(&format!(
            "chain: head {} after {} events\n",
            h.head, h.length
        ));
    }
    out.push_str(&format!(
        "verified {}: {} files in the ledger ({} entries), {} Parquet files in the lake: {found}{}\n",
        v.lake,
        v.ledger_files,
        v.ledger_entries,
        v.lake_files,
        if removed > 0 {
            format!("; removed {removed} temporary files")
        } else {
            String::new()
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::is_temporary;

    #[test]
    fn temporary_names_are_the_writers_and_object_stores() {
        assert!(is_temporary(".part-1-00001.parquet.tmp"));
        assert!(is_temporary("part-1-00001.parquet#1"));
        assert!(is_temporary("abc.json#12"));
        assert!(!is_temporary("part-1-00001.parquet"));
        assert!(!is_temporary("a#b.parquet"));
        assert!(!is_temporary("a#"));
    }
}
