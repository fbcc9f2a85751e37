//! The trace index: for each tenant, the days that hold each trace_id hash, so that a
//! convert checks its rows against years of history by reading a few bytes per row,
//! not every `trace_id` the tenant ever sent.
//!
//! `_index/tenant_id=<t>/*.tix` files, each a sorted run of entries (the top 40 bits of
//! a trace_id's xxHash64, the day of its row):
//! - `f-<data file>.tix`, a fragment: one data file's rows, written just before that
//!   file. An entry without its rows only costs a look; rows without their entry could
//!   let a duplicate in, so the entry always comes first.
//! - `r-<run>.tix`, a merged run: at its end a convert merges its own fragments, those
//!   of killed runs and the tenant's runs no bigger than what it merges so far into one
//!   (sizes double, so a tenant keeps a few runs however many days it has; none grows
//!   past [`MERGE_CAP`]). `compact` merges what convert left, `prune` drops the days it
//!   removed.
//!
//! A hash found in the index is confirmed against the rows of its day, so the index must
//! hold every row of the lake, and may hold more. `_index/format.json` says it covers the
//! whole lake; a lake written before the index has none, and its next write indexes it
//! once from the Parquet files (as `verify --fix` rebuilds a tenant's index).
//!
//! A run file: a 24-byte header (magic, entry count, fanout bits `fb`, day bits, entry
//! width in bytes, the first day), `2^fb + 1` little-endian u32 offsets of the buckets
//! (the hash's top `fb` bits), the entries (per bucket: the hash's next `40 - fb` bits,
//! then the day's offset from the first day, in `width` little-endian bytes, sorted), and
//! the xxHash64 of everything before it.

use std::collections::BTreeSet;
use std::ops::Range;

use arrow::array::AsArray;
use bytes::Bytes;

use super::rows::trace_hash;
use super::store::LakeStore;
use super::writer::read_file;
use super::{encode_part_value, live_partitions, Col, EVENTS_DIR};
use crate::{Error, Result};

pub const INDEX_DIR: &str = "_index";
/// Present once the index covers every row of the lake.
pub const FORMAT_REL: &str = "_index/format.json";
const MAGIC: &[u8; 8] = b"ALTIX\x00\x00\x01";
const HEADER: usize = 24;
/// Bits of the hash an entry keeps: a probe meets another trace_id's entry with a chance
/// of (entries / 2^40), about one in 60,000 for a tenant with 17M rows; such a meeting
/// costs reading the day's rows, never a wrong answer.
const HASH_BITS: u32 = 40;
/// Days 0000-01-01 ..= 9999-12-31 (every day the time parser accepts) fit in 22 bits
/// once biased; the bias keeps the smallest one off 0.
pub const DAY_BITS: u32 = 22;
pub const DAY_BIAS: i64 = 719_529;
const _: () = assert!(
    crate::time::LAST_DAY as i64 + DAY_BIAS < (1 << DAY_BITS)
        && crate::time::FIRST_DAY as i64 + DAY_BIAS > 0
);
/// Runs up to this size are read whole when a convert opens them; bigger ones by range.
const WHOLE_BYTES: u64 = 1 << 20;
/// No merge writes a run bigger than this (memory: twice as much while merging).
pub const MERGE_CAP: u64 = 32 << 20;
/// Fanout bits at most (a 4 MiB bucket table).
const MAX_FB: u8 = 20;

/// One entry in memory: the hash's top 40 bits above the biased day, so that entries
/// sort by hash, then day.
pub type Packed = u64;

pub fn pack(hash: u64, day: i32) -> Packed {
    ((hash >> (64 - HASH_BITS)) << DAY_BITS) | (day as i64 + DAY_BIAS) as u64
}

fn pack40(h40: u64, day: i32) -> Packed {
    (h40 << DAY_BITS) | (day as i64 + DAY_BIAS) as u64
}

pub fn packed_day(p: Packed) -> i32 {
    ((p & ((1 << DAY_BITS) - 1)) as i64 - DAY_BIAS) as i32
}

fn packed_h40(p: Packed) -> u64 {
    p >> DAY_BITS
}

