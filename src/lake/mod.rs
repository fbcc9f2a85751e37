//! The lake on disk: its canonical schema, its Hive layout, and the parts that write it.
//!
//! `<lake>/events/tenant_id=<id>/day=<YYYY-MM-DD>/<file>.parquet` holds the
//! rows; `<lake>/_ledger/` one JSON entry per converted source;
//! `<lake>/_rejected/` NDJSON of everything that could not be placed;
//! `<lake>/_index/` the trace index that keeps conversions exactly-once (see [`index`]);
//! `<lake>/_manifest/` the live files with their statistics, that queries plan from
//! (see [`manifest`]).

pub mod chain;
pub mod coverage;
pub mod index;
pub mod ledger;
pub mod lock;
pub mod manifest;
pub mod partitions;
pub mod rejects;
pub mod rows;
pub mod sequence;
pub mod store;
pub mod switch;
pub mod writer;

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Directory names under the lake root.
pub const EVENTS_DIR: &str = "events";
pub const LEDGER_DIR: &str = "_ledger";
pub const REJECTED_DIR: &str = "_rejected";

/// The value of the `vendor` column for DPoD exports.
pub const VENDOR_DPOD: &str = "dpod";
/// The value of the `vendor` column for AWS CloudHSM audit logs, whose trace_ids carry
/// sequence numbers ([`sequence`]).
pub const VENDOR_CLOUDHSM: &str = "aws-cloudhsm";

/// Columns of a Parquet file, in order. The partition columns `tenant_id` and
/// `day` live in the path, not in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Col {
    Time,
    Vendor,
    Source,
    ResourceId,
    ActorId,
    Action,
    Status,
    Outcome,
    TraceId,
    ClientIp,
    HsmId,
    PartId,
    Role,
    Ouid,
    Meta,
    Extra,
}

/// Every column, in file order.
pub const ALL_COLS: [Col; 16] = [
    Col::Time,
    Col::Vendor,
    Col::Source,
    Col::ResourceId,
    Col::ActorId,
    Col::Action,
    Col::Status,
    Col::Outcome,
    Col::TraceId,
    Col::ClientIp,
    Col::HsmId,
    Col::PartId,
    Col::Role,
    Col::Ouid,
    Col::Meta,
    Col::Extra,
];

/// Names of the file columns, indexed by [`Col`].
pub const COLUMN_NAMES: [&str; 16] = [
    "time",
    "vendor",
    "source",
    "resource_id",
    "actor_id",
    "action",
    "status",
    "outcome",
    "trace_id",
    "client_ip",
    "hsm_id",
    "part_id",
    "role",
    "ouid",
    "meta",
    "extra",
];

/// Columns that get a bloom filter: the ones auditors look up one value of.
pub const BLOOM_COLUMNS: [Col; 4] = [Col::Ouid, Col::ClientIp, Col::ActorId, Col::TraceId];

static FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields = COLUMN_NAMES.iter().enumerate().map(|(i, name)| {
        if i == Col::Time as usize {
            Field::new(
                *name,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            )
        } else {
            let required = [Col::Vendor, Col::Outcome, Col::TraceId]
                .iter()
                .any(|c| *c as usize == i);
            Field::new(*name, DataType::Utf8, !required)
        }
    });
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
});

/// The schema of each Parquet file in the lake (without the partition columns).
pub fn file_schema() -> SchemaRef {
    FILE_SCHEMA.clone()
}

/// One partition: a tenant and a UTC day (Date32).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartKey {
    pub tenant: Arc<str>,
    pub day: i32,
}

impl PartKey {
    /// `events/tenant_id=<enc>/day=<YYYY-MM-DD>`, relative to the lake root.
    pub fn rel_dir(&self) -> String {
        format!(
            "{EVENTS_DIR}/tenant_id={}/day={}",
            encode_part_value(&self.tenant),
            crate::time::format_day(self.day)
        )
    }

    /// The partition of a directory [`PartKey::rel_dir`] names, `None` for any other path.
    pub fn of_dir(rel: &str) -> Option<PartKey> {
        let mut it = rel.split('/');
        let (events, t, d) = (it.next()?, it.next()?, it.next()?);
        if events != EVENTS_DIR || it.next().is_some() {
            return None;
        }
        Some(PartKey {
            tenant: decode_part_value(t.strip_prefix("tenant_id=")?)?.into(),
            day: crate::time::parse_day(d.strip_prefix("day=")?)?,
        })
    }
}

/// Percent-encodes every byte outside `[A-Za-z0-9._-]`, as Hive-style readers expect.
pub fn encode_part_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // "." and ".." are not usable directory names.
    if out == "." || out == ".." {
        return out.replace('.', "%2E");
    }
    out
}

