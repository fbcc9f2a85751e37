//! The manifest: which files of the lake are live, with what a query needs to plan
//! without listing directories or reading footers — each file's size, rows, time range
//! and a small bloom filter of the columns people look one value up in.
//!
//! `_manifest/log/<seq>.json` entries (files added, files removed), written by each
//! convert (after its data, before its ledger entries), by `compact` at its switch and
//! by `prune` before it deletes; every sixteenth entry folds the log into
//! `_manifest/checkpoint-<seq>.json`, then `_manifest/last_checkpoint.json` names it,
//! then the folded entries and older checkpoints go. A reader takes the checkpoint named
//! there and the entries after it: three requests and at most sixteen more, however old
//! the lake. If a writer moves the checkpoint meanwhile, the reader finds the checkpoint
//! or an entry gone, and starts again; a writer killed between its steps leaves a
//! checkpoint nobody names, removed by the next one.
//!
//! A lake without `last_checkpoint.json` (written before the manifest) is read by
//! listing, as before; its next write builds the manifest once from its files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::store::LakeStore;
use super::writer::read_file;
use super::{live_partitions, Col, COLUMN_NAMES};
use crate::{Error, Result};

pub const MANIFEST_DIR: &str = "_manifest";
const LOG_DIR: &str = "_manifest/log";
const LAST: &str = "_manifest/last_checkpoint.json";
/// Log entries between checkpoints.
const CHECKPOINT_EVERY: usize = 16;
/// Columns with a bloom filter per file in the manifest (trace_id has the trace index).
pub const MEMBER_COLS: [Col; 3] = [Col::Ouid, Col::ActorId, Col::ClientIp];
/// Columns the views filter on, with their smallest and largest value per file.
pub const RANGE_COLS: [Col; 2] = [Col::Action, Col::Outcome];
/// Columns with a null count per file: the filter columns above and the looked-up ones
/// (`ouid IS NOT NULL` skips a file of rows without a key).
pub const NULL_COLS: [Col; 5] = [
    Col::Action,
    Col::Outcome,
    Col::Ouid,
    Col::ActorId,
    Col::ClientIp,
];

/// What a file's manifest entry says of one column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// Null values.
    pub nulls: u64,
    /// Smallest and largest value ([`RANGE_COLS`] only, absent when all are null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<String>,
}

/// One live file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the lake root: `events/tenant_id=<t>/day=<d>/<name>.parquet`.
    pub path: String,
    pub bytes: u64,
    pub rows: u64,
    /// Smallest and largest `time` (µs since the epoch, UTC).
    pub time_min: i64,
    pub time_max: i64,
    /// The distinct `vendor` values of its rows (absent in entries written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendors: Option<Vec<String>>,
    /// The sections of its entry's `.filters` file, kept beside the JSON and read only
    /// by a query that needs one: per column of [`MEMBER_COLS`] a bloom filter of its
    /// values (see [`Bloom`]), and under [`STATS_SECTION`] its [`ColumnStats`] by
    /// column, as JSON (absent in entries written before them).
    #[serde(skip)]
    pub sidecar: BTreeMap<String, Vec<u8>>,
}

/// What a file's rows say of themselves: its time range, vendors, column statistics and
/// bloom filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStats {
    pub time_min: i64,
    pub time_max: i64,
    /// Distinct `vendor` values, when the batches have the column.
    pub vendors: Option<Vec<String>>,
    /// Its `.filters` sections (see [`FileEntry::sidecar`]).
    pub sidecar: BTreeMap<String, Vec<u8>>,
}

/// The `.filters` section holding each file's column statistics.
pub const STATS_SECTION: &str = "stats";