/// The directory of a tenant's runs.
pub fn tenant_dir(tenant: &str) -> String {
    format!("{INDEX_DIR}/tenant_id={}", encode_part_value(tenant))
}

/// The fragment written before data file `name` of a tenant.
pub fn fragment_rel(tenant: &str, data_file: &str) -> String {
    let stem = data_file.strip_suffix(".parquet").unwrap_or(data_file);
    format!("{}/f-{stem}.tix", tenant_dir(tenant))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Layout {
    count: u64,
    fb: u8,
    day_bits: u8,
    width: u8,
    base_day: i32,
}

impl Layout {
    /// The smallest layout for `count` entries over days `min..=max`.
    fn choose(count: u64, min: i32, max: i32) -> Layout {
        let span = (max as i64 - min as i64) as u64;
        let day_bits = (64 - span.leading_zeros()) as u8;
        let mut best: Option<(u64, Layout)> = None;
        for fb in 0..=MAX_FB {
            // Buckets of fewer than 8 entries on average only grow the table.
            if fb > 0 && count >> fb < 8 {
                break;
            }
            let bits = HASH_BITS - fb as u32 + day_bits as u32;
            let width = bits.div_ceil(8).max(1) as u8;
            let bytes = count * width as u64 + 4 * ((1u64 << fb) + 1);
            let l = Layout {
                count,
                fb,
                day_bits,
                width,
                base_day: min,
            };
            if best.is_none_or(|(b, _)| bytes < b) {
                best = Some((bytes, l));
            }
        }
        best.expect("fb 0 always fits").1
    }

    fn buckets(&self) -> usize {
        1 << self.fb
    }

    fn data_offset(&self) -> u64 {
        (HEADER + 4 * (self.buckets() + 1)) as u64
    }

    fn len(&self) -> u64 {
        self.data_offset() + self.count * self.width as u64 + 8
    }

    fn rem_bits(&self) -> u32 {
        HASH_BITS - self.fb as u32
    }

    fn bucket(&self, h40: u64) -> usize {
        (h40 >> self.rem_bits()) as usize
    }

    fn value(&self, p: Packed) -> u64 {
        let h40 = packed_h40(p);
        let rem = h40 & ((1u64 << self.rem_bits()) - 1);
        (rem << self.day_bits) | (packed_day(p) as i64 - self.base_day as i64) as u64
    }

    fn unvalue(&self, bucket: usize, v: u64) -> Packed {
        let rem = v >> self.day_bits;
        let day = self.base_day as i64 + (v & ((1u64 << self.day_bits) - 1)) as i64;
        pack40(((bucket as u64) << self.rem_bits()) | rem, day as i32)
    }

    fn read_value(&self, bytes: &[u8], i: usize) -> u64 {
        let w = self.width as usize;
        let at = i * w;
        // One 8-byte load where 8 bytes follow (a run's data ends in its 8-byte checksum).
        if let Some(b) = bytes.get(at..at + 8) {
            let v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            return if w == 8 {
                v
            } else {
                v & ((1u64 << (8 * w)) - 1)
            };
        }
        let mut b = [0u8; 8];
        b[..w].copy_from_slice(&bytes[at..at + w]);
        u64::from_le_bytes(b)
    }

    fn parse(rel: &str, b: &[u8]) -> Result<Layout> {
        let bad = |why: &str| Error::Usage(format!("{rel}: not a trace index run ({why})"));
        if b.len() < HEADER || &b[..8] != MAGIC {
            return Err(bad("no header"));
        }
        let l = Layout {
            count: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
            fb: b[16],
            day_bits: b[17],
            width: b[18],
            base_day: i32::from_le_bytes(b[20..24].try_into().expect("4 bytes")),
        };
        if l.fb > MAX_FB
            || l.day_bits as u32 > DAY_BITS
            || l.width == 0
            || l.width > 8
            || (l.rem_bits() + l.day_bits as u32) > l.width as u32 * 8
            || l.count > u32::MAX as u64
        {
            return Err(bad("impossible header"));
        }
        Ok(l)
    }
}

/// A run's bytes for these entries (sorted and deduplicated here).
pub fn encode(mut entries: Vec<Packed>) -> Result<Bytes> {
    // The entries come as sorted runs (a converted file's, a run read back): the stable
    // sort finds the runs and merges them. A run's 418k entries from 32 files took 11 ms
    // on one thread as an unstable sort, the last thing a convert waits for.
    entries.sort();
    entries.dedup();
    if entries.len() > u32::MAX as usize {
        return Err(Error::Usage(format!(
            "a trace index run of {} entries is more than one file holds",
            entries.len()
        )));
    }
    let (min, max) = entries.iter().fold((i32::MAX, i32::MIN), |(lo, hi), p| {
        let d = packed_day(*p);
        (lo.min(d), hi.max(d))
    });
    let l = if entries.is_empty() {
        Layout::choose(0, 0, 0)
    } else {
        Layout::choose(entries.len() as u64, min, max)
    };
    let mut keyed: Vec<(usize, u64)> = entries
        .iter()
        .map(|p| (l.bucket(packed_h40(*p)), l.value(*p)))
        .collect();
    keyed.sort_unstable();
    let mut out = Vec::with_capacity(l.len() as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&l.count.to_le_bytes());
    out.extend_from_slice(&[l.fb, l.day_bits, l.width, 0]);
    out.extend_from_slice(&l.base_day.to_le_bytes());
    let mut i = 0usize;
    for b in 0..=l.buckets() {
        while i < keyed.len() && keyed[i].0 < b {
            i += 1;
        }
        out.extend_from_slice(&(i as u32).to_le_bytes());
    }
    for (_, v) in &keyed {
        out.extend_from_slice(&v.to_le_bytes()[..l.width as usize]);
    }
    let sum = twox_hash::XxHash64::oneshot(0, &out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(Bytes::from(out))
}

/// Every entry of a whole run, after checking its length and checksum.
pub fn decode(rel: &str, b: &[u8]) -> Result<Vec<Packed>> {
    let l = Layout::parse(rel, b)?;
    let bad = |why: &str| Error::Usage(format!("{rel}: damaged trace index run ({why})"));
    if b.len() as u64 != l.len() {
        return Err(bad("wrong length"));
    }
    let body = b.len() - 8;
    let sum = u64::from_le_bytes(b[body..].try_into().expect("8 bytes"));
    if twox_hash::XxHash64::oneshot(0, &b[..body]) != sum {
        return Err(bad("checksum"));
    }
    let fanout = read_fanout(&l, &b[HEADER..])?;
    let data = &b[l.data_offset() as usize..body];
    let mut out = Vec::with_capacity(l.count as usize);
    for bucket in 0..l.buckets() {
        for i in fanout[bucket]..fanout[bucket + 1] {
            out.push(l.unvalue(bucket, l.read_value(data, i as usize)));
        }
    }
    Ok(out)
}

fn read_fanout(l: &Layout, b: &[u8]) -> Result<Vec<u32>> {
    let n = l.buckets() + 1;
    let fanout: Vec<u32> = b[..4 * n]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if fanout[0] != 0 || fanout[n - 1] as u64 != l.count || fanout.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::Usage(
            "a trace index run's bucket table is damaged".into(),
        ));
    }
    Ok(fanout)
}

