//! Azure Key Vault and Azure Managed HSM `AuditEvent` resource logs (`vendor`
//! `azure-keyvault` / `azure-mhsm`), as diagnostic settings write them to a storage
//! account (`insights-logs-auditevent/resourceId=…/y=/m=/d=/h=/m=00/PT1H.json`, JSON
//! Lines since 2018-11-01) or in `{"records": [...]}` envelopes (older blobs, Event Hubs).
//!
//! Two record shapes: the vault's (`identity.claim` an object, `durationMs` a string,
//! `properties.{id, requestUri, httpStatusCode, clientInfo}`) and Managed HSM's
//! (`identity` a JSON-encoded string, `durationMs` a number, `requestUri`,
//! `httpStatusCode`, `correlationId`, `PoolName`, `TenantId` at the top level, no
//! `resultSignature`). Mapping: `tenant_id` the subscription in `resourceId` (lower
//! case; `--tenant` when there is none), `source` and `hsm_id` the resource id,
//! `resource_id` and `part_id` the vault or pool name, `actor_id` the caller's UPN, else
//! object id, else app id, `action` the `operationName`, `status` the result signature
//! (else the HTTP status), `outcome` success when the HTTP status is below 400 (else when
//! `resultType` is `Success`), `client_ip` the `callerIpAddress`, `ouid` the key, secret
//! or certificate URI without its version (which `meta.objectVersion` keeps); every other
//! field goes to `meta` as written.
//!
//! A record has no id of its own, and the same event may be delivered twice (a blob per
//! hour by receive time; Event Hubs and storage both). `trace_id` is `az:` and 32 hex of
//! a SHA-256 over what identifies the event (its time without the fraction's trailing
//! zeros, resource id, operation, correlation id, caller address, request path, object and
//! version, HTTP status, duration, caller, client, result), taken from whichever shape
//! carries them: one event gives one id in every delivery and both wrappings.

use std::borrow::Cow;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::interface::{Chunk, DecodeContext, DecodedChunk, RejectReason};
use super::json::{self, decode_records, missing, text, time_of, RawObject};
use crate::lake::rows::{CanonicalRow, Outcome, RowsBuilder};

/// The `vendor` of Key Vault rows.
pub const VENDOR_KEYVAULT: &str = "azure-keyvault";
/// The `vendor` of Managed HSM rows.
pub const VENDOR_MHSM: &str = "azure-mhsm";

/// Whether a member whose first record has these top-level keys is an Azure resource log.
pub fn claims(keys: &[&[u8]]) -> bool {
    let has = |k: &[u8]| keys.contains(&k);
    has(b"operationName") && (has(b"resourceId") || has(b"category"))
}

/// Fields mapped to columns of their own (the rest go to `meta`).
const MAPPED: [&str; 4] = ["time", "resourceId", "operationName", "callerIpAddress"];

/// Decodes a chunk of Azure audit events.
pub fn decode_chunk(chunk: Arc<Chunk>, ctx: &DecodeContext) -> DecodedChunk {
    decode_records(chunk, |obj, _text, pos, rows, left| {
        decode_event(&obj, ctx, pos, rows, left)
    })
}

