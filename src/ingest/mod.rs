//! Where bytes enter: finding the input files, sniffing what they are, and
//! streaming each member's records out as chunks.
//!
//! Files are recognised by content, never by name: a zip (one or more
//! members), a gzip stream, or plain text. Inside, each member is in one source
//! format ([`format`]), judged by its first bytes: DPoD's JSON array or NDJSON
//! ([`scan`] frames it, [`decode`] turns records into rows), or AWS CloudHSM audit
//! logs as CloudWatch Logs hands them out ([`cloudhsm`]).

pub mod azure;
pub mod check;
pub mod cloudhsm;
pub mod decode;
pub mod format;
pub mod gcp;
pub mod interface;
pub mod json;
pub mod scan;
pub mod vault;

pub use format::Format;
pub use interface::{DecodeContext, Framer, Origin};

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::lake::store::{is_url, redact, store_for_url};
use crate::Error;

/// Where an input lives.
#[derive(Clone)]
pub enum SourceLoc {
    Local(PathBuf),
    /// An object in S3, GCS or Azure.
    Object {
        store: Arc<dyn ObjectStore>,
        path: object_store::path::Path,
    },
    /// A plain or signed HTTPS URL (the query string is kept, never shown).
    Http(url::Url),
}

/// One input file.
#[derive(Clone)]
pub struct Source {
    /// How it is shown: the path, or the URL without credentials or query string.
    pub name: String,
    pub size: u64,
    pub loc: SourceLoc,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({})", self.name)
    }
}

impl Source {
    pub fn name(&self) -> String {
        self.name.clone()
    }
}

/// Expands the inputs into sources: local files and directories (recursively, in name
/// order, hidden files skipped), `s3://`/`gs://`/`az://` objects or prefixes (every object
/// below, in key order), and `http(s)://` URLs.
pub async fn list_sources(
    inputs: &[String],
    options: &[(String, String)],
) -> Result<Vec<Source>, Error> {
    let mut out = Vec::new();
    for input in inputs {
        if input.starts_with("http://") || input.starts_with("https://") {
            let url = url::Url::parse(input).map_err(|e| {
                Error::Usage(format!(
                    "{}: not a URL: {e}",
                    input.split('?').next().unwrap_or(input)
                ))
            })?;
            out.push(Source {
                name: redact(&url),
                size: 0,
                loc: SourceLoc::Http(url),
            });
        } else if is_url(input) && !input.starts_with("file://") {
            let url = url::Url::parse(input)
                .map_err(|e| Error::Usage(format!("{input}: not a URL: {e}")))?;
            let store = store_for_url(&url, options)?;
            let prefix = object_store::path::Path::from_url_path(url.path())
                .map_err(|e| Error::Usage(format!("{input}: {e}")))?;
            let shown = |p: &object_store::path::Path| {
                format!("{}://{}/{}", url.scheme(), url.authority(), p)
            };
            let mut found = Vec::new();
            if !input.ends_with('/') {
                if let Ok(meta) = store.head(&prefix).await {
                    found.push(meta);
                }
            }
            if found.is_empty() {
                let mut listed: Vec<object_store::ObjectMeta> =
                    store.list(Some(&prefix)).try_collect().await.map_err(|e| {
                        Error::Usage(format!("{}: {}", redact(&url), one_line(&e.to_string())))
                    })?;
                listed.retain(|m| m.location.filename().is_some_and(|n| !n.starts_with('.')));
                listed.sort_by(|a, b| a.location.cmp(&b.location));
                found = listed;
            }
            if found.is_empty() {
                return Err(Error::Usage(format!("{}: no objects there", redact(&url))));
            }
            for m in found {
                out.push(Source {
                    name: shown(&m.location),
                    size: m.size,
                    loc: SourceLoc::Object {
                        store: store.clone(),
                        path: m.location,
                    },
                });
            }
        } else {
            let input = PathBuf::from(input.strip_prefix("file://").unwrap_or(input));
            let meta = std::fs::metadata(&input).map_err(|e| Error::io(&input, e))?;
            if meta.is_dir() {
                walk(&input, &mut out)?;
            } else {
                out.push(Source {
                    name: input.display().to_string(),
                    size: meta.len(),
                    loc: SourceLoc::Local(input),
                });
            }
        }
    }
    tracing::info!(
        sources = out.len(),
        bytes = out.iter().map(|s| s.size).sum::<u64>(),
        "sources found"
    );
    for s in &out {
        tracing::debug!(source = %s.name, size = s.size, "source");
    }
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn walk(dir: &Path, out: &mut Vec<Source>) -> Result<(), Error> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if meta.is_file() {
            out.push(Source {
                name: path.display().to_string(),
                size: meta.len(),
                loc: SourceLoc::Local(path),
            });
        }
    }
    Ok(())
}

