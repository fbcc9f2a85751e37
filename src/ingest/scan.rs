//! Splits a member's byte stream into records without parsing them.
//!
//! A member holds a JSON array of values or a stream of values separated by
//! white space (NDJSON). The scanner finds where each top-level value starts
//! and ends (tracking strings and nesting only) and hands out chunks of a few
//! megabytes of whole records, so memory never grows with the member and the
//! real parsing can run on other threads. A stream that breaks (truncated,
//! stray bytes, a read error) ends with a [`Break`] at its byte offset.
//! A record over the size limit is not held: its bytes are streamed to a
//! spool file while its end is found (see [`Oversized`]), and the records
//! after it go on as usual. White space between records never counts
//! toward a record's size.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use super::interface::{is_json_space, Break, Chunk, Framer, Oversized, CHUNK_TARGET};

/// Default size limit of one record: a larger one is rejected as `record_too_large`.
pub const MAX_RECORD: usize = 256 << 20;
const READ_BLOCK: usize = 1 << 20;
/// The first chunk's target size; each next one doubles up to [`CHUNK_TARGET`]. Decoders
/// wait for the first chunk, so a small one sets both cores to work after one read
/// instead of four.
const FIRST_CHUNK: usize = 256 << 10;

#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    Start,
    /// Inside `[`, expecting a value or `]`.
    ArrayValue {
        first: bool,
    },
    /// Inside `[`, after a value: expecting `,` or `]`.
    ArrayNext,
    Ndjson,
    /// After the array of a `{"records": [...]}` envelope: expecting its `}`.
    EnvelopeEnd,
    Done,
}

pub struct Scanner<R> {
    reader: R,
    buf: Vec<u8>,
    /// Scan position in `buf`; everything before it is whole records or separators.
    pos: usize,
    /// Member offset of `buf[0]`.
    base: u64,
    eof: bool,
    state: State,
    next_index: u64,
    broken: bool,
    pending: Option<Break>,
    /// A read error, reported once the bytes read before it are used up.
    read_error: Option<Break>,
    /// Records larger than this many bytes are streamed aside (see [`Oversized`]).
    limit: usize,
    /// Records come in `{"records": [...]}` envelopes (Azure's older blobs, Event Hubs),
    /// one or more, concatenated.
    envelope: bool,
    /// The size at which the chunk being cut is complete (see [`FIRST_CHUNK`]).
    target: usize,
}

enum Value {
    Complete(usize),
    NeedMore,
    Bad(usize, &'static str),
}

impl<R: Read> Scanner<R> {
    pub fn new(reader: R) -> Self {
        Scanner::with_limit(reader, MAX_RECORD)
    }

    /// A scanner whose records may be at most `limit` bytes.
    pub fn with_limit(reader: R, limit: usize) -> Self {
        Scanner {
            limit: limit.max(1),
            reader,
            buf: Vec::new(),
            pos: 0,
            base: 0,
            eof: false,
            state: State::Start,
            next_index: 0,
            broken: false,
            pending: None,
            read_error: None,
            envelope: false,
            target: CHUNK_TARGET,
        }
    }

    /// The same, whose first chunk is small (see [`FIRST_CHUNK`]): for a member that
    /// goes to the decoders chunk by chunk. (Vault's framer wants whole-size chunks.)
    pub fn ramping(self) -> Self {
        Scanner {
            target: FIRST_CHUNK.min(CHUNK_TARGET),
            ..self
        }
    }

    /// A scanner of records in `{"records": [...]}` envelopes, one after another.
    pub fn enveloped(reader: R, limit: usize) -> Self {
        Scanner {
            envelope: true,
            ..Scanner::with_limit(reader, limit)
        }
    }

    /// Where an array of records ends: the envelope's `}` is still to come, or the member.
    fn array_closed(&self) -> State {
        if self.envelope {
            State::EnvelopeEnd
        } else {
            State::Done
        }
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.next_index
    }