fn decode_event(
    obj: &RawObject<'_>,
    ctx: &DecodeContext,
    pos: u32,
    rows: &mut RowsBuilder,
    left: usize,
) -> Result<i64, RejectReason> {
    let time_text = obj.text("time");
    let time = time_of(time_text.as_deref(), "time")?;
    let action = obj
        .text("operationName")
        .ok_or_else(|| missing("action_missing", "operationName"))?;
    let resource = obj.text("resourceId");
    // Azure's resource logs share one schema: take Key Vault's audit events only.
    if let Some(r) = resource.as_deref() {
        if !contains_ignore_case(r, "/PROVIDERS/MICROSOFT.KEYVAULT/") {
            return Err(RejectReason::new(
                "unsupported_service",
                format!("not a Key Vault or Managed HSM resource: {r}"),
            ));
        }
    }
    if let Some(c) = obj.text("category").filter(|c| c != "AuditEvent") {
        return Err(RejectReason::new(
            "unsupported_service",
            format!("log category {c}, not AuditEvent"),
        ));
    }
    let tenant = ctx.tenant_or(
        resource
            .as_deref()
            .and_then(subscription_of)
            .map(|s| Cow::Owned(s.to_ascii_lowercase())),
        "subscription in resourceId",
    )?;
    let props = obj.object("properties");
    let field = |k: &str| {
        obj.text(k)
            .or_else(|| props.as_ref().and_then(|p| p.text(k)))
    };
    let http = field("httpStatusCode");
    let http_code = http.as_deref().and_then(|h| h.parse::<u16>().ok());
    let signature = obj.text("resultSignature");
    let result_type = obj.text("resultType");
    let success = match http_code {
        Some(c) => c < 400,
        None => result_type.as_deref() == Some("Success"),
    };
    let status = signature.or_else(|| http.clone()).or(result_type);
    let request_uri = field("requestUri");
    let object_id = props.as_ref().and_then(|p| p.text("id"));
    let object = object_id
        .as_deref()
        .and_then(object_of)
        .or_else(|| request_uri.as_deref().and_then(object_of));
    let actor = obj.raw("identity").and_then(actor_of);
    let vendor = if obj.raw("PoolName").is_some()
        || resource
            .as_deref()
            .is_some_and(|r| contains_ignore_case(r, "/MANAGEDHSMS/"))
    {
        VENDOR_MHSM
    } else {
        VENDOR_KEYVAULT
    };
    let name = resource
        .as_deref()
        .and_then(|r| r.rsplit('/').find(|s| !s.is_empty()))
        .map(|n| n.to_ascii_lowercase());

    let trace_id = {
        // What identifies the event, the same in both shapes: the instant without the
        // fraction's trailing zeros (`.7630000Z` and `.763Z` are one time), the request
        // path without its query, the object and its version.
        let instant = time_text.as_deref().map(trim_fraction);
        let path = request_uri
            .as_deref()
            .map(|u| u.split(['?', '#']).next().unwrap_or(u).to_ascii_lowercase());
        let (ouid, version) = match &object {
            Some((o, v)) => (Some(o.as_str()), v.as_deref()),
            None => (None, None),
        };
        let mut h = Sha256::new();
        for part in [
            instant.as_deref(),
            resource.as_deref(),
            Some(action.as_ref()),
            field("correlationId").as_deref(),
            obj.text("callerIpAddress").as_deref(),
            path.as_deref(),
            ouid,
            version,
            http.as_deref(),
            field("durationMs").as_deref(),
            actor.as_deref(),
            field("clientInfo").as_deref(),
            obj.text("resultDescription").as_deref(),
            obj.text("resultType").as_deref(),
        ] {
            match part {
                Some(p) => {
                    h.update(p.to_ascii_uppercase().as_bytes());
                    h.update([0]);
                }
                None => h.update([1]),
            }
        }
        let d = h.finalize();
        let mut s = String::with_capacity(35);
        s.push_str("az:");
        for b in &d[..16] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    };

    let version = object.as_ref().and_then(|o| o.1.clone());
    let version_json = version.as_deref().map(json::quoted);
    let meta = json::write_object(
        obj.0
            .iter()
            .filter(|(k, _)| !MAPPED.contains(&k.as_ref()))
            .map(|(k, v)| (k.as_ref(), v.get()))
            .chain(version_json.as_deref().map(|v| ("objectVersion", v))),
    );
    let client_ip = obj.text("callerIpAddress");
    rows.push(
        &CanonicalRow {
            pos,
            time,
            tenant: &tenant,
            vendor,
            source: resource.as_deref(),
            resource_id: name.as_deref(),
            actor_id: actor.as_deref(),
            action: Some(&action),
            status: status.as_deref(),
            outcome: Outcome::of(success),
            trace_id: &trace_id,
            client_ip: client_ip.as_deref(),
            hsm_id: resource.as_deref(),
            part_id: name.as_deref(),
            role: None,
            ouid: object.as_ref().map(|o| o.0.as_str()),
            meta: meta.as_deref(),
            extra: None,
        },
        left,
    );
    Ok(time)
}