/// Where a run's entries are read from.
enum Data {
    /// Small runs in an object store: read whole once (header to checksum).
    Whole(Bytes),
    /// Runs on local disk: mapped, so a probe touches only the pages of its buckets
    /// (positioned reads cost a system call per bucket, and reading the bucket tables
    /// of a tenant's runs took longer than the rest of a daily convert).
    Mapped(memmap2::Mmap),
    /// Big runs in an object store: the bucket table read once, buckets by range.
    Remote(Vec<u32>),
}

/// One run opened for probing.
struct Run {
    rel: String,
    layout: Layout,
    data: Data,
}

impl Run {
    async fn open(store: &LakeStore, rel: &str, size: u64) -> Result<Run> {
        let shown = store.show(rel);
        let short = || Error::Usage(format!("{shown}: a trace index run cut short"));
        if let Some(dir) = store.local_dir() {
            let path = dir.join(rel);
            let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            // SAFETY: runs are written whole under a new name and never changed in place;
            // the lake lock keeps other auditlake writers out while this one maps them.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
            // Probes land anywhere: no read-ahead, no mapping of neighbouring pages (they
            // would only add to the resident set).
            let _ = map.advise(memmap2::Advice::Random);
            let layout = Layout::parse(&shown, &map)?;
            if (map.len() as u64) < layout.len() {
                return Err(short());
            }
            return Ok(Run {
                rel: rel.into(),
                layout,
                data: Data::Mapped(map),
            });
        }
        if size <= WHOLE_BYTES {
            let b = store.get(rel).await?.ok_or_else(short)?;
            let layout = Layout::parse(&shown, &b)?;
            if (b.len() as u64) < layout.len() {
                return Err(short());
            }
            return Ok(Run {
                rel: rel.into(),
                layout,
                data: Data::Whole(b),
            });
        }
        let head = read_at(store, rel, 0..HEADER as u64).await?;
        let layout = Layout::parse(&shown, &head)?;
        if size < layout.len() {
            return Err(short());
        }
        let fan = read_at(store, rel, HEADER as u64..layout.data_offset()).await?;
        let fanout = read_fanout(&layout, &fan)?;
        Ok(Run {
            rel: rel.into(),
            layout,
            data: Data::Remote(fanout),
        })
    }

