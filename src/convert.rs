//! `auditlake convert`: exports in, lake files out.
//!
//! Three stages on threads joined by bounded channels, so memory stays flat
//! whatever the export size:
//! 1. a reader walks the sources in order, inflates each member and cuts it
//!    into chunks of whole records, while a hasher thread takes the source's
//!    SHA-256 and asks the ledger whether it was converted before (then what
//!    was read of it is dropped, see [`Gate`]);
//! 2. decoders (one per core) parse chunks into per-partition Arrow batches;
//! 3. this thread puts results back in input order, deduplicates into the
//!    [`PartitionBuffer`], logs rejects, and at the end writes the remaining
//!    partitions, the rejects files and the ledger entries, in that order.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use serde::Serialize;

use crate::ingest::interface::{Break, Chunk, DecodedChunk, RejectReason};
use crate::ingest::{
    for_each_member, list_sources, materialize, sha256_file, DecodeContext, Format, Source,
};
use crate::lake::ledger::{self, FileRecord, Incomplete, LedgerEntry, MemberEntry};
use crate::lake::lock::LakeLock;
use crate::lake::partitions::{Fate, PartitionBuffer};
use crate::lake::rejects::{raw_fields, RejectLog, Rejected};
use crate::lake::store::LakeStore;
use crate::Result;

/// How a conversion runs.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// A directory or an object-store URL.
    pub lake: String,
    /// Files, directories, object-store prefixes or HTTPS URLs.
    pub inputs: Vec<String>,
    /// `--storage-option key=value` pairs for object stores.
    pub storage_options: Vec<(String, String)>,
    /// Decoder threads, and as many encoder threads (0: one per core each); at most
    /// this many async workers too (2 when 0).
    pub threads: usize,
    /// Bytes of rows buffered before partitions are written early.
    pub buffer_bytes: usize,
    pub progress: bool,
    /// zstd level of the Parquet files (1 fastest … 22 smallest).
    pub zstd_level: i32,
    /// Records larger than this are rejected as `record_too_large` (streamed aside).
    pub max_record_bytes: usize,
    /// `--tenant`: the tenant of records whose input does not name one (an AWS CloudHSM
    /// cluster id, when the log group is not in the input).
    pub tenant: Option<String>,
}

/// The summary printed at the end (and as JSON with `--json`).
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub records_read: u64,
    pub written: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Sources converted in this run.
    pub sources: u64,
    /// Sources skipped because the ledger has them.
    pub skipped: u64,
    /// Sources that could not be read at all.
    pub failed: u64,
    /// Members that broke off before their end.
    pub incomplete_members: u64,
    /// Zip entries that are no export (directories, `__MACOSX/`, `._*`, `.DS_Store`),
    /// as `source: entry`.
    pub skipped_entries: Vec<String>,
    /// Files an interrupted run had published without a ledger entry, now ledgered.
    pub adopted_files: u64,
    /// Distinct partitions that received files.
    pub partitions: u64,
    pub files: u64,
    pub bytes_in: u64,
    pub seconds: f64,
    /// One line per problem (failed source, incomplete member).
    pub problems: Vec<String>,
}

impl Summary {
    /// Whether anything went wrong that the exit code must show.
    pub fn has_problems(&self) -> bool {
        self.failed > 0 || self.incomplete_members > 0
    }
}

/// Messages from the reader, in input order (`seq`).
enum Msg {
    Begin {
        src: usize,
        sha: String,
    },
    Skipped,
    Member {
        src: usize,
        name: String,
    },
    Chunk {
        src: usize,
        member: usize,
        chunk: Chunk,
        /// The member's format, whose decoder takes the chunk.
        format: Format,
    },
    Decoded {
        src: usize,
        member: usize,
        decoded: DecodedChunk,
    },
    Break {
        src: usize,
        member: usize,
        brk: Break,
    },
    End {
        src: usize,
        skipped: Vec<String>,
    },
    Failed {
        src: usize,
        sha: Option<String>,
        reason: String,
    },
}

struct SourceState {
    source: Source,
    members: Vec<MemberEntry>,
    broken: HashSet<usize>,
    entry: LedgerEntry,
    rejects: RejectLog,
    time: Option<(i64, i64)>,
}

