//! AWS CloudHSM audit logs (SPEC §1.2), in the four forms CloudWatch Logs hands them out:
//! `aws logs filter-log-events`/`get-log-events` JSON, export-to-S3 text (each event
//! prefixed with its ISO-8601 time), subscription/Firehose envelopes (concatenated JSON,
//! `CONTROL_MESSAGE`s skipped), and the plain multi-line text blocks themselves.
//!
//! Every form comes down to one event per text block (`Time: …, usecs:N`, `Sequence No`,
//! `Reboot counter`, `Opcode`, `Response`, … as `name : value` lines), decoded here into
//! canonical rows: the cluster id (log group `/aws/cloudhsm/<cluster-id>`, else
//! `--tenant`) is the tenant, the log stream (the HSM id) the source, and the trace_id
//! `<cluster>/<hsm>/<reboot counter>/<sequence no>` is the same in every form, so
//! overlapping exports dedupe exactly. Where the HSM is unknown (the text forms do not
//! name their stream) the trace_id also holds the event's `usecs`, so events of two HSMs
//! never collapse into one. A cluster's audit log holds management commands only, so a
//! member is read whole before it is framed.

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::interface::{
    decode_each, Break, Chunk, DecodeContext, DecodedChunk, Origin, RejectReason, CHUNK_TARGET,
};
use crate::lake::rows::{CanonicalRow, Outcome, RowsBuilder};
use crate::lake::sequence::trace_id;
use crate::time::{day_of, days_from_civil, FIRST_DAY, LAST_DAY, MICROS_PER_DAY};

/// The value of the `vendor` column for AWS CloudHSM rows.
pub const VENDOR: &str = crate::lake::VENDOR_CLOUDHSM;

/// The prefix of a CloudHSM cluster's log group; the cluster id follows it.
pub const LOG_GROUP_PREFIX: &str = "/aws/cloudhsm/";

/// How the events are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `aws logs filter-log-events` / `get-log-events` output: `{"events": [{"message", …}]}`.
    CloudWatchJson,
    /// A CloudWatch Logs export-to-S3 object: `<ISO-8601 ms Z> <message>`, the message's
    /// continuation lines unprefixed.
    S3Export,
    /// Subscription / Firehose deliveries: `{"messageType","logGroup","logStream",
    /// "logEvents":[…]}` envelopes, concatenated with no separator.
    Subscription,
    /// The audit events as multi-line text blocks.
    TextBlocks,
}

impl Form {
    /// Whether the form carries the log group (and so the cluster id).
    pub fn names_log_group(&self) -> bool {
        matches!(self, Form::Subscription)
    }
}

/// The form of a member from its first bytes (`head` starts at its first non-space byte).
pub fn detect(head: &[u8]) -> Option<Form> {
    if is_time_line(head) {
        return Some(Form::TextBlocks);
    }
    if iso_prefix_len(head).is_some() {
        return Some(Form::S3Export);
    }
    if head.first() == Some(&b'{') {
        let key = first_key(&head[1..])?;
        return match key {
            b"events"
            | b"nextForwardToken"
            | b"nextBackwardToken"
            | b"searchedLogStreams"
            | b"nextToken" => Some(Form::CloudWatchJson),
            b"messageType"
            | b"owner"
            | b"logGroup"
            | b"logStream"
            | b"subscriptionFilters"
            | b"logEvents" => Some(Form::Subscription),
            _ => None,
        };
    }
    None
}

/// The first key of a JSON object whose `{` was just passed (no escapes expected).
fn first_key(b: &[u8]) -> Option<&[u8]> {
    let start = b
        .iter()
        .position(|c| !super::interface::is_json_space(*c))?;
    let b = b[start..].strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', b)?;
    Some(&b[..end])
}

/// Whether a line is a block's first: `Time` then `:` (spaces or tabs between allowed).
fn is_time_line(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"Time") else {
        return false;
    };
    let rest = match rest.iter().position(|&c| c != b' ' && c != b'\t') {
        Some(i) => &rest[i..],
        None => return false,
    };
    rest.first() == Some(&b':')
}