impl FileStats {
    /// Of the batches a file is written from (or read back from, with some of its
    /// columns: each is found by name, and what is absent is left out).
    pub fn of(batches: &[RecordBatch]) -> FileStats {
        let column = |b: &RecordBatch, c: Col| b.column_by_name(COLUMN_NAMES[c as usize]).cloned();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for b in batches {
            if let Some(t) = column(b, Col::Time) {
                let t = t.as_primitive::<TimestampMicrosecondType>();
                if let (Some(a), Some(z)) = (arrow::compute::min(t), arrow::compute::max(t)) {
                    lo = lo.min(a);
                    hi = hi.max(z);
                }
            }
        }
        let has = |c: Col| batches.first().is_some_and(|b| column(b, c).is_some());
        // Few vendors per file (one, as a rule): a comparison with the last one seen.
        let vendors = has(Col::Vendor).then(|| {
            let mut seen: Vec<String> = Vec::new();
            for col in batches.iter().filter_map(|b| column(b, Col::Vendor)) {
                for v in col.as_string::<i32>().iter().flatten() {
                    if seen.last().is_none_or(|l| l != v) && !seen.iter().any(|s| s == v) {
                        seen.push(v.to_string());
                    }
                }
            }
            seen.sort();
            seen
        });
        let mut columns = BTreeMap::new();
        for c in NULL_COLS {
            if !has(c) {
                continue;
            }
            let mut st = ColumnStats::default();
            for col in batches.iter().filter_map(|b| column(b, c)) {
                st.nulls += col.null_count() as u64;
                if RANGE_COLS.contains(&c) {
                    let col = col.as_string::<i32>();
                    if let Some(v) = arrow::compute::min_string(col) {
                        if st.min.as_deref().is_none_or(|m| v < m) {
                            st.min = Some(v.to_string());
                        }
                    }
                    if let Some(v) = arrow::compute::max_string(col) {
                        if st.max.as_deref().is_none_or(|m| v > m) {
                            st.max = Some(v.to_string());
                        }
                    }
                }
            }
            columns.insert(COLUMN_NAMES[c as usize].to_string(), st);
        }
        let mut sidecar = BTreeMap::new();
        if !columns.is_empty() {
            if let Ok(json) = serde_json::to_vec(&columns) {
                sidecar.insert(STATS_SECTION.to_string(), json);
            }
        }
        let mut hashes: Vec<u64> = Vec::new();
        for c in MEMBER_COLS {
            if !has(c) {
                continue;
            }
            // Distinct values by their hashes (a sort of u64s costs less than a set of
            // strings on the converter's hot path), then a filter sized for them.
            hashes.clear();
            for col in batches.iter().filter_map(|b| column(b, c)) {
                let col = col.as_string::<i32>();
                hashes.extend(col.iter().flatten().map(|v| Bloom::hash(v.as_bytes())));
            }
            hashes.sort_unstable();
            hashes.dedup();
            let mut bloom = Bloom::with_capacity(hashes.len());
            for h in &hashes {
                bloom.insert_hash(*h);
            }
            sidecar.insert(COLUMN_NAMES[c as usize].to_string(), bloom.encode());
        }
        FileStats {
            time_min: lo,
            time_max: hi,
            vendors,
            sidecar,
        }
    }

    pub fn entry(self, path: String, bytes: u64, rows: u64) -> FileEntry {
        FileEntry {
            path,
            bytes,
            rows,
            time_min: self.time_min,
            time_max: self.time_max,
            vendors: self.vendors,
            sidecar: self.sidecar,
        }
    }
}

/// A bloom filter: about 10 bits per value and 6 probes (about 1% false positives),
/// from the value's xxHash64 split in two halves (double hashing). Stored as one byte
/// of probes, then the bits as little-endian u64 words.
pub struct Bloom {
    k: u32,
    words: Vec<u64>,
}

impl Bloom {
    pub fn with_capacity(n: usize) -> Bloom {
        let bits = (n * 10).max(64).next_power_of_two();
        Bloom {
            k: 6,
            words: vec![0; bits / 64],
        }
    }

    /// The hash a value is filed under.
    pub fn hash(v: &[u8]) -> u64 {
        twox_hash::XxHash64::oneshot(0x6175_6469_746c_616b, v)
    }

