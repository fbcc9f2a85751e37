//! `<lake>/_chain/`: the lake's history as one hash chain. Every change of the ledger
//! (a converted source, a fetched window, a compaction, a prune) is an event that
//! records the SHA-256 of each ledger record it writes and of the event before it, so
//! the last event (the head) commits to every record, file, row count and removal ever
//! published. Events are written before the records they commit to, each created only
//! if absent, so two writers never extend the chain from the same head and a killed run
//! leaves a chain its rerun continues. A signed checkpoint is an event too: the head
//! before it, the chain's length, time and host, signed with Ed25519.

use std::collections::BTreeMap;

use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::store::LakeStore;
use super::writer::hex;
use crate::{Error, Result};

pub const CHAIN_DIR: &str = "_chain";
/// The last sequence number a writer saw: a hint (the events after it are probed).
const HEAD_HINT: &str = "_chain/head.json";
/// The `prev` of the first event.
pub const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One event of the chain, as stored in `_chain/<seq>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub seq: u64,
    /// SHA-256 of the bytes of event `seq - 1` ([`ZERO`] for the first).
    pub prev: String,
    /// `genesis`, `convert`, `fetch`, `compact`, `prune` or `checkpoint`.
    pub kind: String,
    pub at: String,
    /// Ledger records written by this event (relative path to the SHA-256 of their bytes).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub records: BTreeMap<String, String>,
    /// Lake files this event let go of (compaction's replaced files, prune's days).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_removed: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

/// What a checkpoint signs: the head before it and the chain's length there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub head: String,
    pub length: u64,
    pub time: String,
    pub host: String,
    /// The Ed25519 public key, hex.
    pub public_key: String,
    /// The signature of [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    fn message(head: &str, length: u64, time: &str, host: &str) -> String {
        format!("auditlake checkpoint\nhead {head}\nlength {length}\ntime {time}\nhost {host}\n")
    }

    /// Whether the signature is the given key's (or the key it names) over what it says.
    pub fn signed_by(&self, key: Option<&VerifyingKey>) -> bool {
        let Some(named) =
            parse_hex::<32>(&self.public_key).and_then(|b| VerifyingKey::from_bytes(&b).ok())
        else {
            return false;
        };
        let key = key.unwrap_or(&named);
        let Some(sig) = parse_hex::<64>(&self.signature).map(|b| Signature::from_bytes(&b)) else {
            return false;
        };
        key == &named
            && key
                .verify(
                    Self::message(&self.head, self.length, &self.time, &self.host).as_bytes(),
                    &sig,
                )
                .is_ok()
    }
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

pub fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn event_rel(seq: u64) -> String {
    format!("{CHAIN_DIR}/{seq:020}.json")
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The chain's last event: its sequence number and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Head {
    pub length: u64,
    pub head: String,
}

/// The head, from the hint and the events after it; `None` for a lake with no chain.
pub async fn head(store: &LakeStore) -> Result<Option<Head>> {
    let hint = match store.get(HEAD_HINT).await? {
        Some(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0),
        None => 0,
    };
    // A hint that names no event (lost, or ahead of a damaged chain): the listing.
    let mut seq = hint;
    let mut last = None;
    if seq > 0 {
        last = store.get(&event_rel(seq)).await?;
    }
    if last.is_none() {
        seq = seqs(store).await?.last().copied().unwrap_or(0);
        if seq == 0 {
            return Ok(None);
        }
        last = store.get(&event_rel(seq)).await?;
    }
    let mut last =
        last.ok_or_else(|| Error::Usage(format!("{}: vanished", store.show(&event_rel(seq)))))?;
    while let Some(next) = store.get(&event_rel(seq + 1)).await? {
        seq += 1;
        last = next;
    }
    Ok(Some(Head {
        length: seq,
        head: sha256(&last),
    }))
}

/// The sequence numbers of the events there are, by listing.
async fn seqs(store: &LakeStore) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = store
        .list_files(CHAIN_DIR)
        .await?
        .into_iter()
        .filter_map(|(n, _)| n.strip_suffix(".json")?.parse().ok())
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// A change of the ledger: the records it writes (relative path, bytes), the files it
/// lets go of, and why.
pub struct Change {
    pub kind: &'static str,
    pub records: Vec<(String, Bytes)>,
    pub files_removed: Vec<String>,
    pub why: Option<String>,
}

/// Appends the event of `change` (after a genesis event, for a lake that has no chain
/// yet), then writes its records, calling the test point `point` after each.
pub async fn publish(store: &LakeStore, change: Change, point: &str) -> Result<()> {
    if change.records.is_empty() && change.files_removed.is_empty() {
        return Ok(());
    }
    let records: BTreeMap<String, String> = change
        .records
        .iter()
        .map(|(rel, b)| (rel.clone(), sha256(b)))
        .collect();
    append(store, |seq, prev| Event {
        seq,
        prev,
        kind: change.kind.into(),
        at: now(),
        records: records.clone(),
        files_removed: change.files_removed.clone(),
        why: change.why.clone(),
        checkpoint: None,
    })
    .await?;
    crate::testhook::point("chain");
    for (rel, b) in change.records {
        store.put(&rel, b).await?;
        crate::testhook::point(point);
    }
    Ok(())
}

/// Appends the event `make(seq, prev)` builds after the head, as event `seq` created
/// only if absent (built again on the next head when another writer got there first).
async fn append(store: &LakeStore, make: impl Fn(u64, String) -> Event) -> Result<Head> {
    for _ in 0..16 {
        let head = match head(store).await? {
            Some(h) => h,
            None => genesis(store).await?,
        };
        let seq = head.length + 1;
        let bytes = Bytes::from(serde_json::to_vec_pretty(&make(seq, head.head))?);
        let hash = sha256(&bytes);
        if store.put_new(&event_rel(seq), bytes).await? {
            store.put(HEAD_HINT, Bytes::from(seq.to_string())).await?;
            return Ok(Head {
                length: seq,
                head: hash,
            });
        }
    }
    Err(Error::Usage(format!(
        "{}: other writers kept extending the chain",
        store.show(CHAIN_DIR)
    )))
}

/// The first event: commits to the ledger as it is (a lake from before the chain).
async fn genesis(store: &LakeStore) -> Result<Head> {
    let records = records(store).await?;
    let event = Event {
        seq: 1,
        prev: ZERO.into(),
        kind: "genesis".into(),
        at: now(),
        records: records
            .iter()
            .map(|(r, b)| (r.clone(), sha256(b)))
            .collect(),
        files_removed: vec![],
        why: (!records.is_empty()).then(|| "the ledger as it was when the chain began".to_string()),
        checkpoint: None,
    };
    let bytes = Bytes::from(serde_json::to_vec_pretty(&event)?);
    let hash = sha256(&bytes);
    if !store.put_new(&event_rel(1), bytes).await? {
        // Another writer began it: go on from its head.
        return head(store)
            .await?
            .ok_or_else(|| Error::Usage(format!("{}: unreadable", store.show(CHAIN_DIR))));
    }
    Ok(Head {
        length: 1,
        head: hash,
    })
}

/// Every ledger record there is (entries and fetched windows): relative path and bytes.
pub async fn records(store: &LakeStore) -> Result<Vec<(String, Bytes)>> {
    let mut rels = Vec::new();
    for dir in [super::LEDGER_DIR, super::ledger::WINDOWS_DIR] {
        for (name, _) in store.list_files(dir).await? {
            if name.ends_with(".json") {
                rels.push(format!("{dir}/{name}"));
            }
        }
    }
    let got: Vec<(String, Option<Bytes>)> = futures::stream::iter(rels)
        .map(|rel| async move { Ok::<_, Error>((rel.clone(), store.get(&rel).await?)) })
        .buffered(CONCURRENT_GETS)
        .try_collect()
        .await?;
    Ok(got.into_iter().filter_map(|(r, b)| Some((r, b?))).collect())
}

/// Objects read at once by `verify` and a genesis (a lake's years of records and events).
const CONCURRENT_GETS: usize = 16;

/// An Ed25519 key pair's private half, read from the file `keys generate` wrote.
pub struct Signer25519 {
    key: SigningKey,
}

const SECRET_TAG: &str = "auditlake-ed25519-secret-key";
const PUBLIC_TAG: &str = "auditlake-ed25519-public-key";

impl Signer25519 {
    pub fn generate() -> Result<Signer25519> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| Error::Usage(format!("no randomness for a key: {e}")))?;
        Ok(Signer25519 {
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn read(path: &std::path::Path) -> Result<Signer25519> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        let seed = text
            .trim()
            .strip_prefix(SECRET_TAG)
            .and_then(parse_hex::<32>)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: not a signing key written by `auditlake keys generate`",
                    path.display()
                ))
            })?;
        Ok(Signer25519 {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The private key file's text (keep it out of the lake).
    pub fn secret_text(&self) -> String {
        format!("{SECRET_TAG} {}\n", hex(self.key.as_bytes()))
    }

    pub fn public_text(&self) -> String {
        public_text(&self.key.verifying_key())
    }
}

pub fn public_text(key: &VerifyingKey) -> String {
    format!("{PUBLIC_TAG} {}\n", hex(key.as_bytes()))
}

/// Reads a public key file (`keys generate`'s `.pub`).
pub fn read_public(path: &std::path::Path) -> Result<VerifyingKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    text.trim()
        .strip_prefix(PUBLIC_TAG)
        .and_then(parse_hex::<32>)
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: not a public key written by `auditlake keys generate`",
                path.display()
            ))
        })
}

/// Appends a signed checkpoint of the head (nothing for a lake with no chain).
pub async fn sign(store: &LakeStore, signer: &Signer25519) -> Result<Option<Head>> {
    if head(store).await?.is_none() {
        return Ok(None);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let head = append(store, |seq, prev| {
        let time = now();
        let length = seq - 1;
        let sig = signer
            .key
            .sign(Checkpoint::message(&prev, length, &time, &host).as_bytes());
        Event {
            seq,
            prev: prev.clone(),
            kind: "checkpoint".into(),
            at: time.clone(),
            records: BTreeMap::new(),
            files_removed: vec![],
            why: None,
            checkpoint: Some(Checkpoint {
                head: prev,
                length,
                time,
                host: host.clone(),
                public_key: hex(signer.key.verifying_key().as_bytes()),
                signature: hex(&sig.to_bytes()),
            }),
        }
    })
    .await?;
    crate::testhook::point("chain-checkpoint");
    Ok(Some(head))
}

/// What `verify` finds of the chain.
#[derive(Debug, Default)]
pub struct ChainCheck {
    pub head: Option<Head>,
    /// (event or record path, what is wrong), by kind.
    pub broken: Vec<(String, String)>,
    pub ledger: Vec<(String, String)>,
    pub signatures: Vec<(String, String)>,
    pub unknown_head: Option<String>,
}

/// Walks the chain from its first event: each event must follow the one before it; the
/// ledger records there are must be the ones the chain committed to last; with `key`,
/// every checkpoint must be signed by it and none may be followed by unsigned events;
/// `expect_head` must be the hash of one of the events.
pub async fn check(
    store: &LakeStore,
    key: Option<&VerifyingKey>,
    expect_head: Option<&str>,
) -> Result<ChainCheck> {
    let mut out = ChainCheck::default();
    let seqs = seqs(store).await?;
    let records = records(store).await?;
    if seqs.is_empty() {
        if let Some(h) = expect_head {
            out.unknown_head = Some(format!("{h}: the lake has no chain"));
        }
        if key.is_some() {
            out.signatures.push((
                CHAIN_DIR.into(),
                "the lake has no chain, so no signed checkpoint".into(),
            ));
        }
        return Ok(out);
    }
    let mut committed: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut prev = ZERO.to_string();
    let mut hashes = Vec::new();
    let mut last_signed = None;
    let mut last_kind = String::new();
    let last = *seqs.last().unwrap_or(&0);
    let mut events = futures::stream::iter(1..=last)
        .map(|seq| async move { Ok::<_, Error>((seq, store.get(&event_rel(seq)).await?)) })
        .buffered(CONCURRENT_GETS);
    while let Some((seq, bytes)) = events.try_next().await? {
        let rel = event_rel(seq);
        let Some(bytes) = bytes else {
            out.broken
                .push((rel, "missing: the chain has a gap here".into()));
            prev = String::new();
            continue;
        };
        let hash = sha256(&bytes);
        let event: Event = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                out.broken.push((rel, format!("not an event ({e})")));
                prev = hash;
                continue;
            }
        };
        if event.seq != seq {
            out.broken.push((
                rel.clone(),
                format!(
                    "says it is event {}, stored as event {seq} (moved or reordered)",
                    event.seq
                ),
            ));
        } else if event.prev != prev {
            out.broken.push((
                rel.clone(),
                format!(
                    "does not follow event {}: it names {} before it, that event hashes to {} (an event before it was edited, inserted or removed)",
                    seq - 1,
                    short(&event.prev),
                    if prev.is_empty() { "nothing".into() } else { short(&prev) }
                ),
            ));
        }
        for (r, h) in &event.records {
            committed.insert(r.clone(), (h.clone(), seq));
        }
        last_kind = event.kind.clone();
        if let Some(c) = &event.checkpoint {
            let honest = c.head == event.prev && c.length + 1 == seq;
            if !honest || (key.is_some() && !c.signed_by(key)) || !c.signed_by(None) {
                out.signatures.push((
                    rel.clone(),
                    if honest {
                        "its signature does not verify with the public key given".into()
                    } else {
                        "it signs another head or length than the chain's before it".into()
                    },
                ));
            }
            last_signed = Some(seq);
        }
        hashes.push(hash.clone());
        prev = hash;
    }
    // A run stopped between its event (the chain's last) and its records.
    let stopped = |seq: u64| {
        if seq != last {
            return String::new();
        }
        match last_kind.as_str() {
            "compact" => "; the event of a compaction in flight (`auditlake compact` finishes it)".into(),
            k => format!("; the chain's last event, of a {k} stopped before writing this record (run it again to finish)"),
        }
    };
    for (rel, bytes) in &records {
        match committed.remove(rel) {
            Some((h, _)) if h == sha256(bytes) => {}
            Some((_, seq)) => out.ledger.push((
                rel.clone(),
                format!(
                    "altered: its bytes are not the ones event {seq} of the chain committed to{}",
                    stopped(seq)
                ),
            )),
            None => out.ledger.push((
                rel.clone(),
                "on no event of the chain: written outside auditlake".into(),
            )),
        }
    }
    for (rel, (_, seq)) in committed {
        out.ledger.push((
            rel,
            format!(
                "removed: event {seq} of the chain committed to it{}",
                stopped(seq)
            ),
        ));
    }
    if key.is_some() {
        match last_signed {
            None => out
                .signatures
                .push((CHAIN_DIR.into(), "no signed checkpoint on the chain".into())),
            Some(s) if s < last => out.signatures.push((
                event_rel(s + 1),
                format!(
                    "events {}..={last} follow the last signed checkpoint (event {s}) unsigned",
                    s + 1
                ),
            )),
            Some(_) => {}
        }
    }
    if let Some(h) = expect_head {
        let h = h.trim().to_ascii_lowercase();
        if !hashes.contains(&h) {
            out.unknown_head = Some(format!(
                "{h}: no event of the chain has this hash (the lake's history was rewritten, or it is another lake's head)"
            ));
        }
    }
    out.head = Some(Head {
        length: last,
        head: prev,
    });
    Ok(out)
}

fn short(h: &str) -> String {
    h.chars().take(16).collect()
}