    /// The next chunk of records, `Ok(None)` at a clean end, `Err` when the stream breaks.
    /// After an `Err` the scanner yields nothing more.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, Break> {
        if self.broken {
            return match self.pending.take() {
                Some(b) => Err(b),
                None => Ok(None),
            };
        }
        let mut records: Vec<(u32, u32)> = Vec::new();
        let first_index = self.next_index;
        loop {
            if records.last().is_some_and(|r| r.1 as usize >= self.target) {
                break;
            }
            match self.step(&mut records) {
                Ok(true) => continue,
                Ok(false) => {
                    // Need more bytes. A record past the limit is streamed aside, after the
                    // records before it have gone out.
                    if self.in_value() && self.buf.len() - self.pos > self.limit {
                        if !records.is_empty() {
                            break;
                        }
                        return self.skip_oversized().map(Some);
                    }
                    // Separators alone never grow the buffer past a chunk.
                    if !records.is_empty() && self.buf.len() > 2 * CHUNK_TARGET {
                        break;
                    }
                    if self.eof {
                        let end = self.eof_outcome();
                        match end {
                            Ok(()) => {
                                self.state = State::Done;
                                break;
                            }
                            Err(b) => return self.stop(records, first_index, b),
                        }
                    }
                    self.fill(records.first().map(|r| r.0 as usize));
                }
                Err(b) => return self.stop(records, first_index, b),
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.take_chunk(records, first_index)))
    }

    /// The stream broke: the records before the break go out first, the break on the next call.
    fn stop(
        &mut self,
        records: Vec<(u32, u32)>,
        first_index: u64,
        b: Break,
    ) -> Result<Option<Chunk>, Break> {
        self.broken = true;
        if records.is_empty() {
            return Err(b);
        }
        let chunk = self.take_chunk(records, first_index);
        self.pending = Some(b);
        Ok(Some(chunk))
    }

    /// Moves the bytes up to the last record out as a chunk, keeping the rest for later.
    fn take_chunk(&mut self, records: Vec<(u32, u32)>, first_index: u64) -> Chunk {
        // The chunk keeps the bytes before its first record (a separator or two) rather
        // than shifting megabytes to drop them.
        let end = records.last().expect("a chunk has records").1 as usize;
        self.target = (self.target * 2).min(CHUNK_TARGET);
        // The next chunk's buffer is allocated at its full size once, not grown by doubling.
        let mut tail = Vec::with_capacity(CHUNK_TARGET + 2 * READ_BLOCK);
        tail.extend_from_slice(&self.buf[end..]);
        self.buf.truncate(end);
        let data = std::mem::replace(&mut self.buf, tail);
        let base_offset = self.base;
        self.base += end as u64;
        self.pos -= end;
        Chunk {
            data,
            records,
            base_offset,
            first_index,
            oversized: None,
            origins: Vec::new(),
        }
    }

    /// Whether the bytes from `pos` on are the start of a record still being read.
    fn in_value(&self) -> bool {
        matches!(self.state, State::ArrayValue { .. } | State::Ndjson)
            && self.pos < self.buf.len()
            && !is_json_space(self.buf[self.pos])
    }