    fn positions(k: u32, m: u64, h: u64) -> impl Iterator<Item = usize> {
        let (a, b) = (h as u32 as u64, (h >> 32) | 1);
        (0..k as u64).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % m) as usize)
    }

    pub fn insert(&mut self, v: &[u8]) {
        self.insert_hash(Self::hash(v));
    }

    pub fn insert_hash(&mut self, h: u64) {
        for p in Self::positions(self.k, self.words.len() as u64 * 64, h) {
            self.words[p / 64] |= 1 << (p % 64);
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(1 + self.words.len() * 8);
        b.push(self.k as u8);
        for w in &self.words {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Whether `b` is an encoded filter (else a query keeps the file it stands for).
    pub fn valid(b: &[u8]) -> bool {
        matches!(b.split_first(), Some((&k, words)) if (1..=16).contains(&k) && !words.is_empty() && words.len() % 8 == 0)
    }

    /// Whether encoded filter `b` ([`Bloom::valid`]) may hold `v`: tested where it lies,
    /// so a lookup over years of files copies none of them.
    pub fn encoded_may_contain(b: &[u8], v: &[u8]) -> bool {
        let (k, words) = (b[0] as u32, &b[1..]);
        Self::positions(k, (words.len() / 8) as u64 * 64, Self::hash(v))
            .all(|p| words[p / 8] & (1 << (p % 8)) != 0)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct LogEntry {
    seq: u64,
    #[serde(default)]
    add: Vec<FileEntry>,
    #[serde(default)]
    remove: Vec<String>,
    /// Where each column's section lies in the entry's `.filters` file (absent in
    /// entries written before sections: their file is read whole).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    filters: Sections,
}

#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    seq: u64,
    files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    filters: Sections,
}

/// Per column, the byte range of its section in a `.filters` file.
type Sections = BTreeMap<String, [u64; 2]>;

/// A `.filters` file of the manifest as read, with its sections when it has them.
#[derive(Debug, Clone)]
struct FilterFile {
    rel: String,
    sections: Sections,
}

#[derive(Debug, Serialize, Deserialize)]
struct Last {
    seq: u64,
}

/// The live files as of a log sequence number.
#[derive(Debug, Default)]
pub struct State {
    pub seq: u64,
    pub files: BTreeMap<String, FileEntry>,
    /// The `.filters` files of the checkpoint and log entries read, oldest first.
    filter_files: Vec<FilterFile>,
}

impl State {
    fn apply(&mut self, e: LogEntry, rel: &str) {
        self.filter_files.push(FilterFile {
            rel: filters_rel(rel),
            sections: e.filters,
        });
        for r in e.remove {
            self.files.remove(&r);
        }
        for a in e.add {
            self.files.insert(a.path.clone(), a);
        }
        self.seq = e.seq;
    }
}

fn log_rel(seq: u64) -> String {
    format!("{LOG_DIR}/{seq:020}.json")
}

fn checkpoint_rel(seq: u64) -> String {
    format!("{MANIFEST_DIR}/checkpoint-{seq:020}.json")
}

/// The bloom filters kept beside a checkpoint or log entry.
fn filters_rel(json_rel: &str) -> String {
    format!("{}.filters", json_rel.trim_end_matches(".json"))
}

/// Written before sections: files one after another, each with all its columns.
const FILTERS_V1: &[u8; 8] = b"ALMF\x00\x00\x00\x01";
/// One section per column, so a lookup reads only its column's filters.
const FILTERS_V2: &[u8; 8] = b"ALMF\x00\x00\x00\x02";

/// Files' bloom filters in one blob: after the magic, per column a section (its name,
/// its length, then per file its path and filter bytes); with where each section lies.
fn encode_filters<'a>(entries: impl Iterator<Item = &'a FileEntry> + Clone) -> (Bytes, Sections) {
    let names: BTreeSet<&String> = entries.clone().flat_map(|e| e.sidecar.keys()).collect();
    let mut out = FILTERS_V2.to_vec();
    let mut sections = Sections::new();
    for name in names {
        let start = out.len();
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        let len_at = out.len();
        out.extend_from_slice(&0u64.to_le_bytes());
        for e in entries.clone() {
            if let Some(b) = e.sidecar.get(name) {
                out.extend_from_slice(&(e.path.len() as u32).to_le_bytes());
                out.extend_from_slice(e.path.as_bytes());
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
        let len = (out.len() - len_at - 8) as u64;
        out[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
        sections.insert(name.clone(), [start as u64, out.len() as u64]);
    }
    (Bytes::from(out), sections)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (a, b) = (rest.get(..n)?, rest.get(n..)?);
    *rest = b;
    Some(a)
}

fn take_u32(rest: &mut &[u8]) -> Option<usize> {
    Some(u32::from_le_bytes(take(rest, 4)?.try_into().ok()?) as usize)
}

/// Calls `f(path, column, bloom bytes)` for each filter of a whole blob (either
/// version); `None` when damaged.
fn decode_filters<'a>(b: &'a [u8], mut f: impl FnMut(&'a str, &'a str, &'a [u8])) -> Option<()> {
    if let Some(mut rest) = b.strip_prefix(FILTERS_V2.as_slice()) {
        while !rest.is_empty() {
            rest = decode_section(rest, &mut f)?;
        }
        return Some(());
    }
    let mut rest = b.strip_prefix(FILTERS_V1.as_slice())?;
    while !rest.is_empty() {
        let n = take_u32(&mut rest)?;
        let path = std::str::from_utf8(take(&mut rest, n)?).ok()?;
        let cols = take(&mut rest, 1)?[0];
        for _ in 0..cols {
            let n = take(&mut rest, 1)?[0] as usize;
            let name = std::str::from_utf8(take(&mut rest, n)?).ok()?;
            let n = take_u32(&mut rest)?;
            f(path, name, take(&mut rest, n)?);
        }
    }
    Some(())
}

/// One column's section at the start of `b`: calls `f` for each of its filters and
/// returns what follows it.
fn decode_section<'a>(
    mut b: &'a [u8],
    f: &mut impl FnMut(&'a str, &'a str, &'a [u8]),
) -> Option<&'a [u8]> {
    let n = take(&mut b, 1)?[0] as usize;
    let name = std::str::from_utf8(take(&mut b, n)?).ok()?;
    let len = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
    let mut body = take(&mut b, usize::try_from(len).ok()?)?;
    while !body.is_empty() {
        let n = take_u32(&mut body)?;
        let path = std::str::from_utf8(take(&mut body, n)?).ok()?;
        let n = take_u32(&mut body)?;
        f(path, name, take(&mut body, n)?);
    }
    Some(b)
}

/// One section of the `.filters` files for the live files of a manifest (a column's bloom
/// filters, or the column statistics), kept in the bytes read: a lookup over years
/// tests the filters where they lie.
#[derive(Debug, Default)]
pub struct Section {
    blobs: Vec<Bytes>,
    /// Per file: its blob and the filter's range in it.
    at: HashMap<String, (usize, Range<usize>)>,
}

impl Section {
    /// File `path`'s bytes in the section.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        let (blob, range) = self.at.get(path)?;
        Some(&self.blobs[*blob][range.clone()])
    }

    /// Of a bloom filter section: whether file `path` may hold `v`; `None` when it has
    /// no filter (it is kept).
    pub fn may_contain(&self, path: &str, v: &[u8]) -> Option<bool> {
        Some(Bloom::encoded_may_contain(self.get(path)?, v))
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// The bloom filters of `column` for the live files of `state` (see [`load_section`]).
pub async fn load_filters(store: &LakeStore, state: &State, column: &str) -> Result<Section> {
    load_section(store, state, column, Bloom::valid).await
}

/// Each live file's column statistics (a file without them is absent).
pub async fn load_column_stats(
    store: &LakeStore,
    state: &State,
) -> Result<HashMap<String, BTreeMap<String, ColumnStats>>> {
    // Statistics that do not parse leave their file without (it is kept).
    let section = load_section(store, state, STATS_SECTION, |_| true).await?;
    Ok(section
        .at
        .keys()
        .filter_map(|path| {
            let stats = serde_json::from_slice(section.get(path)?).ok()?;
            Some((path.clone(), stats))
        })
        .collect())
}

/// Section `name` of the `.filters` files of `state`'s checkpoint and log entries, for
/// its live files (a later entry wins; of a file with sections, only that section is
/// read). A file without one, or whose bytes are not `valid`, is absent (a query then
/// keeps it).
pub async fn load_section(
    store: &LakeStore,
    state: &State,
    column: &str,
    valid: fn(&[u8]) -> bool,
) -> Result<Section> {
    let mut out = Section::default();
    for ff in &state.filter_files {
        let damaged = || {
            Error::Usage(format!(
                "{}: damaged manifest filters; `auditlake verify --fix` writes the manifest again",
                store.show(&ff.rel)
            ))
        };
        let blob = if ff.sections.is_empty() {
            match store.get(&ff.rel).await? {
                Some(b) => b,
                None => continue,
            }
        } else {
            let Some(&[from, to]) = ff.sections.get(column) else {
                continue;
            };
            match store.get_range(&ff.rel, from..to).await {
                Ok(Some(b)) if b.len() as u64 == to - from => b,
                Ok(Some(_)) => return Err(damaged()),
                Ok(None) => continue,
                // A file cut short is damage; anything else is the store's error.
                Err(e) => match store.size(&ff.rel).await? {
                    Some(size) if size < to => return Err(damaged()),
                    _ => return Err(e),
                },
            }
        };
        let k = out.blobs.len();
        let start = blob.as_ptr() as usize;
        let mut found: Vec<(String, Range<usize>, bool)> = Vec::new();
        let mut each = |path: &str, name: &str, bytes: &[u8]| {
            if name == column && state.files.contains_key(path) {
                let from = bytes.as_ptr() as usize - start;
                found.push((path.to_string(), from..from + bytes.len(), valid(bytes)));
            }
        };
        let ok = if ff.sections.is_empty() {
            decode_filters(&blob, &mut each)
        } else {
            decode_section(&blob, &mut each)
                .filter(|rest| rest.is_empty())
                .map(|_| ())
        };
        ok.ok_or_else(damaged)?;
        for (path, range, valid) in found {
            if valid {
                out.at.insert(path, (k, range));
            } else {
                out.at.remove(&path);
            }
        }
        out.blobs.push(blob);
    }
    Ok(out)
}

/// The `.filters` files of a manifest that cannot be read.
pub async fn damaged_filters(store: &LakeStore, state: &State) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for ff in &state.filter_files {
        if let Some(b) = store.get(&ff.rel).await? {
            if decode_filters(&b, |_, _, _| {}).is_none() {
                out.push(ff.rel.clone());
            }
        }
    }
    Ok(out)
}

/// Every filter of the live files, into their entries (for a new checkpoint, and for
/// `verify`, which compares them with the files' rows).
pub async fn load_all_filters(store: &LakeStore, state: &mut State) -> Result<()> {
    for FilterFile { rel, .. } in state.filter_files.clone() {
        let Some(b) = store.get(&rel).await? else {
            continue;
        };
        let files = &mut state.files;
        decode_filters(&b, |path, name, bytes| {
            if let Some(e) = files.get_mut(path) {
                e.sidecar.insert(name.to_string(), bytes.to_vec());
            }
        })
        .ok_or_else(|| Error::Usage(format!("{}: damaged manifest filters", store.show(&rel))))?;
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(store: &LakeStore, rel: &str, b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| {
        Error::Usage(format!(
            "{}: not a manifest file ({e}); `auditlake verify --fix` rebuilds the manifest",
            store.show(rel)
        ))
    })
}

/// Log entries after `after`, by sequence number (listed, not read).
async fn log_seqs(store: &LakeStore) -> Result<Vec<u64>> {
    let mut seqs: Vec<u64> = store
        .list_files(LOG_DIR)
        .await?
        .iter()
        .filter_map(|(n, _)| n.strip_suffix(".json")?.parse().ok())
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// The manifest as it stands; `None` for a lake without one (read by listing).
pub async fn load(store: &LakeStore) -> Result<Option<State>> {
    'attempt: for _ in 0..8 {
        let Some(last) = store.get(LAST).await? else {
            return Ok(None);
        };
        let last: Last = parse(store, LAST, &last)?;
        let cp_rel = checkpoint_rel(last.seq);
        // The checkpoint read and the log listed together (each file is written once under
        // its name, and any found gone sends the reader back to the start).
        let (cp, listed) = tokio::join!(store.get(&cp_rel), log_seqs(store));
        let Some(cp) = cp? else {
            continue; // moved on meanwhile: read again
        };
        let cp: Checkpoint = parse(store, &cp_rel, &cp)?;
        let seqs: Vec<u64> = listed?.into_iter().filter(|s| *s > cp.seq).collect();
        for (i, s) in seqs.iter().enumerate() {
            if *s != cp.seq + 1 + i as u64 {
                continue 'attempt;
            }
        }
        let mut state = State {
            seq: cp.seq,
            files: cp.files.into_iter().map(|f| (f.path.clone(), f)).collect(),
            filter_files: vec![FilterFile {
                rel: filters_rel(&cp_rel),
                sections: cp.filters,
            }],
        };
        // The entries fetched together (one round trip to a bucket), applied in order.
        let fetched = futures::future::try_join_all(seqs.iter().map(|s| async move {
            let rel = log_rel(*s);
            let b = store.get(&rel).await?;
            Ok::<_, Error>((rel, b))
        }))
        .await?;
        for (rel, b) in fetched {
            let Some(b) = b else {
                continue 'attempt;
            };
            state.apply(parse(store, &rel, &b)?, &rel);
        }
        return Ok(Some(state));
    }
    Err(Error::Usage(format!(
        "{}: the manifest's checkpoint or log entries went missing while it was read (a writer moving it, or damage: if it stays so, `auditlake verify --fix` writes it again)",
        store.display
    )))
}

/// Whether the lake has a manifest.
pub async fn exists(store: &LakeStore) -> Result<bool> {
    Ok(store.size(LAST).await?.is_some())
}

/// Records files added and removed (under the lake lock), folding the log into a new
/// checkpoint every [`CHECKPOINT_EVERY`] entries.
pub async fn append(store: &LakeStore, add: Vec<FileEntry>, remove: Vec<String>) -> Result<()> {
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let last: Last = match store.get(LAST).await? {
        Some(b) => parse(store, LAST, &b)?,
        None => return Ok(()), // no manifest yet: `ensure` builds it from the files
    };
    let seqs = log_seqs(store).await?;
    let seq = seqs.last().copied().unwrap_or(0).max(last.seq) + 1;
    let rel = log_rel(seq);
    // The filters first: the JSON entry, created only if absent, is what commits both.
    let (filters, sections) = encode_filters(add.iter());
    store.put(&filters_rel(&rel), filters).await?;
    let entry = LogEntry {
        seq,
        add,
        remove,
        filters: sections,
    };
    if !store
        .put_new(&rel, Bytes::from(serde_json::to_vec(&entry)?))
        .await?
    {
        return Err(Error::Usage(format!(
            "{}: another writer extended the manifest at the same time",
            store.show(&rel)
        )));
    }
    crate::testhook::point("manifest-log");
    if seqs.iter().filter(|s| **s > last.seq).count() + 1 >= CHECKPOINT_EVERY {
        checkpoint(store).await?;
    }
    Ok(())
}

/// Folds the log into a new checkpoint, names it, then removes the folded entries.
pub async fn checkpoint(store: &LakeStore) -> Result<()> {
    let Some(mut state) = load(store).await? else {
        return Ok(());
    };
    load_all_filters(store, &mut state).await?;
    write_checkpoint(store, &state).await
}

async fn write_checkpoint(store: &LakeStore, state: &State) -> Result<()> {
    let (filters, sections) = encode_filters(state.files.values());
    let cp = Checkpoint {
        seq: state.seq,
        files: state.files.values().cloned().collect(),
        filters: sections,
    };
    let rel = checkpoint_rel(state.seq);
    store.put(&filters_rel(&rel), filters).await?;
    store
        .put(&rel, Bytes::from(serde_json::to_vec(&cp)?))
        .await?;
    crate::testhook::point("manifest-checkpoint");
    store
        .put(
            LAST,
            Bytes::from(serde_json::to_vec(&Last { seq: state.seq })?),
        )
        .await?;
    for s in log_seqs(store)
        .await?
        .into_iter()
        .filter(|s| *s <= state.seq)
    {
        store.delete(&log_rel(s)).await?;
        store.delete(&filters_rel(&log_rel(s))).await?;
    }
    for (name, _) in store.list_files(MANIFEST_DIR).await? {
        let other = format!("{MANIFEST_DIR}/{name}");
        if name.starts_with("checkpoint-") && other != rel && other != filters_rel(&rel) {
            store.delete(&other).await?;
        }
    }
    Ok(())
}

/// A lake file's entry, read from the file itself.
pub async fn entry_of_lake_file(store: &LakeStore, rel: &str, bytes: u64) -> Result<FileEntry> {
    let cols = [
        Col::Time,
        Col::Vendor,
        Col::Action,
        Col::Outcome,
        Col::Ouid,
        Col::ActorId,
        Col::ClientIp,
    ];
    let batches = read_file(store, rel, Some(&cols)).await?;
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    Ok(FileStats::of(&batches).entry(rel.to_string(), bytes, rows))
}

/// What a file's recorded entry says otherwise than the entry its rows give (`actual`,
/// from [`entry_of_lake_file`]), one phrase per difference; what an older entry does
/// not record (vendors, column statistics, a column's filter) is not compared.
pub fn differences(recorded: &FileEntry, actual: &FileEntry) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, rec: String, act: String| {
        if rec != act {
            out.push(format!("{what} {rec}, its rows say {act}"));
        }
    };
    differ("rows", recorded.rows.to_string(), actual.rows.to_string());
    let time = |t: i64| crate::time::format_micros(t);
    differ("time from", time(recorded.time_min), time(actual.time_min));
    differ("time to", time(recorded.time_max), time(actual.time_max));
    if let Some(v) = &recorded.vendors {
        let act = actual
            .vendors
            .as_ref()
            .map(|v| v.join(","))
            .unwrap_or_default();
        differ("vendors", v.join(","), act);
    }
    for (name, rec) in &recorded.sidecar {
        match actual.sidecar.get(name) {
            Some(act) if act == rec => {}
            _ if name == STATS_SECTION => out.push("column statistics differ from its rows".into()),
            _ => out.push(format!("the {name} filter differs from its rows")),
        }
    }
    out
}

/// The live files of the lake by listing (the compaction rule applied), with sizes.
pub async fn listed_live(store: &LakeStore) -> Result<Vec<(String, u64)>> {
    Ok(live_partitions(store, None)
        .await?
        .into_iter()
        .flat_map(|(_, live)| live)
        .collect())
}

/// Makes sure the lake has a manifest before a write extends it: a lake written before
/// the manifest gets one here, once, from its files (the files no ledger entry names,
/// left by a killed run, wait for the rerun that adopts them).
pub async fn ensure(store: &LakeStore) -> Result<()> {
    if exists(store).await? {
        return Ok(());
    }
    let mut state = State::default();
    // Only files the ledger names: a lake whose ledger names none (a first convert)
    // needs no listing.
    let ledgered: BTreeSet<String> = super::ledger::load(store)
        .await?
        .into_iter()
        .flat_map(|e| e.files)
        .collect();
    if !ledgered.is_empty() {
        let live: Vec<(String, u64)> = listed_live(store)
            .await?
            .into_iter()
            .filter(|(p, _)| ledgered.contains(p))
            .collect();
        if !live.is_empty() {
            crate::notes::note(&format!(
                "writing the manifest of {} files, once (a lake from before the manifest)",
                live.len()
            ));
        }
        for (rel, size) in live {
            let e = entry_of_lake_file(store, &rel, size).await?;
            state.files.insert(rel, e);
        }
    }
    write_checkpoint(store, &state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bloom_filter_has_no_false_negatives_and_few_false_positives() {
        let mut b = Bloom::with_capacity(500);
        for i in 0..500 {
            b.insert(format!("key-{i}").as_bytes());
        }
        let b = b.encode();
        assert!(Bloom::valid(&b));
        assert!((0..500).all(|i| Bloom::encoded_may_contain(&b, format!("key-{i}").as_bytes())));
        let fp = (0..10_000)
            .filter(|i| Bloom::encoded_may_contain(&b, format!("other-{i}").as_bytes()))
            .count();
        assert!(fp < 300, "{fp} false positives in 10,000");
        assert!(!Bloom::valid(b"\x00"));
        assert!(!Bloom::valid(b""));
        assert!(!Bloom::valid(b"\x06\x01\x02"));
    }

    #[tokio::test]
    async fn the_log_folds_into_checkpoints_and_reads_back_the_same() {
        let store = LakeStore::in_memory("manifest");
        assert!(load(&store).await.unwrap().is_none());
        ensure(&store).await.unwrap();
        let f = |i: u64| {
            let mut bloom = Bloom::with_capacity(1);
            bloom.insert(format!("key-{i}").as_bytes());
            FileEntry {
                path: format!("events/tenant_id=t/day=2025-01-01/f{i}.parquet"),
                bytes: i,
                rows: i,
                time_min: 0,
                time_max: 1,
                vendors: None,
                sidecar: [("ouid".to_string(), bloom.encode())].into(),
            }
        };
        for i in 0..40u64 {
            let remove = if i % 3 == 0 && i > 0 {
                vec![f(i - 1).path]
            } else {
                vec![]
            };
            append(&store, vec![f(i)], remove).await.unwrap();
        }
        let state = load(&store).await.unwrap().unwrap();
        let want: Vec<u64> = (0..40).filter(|i| !(i % 3 == 2 && *i < 39)).collect();
        let got: Vec<u64> = state.files.values().map(|e| e.bytes).collect();
        let mut want_sorted: Vec<u64> = want.clone();
        want_sorted.sort_by_key(|i| f(*i).path);
        assert_eq!(got, want_sorted);
        assert_eq!(state.seq, 40);
        // Folded entries are gone: fewer than CHECKPOINT_EVERY remain.
        assert!(log_seqs(&store).await.unwrap().len() < CHECKPOINT_EVERY);
        // Each live file's filter, from the checkpoint's or a later entry's filters file.
        let blooms = load_filters(&store, &state, "ouid").await.unwrap();
        assert_eq!(blooms.len(), state.files.len());
        for e in state.files.values() {
            let key = format!("key-{}", e.bytes);
            assert_eq!(blooms.may_contain(&e.path, key.as_bytes()), Some(true));
        }
        assert!(load_filters(&store, &state, "client_ip")
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn filters_written_before_sections_still_read() {
        let store = LakeStore::in_memory("manifest-v1");
        ensure(&store).await.unwrap();
        let mut bloom = Bloom::with_capacity(1);
        bloom.insert(b"k-1");
        let path = "events/tenant_id=t/day=2025-01-01/a.parquet";
        // The first format: per file its path, its column count, then each column.
        let mut v1 = FILTERS_V1.to_vec();
        v1.extend_from_slice(&(path.len() as u32).to_le_bytes());
        v1.extend_from_slice(path.as_bytes());
        v1.push(1);
        v1.push(4);
        v1.extend_from_slice(b"ouid");
        let b = bloom.encode();
        v1.extend_from_slice(&(b.len() as u32).to_le_bytes());
        v1.extend_from_slice(&b);
        store
            .put(&filters_rel(&log_rel(1)), Bytes::from(v1))
            .await
            .unwrap();
        let json = format!(
            r#"{{"seq":1,"add":[{{"path":"{path}","bytes":1,"rows":1,"time_min":0,"time_max":1}}]}}"#
        );
        store.put(&log_rel(1), Bytes::from(json)).await.unwrap();
        let state = load(&store).await.unwrap().unwrap();
        let f = load_filters(&store, &state, "ouid").await.unwrap();
        assert_eq!(f.may_contain(path, b"k-1"), Some(true));
        assert_eq!(f.len(), 1);
        // The next checkpoint writes them again with sections.
        checkpoint(&store).await.unwrap();
        let state = load(&store).await.unwrap().unwrap();
        assert!(state.filter_files[0].sections.contains_key("ouid"));
        let f = load_filters(&store, &state, "ouid").await.unwrap();
        assert_eq!(f.may_contain(path, b"k-1"), Some(true));
    }
}
