//! The ingest interface, below every vendor: what a framer hands out ([`Chunk`]s of whole
//! records, or a [`Break`] that ends a member), what decoding needs beyond the bytes
//! ([`DecodeContext`]) and what it gives back ([`DecodedChunk`]: rows by partition and
//! [`RejectReason`]s). A vendor module implements [`Framer`] and a decode function over
//! these types and imports no other vendor; the registry ([`super::format`]) detects a
//! member's format and dispatches to them. Nothing here names a vendor.

use std::sync::Arc;

use crate::lake::rows::{PartSlice, RowsBuilder};

/// Bytes of complete records per chunk handed to the decoders.
pub const CHUNK_TARGET: usize = 4 << 20;

/// Why a record was rejected. The `code` is what `_rejected/` and the summary show.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectReason {
    pub code: &'static str,
    pub detail: String,
}

impl RejectReason {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        RejectReason {
            code,
            detail: detail.into(),
        }
    }
}

/// Everything decoded from one chunk.
pub struct DecodedChunk {
    pub chunk: Arc<Chunk>,
    pub slices: Vec<PartSlice>,
    /// `(record position in chunk, reason)`.
    pub rejects: Vec<(u32, RejectReason)>,
    /// Records taken from the chunk (all of them, unless a syntax error ended the member).
    pub records_read: u64,
    /// Earliest and latest `time` of the rows.
    pub time_range: Option<(i64, i64)>,
    pub brk: Option<Break>,
}

/// Where a record came from inside its container, for formats whose records do not
/// carry it themselves (a CloudWatch log group and stream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub group: Option<Arc<str>>,
    pub stream: Option<Arc<str>>,
}

/// What decoding may need beyond the bytes: what the user said on the command line.
#[derive(Debug, Clone, Default)]
pub struct DecodeContext {
    /// `--tenant`: the tenant of records whose input does not name one.
    pub tenant: Option<Arc<str>>,
}

impl DecodeContext {
    /// The tenant a record names (`found`), else `--tenant`; without either the record
    /// is rejected as `tenant_missing`, saying which field would have named it.
    pub fn tenant_or<'a>(
        &'a self,
        found: Option<std::borrow::Cow<'a, str>>,
        field: &str,
    ) -> Result<std::borrow::Cow<'a, str>, RejectReason> {
        match (found, &self.tenant) {
            (Some(t), _) => Ok(t),
            (None, Some(t)) => Ok(std::borrow::Cow::Borrowed(t.as_ref())),
            (None, None) => Err(RejectReason::new(
                "tenant_missing",
                format!("no {field}: give the tenant with --tenant"),
            )),
        }
    }
}

/// Cuts a member's bytes into chunks of whole records; a [`Break`] ends the member.
pub trait Framer {
    fn next_chunk(&mut self) -> Result<Option<Chunk>, Break>;
}

/// A run of whole records from one member.
#[derive(Debug)]
pub struct Chunk {
    /// The bytes; records are slices of it.
    pub data: Vec<u8>,
    /// `(start, end)` of each record in `data`.
    pub records: Vec<(u32, u32)>,
    /// Member byte offset of `data[0]`.
    pub base_offset: u64,
    /// Index of the first record within the member.
    pub first_index: u64,
    /// A record over the size limit, alone in an otherwise empty chunk (its index is
    /// `first_index`).
    pub oversized: Option<Oversized>,
    /// For formats whose records do not say where they came from (one per record): the
    /// record's origin inside its container and the member byte offset that locates it.
    /// Empty for the others, whose records lie at `base_offset` + their start.
    pub origins: Vec<(Arc<Origin>, u64)>,
}

impl Chunk {
    /// The member byte offset that locates record `pos` (for `_rejected/`).
    pub fn record_offset(&self, pos: usize) -> u64 {
        match self.origins.get(pos) {
            Some((_, offset)) => *offset,
            None => self.base_offset + self.records.get(pos).map_or(0, |r| r.0 as u64),
        }
    }
}