/// The length of a CloudWatch export line's time prefix and the blank after it:
/// `YYYY-MM-DDTHH:MM:SS[.fff]Z `.
fn iso_prefix_len(b: &[u8]) -> Option<usize> {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < SHAPE.len() + 2 {
        return None;
    }
    for (i, &s) in SHAPE.iter().enumerate() {
        let ok = if s == b'd' {
            b[i].is_ascii_digit()
        } else {
            b[i] == s
        };
        if !ok {
            return None;
        }
    }
    let mut i = SHAPE.len();
    if b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if b.get(i) != Some(&b'Z') || !matches!(b.get(i + 1), Some(b' ' | b'\t')) {
        return None;
    }
    Some(i + 2)
}

// ---------------------------------------------------------------------------
// Framing.

/// Cuts a CloudHSM member into chunks of events (see the module doc: read whole first).
pub struct Framer<'a> {
    reader: Option<&'a mut dyn Read>,
    form: Form,
    chunks: Chunks,
}

thread_local! {
    /// The last member's bytes, kept for the next member of this thread: a member is
    /// tens of MB, and fresh memory for each one costs a page fault per 4 KiB.
    static MEMBER_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<'a> Framer<'a> {
    pub fn new(reader: &'a mut dyn Read, form: Form, limit: usize) -> Self {
        Framer {
            reader: Some(reader),
            form,
            chunks: Chunks::new(limit),
        }
    }

    /// Reads the member and frames all of it.
    fn fill(&mut self, reader: &mut dyn Read) {
        let mut buf = MEMBER_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        buf.clear();
        let read = reader.read_to_end(&mut buf);
        let chunks = &mut self.chunks;
        let framed = match self.form {
            Form::TextBlocks => frame_text(&buf, false, chunks),
            Form::S3Export => frame_text(&buf, true, chunks),
            Form::CloudWatchJson | Form::Subscription => frame_json(&buf, chunks),
        };
        // An event over the size limit ends the member first (nothing after it is
        // framed), then broken JSON, then a read error.
        if chunks.brk.is_none() {
            chunks.brk = framed.or_else(|| {
                read.err().map(|e| Break {
                    offset: buf.len() as u64,
                    reason: format!("read error: {e}"),
                })
            });
        }
        chunks.cut();
        MEMBER_BUF.with(|b| *b.borrow_mut() = buf);
    }
}

impl super::interface::Framer for Framer<'_> {
    fn next_chunk(&mut self) -> Result<Option<Chunk>, Break> {
        if let Some(r) = self.reader.take() {
            self.fill(r);
        }
        match self.chunks.ready.pop_front() {
            Some(chunk) => Ok(Some(chunk)),
            None => match self.chunks.brk.take() {
                Some(b) => Err(b),
                None => Ok(None),
            },
        }
    }
}

/// A member's events gathered into chunks as they are framed: each event's text is
/// copied once, into the chunk that carries it, and no more than [`CHUNK_TARGET`]
/// bytes go into a chunk unless one event alone is bigger.
struct Chunks {
    limit: usize,
    ready: std::collections::VecDeque<Chunk>,
    data: Vec<u8>,
    records: Vec<(u32, u32)>,
    origins: Vec<(Arc<Origin>, u64)>,
    next_index: u64,
    /// Set by the first event over `limit`: it and everything after it are not framed.
    brk: Option<Break>,
}

impl Chunks {
    fn new(limit: usize) -> Self {
        Chunks {
            limit,
            ready: Default::default(),
            data: Vec::new(),
            records: Vec::new(),
            origins: Vec::new(),
            next_index: 0,
            brk: None,
        }
    }

    /// Adds one event; `false` once an event over the size limit has ended the member.
    fn push(&mut self, text: &[u8], origin: &Arc<Origin>, offset: u64) -> bool {
        if self.brk.is_some() {
            return false;
        }
        if text.len() > self.limit {
            self.brk = Some(Break {
                offset,
                reason: format!(
                    "an event of {} bytes, over the record size limit",
                    text.len()
                ),
            });
            return false;
        }
        let len = self.data.len() + text.len();
        if !self.records.is_empty() && (len > CHUNK_TARGET || len >= u32::MAX as usize) {
            self.cut();
        }
        if self.data.capacity() == 0 {
            self.data.reserve(CHUNK_TARGET.max(text.len()) + 1);
        }
        let a = self.data.len() as u32;
        self.data.extend_from_slice(text);
        self.records.push((a, self.data.len() as u32));
        self.data.push(b'\n');
        self.origins.push((origin.clone(), offset));
        true
    }