/// A local file holding the source's bytes: the file itself, or a download spooled to a
/// temporary file (zip needs its central directory at the end; memory stays flat).
pub fn materialize(
    source: &Source,
    rt: &tokio::runtime::Handle,
) -> Result<(PathBuf, Option<tempfile::NamedTempFile>), Error> {
    use std::io::Write;
    let tmp_dir = std::env::temp_dir();
    let fail = |e: String| Error::Source {
        path: PathBuf::from(&source.name),
        reason: format!("download failed: {e}"),
    };
    match &source.loc {
        SourceLoc::Local(p) => Ok((p.clone(), None)),
        SourceLoc::Object { store, path } => {
            let mut tmp = tempfile::NamedTempFile::new().map_err(|e| Error::io(&tmp_dir, e))?;
            rt.block_on(async {
                let mut stream = store
                    .get(path)
                    .await
                    .map_err(|e| fail(one_line(&e.to_string())))?
                    .into_stream();
                while let Some(chunk) = stream
                    .try_next()
                    .await
                    .map_err(|e| fail(one_line(&e.to_string())))?
                {
                    tmp.write_all(&chunk).map_err(|e| Error::io(&tmp_dir, e))?;
                }
                Ok::<_, Error>(())
            })?;
            tmp.flush().map_err(|e| Error::io(&tmp_dir, e))?;
            Ok((tmp.path().to_path_buf(), Some(tmp)))
        }
        SourceLoc::Http(url) => {
            let mut tmp = tempfile::NamedTempFile::new().map_err(|e| Error::io(&tmp_dir, e))?;
            rt.block_on(async {
                let client = reqwest::Client::builder()
                    .connect_timeout(std::time::Duration::from_secs(10))
                    .timeout(std::time::Duration::from_secs(3600))
                    .build()
                    .map_err(|e| fail(e.without_url().to_string()))?;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    // A failed attempt starts over: the file is rewritten from the start.
                    tmp.as_file_mut()
                        .set_len(0)
                        .map_err(|e| Error::io(&tmp_dir, e))?;
                    let mut w = std::io::BufWriter::new(tmp.as_file_mut());
                    std::io::Seek::seek(&mut w, std::io::SeekFrom::Start(0))
                        .map_err(|e| Error::io(&tmp_dir, e))?;
                    let result: Result<(), String> = async {
                        let resp = client
                            .get(url.clone())
                            .send()
                            .await
                            .map_err(|e| e.without_url().to_string())?;
                        let status = resp.status();
                        if !status.is_success() {
                            return Err(format!("HTTP {status}"));
                        }
                        let mut stream = resp.bytes_stream();
                        while let Some(chunk) = stream
                            .try_next()
                            .await
                            .map_err(|e| e.without_url().to_string())?
                        {
                            w.write_all(&chunk).map_err(|e| e.to_string())?;
                        }
                        w.flush().map_err(|e| e.to_string())
                    }
                    .await;
                    match result {
                        Ok(()) => return Ok(()),
                        Err(e) if attempt < 4 && !e.starts_with("HTTP 4") => {
                            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt))
                                .await;
                        }
                        Err(e) => return Err(fail(e)),
                    }
                }
            })?;
            Ok((tmp.path().to_path_buf(), Some(tmp)))
        }
    }
}

/// Hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// What a file or member holds, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zip,
    Gzip,
    Plain,
}

pub fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Kind::Zip
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Kind::Gzip
    } else {
        Kind::Plain
    }
}