    /// Adds to `out` the (hash, day) of each entry matching one of `hashes` (sorted).
    async fn probe(
        &self,
        store: &LakeStore,
        hashes: &[u64],
        out: &mut Vec<(u64, i32)>,
    ) -> Result<()> {
        let l = &self.layout;
        let bytes: &[u8] = match &self.data {
            Data::Whole(b) => b,
            Data::Mapped(m) => m,
            Data::Remote(fanout) => return self.probe_remote(store, fanout, hashes, out).await,
        };
        // The data with the checksum after it (see `read_value`).
        let data = &bytes[l.data_offset() as usize..];
        let fan = |b: usize| {
            let at = HEADER + 4 * b;
            u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
        };
        for &h in hashes {
            let b = l.bucket(h >> (64 - HASH_BITS));
            let (from, to) = (fan(b), fan(b + 1));
            if from > to || to as u64 > l.count {
                return Err(Error::Usage(format!(
                    "{}: a trace index run's bucket table is damaged (`auditlake verify --fix` rebuilds it)",
                    store.show(&self.rel)
                )));
            }
            search(l, data, 0, from as usize..to as usize, h, b, out);
        }
        if let Data::Mapped(m) = &self.data {
            // A day's probes touch most data pages of a big run, each about once: once
            // this slice's probes are done those pages leave the resident set, so a
            // convert does not hold the whole history's (they stay in the page cache).
            // The bucket table, touched by every slice, stays mapped in.
            let from = (l.data_offset() as usize).next_multiple_of(4096);
            if from < m.len() {
                // SAFETY: a read-only mapping of a file never changed in place: dropped
                // pages read back the same bytes, and nothing borrowed from the map
                // outlives this.
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        from,
                        m.len() - from,
                    )
                };
            }
        }
        Ok(())
    }

    async fn probe_remote(
        &self,
        store: &LakeStore,
        fanout: &[u32],
        hashes: &[u64],
        out: &mut Vec<(u64, i32)>,
    ) -> Result<()> {
        let l = &self.layout;
        // The entry ranges of the buckets the hashes fall in, neighbours read together.
        let mut spans: Vec<Range<u32>> = Vec::new();
        let mut last = usize::MAX;
        for &h in hashes {
            let b = l.bucket(h >> (64 - HASH_BITS));
            if b == last {
                continue;
            }
            last = b;
            let r = fanout[b]..fanout[b + 1];
            if r.is_empty() {
                continue;
            }
            match spans.last_mut() {
                Some(s) if r.start <= s.end + 64 => s.end = r.end,
                _ => spans.push(r),
            }
        }
        if spans.is_empty() {
            return Ok(());
        }
        let w = l.width as u64;
        let ranges: Vec<Range<u64>> = spans
            .iter()
            .map(|s| {
                let at = l.data_offset() + s.start as u64 * w;
                at..at + (s.end - s.start) as u64 * w
            })
            .collect();
        let blocks = store
            .store
            .get_ranges(&store.path(&self.rel), &ranges)
            .await
            .map_err(|e| store.err(&self.rel, e))?;
        let mut si = 0;
        for &h in hashes {
            let b = l.bucket(h >> (64 - HASH_BITS));
            let r = fanout[b]..fanout[b + 1];
            while si < spans.len() && spans[si].end < r.end {
                si += 1;
            }
            if r.is_empty() || si == spans.len() {
                continue;
            }
            let span = &spans[si];
            search(
                l,
                &blocks[si],
                span.start as usize,
                r.start as usize..r.end as usize,
                h,
                b,
                out,
            );
        }
        Ok(())
    }
}

