//! DPoD's fast path: one pass over the bytes of a record of the shape the vendor sends (a
//! flat object of string fields, `meta` an object of scalars or a string holding one),
//! straight into a row of borrowed slices.
//!
//! It takes only what it fully understands: a record not opening with `{`, an unknown or
//! repeated key, an escaped key, a nested value, an escaped value inside `meta`'s object, a
//! record that would be rejected or a missing `traceID` all answer `None`, and the general
//! decoder ([the parent module](super), serde_json) takes the record. So every record converts to the same row either way; the fuzz target
//! `scan_decode` and the tests check that record by record.

use std::borrow::Cow;

use super::{MetaText, Row, FIELD_NAMES, F_META, F_TENANT, F_TIME, F_TRACE};
use crate::time::parse_time;

/// Meta's flattened keys, in the order of [`Row`]'s meta columns.
const META_NAMES: [&str; 5] = ["clientip", "hsmid", "partid", "role", "ouid"];

/// The record `s` (one JSON value, starting at `{`) as a row, if it has the usual shape.
pub(super) fn record(s: &str, pos: u32) -> Option<Row<'_>> {
    let b = s.as_bytes();
    // The general decoder rejects a record that does not open with `{` (not_object).
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut i = ws(b, 1);
    let mut text: [Option<Cow<str>>; 8] = Default::default();
    let mut meta = None;
    let mut meta_cols: [MetaText; 5] = Default::default();
    let mut seen = 0u16;
    // Records name their fields in the same order: the one after the last is tried first.
    let mut next = 0;
    if b.get(i) == Some(&b'}') {
        return None; // no time: a reject, the general path words it
    }
    loop {
        let (ka, kb, esc) = string(b, i)?;
        if esc {
            return None;
        }
        let f = key_index(&FIELD_NAMES, &b[ka..kb], next)?;
        next = f + 1;
        if seen & (1 << f) != 0 {
            return None;
        }
        seen |= 1 << f;
        i = ws(b, kb + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        if f == F_META {
            i = match *b.get(i)? {
                b'{' => {
                    let (end, cols) = meta_object(b, i)?;
                    meta_cols = cols.map(|c| match c {
                        Val::Null => MetaText::Null,
                        Val::Text(a, z) => MetaText::Text(Cow::Borrowed(&s[a..z])),
                    });
                    meta = Some(Cow::Borrowed(&s[i..end]));
                    end
                }
                b'"' => {
                    let (a, z, esc) = string(b, i)?;
                    let inner = if esc {
                        Cow::Owned(unescape(&s[a..z])?)
                    } else {
                        Cow::Borrowed(&s[a..z])
                    };
                    let t = inner.trim_start();
                    let off = inner.len() - t.len();
                    let (end, cols) = meta_object(t.as_bytes(), 0)?;
                    if ws(t.as_bytes(), end) != t.len() {
                        return None;
                    }
                    meta_cols = cols.map(|c| match c {
                        Val::Null => MetaText::Null,
                        Val::Text(a, z) => MetaText::InMeta((off + a) as u32, (off + z) as u32),
                    });
                    meta = Some(Cow::Owned(inner.into_owned()));
                    z + 1
                }
                b'n' => literal(b, i, b"null")?,
                _ => return None,
            };
        } else {
            let (v, end, esc) = scalar(b, i)?;
            text[f] = match v {
                Val::Null => None,
                Val::Text(a, z) if esc => Some(Cow::Owned(unescape(&s[a..z])?)),
                Val::Text(a, z) => Some(Cow::Borrowed(&s[a..z])),
            };
            i = end;
        }
        i = ws(b, i);
        match b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => break,
            _ => return None,
        }
    }
    if ws(b, i + 1) != b.len() {
        return None;
    }
    let time = parse_time(text[F_TIME].as_deref()?)?;
    let tenant = text[F_TENANT].take().filter(|t| !t.trim().is_empty())?;
    let trace_id = text[F_TRACE].take().filter(|t| !t.is_empty())?;
    let [_, source, resource, actor, _, action, status, _] = text;
    Some(Row {
        pos,
        time,
        tenant,
        text: [source, resource, actor, action, status],
        trace_id,
        meta_cols,
        meta,
        extra: None,
    })
}

/// A scalar's text as a byte range (a string's content, or a number or boolean as written).
#[derive(Clone, Copy)]
enum Val {
    Null,
    Text(usize, usize),
}

/// The scalar at `b[i]`, where it ends, and whether it is a string holding an escape;
/// `None` for objects, arrays and bad syntax.
fn scalar(b: &[u8], i: usize) -> Option<(Val, usize, bool)> {
    match *b.get(i)? {
        b'"' => {
            let (a, z, esc) = string(b, i)?;
            Some((Val::Text(a, z), z + 1, esc))
        }
        b'n' => Some((Val::Null, literal(b, i, b"null")?, false)),
        b't' => Some((Val::Text(i, i + 4), literal(b, i, b"true")?, false)),
        b'f' => Some((Val::Text(i, i + 5), literal(b, i, b"false")?, false)),
        b'-' | b'0'..=b'9' => {
            let end = number(b, i)?;
            Some((Val::Text(i, end), end, false))
        }
        _ => None,
    }
}

