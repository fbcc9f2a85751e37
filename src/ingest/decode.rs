//! Decodes a chunk of raw records into Arrow batches of the canonical schema, one per partition.
//!
//! Each record is parsed once with serde_json into borrowed slices (no
//! `Value` tree): known fields as raw JSON text, unknown ones kept for
//! `extra`, `meta` flattened from its object or from the string holding it.
//! Records that cannot be placed become rejects; a syntax error ends the
//! member at that record (see [`DecodedChunk::brk`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::interface::{Break, Chunk};
use super::json::Key;
use crate::lake::rows::{CanonicalRow, Outcome as RowOutcome, RowsBuilder};
use crate::lake::VENDOR_DPOD;
use crate::time::parse_time;

pub use super::interface::{DecodedChunk, RejectReason};

mod fast;

// ---------------------------------------------------------------------------
// Parsing one record into borrowed pieces.

const F_TIME: usize = 0;
const F_SOURCE: usize = 1;
const F_RESOURCE: usize = 2;
const F_ACTOR: usize = 3;
const F_TENANT: usize = 4;
const F_ACTION: usize = 5;
const F_STATUS: usize = 6;
const F_TRACE: usize = 7;
const F_META: usize = 8;
const FIELD_NAMES: [&str; 9] = [
    "time",
    "source",
    "resourceID",
    "actorID",
    "tenantID",
    "action",
    "status",
    "traceID",
    "meta",
];

#[derive(Default)]
struct RawRecord<'a> {
    fields: [Option<&'a RawValue>; 9],
    extra: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> de::Deserialize<'de> for RawRecord<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRecord<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an audit record object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut rec = RawRecord::default();
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    match FIELD_NAMES.iter().position(|n| n.eq_ignore_ascii_case(&k)) {
                        Some(i) => rec.fields[i] = Some(v),
                        None => rec.extra.push((k, v)),
                    }
                }
                Ok(rec)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Default)]
struct RawMeta<'a> {
    /// clientip, hsmid, partid, role, ouid
    fields: [Option<&'a RawValue>; 5],
}
const META_NAMES: [&str; 5] = ["clientip", "hsmid", "partid", "role", "ouid"];

impl<'de> de::Deserialize<'de> for RawMeta<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMeta<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a meta object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut m = RawMeta::default();
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    match META_NAMES.iter().position(|n| n.eq_ignore_ascii_case(&k)) {
                        Some(i) => m.fields[i] = Some(map.next_value()?),
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

/// Whether a record with these top-level keys (a member's first) is DPoD's: it has a
/// `time`, or two of DPoD's other field names, in any case.
pub fn claims(keys: &[&[u8]]) -> bool {
    let is = |k: &[u8], n: &str| n.as_bytes().eq_ignore_ascii_case(k);
    let known = keys
        .iter()
        .filter(|k| FIELD_NAMES.iter().any(|n| is(k, n)))
        .count();
    keys.iter().any(|k| is(k, "time")) || known >= 2
}

/// A JSON scalar as text: strings unescaped, numbers and booleans as written, null as None.
/// `Err(())` for objects and arrays.
fn scalar_text(v: &RawValue) -> Result<Option<Cow<'_, str>>, ()> {
    let s = v.get();
    match s.as_bytes().first() {
        Some(b'"') => {
            let inner = &s[1..s.len() - 1];
            if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
                Ok(Some(Cow::Borrowed(inner)))
            } else {
                Ok(Some(Cow::Owned(
                    serde_json::from_str::<String>(s).map_err(|_| ())?,
                )))
            }
        }
        Some(b'n') => Ok(None),
        Some(b'{') | Some(b'[') => Err(()),
        _ => Ok(Some(Cow::Borrowed(s))),
    }
}

/// Like [`scalar_text`], but objects and arrays are kept as their JSON text (for meta values).
fn loose_text(v: &RawValue) -> Option<Cow<'_, str>> {
    scalar_text(v).unwrap_or_else(|()| Some(Cow::Borrowed(v.get())))
}

