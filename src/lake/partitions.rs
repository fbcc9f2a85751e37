//! The partitioned, deduplicating buffer between decoded rows and lake files.
//!
//! Rows arrive per partition (tenant, day) in input order. Each is checked
//! against every trace_id of its tenant — earlier in this run, through a map of
//! 64-bit trace hashes, and in the lake, through the trace index
//! ([`super::index`], probed once per slice) — and a hash hit is confirmed
//! against the real rows of the partition it points to (loaded from the lake
//! on demand), so the result is exact: the first copy is kept, a later
//! identical copy is a duplicate, a later different copy a
//! `duplicate_conflict`. Buffered partitions are written once the input has
//! moved past them (see [`SETTLE_TICKS`]), when the memory budget is reached
//! (least recently touched first) and at the end, one sorted file each.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use arrow::array::{
    Array, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::filter_record_batch;

use super::index::{self, Packed, TenantIndex};
use super::rows::trace_hash;
use super::rows::PartSlice;
use super::store::LakeStore;
use super::writer::{read_file, sorted_batches, write_file, WrittenFile};
use super::{partition_files, Col, PartKey, COLUMN_NAMES};
use crate::Result;

/// Where every trace hash of a tenant lives (its day), in 8 bytes per trace_id: an
/// open-addressing table whose slots pack the hash's top 42 bits with the day. Two
/// trace_ids may share a tag; every slot with the tag is returned and the caller confirms
/// against the real rows, so the table only has to be compact, not exact.
#[derive(Default)]
struct TenantSeen {
    slots: Vec<u64>,
    len: usize,
}

// Days biased as in the trace index: the smallest one is off 0, the empty slot.
use super::index::{DAY_BIAS, DAY_BITS};

impl TenantSeen {
    fn tag(h: u64) -> u64 {
        h & !((1u64 << DAY_BITS) - 1)
    }

    /// Home position: from the tag bits, which slots keep, so growing can rehash.
    fn home(h: u64, mask: usize) -> usize {
        (h >> DAY_BITS) as usize & mask
    }

    fn pack(h: u64, day: i32) -> u64 {
        Self::tag(h) | ((day as i64 + DAY_BIAS) as u64 & ((1 << DAY_BITS) - 1))
    }

    fn unpack_day(slot: u64) -> i32 {
        ((slot & ((1 << DAY_BITS) - 1)) as i64 - DAY_BIAS) as i32
    }

