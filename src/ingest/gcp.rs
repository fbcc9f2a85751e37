//! Google Cloud audit logs of Cloud KMS (`vendor` `gcp-kms`; Cloud HSM and Cloud EKM keys
//! log the same way): Cloud Logging `LogEntry` JSON with an `AuditLog` `protoPayload`, as
//! a Cloud Storage sink writes it (`cloudaudit.googleapis.com/{activity,data_access}/
//! YYYY/MM/DD/HH:00:00_HH:59:59_S0.json`, one entry per line) or as `gcloud logging read
//! --format=json` prints it (one JSON array).
//!
//! Mapping: `time` the `timestamp` (nanoseconds cut to microseconds; `meta.timestamp`
//! keeps the text), `tenant_id` the project of `logName` (else
//! `resource.labels.project_id`, else `--tenant`), `source` the `serviceName`,
//! `resource_id` the `resourceName`, `part_id` its key ring, `actor_id`
//! `authenticationInfo.principalEmail` (else `principalSubject`), `action` the
//! `methodName` (its last dotted part), `status` the `google.rpc.Code` name of
//! `status.code` (`OK` when absent), `outcome` success when the code is absent or 0,
//! `client_ip` `requestMetadata.callerIp`, `ouid` the crypto key (a version's key; the
//! version goes to `meta.cryptoKeyVersion`). `trace_id` is `gcp:<insertId>@<timestamp>`,
//! what Cloud Logging itself dedupes on, so an entry exported twice (overlapping sinks,
//! `_S0` and `_A0` shards) is one row. Every other field, the Key Access Justification
//! reason in `protoPayload.metadata` among them, goes to `meta` as written.

use std::borrow::Cow;
use std::sync::Arc;

use super::interface::{Chunk, DecodeContext, DecodedChunk, RejectReason};
use super::json::{self, decode_records, missing, time_of, RawObject};
use crate::lake::rows::{CanonicalRow, Outcome, RowsBuilder};

/// The value of the `vendor` column for Cloud KMS rows.
pub const VENDOR: &str = "gcp-kms";

/// Whether a member whose first record has these top-level keys is a Cloud audit log.
pub fn claims(keys: &[&[u8]]) -> bool {
    let has = |k: &[u8]| keys.contains(&k);
    has(b"protoPayload") || (has(b"logName") && has(b"insertId"))
}

/// `protoPayload` fields mapped to columns of their own (the rest go to `meta`).
const PAYLOAD_MAPPED: [&str; 3] = ["serviceName", "methodName", "resourceName"];

/// Decodes a chunk of Cloud audit log entries.
pub fn decode_chunk(chunk: Arc<Chunk>, ctx: &DecodeContext) -> DecodedChunk {
    decode_records(chunk, |obj, _text, pos, rows, left| {
        decode_entry(&obj, ctx, pos, rows, left)
    })
}