/// Runs a conversion. Problems with single sources are in the summary; `Err` only for
/// failures that stop the whole run (the lake cannot be written).
pub fn convert(opts: &ConvertOptions) -> Result<Summary> {
    let started = Instant::now();
    // The async side (object-store I/O, the lock's heartbeat) needs few workers.
    let workers = match opts.threads {
        0 => 2,
        n => n.min(2),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("convert-io")
        .enable_all()
        .build()
        .map_err(|e| crate::Error::Usage(format!("cannot start the async runtime: {e}")))?;
    let store = LakeStore::open(&opts.lake, &opts.storage_options)?;
    let sources = rt.block_on(list_sources(&opts.inputs, &opts.storage_options))?;
    let lock = LakeLock::acquire(&store, rt.handle())?;
    // Every write to the lake from here on checks that the lock is still ours.
    let store = store.holding(lock.held());
    let summary = run_pipeline(opts, &store, rt.handle(), &sources, started);
    let released = lock.release();
    let summary = summary?;
    released?;
    Ok(summary)
}

/// Converts sources already listed into a lake whose lock the caller holds (`store`
/// from [`LakeStore::holding`]): the pipeline of [`convert`] without its listing and
/// locking, for callers that bring their own sources, such as `fetch` with each
/// downloaded export. `opts.lake` and `opts.inputs` are not used.
pub fn convert_sources(
    opts: &ConvertOptions,
    store: &LakeStore,
    rt: &tokio::runtime::Handle,
    sources: &[Source],
) -> Result<Summary> {
    run_pipeline(opts, store, rt, sources, Instant::now())
}

fn run_pipeline(
    opts: &ConvertOptions,
    store: &LakeStore,
    rt: &tokio::runtime::Handle,
    sources: &[Source],
    started: Instant,
) -> Result<Summary> {
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let total_bytes: u64 = sources.iter().map(|s| s.size).sum();
    let counter = Arc::new(AtomicU64::new(0));
    let bar = progress_bar(opts.progress, total_bytes);
    let limit = opts.max_record_bytes;
    let ctx = DecodeContext {
        tenant: opts.tenant.as_deref().map(Arc::from),
    };
    let tenant_given = ctx.tenant.is_some();

    let (work_tx, work_rx) = bounded::<(u64, Msg)>(threads * 2);
    let (done_tx, done_rx) = bounded::<(u64, Msg)>(threads * 2);

    std::thread::scope(|s| -> Result<Summary> {
        let mut workers = Vec::new();
        {
            let counter = counter.clone();
            workers.push(
                std::thread::Builder::new()
                    .name("reader".into())
                    .spawn_scoped(s, move || {
                        read_sources(sources, store, rt, counter, limit, tenant_given, work_tx)
                    })
                    .expect("spawn the reader thread"),
            );
        }
        for i in 0..threads {
            let (rx, tx, ctx) = (work_rx.clone(), done_tx.clone(), &ctx);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("decoder-{i}"))
                    .spawn_scoped(s, move || decode_worker(rx, tx, ctx))
                    .expect("spawn a decoder thread"),
            );
        }
        drop(work_rx);
        drop(done_tx);
        tracing::debug!(decoders = threads, "decoder threads");
        let mut w = Writer::new(
            store,
            rt,
            sources,
            opts.buffer_bytes,
            opts.zstd_level,
            opts.threads,
        );
        let mut pending: BTreeMap<u64, Msg> = BTreeMap::new();
        let mut next = 0u64;
        let mut result = Ok(());
        for (seq, msg) in done_rx.iter() {
            pending.insert(seq, msg);
            while let Some(msg) = pending.remove(&next) {
                next += 1;
                if result.is_ok() {
                    // A lost lock stops the run at the next message, not only at the next write.
                    result = store.check_held().and_then(|()| w.handle(msg));
                }
            }
            if let Some(bar) = &bar {
                bar.set_position(counter.load(std::sync::atomic::Ordering::Relaxed));
            }
        }
        // A worker that panicked may have taken records with it: nothing more is
        // published (no ledger entry), and the panic goes on to `main`.
        for h in workers {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
        result?;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let mut summary = w.finish()?;
        summary.bytes_in = total_bytes;
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    })
}