    /// Hands out the chunk being filled, if it holds an event.
    fn cut(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.records);
        let first_index = self.next_index;
        self.next_index += records.len() as u64;
        let origins = std::mem::take(&mut self.origins);
        self.ready.push_back(Chunk {
            data: std::mem::take(&mut self.data),
            base_offset: origins.first().map_or(0, |o| o.1),
            records,
            first_index,
            oversized: None,
            origins,
        });
    }
}

/// The events of the text forms: blocks starting at a `Time:` line (or, in an S3 export,
/// at a line with an ISO-8601 prefix) and ending before the next one or at a blank line.
/// Lines outside any block make a block of their own, which decoding rejects.
fn frame_text(buf: &[u8], s3: bool, chunks: &mut Chunks) -> Option<Break> {
    let origin = Arc::new(Origin::default());
    let mut block: Option<(usize, usize)> = None; // start, end of the last non-blank line
    let mut pos = 0;
    let flush = |block: &mut Option<(usize, usize)>, chunks: &mut Chunks| match block.take() {
        Some((a, b)) => chunks.push(&buf[a..b], &origin, a as u64),
        None => true,
    };
    while pos < buf.len() {
        let end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i);
        let mut line_end = end;
        if line_end > pos && buf[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        let line = &buf[pos..line_end];
        let blank = line.iter().all(|c| c.is_ascii_whitespace());
        let starts = if s3 {
            iso_prefix_len(line).is_some()
        } else {
            let t = line
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .map_or(&line[..0], |i| &line[i..]);
            is_time_line(t)
        };
        if blank {
            // An S3 export's events are told apart by their prefix; a blank line only
            // ends a plain block.
            if !s3 && !flush(&mut block, chunks) {
                return None;
            }
        } else if starts {
            if !flush(&mut block, chunks) {
                return None;
            }
            block = Some((pos, line_end));
        } else {
            match &mut block {
                Some((_, b)) => *b = line_end,
                None => block = Some((pos, line_end)),
            }
        }
        pos = end + 1;
    }
    flush(&mut block, chunks);
    None
}

/// One JSON document of the JSON forms: a filter/get-log-events output or an envelope.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Doc {
    message_type: Option<String>,
    log_group: Option<String>,
    log_stream: Option<String>,
    log_events: Vec<Event>,
    events: Vec<Event>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Event {
    log_stream_name: Option<String>,
    message: Option<String>,
}

