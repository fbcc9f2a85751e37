//! The registry of source formats, above the vendors: which format a member holds,
//! judged by its first bytes (never by a file name), and dispatch to that vendor's
//! framer and decoder (the types they share are [`super::interface`]'s).
//!
//! A format is one variant of [`Format`]: [`Format::detect`] recognises it, its
//! [`Framer`] cuts a member into [`Chunk`]s of whole records, and [`Format::decode`]
//! turns a chunk into per-partition batches and rejects. The vendors: DPoD exports
//! ([`super::scan`], [`super::decode`]), AWS CloudHSM audit logs ([`super::cloudhsm`]),
//! Azure Key Vault and Managed HSM ([`super::azure`]), Google Cloud audit logs of Cloud
//! KMS ([`super::gcp`]) and HashiCorp Vault audit devices ([`super::vault`]). The JSON
//! ones are told apart by the keys of a member's first record; JSON that none of them
//! claims is [`Format::Unknown`], its records rejected as `unknown_format` (never decoded
//! by the nearest guess). A new vendor is one more module and one more variant here.

use std::io::Read;
use std::sync::Arc;

use super::cloudhsm::{self, Form};
use super::decode::decode_chunk;
use super::interface::{
    envelope_array, first_element, is_json_space, top_level_keys, Chunk, DecodeContext,
    DecodedChunk, Framer, RejectReason,
};
use super::scan::Scanner;
use super::{azure, decode, gcp, vault};

/// What a member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Thales DPoD audit records: a JSON array of objects, or NDJSON (SPEC §1.1).
    #[default]
    Dpod,
    /// AWS CloudHSM audit events in one of the forms CloudWatch Logs hands them out.
    CloudHsm(Form),
    /// Azure Key Vault / Managed HSM `AuditEvent` records: JSON Lines or an array, or
    /// (`envelope`) `{"records": [...]}` envelopes.
    Azure { envelope: bool },
    /// Google Cloud audit log entries (`LogEntry` JSON, lines or an array) of Cloud KMS.
    GcpKms,
    /// HashiCorp Vault audit device entries (JSON Lines of requests and responses).
    Vault,
    /// JSON records that no format claims: each is rejected as `unknown_format`.
    Unknown { envelope: bool },
}

impl Format {
    /// The format of a member from its first bytes (a UTF-8 byte order mark and leading
    /// white space skipped); `None` when no format knows them. Empty input is DPoD's (an
    /// empty export).
    pub fn detect(head: &[u8]) -> Option<Format> {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let start = head.iter().position(|&c| !is_json_space(c));
        let Some(start) = start else {
            return Some(Format::Dpod);
        };
        let rest = &head[start..];
        if let Some(form) = cloudhsm::detect(rest) {
            return Some(Format::CloudHsm(form));
        }
        let (envelope, first) = match rest[0] {
            b'[' => (false, first_element(rest)),
            b'{' => match envelope_array(rest) {
                Some(array) => (true, first_element(array)),
                None => (false, Some(rest)),
            },
            _ => return None,
        };
        // An empty array or envelope, or records that are not objects: DPoD's decoder
        // says what is wrong with each.
        let first = match first {
            Some(f) if f[0] == b'{' => f,
            _ if envelope => return Some(Format::Azure { envelope }),
            _ => return Some(Format::Dpod),
        };
        let keys = top_level_keys(first);
        // The head may end inside a large first record: what it shows decides, and a
        // record cut before any format recognises it stays DPoD's (as before formats were
        // told apart by keys), whose decoder says what is wrong with each record.
        let cut = !whole_object(first);
        Some(if azure::claims(&keys) {
            Format::Azure { envelope }
        } else if envelope {
            Format::Unknown { envelope }
        } else if gcp::claims(&keys) {
            Format::GcpKms
        } else if vault::claims(&keys) {
            Format::Vault
        } else if decode::claims(&keys) || cut {
            Format::Dpod
        } else {
            Format::Unknown { envelope }
        })
    }

    /// The value of the `vendor` column of this format's rows.
    pub fn vendor(&self) -> &'static str {
        match self {
            Format::Dpod => crate::lake::VENDOR_DPOD,
            Format::CloudHsm(_) => cloudhsm::VENDOR,
            Format::Azure { .. } => azure::VENDOR_KEYVAULT,
            Format::GcpKms => gcp::VENDOR,
            Format::Vault => vault::VENDOR,
            Format::Unknown { .. } => "unknown",
        }
    }

    /// Whether records in this format never name their tenant, so `--tenant` must.
    pub fn needs_tenant(&self) -> bool {
        match self {
            Format::Dpod => false,
            Format::CloudHsm(form) => !form.names_log_group(),
            Format::Vault => true,
            Format::Azure { .. } | Format::GcpKms | Format::Unknown { .. } => false,
        }
    }

    /// The framer of a member in this format; records over `limit` bytes are rejected
    /// as `record_too_large` where the format frames by size.
    pub fn framer<'a>(self, reader: &'a mut dyn Read, limit: usize) -> Box<dyn Framer + 'a> {
        match self {
            Format::Dpod => Box::new(Scanner::with_limit(reader, limit).ramping()),
            Format::CloudHsm(form) => Box::new(cloudhsm::Framer::new(reader, form, limit)),
            Format::Azure { envelope } | Format::Unknown { envelope } if envelope => {
                Box::new(Scanner::enveloped(reader, limit))
            }
            Format::Azure { .. } | Format::GcpKms | Format::Unknown { .. } => {
                Box::new(Scanner::with_limit(reader, limit))
            }
            Format::Vault => Box::new(vault::Framer::new(reader, limit)),
        }
    }

    /// Decodes every record of a chunk this format's framer cut.
    pub fn decode(self, chunk: Arc<Chunk>, ctx: &DecodeContext) -> DecodedChunk {
        match self {
            Format::Dpod => decode_chunk(chunk),
            Format::CloudHsm(form) => cloudhsm::decode_chunk(chunk, form, ctx),
            Format::Azure { .. } => azure::decode_chunk(chunk, ctx),
            Format::GcpKms => gcp::decode_chunk(chunk, ctx),
            Format::Vault => vault::decode_chunk(chunk, ctx),
            Format::Unknown { .. } => unknown(chunk),
        }
    }
}

