//! The one vendor-neutral way rows enter the lake: every source format hands each decoded
//! record over as a [`CanonicalRow`] of borrowed text, and [`RowsBuilder`] appends it to
//! the Arrow batch of its partition (tenant, UTC day) in the file schema.
//!
//! A source decides what goes in each column (its own mapping, its own rule for
//! `outcome`); this module owns the columns, their order and their types, so adding a
//! vendor never touches the schema side.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder, TimestampMicrosecondBuilder};
use arrow::record_batch::RecordBatch;

use super::{file_schema, PartKey};
use crate::time::day_of;

/// One record as canonical columns, borrowing from the decoder's buffers. Built per record
/// on the stack: handing it over allocates nothing.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CanonicalRow<'a> {
    /// The record's position in its chunk, reported back with its fate.
    pub pos: u32,
    /// UTC microseconds since the epoch.
    pub time: i64,
    pub tenant: &'a str,
    pub vendor: &'a str,
    pub source: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub action: Option<&'a str>,
    pub status: Option<&'a str>,
    /// How the source judges the record's status.
    pub outcome: Outcome,
    /// Never empty: a source without an id of its own derives a stable one.
    pub trace_id: &'a str,
    pub client_ip: Option<&'a str>,
    pub hsm_id: Option<&'a str>,
    pub part_id: Option<&'a str>,
    pub role: Option<&'a str>,
    pub ouid: Option<&'a str>,
    /// JSON text.
    pub meta: Option<&'a str>,
    /// JSON text of the record's unknown top-level fields.
    pub extra: Option<&'a str>,
}

/// The `outcome` column: what the source says of the record's result.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    #[default]
    Failure,
    /// The source logged the request but not its result (a HashiCorp Vault request whose
    /// response is not in the log).
    Unknown,
}