fn progress_bar(enabled: bool, total: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} converting [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    Some(bar)
}

/// Stage 1: sources → members → chunks, in order.
fn read_sources(
    sources: &[Source],
    store: &LakeStore,
    rt: &tokio::runtime::Handle,
    counter: Arc<AtomicU64>,
    limit: usize,
    tenant_given: bool,
    tx: Sender<(u64, Msg)>,
) {
    let mut out = Out { tx, seq: 0 };
    for (src, source) in sources.iter().enumerate() {
        // Remote sources are spooled to a temporary file first (removed after the source).
        let (path, _spool) = match materialize(source, rt) {
            Ok(p) => p,
            Err(e) => {
                if !out.send(Msg::Failed {
                    src,
                    sha: None,
                    reason: e.to_string(),
                }) {
                    return;
                }
                continue;
            }
        };
        let counted = counter.load(Ordering::Relaxed);
        let went_on = std::thread::scope(|s| {
            let path = &path;
            let hasher = std::thread::Builder::new()
                .name("hasher".into())
                .spawn_scoped(s, move || -> Result<(String, bool)> {
                    let sha = sha256_file(path)?;
                    let done = rt.block_on(ledger::contains(store, &sha))?;
                    Ok((sha, done))
                })
                .expect("spawn the hasher thread");
            let mut gate = Gate {
                hasher: Some(hasher),
                src,
                slot: out.reserve(),
                ahead: 0,
                verdict: Verdict::Pending,
            };
            let mut member = 0usize;
            let mut alive = true;
            // A member whose records cannot be placed at all fails the whole source.
            let mut unplaceable: Option<String> = None;
            let res = for_each_member(path, counter.clone(), |name, format, reader| {
                if !alive || unplaceable.is_some() {
                    return;
                }
                if format.needs_tenant() && !tenant_given {
                    unplaceable = Some(format!(
                        "{}: member {name}: {} records that do not name their tenant \
                         (no log group /aws/cloudhsm/<cluster-id> in the input): give it with --tenant",
                        source.name,
                        format.vendor()
                    ));
                    return;
                }
                alive &= gate.pass(
                    &mut out,
                    Msg::Member {
                        src,
                        name: name.to_string(),
                    },
                );
                let mut framer = format.framer(reader, limit);
                while alive {
                    match framer.next_chunk() {
                        Ok(Some(chunk)) => {
                            alive &= gate.pass(
                                &mut out,
                                Msg::Chunk {
                                    src,
                                    member,
                                    chunk,
                                    format,
                                },
                            )
                        }
                        Ok(None) => break,
                        Err(brk) => {
                            alive &= gate.pass(&mut out, Msg::Break { src, member, brk });
                            break;
                        }
                    }
                }
                member += 1;
            });
            // Whatever the reading came to, the ledger's verdict comes first.
            if !gate.settle(&mut out) {
                return false;
            }
            match std::mem::replace(&mut gate.verdict, Verdict::Pending) {
                Verdict::Pending => unreachable!("settled above"),
                Verdict::Skip => {
                    // Progress counts the whole source, however much was read before the verdict.
                    let read = counter.load(Ordering::Relaxed).saturating_sub(counted);
                    counter.fetch_add(source.size.saturating_sub(read), Ordering::Relaxed);
                    true
                }
                Verdict::Unhashed => true,
                Verdict::Convert(sha) => {
                    if !alive {
                        return false; // the channel closed: the run is ending
                    }
                    let res = match unplaceable {
                        Some(reason) => Err(crate::Error::Usage(reason)),
                        None => res,
                    };
                    out.send(match res {
                        Ok(members) => Msg::End {
                            src,
                            skipped: members.skipped,
                        },
                        // Name the source as the user gave it, not a spool file.
                        Err(crate::Error::Source { reason, .. }) => Msg::Failed {
                            src,
                            sha: Some(sha),
                            reason: format!("{}: {reason}", source.name),
                        },
                        Err(e) => Msg::Failed {
                            src,
                            sha: Some(sha),
                            reason: e.to_string(),
                        },
                    })
                }
            }
        });
        if !went_on {
            return;
        }
    }
}

