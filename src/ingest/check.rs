//! The invariants of scan → decode on arbitrary bytes, checked by panicking.
//!
//! Shared by the `cargo fuzz` targets in `fuzz/` and by the stable test that
//! runs every committed seed and regression file in `testdata/fuzz/` through
//! the same path (so CI without nightly exercises them too). Nothing here is
//! on the conversion path.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

use super::decode::{decode_chunk, DecodedChunk};
use super::interface::{is_json_space, Chunk};
use super::scan::Scanner;
use crate::lake::{file_schema, Col};
use crate::time::{day_of, format_day, parse_day, parse_time, FIRST_DAY, LAST_DAY};

/// The record size limit the checks scan with: small, so records over it are common.
pub const LIMIT: usize = 4096;
/// Decompressed bytes a member may yield before the check treats it as ended, so a
/// small zip or gzip bomb stays a fast input. 256 KiB is 64 records at `LIMIT`:
/// room for every scanner state, and it keeps the `member` fuzzer near 1k runs/s
/// (at 8 MiB it spent its time scanning inflated bombs, ~150 runs/s).
pub const MEMBER_CAP: usize = 256 << 10;

/// What one member came to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MemberSummary {
    /// Records the scanner handed out (oversized ones included).
    pub records: u64,
    pub rows: u64,
    pub rejects: u64,
    pub oversized: u64,
    /// The break that ended the member, from the scanner or a decoder.
    pub brk: Option<String>,
}

/// A reader that keeps a copy of every byte it hands out, up to `cap` (then: end of stream).
struct Recording<R> {
    inner: R,
    seen: Vec<u8>,
    cap: usize,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = self.cap - self.seen.len();
        let want = buf.len().min(room);
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

fn is_separator(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\n' | b'\r' | b'\t' | b',' | b'[' | b']' | 0xEF | 0xBB | 0xBF
    )
}

/// Scans `reader` with records limited to `limit` bytes, decodes every chunk, and
/// checks what must hold whatever the bytes. Panics when something does not.
pub fn check_member(reader: impl Read, limit: usize) -> MemberSummary {
    let mut rec = Recording {
        inner: reader,
        seen: Vec::new(),
        cap: MEMBER_CAP,
    };
    let mut scanner = Scanner::with_limit(&mut rec, limit);
    let mut chunks = Vec::new();
    let mut scan_break = None;
    loop {
        match scanner.next_chunk() {
            Ok(Some(c)) => chunks.push(c),
            Ok(None) => break,
            Err(b) => {
                scan_break = Some(b);
                break;
            }
        }
    }
    // Once ended, a scanner stays ended.
    assert!(
        matches!(scanner.next_chunk(), Ok(None)),
        "scanner yields after its end"
    );
    let total_records = scanner.records();
    drop(scanner);
    let input = rec.seen;
    let len = input.len() as u64;

    let mut sum = MemberSummary::default();
    // Member offset up to which bytes are records or separators.
    let mut covered = 0u64;
    let mut next_index = 0u64;
    let mut decode_break = None;
    for chunk in chunks {
        assert_eq!(
            chunk.first_index, next_index,
            "chunk indices are contiguous"
        );
        assert!(chunk.base_offset >= covered, "chunks are in order");
        if let Some(o) = &chunk.oversized {
            assert!(chunk.records.is_empty() && chunk.data.is_empty());
            assert_eq!(o.offset, chunk.base_offset);
            assert!(
                o.len as usize > limit,
                "an oversized record is over the limit"
            );
            assert!(o.offset + o.len <= len, "oversized record past the input");
            let bytes = &input[o.offset as usize..(o.offset + o.len) as usize];
            gap(&input, covered, o.offset);
            assert!(!is_json_space(bytes[0]));
            let digest: String = Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(o.sha256, digest, "oversized digest");
            if let Ok(f) = &o.spool {
                let kept = std::fs::read(f.path()).expect("spool readable");
                assert_eq!(kept, bytes, "spooled bytes are the record's");
            }
            covered = o.offset + o.len;
            next_index += 1;
            sum.records += 1;
            sum.oversized += 1;
            continue;
        }
        assert!(!chunk.records.is_empty(), "a chunk has records");
        assert!(chunk.base_offset + chunk.data.len() as u64 <= len);
        let mut prev_end = 0u32;
        for &(a, b) in &chunk.records {
            assert!(
                a >= prev_end && a < b && b as usize <= chunk.data.len(),
                "record range"
            );
            assert!((b - a) as usize <= limit, "a record within the limit");
            let at = chunk.base_offset + a as u64;
            gap(&input, covered, at);
            let raw = &chunk.data[a as usize..b as usize];
            assert_eq!(
                raw,
                &input[at as usize..at as usize + raw.len()],
                "record bytes"
            );
            assert!(!is_json_space(raw[0]));
            covered = at + raw.len() as u64;
            prev_end = b;
        }
        next_index += chunk.records.len() as u64;
        sum.records += chunk.records.len() as u64;
        let d = check_decoded(chunk);
        sum.rows += d.slices.iter().map(|s| s.rows.len() as u64).sum::<u64>();
        sum.rejects += d.rejects.len() as u64;
        if let Some(b) = d.brk {
            // A syntax error ends the member: conversion stops reading there.
            decode_break = Some(b);
            break;
        }
    }
    if decode_break.is_none() {
        assert_eq!(next_index, total_records, "every record was handed out");
    }
    match (&decode_break, &scan_break) {
        (Some(b), _) | (None, Some(b)) => {
            assert!(
                b.offset <= len,
                "break at {} past the input ({len})",
                b.offset
            );
            sum.brk = Some(format!("{}: {}", b.offset, b.reason));
        }
        (None, None) => {
            // A clean end: nothing after the last record but separators.
            gap(&input, covered, len);
        }
    }
    sum
}