/// One decoded row, borrowing from the chunk where it can.
struct Row<'a> {
    pos: u32,
    time: i64,
    tenant: Cow<'a, str>,
    /// source, resource_id, actor_id, action, status
    text: [Option<Cow<'a, str>>; 5],
    trace_id: Cow<'a, str>,
    meta_cols: MetaCols<'a>,
    meta: Option<Cow<'a, str>>,
    extra: Option<String>,
}

impl Row<'_> {
    /// Flattened meta column `i` (clientip, hsmid, partid, role, ouid).
    fn meta_col(&self, i: usize) -> Option<&str> {
        match &self.meta_cols[i] {
            MetaText::Null => None,
            MetaText::Text(t) => Some(t),
            MetaText::InMeta(a, b) => self.meta.as_deref().map(|m| &m[*a as usize..*b as usize]),
        }
    }

    /// The row as the lake's canonical columns (DPoD's mapping, SPEC §2).
    fn canonical(&self) -> CanonicalRow<'_> {
        CanonicalRow {
            pos: self.pos,
            time: self.time,
            tenant: &self.tenant,
            vendor: VENDOR_DPOD,
            source: self.text[0].as_deref(),
            resource_id: self.text[1].as_deref(),
            actor_id: self.text[2].as_deref(),
            action: self.text[3].as_deref(),
            status: self.text[4].as_deref(),
            outcome: RowOutcome::of(is_success(self.text[4].as_deref())),
            trace_id: &self.trace_id,
            client_ip: self.meta_col(0),
            hsm_id: self.meta_col(1),
            part_id: self.meta_col(2),
            role: self.meta_col(3),
            ouid: self.meta_col(4),
            meta: self.meta.as_deref(),
            extra: self.extra.as_deref(),
        }
    }
}

/// A flattened meta value: text of its own, or (for `meta` given as a string holding an
/// object) a byte range of the row's unescaped `meta` text, which saves a copy per value.
#[derive(Default)]
enum MetaText<'a> {
    #[default]
    Null,
    Text(Cow<'a, str>),
    InMeta(u32, u32),
}

impl<'a> From<Option<Cow<'a, str>>> for MetaText<'a> {
    fn from(c: Option<Cow<'a, str>>) -> Self {
        c.map_or(MetaText::Null, MetaText::Text)
    }
}

// Rows are moved into a Vec right away; boxing them cost an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Outcome<'a> {
    Row(Row<'a>),
    Reject(RejectReason),
    /// A syntax error at this byte offset within the record.
    Broken(usize, String),
}

/// `text` is `raw` as a string when it is known to be valid UTF-8: a record of the usual
/// shape then takes the fast path ([`fast`]), any other the general one.
fn decode_record<'a>(raw: &'a [u8], text: Option<&'a str>, pos: u32) -> Outcome<'a> {
    if let Some(row) = text.and_then(|t| fast::record(t, pos)) {
        return Outcome::Row(row);
    }
    general(raw, text, pos)
}

/// Whether the fast path and the general decoder agree on `raw`: the fast path leaves it,
/// or makes the same row of it. For the tests and the fuzz target `scan_decode`.
#[doc(hidden)]
pub fn fast_path_agrees(raw: &str) -> bool {
    let Some(fast) = fast::record(raw, 0) else {
        return true;
    };
    match general(raw.as_bytes(), Some(raw), 0) {
        Outcome::Row(slow) => fast.canonical() == slow.canonical(),
        _ => false,
    }
}