/// The entries of bucket `b` (entry positions `r`, in `data` that starts at entry
/// `base`) matching hash `h`, added to `out`. A bucket's entries are sorted.
fn search(
    l: &Layout,
    data: &[u8],
    base: usize,
    r: Range<usize>,
    h: u64,
    b: usize,
    out: &mut Vec<(u64, i32)>,
) {
    let h40 = h >> (64 - HASH_BITS);
    let rem = h40 & ((1u64 << l.rem_bits()) - 1);
    let (lo, hi) = (rem << l.day_bits, (rem + 1) << l.day_bits);
    let (from, to) = (r.start - base, r.end - base);
    let (mut a, mut z) = (from, to);
    while a < z {
        let m = (a + z) / 2;
        if l.read_value(data, m) < lo {
            a = m + 1;
        } else {
            z = m;
        }
    }
    while a < to {
        let v = l.read_value(data, a);
        if v >= hi {
            break;
        }
        out.push((h, packed_day(l.unvalue(b, v))));
        a += 1;
    }
}

async fn read_at(store: &LakeStore, rel: &str, range: Range<u64>) -> Result<Bytes> {
    store.get_range(rel, range).await?.ok_or_else(|| {
        Error::Usage(format!(
            "{}: a trace index run went missing",
            store.show(rel)
        ))
    })
}

/// A tenant's runs, opened for probing.
pub struct TenantIndex {
    runs: Vec<Run>,
}

impl TenantIndex {
    pub async fn open(store: &LakeStore, tenant: &str) -> Result<TenantIndex> {
        let mut runs = Vec::new();
        for (rel, size) in list_runs(store, tenant).await? {
            runs.push(Run::open(store, &rel, size).await?);
        }
        Ok(TenantIndex { runs })
    }

    /// Whether the tenant has no run (a new tenant, or a lake's first convert).
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The (hash, day) of every entry matching one of `hashes` (sorted, unique).
    pub async fn probe(&self, store: &LakeStore, hashes: &[u64]) -> Result<Vec<(u64, i32)>> {
        let mut out = Vec::new();
        for r in &self.runs {
            r.probe(store, hashes, &mut out).await?;
        }
        Ok(out)
    }
}

/// A tenant's run files (relative path, size).
pub async fn list_runs(store: &LakeStore, tenant: &str) -> Result<Vec<(String, u64)>> {
    let dir = tenant_dir(tenant);
    Ok(store
        .list_files(&dir)
        .await?
        .into_iter()
        .filter(|(n, _)| n.ends_with(".tix"))
        .map(|(n, s)| (format!("{dir}/{n}"), s))
        .collect())
}

/// Tenants with an index directory.
pub async fn list_tenants(store: &LakeStore) -> Result<Vec<String>> {
    tenants_in(store, INDEX_DIR).await
}

/// The tenants of the `tenant_id=<t>` directories directly in `dir`.
async fn tenants_in(store: &LakeStore, dir: &str) -> Result<Vec<String>> {
    Ok(store
        .list_dirs(dir)
        .await?
        .iter()
        .filter_map(|d| {
            d.strip_prefix("tenant_id=")
                .and_then(super::decode_part_value)
        })
        .collect())
}