/// Counts the bytes read through it, for progress.
pub struct Counting<R> {
    inner: R,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R> Counting<R> {
    pub fn new(inner: R, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        Counting { inner, counter }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: std::io::Seek> std::io::Seek for Counting<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// What [`for_each_member`] found in a source.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Members {
    /// Members handed to the caller.
    pub count: usize,
    /// Zip entries that are no export (directories, macOS metadata), by name.
    pub skipped: Vec<String>,
}

/// Whether a zip entry is no export: a directory, or metadata an archiver adds
/// (`__MACOSX/` and AppleDouble `._*` files from macOS, `.DS_Store`, `Thumbs.db`).
pub fn is_junk_entry(name: &str) -> bool {
    let base = name
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(name);
    name.ends_with('/')
        || name.starts_with("__MACOSX/")
        || name.contains("/__MACOSX/")
        || base.starts_with("._")
        || base == ".DS_Store"
        || base.eq_ignore_ascii_case("Thumbs.db")
}

/// Calls `each` with every member of the source: its name, its format (judged by its
/// first bytes) and a reader of its decompressed bytes. A plain or gzip file is one
/// member named after the file. `Err` when the file cannot be opened as an export at all.
pub fn for_each_member(
    path: &Path,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    mut each: impl FnMut(&str, Format, &mut dyn Read),
) -> Result<Members, Error> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = [0u8; 4];
    let n = read_head(&mut file, &mut head).map_err(|e| Error::io(path, e))?;
    let file = Counting::new(file, counter);
    let base = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match sniff(&head[..n]) {
        Kind::Zip => {
            let mut zip =
                zip::ZipArchive::new(BufReader::with_capacity(1 << 20, file)).map_err(|e| {
                    Error::Source {
                        path: path.to_path_buf(),
                        reason: format!("not a readable zip archive: {e}"),
                    }
                })?;
            let mut members = Members::default();
            for i in 0..zip.len() {
                let name = zip.name_for_index(i).unwrap_or("?").to_string();
                if is_junk_entry(&name) {
                    members.skipped.push(name);
                    continue;
                }
                let mut m = match zip.by_index(i) {
                    Ok(m) => m,
                    Err(e) => {
                        // A member we cannot open: report it under its name.
                        let mut failing = FailingReader(Some(std::io::Error::other(e.to_string())));
                        each(&name, Format::Dpod, &mut failing);
                        members.count += 1;
                        continue;
                    }
                };
                if m.is_dir() {
                    members.skipped.push(name);
                    continue;
                }
                members.count += 1;
                let (format, mut inner) = member_reader(&mut m);
                each(&name, format, &mut inner);
            }
            Ok(members)
        }
        Kind::Gzip => {
            let mut r = BufReader::with_capacity(
                1 << 20,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)),
            );
            let format = detect_whole(path, &mut r, "gzip data")?;
            each(&base, format, &mut r);
            Ok(Members {
                count: 1,
                skipped: vec![],
            })
        }
        Kind::Plain => {
            let mut r = BufReader::with_capacity(1 << 20, file);
            let format = detect_whole(path, &mut r, "plain file")?;
            each(&base, format, &mut r);
            Ok(Members {
                count: 1,
                skipped: vec![],
            })
        }
    }
}

/// The format of a whole (plain or gzip) file; one that no format knows is not an export:
/// rejected as a source. (A read error here is left for the framer, which reports it
/// with its offset.)
fn detect_whole(path: &Path, r: &mut impl std::io::BufRead, what: &str) -> Result<Format, Error> {
    let Ok(buf) = r.fill_buf() else {
        return Ok(Format::Dpod);
    };
    Format::detect(buf).ok_or_else(|| Error::Source {
        path: path.to_path_buf(),
        reason: format!(
            "not an export: {what} that is neither a zip, gzip, JSON nor AWS CloudHSM audit text"
        ),
    })
}

fn read_head(f: &mut File, head: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Seek;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    f.seek(std::io::SeekFrom::Start(0))?;
    Ok(n)
}

/// A member's bytes, gunzipped when the member is itself gzip, and their format (DPoD
/// when no format knows them: its framer then reports where they stop making sense).
fn member_reader<'a, R: Read + 'a>(r: R) -> (Format, Box<dyn Read + 'a>) {
    use std::io::BufRead;
    let mut r = BufReader::with_capacity(256 << 10, r);
    let gz = matches!(r.fill_buf(), Ok(b) if sniff(b) == Kind::Gzip);
    if gz {
        let mut inner = BufReader::with_capacity(256 << 10, flate2::read::MultiGzDecoder::new(r));
        let format = inner.fill_buf().ok().and_then(Format::detect);
        (format.unwrap_or_default(), Box::new(inner))
    } else {
        let format = r.fill_buf().ok().and_then(Format::detect);
        (format.unwrap_or_default(), Box::new(r))
    }
}