    /// Slots from the hash's home position to the first empty one.
    fn probe(&self, h: u64) -> impl Iterator<Item = u64> + '_ {
        let mask = self.slots.len().wrapping_sub(1);
        let start = Self::home(h, mask);
        (0..self.slots.len())
            .map(move |i| self.slots[(start + i) & mask])
            .take_while(|s| *s != 0)
    }

    fn days(&self, h: u64) -> Vec<i32> {
        if self.slots.is_empty() {
            return vec![];
        }
        self.probe(h)
            .filter(|s| Self::tag(*s) == Self::tag(h))
            .map(Self::unpack_day)
            .collect()
    }

    /// Asks the CPU to fetch `h`'s home slot ahead of its probe: a tenant's table is tens
    /// of megabytes, so a probe is a cache miss unless fetched while earlier rows ran.
    #[inline]
    fn prefetch(&self, h: u64) {
        #[cfg(target_arch = "x86_64")]
        if !self.slots.is_empty() {
            let i = Self::home(h, self.slots.len() - 1);
            // SAFETY: SSE is part of x86_64, and `i` is inside `slots` (a prefetch never
            // faults anyway).
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(i).cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// Records `h` on `day` unless the day is already recorded for it.
    fn add(&mut self, h: u64, day: i32) {
        let packed = Self::pack(h, day);
        self.insert_unless(h, day, |s| s == packed);
    }

    /// Records `h` on `day` if no slot has its tag yet, and says whether it did: the
    /// common case of a trace_id never seen costs one walk of the probe chain.
    fn add_new(&mut self, h: u64, day: i32) -> bool {
        self.insert_unless(h, day, |s| Self::tag(s) == Self::tag(h))
    }

    /// Walks `h`'s probe chain; stops without inserting at a slot `found` accepts, else
    /// stores `h` on `day` in the empty slot that ends the chain.
    fn insert_unless(&mut self, h: u64, day: i32, found: impl Fn(u64) -> bool) -> bool {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = Self::home(h, mask);
        while self.slots[i] != 0 {
            if found(self.slots[i]) {
                return false;
            }
            i = (i + 1) & mask;
        }
        self.slots[i] = Self::pack(h, day);
        self.len += 1;
        true
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|s| *s != 0) {
            let mut i = Self::home(s, mask);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

/// A partition is written while the run goes on once this many slices have arrived
/// since its last one and its tenant has rows of a later day: exports come in time
/// order, so its day is over. Encoding then runs beside decoding, not after it (one
/// export used to decode on both cores and then encode on both, each half idle while
/// the other ran). A row that still comes for the day later goes to a new file of the
/// partition; deduplication stays exact (the written rows are found as before).
const SETTLE_TICKS: u64 = 8;

/// A row found by trace_id: its batch, its index there, and the lake file it came from
/// (None for rows of this run).
type Found = (RecordBatch, usize, Option<Arc<str>>);

#[derive(Clone, Copy)]
enum RowRef {
    Lake(u32, u32),
    Buf(u32, u32),
}

struct BufBatch {
    batch: RecordBatch,
    alive: Vec<bool>,
    source: usize,
}

#[derive(Default)]
struct PartBuf {
    batches: Vec<BufBatch>,
    /// The partition's rows already in the lake, loaded for exact checks.
    lake: Option<Vec<RecordBatch>>,
    /// The lake file each of those batches came from (None: rows still being encoded).
    lake_files: Vec<Option<Arc<str>>>,
    index: Option<HashMap<Box<str>, RowRef>>,
    bytes: usize,
    touched: u64,
}

/// What became of one row offered to the lake.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    New,
    Duplicate,
    /// Same trace_id, different content: the detail names the first column that differs.
    Conflict(String),
}

/// A lake file written, with the sources whose rows it holds.
pub struct Published {
    pub file: WrittenFile,
    pub sources: BTreeSet<usize>,
}

pub struct PartitionBuffer {
    store: LakeStore,
    rt: tokio::runtime::Handle,
    run_id: String,
    budget: usize,
    bufs: HashMap<PartKey, PartBuf>,
    buffered: usize,
    tick: u64,
    file_seq: u64,
    /// This run's trace hashes per tenant, and the lake's hits for them.
    seen: HashMap<Arc<str>, TenantSeen>,
    /// Each tenant's trace index, opened at its first row.
    lake_index: HashMap<Arc<str>, TenantIndex>,
    /// Whether the index is known to cover the lake (checked at the first row).
    index_ready: bool,
    /// The index entries of every row this run published, per tenant.
    run_entries: HashMap<Arc<str>, Vec<Packed>>,
    /// The latest day each tenant has rows of in this run.
    latest: HashMap<Arc<str>, i32>,
    published: Vec<Published>,
    /// Encoder threads: sorting, Parquet encoding and publishing run there, off this thread.
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    encoders: Vec<std::thread::JoinHandle<()>>,
    /// Rows handed to encoders and not yet published, by job: still visible to dedupe.
    inflight: HashMap<u64, (PartKey, Vec<RecordBatch>, usize)>,
    inflight_bytes: usize,
    job_sources: HashMap<u64, BTreeSet<usize>>,
    /// Lake files (from earlier runs) that held a duplicate of a source's rows, by source.
    dup_files: HashMap<usize, BTreeSet<Arc<str>>>,
    /// The trace hashes of days this run only looked into (see [`Self::day_may_hold`]).
    day_hashes: HashMap<PartKey, HashSet<u64>>,
}

/// A partition's rows to sort, encode and publish as one file.
struct Job {
    id: u64,
    key: PartKey,
    name: String,
    batches: Vec<RecordBatch>,
}

struct Done {
    id: u64,
    result: Result<(WrittenFile, Vec<Packed>)>,
}

fn encoder(
    store: LakeStore,
    rt: tokio::runtime::Handle,
    zstd_level: i32,
    jobs: Receiver<Job>,
    done: Sender<Done>,
) {
    for job in jobs.iter() {
        let result = sorted_batches(job.batches).and_then(|batches| {
            // The file's index entries first: a file is never in the lake unindexed.
            let mut entries = Vec::new();
            index::entries_of(&batches, job.key.day, &mut entries);
            // Sorted here, on the encoders, the run's entries are runs that the index's
            // last step merges instead of sorting them all on one thread.
            entries.sort_unstable();
            rt.block_on(async {
                index::put_fragment(&store, &job.key.tenant, &job.name, entries.clone()).await?;
                write_file(&store, &job.key, &job.name, &batches, zstd_level).await
            })
            .map(|file| (file, entries))
        });
        if done.send(Done { id: job.id, result }).is_err() {
            return;
        }
    }
}

impl PartitionBuffer {
    /// A buffer over the lake at `root` holding at most about `budget` bytes of rows,
    /// encoding files on `encoders` threads (0: one per core).
    pub fn new(
        store: &LakeStore,
        rt: tokio::runtime::Handle,
        budget: usize,
        zstd_level: i32,
        encoders: usize,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let threads = match encoders {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        tracing::debug!(encoders = threads, "encoder threads");
        let (job_tx, job_rx) = bounded::<Job>(threads);
        let (done_tx, done_rx) = unbounded::<Done>();
        let encoders = (0..threads)
            .map(|i| {
                let (store, rt, jobs, done) =
                    (store.clone(), rt.clone(), job_rx.clone(), done_tx.clone());
                std::thread::Builder::new()
                    .name(format!("encoder-{i}"))
                    .spawn(move || encoder(store, rt, zstd_level, jobs, done))
                    .expect("spawn an encoder thread")
            })
            .collect();
        PartitionBuffer {
            store: store.clone(),
            rt,
            run_id: format!("{:x}-{:x}", now.as_micros(), std::process::id()),
            budget,
            bufs: HashMap::new(),
            buffered: 0,
            tick: 0,
            file_seq: 0,
            seen: HashMap::new(),
            lake_index: HashMap::new(),
            index_ready: false,
            run_entries: HashMap::new(),
            latest: HashMap::new(),
            published: Vec::new(),
            jobs: Some(job_tx),
            done: done_rx,
            encoders,
            inflight: HashMap::new(),
            inflight_bytes: 0,
            job_sources: HashMap::new(),
            dup_files: HashMap::new(),
            day_hashes: HashMap::new(),
        }
    }

    /// The lake files from earlier runs that held rows each source brought again: a
    /// file published by a killed run, whose source is now converted again, is among
    /// them (see `convert`, which adds such files to the ledger).
    pub fn take_dup_files(&mut self) -> HashMap<usize, BTreeSet<Arc<str>>> {
        std::mem::take(&mut self.dup_files)
    }

    /// Files written so far (drained).
    pub fn take_published(&mut self) -> Vec<Published> {
        std::mem::take(&mut self.published)
    }

    /// Offers a slice's rows; returns each row's fate, in slice order.
    pub fn add(&mut self, slice: PartSlice, source: usize) -> Result<Vec<Fate>> {
        let PartSlice {
            key, batch, hashes, ..
        } = slice;
        self.load_tenant(&key.tenant)?;
        self.probe_lake(&key.tenant, &hashes)?;
        self.tick += 1;
        let n = batch.num_rows();
        let bytes = batch.get_array_memory_size();
        let buf = self.bufs.entry(key.clone()).or_default();
        buf.touched = self.tick;
        buf.bytes += bytes;
        self.buffered += bytes;
        buf.batches.push(BufBatch {
            batch: batch.clone(),
            alive: vec![true; n],
            source,
        });
        let bi = buf.batches.len() - 1;

        let traces = batch
            .column(Col::TraceId as usize)
            .as_string::<i32>()
            .clone();
        let mut fates = Vec::with_capacity(n);
        // The tenant's hashes are taken out of the map for the slice: one lookup, not one per row.
        let mut seen = self.seen.remove(&key.tenant).expect("tenant loaded");
        let mut has_index = self.bufs[&key].index.is_some();
        // How many rows ahead the next probes' slots are fetched.
        const AHEAD: usize = 16;
        for &h in hashes.iter().take(AHEAD) {
            seen.prefetch(h);
        }
        for (r, &h) in hashes.iter().enumerate() {
            if let Some(&later) = hashes.get(r + AHEAD) {
                seen.prefetch(later);
            }
            if seen.add_new(h, key.day) {
                // The common case: a trace_id never seen.
                if has_index {
                    let buf = self.bufs.get_mut(&key).expect("buffer exists");
                    buf.index
                        .as_mut()
                        .expect("index")
                        .insert(traces.value(r).into(), RowRef::Buf(bi as u32, r as u32));
                }
                fates.push(Fate::New);
                continue;
            }
            let mut fate = Fate::New;
            for d in seen.days(h) {
                let other = PartKey {
                    tenant: key.tenant.clone(),
                    day: d,
                };
                let limit = (other == key).then_some((bi, r));
                if let Some(found) = self.find(&other, traces.value(r), limit)? {
                    fate = match compare_rows(&found.0, found.1, &batch, r) {
                        None => Fate::Duplicate,
                        Some(diff) => Fate::Conflict(diff),
                    };
                    if let (Fate::Duplicate, Some(file)) = (&fate, found.2) {
                        self.dup_files.entry(source).or_default().insert(file);
                    }
                    break;
                }
            }
            has_index = self.bufs[&key].index.is_some();
            let buf = self.bufs.get_mut(&key).expect("buffer exists");
            if fate == Fate::New {
                // Same hash, another trace_id.
                seen.add(h, key.day);
                if let Some(index) = buf.index.as_mut() {
                    index.insert(traces.value(r).into(), RowRef::Buf(bi as u32, r as u32));
                }
            } else {
                buf.batches[bi].alive[r] = false;
            }
            fates.push(fate);
        }
        self.seen.insert(key.tenant.clone(), seen);
        let latest = self.latest.entry(key.tenant.clone()).or_insert(key.day);
        *latest = (*latest).max(key.day);
        self.flush_settled()?;
        if self.buffered > self.budget {
            self.shrink()?;
        }
        Ok(fates)
    }

    /// Writes every buffered partition.
    pub fn flush_all(&mut self) -> Result<()> {
        let mut keys: Vec<PartKey> = self.bufs.keys().cloned().collect();
        keys.sort();
        for k in keys {
            self.flush(&k)?;
        }
        self.reap(0)?;
        // Every file is written: stop the encoders.
        self.jobs = None;
        for h in self.encoders.drain(..) {
            let _ = h.join();
        }
        Ok(())
    }

    /// Collects finished files; waits while more than `max_inflight` bytes are being encoded.
    fn reap(&mut self, max_inflight: usize) -> Result<()> {
        loop {
            let done = if self.inflight.is_empty() {
                return Ok(());
            } else if self.inflight_bytes > max_inflight {
                self.done.recv().ok()
            } else {
                match self.done.try_recv() {
                    Ok(d) => Some(d),
                    Err(_) => return Ok(()),
                }
            };
            let Some(done) = done else { return Ok(()) };
            let (key, _, bytes) = self.inflight.remove(&done.id).expect("a job we sent");
            self.inflight_bytes -= bytes;
            let (file, entries) = done.result?;
            self.run_entries
                .entry(key.tenant)
                .or_default()
                .extend(entries);
            let sources = self.job_sources.remove(&done.id).unwrap_or_default();
            tracing::debug!(file = %file.rel_path, rows = file.rows, bytes = file.bytes, "file published");
            self.published.push(Published { file, sources });
        }
    }

    /// Writes the partitions the input has moved past (see [`SETTLE_TICKS`]).
    fn flush_settled(&mut self) -> Result<()> {
        let mut settled: Vec<PartKey> = self
            .bufs
            .iter()
            .filter(|(k, b)| {
                !b.batches.is_empty()
                    && b.touched + SETTLE_TICKS <= self.tick
                    && self.latest.get(&k.tenant).is_some_and(|&d| k.day < d)
            })
            .map(|(k, _)| k.clone())
            .collect();
        settled.sort();
        for k in settled {
            self.flush(&k)?;
        }
        Ok(())
    }

    /// Writes least recently touched partitions until the buffer is at three quarters of its budget.
    fn shrink(&mut self) -> Result<()> {
        let mut order: Vec<(u64, PartKey)> = self
            .bufs
            .iter()
            .map(|(k, b)| (b.touched, k.clone()))
            .collect();
        order.sort();
        for (_, k) in order {
            if self.buffered <= self.budget / 4 * 3 {
                break;
            }
            self.flush(&k)?;
        }
        Ok(())
    }

    fn flush(&mut self, key: &PartKey) -> Result<()> {
        let Some(buf) = self.bufs.remove(key) else {
            return Ok(());
        };
        self.buffered -= buf.bytes;
        let mut sources = BTreeSet::new();
        let mut kept = Vec::new();
        for b in buf.batches {
            if b.alive.iter().any(|a| *a) {
                sources.insert(b.source);
                let mask = BooleanArray::from(b.alive);
                kept.push(filter_record_batch(&b.batch, &mask)?);
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        self.file_seq += 1;
        let id = self.file_seq;
        let name = format!("part-{}-{:05}.parquet", self.run_id, id);
        let bytes: usize = kept.iter().map(|b| b.get_array_memory_size()).sum();
        self.inflight.insert(id, (key.clone(), kept.clone(), bytes));
        self.inflight_bytes += bytes;
        self.job_sources.insert(id, sources);
        let jobs = self.jobs.as_ref().expect("encoders run until flush_all");
        if jobs
            .send(Job {
                id,
                key: key.clone(),
                name,
                batches: kept,
            })
            .is_err()
        {
            // An encoder died: its error is waiting in `done`.
            self.reap(0)?;
        }
        // Memory stays bounded: encoding may lag by a quarter of the budget.
        self.reap(self.budget / 4)
    }

    /// Opens the tenant's trace index (once per run); the first time, makes sure the
    /// index covers the lake (see [`index::ensure`]).
    fn load_tenant(&mut self, tenant: &Arc<str>) -> Result<()> {
        if self.seen.contains_key(tenant) {
            return Ok(());
        }
        let (store, rt) = (self.store.clone(), self.rt.clone());
        if !self.index_ready {
            rt.block_on(index::ensure(&store))?;
            self.index_ready = true;
        }
        let idx = rt.block_on(TenantIndex::open(&store, tenant))?;
        self.lake_index.insert(tenant.clone(), idx);
        self.seen.insert(tenant.clone(), TenantSeen::default());
        Ok(())
    }

    /// Registers in `seen` the days the lake's index holds for the slice's hashes, so
    /// that they are confirmed against the rows of those days.
    fn probe_lake(&mut self, tenant: &Arc<str>, hashes: &[u64]) -> Result<()> {
        if self.lake_index[tenant].is_empty() {
            return Ok(());
        }
        let mut sorted = hashes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let idx = &self.lake_index[tenant];
        let hits = self.rt.block_on(idx.probe(&self.store, &sorted))?;
        if !hits.is_empty() {
            let seen = self.seen.get_mut(tenant).expect("tenant loaded");
            for (h, day) in hits {
                seen.add(h, day);
            }
        }
        Ok(())
    }

    /// Ends the run's part of the trace index: per tenant, its entries become one run
    /// with what it merges (see [`index::publish_run`]). After every data file, before
    /// the ledger.
    pub fn publish_index(&mut self) -> Result<()> {
        let mut tenants: Vec<(Arc<str>, Vec<Packed>)> = self.run_entries.drain().collect();
        tenants.sort_by(|a, b| a.0.cmp(&b.0));
        let own_prefix = format!("f-part-{}-", self.run_id);
        let run_name = format!("r-{}", self.run_id);
        for (tenant, entries) in tenants {
            self.rt.block_on(index::publish_run(
                &self.store,
                &tenant,
                &run_name,
                &own_prefix,
                entries,
            ))?;
        }
        Ok(())
    }

    /// The row of partition `key` with this trace_id, if any; for the partition being
    /// added to, only rows before `limit` (batch, row) count.
    fn find(
        &mut self,
        key: &PartKey,
        trace: &str,
        limit: Option<(usize, usize)>,
    ) -> Result<Option<Found>> {
        if self.bufs.get(key).is_none_or(|b| b.index.is_none()) {
            if !self.day_may_hold(key, trace)? {
                return Ok(None);
            }
            self.build_index(key, limit)?;
        }
        let buf = &self.bufs[key];
        let index = buf.index.as_ref().expect("index built");
        Ok(index.get(trace).map(|r| match *r {
            RowRef::Lake(b, i) => (
                buf.lake.as_ref().expect("lake loaded")[b as usize].clone(),
                i as usize,
                buf.lake_files.get(b as usize).cloned().flatten(),
            ),
            RowRef::Buf(b, i) => (buf.batches[b as usize].batch.clone(), i as usize, None),
        }))
    }

    /// Whether a day this run holds no rows of (none buffered, none being encoded) may
    /// hold `trace`, from its files' `trace_id` column alone: most index hits on such a
    /// day are another trace_id meeting the same 40 bits, and cost one column this way,
    /// not the day's rows. `true` for any other day.
    fn day_may_hold(&mut self, key: &PartKey, trace: &str) -> Result<bool> {
        if self.bufs.contains_key(key) || self.inflight.values().any(|(k, _, _)| k == key) {
            return Ok(true);
        }
        if !self.day_hashes.contains_key(key) {
            if self.day_hashes.len() >= 64 {
                self.day_hashes.clear();
            }
            let (store, rt) = (self.store.clone(), self.rt.clone());
            let mut hashes = HashSet::new();
            for (f, _) in rt.block_on(partition_files(&store, &key.rel_dir()))? {
                for b in rt.block_on(read_file(&store, &f, Some(&[Col::TraceId][..])))? {
                    if let Some(col) = b.column_by_name(COLUMN_NAMES[Col::TraceId as usize]) {
                        hashes.extend(col.as_string::<i32>().iter().flatten().map(trace_hash));
                    }
                }
            }
            self.day_hashes.insert(key.clone(), hashes);
        }
        Ok(self.day_hashes[key].contains(&trace_hash(trace)))
    }

    fn build_index(&mut self, key: &PartKey, limit: Option<(usize, usize)>) -> Result<()> {
        self.day_hashes.remove(key);
        // Rows being encoded first (they may not be files yet), then the lake's files.
        let mut lake: Vec<RecordBatch> = self
            .inflight
            .values()
            .filter(|(k, _, _)| k == key)
            .flat_map(|(_, b, _)| b.iter().cloned())
            .collect();
        let mut lake_files: Vec<Option<Arc<str>>> = vec![None; lake.len()];
        let (store, rt) = (self.store.clone(), self.rt.clone());
        for (f, _) in rt.block_on(partition_files(&store, &key.rel_dir()))? {
            let batches = rt.block_on(read_file(&store, &f, None))?;
            let f: Arc<str> = f.into();
            lake_files.extend(std::iter::repeat_n(Some(f), batches.len()));
            lake.extend(batches);
        }
        let lake_bytes: usize = lake.iter().map(|b| b.get_array_memory_size()).sum();
        self.buffered += lake_bytes;
        let buf = self.bufs.entry(key.clone()).or_default();
        buf.bytes += lake_bytes;
        let mut index: HashMap<Box<str>, RowRef> = HashMap::new();
        for (bi, b) in lake.iter().enumerate() {
            for (r, t) in b
                .column(Col::TraceId as usize)
                .as_string::<i32>()
                .iter()
                .enumerate()
            {
                if let Some(t) = t {
                    index
                        .entry(t.into())
                        .or_insert(RowRef::Lake(bi as u32, r as u32));
                }
            }
        }
        for (bi, b) in buf.batches.iter().enumerate() {
            let traces = b.batch.column(Col::TraceId as usize).as_string::<i32>();
            for r in 0..b.batch.num_rows() {
                if limit.is_some_and(|(lb, lr)| bi > lb || (bi == lb && r >= lr)) {
                    break;
                }
                if b.alive[r] {
                    index
                        .entry(traces.value(r).into())
                        .or_insert(RowRef::Buf(bi as u32, r as u32));
                }
            }
        }
        buf.lake = Some(lake);
        buf.lake_files = lake_files;
        buf.index = Some(index);
        Ok(())
    }
}

/// `None` when two rows carry the same event; else the first column that differs.
/// `meta` and `extra` are compared as parsed JSON, since re-exports switch forms.
pub fn compare_rows(a: &RecordBatch, ai: usize, b: &RecordBatch, bi: usize) -> Option<String> {
    let ta: &TimestampMicrosecondArray = a.column(Col::Time as usize).as_primitive();
    let tb: &TimestampMicrosecondArray = b.column(Col::Time as usize).as_primitive();
    if ta.value(ai) != tb.value(bi) {
        return Some("time".into());
    }
    let text = |batch: &RecordBatch, c: Col, i: usize| -> Option<String> {
        let col: &StringArray = batch.column(c as usize).as_string::<i32>();
        col.is_valid(i).then(|| col.value(i).to_string())
    };
    for c in [
        Col::Vendor,
        Col::Source,
        Col::ResourceId,
        Col::ActorId,
        Col::Action,
        Col::Status,
    ] {
        if text(a, c, ai) != text(b, c, bi) {
            return Some(super::COLUMN_NAMES[c as usize].into());
        }
    }
    for c in [Col::Meta, Col::Extra] {
        let (x, y) = (text(a, c, ai), text(b, c, bi));
        if x != y {
            let parse = |s: &Option<String>| {
                s.as_deref()
                    .map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            };
            if parse(&x) != parse(&y) || parse(&x).is_some_and(|v| v.is_none()) {
                return Some(super::COLUMN_NAMES[c as usize].into());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::TenantSeen;

    #[test]
    fn the_seen_table_finds_every_day_of_a_tag_and_grows() {
        let mut t = TenantSeen::default();
        for i in 0..100_000u64 {
            t.add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), (i % 400) as i32 - 20);
        }
        for i in (0..100_000u64).step_by(997) {
            assert_eq!(
                t.days(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                vec![(i % 400) as i32 - 20]
            );
        }
        // The same hash on two days (a collision, or a conflict across days): both come back.
        let h = 0xABCD_EF01_2345_6789;
        t.add(h, 19_000);
        t.add(h, 19_005);
        t.add(h, 19_000);
        let mut d = t.days(h);
        d.sort();
        assert_eq!(d, vec![19_000, 19_005]);
        assert!(!t.days(h).is_empty() && t.days(h ^ (1 << 40)).is_empty());
        assert_eq!(t.len, 100_002);
        // add_new records only a tag not seen yet.
        assert!(!t.add_new(h, 19_010));
        assert!(t.add_new(h ^ (1 << 40), 19_010));
        assert_eq!(t.days(h ^ (1 << 40)), vec![19_010]);
    }

    #[test]
    fn every_day_of_years_0000_to_9999_packs_back() {
        use crate::time::{FIRST_DAY, LAST_DAY};
        let mut t = TenantSeen::default();
        for (k, day) in [FIRST_DAY, -719_162, -1, 0, 20_000, LAST_DAY]
            .into_iter()
            .enumerate()
        {
            // Tag 0 too: the smallest day must not look like an empty slot.
            let h = (k as u64) << 40;
            assert!(t.add_new(h, day));
            assert_eq!(t.days(h), vec![day]);
            assert!(!t.add_new(h, day));
        }
    }
}