/// The inverse of [`encode_part_value`]; `None` for malformed escapes or non-UTF-8.
pub fn decode_part_value(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A partition found in the lake.
#[derive(Debug, Clone)]
pub struct PartitionDir {
    pub key: PartKey,
    /// Its directory relative to the lake root.
    pub rel: String,
}

/// Lists the partitions under `<lake>/events`, optionally of one tenant, sorted.
pub async fn list_partitions(
    store: &store::LakeStore,
    tenant: Option<&str>,
) -> crate::Result<Vec<PartitionDir>> {
    let tenants: Vec<String> = match tenant {
        Some(t) => vec![format!("tenant_id={}", encode_part_value(t))],
        None => store.list_dirs(EVENTS_DIR).await?,
    };
    let mut out = Vec::new();
    for dir in tenants {
        let Some(t) = dir.strip_prefix("tenant_id=").and_then(decode_part_value) else {
            continue;
        };
        let t: Arc<str> = t.into();
        let rel = format!("{EVENTS_DIR}/{dir}");
        for day_dir in store.list_dirs(&rel).await? {
            if let Some(day) = day_dir
                .strip_prefix("day=")
                .and_then(crate::time::parse_day)
            {
                out.push(PartitionDir {
                    key: PartKey {
                        tenant: t.clone(),
                        day,
                    },
                    rel: format!("{rel}/{day_dir}"),
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The live Parquet files of a partition: relative path and size. Temporary and hidden
/// files are left out, and so are the files a compaction is replacing or writing (the
/// listing comes first, the compaction manifest after it: see [`switch`]).
pub async fn partition_files(
    store: &store::LakeStore,
    rel: &str,
) -> crate::Result<Vec<(String, u64)>> {
    let listed = listed_files(store, rel).await?;
    let switches = switch::Switches::load(store).await?;
    live_files(store, &switches, rel, listed).await
}

/// The live files of every partition of the lake (or of one tenant): all partitions
/// listed first, the compaction manifest read once after them (see [`switch`]).
pub async fn live_partitions(
    store: &store::LakeStore,
    tenant: Option<&str>,
) -> crate::Result<Vec<(PartitionDir, Vec<(String, u64)>)>> {
    let parts = list_partitions(store, tenant).await?;
    let mut listed = Vec::with_capacity(parts.len());
    for part in &parts {
        listed.push(listed_files(store, &part.rel).await?);
    }
    let switches = switch::Switches::load(store).await?;
    let mut out = Vec::with_capacity(parts.len());
    for (part, listed) in parts.into_iter().zip(listed) {
        let live = live_files(store, &switches, &part.rel, listed).await?;
        out.push((part, live));
    }
    Ok(out)
}

/// A live file of the lake.
#[derive(Debug, Clone)]
pub struct LiveFile {
    /// Relative to the lake root.
    pub path: String,
    pub bytes: u64,
    /// Its row count, where the manifest gives it (a listing does not).
    pub rows: Option<u64>,
    /// Its rows' vendors, where the manifest gives them.
    pub vendors: Option<Vec<String>>,
}

/// The live files of the lake (or of one tenant) by partition, sorted by partition:
/// as the manifest, their one owner, lists them; a lake from before the manifest is
/// listed. A constant number of requests however old the lake (see [`manifest`]);
/// files of a run killed before its manifest entry are not live until its rerun.
pub async fn live_set(
    store: &store::LakeStore,
    tenant: Option<&str>,
) -> crate::Result<Vec<(PartitionDir, Vec<LiveFile>)>> {
    let Some(state) = manifest::load(store).await? else {
        return Ok(live_partitions(store, tenant)
            .await?
            .into_iter()
            .map(|(part, files)| {
                let files = files
                    .into_iter()
                    .map(|(path, bytes)| LiveFile {
                        path,
                        bytes,
                        rows: None,
                        vendors: None,
                    })
                    .collect();
                (part, files)
            })
            .filter(|(_, files): &(PartitionDir, Vec<LiveFile>)| !files.is_empty())
            .collect());
    };
    let mut out: Vec<(PartitionDir, Vec<LiveFile>)> = Vec::new();
    // The manifest's paths sort by tenant directory, then day: partitions come in order
    // of their directory names, sorted by key below.
    for (path, entry) in state.files {
        let Some(dir) = path.rsplit_once('/').map(|(d, _)| d.to_string()) else {
            continue;
        };
        let Some(key) = PartKey::of_dir(&dir) else {
            continue;
        };
        if tenant.is_some_and(|t| *key.tenant != *t) {
            continue;
        }
        let file = LiveFile {
            bytes: entry.bytes,
            rows: Some(entry.rows),
            vendors: entry.vendors,
            path,
        };
        match out.last_mut() {
            Some((p, files)) if p.rel == dir => files.push(file),
            _ => out.push((PartitionDir { key, rel: dir }, vec![file])),
        }
    }
    out.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    Ok(out)
}

/// The Parquet files listed in a partition directory, as they are (no compaction rule).
pub async fn listed_files(
    store: &store::LakeStore,
    rel: &str,
) -> crate::Result<Vec<(String, u64)>> {
    Ok(store
        .list_files(rel)
        .await?
        .into_iter()
        .filter(|(n, _)| n.ends_with(".parquet"))
        .map(|(n, size)| (format!("{rel}/{n}"), size))
        .collect())
}

/// A partition listing taken before `switches` was loaded, with the compaction rule applied.
pub async fn live_files(
    store: &store::LakeStore,
    switches: &switch::Switches,
    rel: &str,
    listed: Vec<(String, u64)>,
) -> crate::Result<Vec<(String, u64)>> {
    switches
        .apply(rel, listed, |p| async move { store.size(&p).await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_round_trip() {
        for s in ["abc-DEF_1.2", "a/b c", "é", "..", "%"] {
            let e = encode_part_value(s);
            assert!(
                e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-%".contains(&b)),
                "{e}"
            );
            assert_eq!(decode_part_value(&e).as_deref(), Some(s));
        }
        assert_eq!(encode_part_value("a/b"), "a%2Fb");
    }
}