/// A record over the size limit, found without holding it: where it lies, its
/// digest, and its bytes in a spool file for `_rejected/`.
#[derive(Debug)]
pub struct Oversized {
    /// Member byte offset of its first byte.
    pub offset: u64,
    pub len: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its bytes; `Err` says why they could not be spooled (the record is still
    /// counted and rejected, with its range and digest).
    pub spool: Result<tempfile::NamedTempFile, String>,
}

/// Where and why a member's stream stopped making sense.
#[derive(Debug, Clone, PartialEq)]
pub struct Break {
    pub offset: u64,
    pub reason: String,
}

/// Decodes every record of a chunk, one at a time: `record` gets its text, its position
/// and how many records are left (for sizing), pushes its row and returns its time, or
/// says why it is rejected. A record that is not UTF-8 is rejected here, alone.
pub fn decode_each(
    chunk: Arc<Chunk>,
    mut record: impl FnMut(&str, u32, &mut RowsBuilder, usize) -> Result<i64, RejectReason>,
) -> DecodedChunk {
    let mut rows = RowsBuilder::new(chunk.data.len());
    let mut rejects = Vec::new();
    let mut time_range: Option<(i64, i64)> = None;
    let n = chunk.records.len();
    for (pos, &(a, b)) in chunk.records.iter().enumerate() {
        let raw = chunk.data.get(a as usize..b as usize).unwrap_or_default();
        let decoded = match std::str::from_utf8(raw) {
            Ok(text) => record(text, pos as u32, &mut rows, n - pos),
            Err(e) => Err(RejectReason::new(
                "invalid_utf8",
                format!("invalid UTF-8 at byte {} of the record", e.valid_up_to()),
            )),
        };
        match decoded {
            Ok(t) => {
                time_range = Some(time_range.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
            }
            Err(why) => rejects.push((pos as u32, why)),
        }
    }
    DecodedChunk {
        chunk,
        slices: rows.finish(),
        rejects,
        records_read: n as u64,
        time_range,
        brk: None,
    }
}

/// White space as JSON has it (RFC 8259: space, tab, LF, CR). Not a form feed or
/// vertical tab, which Rust's `is_ascii_whitespace` counts: before a record they make
/// it invalid JSON, so they belong to the record (rejected with its raw text).
pub fn is_json_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t')
}

/// The top-level keys of the JSON object that starts `obj` (at its `{`), as written (not
/// unescaped), in order; as many as `obj` holds when it is cut short. For telling formats
/// apart by their first record without parsing it.
pub fn top_level_keys(obj: &[u8]) -> Vec<&[u8]> {
    let mut keys = Vec::new();
    if obj.first() != Some(&b'{') {
        return keys;
    }
    let (mut depth, mut expect_key, mut i) = (0usize, false, 0usize);
    while i < obj.len() {
        match obj[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < obj.len() && obj[j] != b'"' {
                    j += if obj[j] == b'\\' { 2 } else { 1 };
                }
                if j >= obj.len() {
                    break;
                }
                if depth == 1 && expect_key {
                    keys.push(&obj[start..j]);
                    expect_key = false;
                }
                i = j;
            }
            b'{' | b'[' => {
                depth += 1;
                expect_key = depth == 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    keys
}

/// The first element of a JSON array that starts `b` (at its `[`), from its first byte
/// on; `None` when the array is empty or cut short before one.
pub fn first_element(b: &[u8]) -> Option<&[u8]> {
    let rest = b.strip_prefix(b"[")?;
    let at = rest.iter().position(|c| !is_json_space(*c))?;
    (rest[at] != b']').then(|| &rest[at..])
}

/// The array of an Azure-style envelope `{"records": [ … ]}` that starts `b`, from its
/// `[` on: `None` when `b` is not such an envelope (or is cut short before the `[`).
pub fn envelope_array(b: &[u8]) -> Option<&[u8]> {
    let skip = |b: &[u8]| -> Option<usize> { b.iter().position(|c| !is_json_space(*c)) };
    let b = b.strip_prefix(b"{")?;
    let b = &b[skip(b)?..];
    let b = b.strip_prefix(b"\"records\"")?;
    let b = &b[skip(b)?..];
    let b = b.strip_prefix(b":")?;
    let b = &b[skip(b)?..];
    (b.first() == Some(&b'[')).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_first_record() {
        let keys = top_level_keys(br#"{"a":1,"b":{"c":[1,{"d":2}]},"e\"f":"x,\"y","g":[]}"#);
        assert_eq!(keys, vec![&b"a"[..], b"b", br#"e\"f"#, b"g"]);
        assert_eq!(top_level_keys(br#"{"a":1,"b":{"c"#), vec![&b"a"[..], b"b"]);
        assert!(top_level_keys(b"[1]").is_empty());
        assert_eq!(first_element(b"[ \n{\"a\":1}]"), Some(&b"{\"a\":1}]"[..]));
        assert_eq!(first_element(b"[ ]"), None);
        assert_eq!(
            envelope_array(b"{ \"records\" :\n [{\"time\":1}]}"),
            Some(&b"[{\"time\":1}]}"[..])
        );
        assert_eq!(envelope_array(b"{\"events\":[]}"), None);
    }
}
