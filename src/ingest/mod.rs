//! Where bytes enter: finding the input files, sniffing what they are, and
//! streaming each member's records out as chunks.
//!
//! Files are recognised by content, never by name: a zip (one or more
//! members), a gzip stream, or plain text. Inside, each member holds a JSON
//! array of records or NDJSON (see [`scan`]); [`decode`] turns records into rows.

pub mod decode;
pub mod scan;
pub mod time;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Error;

/// One input file.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub size: u64,
}

impl Source {
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// Expands the inputs (files and directories, recursively) into sources,
/// directories in name order, skipping hidden files.
pub fn list_sources(inputs: &[PathBuf]) -> Result<Vec<Source>, Error> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| Error::io(input, e))?;
        if meta.is_dir() {
            walk(input, &mut out)?;
        } else {
            out.push(Source {
                path: input.clone(),
                size: meta.len(),
            });
        }
    }
    Ok(out)
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
                path,
                size: meta.len(),
            });
        }
    }
    Ok(())
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

/// Calls `each` with every member of the source: its name and a reader of its
/// decompressed bytes. A plain or gzip file is one member named after the file.
/// `Err` when the file cannot be opened as an export at all.
pub fn for_each_member(
    path: &Path,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    mut each: impl FnMut(&str, &mut dyn Read),
) -> Result<usize, Error> {
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
            let mut members = 0;
            for i in 0..zip.len() {
                let name = zip.name_for_index(i).unwrap_or("?").to_string();
                let mut m = match zip.by_index(i) {
                    Ok(m) => m,
                    Err(e) => {
                        // A member we cannot open: report it under its name.
                        let mut failing = FailingReader(Some(std::io::Error::other(e.to_string())));
                        each(&name, &mut failing);
                        members += 1;
                        continue;
                    }
                };
                if m.is_dir() {
                    continue;
                }
                members += 1;
                let mut inner = member_reader(&mut m);
                each(&name, &mut inner);
            }
            Ok(members)
        }
        Kind::Gzip => {
            let mut r = BufReader::with_capacity(
                1 << 20,
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)),
            );
            check_json_start(path, &mut r, "gzip data")?;
            each(&base, &mut r);
            Ok(1)
        }
        Kind::Plain => {
            let mut r = BufReader::with_capacity(1 << 20, file);
            check_json_start(path, &mut r, "plain file")?;
            each(&base, &mut r);
            Ok(1)
        }
    }
}

/// A whole file that does not start like JSON is not an export: rejected as a source.
/// (A read error here is left for the scanner, which reports it with its offset.)
fn check_json_start(path: &Path, r: &mut impl std::io::BufRead, what: &str) -> Result<(), Error> {
    let Ok(buf) = r.fill_buf() else { return Ok(()) };
    let buf = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    match buf.iter().find(|c| !c.is_ascii_whitespace()) {
        None | Some(b'[') | Some(b'{') => Ok(()),
        Some(_) => Err(Error::Source {
            path: path.to_path_buf(),
            reason: format!("not an export: {what} that is neither a zip, gzip nor JSON"),
        }),
    }
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

/// A member's bytes, gunzipped when the member is itself gzip.
fn member_reader<'a, R: Read + 'a>(r: R) -> Box<dyn Read + 'a> {
    let mut r = BufReader::with_capacity(256 << 10, r);
    let gz = matches!(std::io::BufRead::fill_buf(&mut r), Ok(b) if sniff(b) == Kind::Gzip);
    if gz {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
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
    use std::sync::Arc;
    let sources = list_sources(inputs)?;
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
                        for_each_member(&src.path, bytes_in.clone(), |_, r| {
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