/// The reader's end of the channel to the decoders, numbering messages in input order.
struct Out {
    tx: Sender<(u64, Msg)>,
    seq: u64,
}

impl Out {
    /// `false` when the run is ending (the receiving side has gone).
    fn send(&mut self, m: Msg) -> bool {
        let seq = self.reserve();
        self.send_at(seq, m)
    }

    /// A place in the input order for a message sent later (see [`Gate`]).
    fn reserve(&mut self) -> u64 {
        self.seq += 1;
        self.seq - 1
    }

    fn send_at(&mut self, seq: u64, m: Msg) -> bool {
        self.tx.send((seq, m)).is_ok()
    }
}

/// What the ledger says of the source being read.
enum Verdict {
    /// Its SHA-256 is still being taken.
    Pending,
    /// New (its SHA-256): `Begin` went out in the reserved place.
    Convert(String),
    /// Already converted: `Skipped` went out; what was read of it is dropped.
    Skip,
    /// It could not be hashed (or the ledger read): `Failed` went out.
    Unhashed,
}

/// Reads a source ahead of the ledger's verdict on it.
///
/// A source is named in the ledger by its SHA-256, and one the ledger has is skipped.
/// Hashing a monthly export before reading it (14 ms for 22 MB) left the decoders and
/// one core idle, so the hash is taken on its own thread while the reader inflates and
/// the decoders decode. The verdict's message (`Begin`, `Skipped` or `Failed`) has its
/// place in the input order reserved before the source's first message, so the writer
/// takes nothing of the source before it, and drops what follows a `Skipped` or
/// `Failed` (it keeps no state for such a source). At most [`Gate::AHEAD`] messages go
/// out before the verdict; the next one waits for the hash.
struct Gate<'scope> {
    hasher: Option<std::thread::ScopedJoinHandle<'scope, Result<(String, bool)>>>,
    /// The source's index in the run.
    src: usize,
    /// The place of the verdict's message.
    slot: u64,
    /// Messages sent before the verdict.
    ahead: usize,
    verdict: Verdict,
}

impl Gate<'_> {
    const AHEAD: usize = 8;

    /// Passes `m` on; `false` when reading this source should stop (it is skipped or
    /// failed, or the run is ending).
    fn pass(&mut self, out: &mut Out, m: Msg) -> bool {
        if matches!(self.verdict, Verdict::Pending) {
            let hashed = self.hasher.as_ref().is_none_or(|h| h.is_finished());
            if hashed || self.ahead >= Self::AHEAD {
                if !self.settle(out) {
                    return false;
                }
            } else {
                self.ahead += 1;
            }
        }
        match self.verdict {
            Verdict::Pending | Verdict::Convert(_) => out.send(m),
            Verdict::Skip | Verdict::Unhashed => false,
        }
    }

    /// Waits for the verdict and sends its message in the reserved place; `false` when
    /// the run is ending.
    fn settle(&mut self, out: &mut Out) -> bool {
        let Some(hasher) = self.hasher.take() else {
            return true;
        };
        let verdict = match hasher.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let src = self.src;
        let m = match verdict {
            Ok((sha, false)) => {
                self.verdict = Verdict::Convert(sha.clone());
                Msg::Begin { src, sha }
            }
            Ok((_, true)) => {
                self.verdict = Verdict::Skip;
                Msg::Skipped
            }
            Err(e) => {
                self.verdict = Verdict::Unhashed;
                Msg::Failed {
                    src,
                    sha: None,
                    reason: e.to_string(),
                }
            }
        };
        out.send_at(self.slot, m)
    }
}

