//! What the JSON vendors share below their mappings: a record read into its top-level
//! fields as borrowed raw JSON (no `Value` tree), text out of a raw value, a JSON object
//! written back from fields, and the per-chunk loop that turns each record into a row or
//! a reject alone (a malformed record never ends the member: its framer found its end).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::interface::{decode_each, Chunk, DecodedChunk, RejectReason};
use crate::lake::rows::RowsBuilder;

/// A JSON object's fields in order, each value as its raw JSON text.
#[derive(Default, Debug)]
pub struct RawObject<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawObject<'a> {
    /// Reads an object from raw JSON text; `None` when it is not an object.
    pub fn parse(text: &'a str) -> Result<RawObject<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The raw value of the first field named `key`.
    pub fn raw(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The field `key` as text (see [`text`]).
    pub fn text(&self, key: &str) -> Option<Cow<'a, str>> {
        self.raw(key).and_then(text)
    }

    /// The field `key` read as an object (`None` when absent or not an object).
    pub fn object(&self, key: &str) -> Option<RawObject<'a>> {
        self.raw(key).and_then(object)
    }
}

/// A raw value read as an object, `None` when it is not one.
pub fn object(v: &RawValue) -> Option<RawObject<'_>> {
    v.get()
        .starts_with('{')
        .then(|| RawObject::parse(v.get()).ok())
        .flatten()
}

/// An object key, borrowed from the input unless it holds escapes.
pub(crate) struct Key<'a>(pub Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> de::Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    fields.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(RawObject(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON scalar as text: a string unescaped, a number or boolean as written; `None` for
/// null, objects, arrays and empty strings.
pub fn text(v: &RawValue) -> Option<Cow<'_, str>> {
    let s = v.get();
    let t = match s.as_bytes().first()? {
        b'"' => {
            let inner = &s[1..s.len() - 1];
            if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
                Cow::Borrowed(inner)
            } else {
                Cow::Owned(serde_json::from_str::<String>(s).ok()?)
            }
        }
        b'n' | b'{' | b'[' => return None,
        _ => Cow::Borrowed(s),
    };
    (!t.is_empty()).then_some(t)
}

/// Writes `{"k":v,...}` from fields whose values are raw JSON; `None` when there are none.
pub fn write_object<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<String> {
    let mut s = String::from("{");
    for (k, v) in fields {
        if s.len() > 1 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(k).unwrap_or_default());
        s.push(':');
        s.push_str(v);
    }
    (s.len() > 1).then(|| {
        s.push('}');
        s
    })
}

/// A string as a JSON string literal.
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Decodes every record of a chunk with `record`, which pushes the record's row (record
/// position, records left) and returns its time, or says why it is rejected. A record
/// that is not UTF-8 or not a JSON object is rejected here, alone.
pub fn decode_records(
    chunk: Arc<Chunk>,
    mut record: impl FnMut(
        RawObject<'_>,
        &str,
        u32,
        &mut RowsBuilder,
        usize,
    ) -> Result<i64, RejectReason>,
) -> DecodedChunk {
    decode_each(chunk, |text, pos, rows, left| {
        match RawObject::parse(text) {
            Ok(obj) => record(obj, text, pos, rows, left),
            Err(e) => Err(invalid_json(text.as_bytes(), &e)),
        }
    })
}

/// Why a record is not a JSON object, with the byte where it stops making sense.
pub fn invalid_json(raw: &[u8], e: &serde_json::Error) -> RejectReason {
    if raw.first() != Some(&b'{') && serde_json::from_slice::<de::IgnoredAny>(raw).is_ok() {
        return RejectReason::new("not_object", "the record is not a JSON object");
    }
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    // Records are framed one per value, so line and column locate the byte.
    let at = byte_at(raw, e.line(), e.column());
    RejectReason::new("invalid_json", format!("{msg} at byte {at} of the record"))
}

fn byte_at(raw: &[u8], line: usize, column: usize) -> usize {
    let mut at = 0;
    for _ in 1..line {
        match memchr::memchr(b'\n', &raw[at..]) {
            Some(i) => at += i + 1,
            None => break,
        }
    }
    (at + column.saturating_sub(1)).min(raw.len())
}

/// A required field is missing or empty.
pub fn missing(code: &'static str, what: &str) -> RejectReason {
    RejectReason::new(code, format!("no {what}"))
}

/// The time of a record from its RFC 3339 text, or why not.
pub fn time_of(text: Option<&str>, field: &str) -> Result<i64, RejectReason> {
    let t = text.ok_or_else(|| missing("time_missing", field))?;
    crate::time::parse_time(t).ok_or_else(|| {
        RejectReason::new(
            "time_invalid",
            format!("{field} {t:?} is not a recognised UTC time"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_text_and_objects() {
        let o = RawObject::parse(r#"{"a":"x\"y","b":12,"c":{"d":null},"e":""}"#).unwrap();
        assert_eq!(o.text("a").as_deref(), Some("x\"y"));
        assert_eq!(o.text("b").as_deref(), Some("12"));
        assert_eq!(o.text("c"), None);
        assert_eq!(o.text("e"), None);
        assert_eq!(o.object("c").unwrap().raw("d").unwrap().get(), "null");
        assert_eq!(
            write_object([("k", "1"), ("q\"", "\"v\"")]).as_deref(),
            Some(r#"{"k":1,"q\"":"v"}"#)
        );
        assert_eq!(write_object([]), None);
        assert_eq!(byte_at(b"{\n\"a\":x}", 2, 5), 6);
    }
}