impl Outcome {
    pub fn of(success: bool) -> Outcome {
        if success {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The rows of one partition decoded from a chunk, in record order.
pub struct PartSlice {
    pub key: PartKey,
    pub batch: RecordBatch,
    /// Hash of each row's trace_id (see [`trace_hash`]).
    pub hashes: Vec<u64>,
    /// Each row's record position in the chunk.
    pub rows: Vec<u32>,
}

/// The hash the dedupe and the trace index use for a trace_id: xxHash64 with seed 0,
/// the same in every run and release (the index keeps it on disk).
pub fn trace_hash(trace_id: &str) -> u64 {
    twox_hash::XxHash64::oneshot(0, trace_id.as_bytes())
}

/// String columns of the file schema after `time`, in order.
const TEXT_COLS: usize = 15;

thread_local! {
    // Bytes per row each text column took in the last chunk this thread decoded: a close
    // guess for sizing the next chunk's builders, so they are not grown by copying.
    static BYTES_PER_ROW: std::cell::Cell<[u32; TEXT_COLS]> =
        const { std::cell::Cell::new([16; TEXT_COLS]) };
}

/// The rows of one partition, appended as they are decoded (record order).
struct SliceBuilder {
    tenant_idx: u32,
    day: i32,
    time: TimestampMicrosecondBuilder,
    text: Vec<StringBuilder>,
    hashes: Vec<u64>,
    rows: Vec<u32>,
}

impl SliceBuilder {
    /// `max_bytes` caps each column's reservation: the guess per row comes from another
    /// chunk, and one large record there must not make every row here reserve its size.
    fn new(tenant_idx: u32, day: i32, rows: usize, max_bytes: usize) -> Self {
        let per_row = BYTES_PER_ROW.with(|c| c.get());
        SliceBuilder {
            tenant_idx,
            day,
            time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            text: per_row
                .iter()
                .map(|&b| {
                    StringBuilder::with_capacity(
                        rows,
                        rows.saturating_mul(b as usize).min(max_bytes),
                    )
                })
                .collect(),
            hashes: Vec::with_capacity(rows),
            rows: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, r: &CanonicalRow) {
        self.time.append_value(r.time);
        let outcome = r.outcome.as_str();
        let values: [Option<&str>; TEXT_COLS] = [
            Some(r.vendor),
            r.source,
            r.resource_id,
            r.actor_id,
            r.action,
            r.status,
            Some(outcome),
            Some(r.trace_id),
            r.client_ip,
            r.hsm_id,
            r.part_id,
            r.role,
            r.ouid,
            r.meta,
            r.extra,
        ];
        for (b, v) in self.text.iter_mut().zip(values) {
            b.append_option(v);
        }
        self.hashes.push(trace_hash(r.trace_id));
        self.rows.push(r.pos);
    }

    fn finish(mut self, tenant: Arc<str>) -> PartSlice {
        let n = self.rows.len().max(1);
        let mut per_row = [0u32; TEXT_COLS];
        let mut cols: Vec<ArrayRef> = vec![Arc::new(self.time.finish())];
        for (i, b) in self.text.iter_mut().enumerate() {
            let a = b.finish();
            let guess = (a.value_data().len() / n + 1).saturating_mul(9) / 8 + 1;
            per_row[i] = guess.min(u32::MAX as usize) as u32;
            cols.push(Arc::new(a));
        }
        BYTES_PER_ROW.with(|c| c.set(per_row));
        PartSlice {
            key: PartKey {
                tenant,
                day: self.day,
            },
            batch: RecordBatch::try_new(file_schema(), cols)
                .expect("decoded columns match the file schema"),
            hashes: self.hashes,
            rows: self.rows,
        }
    }
}

/// A chunk's partitions (usually one or two): builders, and the tenants by first appearance.
#[derive(Default)]
pub struct RowsBuilder {
    tenants: Vec<Arc<str>>,
    parts: Vec<SliceBuilder>,
    last: usize,
    /// Bytes of the chunk: no column of it reserves more up front.
    chunk_bytes: usize,
}

impl RowsBuilder {
    /// A builder for the rows of a chunk of `chunk_bytes` bytes.
    pub fn new(chunk_bytes: usize) -> Self {
        RowsBuilder {
            chunk_bytes,
            ..Default::default()
        }
    }

    /// Appends a row to its partition's batch; `left` is how many records of the chunk are
    /// still to come (including this one), to size a new partition's builders.
    pub fn push(&mut self, row: &CanonicalRow, left: usize) {
        let day = day_of(row.time);
        self.get(row.tenant, day, left).push(row);
    }

    /// The builder of (tenant, day); a new one sized for the `left` records still to come.
    fn get(&mut self, tenant: &str, day: i32, left: usize) -> &mut SliceBuilder {
        let is = |p: &SliceBuilder, tenants: &[Arc<str>]| {
            p.day == day && tenants[p.tenant_idx as usize].as_ref() == tenant
        };
        if !self
            .parts
            .get(self.last)
            .is_some_and(|p| is(p, &self.tenants))
        {
            self.last = match self.parts.iter().position(|p| is(p, &self.tenants)) {
                Some(i) => i,
                None => {
                    let t = match self.tenants.iter().position(|t| t.as_ref() == tenant) {
                        Some(t) => t,
                        None => {
                            self.tenants.push(Arc::from(tenant));
                            self.tenants.len() - 1
                        }
                    };
                    // The first partition of a chunk usually takes all of it; later ones
                    // start small and grow. (Sizing a later day of the same tenant for the
                    // rest of the chunk, measured in session 60, saved 0.5% of the
                    // instructions of a CloudHSM delivery file and faulted 8-10% more pages:
                    // no gain in CPU time. Every later day sized so is unbounded, since
                    // the row buffer counts reserved capacity: see the test below.)
                    let rows = if self.parts.is_empty() {
                        left
                    } else {
                        left.min(256)
                    };
                    self.parts
                        .push(SliceBuilder::new(t as u32, day, rows, self.chunk_bytes));
                    self.parts.len() - 1
                }
            };
        }
        &mut self.parts[self.last]
    }

    /// The slices ordered by (tenant by first appearance, day).
    pub fn finish(self) -> Vec<PartSlice> {
        let mut parts = self.parts;
        parts.sort_by_key(|p| (p.tenant_idx, p.day));
        let tenants = self.tenants;
        parts
            .into_iter()
            .map(|p| {
                let t = tenants[p.tenant_idx as usize].clone();
                p.finish(t)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MICROS_PER_DAY as DAY;
    use arrow::array::Array;

    /// Rows the slices of one chunk reserved, as the row buffer counts them (capacity, not
    /// length): the time column's bytes over 8.
    fn reserved_rows(times: &[i64]) -> usize {
        let mut rows = RowsBuilder::new(times.len() * 200);
        let traces: Vec<String> = (0..times.len()).map(|i| format!("t{i}")).collect();
        for (i, &time) in times.iter().enumerate() {
            let row = CanonicalRow {
                pos: i as u32,
                time,
                tenant: "tenant",
                vendor: "dpod",
                source: None,
                resource_id: None,
                actor_id: None,
                action: Some("LUNA_SIGN"),
                status: None,
                outcome: Outcome::of(true),
                trace_id: &traces[i],
                client_ip: None,
                hsm_id: None,
                part_id: None,
                role: None,
                ouid: None,
                meta: None,
                extra: None,
            };
            rows.push(&row, times.len() - i);
        }
        let slices = rows.finish();
        assert_eq!(
            slices.iter().map(|s| s.batch.num_rows()).sum::<usize>(),
            times.len()
        );
        slices
            .iter()
            .map(|s| s.batch.column(0).get_buffer_memory_size() / 8)
            .sum()
    }

    #[test]
    fn a_chunk_over_many_days_reserves_a_bounded_multiple_of_its_rows() {
        let day0 = 20_000 * DAY;
        // Crossing midnight once.
        let two_days: Vec<i64> = (0..2_000).map(|i| day0 + i * (DAY / 1_000)).collect();
        let r = reserved_rows(&two_days);
        assert!(
            (2_000..=3_100).contains(&r),
            "{r} rows reserved for 2,000 over two days"
        );
        // A sparse chunk: 20 records a day over 100 days. Were every later day sized for
        // the rest of the chunk, it would reserve about 100,000 rows (the row buffer
        // counts them against its budget).
        let sparse: Vec<i64> = (0..2_000).map(|i| day0 + (i / 20) * DAY).collect();
        let r = reserved_rows(&sparse);
        assert!(
            r <= 2 * 2_000 + 300 * 100,
            "{r} rows reserved for 2,000 over 100 days"
        );
    }
}