/// Stage 2: chunks → decoded batches; everything else passes through.
fn decode_worker(rx: Receiver<(u64, Msg)>, tx: Sender<(u64, Msg)>, ctx: &DecodeContext) {
    for (seq, msg) in rx.iter() {
        let out = match msg {
            Msg::Chunk {
                src,
                member,
                chunk,
                format,
            } => {
                crate::testhook::point("decode");
                Msg::Decoded {
                    src,
                    member,
                    decoded: format.decode(Arc::new(chunk), ctx),
                }
            }
            other => other,
        };
        if tx.send((seq, out)).is_err() {
            return;
        }
    }
}

/// Stage 3: in-order bookkeeping around the partition buffer.
struct Writer<'a> {
    store: &'a LakeStore,
    rt: &'a tokio::runtime::Handle,
    sources: &'a [Source],
    states: BTreeMap<usize, SourceState>,
    buffer: PartitionBuffer,
    summary: Summary,
    partitions: HashSet<String>,
    /// The manifest entries of the files this run published or adopted.
    manifest_adds: Vec<crate::lake::manifest::FileEntry>,
}

impl<'a> Writer<'a> {
    fn new(
        store: &'a LakeStore,
        rt: &'a tokio::runtime::Handle,
        sources: &'a [Source],
        budget: usize,
        zstd_level: i32,
        encoders: usize,
    ) -> Self {
        Writer {
            store,
            rt,
            sources,
            states: BTreeMap::new(),
            buffer: PartitionBuffer::new(store, rt.clone(), budget, zstd_level, encoders),
            summary: Summary::default(),
            partitions: HashSet::new(),
            manifest_adds: Vec::new(),
        }
    }

    fn problem(&mut self, line: String) {
        eprintln!("auditlake: {line}");
        self.summary.problems.push(line);
    }

    fn handle(&mut self, msg: Msg) -> Result<()> {
        match msg {
            Msg::Begin { src, sha } => {
                let source = self.sources[src].clone();
                let entry = LedgerEntry::new(source.name(), source.size, sha.clone());
                let rejects = RejectLog::new(&sha);
                self.states.insert(
                    src,
                    SourceState {
                        source,
                        members: vec![],
                        broken: HashSet::new(),
                        entry,
                        rejects,
                        time: None,
                    },
                );
            }
            Msg::Skipped => self.summary.skipped += 1,
            Msg::Member { src, name, .. } => {
                if let Some(st) = self.states.get_mut(&src) {
                    st.members.push(MemberEntry {
                        name,
                        records_read: 0,
                        incomplete: None,
                    });
                }
            }
            Msg::Decoded {
                src,
                member,
                decoded,
            } => self.decoded(src, member, decoded)?,
            Msg::Break { src, member, brk } => self.broke(src, member, brk, None)?,
            Msg::End { src, skipped } => {
                if let Some(st) = self.states.get_mut(&src) {
                    st.entry.members = std::mem::take(&mut st.members);
                    if !skipped.is_empty() {
                        crate::notes::note(&format!(
                            "{}: skipped {} zip entr{} that hold no export: {}",
                            st.source.name(),
                            skipped.len(),
                            if skipped.len() == 1 { "y" } else { "ies" },
                            skipped.join(", ")
                        ));
                    }
                    let name = st.source.name();
                    self.summary
                        .skipped_entries
                        .extend(skipped.iter().map(|e| format!("{name}: {e}")));
                    st.entry.skipped_entries = skipped;
                }
            }
            Msg::Failed { src, sha, reason } => {
                self.summary.failed += 1;
                let path = self.sources[src].name();
                self.problem(reason.clone());
                // Whatever was read of it is dropped from the ledger (it is retried next run), but
                // its reason is kept with the other rejects.
                let mut log = self
                    .states
                    .remove(&src)
                    .map(|s| s.rejects)
                    .or_else(|| sha.as_deref().map(RejectLog::new));
                if let Some(log) = log.as_mut() {
                    log.write(&Rejected {
                        source: &path,
                        member: "",
                        index: None,
                        offset: 0,
                        reason: "unreadable_source",
                        detail: &reason,
                        ..Default::default()
                    })?;
                }
                if let Some(log) = log {
                    self.rt.block_on(log.finish(self.store))?;
                }
            }
            Msg::Chunk { .. } => unreachable!("chunks are decoded before they get here"),
        }
        self.collect_published();
        Ok(())
    }

