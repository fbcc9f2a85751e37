//! HashiCorp Vault audit device logs (`vendor` `hashicorp-vault`): JSON Lines of
//! `request` and `response` entries. (Being written.)

use std::io::Read;
use std::sync::Arc;

use super::interface::{Break, Chunk, DecodeContext, DecodedChunk, RejectReason};
use super::scan::Scanner;

/// The value of the `vendor` column for HashiCorp Vault rows.
pub const VENDOR: &str = "hashicorp-vault";

/// Whether a member whose first record has these top-level keys is a Vault audit log.
pub fn claims(keys: &[&[u8]]) -> bool {
    let has = |k: &[u8]| keys.contains(&k);
    has(b"type") && (has(b"request") || has(b"auth"))
}

/// Cuts a Vault audit log into chunks of whole entries.
pub struct Framer<'a> {
    inner: Scanner<&'a mut dyn Read>,
}

impl<'a> Framer<'a> {
    pub fn new(reader: &'a mut dyn Read, limit: usize) -> Self {
        Framer {
            inner: Scanner::with_limit(reader, limit),
        }
    }
}

impl super::interface::Framer for Framer<'_> {
    fn next_chunk(&mut self) -> Result<Option<Chunk>, Break> {
        self.inner.next_chunk()
    }
}

/// Decodes a chunk of Vault audit entries.
pub fn decode_chunk(chunk: Arc<Chunk>, _ctx: &DecodeContext) -> DecodedChunk {
    let rejects = (0..chunk.records.len())
        .map(|pos| {
            (
                pos as u32,
                RejectReason::new("unknown_format", "HashiCorp Vault audit logs: not yet read"),
            )
        })
        .collect();
    DecodedChunk {
        records_read: chunk.records.len() as u64,
        chunk,
        slices: Vec::new(),
        rejects,
        time_range: None,
        brk: None,
    }
}