/// The bytes between records are separators only.
fn gap(input: &[u8], from: u64, to: u64) {
    assert!(from <= to && to as usize <= input.len());
    let g = &input[from as usize..to as usize];
    assert!(
        g.iter().all(|&c| is_separator(c)),
        "non-separator bytes between records at {from}..{to}: {:?}",
        String::from_utf8_lossy(g)
    );
}

/// Decodes a chunk and checks the result against the chunk; also decodes it along
/// the record-by-record UTF-8 path and checks both paths agree. First, for every record,
/// that DPoD's fast path and its general decoder make the same row (or the fast path
/// leaves the record).
pub fn check_decoded(chunk: Chunk) -> DecodedChunk {
    let n = chunk.records.len();
    for &(a, b) in &chunk.records {
        if let Ok(raw) = std::str::from_utf8(&chunk.data[a as usize..b as usize]) {
            assert!(
                super::decode::fast_path_agrees(raw),
                "the fast path and the general decoder differ on {raw:?}"
            );
        }
    }
    let chunk = Arc::new(chunk);
    let d = decode_chunk(chunk.clone());
    let read = d.records_read as usize;
    assert!(read <= n, "records_read {read} > {n}");
    assert_eq!(
        d.brk.is_some(),
        read < n,
        "a break iff not every record was read"
    );
    check_rows(&d, read);
    // What serde_json thinks of each record agrees with the decoder.
    for (p, &(a, b)) in chunk.records.iter().enumerate().take(read + 1).take(n) {
        let raw = &chunk.data[a as usize..b as usize];
        let utf8_reject = d
            .rejects
            .iter()
            .any(|(q, r)| *q as usize == p && r.code == "invalid_utf8");
        if utf8_reject {
            assert!(std::str::from_utf8(raw).is_err());
            continue;
        }
        let valid = serde_json::from_slice::<IgnoredAny>(raw).is_ok();
        assert_eq!(
            valid,
            p < read,
            "record {p} valid JSON {valid}, read {read}"
        );
    }
    if let Some(b) = &d.brk {
        let (a, e) = chunk.records[read];
        let from = chunk.base_offset + a as u64;
        assert!(b.offset >= from && b.offset <= chunk.base_offset + e as u64);
    }
    // The same records in a chunk that is not valid UTF-8 as a whole take the
    // record-by-record path: the outcome must be the same.
    if std::str::from_utf8(&chunk.data).is_ok() {
        let mut data = Vec::with_capacity(chunk.data.len() + 1);
        data.push(0xFF);
        data.extend_from_slice(&chunk.data);
        let other = decode_chunk(Arc::new(Chunk {
            data,
            records: chunk.records.iter().map(|&(a, b)| (a + 1, b + 1)).collect(),
            base_offset: chunk.base_offset,
            first_index: chunk.first_index,
            oversized: None,
            origins: Vec::new(),
        }));
        assert_eq!(other.records_read, d.records_read);
        assert_eq!(other.rejects, d.rejects);
        assert_eq!(other.time_range, d.time_range);
        assert_eq!(
            other.brk.as_ref().map(|b| (b.offset - 1, &b.reason)),
            d.brk.as_ref().map(|b| (b.offset, &b.reason))
        );
        assert_eq!(other.slices.len(), d.slices.len());
        for (x, y) in other.slices.iter().zip(&d.slices) {
            assert_eq!(x.key, y.key);
            assert_eq!(x.rows, y.rows);
            assert_eq!(x.batch, y.batch);
        }
    }
    d
}

