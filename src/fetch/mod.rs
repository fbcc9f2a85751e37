//! `auditlake fetch`: pull exports straight from the DPoD Audit Query API into the lake.
//!
//! The period (by default from where the ledger's fetched windows end, less a small
//! overlap for late records, to now) is cut into windows of at most 31 days, leaving
//! out what the ledger already covers. For each window: create an export job, poll it
//! until it ends, download its signed URL to a spool file and convert that with the
//! pipeline of `convert`, under one lake lock for the whole run. The window's record
//! goes in the ledger after the source's entry, which goes after its data: a run killed
//! anywhere and started again fetches the windows not recorded, and exactly-once does
//! the rest. A window the service finds too large is split in two; an expired signed
//! URL gets a new job.

pub mod api;
pub mod windows;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::convert::{convert_sources, ConvertOptions};
use crate::ingest::{sha256_file, Source, SourceLoc};
use crate::lake::ledger::{self, WindowRecord};
use crate::lake::lock::LakeLock;
use crate::lake::store::LakeStore;
use crate::{Error, Result};
use api::{Api, ApiError, Backoff};
use windows::{format_rfc3339, Window};

/// How a fetch runs.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub api: url::Url,
    pub token_url: url::Url,
    pub client_id: String,
    /// From the environment or a file, never the command line.
    pub secret: Secret,
    /// Filters by their API names: `source`, `resourceId`, `actorId`, `action`, `status`.
    pub filters: BTreeMap<String, String>,
    /// Explicit period; `None` for the defaults.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// How far before the end of the fetched coverage a default `--from` starts.
    pub overlap_secs: i64,
    pub max_window_secs: i64,
    pub job_timeout: Duration,
    pub ca_cert: Option<std::path::PathBuf>,
    pub dry_run: bool,
    pub progress: bool,
    /// The conversion of each download (its `lake` is the lake fetched into).
    pub convert: ConvertOptions,
}

/// The client secret: shown nowhere, not even in `Debug`.
#[derive(Clone)]
pub struct Secret(pub String);
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// The summary printed at the end (and as JSON with `--json`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct FetchSummary {
    pub api: String,
    pub from: String,
    pub to: String,
    /// Windows fetched and converted in this run.
    pub windows: u64,
    /// Windows that could not be fetched (each is a line in `problems`).
    pub windows_failed: u64,
    /// Windows split in two because the service found them too large.
    pub windows_split: u64,
    pub jobs: u64,
    /// Jobs created again because the signed URL had expired.
    pub jobs_recreated: u64,
    pub retries: u64,
    pub token_refreshes: u64,
    pub resumed_downloads: u64,
    pub bytes_downloaded: u64,
    pub records_read: u64,
    pub written: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Downloads whose bytes the ledger had already (same SHA-256).
    pub skipped: u64,
    pub incomplete_members: u64,
    pub files: u64,
    /// Partitions written to, summed over the windows.
    pub partitions: u64,
    pub seconds: f64,
    pub problems: Vec<String>,
    pub dry_run: bool,
    /// With `--dry-run`: the windows that would be asked for, `FROM..TO`.
    pub planned: Vec<String>,
}

impl FetchSummary {
    /// Whether anything went wrong that the exit code must show.
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// Why one window could not be fetched; the run goes on with the others.
#[derive(Debug, thiserror::Error)]
enum WindowError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Lake(#[from] Error),
}

/// Runs a fetch. Problems with single windows are in the summary; `Err` for what stops
/// the whole run (bad credentials, the lake cannot be written).
pub fn fetch(opts: &FetchOptions) -> Result<FetchSummary> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fetch-io")
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    let api_shown = api::shown(&opts.api);
    let lake = &opts.convert.lake;
    let storage = &opts.convert.storage_options;
    let mut summary = FetchSummary {
        api: api_shown.clone(),
        ..Default::default()
    };

    if opts.dry_run {
        summary.dry_run = true;
        // Reads the ledger if there is a lake; creates nothing.
        let covered = match LakeStore::open_existing(lake, storage) {
            Ok(store) => rt.block_on(covered(&store, &api_shown, &opts.filters))?,
            Err(_) => vec![],
        };
        let (from, to, plan) = period(opts, &covered);
        summary.from = format_rfc3339(from);
        summary.to = format_rfc3339(to);
        summary.planned = plan
            .iter()
            .map(|w| format!("{}..{}", format_rfc3339(w.0), format_rfc3339(w.1)))
            .collect();
        return Ok(summary);
    }