    /// Streams the record starting at `pos` (already over the limit) to a spool file
    /// until its end, keeping only its digest and range; then scanning goes on after it.
    fn skip_oversized(&mut self) -> Result<Chunk, Break> {
        let offset = self.base + self.pos as u64;
        let index = self.next_index;
        let mut cursor = ValueEnd::new(self.buf[self.pos]);
        let mut hasher = Sha256::new();
        let mut spool = tempfile::NamedTempFile::new()
            .map(|f| std::io::BufWriter::with_capacity(1 << 20, f))
            .map_err(|e| format!("cannot spool the record: {e}"));
        let mut len = 0u64;
        let mut block = std::mem::take(&mut self.buf);
        let mut from = self.pos;
        let rest: Vec<u8> = loop {
            let part = &block[from..];
            let end = cursor.feed(part);
            let take = &part[..end.unwrap_or(part.len())];
            hasher.update(take);
            if let Ok(w) = &mut spool {
                if let Err(e) = w.write_all(take) {
                    spool = Err(format!("cannot spool the record: {e}"));
                }
            }
            len += take.len() as u64;
            if let Some(end) = end {
                break part[end..].to_vec();
            }
            if self.eof {
                if let Some(b) = self.read_error.take() {
                    self.broken = true;
                    return Err(b);
                }
                if cursor.ends_at_eof() {
                    break Vec::new();
                }
                self.broken = true;
                return Err(Break {
                    offset: offset + len,
                    reason: "stream cut short inside a record".into(),
                });
            }
            block.resize(READ_BLOCK, 0);
            from = 0;
            self.read_block(&mut block, 0, offset + len);
        };
        let spool = spool.and_then(|w| {
            w.into_inner()
                .map_err(|e| format!("cannot spool the record: {}", e.error()))
        });
        let mut tail = Vec::with_capacity(CHUNK_TARGET + 2 * READ_BLOCK);
        tail.extend_from_slice(&rest);
        self.buf = tail;
        self.pos = 0;
        self.base = offset + len;
        self.next_index += 1;
        if let State::ArrayValue { .. } = self.state {
            self.state = State::ArrayNext;
        }
        Ok(Chunk {
            data: Vec::new(),
            records: Vec::new(),
            base_offset: offset,
            first_index: index,
            origins: Vec::new(),
            oversized: Some(Oversized {
                offset,
                len,
                sha256: hasher
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                spool,
            }),
        })
    }

    /// Reads another block. `keep_from` is where retained records begin (nothing before it is needed).
    fn fill(&mut self, keep_from: Option<usize>) {
        // Drop separators already scanned past when no record needs them.
        if keep_from.is_none() && self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let old = self.buf.len();
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(old + READ_BLOCK, 0);
        let base = self.base;
        self.read_block(&mut buf, old, base);
        self.buf = buf;
    }