/// The rows and rejects of a decoded chunk whose first `read` records were read: each
/// record read is a row or a reject exactly once (rejects in order, rows in record order
/// within a slice), one slice per (tenant, day) with a non-blank tenant and the file
/// schema, each row in its slice's day (0000-9999) with a non-empty trace ID and its
/// hash, and `time_range` the rows' earliest and latest time.
fn check_rows(d: &DecodedChunk, read: usize) {
    let mut seen = vec![0u8; read];
    for &(p, _) in &d.rejects {
        assert!((p as usize) < read, "reject position {p} not read");
        seen[p as usize] += 1;
    }
    assert!(
        d.rejects.windows(2).all(|w| w[0].0 < w[1].0),
        "rejects in order"
    );
    let schema = file_schema();
    let mut keys = Vec::new();
    let mut lo_hi: Option<(i64, i64)> = None;
    for s in &d.slices {
        assert!(!s.rows.is_empty());
        assert!((FIRST_DAY..=LAST_DAY).contains(&s.key.day));
        assert!(!s.key.tenant.trim().is_empty());
        assert_eq!(s.batch.schema(), schema);
        assert_eq!(s.batch.num_rows(), s.rows.len());
        assert_eq!(s.hashes.len(), s.rows.len());
        assert!(
            s.rows.windows(2).all(|w| w[0] < w[1]),
            "rows in record order"
        );
        keys.push(s.key.clone());
        let times = s
            .batch
            .column(Col::Time as usize)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let trace = s.batch.column(Col::TraceId as usize).as_string::<i32>();
        assert_eq!(times.null_count(), 0);
        assert_eq!(trace.null_count(), 0);
        for (k, &p) in s.rows.iter().enumerate() {
            assert!((p as usize) < read, "row position {p} not read");
            seen[p as usize] += 1;
            let t = times.value(k);
            assert_eq!(day_of(t), s.key.day, "a row in its day");
            lo_hi = Some(lo_hi.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
            assert!(!trace.value(k).is_empty());
            assert_eq!(s.hashes[k], crate::lake::rows::trace_hash(trace.value(k)));
        }
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "each record read is a row or a reject, once"
    );
    assert_eq!(d.time_range, lo_hi, "time range of the rows");
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len(), "one slice per partition");
}

/// The record size limit [`check_cloudhsm`] frames with: small, so fuzzed inputs reach
/// the path of an event over the limit.
pub const CLOUDHSM_LIMIT: usize = 1024;

/// Frames `data` as an AWS CloudHSM member in each of its forms and decodes every chunk:
/// chunks come in order with running indices, each record inside its chunk and within
/// the limit, located inside the input (in the text forms, at the very bytes it holds),
/// the rows as [`check_rows`] has them, every record read; a break lies within the input
/// and ends the member.
pub fn check_cloudhsm(data: &[u8]) {
    use super::cloudhsm::{decode_chunk, Form, Framer};
    use super::interface::Framer as _;
    let ctx = super::DecodeContext {
        tenant: Some(Arc::from("t")),
    };
    let forms = [
        Form::TextBlocks,
        Form::S3Export,
        Form::CloudWatchJson,
        Form::Subscription,
    ];
    for form in forms {
        let mut r = data;
        let mut framer = Framer::new(&mut r, form, CLOUDHSM_LIMIT);
        let mut next_index = 0u64;
        loop {
            let chunk = match framer.next_chunk() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(b) => {
                    assert!(b.offset <= data.len() as u64, "break past the input");
                    break;
                }
            };
            let n = chunk.records.len();
            assert!(n > 0, "an empty chunk");
            assert_eq!(chunk.first_index, next_index, "indices run on");
            assert_eq!(chunk.origins.len(), n, "one origin per event");
            next_index += n as u64;
            let mut end = 0u32;
            for (&(a, b), (_, offset)) in chunk.records.iter().zip(&chunk.origins) {
                assert!(end <= a && a <= b && b as usize <= chunk.data.len());
                assert!(
                    (b - a) as usize <= CLOUDHSM_LIMIT,
                    "an event over the limit"
                );
                assert!(
                    *offset <= data.len() as u64,
                    "an event located past the input"
                );
                if matches!(form, Form::TextBlocks | Form::S3Export) {
                    let at = *offset as usize;
                    let text = &chunk.data[a as usize..b as usize];
                    assert_eq!(
                        data.get(at..at + text.len()),
                        Some(text),
                        "the input's bytes"
                    );
                }
                end = b;
            }
            let d = decode_chunk(Arc::new(chunk), form, &ctx);
            assert_eq!(d.records_read, n as u64, "every event read");
            assert!(d.brk.is_none());
            check_rows(&d, n);
        }
        assert!(
            matches!(framer.next_chunk(), Ok(None)),
            "a framer yields after its end"
        );
    }
}

/// Opens `path` as an export (zip, gzip or plain) and checks each member as
/// [`check_member`] does. `None` when the file is no export at all.
pub fn check_file(path: &Path, limit: usize) -> Option<Vec<(String, MemberSummary)>> {
    let mut out = Vec::new();
    let members = super::for_each_member(path, Arc::new(AtomicU64::new(0)), |name, _, r| {
        out.push((name.to_string(), check_member(r, limit)));
    })
    .ok()?;
    assert_eq!(members.count, out.len(), "members counted as handed out");
    Some(out)
}