/// Writes the fragment of a data file about to be published (see the module doc).
pub async fn put_fragment(
    store: &LakeStore,
    tenant: &str,
    data_file: &str,
    entries: Vec<Packed>,
) -> Result<()> {
    store
        .put(&fragment_rel(tenant, data_file), encode(entries)?)
        .await?;
    crate::testhook::point("index-fragment");
    Ok(())
}

/// The entries of a batch of rows of one day.
pub fn entries_of(batches: &[arrow::array::RecordBatch], day: i32, out: &mut Vec<Packed>) {
    for b in batches {
        for t in b
            .column(Col::TraceId as usize)
            .as_string::<i32>()
            .iter()
            .flatten()
        {
            out.push(pack(trace_hash(t), day));
        }
    }
}

/// The end of a convert for one tenant: this run's entries (`own`, whose fragments are
/// `own_prefix*`) become one run with the fragments of killed runs and the runs no bigger
/// than what is merged so far; then what it replaces is deleted.
pub async fn publish_run(
    store: &LakeStore,
    tenant: &str,
    run_name: &str,
    own_prefix: &str,
    own: Vec<Packed>,
) -> Result<()> {
    let listed = list_runs(store, tenant).await?;
    let mut entries = own;
    let mut replaced = Vec::new();
    let mut others = Vec::new();
    for (rel, size) in listed {
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        if name.starts_with(own_prefix) {
            replaced.push(rel);
        } else if name.starts_with("f-") {
            // A killed run's fragment: its rows may be in the lake.
            entries.extend(read_run(store, &rel).await?);
            replaced.push(rel);
        } else {
            others.push((size, rel));
        }
    }
    others.sort();
    let mut bytes = entries.len() as u64 * 5;
    for (size, rel) in others {
        if (size > bytes && size > WHOLE_BYTES / 4) || bytes + size > MERGE_CAP {
            break;
        }
        entries.extend(read_run(store, &rel).await?);
        bytes += size;
        replaced.push(rel);
    }
    let rel = format!("{}/{run_name}.tix", tenant_dir(tenant));
    store.put(&rel, encode(entries)?).await?;
    crate::testhook::point("index-run");
    for r in replaced.into_iter().filter(|r| *r != rel) {
        store.delete(&r).await?;
    }
    Ok(())
}

async fn read_run(store: &LakeStore, rel: &str) -> Result<Vec<Packed>> {
    match store.get(rel).await? {
        Some(b) => decode(&store.show(rel), &b),
        None => Ok(vec![]),
    }
}