    /// Reads into `buf[from..]` until it is full or the stream ends, then cuts `buf` to
    /// what was read. The end or a read error sets `eof`; the error (at `base` + its
    /// place in `buf`) is kept to report once the bytes read before it are used up.
    fn read_block(&mut self, buf: &mut Vec<u8>, from: usize, base: u64) {
        let mut filled = from;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.read_error = Some(Break {
                        offset: base + filled as u64,
                        reason: format!("read error: {e}"),
                    });
                    self.eof = true;
                    break;
                }
            }
        }
        buf.truncate(filled);
    }

    /// Whether ending the stream in the current state is clean.
    fn eof_outcome(&self) -> Result<(), Break> {
        if let Some(b) = &self.read_error {
            return Err(b.clone());
        }
        let rest = &self.buf[self.pos..];
        let at = self.base + self.pos as u64;
        if let Some(i) = rest.iter().position(|&c| !is_json_space(c)) {
            return Err(Break {
                offset: at + i as u64,
                reason: "stream cut short inside a record".into(),
            });
        }
        match self.state {
            State::Start | State::Ndjson | State::Done => Ok(()),
            State::EnvelopeEnd => Err(Break {
                offset: self.base + self.buf.len() as u64,
                reason: "stream cut short: the {\"records\": [...]} envelope is not closed".into(),
            }),
            State::ArrayValue { .. } | State::ArrayNext => Err(Break {
                offset: self.base + self.buf.len() as u64,
                reason: "stream cut short: the JSON array is not closed".into(),
            }),
        }
    }

    /// One step of the state machine. `Ok(false)`: needs more bytes.
    fn step(&mut self, records: &mut Vec<(u32, u32)>) -> Result<bool, Break> {
        let Some(i) = skip_ws(&self.buf, self.pos) else {
            // White space is consumed: it never counts toward the next record.
            self.pos = self.buf.len();
            return Ok(false);
        };
        let c = self.buf[i];
        let at = |p: usize| self.base + p as u64;
        match self.state {
            State::Start => {
                if self.buf[i..].starts_with(b"\xEF\xBB\xBF") {
                    self.pos = i + 3;
                    return Ok(true);
                }
                if i + 3 > self.buf.len() && !self.eof && c == 0xEF {
                    return Ok(false);
                }
                if self.envelope {
                    return match super::interface::envelope_array(&self.buf[i..]) {
                        Some(array) => {
                            self.pos = self.buf.len() - array.len() + 1;
                            self.state = State::ArrayValue { first: true };
                            Ok(true)
                        }
                        None if !self.eof && self.buf.len() - i < 4096 => Ok(false),
                        None => Err(Break {
                            offset: at(i),
                            reason: "not an envelope: expected {\"records\": [".into(),
                        }),
                    };
                }
                match c {
                    b'[' => {
                        self.pos = i + 1;
                        self.state = State::ArrayValue { first: true };
                    }
                    b'{' => self.state = State::Ndjson,
                    _ => {
                        return Err(Break {
                            offset: at(i),
                            reason: "not JSON: expected '[' or '{'".into(),
                        })
                    }
                }
                Ok(true)
            }
            State::ArrayValue { first } => {
                if c == b']' && first {
                    self.pos = i + 1;
                    self.state = self.array_closed();
                    return Ok(true);
                }
                match self.value(i)? {
                    Some(end) if end - i <= self.limit => {
                        records.push((i as u32, end as u32));
                        self.next_index += 1;
                        self.pos = end;
                        self.state = State::ArrayNext;
                        Ok(true)
                    }
                    // Over the limit (whole or not yet): streamed aside by `next_chunk`.
                    _ => {
                        self.pos = i;
                        self.state = State::ArrayValue { first: false };
                        Ok(false)
                    }
                }
            }
            State::ArrayNext => match c {
                b',' => {
                    self.pos = i + 1;
                    self.state = State::ArrayValue { first: false };
                    Ok(true)
                }
                b']' => {
                    self.pos = i + 1;
                    self.state = self.array_closed();
                    Ok(true)
                }
                _ => Err(Break {
                    offset: at(i),
                    reason: format!("broken JSON: expected ',' or ']' but found {}", show(c)),
                }),
            },
            State::Ndjson => match self.value(i)? {
                Some(end) if end - i <= self.limit => {
                    records.push((i as u32, end as u32));
                    self.next_index += 1;
                    self.pos = end;
                    Ok(true)
                }
                _ => {
                    self.pos = i;
                    Ok(false)
                }
            },
            State::EnvelopeEnd => match c {
                b'}' => {
                    self.pos = i + 1;
                    self.state = State::Start;
                    Ok(true)
                }
                _ => Err(Break {
                    offset: at(i),
                    reason: format!(
                        "broken envelope: expected '}}' after the records but found {}",
                        show(c)
                    ),
                }),
            },
            State::Done => Err(Break {
                offset: at(i),
                reason: format!("unexpected data after the JSON array: {}", show(c)),
            }),
        }
    }

    fn value(&self, i: usize) -> Result<Option<usize>, Break> {
        match scan_value(&self.buf, i, self.eof && self.read_error.is_none()) {
            Value::Complete(end) => Ok(Some(end)),
            Value::NeedMore => Ok(None),
            Value::Bad(p, why) => Err(Break {
                offset: self.base + p as u64,
                reason: why.into(),
            }),
        }
    }
}

fn show(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("'{}'", c as char)
    } else {
        format!("byte 0x{c:02x}")
    }
}

fn skip_ws(buf: &[u8], from: usize) -> Option<usize> {
    buf[from.min(buf.len())..]
        .iter()
        .position(|&c| !is_json_space(c))
        .map(|p| p + from)
}

