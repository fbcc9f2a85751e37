//! HashiCorp Vault audit device logs (`vendor` `hashicorp-vault`): JSON Lines (or
//! concatenated JSON objects) of `request` and `response` entries, as the `file` device
//! writes them (`vault_audit.log`, rotated and gzipped). Every string value is an
//! `hmac-sha256:…` digest unless the device logs raw; values are kept as they are.
//!
//! Vault logs a `request` entry when a call arrives and a `response` entry with the same
//! `request.id` when it ends; other calls' entries may come between them. The decoder
//! joins them within a chunk into one row per `request.id`: the response entry when
//! there is one (it carries the request too), else the request alone. A joined row is
//! handed over at both entries' places, so the lake keeps it once and counts the second
//! entry as a duplicate (every record read is accounted for). A request pairs
//! with the first response after it with the same id (a second request with that id
//! waits for the next one). The framer ([`Framer`]) keeps pairs in one chunk: it ends
//! a chunk only where every request before the end has its response before it, and
//! carries the records after that place into the next chunk.
//!
//! Mapping (the entry a row comes from is the response when paired, else the entry
//! alone): `time` its `time` (nanoseconds cut to microseconds); `tenant_id` `--tenant` (entries name none); `actor_id`
//! for a login the user its path names (`auth/userpass/login/<name>`), else
//! `auth.display_name`, else `auth.entity_id`; `role` the `auth.policies` joined by
//! `,`; `client_ip` `request.remote_address`; `source` `request.mount_type`; `part_id`
//! `request.namespace.path`, else `request.namespace.id` (`root`); `resource_id` the
//! `request.path`; `action` and `ouid`: on a transit mount `<mount>/<op>/<key>` (encrypt,
//! decrypt, rewrap, sign, verify, hmac, backup, restore; `datakey/<type>/<key>`,
//! `export/<type>/<key>`) gives `<op>` and the key, `keys/<key>` gives `create-key`
//! (update, create), `delete-key` or `read-key`, `keys/<key>/<sub>` gives `<sub>-key`
//! (`rotate-key`, `config-key`); `auth/<mount>/login[/…]` gives `login`; any other path
//! gives the `request.operation` and the path's first two segments (`update
//! sys/policies`). `outcome` failure when the entry's `error` is a non-empty string
//! (`status` its first line, without go-multierror's `N error(s) occurred:` and `* `),
//! success for a response without one (`status` `ok`), unknown for a request alone
//! without one (`status` `unknown`). `trace_id` is `vault:<request.id>`, and
//! `vault:<request.id>#request` for a request alone. `meta` keeps every other field of
//! the entry as written (`auth` without `display_name`, `request` without `path`,
//! `remote_address` and `id`, `response`, `error`, `time`, `type`).
//!
//! Limits of the pairing: a pair split across members (log rotation between the
//! request and its response), or by an oversized record or the carry bound (a request
//! whose response is not within about a chunk's bytes), gives two rows: the request
//! alone (`#request`, outcome unknown) and the call's row from its response, the same
//! row a joined pair gives. Nothing is rejected and no outcome is lost; the call shows
//! once more as an unknown request.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::interface::{Break, Chunk, DecodeContext, DecodedChunk, RejectReason, CHUNK_TARGET};
use super::json::{self, missing, text, time_of, RawObject};
use super::scan::Scanner;
use crate::lake::rows::{CanonicalRow, Outcome, RowsBuilder};

/// The value of the `vendor` column for HashiCorp Vault rows.
pub const VENDOR: &str = "hashicorp-vault";

/// Whether a member whose first record has these top-level keys is a Vault audit log.
pub fn claims(keys: &[&[u8]]) -> bool {
    let has = |k: &[u8]| keys.contains(&k);
    (has(b"type") && (has(b"request") || has(b"auth")))
        || (has(b"request") && (has(b"auth") || has(b"response")))
}

/// White space the scanner dropped between two of its chunks is written back as spaces
/// (so records keep their member offsets) up to this many bytes; past it, the records
/// before the gap go out without waiting for their responses.
const MAX_GAP: u64 = 1 << 16;

/// Cuts a Vault audit log into chunks of whole entries, never between a request and its
/// response when the response comes within about a chunk's bytes.
///
/// The [`Scanner`] frames the records; a window is the records carried from the last
/// chunk and `target` bytes of records after them (at the real target, one scanner
/// chunk). It goes out up to its last record before which every request has its
/// response, if no more than `target` bytes stay (see [`cut`]); the records after that
/// place are carried into the next window, at their member offsets. Oversized records
/// and breaks pass through, after the records before them; at the member's end every
/// record goes out.
pub struct Framer<'a> {
    inner: Scanner<&'a mut dyn Read>,
    target: usize,
    /// Records read and not yet handed out, in `buf`, which starts at member offset
    /// `base`; `heads` is what the cut needs of each.
    buf: Vec<u8>,
    records: Vec<(u32, u32)>,
    heads: Vec<Head>,
    base: u64,
    first_index: u64,
    /// Where in `buf` the records not yet in any window begin (the carried ones end
    /// before it): the window's `target` bytes count from here.
    fresh: u32,
    /// What the scanner handed out that cannot join those records: an oversized record,
    /// records after a long gap, a break or the end. Handed on once they are out.
    next: Option<Result<Option<Chunk>, Break>>,
}

impl<'a> Framer<'a> {
    pub fn new(reader: &'a mut dyn Read, limit: usize) -> Self {
        Framer::with_target(reader, limit, CHUNK_TARGET)
    }

    /// A framer of chunks of about `target` bytes (tests use small ones).
    pub fn with_target(reader: &'a mut dyn Read, limit: usize, target: usize) -> Self {
        Framer {
            inner: Scanner::with_limit(reader, limit),
            target: target.max(1),
            buf: Vec::new(),
            records: Vec::new(),
            heads: Vec::new(),
            base: 0,
            first_index: 0,
            fresh: 0,
            next: None,
        }
    }

    /// Reads chunks from the scanner until the waiting records fill a window or nothing
    /// more can join them.
    fn fill(&mut self) {
        while self.next.is_none() && !self.full() {
            match self.inner.next_chunk() {
                Ok(Some(c)) if c.oversized.is_none() && self.joins(&c) => self.append(c),
                other => self.next = Some(other),
            }
        }
    }

    /// Whether a record ends `target` bytes after `fresh` (as the scanner counts from the
    /// start of its chunk's bytes, so at the real target a window is a scanner chunk and
    /// none is held back).
    fn ends_window(&self, r: &(u32, u32)) -> bool {
        r.1 as usize >= self.fresh as usize + self.target
    }

    /// Whether the waiting records fill a window.
    fn full(&self) -> bool {
        self.records.last().is_some_and(|r| self.ends_window(r))
    }