/// Rewrites a tenant's runs: small ones are merged up to [`MERGE_CAP`] (`compact`), and
/// with `drop_before`, entries of earlier days leave (`prune`). A run that needs neither
/// is not read.
pub async fn rewrite_tenant(
    store: &LakeStore,
    tenant: &str,
    drop_before: Option<i32>,
) -> Result<()> {
    let mut listed: Vec<(u64, String)> = list_runs(store, tenant)
        .await?
        .into_iter()
        .map(|(r, s)| (s, r))
        .collect();
    listed.sort();
    // Groups of runs, smallest first, each at most MERGE_CAP (a bigger run alone).
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut bytes = 0;
    for (size, rel) in listed {
        match groups.last_mut() {
            Some(g) if bytes + size <= MERGE_CAP => g.push(rel),
            _ => {
                groups.push(vec![rel]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    let stamp = unique_stamp();
    for (k, group) in groups.into_iter().enumerate() {
        if group.len() == 1 {
            let Some(cutoff) = drop_before else { continue };
            let head = read_at(store, &group[0], 0..HEADER as u64).await?;
            if Layout::parse(&store.show(&group[0]), &head)?.base_day >= cutoff {
                continue;
            }
        }
        let mut entries = Vec::new();
        for rel in &group {
            entries.extend(read_run(store, rel).await?);
        }
        if let Some(cutoff) = drop_before {
            entries.retain(|p| packed_day(*p) >= cutoff);
        }
        if !entries.is_empty() {
            let rel = format!("{}/r-{stamp}-m{k:03}.tix", tenant_dir(tenant));
            store.put(&rel, encode(entries)?).await?;
            crate::testhook::point("index-rewrite");
        }
        for rel in &group {
            store.delete(rel).await?;
        }
    }
    Ok(())
}

fn unique_stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}-{:x}", now.as_micros(), std::process::id())
}

/// Every (hash, day) of a tenant's rows in the lake, read from its Parquet files, and
/// the files that could not be read (with why): `verify` names those on its own.
pub async fn entries_from_lake(
    store: &LakeStore,
    tenant: &str,
) -> Result<(Vec<Packed>, Vec<String>)> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for (part, live) in live_partitions(store, Some(tenant)).await? {
        for (f, _) in live {
            let batches = match read_file(store, &f, Some(&[Col::TraceId])).await {
                Ok(b) => b,
                Err(e) => {
                    unreadable.push(e.to_string());
                    continue;
                }
            };
            for b in batches {
                for t in b.column(0).as_string::<i32>().iter().flatten() {
                    out.push(pack(trace_hash(t), part.key.day));
                }
            }
        }
    }
    Ok((out, unreadable))
}

/// Writes a tenant's index again from its Parquet files: one run, then the old runs go.
pub async fn rebuild_tenant(store: &LakeStore, tenant: &str) -> Result<()> {
    let old = list_runs(store, tenant).await?;
    let (entries, unreadable) = entries_from_lake(store, tenant).await?;
    // A file that cannot be read cannot hold a duplicate that is found either; its rows
    // are indexed once it is readable again and the index rebuilt.
    for why in unreadable {
        crate::notes::note(&format!("trace index of {tenant}: left out {why}"));
    }
    let rel = format!("{}/r-rebuilt.tix", tenant_dir(tenant));
    if !entries.is_empty() {
        store.put(&rel, encode(entries)?).await?;
    }
    crate::testhook::point("index-rebuilt");
    for (r, _) in old.into_iter().filter(|(r, _)| *r != rel) {
        store.delete(&r).await?;
    }
    Ok(())
}

/// Makes sure the index covers the lake before a write relies on it: a lake written
/// before the index is indexed here, once.
pub async fn ensure(store: &LakeStore) -> Result<()> {
    if store.get(FORMAT_REL).await?.is_some() {
        return Ok(());
    }
    let tenants = tenants_in(store, EVENTS_DIR).await?;
    if !tenants.is_empty() {
        crate::notes::note(&format!(
            "indexing the trace_ids of {} tenants, once (a lake from before the trace index)",
            tenants.len()
        ));
    }
    for t in &tenants {
        rebuild_tenant(store, t).await?;
    }
    store
        .put(FORMAT_REL, Bytes::from_static(b"{\"format\": 1}\n"))
        .await
}

/// What `verify` finds in one tenant's index.
#[derive(Debug, Default)]
pub struct TenantCheck {
    /// Runs that cannot be read (name, why).
    pub damaged: Vec<(String, String)>,
    /// Rows of the lake whose (trace_id, day) the index lacks.
    pub missing: u64,
    /// Index entries for which the lake has no row.
    pub stale: u64,
    /// Whether some of the tenant's files could not be read (their rows are not counted).
    pub unreadable: bool,
}

/// Compares a tenant's index with its rows in the lake.
pub async fn check_tenant(store: &LakeStore, tenant: &str) -> Result<TenantCheck> {
    let mut check = TenantCheck::default();
    let mut indexed = Vec::new();
    for (rel, _) in list_runs(store, tenant).await? {
        let Some(b) = store.get(&rel).await? else {
            continue;
        };
        match decode(&rel, &b) {
            Ok(e) => indexed.extend(e),
            Err(e) => check.damaged.push((rel, e.to_string())),
        }
    }
    indexed.sort_unstable();
    indexed.dedup();
    let (mut lake, unreadable) = entries_from_lake(store, tenant).await?;
    check.unreadable = !unreadable.is_empty();
    lake.sort_unstable();
    lake.dedup();
    let (mut i, mut j) = (0, 0);
    while i < lake.len() || j < indexed.len() {
        match (lake.get(i), indexed.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                check.missing += 1;
                i += 1;
            }
            (Some(_), None) => {
                check.missing += 1;
                i += 1;
            }
            _ => {
                check.stale += 1;
                j += 1;
            }
        }
    }
    Ok(check)
}