/// Finds the end of the JSON value starting at `buf[i]` (not a full validation).
fn scan_value(buf: &[u8], i: usize, eof: bool) -> Value {
    match buf[i] {
        b'{' | b'[' => scan_nested(buf, i),
        b'"' => match string_end(buf, i + 1) {
            Some(e) => Value::Complete(e),
            None => Value::NeedMore,
        },
        b'}' | b']' | b',' | b':' => Value::Bad(i, "broken JSON: a value was expected"),
        _ => {
            let n = buf[i..]
                .iter()
                .position(|c| matches!(c, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t'));
            match n {
                Some(n) => Value::Complete(i + n),
                None if eof => Value::Complete(buf.len()),
                None => Value::NeedMore,
            }
        }
    }
}

/// The end of the object or array opening at `buf[i]`, 64 bytes at a time: a block's
/// quotes give the bytes inside strings (each one flips in or out: with no backslash
/// before it, no quote is escaped), and the brackets outside them the depth. From the
/// first backslash on, [`scan_nested_from`] goes on byte by byte with the depth and
/// string state reached, so an escape is read exactly as it always was.
fn scan_nested(buf: &[u8], i: usize) -> Value {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut p = i;
    while p < buf.len() {
        let n = (buf.len() - p).min(64);
        let block = if n == 64 {
            blocks::masks(buf[p..p + 64].try_into().expect("64 bytes"))
        } else {
            let mut padded = [b' '; 64];
            padded[..n].copy_from_slice(&buf[p..]);
            blocks::masks(&padded)
        };
        // The block's first backslash (64: none), and the bytes before it.
        let bs = block.backslashes.trailing_zeros();
        let clean = if bs == 64 { u64::MAX } else { (1u64 << bs) - 1 };
        let inside = blocks::prefix_xor(block.quotes) ^ if in_string { u64::MAX } else { 0 };
        let mut structural = (block.opens | block.closes) & !inside & clean;
        while structural != 0 {
            let b = structural.trailing_zeros();
            if block.opens >> b & 1 == 1 {
                depth += 1;
            } else {
                depth -= 1;
                if depth == 0 {
                    return Value::Complete(p + b as usize + 1);
                }
            }
            structural &= structural - 1;
        }
        if bs < 64 {
            let at = p + bs as usize;
            return if inside >> bs & 1 == 1 {
                match string_end(buf, at) {
                    Some(e) => scan_nested_from(buf, e, depth),
                    None => Value::NeedMore,
                }
            } else {
                scan_nested_from(buf, at, depth)
            };
        }
        in_string = inside >> 63 == 1;
        p += 64;
    }
    Value::NeedMore
}

/// [`scan_nested`] byte by byte from `p`, outside any string, at `depth`.
fn scan_nested_from(buf: &[u8], mut p: usize, mut depth: usize) -> Value {
    while p < buf.len() {
        match buf[p] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Value::Complete(p + 1);
                }
            }
            b'"' => match string_end(buf, p + 1) {
                Some(e) => {
                    p = e;
                    continue;
                }
                None => return Value::NeedMore,
            },
            _ => {}
        }
        p += 1;
    }
    Value::NeedMore
}

/// Bit masks of one 64-byte block: bit k is byte k.
mod blocks {
    pub struct Masks {
        pub quotes: u64,
        pub backslashes: u64,
        /// `{` and `[`.
        pub opens: u64,
        /// `}` and `]`.
        pub closes: u64,
    }

    /// Bit k set where an odd number of bits 0..=k of `x` are: inside a string, from
    /// its opening quote to the byte before its closing one.
    pub fn prefix_xor(mut x: u64) -> u64 {
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        x
    }

    // `{` and `[` differ only in bit 0x20, as do `}` and `]`: one comparison each after
    // setting it.
    #[cfg(target_arch = "x86_64")]
    pub fn masks(block: &[u8; 64]) -> Masks {
        use std::arch::x86_64::*;
        let mut m = [0u64; 4];
        for (k, chunk) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of x86_64; the load reads the 16 bytes of `chunk`.
            unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr() as *const __m128i);
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                let bits = |x: __m128i| _mm_movemask_epi8(x) as u16 as u64;
                m[0] |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8))) << (16 * k);
                m[1] |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8))) << (16 * k);
                m[2] |= bits(_mm_cmpeq_epi8(folded, _mm_set1_epi8(b'{' as i8))) << (16 * k);
                m[3] |= bits(_mm_cmpeq_epi8(folded, _mm_set1_epi8(b'}' as i8))) << (16 * k);
            }
        }
        Masks {
            quotes: m[0],
            backslashes: m[1],
            opens: m[2],
            closes: m[3],
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn masks(block: &[u8; 64]) -> Masks {
        let mut m = Masks {
            quotes: 0,
            backslashes: 0,
            opens: 0,
            closes: 0,
        };
        for (k, &c) in block.iter().enumerate() {
            let bit = 1u64 << k;
            if c == b'"' {
                m.quotes |= bit;
            } else if c == b'\\' {
                m.backslashes |= bit;
            } else if c | 0x20 == b'{' {
                m.opens |= bit;
            } else if c | 0x20 == b'}' {
                m.closes |= bit;
            }
        }
        m
    }
}