    /// How many waiting records make a window (all of them when they do not fill one).
    fn window(&self) -> usize {
        self.records
            .iter()
            .position(|r| self.ends_window(r))
            .map_or(self.records.len(), |i| i + 1)
    }

    /// Whether the records of `c` follow the waiting ones closely enough to join them.
    fn joins(&self, c: &Chunk) -> bool {
        let end = self.base + self.buf.len() as u64;
        self.records.is_empty()
            || (c.first_index == self.first_index + self.records.len() as u64
                && c.base_offset >= end
                && c.base_offset - end <= MAX_GAP
                && c.base_offset - self.base + c.data.len() as u64 <= u32::MAX as u64)
    }

    fn append(&mut self, c: Chunk) {
        if self.records.is_empty() {
            self.heads.clear();
            self.heads.extend(
                c.records
                    .iter()
                    .map(|&(a, b)| head(&c.data[a as usize..b as usize])),
            );
            self.buf = c.data;
            self.records = c.records;
            self.base = c.base_offset;
            self.first_index = c.first_index;
            self.fresh = 0;
            return;
        }
        let at = (c.base_offset - self.base) as usize;
        self.buf.reserve(at - self.buf.len() + c.data.len());
        self.buf.resize(at, b' ');
        self.buf.extend_from_slice(&c.data);
        for &(a, b) in &c.records {
            self.heads.push(head(&c.data[a as usize..b as usize]));
            self.records.push((a + at as u32, b + at as u32));
        }
    }

    /// Hands out the first `k` records of a window of `w`; the rest stay, at their
    /// offsets, the window's others carried.
    fn take(&mut self, k: usize, w: usize) -> Chunk {
        let end = self.records[k - 1].1;
        self.fresh = self.records[w - 1].1 - end;
        let rest = self.buf[end as usize..].to_vec();
        self.buf.truncate(end as usize);
        let data = std::mem::replace(&mut self.buf, rest);
        let records: Vec<(u32, u32)> = self.records.drain(..k).collect();
        for r in &mut self.records {
            *r = (r.0 - end, r.1 - end);
        }
        self.heads.drain(..k);
        let chunk = Chunk {
            data,
            records,
            base_offset: self.base,
            first_index: self.first_index,
            oversized: None,
            origins: Vec::new(),
        };
        self.base += end as u64;
        self.first_index += k as u64;
        chunk
    }
}

impl super::interface::Framer for Framer<'_> {
    fn next_chunk(&mut self) -> Result<Option<Chunk>, Break> {
        self.fill();
        if self.records.is_empty() {
            match self.next.take() {
                Some(Ok(Some(c))) if c.oversized.is_none() => {
                    self.append(c);
                    self.fill();
                }
                other => return other.unwrap_or(Ok(None)),
            }
        }
        let w = self.window();
        let k = if w == self.records.len() && self.next.is_some() {
            w // nothing more can join: everything goes out
        } else {
            cut(&self.heads[..w], &self.records[..w], self.target)
        };
        Ok(Some(self.take(k, w)))
    }
}

/// What the framer reads of an entry: its `type` and a hash of its `request.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    Request(u64),
    Response(u64),
    Other,
}

/// Where a window of records (`heads`, their `ranges`) ends its chunk: after the last
/// record before which every request has its response, among the places that carry no
/// more than `target` bytes into the next window (the carry bound). When there is no
/// such place (a request not answered within the bound, or calls so many at once that
/// one is always waiting), at the place among them that parts the fewest requests from
/// their responses, the latest of those.
fn cut(heads: &[Head], ranges: &[(u32, u32)], target: usize) -> usize {
    let end = ranges.last().map_or(0, |r| r.1);
    let mut waiting: HashMap<u64, u32> = HashMap::new();
    let mut open = 0usize;
    let (mut clean, mut fewest) = (None, None::<(usize, usize)>);
    for (r, h) in heads.iter().enumerate() {
        match *h {
            Head::Request(id) => {
                *waiting.entry(id).or_default() += 1;
                open += 1;
            }
            Head::Response(id) => {
                if let Some(n) = waiting.get_mut(&id).filter(|n| **n > 0) {
                    *n -= 1;
                    open -= 1;
                }
            }
            Head::Other => {}
        }
        // `open`: requests among the first r + 1 records still waiting.
        if ((end - ranges[r].1) as usize) > target {
            continue; // more than the bound would be carried
        }
        if open == 0 {
            clean = Some(r + 1);
        }
        if fewest.is_none_or(|(n, _)| open <= n) {
            fewest = Some((open, r + 1));
        }
    }
    clean.or(fewest.map(|f| f.1)).unwrap_or(heads.len())
}

/// The `type` and `request.id` of an entry, found by a walk over its bytes that follows
/// strings and nesting only (a malformed entry is `Other` or misread, and the decoder
/// rejects it). Values are compared as written, not unescaped.
fn head(rec: &[u8]) -> Head {
    if rec.first() != Some(&b'{') {
        return Head::Other;
    }
    let (mut depth, mut i) = (0usize, 0usize);
    let (mut key, mut expect_key, mut in_request) = (&b""[..], false, false);
    let (mut kind, mut id) = (None, None);
    while i < rec.len() {
        // Keys are read at the top level and in the top-level `request` object.
        let keyed = depth == 1 || (depth == 2 && in_request);
        match rec[i] {
            b'"' => {
                let Some(end) = string_end(rec, i + 1) else {
                    break;
                };
                let s = &rec[i + 1..end];
                if keyed && expect_key {
                    key = s;
                    expect_key = false;
                } else if depth == 1 && key == b"type" {
                    kind = kind.or(Some(s));
                } else if depth == 2 && in_request && key == b"id" {
                    id = id.or(Some(s));
                }
                i = end;
            }
            b'{' => {
                depth += 1;
                if depth == 2 {
                    in_request = key == b"request" && id.is_none();
                }
                expect_key = depth == 1 || (depth == 2 && in_request);
            }
            b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
                if depth == 1 {
                    in_request = false;
                }
            }
            b',' if keyed => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    let Some(id) = id else {
        return Head::Other;
    };
    let id = twox_hash::XxHash64::oneshot(0, id);
    match kind {
        Some(b"request") => Head::Request(id),
        Some(b"response") => Head::Response(id),
        _ => Head::Other,
    }
}

/// The index of the quote that ends a string whose body starts at `p`.
fn string_end(b: &[u8], mut p: usize) -> Option<usize> {
    loop {
        p += memchr::memchr2(b'"', b'\\', b.get(p..)?)?;
        if b[p] == b'"' {
            return Some(p);
        }
        p += 2;
    }
}

/// One entry of a chunk, read.
struct Entry<'a> {
    obj: RawObject<'a>,
    request: Option<RawObject<'a>>,
    kind: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
}