/// Checks the time parser on one string: a parsed time lies in years 0000-9999 and
/// its day round-trips through [`format_day`] and [`parse_day`]; a parsed day prints back
/// as the same text.
pub fn check_time(s: &str) {
    if let Some(t) = parse_time(s) {
        let day = day_of(t);
        assert!((FIRST_DAY..=LAST_DAY).contains(&day), "{s:?} → day {day}");
        let text = format_day(day);
        assert_eq!(text.len(), 10, "{text}");
        assert_eq!(parse_day(&text), Some(day), "{s:?}: {text}");
        // Given in UTC, the day and time of day are the ones written.
        let tail = s[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
        if matches!(tail, " UTC" | "Z" | "z" | " Z") {
            assert_eq!(text, s[..10], "{s:?}");
            let secs = t.rem_euclid(86_400_000_000) / 1_000_000;
            let b = s.as_bytes();
            let two = |i: usize| ((b[i] - b'0') * 10 + (b[i + 1] - b'0')) as i64;
            assert_eq!(secs, two(11) * 3600 + two(14) * 60 + two(17), "{s:?}");
        }
    }
    if let Some(d) = parse_day(s) {
        assert_eq!(format_day(d), s, "a day prints back as written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &str) -> Vec<std::path::PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut out: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        out.sort();
        out
    }

    /// Every committed fuzz seed and minimized finding (`testdata/fuzz/`), and the
    /// conversion test cases, through the checks the fuzz targets run: as whole input
    /// files (the `member` target) and, for files that are not zip or gzip, as member
    /// bytes (the `scan_decode` target).
    #[test]
    fn fuzz_seeds_and_regressions() {
        let mut seen = 0;
        for path in files("testdata/fuzz")
            .into_iter()
            .chain(files("testdata/cases"))
        {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            if name.starts_with("regress-cloudhsm") {
                check_cloudhsm(&bytes);
            }
            let as_file = std::panic::catch_unwind(|| check_file(&path, LIMIT));
            let as_member = std::panic::catch_unwind(|| check_member(&bytes[..], LIMIT));
            let (Ok(summary), Ok(member)) = (as_file, as_member) else {
                panic!("{name}: a check failed (see the panic above)");
            };
            match name.as_str() {
                "oversized-between.json" => {
                    assert_eq!(member.oversized, 2, "{member:?}");
                    assert_eq!(
                        (member.rows, member.brk.as_deref()),
                        (2, None),
                        "{member:?}"
                    );
                }
                "oversized-number.ndjson" => assert_eq!(member.oversized, 2, "{member:?}"),
                "zip-mixed-members.zip" => {
                    let members = summary.expect("a zip");
                    assert_eq!(members.len(), 3, "{members:?}");
                    assert_eq!(members[1].1.rows, 1, "the gzip member inside the zip");
                    assert!(members[2].1.brk.is_some(), "{members:?}");
                }
                "trace-id-missing.ndjson" => assert_eq!(member.rows, 7, "{member:?}"),
                _ => {}
            }
            seen += 1;
        }
        assert!(seen >= 20, "only {seen} files");
    }

    #[test]
    fn cloudhsm_samples_hold_the_checks() {
        use std::io::Read as _;
        let mut seen = 0;
        for path in files("testdata/sample/aws-cloudhsm").into_iter().take(2) {
            let mut head = Vec::new();
            let file = std::fs::File::open(&path).unwrap();
            flate2::read::MultiGzDecoder::new(file)
                .take(256 << 10)
                .read_to_end(&mut head)
                .unwrap();
            check_cloudhsm(&head);
            // As the text forms see an event: a block of `name : value` lines.
            let doc: serde_json::Value = serde_json::Deserializer::from_slice(&head)
                .into_iter()
                .nth(1)
                .unwrap()
                .unwrap();
            let block = doc["logEvents"][0]["message"].as_str().unwrap();
            check_cloudhsm(format!("{block}\n\n{block}").as_bytes());
            seen += 1;
        }
        assert_eq!(seen, 2);
    }

    #[test]
    fn times_and_days() {
        for s in [
            "2022-03-10 15:29:01 UTC",
            "2022-03-10 15:29:01.123456789 UTC",
            "2022-03-10T17:29:01.000001+02:00",
            "0000-01-01 00:00:00 UTC",
            "9999-12-31T23:59:59.999999Z",
            "0000-01-01T00:30:00+01:00",
            "2022-03-10t15:29:01z",
            "0000-02-29",
            "9999-12-31",
            "2022-03-10 15:29:01 \u{e9}",
        ] {
            check_time(s);
        }
    }
}