/// An RFC 3339 time without the trailing zeros of its fraction (and without a bare `.`).
fn trim_fraction(t: &str) -> String {
    let Some(dot) = t.find('.') else {
        return t.to_string();
    };
    let digits = t[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
    let frac = t[dot + 1..dot + 1 + digits].trim_end_matches('0');
    let rest = &t[dot + 1 + digits..];
    if frac.is_empty() {
        format!("{}{rest}", &t[..dot])
    } else {
        format!("{}.{frac}{rest}", &t[..dot])
    }
}

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The subscription id of an ARM resource id: `/SUBSCRIPTIONS/<id>/…`.
pub fn subscription_of(resource: &str) -> Option<&str> {
    let mut it = resource.split('/').filter(|s| !s.is_empty());
    while let Some(part) = it.next() {
        if part.eq_ignore_ascii_case("subscriptions") {
            return it.next();
        }
    }
    None
}

/// The object a vault URI names, without its version, and the version:
/// `https://v.vault.azure.net/keys/k/0123/sign?api-version=7.4` →
/// (`https://v.vault.azure.net/keys/k`, `0123`). `None` for URIs naming no key, secret
/// or certificate.
pub fn object_of(uri: &str) -> Option<(String, Option<String>)> {
    let uri = uri.split(['?', '#']).next()?;
    let (scheme, rest) = uri.split_once("://")?;
    let mut parts = rest.split('/');
    let host = parts.next()?.to_ascii_lowercase();
    let kind = parts.next()?;
    if !matches!(
        kind.to_ascii_lowercase().as_str(),
        "keys" | "secrets" | "certificates" | "deletedkeys" | "deletedsecrets"
    ) {
        return None;
    }
    // Collection endpoints that name no object (`/keys/restore`, `/certificates/issuers`).
    let name = parts.next().filter(|n| {
        !n.is_empty() && !matches!(*n, "restore" | "import" | "issuers" | "contacts")
    })?;
    let version = parts
        .next()
        .filter(|v| v.len() >= 16 && v.bytes().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string);
    let kind = kind.to_ascii_lowercase();
    let kind = kind.strip_prefix("deleted").unwrap_or(&kind);
    Some((format!("{scheme}://{host}/{kind}/{name}"), version))
}

/// The caller of an `identity` (an object, or a string holding one): its UPN, else its
/// object id, else its app id, wherever in `claim` they sit (the vault form names the
/// claims by URI, the Managed HSM form nests them).
fn actor_of(identity: &serde_json::value::RawValue) -> Option<String> {
    let text;
    let raw = if identity.get().starts_with('"') {
        text = json::text(identity)?;
        text.as_ref()
    } else {
        identity.get()
    };
    let obj = RawObject::parse(raw).ok()?;
    let claim = obj.object("claim")?;
    ["upn", "objectidentifier", "appid"]
        .iter()
        .find_map(|want| find_claim(&claim, want, 3))
}

/// The first string value under a key ending in `want` (`…/claims/upn`, `upn`), searched
/// `depth` objects deep.
fn find_claim(obj: &RawObject<'_>, want: &str, depth: u32) -> Option<String> {
    for (k, v) in &obj.0 {
        let last = k.rsplit(['/', '.']).next().unwrap_or(k);
        if last.eq_ignore_ascii_case(want) || (want == "objectidentifier" && k == "oid") {
            if let Some(t) = text(v) {
                return Some(t.into_owned());
            }
        }
    }
    if depth == 0 {
        return None;
    }
    obj.0
        .iter()
        .filter_map(|(_, v)| json::object(v))
        .find_map(|o| find_claim(&o, want, depth - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_subscriptions() {
        assert_eq!(
            object_of("https://V.vault.azure.net/keys/k1/0123456789abcdef0123456789abcdef/sign?api-version=7.4"),
            Some((
                "https://v.vault.azure.net/keys/k1".into(),
                Some("0123456789abcdef0123456789abcdef".into())
            ))
        );
        assert_eq!(
            object_of("https://p.managedhsm.azure.net/keys/k2/unwrapkey"),
            Some(("https://p.managedhsm.azure.net/keys/k2".into(), None))
        );
        assert_eq!(object_of("https://p.managedhsm.azure.net/backup"), None);
        assert_eq!(
            object_of("https://p.managedhsm.azure.net/keys/restore"),
            None
        );
        assert_eq!(
            trim_fraction("2020-08-31T19:52:39.7630000Z"),
            "2020-08-31T19:52:39.763Z"
        );
        assert_eq!(
            trim_fraction("2020-08-31T19:52:39.000Z"),
            "2020-08-31T19:52:39Z"
        );
        assert_eq!(
            trim_fraction("2020-08-31T19:52:39Z"),
            "2020-08-31T19:52:39Z"
        );
        assert_eq!(
            subscription_of("/SUBSCRIPTIONS/AB-12/RESOURCEGROUPS/G/PROVIDERS/X"),
            Some("AB-12")
        );
    }

    #[test]
    fn actors_in_both_shapes() {
        let vault = serde_json::from_str::<&serde_json::value::RawValue>(
            r#"{"claim":{"http://schemas.microsoft.com/identity/claims/objectidentifier":"o1","http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":"a@b.c","appid":"x"}}"#,
        )
        .unwrap();
        assert_eq!(actor_of(vault).as_deref(), Some("a@b.c"));
        let mhsm = serde_json::from_str::<&serde_json::value::RawValue>(
            r#""{\"claim\":{\"appid\":\"app\",\"http_schemas_microsoft_com_identity\":{\"claims\":{\"objectidentifier\":\"o2\"}}}}""#,
        )
        .unwrap();
        assert_eq!(actor_of(mhsm).as_deref(), Some("o2"));
    }
}