/// The general decoder: serde_json over any JSON; `text` as for [`decode_record`] (serde_json
/// then skips checking every string, and `meta`, again).
fn general<'a>(raw: &'a [u8], text: Option<&'a str>, pos: u32) -> Outcome<'a> {
    if raw.first() != Some(&b'{') {
        return match serde_json::from_slice::<IgnoredAny>(raw) {
            Ok(_) => Outcome::Reject(RejectReason::new(
                "not_object",
                "the record is not a JSON object",
            )),
            Err(e) => broken(raw, &e),
        };
    }
    let parsed = match text {
        Some(t) => serde_json::from_str::<RawRecord>(t),
        None => serde_json::from_slice::<RawRecord>(raw),
    };
    let rec: RawRecord = match parsed {
        Ok(r) => r,
        // Valid JSON that cannot be read as text (a key holding a lone surrogate escape
        // such as "\ud800") is this record's fault alone: rejected, not a break that
        // would end the member.
        Err(e) if serde_json::from_slice::<IgnoredAny>(raw).is_ok() => {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            return Outcome::Reject(RejectReason::new(
                "invalid_string",
                format!("a key is not valid Unicode: {msg}"),
            ));
        }
        Err(e) => return broken(raw, &e),
    };
    // Known scalar fields must be scalars.
    let mut text: [Option<Cow<str>>; 8] = Default::default();
    for (i, slot) in text.iter_mut().enumerate() {
        if let Some(v) = rec.fields[i] {
            match scalar_text(v) {
                Ok(t) => *slot = t,
                Err(()) if v.get().starts_with('"') => {
                    return Outcome::Reject(RejectReason::new(
                        "invalid_string",
                        format!("field {} is not valid Unicode", FIELD_NAMES[i]),
                    ))
                }
                Err(()) => {
                    return Outcome::Reject(RejectReason::new(
                        "field_not_scalar",
                        format!("field {} holds an object or array", FIELD_NAMES[i]),
                    ))
                }
            }
        }
    }
    let Some(time_text) = text[F_TIME].take() else {
        return Outcome::Reject(RejectReason::new("time_missing", "no time"));
    };
    let Some(time) = parse_time(&time_text) else {
        return Outcome::Reject(RejectReason::new(
            "time_invalid",
            format!("time {:?} is not a recognised UTC time", time_text),
        ));
    };
    let tenant = match text[F_TENANT].take() {
        Some(t) if !t.trim().is_empty() => t,
        _ => return Outcome::Reject(RejectReason::new("tenant_missing", "no tenantID")),
    };

    let (meta, meta_cols) = decode_meta(rec.fields[F_META]);
    let extra = (!rec.extra.is_empty()).then(|| {
        let mut s = String::from("{");
        for (i, (k, v)) in rec.extra.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::to_string(k.as_ref()).unwrap_or_default());
            s.push(':');
            s.push_str(v.get());
        }
        s.push('}');
        s
    });
    let trace_id = match text[F_TRACE].take() {
        Some(t) if !t.is_empty() => t,
        _ => Cow::Owned(digest_trace_id(raw)),
    };
    Outcome::Row(Row {
        pos,
        time,
        tenant,
        text: [
            text[F_SOURCE].take(),
            text[F_RESOURCE].take(),
            text[F_ACTOR].take(),
            text[F_ACTION].take(),
            text[F_STATUS].take(),
        ],
        trace_id,
        meta_cols,
        meta,
        extra,
    })
}

type MetaCols<'a> = [MetaText<'a>; 5];

/// `meta` as JSON text plus its flattened known keys.
fn decode_meta(v: Option<&RawValue>) -> (Option<Cow<'_, str>>, MetaCols<'_>) {
    let Some(v) = v else {
        return (None, Default::default());
    };
    let s = v.get();
    match s.as_bytes().first() {
        Some(b'{') => {
            let cols = match serde_json::from_str::<RawMeta>(s) {
                Ok(m) => m.fields.map(|f| f.and_then(loose_text).into()),
                Err(_) => Default::default(),
            };
            (Some(Cow::Borrowed(s)), cols)
        }
        Some(b'n') => (None, Default::default()),
        Some(b'"') => {
            // A string holding a JSON object: keep the object's text, flatten it.
            if let Ok(Some(inner)) = scalar_text(v) {
                let t = inner.trim_start();
                if t.starts_with('{') {
                    if let Ok(m) = serde_json::from_str::<RawMeta>(t) {
                        let base = inner.as_ptr() as usize;
                        let cols = m.fields.map(|f| match f.and_then(loose_text) {
                            None => MetaText::Null,
                            // Unescaped text inside `inner`: keep where it is.
                            Some(Cow::Borrowed(x)) => {
                                let a = x.as_ptr() as usize - base;
                                MetaText::InMeta(a as u32, (a + x.len()) as u32)
                            }
                            Some(Cow::Owned(x)) => MetaText::Text(Cow::Owned(x)),
                        });
                        // Moving `inner` into the row keeps its bytes where they are.
                        return (Some(Cow::Owned(inner.into_owned())), cols);
                    }
                }
            }
            (Some(Cow::Borrowed(s)), Default::default())
        }
        _ => (Some(Cow::Borrowed(s)), Default::default()),
    }
}