/// Whether `obj` (from its `{`) holds the whole object, not only its start.
fn whole_object(obj: &[u8]) -> bool {
    let (mut depth, mut i) = (0usize, 0usize);
    while i < obj.len() {
        match obj[i] {
            b'"' => {
                i += 1;
                while i < obj.len() && obj[i] != b'"' {
                    i += if obj[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Every record of a chunk no format claims, rejected as such with its keys.
fn unknown(chunk: Arc<Chunk>) -> DecodedChunk {
    let rejects = (0..chunk.records.len())
        .map(|pos| {
            let (a, b) = chunk.records[pos];
            let raw = chunk.data.get(a as usize..b as usize).unwrap_or_default();
            let keys: Vec<String> = top_level_keys(raw)
                .iter()
                .take(8)
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            let detail = if keys.is_empty() {
                "a record that no format claims".to_string()
            } else {
                format!(
                    "a record that no format claims (its keys: {})",
                    keys.join(", ")
                )
            };
            (pos as u32, RejectReason::new("unknown_format", detail))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_content() {
        assert_eq!(Format::detect(b""), Some(Format::Dpod));
        assert_eq!(Format::detect(b" \n[{\"time\":1}]"), Some(Format::Dpod));
        assert_eq!(Format::detect(b"{\"time\":\"x\"}\n"), Some(Format::Dpod));
        assert_eq!(
            Format::detect(b"\xEF\xBB\xBF{\n  \"events\": []}"),
            Some(Format::CloudHsm(Form::CloudWatchJson))
        );
        assert_eq!(
            Format::detect(b"{\"nextForwardToken\":\"f/1\",\"events\":[]}"),
            Some(Format::CloudHsm(Form::CloudWatchJson))
        );
        assert_eq!(
            Format::detect(b"{\"messageType\":\"CONTROL_MESSAGE\"}"),
            Some(Format::CloudHsm(Form::Subscription))
        );
        assert_eq!(
            Format::detect(b"Time: 12/19/17 21:01:17.140812, usecs:1513717277140812\n"),
            Some(Format::CloudHsm(Form::TextBlocks))
        );
        assert_eq!(
            Format::detect(b"2017-12-19T21:01:17.140Z Time: 12/19/17 21:01:17.140812"),
            Some(Format::CloudHsm(Form::S3Export))
        );
        assert_eq!(Format::detect(b"quarterly review notes"), None);
        assert_eq!(
            Format::detect(b"{\"time\": \"2016-01-05T01:32:01.2691226Z\",\"resourceId\": \"/SUBSCRIPTIONS/X\",\"operationName\": \"VaultGet\"}"),
            Some(Format::Azure { envelope: false })
        );
        assert_eq!(
            Format::detect(b"[{\"TenantId\": \"t\", \"time\": \"x\", \"resourceId\": \"/S\", \"operationName\": \"BackupCreate\"}]"),
            Some(Format::Azure { envelope: false })
        );
        assert_eq!(
            Format::detect(b"{ \"records\": [ {\"time\": \"x\", \"operationName\": \"KeySign\", \"category\": \"AuditEvent\"}]}"),
            Some(Format::Azure { envelope: true })
        );
        assert_eq!(
            Format::detect(b"{\"protoPayload\": {\"@type\": \"x\"}, \"insertId\": \"1\"}"),
            Some(Format::GcpKms)
        );
        assert_eq!(
            Format::detect(b"{\"time\": \"2020-02-07T17:44:17.392595555Z\", \"type\": \"request\", \"auth\": {}}"),
            Some(Format::Vault)
        );
        assert_eq!(
            Format::detect(b"{\"timestamp\": 1, \"message\": \"hello\"}"),
            Some(Format::Unknown { envelope: false })
        );
        // Vault writes `type` last in newer versions; a head that ends inside the first
        // record keeps what it shows.
        assert_eq!(
            Format::detect(
                b"{\"auth\": {}, \"request\": {\"id\": \"1\"}, \"response\": {\"data\": [\"a\""
            ),
            Some(Format::Vault)
        );
        assert_eq!(Format::detect(b"[{\"ti"), Some(Format::Dpod));
        assert_eq!(
            Format::detect(b"{\"timestamp\": 1, \"message\": \"hel"),
            Some(Format::Dpod)
        );
    }
}