/// An object of scalars at `b[i] == '{'`: where it ends and its known keys' values. Keys
/// with escapes, repeated known keys and nested values answer `None`; so do escaped
/// strings (their unescaped text would not lie in `b`).
fn meta_object(b: &[u8], i: usize) -> Option<(usize, [Val; 5])> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut cols = [Val::Null; 5];
    let mut seen = 0u8;
    let mut next = 0;
    let mut i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some((i + 1, cols));
    }
    loop {
        let (ka, kb, esc) = string(b, i)?;
        if esc {
            return None;
        }
        i = ws(b, kb + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        let (v, end, esc) = scalar(b, i)?;
        if esc {
            return None;
        }
        if let Some(k) = key_index(&META_NAMES, &b[ka..kb], next) {
            next = k + 1;
            if seen & (1 << k) != 0 {
                return None;
            }
            seen |= 1 << k;
            cols[k] = v;
        }
        i = ws(b, end);
        match b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => return Some((i + 1, cols)),
            _ => return None,
        }
    }
}

/// Which of `names` `key` is (ASCII case ignored), trying `names[guess]` first.
#[inline]
fn key_index(names: &[&str], key: &[u8], guess: usize) -> Option<usize> {
    // A byte loop: keys are short, and a call to memcmp per key cost more than the compare.
    let same = |n: &str| n.len() == key.len() && n.bytes().zip(key).all(|(a, &b)| a == b);
    if names.get(guess).is_some_and(|n| same(n)) {
        return Some(guess);
    }
    let is = |n: &&str| n.len() == key.len() && n.as_bytes().eq_ignore_ascii_case(key);
    names.iter().position(is)
}

/// Skips JSON white space from `i`.
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// `lit` at `b[i]`: where it ends.
fn literal(b: &[u8], i: usize, lit: &[u8]) -> Option<usize> {
    (b.get(i..i + lit.len())? == lit).then_some(i + lit.len())
}

/// A JSON number at `b[i]` (the grammar exactly: `-? (0 | [1-9][0-9]*) (. [0-9]+)?
/// ([eE] [+-]? [0-9]+)?`): where it ends.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > from).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

/// Whether `c` ends a run of plain string bytes: a quote, a backslash or a control
/// character (not allowed in JSON strings).
#[inline]
fn special(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// The position of the first [`special`] byte of `b` from `j`, or `b.len()`.
#[inline]
fn next_special(b: &[u8], mut j: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SSE2 is part of the x86_64 baseline: sixteen bytes at a time.
        while j + 16 <= b.len() {
            // SAFETY: SSE2 is always there on x86_64, j + 16 <= b.len(), and the load is
            // unaligned.
            let mask = unsafe {
                let v = _mm_loadu_si128(b.as_ptr().add(j).cast::<__m128i>());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // Unsigned v <= 0x1f exactly when min(v, 0x1f) == v.
                let ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), ctl)) as u32
            };
            if mask != 0 {
                return j + mask.trailing_zeros() as usize;
            }
            j += 16;
        }
    }
    while j < b.len() && !special(b[j]) {
        j += 1;
    }
    j
}

/// The string at `b[i]` (`None` if that is no quote): its content's range and whether it holds an escape.
/// `None` for a control character (not allowed in JSON strings) or no closing quote.
fn string(b: &[u8], i: usize) -> Option<(usize, usize, bool)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let a = i + 1;
    let mut j = a;
    let mut esc = false;
    loop {
        j = next_special(b, j);
        match *b.get(j)? {
            b'"' => return Some((a, j, esc)),
            b'\\' => {
                esc = true;
                j += 2;
            }
            _ => return None,
        }
    }
}

/// A string's content unescaped: the one-character escapes by hand, anything with `\u`
/// through serde_json (surrogate pairs and their errors are its to judge).
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = memchr::memchr(b'\\', rest.as_bytes()) {
        out.push_str(&rest[..k]);
        let c = match rest.as_bytes().get(k + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return serde_json::from_str(&format!("\"{s}\"")).ok(),
            _ => return None,
        };
        out.push(c);
        rest = &rest[k + 2..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_finds_every_special_byte_and_only_those() {
        for c in 0u8..=255 {
            for at in [0, 7, 15, 16, 20] {
                let mut b = [b'a'; 21];
                b[at] = c;
                let want = if special(c) { at } else { b.len() };
                assert_eq!(next_special(&b, 0), want, "byte {c:#x} at {at}");
            }
        }
        assert_eq!(next_special(b"ab\"cd", 0), 2);
        assert_eq!(next_special(b"ab\"cd", 3), 5);
    }

    #[test]
    fn numbers_follow_the_json_grammar() {
        for ok in ["0", "-0", "12", "1.5", "-1.5e3", "2E+7", "3e-2"] {
            assert_eq!(number(ok.as_bytes(), 0), Some(ok.len()), "{ok}");
        }
        for bad in ["-", "1.", "1e", "1e+", ".5", "-a"] {
            let end = number(bad.as_bytes(), 0);
            assert!(end.is_none_or(|e| e < bad.len()), "{bad}");
        }
        // A leading zero ends the number; what follows is then a syntax error.
        assert_eq!(number(b"01", 0), Some(1));
    }

    #[test]
    fn unescape_matches_serde_json() {
        for s in [
            r#"a\"b"#,
            r#"\\\/\b\f\n\r\t"#,
            r#"\u00e9x"#,
            r#"\ud83d\ude00"#,
            "plain",
        ] {
            let want: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(unescape(s).as_deref(), Some(want.as_str()), "{s}");
        }
        assert_eq!(unescape(r#"\x"#), None);
        assert_eq!(unescape(r#"\ud800"#), None);
    }
}