    fn decoded(&mut self, src: usize, member: usize, d: DecodedChunk) -> Result<()> {
        let Some(st) = self.states.get_mut(&src) else {
            return Ok(());
        };
        if st.broken.contains(&member) {
            return Ok(()); // the member ended at an earlier break
        }
        let member_name = st.members[member].name.clone();
        st.members[member].records_read += d.records_read;
        st.entry.records_read += d.records_read;
        if let Some((lo, hi)) = d.time_range {
            st.time = Some(st.time.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
        let source_name = st.source.name();
        let chunk = &d.chunk;
        if let Some(big) = &chunk.oversized {
            // Counted as read and rejected; its bytes go beside the rejects file.
            st.members[member].records_read += 1;
            st.entry.records_read += 1;
            st.entry.rejected += 1;
            let rel = format!(
                "{}/{}.m{member}.r{}.raw",
                crate::lake::REJECTED_DIR,
                st.entry.sha256,
                chunk.first_index
            );
            let (raw_file, detail) = match &big.spool {
                Ok(f) => {
                    self.rt.block_on(crate::lake::rejects::upload_file(
                        self.store,
                        &rel,
                        f.path(),
                    ))?;
                    (
                        Some(rel),
                        format!("a record of {} bytes, over the limit", big.len),
                    )
                }
                Err(e) => (
                    None,
                    format!("a record of {} bytes, over the limit; {e}", big.len),
                ),
            };
            st.rejects.write(&Rejected {
                source: &source_name,
                member: &member_name,
                index: Some(chunk.first_index),
                offset: big.offset,
                reason: "record_too_large",
                detail: &detail,
                raw_file,
                raw_sha256: Some(big.sha256.clone()),
                raw_bytes: Some(big.len),
                end_offset: Some(big.offset + big.len),
                ..Default::default()
            })?;
        }
        let reject = |st: &mut SourceState, pos: u32, why: &RejectReason| -> Result<()> {
            st.entry.rejected += 1;
            let (a, b) = chunk.records[pos as usize];
            let (raw, raw_base64) = raw_fields(&chunk.data[a as usize..b as usize]);
            st.rejects.write(&Rejected {
                source: &source_name,
                member: &member_name,
                index: Some(chunk.first_index + pos as u64),
                offset: chunk.record_offset(pos as usize),
                reason: why.code,
                detail: &why.detail,
                raw: &raw,
                raw_base64,
                ..Default::default()
            })
        };
        for (pos, why) in &d.rejects {
            reject(st, *pos, why)?;
        }
        for slice in d.slices {
            let rows = slice.rows.clone();
            let fates = self.buffer.add(slice, src)?;
            let st = self.states.get_mut(&src).expect("source state");
            for (fate, pos) in fates.into_iter().zip(rows) {
                match fate {
                    Fate::New => st.entry.written += 1,
                    Fate::Duplicate => st.entry.duplicates += 1,
                    Fate::Conflict(col) => {
                        let why = RejectReason {
                            code: "duplicate_conflict",
                            detail: format!("trace_id seen before with a different {col}"),
                        };
                        reject(st, pos, &why)?;
                    }
                }
            }
        }
        if let Some(brk) = d.brk {
            let raw = chunk
                .records
                .get(d.records_read as usize)
                .map(|&(a, b)| &chunk.data[a as usize..b as usize]);
            self.broke(src, member, brk, raw)?;
        }
        Ok(())
    }

    fn broke(&mut self, src: usize, member: usize, brk: Break, raw: Option<&[u8]>) -> Result<()> {
        let Some(st) = self.states.get_mut(&src) else {
            return Ok(());
        };
        if !st.broken.insert(member) {
            return Ok(());
        }
        let m = &mut st.members[member];
        m.incomplete = Some(Incomplete {
            offset: brk.offset,
            reason: brk.reason.clone(),
        });
        let line = format!(
            "{}: member {}: offset {}: {} (records before it kept)",
            st.source.name(),
            m.name,
            brk.offset,
            brk.reason
        );
        let (source, member_name) = (st.source.name(), m.name.clone());
        let (raw, raw_base64) = raw_fields(raw.unwrap_or_default());
        st.rejects.write(&Rejected {
            source: &source,
            member: &member_name,
            index: None,
            offset: brk.offset,
            reason: "incomplete_member",
            detail: &brk.reason,
            raw: &raw,
            raw_base64,
            ..Default::default()
        })?;
        self.summary.incomplete_members += 1;
        self.problem(line);
        Ok(())
    }

    fn collect_published(&mut self) {
        for p in self.buffer.take_published() {
            self.summary.files += 1;
            self.manifest_adds.push(p.file.manifest_entry());
            let dir = p
                .file
                .rel_path
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| d.to_string());
            self.partitions.insert(dir);
            let record = FileRecord {
                path: p.file.rel_path.clone(),
                bytes: p.file.bytes,
                sha256: p.file.sha256.clone(),
                rows: p.file.rows as u64,
            };
            for s in p.sources {
                if let Some(st) = self.states.get_mut(&s) {
                    st.entry.files.push(p.file.rel_path.clone());
                    st.entry.file_details.push(record.clone());
                }
            }
        }
    }

    /// Lake files that no ledger entry names (a killed run published them before its
    /// entry) but that hold rows a source of this run brought again: that source's
    /// entry takes them, so the ledger names every file again.
    fn adopt_unledgered(&mut self) -> Result<()> {
        let dup_files = self.buffer.take_dup_files();
        if dup_files.is_empty() {
            return Ok(());
        }
        let mut ledgered: HashSet<String> = self
            .rt
            .block_on(ledger::load(self.store))?
            .into_iter()
            .chain(self.states.values().map(|st| st.entry.clone()))
            .flat_map(|e| e.files)
            .collect();
        let mut adopted = 0;
        for (src, files) in dup_files {
            let Some(st) = self.states.get_mut(&src) else {
                continue;
            };
            for f in files {
                if ledgered.contains(&*f) {
                    continue;
                }
                let record = self.rt.block_on(FileRecord::of_lake_file(self.store, &f))?;
                self.manifest_adds.push(self.rt.block_on(
                    crate::lake::manifest::entry_of_lake_file(self.store, &f, record.bytes),
                )?);
                st.entry.files.push(f.to_string());
                st.entry.file_details.push(record);
                ledgered.insert(f.to_string());
                adopted += 1;
            }
        }
        if adopted > 0 {
            crate::notes::note(&format!(
                "{adopted} lake files of an interrupted run are now in the ledger"
            ));
        }
        self.summary.adopted_files = adopted;
        Ok(())
    }

    /// Writes what is left, then rejects files and ledger entries (after their data).
    fn finish(mut self) -> Result<Summary> {
        self.buffer.flush_all()?;
        self.collect_published();
        self.adopt_unledgered()?;
        self.buffer.publish_index()?;
        // The files become visible to manifest-planned queries here, after their data and
        // index, before the ledger entries that name them.
        let adds = std::mem::take(&mut self.manifest_adds);
        if !adds.is_empty() {
            self.rt.block_on(async {
                crate::lake::manifest::ensure(self.store).await?;
                crate::lake::manifest::append(self.store, adds, vec![]).await
            })?;
        }
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let mut entries = Vec::with_capacity(self.states.len());
        for (_, st) in std::mem::take(&mut self.states) {
            let SourceState {
                mut entry,
                rejects,
                time,
                ..
            } = st;
            entry.rejects_file = self.rt.block_on(rejects.finish(self.store))?;
            entry.converted_at = now.clone();
            entry.time_min = time.map(|t| crate::time::format_micros(t.0));
            entry.time_max = time.map(|t| crate::time::format_micros(t.1));
            let s = &mut self.summary;
            s.sources += 1;
            s.records_read += entry.records_read;
            s.written += entry.written;
            s.duplicates += entry.duplicates;
            s.rejected += entry.rejected;
            entries.push(entry);
        }
        self.rt.block_on(ledger::write(
            self.store,
            "convert",
            &entries,
            vec![],
            None,
            "ledger",
        ))?;
        self.summary.partitions = self.partitions.len() as u64;
        Ok(self.summary)
    }
}