/// The tenants with rows in the lake or runs in the index.
pub async fn all_tenants(store: &LakeStore) -> Result<Vec<String>> {
    let mut set: BTreeSet<String> = tenants_in(store, EVENTS_DIR).await?.into_iter().collect();
    set.extend(list_tenants(store).await?);
    Ok(set.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u64) -> u64 {
        trace_hash(&format!("trace-{i}"))
    }

    #[test]
    fn a_run_gives_back_what_went_in_for_any_size_and_day_span() {
        for (n, days) in [(0u64, 1i32), (1, 1), (100, 1), (5_000, 3), (70_000, 2_555)] {
            let entries: Vec<Packed> = (0..n)
                .map(|i| pack(h(i), 19_000 + (i as i32 * 7919) % days))
                .collect();
            let bytes = encode(entries.clone()).unwrap();
            let mut back = decode("t", &bytes).unwrap();
            let mut want = entries;
            want.sort_unstable();
            want.dedup();
            back.sort_unstable();
            assert_eq!(back, want, "{n} entries over {days} days");
            if n > 1000 {
                let per = bytes.len() as f64 / n as f64;
                assert!(per < 5.5, "{per} bytes per entry");
            }
        }
    }

    #[test]
    fn the_widest_day_span_and_a_damaged_run_are_handled() {
        use crate::time::{FIRST_DAY, LAST_DAY};
        let entries = vec![pack(h(1), FIRST_DAY), pack(h(2), LAST_DAY), pack(h(1), 0)];
        let b = encode(entries.clone()).unwrap();
        let mut back = decode("t", &b).unwrap();
        back.sort_unstable();
        let mut want = entries;
        want.sort_unstable();
        assert_eq!(back, want);
        let mut bad = b.to_vec();
        let k = bad.len() - 12;
        bad[k] ^= 1;
        assert!(decode("t", &bad)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        assert!(decode("t", &b[..10]).is_err());
        assert!(decode("t", b"garbage garbage garbage garbage").is_err());
    }

    #[tokio::test]
    async fn probes_find_every_day_of_a_hash_mapped_whole_and_ranged() {
        let dir = tempfile::tempdir().unwrap();
        let local = LakeStore::local(dir.path()).unwrap();
        let memory = LakeStore::in_memory("probe");
        // A big run (by range in a bucket) and a small one (whole), the same hash in both.
        let big: Vec<Packed> = (0..300_000)
            .map(|i| pack(h(i), 18_000 + (i % 700) as i32))
            .collect();
        let tdir = tenant_dir("t/1");
        for store in [&local, &memory] {
            store
                .put(&format!("{tdir}/r-big.tix"), encode(big.clone()).unwrap())
                .await
                .unwrap();
            store
                .put(
                    &format!("{tdir}/f-small.tix"),
                    encode(vec![pack(h(7), 20_000)]).unwrap(),
                )
                .await
                .unwrap();
            let idx = TenantIndex::open(store, "t/1").await.unwrap();
            let kinds: Vec<&str> = idx
                .runs
                .iter()
                .map(|r| match r.data {
                    Data::Mapped(_) => "mapped",
                    Data::Whole(_) => "whole",
                    Data::Remote(_) => "remote",
                })
                .collect();
            let mut probe: Vec<u64> = [7u64, 12, 299_999, 1_000_001, 5_000_000]
                .iter()
                .map(|i| h(*i))
                .collect();
            probe.sort_unstable();
            let mut got = idx.probe(store, &probe).await.unwrap();
            got.sort_unstable();
            let mut want = vec![
                (h(7), 18_007),
                (h(7), 20_000),
                (h(12), 18_012),
                (h(299_999), 18_000 + 299_999 % 700),
            ];
            want.sort_unstable();
            assert_eq!(got, want, "{kinds:?}");
            if store.local_dir().is_some() {
                assert_eq!(kinds, ["mapped", "mapped"]);
            } else {
                assert_eq!(kinds, ["whole", "remote"]);
            }
        }
    }
}