fn broken(raw: &[u8], e: &serde_json::Error) -> Outcome<'static> {
    // serde_json reports line and column (1-based); turn them into a byte offset.
    let (line, col) = (e.line(), e.column());
    let mut off = 0usize;
    if line > 1 {
        let mut seen = 1;
        for (i, &b) in raw.iter().enumerate() {
            if b == b'\n' {
                seen += 1;
                if seen == line {
                    off = i + 1;
                    break;
                }
            }
        }
    }
    let off = (off + col.saturating_sub(1)).min(raw.len());
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    Outcome::Broken(off, format!("broken JSON: {msg}"))
}

/// `h:` + hex SHA-256 of the record's canonical JSON (keys sorted, no white space,
/// `meta` given as an object when it was a string holding one), for records without a traceID.
pub fn digest_trace_id(raw: &[u8]) -> String {
    let mut v: serde_json::Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(_) => serde_json::Value::String(String::from_utf8_lossy(raw).into_owned()),
    };
    if let serde_json::Value::Object(m) = &mut v {
        let key = m.keys().find(|k| k.eq_ignore_ascii_case("meta")).cloned();
        if let Some(k) = key {
            if let Some(serde_json::Value::String(s)) = m.get(&k) {
                if let Ok(obj @ serde_json::Value::Object(_)) =
                    serde_json::from_str::<serde_json::Value>(s)
                {
                    m.insert(k, obj);
                }
            }
        }
        m.remove("traceID");
    }
    let mut canon = String::new();
    write_canonical(&v, &mut canon);
    let digest = Sha256::digest(canon.as_bytes());
    let mut out = String::with_capacity(2 + 64);
    out.push_str("h:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Canonical JSON text: object keys sorted, no white space.
pub fn write_canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Whether a status means success (Luna's `LUNA_RET_OK`, CDSPaaS's `success`).
pub fn is_success(status: Option<&str>) -> bool {
    matches!(status, Some(s) if s == "LUNA_RET_OK" || s.eq_ignore_ascii_case("success"))
}

// ---------------------------------------------------------------------------
// A whole chunk.

/// Decodes every record of `chunk`.
pub fn decode_chunk(chunk: Arc<Chunk>) -> DecodedChunk {
    let mut parts = RowsBuilder::new(chunk.data.len());
    let mut rejects = Vec::new();
    let mut brk = None;
    let mut records_read = chunk.records.len() as u64;
    let mut time_range: Option<(i64, i64)> = None;
    // One pass over the chunk (cheap on ASCII) instead of one per string in serde_json.
    let text = std::str::from_utf8(&chunk.data).ok();
    let n = chunk.records.len();
    for (pos, &(a, b)) in chunk.records.iter().enumerate() {
        let raw = &chunk.data[a as usize..b as usize];
        let raw_text = match text {
            Some(t) => t.get(a as usize..b as usize),
            // Only a chunk holding invalid UTF-8 is checked record by record.
            None => match std::str::from_utf8(raw) {
                Ok(t) => Some(t),
                Err(e) => {
                    rejects.push((
                        pos as u32,
                        RejectReason::new(
                            "invalid_utf8",
                            format!("invalid UTF-8 at byte {} of the record", e.valid_up_to()),
                        ),
                    ));
                    continue;
                }
            },
        };
        match decode_record(raw, raw_text, pos as u32) {
            Outcome::Row(r) => {
                time_range = Some(time_range.map_or((r.time, r.time), |(lo, hi)| {
                    (lo.min(r.time), hi.max(r.time))
                }));
                parts.push(&r.canonical(), n - pos);
            }
            Outcome::Reject(why) => rejects.push((pos as u32, why)),
            Outcome::Broken(off, reason) => {
                brk = Some(Break {
                    offset: chunk.base_offset + a as u64 + off as u64,
                    reason,
                });
                records_read = pos as u64;
                break;
            }
        }
    }
    DecodedChunk {
        chunk: chunk.clone(),
        slices: parts.finish(),
        rejects,
        records_read,
        time_range,
        brk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, TimestampMicrosecondArray};
    use arrow::record_batch::RecordBatch;

    fn chunk(records: &[&str]) -> Arc<Chunk> {
        let mut data = Vec::new();
        let mut recs = Vec::new();
        for r in records {
            let a = data.len() as u32;
            data.extend_from_slice(r.as_bytes());
            recs.push((a, data.len() as u32));
            data.push(b',');
        }
        Arc::new(Chunk {
            data,
            records: recs,
            base_offset: 100,
            first_index: 0,
            oversized: None,
            origins: Vec::new(),
        })
    }

    fn col(b: &RecordBatch, c: crate::lake::Col) -> Vec<Option<&str>> {
        b.column(c as usize).as_string::<i32>().iter().collect()
    }

    #[test]
    fn decodes_both_meta_forms_and_numbers() {
        use crate::lake::Col;
        let d = decode_chunk(chunk(&[
            r#"{"time":"2022-03-10 15:29:01 UTC","source":"thales/cloudhsm/p1","resourceID":"r","actorID":42,"tenantID":"t1","action":"LUNA_LOGIN","status":"LUNA_RET_OK","traceID":"abc","meta":{"clientip":"1.2.3.4","hsmid":1234,"partid":"p","role":"CO","ouid":null,"x":[1]}}"#,
            r#"{"time":"2022-03-10T15:29:02.25Z","tenantID":"t1","status":"LUNA_RET_UM_PIN_INCORRECT","traceID":"def","meta":"{\"clientip\":\"5.6.7.8\",\"ouid\":\"0a\"}","newField":true}"#,
        ]));
        assert!(d.brk.is_none() && d.rejects.is_empty());
        assert_eq!(d.slices.len(), 1);
        let b = &d.slices[0].batch;
        assert_eq!(col(b, Col::ActorId), vec![Some("42"), None]);
        assert_eq!(col(b, Col::HsmId), vec![Some("1234"), None]);
        assert_eq!(
            col(b, Col::ClientIp),
            vec![Some("1.2.3.4"), Some("5.6.7.8")]
        );
        assert_eq!(col(b, Col::Ouid), vec![None, Some("0a")]);
        assert_eq!(col(b, Col::Outcome), vec![Some("success"), Some("failure")]);
        assert_eq!(
            col(b, Col::Meta)[1],
            Some(r#"{"clientip":"5.6.7.8","ouid":"0a"}"#)
        );
        assert_eq!(col(b, Col::Extra), vec![None, Some(r#"{"newField":true}"#)]);
        let t: &TimestampMicrosecondArray = b.column(0).as_primitive();
        assert_eq!(t.value(1) - t.value(0), 1_250_000);
    }

    #[test]
    fn rejects_and_breaks() {
        let d = decode_chunk(chunk(&[
            r#"[1]"#,
            r#"{"tenantID":"t"}"#,
            r#"{"time":"yesterday","tenantID":"t"}"#,
            r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":""}"#,
            r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":"t","action":{"a":1}}"#,
            r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":"t","meta":[1,2]}"#,
            r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":"t" "x":1}"#,
            r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":"t"}"#,
        ]));
        let codes: Vec<_> = d.rejects.iter().map(|(p, r)| (*p, r.code)).collect();
        assert_eq!(
            codes,
            vec![
                (0, "not_object"),
                (1, "time_missing"),
                (2, "time_invalid"),
                (3, "tenant_missing"),
                (4, "field_not_scalar")
            ]
        );
        assert_eq!(d.records_read, 6);
        let brk = d.brk.unwrap();
        assert!(brk.reason.starts_with("broken JSON"), "{}", brk.reason);
        assert!(brk.offset > 100);
        // The odd meta is kept, flattened columns null, and the missing traceID digested.
        let b = &d.slices[0].batch;
        assert_eq!(b.num_rows(), 1);
        assert_eq!(col(b, crate::lake::Col::Meta), vec![Some("[1,2]")]);
        assert!(col(b, crate::lake::Col::TraceId)[0]
            .unwrap()
            .starts_with("h:"));
    }

    #[test]
    fn one_big_record_does_not_size_the_next_chunks_builders() {
        // The builders of a chunk are sized from the bytes per row of the last chunk the
        // thread decoded: a single record with a large field must not make the next
        // chunk reserve (rows x that field) bytes (1000 rows x 1 MiB here).
        let big = format!(
            r#"{{"time":"2022-03-10 15:29:01 UTC","tenantID":"t","meta":{{"blob":"{}"}}}}"#,
            "x".repeat(1 << 20)
        );
        let d = decode_chunk(chunk(&[big.as_str()]));
        assert_eq!(d.slices[0].batch.num_rows(), 1);
        let small = r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":"t","traceID":"a","meta":{"role":"CO"}}"#;
        let d = decode_chunk(chunk(&vec![small; 1000]));
        let bytes = d.slices[0].batch.get_array_memory_size();
        assert!(bytes < 8 << 20, "1000 small rows hold {bytes} bytes");
    }

    #[test]
    fn a_key_with_a_lone_surrogate_is_a_reject_not_a_break() {
        // Found by ingest::check's agreement with serde_json (seed dup-keys.ndjson): valid
        // JSON with a key serde_json cannot unescape ended the member, dropping what followed.
        let d = decode_chunk(chunk(&[
            r#"{"\ud800":1,"time":"2022-03-10 15:29:01 UTC","tenantID":"t"}"#,
            r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":"\udc00"}"#,
            r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":"t","meta":{"\ud800":1}}"#,
        ]));
        assert!(d.brk.is_none(), "{:?}", d.brk);
        assert_eq!(d.records_read, 3);
        let codes: Vec<_> = d.rejects.iter().map(|(p, r)| (*p, r.code)).collect();
        assert_eq!(codes, vec![(0, "invalid_string"), (1, "invalid_string")]);
        assert_eq!(d.slices[0].batch.num_rows(), 1);
    }

    #[test]
    fn deep_nesting_is_no_break() {
        // serde_json's recursion limit (128) does not apply to raw values and ignored
        // ones: records nested deeper are decoded like any other.
        let meta = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let deep = format!(r#"{{"time":"2022-03-10 15:29:01 UTC","tenantID":"t","meta":{meta}}}"#);
        let ok = r#"{"time":"2022-03-10 15:29:01 UTC","tenantID":"t"}"#;
        let d = decode_chunk(chunk(&[ok, &deep, &meta, ok]));
        assert!(d.brk.is_none(), "{:?}", d.brk);
        let codes: Vec<_> = d.rejects.iter().map(|(p, r)| (*p, r.code)).collect();
        assert_eq!(codes, vec![(2, "not_object")]);
        assert_eq!(d.slices[0].batch.num_rows(), 3);
    }

    #[test]
    fn digest_ignores_meta_form_and_key_order() {
        let a = digest_trace_id(br#"{"time":"t","meta":{"b":1,"a":"x"}}"#);
        let b = digest_trace_id(br#"{"meta":"{\"a\":\"x\",\"b\":1}","time":"t"}"#);
        assert_eq!(a, b);
        assert_eq!(a.len(), 66);
    }

    const USUAL: &str = r#"{"time":"2025-01-01 00:00:45.117494 UTC","source":"thales/cloudhsm/4925546","resourceID":"618d784f","actorID":"8a3a3b99","tenantID":"468c52f3","action":"LUNA_SIGN","status":"LUNA_RET_OK","traceID":"3GzBcQnj","meta":{"clientip":"45.159.160.242","hsmid":"190745","partid":"4925546","role":"CO","ouid":null}}"#;

    /// The records the fast path must take, each to the row the general decoder makes.
    #[test]
    fn the_fast_path_takes_the_usual_shapes_to_the_same_rows() {
        let meta_string = USUAL.replace(
            r#""meta":{"clientip":"45.159.160.242","hsmid":"190745","partid":"4925546","role":"CO","ouid":null}"#,
            r#""meta":" {\"clientip\": \"45.159.160.242\", \"hsmid\":\"190745\",\"role\":\"CO\",\"ouid\":\"001\"} ""#,
        );
        let pretty = "{\n    \"time\": \"2022-10-30 14:52:47 UTC\",\n    \"tenantID\": \"b8\",\r\n\t\"traceID\" : \"_PQ\",\n    \"meta\": {\"clientip\": \"10.0.0.1\", \"hsmid\": 567782, \"x\": true, \"role\": \"CO\"}\n}";
        let cases = [
            USUAL.to_string(),
            meta_string,
            pretty.to_string(),
            USUAL.replace("\"tenantID\"", "\"TENANTid\"").replace("\"clientip\"", "\"ClientIP\""),
            USUAL.replace("LUNA_SIGN", r#"LUNA\u00e9\n\"SIGN\""#),
            USUAL.replace(r#""actorID":"8a3a3b99""#, r#""actorID":-1.5e3"#),
            USUAL.replace(r#""status":"LUNA_RET_OK""#, r#""status":null"#),
            USUAL.replace(r#""meta":{"#, r#""meta":{"extra":"ok","#),
            USUAL.replace(r#""meta":{"clientip":"45.159.160.242","hsmid":"190745","partid":"4925546","role":"CO","ouid":null}"#, r#""meta":null"#),
            USUAL.replace(r#""meta":{"clientip":"45.159.160.242","hsmid":"190745","partid":"4925546","role":"CO","ouid":null}"#, r#""meta":"{}""#),
            USUAL.replace(r#""meta":{"clientip":"45.159.160.242","hsmid":"190745","partid":"4925546","role":"CO","ouid":null}"#, r#""meta":{ }"#),
            USUAL.replace("2025-01-01 00:00:45.117494 UTC", "2025-01-01T00:00:45+02:00"),
        ];
        for c in &cases {
            assert!(fast::record(c, 0).is_some(), "the fast path left {c}");
            assert!(fast_path_agrees(c), "rows differ for {c}");
        }
    }

    /// Records off the usual shape: the fast path leaves them (or agrees), and the row,
    /// reject or break is the general decoder's.
    #[test]
    fn the_fast_path_leaves_what_it_does_not_know() {
        let m = r#""meta":{"clientip":"45.159.160.242","hsmid":"190745","partid":"4925546","role":"CO","ouid":null}"#;
        let cases = [
            USUAL.replace("\"source\"", "\"newField\":1,\"source\""),
            USUAL.replace("\"source\"", "\"tenantID\":\"other\",\"source\""),
            USUAL.replace("\"source\"", "\"s\\u006furce\""),
            USUAL.replace(r#""clientip":"45"#, r#""clientip":"4\"5"#),
            USUAL.replace(r#""role":"CO""#, r#""role":"CO","role":"CU""#),
            USUAL.replace(r#""role":"CO""#, r#""role":{"a":1}"#),
            USUAL.replace(r#""role":"CO""#, r#""x":[1,2]"#),
            USUAL.replace(m, r#""meta":[1]"#),
            USUAL.replace(m, r#""meta":"plain text""#),
            USUAL.replace(m, r#""meta":"{\"a\":1} x""#),
            USUAL.replace(m, r#""meta":"{\"clientip\":\"\u00e9\"}""#),
            USUAL.replace(m, r#""meta":"{\"clientip\":\"\\ud800\"}""#),
            USUAL.replace(m, r#""meta":"{\"ouid\":\"00\\/1\"}""#),
            USUAL.replace("LUNA_SIGN", r#"\ud800"#),
            USUAL.replace("LUNA_SIGN", "LUNA\tSIGN"),
            USUAL.replace("LUNA_SIGN", r#"LUNA\qSIGN"#),
            USUAL.replace(r#""actorID":"8a3a3b99""#, r#""actorID":01"#),
            USUAL.replace(r#""actorID":"8a3a3b99""#, r#""actorID":1."#),
            USUAL.replace(r#""actorID":"8a3a3b99""#, r#""actorID":tru"#),
            USUAL.replace(r#""traceID":"3GzBcQnj""#, r#""traceID":"""#),
            USUAL.replace(r#""tenantID":"468c52f3""#, r#""tenantID":"  ""#),
            USUAL.replace("2025-01-01 00:00:45.117494 UTC", "yesterday"),
            USUAL.replace(r#","time":"2025-01-01 00:00:45.117494 UTC""#, ""),
            format!("{USUAL} x"),
            format!(" {USUAL}"),
            format!("{USUAL}\n "),
            USUAL[..USUAL.len() - 1].to_string(),
            USUAL.replace(",\"source\"", ",,\"source\""),
            USUAL.replace(":\"thales", ":\"thales\\"),
            "{}".to_string(),
            "{ }".to_string(),
        ];
        for c in &cases {
            assert!(fast_path_agrees(c), "rows differ for {c}");
            // The whole decoder still gives the general path's answer.
            let whole = decode_chunk(chunk(&[c]));
            let general_rows = matches!(general(c.as_bytes(), Some(c), 0), Outcome::Row(_));
            assert_eq!(whole.slices.len(), general_rows as usize, "{c}");
        }
    }

    /// Every record of a sample export: the fast path takes them all, to the same rows.
    #[test]
    fn the_fast_path_agrees_on_a_sample_export() {
        use std::io::Read;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/sample");
        let zip = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "zip"))
            .min()
            .unwrap();
        let mut z = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
        let mut text = String::new();
        z.by_index(0).unwrap().read_to_string(&mut text).unwrap();
        let mut s = crate::ingest::scan::Scanner::new(text.as_bytes());
        let (mut n, mut fast_n) = (0, 0);
        while let Some(c) = s.next_chunk().unwrap() {
            for &(a, b) in &c.records {
                let raw = std::str::from_utf8(&c.data[a as usize..b as usize]).unwrap();
                assert!(fast_path_agrees(raw), "rows differ for {raw}");
                n += 1;
                fast_n += fast::record(raw, 0).is_some() as usize;
            }
        }
        assert!(n > 100, "{n} records");
        assert_eq!(fast_n, n, "the fast path left some records");
    }

    /// Near misses of the usual shape, made by seeded byte edits (insert, delete, replace
    /// with JSON's own punctuation, escapes, control and non-ASCII characters): wherever
    /// the fast path takes one, the general decoder makes the same row of it.
    #[test]
    fn the_fast_path_agrees_on_mutated_records() {
        let meta_string = USUAL.replace(
            r#"{"clientip":"45.159.160.242","hsmid":"190745","partid":"4925546","role":"CO","ouid":null}"#,
            r#""{\"clientip\":\"45.159.160.242\",\"role\":\"CO\",\"ouid\":\"0a\"}""#,
        );
        let alphabet: Vec<&str> = vec![
            "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "\t", "\n", "\u{1}", "0", "-", "1e5",
            "null", "true", "a", "\\u00e9", "\\ud800", "\\n", "é", "\u{a0}", "meta", "time",
        ];
        let mut rng = crate::generate::Rng::new(32);
        let (mut taken, mut total) = (0, 0);
        for base in [USUAL.to_string(), meta_string] {
            for _ in 0..20_000 {
                let mut rec = base.clone();
                for _ in 0..1 + rng.below(3) {
                    let mut at = rng.below(rec.len() as u64 + 1) as usize;
                    while !rec.is_char_boundary(at) {
                        at -= 1;
                    }
                    let piece = alphabet[rng.below(alphabet.len() as u64) as usize];
                    let mut end = (at + 1 + rng.below(4) as usize).min(rec.len());
                    while !rec.is_char_boundary(end) {
                        end += 1;
                    }
                    match rng.below(3) {
                        0 => rec.insert_str(at, piece),
                        1 => rec.replace_range(at..end, ""),
                        _ => rec.replace_range(at..end, piece),
                    }
                }
                assert!(fast_path_agrees(&rec), "rows differ for {rec}");
                total += 1;
                taken += fast::record(&rec, 0).is_some() as usize;
            }
        }
        // Both sides of the line were tried.
        assert!(
            taken > total / 10 && taken < total,
            "{taken} of {total} taken"
        );
    }
}