    let store = LakeStore::open(lake, storage)?;
    let lock = LakeLock::acquire(&store, rt.handle())?;
    let store = store.holding(lock.held());
    let result = run(opts, &store, &rt, &mut summary);
    let released = lock.release();
    result?;
    released?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The fetched coverage of this API and these filters, from the ledger.
async fn covered(
    store: &LakeStore,
    api: &str,
    filters: &BTreeMap<String, String>,
) -> Result<Vec<Window>> {
    let mut out = Vec::new();
    for w in ledger::load_windows(store).await? {
        if w.api != api || &w.filters != filters {
            continue;
        }
        if let (Ok(a), Ok(b)) = (
            windows::parse_instant(&w.from),
            windows::parse_instant(&w.to),
        ) {
            out.push((a, b));
        }
    }
    Ok(out)
}

/// The period and its windows: explicit `--from` leaves out what is covered; the
/// default starts at the end of the coverage less the overlap (a year back when none).
fn period(opts: &FetchOptions, covered: &[Window]) -> (i64, i64, Vec<Window>) {
    let now = chrono::Utc::now().timestamp();
    // The service holds nothing from the future.
    let to = opts.to.unwrap_or(now).min(now);
    let max = opts.max_window_secs;
    match opts.from {
        Some(from) => (from, to, windows::plan(from, to, covered, max)),
        None => {
            let from = match windows::merge(covered).last() {
                Some(&(_, end)) => end - opts.overlap_secs,
                None => to - 365 * 86_400,
            };
            (from, to, windows::plan(from, to, &[], max))
        }
    }
}

fn run(
    opts: &FetchOptions,
    store: &LakeStore,
    rt: &tokio::runtime::Runtime,
    summary: &mut FetchSummary,
) -> Result<()> {
    let covered = rt.block_on(covered(store, &summary.api, &opts.filters))?;
    let (from, to, plan) = period(opts, &covered);
    summary.from = format_rfc3339(from);
    summary.to = format_rfc3339(to);
    if plan.is_empty() {
        crate::notes::note(&format!(
            "{}..{} is fetched already: nothing to do",
            summary.from, summary.to
        ));
        return Ok(());
    }
    let mut api = Api::new(
        opts.api.clone(),
        opts.token_url.clone(),
        opts.client_id.clone(),
        opts.secret.0.clone(),
        opts.ca_cert.as_deref(),
        Backoff::from_env(),
    )
    .map_err(|e| Error::Usage(e.to_string()))?;
    let bar = progress_bar(opts.progress);
    let mut queue: VecDeque<Window> = plan.into();
    let mut done = 0usize;
    while let Some(w) = queue.pop_front() {
        let label = format!("{}..{}", format_rfc3339(w.0), format_rfc3339(w.1));
        if let Some(bar) = &bar {
            bar.set_message(format!(
                "window {} of {}: {label}",
                done + 1,
                done + 1 + queue.len()
            ));
        }
        let outcome = fetch_window(opts, store, rt, &mut api, w, summary, bar.as_ref());
        match outcome {
            Ok(()) => done += 1,
            Err(WindowError::Api(ApiError::TooLarge { detail })) => match windows::halves(w) {
                Some((a, b)) => {
                    summary.windows_split += 1;
                    crate::notes::note(&format!(
                        "window {label} is too large for one export{detail}; asking for its halves"
                    ));
                    queue.push_front(b);
                    queue.push_front(a);
                }
                None => {
                    let line = format!(
                        "window {label}: too large for one export even at this length{detail}; narrow it with filters"
                    );
                    problem(summary, line, bar.as_ref());
                    summary.windows_failed += 1;
                }
            },
            // Credentials and the lake stop the run; anything else ends only its window.
            Err(WindowError::Api(e @ (ApiError::Credentials { .. } | ApiError::Token(_)))) => {
                finish_bar(bar.as_ref());
                return Err(Error::Usage(e.to_string()));
            }
            Err(WindowError::Lake(e)) => {
                finish_bar(bar.as_ref());
                return Err(e);
            }
            Err(WindowError::Api(e)) => {
                summary.windows_failed += 1;
                problem(summary, format!("window {label}: {e}"), bar.as_ref());
            }
        }
    }
    finish_bar(bar.as_ref());
    summary.retries = api.counters.retries;
    summary.token_refreshes = api.counters.token_refreshes;
    summary.resumed_downloads = api.counters.resumed_downloads;
    Ok(())
}

fn problem(summary: &mut FetchSummary, line: String, bar: Option<&indicatif::ProgressBar>) {
    match bar {
        Some(b) => b.suspend(|| eprintln!("auditlake: {line}")),
        None => eprintln!("auditlake: {line}"),
    }
    summary.problems.push(line);
}

/// One window: job, poll, download (a new job when the URL expired), convert, record.
fn fetch_window(
    opts: &FetchOptions,
    store: &LakeStore,
    rt: &tokio::runtime::Runtime,
    api: &mut Api,
    w: Window,
    summary: &mut FetchSummary,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<(), WindowError> {
    let tmp_dir = std::env::temp_dir();
    let mut spool = tempfile::NamedTempFile::new().map_err(|e| Error::io(&tmp_dir, e))?;
    let label = format!("{}..{}", format_rfc3339(w.0), format_rfc3339(w.1));
    let mut expired = 0;
    let (job, bytes) = loop {
        let job = rt.block_on(api.create(w, &opts.filters))?;
        summary.jobs += 1;
        tracing::info!(job = %job.id, window = %label, "export job created");
        let location = rt.block_on(api.wait(&job, opts.job_timeout, |state| {
            if let Some(b) = bar {
                b.set_message(format!("{label}: job {} {state}", job.id));
            }
        }))?;
        crate::testhook::point("fetch-located");
        let got = rt.block_on(api.download(&job, &location, spool.as_file_mut(), |n| {
            if let Some(b) = bar {
                b.inc(n);
            }
        }));
        match got {
            Ok(bytes) => break (job, bytes),
            Err(ApiError::UrlExpired { .. }) if expired < 3 => {
                expired += 1;
                summary.jobs_recreated += 1;
                crate::notes::note(&format!(
                    "window {label}: the signed URL of job {} had expired; creating the job again",
                    job.id
                ));
            }
            Err(e) => return Err(e.into()),
        }
    };
    summary.bytes_downloaded += bytes;
    let name = format!("{}/v1/audit-log-exports/{} ({label})", summary.api, job.id);
    let source = Source {
        name: name.clone(),
        size: bytes,
        loc: SourceLoc::Local(spool.path().to_path_buf()),
    };
    let sha = sha256_file(spool.path())?;
    let mut copts = opts.convert.clone();
    copts.progress = false;
    let s = convert_sources(&copts, store, rt.handle(), &[source])?;
    summary.records_read += s.records_read;
    summary.written += s.written;
    summary.duplicates += s.duplicates;
    summary.rejected += s.rejected;
    summary.skipped += s.skipped;
    summary.incomplete_members += s.incomplete_members;
    summary.files += s.files;
    summary.partitions += s.partitions;
    if s.failed > 0 || s.incomplete_members > 0 {
        // Its lines are on stderr already; not recorded, so a rerun asks for it again.
        for p in &s.problems {
            summary.problems.push(p.clone());
        }
        summary.windows_failed += 1;
        return Ok(());
    }
    let record = WindowRecord {
        api: summary.api.clone(),
        filters: opts.filters.clone(),
        from: format_rfc3339(w.0),
        to: format_rfc3339(w.1),
        job_id: job.id.clone(),
        source: name,
        source_sha256: sha,
        size: bytes,
        records_read: s.records_read,
        written: s.written,
        duplicates: s.duplicates,
        rejected: s.rejected,
        fetched_at: chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
        auditlake_version: env!("CARGO_PKG_VERSION").into(),
    };
    rt.block_on(ledger::write_window(store, &record))?;
    summary.windows += 1;
    let line = format!(
        "window {label} (job {}): {} records, {} new, {} duplicates, {} rejected",
        job.id, s.records_read, s.written, s.duplicates, s.rejected
    );
    match bar {
        Some(b) => b.suspend(|| crate::notes::note(&line)),
        None => crate::notes::note(&line),
    }
    Ok(())
}

fn progress_bar(enabled: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} fetching {msg} ({bytes} downloaded)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

fn finish_bar(bar: Option<&indicatif::ProgressBar>) {
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

/// The human-readable summary.
pub fn render(s: &FetchSummary) -> String {
    if s.dry_run {
        let mut out = format!(
            "{} window{} to fetch from {} ({}..{}):\n",
            s.planned.len(),
            if s.planned.len() == 1 { "" } else { "s" },
            s.api,
            s.from,
            s.to
        );
        for w in &s.planned {
            out.push_str(&format!("  {w}\n"));
        }
        return out;
    }
    format!(
        "fetched {} window{} from {} ({}..{}) in {:.2}s: {} failed, {} split, {} jobs ({} recreated), {} retries, {} token refreshes, {} downloads resumed\n\
         records read {} = written {} + duplicates {} + rejected {}\n\
         {} files in {} partitions\n",
        s.windows, if s.windows == 1 { "" } else { "s" }, s.api, s.from, s.to, s.seconds, s.windows_failed, s.windows_split, s.jobs,
        s.jobs_recreated, s.retries, s.token_refreshes, s.resumed_downloads,
        s.records_read, s.written, s.duplicates, s.rejected, s.files, s.partitions
    )
}