/// Finds the end of one JSON value fed in pieces, for records too large to hold:
/// tracks nesting and strings only, like [`scan_value`].
struct ValueEnd {
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// A number or literal: it ends at the first delimiter (or the stream's end).
    scalar: bool,
    started: bool,
}

impl ValueEnd {
    fn new(first: u8) -> Self {
        ValueEnd {
            depth: 0,
            in_string: false,
            escaped: false,
            scalar: !matches!(first, b'{' | b'[' | b'"'),
            started: false,
        }
    }

    /// The length of `part` up to and including the value's last byte, if it ends in `part`.
    fn feed(&mut self, part: &[u8]) -> Option<usize> {
        for (k, &c) in part.iter().enumerate() {
            if self.scalar {
                if matches!(c, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t') {
                    return Some(k);
                }
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if c == b'\\' {
                    self.escaped = true;
                } else if c == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(k + 1);
                    }
                }
                continue;
            }
            match c {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.started = true;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 && self.started {
                        return Some(k + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Whether the stream's end also ends the value (a number or literal).
    fn ends_at_eof(&self) -> bool {
        self.scalar
    }
}

/// Index just past the closing quote of a string whose body starts at `p`.
fn string_end(buf: &[u8], mut p: usize) -> Option<usize> {
    loop {
        let k = memchr::memchr2(b'"', b'\\', &buf[p..])?;
        p += k;
        if buf[p] == b'"' {
            return Some(p + 1);
        }
        p += 2; // skip the escaped byte
        if p > buf.len() {
            return None;
        }
    }
}

impl<R: Read> Framer for Scanner<R> {
    fn next_chunk(&mut self) -> Result<Option<Chunk>, Break> {
        Scanner::next_chunk(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> (Vec<String>, Option<Break>) {
        let mut s = Scanner::new(input);
        let mut out = Vec::new();
        loop {
            match s.next_chunk() {
                Ok(Some(c)) => {
                    for (a, b) in &c.records {
                        out.push(
                            String::from_utf8_lossy(&c.data[*a as usize..*b as usize]).into_owned(),
                        );
                    }
                }
                Ok(None) => return (out, None),
                Err(b) => return (out, Some(b)),
            }
        }
    }

    #[test]
    fn arrays_and_ndjson() {
        assert_eq!(
            all(b" [ {\"a\":\"}\\\"{\"} , {\"b\":[1,{}]}, 3, \"x\" ]\n").0,
            vec!["{\"a\":\"}\\\"{\"}", "{\"b\":[1,{}]}", "3", "\"x\""]
        );
        assert_eq!(
            all(b"{\"a\":1}\n{\"b\":2}\n\n").0,
            vec!["{\"a\":1}", "{\"b\":2}"]
        );
        assert_eq!(all(b"[]"), (vec![], None));
        assert_eq!(all(b""), (vec![], None));
        assert_eq!(all(b"\xEF\xBB\xBF[{}]"), (vec!["{}".to_string()], None));
    }

    #[test]
    fn breaks_keep_what_came_before() {
        let (recs, b) = all(b"[{\"a\":1},{\"b\":");
        assert_eq!(recs, vec!["{\"a\":1}"]);
        assert_eq!(b.unwrap().offset, 9);
        let (recs, b) = all(b"[{\"a\":1} {\"b\":2}]");
        assert_eq!(recs, vec!["{\"a\":1}"]);
        assert_eq!(b.unwrap().offset, 9);
        let (recs, b) = all(b"[{\"a\":1}");
        assert_eq!(recs.len(), 1);
        assert!(b.unwrap().reason.contains("not closed"));
        let (recs, b) = all(b"hello");
        assert!(recs.is_empty());
        assert_eq!(b.unwrap().offset, 0);
        let (_, b) = all(b"[{}] x");
        assert_eq!(b.unwrap().offset, 5);
    }

    #[test]
    fn large_records_span_reads() {
        let big = "x".repeat(3 * READ_BLOCK);
        let input = format!("[{{\"f\":\"{big}\"}},{{\"g\":1}}]");
        let (recs, b) = all(input.as_bytes());
        assert!(b.is_none());
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].len(), big.len() + 8);
    }

    #[test]
    fn many_chunks_keep_offsets() {
        let rec = format!("{{\"pad\":\"{}\"}}", "y".repeat(1000));
        let n = 2 * CHUNK_TARGET / rec.len() + 10;
        let input = format!("[{}]", vec![rec.as_str(); n].join(","));
        for ramping in [false, true] {
            let mut s = Scanner::new(input.as_bytes());
            if ramping {
                s = s.ramping();
            }
            let (mut count, mut sizes) = (0u64, Vec::new());
            while let Some(c) = s.next_chunk().unwrap() {
                assert_eq!(c.first_index, count);
                for (k, (a, b)) in c.records.iter().enumerate() {
                    let off = c.base_offset + *a as u64;
                    assert_eq!(off, 1 + (count + k as u64) * (rec.len() as u64 + 1));
                    assert_eq!(&c.data[*a as usize..*b as usize], rec.as_bytes());
                }
                count += c.records.len() as u64;
                sizes.push(c.records.len());
            }
            assert_eq!(count, n as u64);
            // A ramping scanner's chunks double from FIRST_CHUNK up to CHUNK_TARGET.
            let first = (if ramping { FIRST_CHUNK } else { CHUNK_TARGET }).div_ceil(rec.len() + 1);
            assert!(sizes[0].abs_diff(first) <= 1, "{ramping}: {sizes:?}");
            assert!(sizes[1] > sizes[0] || !ramping, "{sizes:?}");
        }
    }

    /// The block scan finds the same end (or none) as the byte-by-byte one, wherever the
    /// strings, escapes and brackets fall against the 64-byte blocks, whole or cut short.
    #[test]
    fn the_block_scan_ends_values_where_the_byte_scan_does() {
        let pieces: [&[u8]; 12] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b"\\",
            b"\\\"",
            b"a",
            b"xyzxyzxyzxyzxyzxyz",
            b":",
            b",",
            b" ",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let same = |buf: &[u8], i: usize| {
            let key = |v: Value| match v {
                Value::Complete(e) => Some(e),
                Value::NeedMore => None,
                Value::Bad(..) => unreachable!("no Bad from a nested value"),
            };
            assert_eq!(
                key(scan_nested(buf, i)),
                key(scan_nested_from(buf, i, 0)),
                "{:?} from {i}",
                String::from_utf8_lossy(buf)
            );
        };
        for _ in 0..20_000 {
            let mut buf = vec![b' '; next(3)];
            let start = buf.len();
            buf.push(if next(2) == 0 { b'{' } else { b'[' });
            for _ in 0..next(90) {
                buf.extend_from_slice(pieces[next(pieces.len())]);
            }
            same(&buf, start);
            // A DPoD-like record with its end somewhere in a later block.
            let mut rec =
                b"{\"time\":\"2025-01-01 00:00:15 UTC\",\"meta\":{\"role\":\"CU\",\"ouid\":null}"
                    .to_vec();
            for _ in 0..next(8) {
                rec.extend_from_slice(b",\"k\":\"v{[\"");
            }
            if next(3) == 0 {
                rec.extend_from_slice(b",\"e\":\"a\\\"}\\\\\"");
            }
            rec.extend_from_slice(b"}, {\"next\":1}");
            same(&rec, 0);
            let cut = next(rec.len());
            same(&rec[..cut.max(1)], 0);
        }
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// Records and oversized records of a member, in order, scanned with `limit`.
    fn scan(input: &[u8], limit: usize) -> (Vec<String>, Option<Break>) {
        let mut s = Scanner::with_limit(input, limit);
        let mut out = Vec::new();
        loop {
            match s.next_chunk() {
                Ok(Some(c)) => {
                    if let Some(o) = &c.oversized {
                        let kept = std::fs::read(o.spool.as_ref().unwrap().path()).unwrap();
                        assert_eq!(kept.len() as u64, o.len);
                        assert_eq!(
                            &input[o.offset as usize..(o.offset + o.len) as usize],
                            &kept[..]
                        );
                        out.push(format!("BIG#{}:{}", c.first_index, o.len));
                    }
                    for (k, (a, b)) in c.records.iter().enumerate() {
                        let t = String::from_utf8_lossy(&c.data[*a as usize..*b as usize]);
                        let t: String = t.chars().take(40).collect();
                        out.push(format!("#{}:{t}", c.first_index + k as u64));
                    }
                }
                Ok(None) => return (out, None),
                Err(b) => return (out, Some(b)),
            }
        }
    }

    #[test]
    fn records_over_the_limit_are_streamed_aside_in_every_shape() {
        let big = format!(
            "{{\"f\":\"{}\",\"g\":[{{}}]}}",
            "\\\"}]".repeat(2 * READ_BLOCK / 4)
        );
        let s = format!("\"{}\"", "y".repeat(3 * READ_BLOCK));
        let n = "1".repeat(READ_BLOCK + 7);
        let input = format!("[{{\"a\":1}}, {big} ,{s},{n},{{\"b\":2}}]");
        let (recs, b) = scan(input.as_bytes(), READ_BLOCK);
        assert!(b.is_none(), "{b:?}");
        assert_eq!(
            recs,
            vec![
                "#0:{\"a\":1}".to_string(),
                format!("BIG#1:{}", big.len()),
                format!("BIG#2:{}", s.len()),
                format!("BIG#3:{}", n.len()),
                "#4:{\"b\":2}".to_string(),
            ]
        );
        // NDJSON, and a number that ends the stream.
        let input = format!("{{\"a\":1}}\n{big}\n{{\"b\":2}}\n{n}");
        let (recs, b) = scan(input.as_bytes(), READ_BLOCK);
        assert!(b.is_none(), "{b:?}");
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[1], format!("BIG#1:{}", big.len()));
        assert_eq!(recs[3], format!("BIG#3:{}", n.len()));
    }

    #[test]
    fn a_stream_cut_inside_a_record_over_the_limit_is_a_break() {
        let input = format!("[{{\"a\":1}},{{\"f\":\"{}", "z".repeat(3 * READ_BLOCK));
        let (recs, b) = scan(input.as_bytes(), READ_BLOCK);
        assert_eq!(recs, vec!["#0:{\"a\":1}"]);
        let b = b.unwrap();
        assert_eq!(b.offset, input.len() as u64);
        assert!(b.reason.contains("cut short"), "{}", b.reason);
    }

    #[test]
    fn white_space_does_not_count_toward_a_record() {
        let pad = " \n".repeat(4 * READ_BLOCK);
        let input = format!("{pad}[{pad}{{\"a\":1}}{pad},{pad}{{\"b\":2}}{pad}]{pad}");
        let (recs, b) = scan(input.as_bytes(), READ_BLOCK);
        assert!(b.is_none(), "{b:?}");
        assert_eq!(recs, vec!["#0:{\"a\":1}", "#1:{\"b\":2}"]);
        let input = format!("{pad}{{\"a\":1}}{pad}{{\"b\":2}}{pad}");
        let (recs, b) = scan(input.as_bytes(), READ_BLOCK);
        assert!(b.is_none(), "{b:?}");
        assert_eq!(recs.len(), 2);
    }
}

#[cfg(test)]
mod read_error_tests {
    use super::*;

    /// Yields its bytes, then fails.
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("boom"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_keeps_the_records_before_it() {
        let mut s = Scanner::new(Failing(b"{\"a\":1}\n{\"b\":2}\n{\"c\":"));
        let c = s.next_chunk().unwrap().unwrap();
        assert_eq!(c.records.len(), 2);
        let b = s.next_chunk().unwrap_err();
        assert!(b.reason.contains("boom"), "{}", b.reason);
        assert_eq!(b.offset, 21);
        assert!(s.next_chunk().unwrap().is_none());
    }
}