fn decode_entry(
    obj: &RawObject<'_>,
    ctx: &DecodeContext,
    pos: u32,
    rows: &mut RowsBuilder,
    left: usize,
) -> Result<i64, RejectReason> {
    let stamp = obj.text("timestamp");
    let time = time_of(stamp.as_deref(), "timestamp")?;
    let insert_id = obj
        .text("insertId")
        .ok_or_else(|| missing("trace_missing", "insertId"))?;
    let payload = obj
        .object("protoPayload")
        .ok_or_else(|| missing("field_missing", "protoPayload object"))?;
    // An organisation's sink holds every service's audit logs: take Cloud KMS's only.
    if let Some(svc) = payload
        .text("serviceName")
        .filter(|s| s != "cloudkms.googleapis.com")
    {
        return Err(RejectReason::new(
            "unsupported_service",
            format!("an audit log entry of {svc}, not Cloud KMS"),
        ));
    }
    let method = payload
        .text("methodName")
        .ok_or_else(|| missing("action_missing", "protoPayload.methodName"))?;
    let action = method.rsplit('.').next().unwrap_or(&method);
    let resource = obj.object("resource");
    let project = obj
        .text("logName")
        .as_deref()
        .and_then(project_of)
        .map(|p| Cow::Owned(p.to_string()))
        .or_else(|| {
            resource
                .as_ref()
                .and_then(|r| r.object("labels"))
                .and_then(|l| l.text("project_id"))
        });
    let tenant = ctx.tenant_or(project, "project in logName or resource labels")?;
    let code = payload
        .object("status")
        .and_then(|s| s.text("code"))
        .and_then(|c| c.parse::<i64>().ok())
        .unwrap_or(0);
    let auth = payload.object("authenticationInfo");
    let actor = auth.as_ref().and_then(|a| {
        a.text("principalEmail")
            .or_else(|| a.text("principalSubject"))
    });
    let client_ip = payload
        .object("requestMetadata")
        .and_then(|m| m.text("callerIp"));
    let resource_name = payload.text("resourceName");
    let (key, version) = match resource_name.as_deref() {
        Some(r) => crypto_key_of(r),
        None => (None, None),
    };
    let ring = resource_name.as_deref().and_then(key_ring_of);
    let trace_id = format!("gcp:{insert_id}@{}", stamp.as_deref().unwrap_or_default());

    let version_json = version.map(json::quoted);
    let payload_rest = json::write_object(
        payload
            .0
            .iter()
            .filter(|(k, _)| !PAYLOAD_MAPPED.contains(&k.as_ref()))
            .map(|(k, v)| (k.as_ref(), v.get())),
    );
    let meta = json::write_object(
        obj.0
            .iter()
            .filter(|(k, _)| k != "protoPayload")
            .map(|(k, v)| (k.as_ref(), v.get()))
            .chain(payload_rest.as_deref().map(|p| ("protoPayload", p)))
            .chain(version_json.as_deref().map(|v| ("cryptoKeyVersion", v))),
    );
    let service = payload.text("serviceName");
    rows.push(
        &CanonicalRow {
            pos,
            time,
            tenant: &tenant,
            vendor: VENDOR,
            source: service.as_deref(),
            resource_id: resource_name.as_deref(),
            actor_id: actor.as_deref(),
            action: Some(action),
            status: Some(code_name(code)),
            outcome: Outcome::of(code == 0),
            trace_id: &trace_id,
            client_ip: client_ip.as_deref(),
            hsm_id: None,
            part_id: ring,
            role: None,
            ouid: key,
            meta: meta.as_deref(),
            extra: None,
        },
        left,
    );
    Ok(time)
}

/// The project of a log name: `projects/<p>/logs/…` → `<p>`; other parents (folders,
/// organizations, billing accounts) as `<kind>/<id>`.
fn project_of(log_name: &str) -> Option<&str> {
    let (parent, _) = log_name.split_once("/logs/")?;
    Some(parent.strip_prefix("projects/").unwrap_or(parent))
}

/// The crypto key a resource name names, and the version when it names one:
/// `projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3` → (`…/cryptoKeys/k`, `3`).
fn crypto_key_of(name: &str) -> (Option<&str>, Option<&str>) {
    let Some(i) = name.find("/cryptoKeys/") else {
        return (None, None);
    };
    let after = &name[i + "/cryptoKeys/".len()..];
    let key_end = after
        .find('/')
        .map_or(name.len(), |j| i + "/cryptoKeys/".len() + j);
    let version = name[key_end..].strip_prefix("/cryptoKeyVersions/");
    (Some(&name[..key_end]), version.filter(|v| !v.is_empty()))
}

/// The key ring of a resource name: `projects/p/locations/l/keyRings/r[/…]`.
fn key_ring_of(name: &str) -> Option<&str> {
    let i = name.find("/keyRings/")?;
    let after = &name[i + "/keyRings/".len()..];
    let end = after
        .find('/')
        .map_or(name.len(), |j| i + "/keyRings/".len() + j);
    Some(&name[..end])
}

/// The name of a `google.rpc.Code`.
fn code_name(code: i64) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let v = "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3";
        assert_eq!(
            crypto_key_of(v),
            (
                Some("projects/p/locations/global/keyRings/r/cryptoKeys/k"),
                Some("3")
            )
        );
        assert_eq!(
            crypto_key_of("projects/p/locations/global/keyRings/r/cryptoKeys/k"),
            (
                Some("projects/p/locations/global/keyRings/r/cryptoKeys/k"),
                None
            )
        );
        assert_eq!(
            crypto_key_of("projects/p/locations/global/keyRings/r"),
            (None, None)
        );
        assert_eq!(
            key_ring_of(v),
            Some("projects/p/locations/global/keyRings/r")
        );
        assert_eq!(
            project_of("projects/acme-prod/logs/cloudaudit.googleapis.com%2Fdata_access"),
            Some("acme-prod")
        );
        assert_eq!(
            project_of("organizations/12/logs/x"),
            Some("organizations/12")
        );
        assert_eq!(code_name(7), "PERMISSION_DENIED");
    }
}
