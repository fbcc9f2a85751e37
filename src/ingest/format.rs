//! The registry of source formats, above the vendors: which format a member holds,
//! judged by its first bytes (never by a file name), and dispatch to that vendor's
//! framer and decoder (the types they share are [`super::interface`]'s).
//!
//! A format is one variant of [`Format`]: [`Format::detect`] recognises it, its
//! [`Framer`] cuts a member into [`Chunk`]s of whole records, and [`Format::decode`]
//! turns a chunk into per-partition batches and rejects. DPoD exports ([`super::scan`],
//! [`super::decode`]) and AWS CloudHSM audit logs ([`super::cloudhsm`]) are the two
//! today; a third vendor is one more module and one more variant here.

use std::io::Read;
use std::sync::Arc;

use super::cloudhsm::{self, Form};
use super::decode::decode_chunk;
use super::interface::{is_json_space, Chunk, DecodeContext, DecodedChunk, Framer};
use super::scan::Scanner;

/// What a member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Thales DPoD audit records: a JSON array of objects, or NDJSON (SPEC §1.1).
    #[default]
    Dpod,
    /// AWS CloudHSM audit events in one of the forms CloudWatch Logs hands them out.
    CloudHsm(Form),
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
        match rest[0] {
            b'[' | b'{' => Some(Format::Dpod),
            _ => None,
        }
    }

    /// The value of the `vendor` column of this format's rows.
    pub fn vendor(&self) -> &'static str {
        match self {
            Format::Dpod => crate::lake::VENDOR_DPOD,
            Format::CloudHsm(_) => cloudhsm::VENDOR,
        }
    }

    /// Whether records in this format never name their tenant, so `--tenant` must.
    pub fn needs_tenant(&self) -> bool {
        match self {
            Format::Dpod => false,
            Format::CloudHsm(form) => !form.names_log_group(),
        }
    }

    /// The framer of a member in this format; records over `limit` bytes are rejected
    /// as `record_too_large` where the format frames by size.
    pub fn framer<'a>(self, reader: &'a mut dyn Read, limit: usize) -> Box<dyn Framer + 'a> {
        match self {
            Format::Dpod => Box::new(Scanner::with_limit(reader, limit)),
            Format::CloudHsm(form) => Box::new(cloudhsm::Framer::new(reader, form, limit)),
        }
    }

    /// Decodes every record of a chunk this format's framer cut.
    pub fn decode(self, chunk: Arc<Chunk>, ctx: &DecodeContext) -> DecodedChunk {
        match self {
            Format::Dpod => decode_chunk(chunk),
            Format::CloudHsm(form) => cloudhsm::decode_chunk(chunk, form, ctx),
        }
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
    }
}