/// The events of the JSON forms, each located at the offset of the document holding it;
/// a document is framed as soon as it is parsed, and its strings freed.
fn frame_json(buf: &[u8], chunks: &mut Chunks) -> Option<Break> {
    let mut docs = serde_json::Deserializer::from_slice(buf).into_iter::<Doc>();
    loop {
        let start = docs.byte_offset() as u64;
        match docs.next() {
            None => return None,
            Some(Err(e)) => {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                return Some(Break {
                    offset: start,
                    reason: format!("broken JSON: {msg}"),
                });
            }
            Some(Ok(doc)) => {
                if doc.message_type.as_deref() == Some("CONTROL_MESSAGE") {
                    continue;
                }
                let group: Option<Arc<str>> = doc.log_group.as_deref().map(Arc::from);
                let envelope = Arc::new(Origin {
                    group: group.clone(),
                    stream: doc.log_stream.as_deref().map(Arc::from),
                });
                for e in doc.log_events {
                    let text = e.message.as_deref().unwrap_or_default();
                    if !chunks.push(text.as_bytes(), &envelope, start) {
                        return None;
                    }
                }
                for e in doc.events {
                    let origin = match e.log_stream_name {
                        Some(s) => Arc::new(Origin {
                            group: group.clone(),
                            stream: Some(Arc::from(s)),
                        }),
                        None => envelope.clone(),
                    };
                    let text = e.message.as_deref().unwrap_or_default();
                    if !chunks.push(text.as_bytes(), &origin, start) {
                        return None;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding.

/// Decodes every event of a chunk this module's framer cut from a member in `form`.
pub fn decode_chunk(chunk: Arc<Chunk>, form: Form, ctx: &DecodeContext) -> DecodedChunk {
    let none = Origin::default();
    let origins = chunk.clone();
    decode_each(chunk, |text, pos, rows, left| {
        let origin = origins
            .origins
            .get(pos as usize)
            .map_or(&none, |(o, _)| o.as_ref());
        decode_event(text, form, origin, ctx, pos, rows, left)
    })
}

/// One `name : value` line of a block (` : `, `: ` or a tab between them).
fn split_field(line: &str) -> Option<(&str, &str)> {
    // Both separators are ASCII, so the byte found starts a character.
    let cut = memchr::memchr2(b':', b'\t', line.as_bytes())?;
    let key = trim(&line[..cut]);
    let rest = trim_start(&line[cut..]);
    let value = trim(rest.strip_prefix(':').unwrap_or(rest));
    (!key.is_empty()).then_some((key, value))
}

/// `str::trim`, without decoding characters when both ends are plainly not white space
/// (an ASCII byte above the space).
fn trim(s: &str) -> &str {
    let plain = |b: u8| b > b' ' && b < 0x80;
    match s.as_bytes() {
        [first, .., last] if plain(*first) && plain(*last) => s,
        [only] if plain(*only) => s,
        _ => s.trim(),
    }
}

/// `str::trim_start`, likewise.
fn trim_start(s: &str) -> &str {
    match s.as_bytes().first() {
        Some(&b) if b > b' ' && b < 0x80 => s,
        _ => s.trim_start(),
    }
}

/// Appends `s` as a JSON string, escaped exactly as `serde_json` escapes it.
fn push_json_str(out: &mut String, s: &str) {
    if needs_escape(s.as_bytes()) {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Whether JSON needs any byte of `s` escaped (a control character, `"` or `\\`), eight
/// bytes at a time: each test below is exact about whether some byte of the word
/// matches, which is all that is asked.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * n as u64) & !x & HIGH != 0;
    let words = s.chunks_exact(8);
    let tail = words.remainder();
    for w in words {
        let x = u64::from_le_bytes(w.try_into().expect("eight bytes"));
        if below(x, 0x20)
            || below(x ^ (ONES * b'"' as u64), 1)
            || below(x ^ (ONES * b'\\' as u64), 1)
        {
            return true;
        }
    }
    tail.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// The fields `decode_event` reads, each the first of its name (names compared without
/// case), found in one pass over the block's fields.
#[derive(Default)]
struct Known<'a> {
    time: Option<&'a str>,
    opcode: Option<&'a str>,
    sequence: Option<&'a str>,
    reboot: Option<&'a str>,
    response: Option<&'a str>,
    key_handle: Option<&'a str>,
    secret_key_handle: Option<&'a str>,
    user_type: Option<&'a str>,
    user_name: Option<&'a str>,
}

impl<'a> Known<'a> {
    fn of(fields: &[(&'a str, &'a str)]) -> Self {
        let mut k = Known::default();
        for &(name, value) in fields {
            let slot = match name.len() {
                4 if name.eq_ignore_ascii_case("Time") => &mut k.time,
                6 if name.eq_ignore_ascii_case("Opcode") => &mut k.opcode,
                8 if name.eq_ignore_ascii_case("Response") => &mut k.response,
                9 if name.eq_ignore_ascii_case("User Type") => &mut k.user_type,
                9 if name.eq_ignore_ascii_case("User Name") => &mut k.user_name,
                10 if name.eq_ignore_ascii_case("Key Handle") => &mut k.key_handle,
                11 if name.eq_ignore_ascii_case("Sequence No") => &mut k.sequence,
                14 if name.eq_ignore_ascii_case("Reboot counter") => &mut k.reboot,
                22 if name.eq_ignore_ascii_case("Priv/Secret Key Handle") => {
                    &mut k.secret_key_handle
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        k
    }
}

/// The text before ` (0x…)`: `CN_LOGIN (0xd)` → `CN_LOGIN`.
fn name_of(v: &str) -> &str {
    let cut = memchr::memmem::find(v.as_bytes(), b" (").unwrap_or(v.len());
    trim(&v[..cut])
}

/// `0x1d` or `29`.
fn parse_number(v: &str) -> Option<u64> {
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The short role of a user type: `CN_CRYPTO_USER (1)` → `CU`.
fn role_of(user_type: &str) -> &str {
    match name_of(user_type) {
        "CN_CRYPTO_USER" => "CU",
        "CN_CRYPTO_OFFICER" => "CO",
        "CN_APPLIANCE_USER" => "AU",
        "CN_CRYPTO_PRE_OFFICER" | "CN_PRE_CRYPTO_OFFICER" => "PCO",
        other => other,
    }
}

/// Whether a response means success: `0:HSM Return: SUCCESS`.
fn is_success(response: &str) -> bool {
    let rest = response
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start_matches(':')
        .trim();
    let rest = rest.strip_prefix("HSM Return:").unwrap_or(rest).trim();
    rest == "SUCCESS"
}

/// UTC microseconds from a `Time:` value: its `usecs:N` (exact), else its
/// `MM/DD/YY HH:MM:SS[.ffffff]` (years 20YY).
fn event_time(v: &str) -> Option<i64> {
    let t = if let Some(i) = memchr::memmem::find(v.as_bytes(), b"usecs:") {
        let digits: &str = v[i + 6..].trim_start();
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        digits[..end].parse::<i64>().ok()?
    } else {
        let v = v.split(',').next()?.trim();
        let (date, time) = v.split_once(' ')?;
        let mut d = date.split('/').map(|x| x.parse::<u32>().ok());
        let (m, day, y) = (d.next()??, d.next()??, d.next()??);
        if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || y > 99 {
            return None;
        }
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut p = hms.split(':').map(|x| x.parse::<i64>().ok());
        let (h, mi, s) = (p.next()??, p.next()??, p.next()??);
        // A sign parses too: `-9…` hours must not reach the arithmetic below.
        let bad = !(0..=23).contains(&h) || !(0..=59).contains(&mi) || !(0..=60).contains(&s);
        if p.next().is_some() || bad {
            return None;
        }
        let mut micros = 0i64;
        for (k, c) in frac.bytes().take(6).enumerate() {
            if !c.is_ascii_digit() {
                return None;
            }
            micros += (c - b'0') as i64 * 10i64.pow(5 - k as u32);
        }
        let days = days_from_civil(2000 + y as i64, m, day);
        days * MICROS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1_000_000 + micros
    };
    let day = day_of(t);
    (FIRST_DAY..=LAST_DAY).contains(&day).then_some(t)
}

fn reject(code: &'static str, detail: impl Into<String>) -> RejectReason {
    RejectReason::new(code, detail)
}

/// Decodes one event's text into a row of `rows`; its time, or why it is rejected.
fn decode_event(
    text: &str,
    form: Form,
    origin: &Origin,
    ctx: &DecodeContext,
    pos: u32,
    rows: &mut RowsBuilder,
    left: usize,
) -> Result<i64, RejectReason> {
    let text = match form {
        Form::S3Export => {
            let n = iso_prefix_len(text.as_bytes()).unwrap_or(0);
            text.get(n..).unwrap_or(text)
        }
        _ => text,
    };
    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(16);
    for (i, line) in text.lines().enumerate() {
        if trim(line).is_empty() {
            continue;
        }
        match split_field(line) {
            Some(f) => fields.push(f),
            None => {
                let shown: String = line.chars().take(80).collect();
                return Err(reject(
                    "unparseable_block",
                    format!("line {} is not a `name : value` field: {shown:?}", i + 1),
                ));
            }
        }
    }
    let known = Known::of(&fields);
    let Some(time_text) = known.time else {
        return Err(reject(
            "unparseable_block",
            "no `Time:` line: not an AWS CloudHSM audit event",
        ));
    };
    let Some(time) = event_time(time_text) else {
        return Err(reject(
            "time_invalid",
            format!("time {time_text:?} has no usecs and no MM/DD/YY HH:MM:SS time"),
        ));
    };
    let Some(opcode) = known.opcode else {
        return Err(reject("unparseable_block", "no Opcode field"));
    };
    let cluster = origin
        .group
        .as_deref()
        .and_then(|g| g.strip_prefix(LOG_GROUP_PREFIX))
        .map(|c| c.trim_end_matches('/'))
        .filter(|c| !c.is_empty())
        .or(ctx.tenant.as_deref());
    let Some(cluster) = cluster else {
        return Err(reject(
            "tenant_missing",
            format!(
                "no log group {LOG_GROUP_PREFIX}<cluster-id> (log group {:?}) and no --tenant",
                origin.group.as_deref().unwrap_or("")
            ),
        ));
    };
    let hsm = origin.stream.as_deref().filter(|s| !s.is_empty());

    // Every field, in block order, as the row's meta.
    let mut meta = String::with_capacity(text.len() + 8 * fields.len());
    meta.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            meta.push(',');
        }
        push_json_str(&mut meta, k);
        meta.push(':');
        push_json_str(&mut meta, v);
    }
    meta.push('}');

    let seq = known.sequence.and_then(parse_number);
    let reboot = known.reboot.and_then(parse_number);
    let trace_id = match (seq, reboot) {
        (Some(seq), Some(reboot)) => trace_id(cluster, hsm, reboot, seq, time),
        _ => {
            let mut h = Sha256::new();
            for part in [cluster, hsm.unwrap_or("-"), meta.as_str()] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            format!("h:{hex}")
        }
    };
    let response = known.response;
    let ouid = known
        .key_handle
        .or(known.secret_key_handle)
        .filter(|h| !h.is_empty() && *h != "0");
    let role: Option<Cow<str>> = known.user_type.map(|t| Cow::Borrowed(role_of(t)));
    rows.push(
        &CanonicalRow {
            pos,
            time,
            tenant: cluster,
            vendor: VENDOR,
            source: hsm,
            resource_id: None,
            actor_id: known.user_name,
            action: Some(name_of(opcode)),
            status: response,
            outcome: Outcome::of(response.is_some_and(is_success)),
            trace_id: &trace_id,
            client_ip: None,
            hsm_id: hsm,
            part_id: None,
            role: role.as_deref(),
            ouid,
            meta: Some(&meta),
            extra: None,
        },
        left,
    );
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_on_every_separator() {
        assert_eq!(
            split_field("Sequence No : 0x1"),
            Some(("Sequence No", "0x1"))
        );
        assert_eq!(
            split_field("Opcode: CN_LOGIN (0xd)"),
            Some(("Opcode", "CN_LOGIN (0xd)"))
        );
        assert_eq!(
            split_field("Reboot counter\t: 0x38"),
            Some(("Reboot counter", "0x38"))
        );
        assert_eq!(
            split_field("Log type\tMINIMAL"),
            Some(("Log type", "MINIMAL"))
        );
        assert_eq!(
            split_field("Response : 0:HSM Return: SUCCESS"),
            Some(("Response", "0:HSM Return: SUCCESS"))
        );
        assert_eq!(split_field("no separator"), None);
        assert_eq!(split_field(": value"), None);
    }

    #[test]
    fn fast_paths_match_the_general_ones() {
        let strings = [
            "",
            " ",
            "a",
            " a ",
            "\u{a0}a\u{a0}",
            "a\u{2003}",
            "\ta\r",
            "\u{b}x\u{c}",
            "x\u{85}",
            "CN_LOGIN (0xd)",
            "q\"uote",
            "back\\slash",
            "ctl\u{1}\u{1f}\u{7f}",
            "é",
            "日本",
            "a\nb",
            "abcdefgh\"ijkl",
            "0123456789abcdef\u{1f}",
            "ééééé\\",
            "a plain value of some length, ok",
            "tab\tin the first word",
            "ÿÿÿÿÿÿÿÿ!!!!!!!!",
            "CN_LOGIN (0xd)  ",
        ];
        for s in strings {
            assert_eq!(trim(s), s.trim(), "{s:?}");
            assert_eq!(trim_start(s), s.trim_start(), "{s:?}");
            assert_eq!(name_of(s), s.split_once(" (").map_or(s, |(a, _)| a).trim());
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        let fields = [
            ("time", "1"),
            ("Opcode", "A"),
            ("TIME", "2"),
            ("Priv/Secret Key Handle", "7"),
            ("key handle", "9"),
            ("Key Handle", "8"),
        ];
        let k = Known::of(&fields);
        assert_eq!(
            (k.time, k.opcode, k.key_handle),
            (Some("1"), Some("A"), Some("9"))
        );
        assert_eq!((k.secret_key_handle, k.sequence), (Some("7"), None));
    }

    #[test]
    fn times_responses_and_roles() {
        // Found by the cloudhsm fuzz target: a negative hour overflowed.
        assert_eq!(event_time("03/01/25 -9223372036854775808:07:50"), None);
        assert_eq!(event_time("03/01/25 12:-1:50"), None);
        assert_eq!(
            event_time("12/19/17 21:01:17.140812, usecs:1513717277140812"),
            Some(1513717277140812)
        );
        assert_eq!(
            event_time("12/19/17 21:01:17.140812"),
            Some(1513717277140812)
        );
        assert_eq!(event_time("13/19/17 21:01:17"), None);
        assert_eq!(event_time("usecs:99999999999999999999"), None);
        assert!(is_success("0:HSM Return: SUCCESS"));
        assert!(!is_success("163:HSM Error: RET_USER_LOGIN_FAILURE"));
        assert_eq!(role_of("CN_CRYPTO_PRE_OFFICER (6)"), "PCO");
        assert_eq!(parse_number("0x1D"), Some(29));
    }

    /// Frames and decodes `input` as `form`: (rows, rejects, break), every record accounted.
    fn run(input: &[u8], form: Form) -> (usize, usize, bool) {
        use crate::ingest::interface::Framer as _;
        let ctx = DecodeContext {
            tenant: Some(Arc::from("t")),
        };
        let mut r: &[u8] = input;
        let mut framer = Framer::new(&mut r, form, 1 << 20);
        let (mut rows, mut rejects) = (0, 0);
        loop {
            match framer.next_chunk() {
                Ok(Some(c)) => {
                    let n = c.records.len();
                    let d = decode_chunk(Arc::new(c), form, &ctx);
                    let got: usize = d.slices.iter().map(|s| s.batch.num_rows()).sum();
                    assert_eq!(got + d.rejects.len(), n);
                    rows += got;
                    rejects += d.rejects.len();
                }
                Ok(None) => return (rows, rejects, false),
                Err(_) => return (rows, rejects, true),
            }
        }
    }

    #[test]
    fn no_input_panics_and_every_event_is_accounted_for() {
        let block = "Time: 06/01/24 12:00:00.123456, usecs:1717243200123456\n\
                     Sequence No : 0x10\nReboot counter : 0x2a\nOpcode : CN_LOGIN (0xd)\n\
                     Response : 0:HSM Return: SUCCESS\nUser Name : a\nUser Type : CN_CRYPTO_USER (1)\n";
        assert_eq!(run(block.as_bytes(), Form::TextBlocks), (1, 0, false));
        let s3 = format!("2024-06-01T12:00:00.123Z {block}");
        assert_eq!(run(s3.as_bytes(), Form::S3Export), (1, 0, false));
        let fixed: &[&[u8]] = &[
            b"",
            b"\n\n\n",
            b"Time:",
            b"Time: usecs:",
            b"Time: 99/99/99 99:99:99.9999999",
            b"Time: 1/1/1 1:1:1.\xff\xfe",
            b"2024-06-01T12:00:00Z \n\n",
            b"{\"events\":[{\"message\":null},{}]}",
            b"{\"events\":5}",
            b"{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"message\":\"Time: x\"}]}{",
            b"[1,2]",
        ];
        for input in fixed {
            for form in [
                Form::TextBlocks,
                Form::S3Export,
                Form::CloudWatchJson,
                Form::Subscription,
            ] {
                run(input, form);
            }
        }
        // Deterministic mutations of a valid block: bytes replaced, cut, repeated.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Up to five bytes replaced, then cut at a random length.
        let mut mutate = |base: &str| {
            let mut b = base.as_bytes().to_vec();
            for _ in 0..(next() % 6) {
                let i = (next() as usize) % b.len();
                b[i] = (next() % 256) as u8;
            }
            let cut = (next() as usize) % (b.len() + 1);
            b.truncate(cut);
            b
        };
        let base = format!("{s3}\n{block}");
        const ROUNDS: usize = 400;
        for _ in 0..ROUNDS {
            let b = mutate(&base);
            for form in [Form::TextBlocks, Form::S3Export] {
                run(&b, form);
            }
        }
        // The same for subscription envelopes (a control message, then data).
        let message = serde_json::to_string(block).unwrap();
        let envelope = format!(
            r#"{{"messageType":"CONTROL_MESSAGE","logEvents":[{{"message":"hi"}}]}}{{"logGroup":"/aws/cloudhsm/c","logStream":"h","logEvents":[{{"message":{message}}},{{"message":{message}}}]}}"#
        );
        assert_eq!(run(envelope.as_bytes(), Form::Subscription), (2, 0, false));
        for _ in 0..ROUNDS {
            run(&mutate(&envelope), Form::Subscription);
        }
    }

    /// One chunk's events (text, member offset) and its first index.
    type Framed = (Vec<(String, u64)>, u64);

    /// Every chunk of a member, then how it ended: `(texts and offsets, first index)`s
    /// and the break.
    fn frame_all(input: &[u8], form: Form, limit: usize) -> (Vec<Framed>, Option<Break>) {
        use crate::ingest::interface::Framer as _;
        let mut r: &[u8] = input;
        let mut framer = Framer::new(&mut r, form, limit);
        let mut chunks = Vec::new();
        loop {
            match framer.next_chunk() {
                Ok(Some(c)) => {
                    let texts = (c.records.iter().zip(&c.origins))
                        .map(|(&(a, b), (_, offset))| {
                            let text = &c.data[a as usize..b as usize];
                            (String::from_utf8_lossy(text).into_owned(), *offset)
                        })
                        .collect();
                    assert_eq!(c.base_offset, c.origins[0].1);
                    chunks.push((texts, c.first_index));
                }
                Ok(None) => return (chunks, None),
                Err(b) => return (chunks, Some(b)),
            }
        }
    }

    #[test]
    fn envelopes_frame_in_order_and_end_at_the_first_event_too_big_or_broken_document() {
        let control = r#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"message":"health"}]}"#;
        let first = r#"{"logEvents":[{"message":"a\nb"},{"message":null}],"logStream":"h","logGroup":"/aws/cloudhsm/c","messageType":"DATA_MESSAGE"}"#;
        let big = "x".repeat(40);
        let second = format!(
            r#"{{"logEvents":[{{"message":"ok"}},{{"message":"{big}"}},{{"message":"after"}}]}}"#
        );
        let input = format!("{control}{first} {second}{first}");
        let (chunks, brk) = frame_all(input.as_bytes(), Form::Subscription, 32);
        // A document is located where the one before it ended (white space between).
        let at = (control.len() + first.len()) as u64;
        let want = vec![
            ("a\nb".to_string(), control.len() as u64),
            (String::new(), control.len() as u64),
            ("ok".to_string(), at),
        ];
        assert_eq!(chunks, vec![(want.clone(), 0)]);
        let brk = brk.expect("the event over the limit ends the member");
        assert_eq!(brk.offset, at);
        assert!(brk.reason.contains("40 bytes"), "{}", brk.reason);

        // A broken document ends the member after the events of the ones before it.
        let input = format!("{control}{first} {{\"logEvents\":[{{\"message\":\"lost\"}}");
        let (chunks, brk) = frame_all(input.as_bytes(), Form::Subscription, 1 << 20);
        assert_eq!(chunks, vec![(want[..2].to_vec(), 0)]);
        let brk = brk.expect("broken JSON");
        assert_eq!(brk.offset, (control.len() + first.len()) as u64);
        assert!(brk.reason.starts_with("broken JSON"), "{}", brk.reason);

        // Events past a chunk's target go to the next chunk, indices running on.
        let origin = Arc::new(Origin::default());
        let mut c = Chunks::new(CHUNK_TARGET);
        let text = vec![b'e'; CHUNK_TARGET / 3];
        for i in 0..4u64 {
            assert!(c.push(&text, &origin, i * 10));
        }
        c.cut();
        let got: Vec<_> = c
            .ready
            .iter()
            .map(|k| (k.records.len(), k.first_index, k.base_offset))
            .collect();
        // Each event carries a newline after it, so a third of the target fits twice.
        assert_eq!(got, vec![(2, 0, 0), (2, 2, 20)]);
    }

    #[test]
    fn text_blocks_frame_at_time_lines_and_blank_lines() {
        let text = b"Time: 1\nOpcode : A\n\n\nTime: 2\nOpcode: B\nTime: 3\r\nOpcode\t: C\n";
        let (chunks, brk) = frame_all(text, Form::TextBlocks, 1 << 20);
        assert!(brk.is_none());
        let [(got, 0)] = &chunks[..] else {
            panic!("one chunk: {chunks:?}")
        };
        assert_eq!(
            *got,
            vec![
                ("Time: 1\nOpcode : A".to_string(), 0),
                ("Time: 2\nOpcode: B".to_string(), 21),
                ("Time: 3\r\nOpcode\t: C".to_string(), 39),
            ]
        );
    }
}
