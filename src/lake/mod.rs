//! The lake on disk: its canonical schema, its Hive layout, and the parts that write it.
//!
//! `<lake>/events/tenant_id=<id>/day=<YYYY-MM-DD>/<file>.parquet` holds the
//! rows; `<lake>/_ledger/` one JSON entry per converted source;
//! `<lake>/_rejected/` NDJSON of everything that could not be placed.

pub mod ledger;
pub mod partitions;
pub mod rejects;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Directory names under the lake root.
pub const EVENTS_DIR: &str = "events";
pub const LEDGER_DIR: &str = "_ledger";
pub const REJECTED_DIR: &str = "_rejected";

/// The value of the `vendor` column for DPoD exports.
pub const VENDOR_DPOD: &str = "dpod";

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
    /// `tenant_id=<enc>/day=<YYYY-MM-DD>` relative to the events directory.
    pub fn rel_dir(&self) -> PathBuf {
        Path::new(&format!("tenant_id={}", encode_part_value(&self.tenant)))
            .join(format!("day={}", crate::ingest::time::format_day(self.day)))
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

/// A partition found on disk.
#[derive(Debug, Clone)]
pub struct PartitionDir {
    pub key: PartKey,
    pub path: PathBuf,
}

/// Lists the partitions under `<lake>/events`, optionally of one tenant, sorted.
pub fn list_partitions(lake: &Path, tenant: Option<&str>) -> std::io::Result<Vec<PartitionDir>> {
    let events = lake.join(EVENTS_DIR);
    let mut out = Vec::new();
    let tenant_dirs: Vec<(String, PathBuf)> = match tenant {
        Some(t) => {
            let p = events.join(format!("tenant_id={}", encode_part_value(t)));
            if p.is_dir() {
                vec![(t.to_string(), p)]
            } else {
                vec![]
            }
        }
        None => {
            let mut v = Vec::new();
            if events.is_dir() {
                for e in std::fs::read_dir(&events)? {
                    let e = e?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(t) = name.strip_prefix("tenant_id=").and_then(decode_part_value) {
                        v.push((t, e.path()));
                    }
                }
            }
            v
        }
    };
    for (tenant, dir) in tenant_dirs {
        let tenant: Arc<str> = tenant.into();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(day) = name
                .strip_prefix("day=")
                .and_then(crate::ingest::time::parse_day)
            {
                out.push(PartitionDir {
                    key: PartKey {
                        tenant: tenant.clone(),
                        day,
                    },
                    path: e.path(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The Parquet files of one partition directory (temporary files excluded), sorted.
pub fn parquet_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let e = e?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".parquet") && !name.starts_with('.') && !name.starts_with('_') {
                    v.push(e.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    v.sort();
    Ok(v)
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