impl Entry<'_> {
    fn is(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }
}

/// Reads an entry; a record that is not UTF-8 or not a JSON object is rejected alone.
fn read(raw: &[u8]) -> Result<Entry<'_>, RejectReason> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        RejectReason::new(
            "invalid_utf8",
            format!("invalid UTF-8 at byte {} of the record", e.valid_up_to()),
        )
    })?;
    let obj = RawObject::parse(text).map_err(|e| json::invalid_json(raw, &e))?;
    let request = obj.object("request");
    Ok(Entry {
        kind: obj.text("type"),
        id: request.as_ref().and_then(|r| r.text("id")),
        request,
        obj,
    })
}

/// A row's columns, made before it is pushed (a response's row is made at its request's
/// place, to know whether the request stands alone).
struct Row<'a> {
    time: i64,
    trace_id: String,
    actor: Option<Cow<'a, str>>,
    role: Option<String>,
    action: Cow<'a, str>,
    ouid: Option<String>,
    status: Cow<'a, str>,
    outcome: Outcome,
    client_ip: Option<Cow<'a, str>>,
    source: Option<Cow<'a, str>>,
    part: Option<Cow<'a, str>>,
    resource: Option<Cow<'a, str>>,
    meta: Option<String>,
}

/// Decodes a chunk of Vault audit entries: one row per `request.id` (see the module doc).
pub fn decode_chunk(chunk: Arc<Chunk>, ctx: &DecodeContext) -> DecodedChunk {
    let n = chunk.records.len();
    let mut rows = RowsBuilder::new(chunk.data.len());
    let mut rejects = Vec::new();
    let mut time_range: Option<(i64, i64)> = None;
    {
        let entries: Vec<Result<Entry, RejectReason>> = chunk
            .records
            .iter()
            .map(|&(a, b)| read(chunk.data.get(a as usize..b as usize).unwrap_or_default()))
            .collect();
        // A request's response, and a response's request, in the chunk.
        let mut partner: Vec<Option<usize>> = vec![None; n];
        let mut waiting: HashMap<&str, VecDeque<usize>> = HashMap::new();
        for (pos, e) in entries.iter().enumerate() {
            let Ok(e) = e else { continue };
            let Some(id) = e.id.as_deref() else { continue };
            if e.is("request") {
                waiting.entry(id).or_default().push_back(pos);
            } else if e.is("response") {
                if let Some(req) = waiting.get_mut(id).and_then(|q| q.pop_front()) {
                    partner[req] = Some(pos);
                    partner[pos] = Some(req);
                }
            }
        }
        drop(waiting);
        let mut held: HashMap<usize, Result<Row, RejectReason>> = HashMap::new();
        for (pos, e) in entries.iter().enumerate() {
            let made = match (e, partner[pos]) {
                (Err(why), _) => Err(why.clone()),
                (Ok(e), Some(resp)) if e.is("request") => {
                    let Ok(response) = &entries[resp] else {
                        unreachable!("only entries read are paired")
                    };
                    let joined = row(response, ctx);
                    if let Ok(r) = &joined {
                        // The pair's row at the request's place, and again at the
                        // response's: the lake keeps the first and counts the second as
                        // a duplicate, so every entry read is accounted for.
                        push(&mut rows, r, pos, ctx, n - pos);
                        let (lo, hi) = time_range.unwrap_or((r.time, r.time));
                        time_range = Some((lo.min(r.time), hi.max(r.time)));
                        held.insert(resp, joined);
                        continue;
                    }
                    held.insert(resp, joined);
                    row(e, ctx)
                }
                (Ok(_), Some(_)) => held.remove(&pos).expect("made at its request"),
                (Ok(e), None) => row(e, ctx),
            };
            match made {
                Ok(r) => {
                    push(&mut rows, &r, pos, ctx, n - pos);
                    let (lo, hi) = time_range.unwrap_or((r.time, r.time));
                    time_range = Some((lo.min(r.time), hi.max(r.time)));
                }
                Err(why) => rejects.push((pos as u32, why)),
            }
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

fn push(rows: &mut RowsBuilder, r: &Row<'_>, pos: usize, ctx: &DecodeContext, left: usize) {
    rows.push(
        &CanonicalRow {
            pos: pos as u32,
            time: r.time,
            tenant: ctx.tenant.as_deref().unwrap_or_default(),
            vendor: VENDOR,
            source: r.source.as_deref(),
            resource_id: r.resource.as_deref(),
            actor_id: r.actor.as_deref(),
            action: Some(&r.action),
            status: Some(&r.status),
            outcome: r.outcome,
            trace_id: &r.trace_id,
            client_ip: r.client_ip.as_deref(),
            hsm_id: None,
            part_id: r.part.as_deref(),
            role: r.role.as_deref(),
            ouid: r.ouid.as_deref(),
            meta: r.meta.as_deref(),
            extra: None,
        },
        left,
    );
}

/// `request` fields mapped to columns of their own (the rest go to `meta`).
const REQUEST_MAPPED: [&str; 3] = ["path", "remote_address", "id"];

/// The row of entry `e`: a response joined with its request entry `req`, or an entry
/// alone.
fn row<'a>(e: &Entry<'a>, ctx: &DecodeContext) -> Result<Row<'a>, RejectReason> {
    let kind = e
        .kind
        .as_deref()
        .ok_or_else(|| missing("field_missing", "type"))?;
    if kind != "request" && kind != "response" {
        return Err(RejectReason::new(
            "unknown_format",
            format!("a Vault entry's type is request or response, not {kind:?}"),
        ));
    }
    let id =
        e.id.as_deref()
            .ok_or_else(|| missing("trace_missing", "request.id"))?;
    // The entry's own time: a pair's row is its response's, the same whether the pair
    // was joined or delivered apart.
    let own_time = e.obj.text("time");
    let time = time_of(own_time.as_deref(), "time")?;
    if ctx.tenant.is_none() {
        return Err(RejectReason::new(
            "tenant_missing",
            "Vault audit entries name no tenant: give it with --tenant",
        ));
    }
    let request = e.request.as_ref().expect("an entry with a request.id");
    let op = request
        .text("operation")
        .ok_or_else(|| missing("action_missing", "request.operation"))?;
    let path = request.text("path");
    let (action, ouid) = action_of(
        &op,
        path.as_deref().unwrap_or_default(),
        request.text("mount_type").as_deref(),
        request.text("mount_point").as_deref(),
    );
    let error = e
        .obj
        .raw("error")
        .filter(|v| v.get().starts_with('"'))
        .and_then(text);
    let (outcome, status) = match &error {
        Some(err) => (Outcome::Failure, Cow::Owned(first_error(err).to_string())),
        None if kind == "response" => (Outcome::Success, Cow::Borrowed("ok")),
        None => (Outcome::Unknown, Cow::Borrowed("unknown")),
    };
    let auth = e.obj.object("auth");
    // A login arrives with no token yet: the user a userpass or LDAP login names in its
    // path (`auth/userpass/login/<name>`) is who tried.
    let login_name = path
        .as_deref()
        .filter(|_| action == "login")
        .and_then(|p| p.split_once("/login/"))
        .map(|(_, name)| Cow::<str>::Owned(name.to_string()))
        .filter(|n| !n.is_empty() && !n.starts_with("hmac-sha256:"));
    // The path's name first, so a user's failed and successful logins name one actor
    // (a successful one's token would say `userpass-<name>`).
    let actor = login_name.or_else(|| {
        auth.as_ref()
            .and_then(|a| a.text("display_name").or_else(|| a.text("entity_id")))
    });
    let role = auth
        .as_ref()
        .and_then(|a| a.raw("policies"))
        .and_then(joined);
    let namespace = request.object("namespace");
    let part = namespace
        .as_ref()
        .and_then(|ns| ns.text("path").or_else(|| ns.text("id")));

    let auth_rest = auth.as_ref().and_then(|a| {
        json::write_object(
            a.0.iter()
                .filter(|(k, _)| k != "display_name")
                .map(|(k, v)| (k.as_ref(), v.get())),
        )
    });
    let request_rest = json::write_object(
        request
            .0
            .iter()
            .filter(|(k, _)| !REQUEST_MAPPED.contains(&k.as_ref()))
            .map(|(k, v)| (k.as_ref(), v.get())),
    );
    let meta = json::write_object(e.obj.0.iter().filter_map(|(k, v)| match k.as_ref() {
        "auth" if auth.is_some() => auth_rest.as_deref().map(|a| ("auth", a)),
        "request" => request_rest.as_deref().map(|r| ("request", r)),
        k => Some((k, v.get())),
    }));
    Ok(Row {
        time,
        // A request alone is an event of its own kind: its response, delivered apart,
        // is the call's row and must not collide with it.
        trace_id: if kind == "request" {
            format!("vault:{id}#request")
        } else {
            format!("vault:{id}")
        },
        actor,
        role,
        action,
        ouid,
        status,
        outcome,
        client_ip: request.text("remote_address"),
        source: request.text("mount_type"),
        part,
        resource: path,
        meta,
    })
}

/// The `action` and `ouid` of a request (see the module doc). `mount_point`, which newer
/// Vaults log, says where the mount's own path starts; without it the mount is the
/// path's first segment (`auth/<mount>` for auth methods).
fn action_of(
    op: &str,
    path: &str,
    mount_type: Option<&str>,
    mount_point: Option<&str>,
) -> (Cow<'static, str>, Option<String>) {
    let rel = match mount_point
        .filter(|m| !m.is_empty())
        .and_then(|m| path.strip_prefix(m))
    {
        Some(rel) => rel.trim_start_matches('/'),
        None if path.starts_with("auth/") => path.splitn(3, '/').nth(2).unwrap_or_default(),
        None => path.split_once('/').map_or("", |(_, rel)| rel),
    };
    if path.starts_with("auth/") && (rel == "login" || rel.starts_with("login/")) {
        return (Cow::Borrowed("login"), None);
    }
    if mount_type == Some("transit") {
        let segs: Vec<&str> = rel.split('/').collect();
        let key = |k: &str| (!k.is_empty()).then(|| k.to_string());
        let found = match segs.as_slice() {
            ["keys", k] => match op {
                "update" | "create" => Some(Cow::Borrowed("create-key")),
                "delete" => Some(Cow::Borrowed("delete-key")),
                "read" => Some(Cow::Borrowed("read-key")),
                _ => None,
            }
            .zip(key(k)),
            ["keys", k, sub] if !sub.is_empty() => {
                key(k).map(|k| (Cow::Owned(format!("{}-key", sub.to_ascii_lowercase())), k))
            }
            [o, _, k, ..] if TRANSIT_TYPED_OPS.contains(o) => known(o, &TRANSIT_TYPED_OPS)
                .zip(key(k))
                .map(|(o, k)| (Cow::Borrowed(o), k)),
            [o, k, ..] => known(o, &TRANSIT_KEY_OPS)
                .zip(key(k))
                .map(|(o, k)| (Cow::Borrowed(o), k)),
            _ => None,
        };
        if let Some((action, k)) = found {
            return (action, Some(k));
        }
    }
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let action = match (segs.next(), segs.next()) {
        (Some(a), Some(b)) => format!("{op} {a}/{b}"),
        (Some(a), None) => format!("{op} {a}"),
        _ => op.to_string(),
    };
    (Cow::Owned(action), None)
}

/// Transit operations on a key: `<op>/<key>[/…]`.
const TRANSIT_KEY_OPS: [&str; 8] = [
    "encrypt", "decrypt", "rewrap", "sign", "verify", "hmac", "backup", "restore",
];
/// Transit operations on a key with a type before it: `<op>/<type>/<key>[/…]`.
const TRANSIT_TYPED_OPS: [&str; 2] = ["datakey", "export"];

/// `name` as the `'static` entry of `among` that equals it.
fn known(name: &str, among: &[&'static str]) -> Option<&'static str> {
    among.iter().find(|o| **o == name).copied()
}

/// The first line of a Vault error, without go-multierror's `N error(s) occurred:` and
/// its `* ` bullets: `1 error occurred:\n\t* permission denied\n\n` → `permission denied`.
fn first_error(error: &str) -> &str {
    let preamble = |l: &str| {
        l.split_once(' ').is_some_and(|(n, rest)| {
            !n.is_empty()
                && n.bytes().all(|c| c.is_ascii_digit())
                && (rest == "error occurred:" || rest == "errors occurred:")
        })
    };
    error
        .lines()
        .map(str::trim)
        .filter(|l| !preamble(l))
        .map(|l| l.strip_prefix('*').unwrap_or(l).trim())
        .find(|l| !l.is_empty())
        .unwrap_or("error")
}

/// A JSON array of strings joined by `,` (`None` when it is not one, or empty).
fn joined(v: &RawValue) -> Option<String> {
    let items: Vec<&RawValue> = serde_json::from_str(v.get()).ok()?;
    let parts: Vec<Cow<str>> = items.iter().filter_map(|i| text(i)).collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::interface::Framer as _;
    use crate::lake::Col;
    use arrow::array::{AsArray, RecordBatch, TimestampMicrosecondArray};

    /// An entry in the documented shape (values made up, HMAC'd ones as Vault writes them).
    fn entry(kind: &str, id: &str, time: &str, op: &str, path: &str, tail: &str) -> String {
        let mount = path.split('/').next().unwrap_or_default();
        format!(
            r#"{{"time":"{time}","type":"{kind}","auth":{{"client_token":"hmac-sha256:1f2e","accessor":"hmac-sha256:3d4c","display_name":"approle-billing","policies":["default","billing-signer"],"entity_id":"0b7d-ent","token_type":"service"}},"request":{{"id":"{id}","operation":"{op}","mount_type":"{mount}","client_token":"hmac-sha256:1f2e","namespace":{{"id":"root"}},"path":"{path}","data":{{"input":"hmac-sha256:5b6a"}},"remote_address":"10.20.30.40"}}{tail}}}"#
        )
    }

    fn req(id: &str, time: &str, op: &str, path: &str) -> String {
        entry("request", id, time, op, path, "")
    }

    fn resp(id: &str, time: &str, op: &str, path: &str) -> String {
        entry(
            "response",
            id,
            time,
            op,
            path,
            r#","response":{"mount_type":"transit","data":{"signature":"hmac-sha256:7c8d"}}"#,
        )
    }

    fn chunk(records: &[String]) -> Arc<Chunk> {
        let mut data = Vec::new();
        let mut recs = Vec::new();
        for r in records {
            let a = data.len() as u32;
            data.extend_from_slice(r.as_bytes());
            recs.push((a, data.len() as u32));
            data.push(b'\n');
        }
        Arc::new(Chunk {
            data,
            records: recs,
            base_offset: 0,
            first_index: 0,
            oversized: None,
            origins: Vec::new(),
        })
    }

    fn ctx() -> DecodeContext {
        DecodeContext {
            tenant: Some(Arc::from("acme")),
        }
    }

    fn col(b: &RecordBatch, c: Col) -> Vec<Option<&str>> {
        b.column(c as usize).as_string::<i32>().iter().collect()
    }

    /// The rows of the chunk's one partition as the lake keeps them: the first row of
    /// each trace_id (a joined pair is handed over at both entries' places).
    fn one_slice(d: &DecodedChunk) -> &'static RecordBatch {
        assert_eq!(d.slices.len(), 1);
        let b = &d.slices[0].batch;
        let keep = kept(d);
        let idx = arrow::array::UInt32Array::from(
            keep.iter().map(|(i, _)| *i as u32).collect::<Vec<_>>(),
        );
        Box::leak(Box::new(
            arrow::compute::take_record_batch(b, &idx).unwrap(),
        ))
    }

    /// (index in the slice, record position) of the first row of each trace_id.
    fn kept(d: &DecodedChunk) -> Vec<(usize, u32)> {
        let s = &d.slices[0];
        let traces = s.batch.column(Col::TraceId as usize).as_string::<i32>();
        let mut seen = std::collections::HashSet::new();
        (0..s.batch.num_rows())
            .filter(|&i| seen.insert(traces.value(i).to_string()))
            .map(|i| (i, s.rows[i]))
            .collect()
    }

    fn kept_rows(d: &DecodedChunk) -> Vec<u32> {
        kept(d).into_iter().map(|(_, p)| p).collect()
    }

    const T1: &str = "2024-05-14T09:30:01.123456789Z";
    const T2: &str = "2024-05-14T09:30:01.124999999Z";

    #[test]
    fn a_request_and_its_response_are_one_row() {
        let d = decode_chunk(
            chunk(&[
                req("9f1c-01", T1, "update", "transit/sign/billing-key"),
                resp("9f1c-01", T2, "update", "transit/sign/billing-key"),
            ]),
            &ctx(),
        );
        assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        assert_eq!(d.records_read, 2);
        let b = one_slice(&d);
        // Handed over at both places; the lake keeps the first.
        assert_eq!(d.slices[0].rows, vec![0, 1]);
        assert_eq!(kept_rows(&d), vec![0]);
        assert_eq!(d.slices[0].key.tenant.as_ref(), "acme");
        let t: &TimestampMicrosecondArray = b.column(Col::Time as usize).as_primitive();
        // The response's time (the same row whether the pair was joined or not).
        let want = crate::time::parse_time("2024-05-14T09:30:01.124999Z").unwrap();
        assert_eq!(t.value(0), want);
        assert_eq!(d.time_range, Some((want, want)));
        assert_eq!(col(b, Col::Vendor), vec![Some("hashicorp-vault")]);
        assert_eq!(col(b, Col::Source), vec![Some("transit")]);
        assert_eq!(
            col(b, Col::ResourceId),
            vec![Some("transit/sign/billing-key")]
        );
        assert_eq!(col(b, Col::ActorId), vec![Some("approle-billing")]);
        assert_eq!(col(b, Col::Action), vec![Some("sign")]);
        assert_eq!(col(b, Col::Ouid), vec![Some("billing-key")]);
        assert_eq!(col(b, Col::Status), vec![Some("ok")]);
        assert_eq!(col(b, Col::Outcome), vec![Some("success")]);
        assert_eq!(col(b, Col::TraceId), vec![Some("vault:9f1c-01")]);
        assert_eq!(col(b, Col::ClientIp), vec![Some("10.20.30.40")]);
        assert_eq!(col(b, Col::HsmId), vec![None]);
        assert_eq!(col(b, Col::PartId), vec![Some("root")]);
        assert_eq!(col(b, Col::Role), vec![Some("default,billing-signer")]);
        let meta: serde_json::Value = serde_json::from_str(col(b, Col::Meta)[0].unwrap()).unwrap();
        assert_eq!(
            meta,
            serde_json::json!({
                "time": T2,
                "type": "response",
                "auth": {"client_token": "hmac-sha256:1f2e", "accessor": "hmac-sha256:3d4c",
                         "policies": ["default", "billing-signer"], "entity_id": "0b7d-ent",
                         "token_type": "service"},
                "request": {"operation": "update", "mount_type": "transit",
                            "client_token": "hmac-sha256:1f2e", "namespace": {"id": "root"},
                            "data": {"input": "hmac-sha256:5b6a"}},
                "response": {"mount_type": "transit", "data": {"signature": "hmac-sha256:7c8d"}},
            })
        );
    }

    #[test]
    fn a_denied_pair_is_a_failure() {
        let error = r#","error":"1 error occurred:\n\t* permission denied\n\n""#;
        let d = decode_chunk(
            chunk(&[
                entry("request", "77aa", T1, "update", "auth/token/revoke", error),
                entry("response", "77aa", T2, "update", "auth/token/revoke", error),
            ]),
            &ctx(),
        );
        assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        let b = one_slice(&d);
        assert_eq!(col(b, Col::Outcome), vec![Some("failure")]);
        assert_eq!(col(b, Col::Status), vec![Some("permission denied")]);
        assert_eq!(col(b, Col::Action), vec![Some("update auth/token")]);
        assert_eq!(col(b, Col::Ouid), vec![None]);
        assert!(col(b, Col::Meta)[0]
            .unwrap()
            .contains(r#""error":"1 error occurred:\n\t* permission denied\n\n""#));
        // Vault writes the error on a request it denies before handling it: alone, that
        // request is a failure too, not unknown.
        let d = decode_chunk(
            chunk(&[entry(
                "request",
                "77aa",
                T1,
                "update",
                "auth/token/revoke",
                error,
            )]),
            &ctx(),
        );
        let b = one_slice(&d);
        assert_eq!(col(b, Col::Outcome), vec![Some("failure")]);
        assert_eq!(col(b, Col::Status), vec![Some("permission denied")]);
    }

    #[test]
    fn a_request_without_its_response_is_kept_with_outcome_unknown() {
        let d = decode_chunk(
            chunk(&[req("c0ffee", T1, "update", "transit/encrypt/k1")]),
            &ctx(),
        );
        assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        let b = one_slice(&d);
        assert_eq!(col(b, Col::Outcome), vec![Some("unknown")]);
        assert_eq!(col(b, Col::Status), vec![Some("unknown")]);
        assert_eq!(col(b, Col::Action), vec![Some("encrypt")]);
        assert_eq!(col(b, Col::TraceId), vec![Some("vault:c0ffee#request")]);
        let meta = col(b, Col::Meta)[0].unwrap();
        assert!(meta.contains(r#""type":"request""#));
        // A response alone is a row too, timed by itself.
        let d = decode_chunk(
            chunk(&[resp("c0ffee", T2, "update", "transit/encrypt/k1")]),
            &ctx(),
        );
        let b = one_slice(&d);
        assert_eq!(col(b, Col::Outcome), vec![Some("success")]);
        let t: &TimestampMicrosecondArray = b.column(Col::Time as usize).as_primitive();
        assert_eq!(
            t.value(0),
            crate::time::parse_time("2024-05-14T09:30:01.124999Z").unwrap()
        );
    }

    #[test]
    fn interleaved_pairs_are_joined_by_id() {
        let p = "transit/decrypt/k2";
        let d = decode_chunk(
            chunk(&[
                req("a", T1, "update", p),
                req("b", T1, "update", p),
                resp("b", T2, "update", p),
                req("c", T1, "update", p),
                resp("a", T2, "update", p),
                // The same id again later: a second call pairs with the next response.
                req("b", T1, "update", p),
                resp("b", T2, "update", p),
            ]),
            &ctx(),
        );
        assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        let b = one_slice(&d);
        // The second call with id b is the same trace_id: the lake keeps the first.
        assert_eq!(kept_rows(&d), vec![0, 1, 3]);
        assert_eq!(
            col(b, Col::TraceId),
            vec![Some("vault:a"), Some("vault:b"), Some("vault:c#request")]
        );
        assert_eq!(
            col(b, Col::Outcome),
            vec![Some("success"), Some("success"), Some("unknown")]
        );
        assert_eq!(d.records_read, 7);
    }

    #[test]
    fn a_malformed_line_is_rejected_alone() {
        let p = "transit/sign/k1";
        let d = decode_chunk(
            chunk(&[
                req("a", T1, "update", p),
                r#"{"time":"2024-05-14T09:30:01Z","type":"request" "request":{}}"#.to_string(),
                resp("a", T2, "update", p),
                "[1,2]".to_string(),
                req("b", T1, "update", p),
                entry("response", "b", T2, "update", p, "").replace("\"type\"", "\"kind\""),
                entry("response", "", T2, "update", p, ""),
                entry("response", "d", "yesterday", "update", p, ""),
                entry("audit-test", "e", T1, "update", p, ""),
            ]),
            &ctx(),
        );
        let codes: Vec<_> = d.rejects.iter().map(|(p, r)| (*p, r.code)).collect();
        assert_eq!(
            codes,
            vec![
                (1, "invalid_json"),
                (3, "not_object"),
                (5, "field_missing"),
                (6, "trace_missing"),
                (7, "time_invalid"),
                (8, "unknown_format"),
            ]
        );
        let b = one_slice(&d);
        assert_eq!(kept_rows(&d), vec![0, 4]);
        assert_eq!(col(b, Col::Outcome), vec![Some("success"), Some("unknown")]);
    }

    #[test]
    fn a_pair_split_across_members_is_the_joined_row_and_the_request_alone() {
        // The documented limit: the request alone (end of one log) is a row of its own
        // kind, and its response (start of the next) the very row a joined pair gives,
        // so nothing conflicts and the outcome is kept.
        let p = "transit/sign/k1";
        let first = decode_chunk(chunk(&[req("split", T1, "update", p)]), &ctx());
        let second = decode_chunk(chunk(&[resp("split", T2, "update", p)]), &ctx());
        let joined = decode_chunk(
            chunk(&[
                req("split", T1, "update", p),
                resp("split", T2, "update", p),
            ]),
            &ctx(),
        );
        let (a, b, j) = (one_slice(&first), one_slice(&second), one_slice(&joined));
        assert_eq!(col(a, Col::TraceId), vec![Some("vault:split#request")]);
        assert_eq!(col(b, Col::TraceId), col(j, Col::TraceId));
        assert_eq!(crate::lake::partitions::compare_rows(b, 0, j, 0), None);
    }

    #[test]
    fn a_request_stands_alone_when_its_response_makes_no_row() {
        let p = "transit/sign/k1";
        let broken = resp("a", T2, "update", p).replace(r#""operation":"update","#, "");
        let d = decode_chunk(chunk(&[req("a", T1, "update", p), broken]), &ctx());
        let codes: Vec<_> = d.rejects.iter().map(|(p, r)| (*p, r.code)).collect();
        assert_eq!(codes, vec![(1, "action_missing")]);
        assert_eq!(kept_rows(&d), vec![0]);
        // Without --tenant nothing is a row, and each entry says why.
        let d = decode_chunk(
            chunk(&[req("a", T1, "update", p), resp("a", T2, "update", p)]),
            &DecodeContext::default(),
        );
        let codes: Vec<_> = d.rejects.iter().map(|(p, r)| (*p, r.code)).collect();
        assert_eq!(codes, vec![(0, "tenant_missing"), (1, "tenant_missing")]);
        assert!(d.slices.is_empty());
    }

    #[test]
    fn actions_and_keys() {
        let a = |op: &str, path: &str, mount: &str| {
            let (action, key) = action_of(op, path, Some(mount), None);
            (action.into_owned(), key)
        };
        let k = |s: &str| Some(s.to_string());
        assert_eq!(
            a("update", "transit/sign/k1", "transit"),
            ("sign".into(), k("k1"))
        );
        assert_eq!(
            a("update", "transit/sign/k1/sha2-512", "transit"),
            ("sign".into(), k("k1"))
        );
        assert_eq!(
            a("update", "transit/verify/k1", "transit"),
            ("verify".into(), k("k1"))
        );
        assert_eq!(
            a("update", "transit/rewrap/k1", "transit"),
            ("rewrap".into(), k("k1"))
        );
        assert_eq!(
            a("update", "transit/hmac/k1", "transit"),
            ("hmac".into(), k("k1"))
        );
        assert_eq!(
            a("update", "transit/datakey/plaintext/k1", "transit"),
            ("datakey".into(), k("k1"))
        );
        assert_eq!(
            a("update", "transit/keys/k1", "transit"),
            ("create-key".into(), k("k1"))
        );
        assert_eq!(
            a("delete", "transit/keys/k1", "transit"),
            ("delete-key".into(), k("k1"))
        );
        assert_eq!(
            a("read", "transit/keys/k1", "transit"),
            ("read-key".into(), k("k1"))
        );
        assert_eq!(
            a("update", "transit/keys/k1/rotate", "transit"),
            ("rotate-key".into(), k("k1"))
        );
        assert_eq!(
            a("update", "transit/keys/k1/config", "transit"),
            ("config-key".into(), k("k1"))
        );
        assert_eq!(
            a("list", "transit/keys", "transit"),
            ("list transit/keys".into(), None)
        );
        assert_eq!(
            a("update", "transit/random/32", "transit"),
            ("update transit/random".into(), None)
        );
        // Not a transit mount: the path names no key.
        assert_eq!(
            a("update", "kms/sign/k1", "kv"),
            ("update kms/sign".into(), None)
        );
        assert_eq!(
            a("read", "secret/data/app/db", "kv"),
            ("read secret/data".into(), None)
        );
        assert_eq!(
            a("update", "sys/policies/acl/admin", "system"),
            ("update sys/policies".into(), None)
        );
        assert_eq!(
            a("update", "auth/userpass/login/alice", "userpass"),
            ("login".into(), None)
        );
        assert_eq!(
            a("update", "auth/approle/login", "approle"),
            ("login".into(), None)
        );
        assert_eq!(
            a("update", "auth/userpass/users/alice", "userpass"),
            ("update auth/userpass".into(), None)
        );
        assert_eq!(a("read", "sys", "system"), ("read sys".into(), None));
        // A mount deeper than one segment, as newer Vaults log `mount_point`.
        assert_eq!(
            action_of(
                "update",
                "team/crypto/encrypt/k9",
                Some("transit"),
                Some("team/crypto/")
            ),
            (Cow::Borrowed("encrypt"), k("k9"))
        );
        assert_eq!(
            action_of(
                "update",
                "auth/ldap/corp/login/bob",
                Some("ldap"),
                Some("auth/ldap/corp/")
            )
            .0,
            "login"
        );
    }

    #[test]
    fn errors_first_line() {
        assert_eq!(
            first_error("1 error occurred:\n\t* permission denied\n\n"),
            "permission denied"
        );
        assert_eq!(
            first_error("2 errors occurred:\n\t* invalid key\n\t* missing input\n\n"),
            "invalid key"
        );
        assert_eq!(first_error("unsupported path"), "unsupported path");
        assert_eq!(first_error(" \n "), "error");
    }

    #[test]
    fn heads_read_type_and_request_id_only() {
        let id = |s: &str| twox_hash::XxHash64::oneshot(0, s.as_bytes());
        assert_eq!(
            head(req("r-1", T1, "update", "transit/sign/k").as_bytes()),
            Head::Request(id("r-1"))
        );
        assert_eq!(
            head(resp("r-1", T2, "update", "transit/sign/k").as_bytes()),
            Head::Response(id("r-1"))
        );
        // Keys and ids elsewhere do not count; strings may hold braces and quotes.
        let h = head(
            br#"{"auth":{"type":"x","id":"no"},"note":"}{\"type\":\"request\"","request":{"namespace":{"id":"root"},"data":["id","z"],"id":"r\"2"},"type":"response"}"#,
        );
        assert_eq!(h, Head::Response(id(r#"r\"2"#)));
        assert_eq!(
            head(br#"{"type":"request","request":{"path":"sys/health"}}"#),
            Head::Other
        );
        assert_eq!(head(br#"{"type":"request","request":{"id":"#), Head::Other);
        assert_eq!(head(b"[1]"), Head::Other);
    }

    /// Records of a member framed with `target`, checked against the input: records in
    /// order at their offsets, indices contiguous.
    fn frame(input: &str, limit: usize, target: usize) -> Vec<Chunk> {
        let mut bytes = input.as_bytes();
        let mut framer = Framer::with_target(&mut bytes, limit, target);
        let mut chunks = Vec::new();
        let mut next_index = 0;
        let mut covered = 0u64;
        while let Some(c) = framer.next_chunk().unwrap() {
            assert_eq!(c.first_index, next_index, "indices are contiguous");
            if let Some(o) = &c.oversized {
                assert!(c.records.is_empty());
                assert!(o.offset >= covered);
                covered = o.offset + o.len;
                next_index += 1;
            }
            for (pos, &(a, b)) in c.records.iter().enumerate() {
                let at = c.record_offset(pos);
                assert_eq!(at, c.base_offset + a as u64);
                assert!(at >= covered, "records in order");
                assert_eq!(
                    &c.data[a as usize..b as usize],
                    &input.as_bytes()[at as usize..at as usize + (b - a) as usize],
                    "record {pos} at its member offset"
                );
                covered = at + (b - a) as u64;
            }
            next_index += c.records.len() as u64;
            chunks.push(c);
        }
        chunks
    }

    /// Request ids whose request and response are in different chunks.
    fn split_pairs(chunks: &[Chunk]) -> Vec<String> {
        let mut at: HashMap<String, usize> = HashMap::new();
        let mut split = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            for &(a, b) in &c.records {
                let e = read(&c.data[a as usize..b as usize]).unwrap();
                let id = e.id.as_deref().unwrap().to_string();
                if e.is("request") {
                    at.insert(id, i);
                } else if at.get(&id).is_some_and(|&j| j != i) {
                    split.push(id);
                }
            }
        }
        split
    }

    /// `n` calls, each request answered `lag` entries later, with some entries padded.
    fn calls(n: usize, lag: usize) -> Vec<String> {
        let p = "transit/encrypt/k1";
        let mut out: Vec<String> = Vec::new();
        for i in 0..n + lag {
            if i < n {
                let mut r = req(&format!("id-{i}"), T1, "update", p);
                if i % 3 == 0 {
                    r = r.replace("\"default\"", &format!("\"default{}\"", "x".repeat(i % 50)));
                }
                out.push(r);
            }
            if i >= lag && i - lag < n {
                out.push(resp(&format!("id-{}", i - lag), T2, "update", p));
            }
            if i % 7 == 0 {
                out.push(resp("unrelated", T2, "read", "sys/health"));
            }
        }
        out
    }

    #[test]
    fn the_framer_keeps_pairs_in_one_chunk() {
        // Bursts of overlapping calls (each request answered after the next one starts):
        // a chunk may only end between bursts, and windows of the target end inside them.
        let mut lines = Vec::new();
        for burst in 0..20 {
            lines.extend(
                calls(3, 1)
                    .into_iter()
                    .map(|l| l.replace("id-", &format!("b{burst}-"))),
            );
        }
        let input = lines.join("\n") + "\n";
        let target = 5000;
        let chunks = frame(&input, 1 << 20, target);
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        assert_eq!(split_pairs(&chunks), Vec::<String>::new());
        // Cutting by size alone would have parted pairs: chunks ended before their
        // window did, the records after the end carried into the next.
        let short = chunks[..chunks.len() - 1]
            .iter()
            .filter(|c| (c.records.last().unwrap().1 as usize) < target)
            .count();
        assert!(short > 3, "{short} chunks ended early");
        // Decoded, every call is one row, joined.
        let mut ids = Vec::new();
        for c in chunks {
            let d = decode_chunk(Arc::new(c), &ctx());
            assert!(d.rejects.is_empty(), "{:?}", d.rejects);
            let b = one_slice(&d);
            for (t, o) in col(b, Col::TraceId).into_iter().zip(col(b, Col::Outcome)) {
                if t != Some("vault:unrelated") {
                    assert_eq!(o, Some("success"));
                    ids.push(t.unwrap().to_string());
                }
            }
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!((n, ids.len()), (60, 60));
    }

    #[test]
    fn a_window_with_no_clean_end_still_goes_out() {
        // Always a call waiting (each answered 4 entries later), and one never answered:
        // chunks stay near the target and every record comes out once.
        let mut lines = calls(200, 4);
        lines.insert(3, req("orphan", T1, "update", "transit/sign/k1"));
        let input = lines.join("\n");
        let target = 4000;
        let chunks = frame(&input, 1 << 20, target);
        let total: usize = chunks.iter().map(|c| c.records.len()).sum();
        assert_eq!(total, lines.len());
        let longest = lines.iter().map(|l| l.len()).max().unwrap();
        for c in &chunks {
            let (start, end) = (c.records[0].0, c.records.last().unwrap().1);
            assert!(((end - start) as usize) < 2 * target + longest);
        }
        assert!(chunks.len() > 20, "{} chunks", chunks.len());
        // The fewest calls are parted from their responses: one or two per chunk end.
        // Four calls are always waiting: the fewest a chunk's end can part.
        let split = split_pairs(&chunks);
        assert!(
            split.len() <= 4 * (chunks.len() - 1),
            "{} split",
            split.len()
        );
    }

    #[test]
    fn a_scanner_chunk_is_one_window() {
        // At the real target the framer cuts where the scanner does, give or take the
        // records it carries: it holds no second scanner chunk back (nor copies it).
        let p = "transit/hmac/k1";
        let mut lines = Vec::new();
        while lines.len() * 600 < 2 * CHUNK_TARGET + CHUNK_TARGET / 2 {
            let id = format!("{:08}", lines.len());
            lines.push(req(&id, T1, "update", p));
            lines.push(resp(&id, T2, "update", p));
        }
        let input = lines.join("\n");
        let mut bytes = input.as_bytes();
        let mut scanner = Scanner::new(&mut bytes);
        let mut scanned = Vec::new();
        while let Some(c) = scanner.next_chunk().unwrap() {
            scanned.push(c.first_index + c.records.len() as u64);
        }
        let framed: Vec<u64> = frame(&input, 1 << 20, CHUNK_TARGET)
            .iter()
            .map(|c| c.first_index + c.records.len() as u64)
            .collect();
        assert_eq!(framed.len(), scanned.len());
        for (f, s) in framed.iter().zip(&scanned) {
            assert!(f <= s && s - f <= 1, "framed up to {f}, scanned up to {s}");
            // (A request ending a scanner chunk waits for its response in the next.)
        }
    }

    #[test]
    fn oversized_records_and_the_end_let_everything_out() {
        let p = "transit/sign/k1";
        let big = format!(r#"{{"type":"request","pad":"{}"}}"#, "z".repeat(1200));
        let lines = [
            req("a", T1, "update", p),
            big,
            resp("a", T2, "update", p),
            req("b", T1, "update", p),
        ];
        let input = lines.join("\n");
        let chunks = frame(&input, 1000, 1 << 20);
        let shape: Vec<_> = chunks
            .iter()
            .map(|c| (c.first_index, c.records.len(), c.oversized.is_some()))
            .collect();
        assert_eq!(shape, vec![(0, 1, false), (1, 0, true), (2, 2, false)]);
    }

    #[test]
    fn records_after_a_gap_keep_their_offsets() {
        // The scanner drops white space between its chunks; a carried record and the
        // records after the gap keep their member offsets.
        let mut empty: &[u8] = b"";
        let mut f = Framer::with_target(&mut empty, 1 << 20, 1 << 20);
        let a = req("a", T1, "update", "transit/sign/k1");
        let b = resp("a", T2, "update", "transit/sign/k1");
        let first = Chunk {
            data: format!("  {a}").into_bytes(),
            records: vec![(2, 2 + a.len() as u32)],
            base_offset: 100,
            first_index: 5,
            oversized: None,
            origins: Vec::new(),
        };
        let second = Chunk {
            data: b.clone().into_bytes(),
            records: vec![(0, b.len() as u32)],
            base_offset: 100 + 2 + a.len() as u64 + 40,
            first_index: 6,
            oversized: None,
            origins: Vec::new(),
        };
        assert!(f.joins(&first));
        f.append(first);
        assert!(f.joins(&second));
        f.append(second);
        assert_eq!(cut(&f.heads, &f.records, 1 << 20), 2);
        let c = f.take(2, 2);
        assert_eq!((c.base_offset, c.first_index), (100, 5));
        assert_eq!(c.record_offset(0), 102);
        assert_eq!(c.record_offset(1), 102 + a.len() as u64 + 40);
        let (s, e) = c.records[1];
        assert_eq!(&c.data[s as usize..e as usize], b.as_bytes());
        // A gap too long to fill is not joined.
        let far = Chunk {
            data: Vec::new(),
            records: vec![],
            base_offset: f.base + f.buf.len() as u64 + MAX_GAP + 1,
            first_index: 7,
            oversized: None,
            origins: Vec::new(),
        };
        f.records.push((0, 0));
        assert!(!f.joins(&far));
    }
}