struct FailingReader(Option<std::io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| std::io::Error::other("member unreadable")))
    }
}

/// Reads and inflates every member of the inputs on `threads` threads (0: all cores), discarding
/// the bytes: the floor any conversion stands on. Returns (bytes in, bytes out, seconds).
pub fn inflate_only(inputs: &[PathBuf], threads: usize) -> Result<(u64, u64, f64), Error> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let mut sources = Vec::new();
    for i in inputs {
        walk_or_file(i, &mut sources)?;
    }
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        threads
    };
    let started = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    let bytes_in = Arc::new(AtomicU64::new(0));
    let bytes_out = AtomicU64::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(), Error> {
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(src) = sources.get(i) else {
                            return Ok(());
                        };
                        let SourceLoc::Local(path) = &src.loc else {
                            return Ok(());
                        };
                        for_each_member(path, bytes_in.clone(), |_, _, r| {
                            while let Ok(n) = r.read(&mut buf) {
                                if n == 0 {
                                    break;
                                }
                                bytes_out.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        })?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("inflate thread"))
    })?;
    Ok((
        bytes_in.load(Ordering::Relaxed),
        bytes_out.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    ))
}

fn walk_or_file(p: &Path, out: &mut Vec<Source>) -> Result<(), Error> {
    let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
    if meta.is_dir() {
        walk(p, out)
    } else {
        out.push(Source {
            name: p.display().to_string(),
            size: meta.len(),
            loc: SourceLoc::Local(p.to_path_buf()),
        });
        Ok(())
    }
}

/// The interface stands below its vendors: the modules of `src/ingest/` import one
/// another (`super::x`, `crate::ingest::x`, outside tests) without a circle, `interface`
/// imports none of them, and no vendor imports another vendor or the registry.
#[cfg(test)]
mod import_graph {
    use std::collections::{BTreeMap, BTreeSet};

    /// Module → the sibling modules its non-test code names.
    fn graph() -> BTreeMap<String, BTreeSet<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ingest");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|n| n != "mod")
            .collect();
        names.sort();
        let mut g = BTreeMap::new();
        for n in &names {
            let text = std::fs::read_to_string(dir.join(format!("{n}.rs"))).unwrap();
            // Code before the first test module.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let mut uses = BTreeSet::new();
            for m in &names {
                let named = [
                    format!("super::{m}::"),
                    format!("super::{m};"),
                    format!("super::{{{m}"),
                    format!("crate::ingest::{m}"),
                    format!(", {m},"),
                    format!(", {m}}}"),
                ];
                let braces = code
                    .lines()
                    .filter(|l| l.contains("use super::{"))
                    .any(|l| {
                        named[4..].iter().any(|p| l.contains(p.as_str())) || l.contains(&named[2])
                    });
                if m != n && (named[..4].iter().any(|p| code.contains(p.as_str())) || braces) {
                    uses.insert(m.clone());
                }
            }
            g.insert(n.clone(), uses);
        }
        g
    }

    #[test]
    fn has_no_circle_and_the_interface_imports_no_vendor() {
        let g = graph();
        assert!(
            g["interface"].is_empty(),
            "interface imports {:?}",
            g["interface"]
        );
        for vendor in ["azure", "cloudhsm", "decode", "gcp", "vault"] {
            let others: Vec<_> = g[vendor]
                .iter()
                .filter(|m| !["interface", "json", "scan"].contains(&m.as_str()))
                .collect();
            assert!(others.is_empty(), "{vendor} imports {others:?}");
        }
        assert!(g["format"].contains("azure") && g["format"].contains("vault"));
        // Depth-first search for a back edge.
        fn visit<'a>(
            n: &'a str,
            g: &'a BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) {
            if done.contains(n) {
                return;
            }
            assert!(!path.contains(&n), "import circle: {path:?} -> {n}");
            path.push(n);
            for m in &g[n] {
                visit(m, g, path, done);
            }
            path.pop();
            done.insert(n);
        }
        let mut done = BTreeSet::new();
        for n in g.keys() {
            visit(n, &g, &mut Vec::new(), &mut done);
        }
    }
}
