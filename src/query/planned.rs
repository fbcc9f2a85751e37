//! `events` planned from the lake's manifest ([`crate::lake::manifest`]): the files a
//! query can need are chosen by partition values, time range and per-file bloom filters
//! before any directory is listed or footer read, and handed to DataFusion's own Parquet
//! scan with their row counts and time ranges as statistics.
//!
//! The manifest is read afresh for each scan (a few requests), so new conversions and a
//! compaction's switch show as they happen, as they do with listings.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::hash_utils::create_hashes;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ColumnStatistics, DFSchema, ScalarValue, Statistics};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl, PartitionedFile,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::{conjunction, disjunction};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::{
    PruningPredicate, PruningPredicateBuilder, PruningStatistics,
};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::repartition::REPARTITION_RANDOM_STATE;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};
use datafusion::prelude::{col, lit};

use crate::lake::index;
use crate::lake::manifest::{self, ColumnStats, FileEntry, Section};
use crate::lake::rows::trace_hash;
use crate::lake::store::LakeStore;
use crate::lake::{encode_part_value, Col, PartKey, COLUMN_NAMES, EVENTS_DIR};

/// The `events` files of a lake (or of one tenant of it), as its manifest lists them.
pub struct ManifestTable {
    store: LakeStore,
    /// Scoped to one tenant: only its files, and `day` the one partition column.
    tenant: Option<String>,
    /// Scoped to several tenants: only their files (`tenant_id` stays a column).
    only: Option<BTreeSet<String>>,
    file_schema: SchemaRef,
    schema: SchemaRef,
}

impl std::fmt::Debug for ManifestTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManifestTable({})", self.store.display)
    }
}

impl ManifestTable {
    /// The live files the filters can match: by partition values and time range, and by
    /// bloom filter where they look a value up.
    async fn select(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> datafusion::common::Result<Selection> {
        let to_df = |e: crate::Error| datafusion::error::DataFusionError::External(Box::new(e));
        let started = std::time::Instant::now();
        let mut manifest_state = manifest::load(&self.store)
            .await
            .map_err(to_df)?
            .unwrap_or_default();
        let loaded = started.elapsed();
        // Bloom filters are read only for the columns the filters look values up in.
        let mut blooms = BTreeMap::new();
        for c in manifest::MEMBER_COLS {
            let name = COLUMN_NAMES[c as usize];
            if filters
                .iter()
                .any(|f| f.column_refs().iter().any(|r| r.name() == name))
            {
                let b = manifest::load_filters(&self.store, &manifest_state, name)
                    .await
                    .map_err(to_df)?;
                blooms.insert(name.to_string(), b);
            }
        }
        // Column statistics too, only for filters they can answer.
        let column_stats = if wants_column_stats(filters) {
            Some(
                manifest::load_column_stats(&self.store, &manifest_state)
                    .await
                    .map_err(to_df)?,
            )
        } else {
            None
        };
        let mut files: Vec<Candidate> = std::mem::take(&mut manifest_state.files)
            .into_values()
            .filter_map(candidate)
            .filter(|c| self.tenant.as_deref().is_none_or(|t| c.tenant == t))
            .filter(|c| self.only.as_ref().is_none_or(|s| s.contains(&c.tenant)))
            .collect();
        if let Some(mut stats) = column_stats {
            for f in &mut files {
                f.columns = stats.remove(&f.entry.path);
            }
        }
        let of = files.len();
        let listed = started.elapsed();
        // Filters on the partition columns alone are exact: their files, and no others.
        let parts: Vec<(&str, i32)> = files.iter().map(|f| (f.tenant.as_str(), f.day)).collect();
        if let Some(keep) = exact_partitions(state, &parts, filters, self.tenant.is_some())? {
            let mut k = keep.into_iter();
            files.retain(|_| k.next().unwrap_or(false));
        }
        if let Some(p) = pruning_predicate(state, &self.schema, filters) {
            let stats = Stats {
                files: &files,
                blooms,
            };
            if let Ok(keep) = p.prune(&stats) {
                let mut k = keep.into_iter();
                files.retain(|_| k.next().unwrap_or(true));
            }
        }
        // A lookup of trace ids: the lake's trace index names the days that can hold them.
        if let Some(traces) = pinned_traces(filters) {
            if let Some(days) = self.trace_days(&files, &traces).await {
                files.retain(|f| days.contains(&(f.tenant.clone(), f.day)));
            }
        }
        tracing::debug!(
            files = of,
            kept = files.len(),
            manifest_ms = loaded.as_secs_f64() * 1e3,
            candidates_ms = listed.as_secs_f64() * 1e3,
            selected_ms = started.elapsed().as_secs_f64() * 1e3,
            "files selected from the manifest"
        );
        Ok(Selection { files, of })
    }

    /// The (tenant, day) partitions the trace index gives for `traces`, over the tenants
    /// of `files`; `None` where it cannot answer (a lake from before the index, or one
    /// it cannot read: then no file is ruled out). A tenant without runs keeps its days.
    async fn trace_days(
        &self,
        files: &[Candidate],
        traces: &[String],
    ) -> Option<HashSet<(String, i32)>> {
        if !matches!(self.store.size(index::FORMAT_REL).await, Ok(Some(_))) {
            return None;
        }
        let mut hashes: Vec<u64> = traces.iter().map(|t| trace_hash(t)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let tenants: BTreeSet<&str> = files.iter().map(|f| f.tenant.as_str()).collect();
        let mut days = HashSet::new();
        for tenant in tenants {
            let found = async {
                let idx = index::TenantIndex::open(&self.store, tenant).await?;
                if idx.is_empty() {
                    return Ok(None);
                }
                idx.probe(&self.store, &hashes).await.map(Some)
            };
            match found.await {
                Ok(Some(hits)) => {
                    days.extend(hits.into_iter().map(|(_, d)| (tenant.to_string(), d)))
                }
                Ok(None) => days.extend(
                    files
                        .iter()
                        .filter(|f| f.tenant == tenant)
                        .map(|f| (f.tenant.clone(), f.day)),
                ),
                Err(e) => {
                    tracing::warn!(tenant, error = %e, "trace index unreadable: lookup not pruned by it");
                    return None;
                }
            }
        }
        Some(days)
    }

    /// What a Ballista cluster is handed in this table's place, whose scheduler and
    /// executors know only stock tables: the lake's listing ([`events_listing`]) and a
    /// filter on its partition columns that keeps the partitions of the files the
    /// manifest selects (no filter when it selects every file; `None` when it selects
    /// none). The scheduler lists the lake but reads the footers of those partitions
    /// only; their files are all read, where a local session reads only the selected.
    pub async fn for_cluster(
        &self,
        state: &dyn Session,
        filters: &[Expr],
    ) -> datafusion::common::Result<Option<(Arc<dyn TableProvider>, Option<Expr>)>> {
        let selection = self.select(state, filters).await?;
        if selection.files.is_empty() {
            return Ok(None);
        }
        let listing = events_listing(
            &self.store,
            self.tenant.as_deref(),
            self.file_schema.clone(),
            state.default_table_options().parquet,
        )
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let keep = (selection.files.len() < selection.of || self.only.is_some())
            .then(|| partition_filter(&selection.files, self.tenant.is_some()));
        Ok(Some((Arc::new(listing), keep.flatten())))
    }

    /// Scoped to these tenants (none: no such scope).
    pub fn only(mut self, tenants: &[String]) -> ManifestTable {
        if !tenants.is_empty() {
            self.only = Some(tenants.iter().cloned().collect());
        }
        self
    }

    pub fn new(store: LakeStore, tenant: Option<String>, file_schema: SchemaRef) -> ManifestTable {
        let mut fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        fields.extend(partition_fields(tenant.is_some()));
        ManifestTable {
            store,
            tenant,
            only: None,
            file_schema,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

/// Whether column `name` is one of `cols`.
fn one_of(name: &str, cols: &[Col]) -> bool {
    cols.iter().any(|c| COLUMN_NAMES[*c as usize] == name)
}

/// Whether a filter is on a column with bounds in the manifest, or asks whether a
/// column with null counts is null.
fn wants_column_stats(filters: &[Expr]) -> bool {
    let named = |e: &Expr, cols: &[Col]| matches!(e, Expr::Column(c) if one_of(c.name(), cols));
    let mut wants = false;
    for f in filters {
        let _ = f.apply(|e| {
            wants |= named(e, &manifest::RANGE_COLS)
                || matches!(e, Expr::IsNull(inner) | Expr::IsNotNull(inner) if named(inner, &manifest::NULL_COLS));
            Ok(if wants {
                TreeNodeRecursion::Stop
            } else {
                TreeNodeRecursion::Continue
            })
        });
    }
    wants
}

/// The trace ids a scan's filters pin: `trace_id = 'x'`, `trace_id IN ('x', ...)` or
/// such terms joined by OR, as one of the conjuncts (`None` when none does).
fn pinned_traces(filters: &[Expr]) -> Option<Vec<String>> {
    filters.iter().find_map(traces_of)
}

fn traces_of(e: &Expr) -> Option<Vec<String>> {
    let is_trace = |e: &Expr| matches!(e, Expr::Column(c) if c.name == "trace_id");
    let text = |e: &Expr| match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(b) if b.op == Operator::Or => {
            let mut out = traces_of(&b.left)?;
            out.extend(traces_of(&b.right)?);
            Some(out)
        }
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            if is_trace(&b.left) {
                text(&b.right).map(|s| vec![s])
            } else if is_trace(&b.right) {
                text(&b.left).map(|s| vec![s])
            } else {
                None
            }
        }
        Expr::InList(l) if !l.negated && is_trace(&l.expr) => {
            l.list.iter().map(text).collect::<Option<Vec<_>>>()
        }
        _ => None,
    }
}

/// The files a scan's filters select, of how many the manifest lists.
struct Selection {
    files: Vec<Candidate>,
    of: usize,
}

/// `events` as a stock listing of the lake's directories (or of one tenant's): for
/// lakes from before the manifest, and for clusters ([`ManifestTable::for_cluster`]),
/// read with the session's Parquet options.
pub fn events_listing(
    store: &LakeStore,
    tenant: Option<&str>,
    file_schema: SchemaRef,
    parquet: TableParquetOptions,
) -> crate::Result<ListingTable> {
    let rel = match tenant {
        Some(t) => format!("{EVENTS_DIR}/tenant_id={}", encode_part_value(t)),
        None => EVENTS_DIR.to_string(),
    };
    let partition_cols = partition_fields(tenant.is_some())
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let url = ListingTableUrl::parse(store.dir_url(&rel))?;
    let listing = ListingOptions::new(Arc::new(ParquetFormat::default().with_options(parquet)))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols)
        .with_file_sort_order(vec![vec![col("time").sort(true, false)]]);
    Ok(ListingTable::try_new(
        ListingTableConfig::new(url)
            .with_listing_options(listing)
            .with_schema(file_schema),
    )?)
}

/// Footer bytes a scan of a local lake reads at once. A lake file's footer is about
/// 4 KB (a larger one takes a second read); DataFusion's default of 512 KiB read most
/// of each file only to find its footer. A fresh `auditlake query` over a 10M-event
/// year (1,095 files), medians of 7 interleaved: failed_logins 0.41 s against 0.50,
/// key_first_use 1.53 against 1.64, `max(time)` 0.17 against 0.21. An object store
/// keeps the large read (one request where a small one may need a second).
const LOCAL_METADATA_HINT: usize = 8 << 10;

/// The session's Parquet read options, fitted to a scan of lake files.
fn scan_options(mut parquet: TableParquetOptions, local: bool) -> TableParquetOptions {
    let default = datafusion::config::ParquetOptions::default().metadata_size_hint;
    if local && parquet.global.metadata_size_hint == default {
        parquet.global.metadata_size_hint = Some(LOCAL_METADATA_HINT);
    }
    parquet
}

/// `(tenant_id = t AND (day BETWEEN a AND b OR ...)) OR ...`: the partitions of `files`,
/// days in runs of consecutive days (`None` for no files).
fn partition_filter(files: &[Candidate], scoped: bool) -> Option<Expr> {
    let mut days: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for f in files {
        days.entry(f.tenant.as_str()).or_default().push(f.day);
    }
    let date = |d: i32| lit(ScalarValue::Date32(Some(d)));
    let per_tenant = days.into_iter().filter_map(|(tenant, mut days)| {
        days.sort_unstable();
        days.dedup();
        let mut runs: Vec<(i32, i32)> = Vec::new();
        for d in days {
            match runs.last_mut() {
                Some((_, b)) if *b + 1 == d => *b = d,
                _ => runs.push((d, d)),
            }
        }
        let day = disjunction(runs.into_iter().map(|(a, b)| {
            if a == b {
                col("day").eq(date(a))
            } else {
                col("day").between(date(a), date(b))
            }
        }))?;
        Some(match scoped {
            true => day,
            false => col("tenant_id").eq(lit(tenant)).and(day),
        })
    });
    disjunction(per_tenant)
}

/// Which of the partitions (tenant, day) the filters on partition columns alone hold for
/// (a null is not a match), as [`TableProviderFilterPushDown::Exact`] promises; `None`
/// when no filter is of that kind. The filters are planned once and evaluated on one row
/// per partition. Such a filter was asked of every row until session 57: in the key views
/// run per tenant, `tenant_id = '...'` wrote the tenant out for each of 10M rows only to
/// compare it.
fn exact_partitions(
    state: &dyn Session,
    parts: &[(&str, i32)],
    filters: &[Expr],
    scoped: bool,
) -> datafusion::common::Result<Option<Vec<bool>>> {
    let exact = filters
        .iter()
        .filter(|f| on_partitions_alone(f, scoped))
        .cloned();
    let Some(exact) = conjunction(exact) else {
        return Ok(None);
    };
    // In the order of `partition_fields`.
    let mut columns: Vec<ArrayRef> = Vec::new();
    if !scoped {
        columns.push(Arc::new(StringArray::from_iter_values(
            parts.iter().map(|p| p.0),
        )));
    }
    columns.push(Arc::new(Date32Array::from_iter_values(
        parts.iter().map(|p| p.1),
    )));
    let schema = Arc::new(Schema::new(partition_fields(scoped)));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
    let holds = state
        .create_physical_expr(unqualified(exact), &df_schema)?
        .evaluate(&batch)?
        .into_array(parts.len())?;
    let holds = holds.as_boolean();
    Ok(Some(
        (0..parts.len())
            .map(|i| holds.is_valid(i) && holds.value(i))
            .collect(),
    ))
}

/// `e` with its columns' table qualifiers dropped.
fn unqualified(e: Expr) -> Expr {
    e.transform_up(|e| {
        Ok(match e {
            Expr::Column(c) if c.relation.is_some() => {
                Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))
            }
            e => Transformed::no(e),
        })
    })
    .map(|t| t.data)
    .expect("dropping qualifiers cannot fail")
}

/// Whether `filter` reads the partition columns and nothing else (nor anything volatile).
fn on_partitions_alone(filter: &Expr, scoped: bool) -> bool {
    let fields = partition_fields(scoped);
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    expr_applicable_for_cols(&names, filter)
}

fn partition_fields(scoped: bool) -> Vec<FieldRef> {
    let mut out = Vec::new();
    if !scoped {
        out.push(Arc::new(Field::new("tenant_id", DataType::Utf8, false)));
    }
    out.push(Arc::new(Field::new("day", DataType::Date32, false)));
    out
}

/// How many days `files` cover (one tenant's files, in day order).
fn distinct_days(files: &[Candidate]) -> usize {
    files.windows(2).filter(|w| w[0].day != w[1].day).count() + usize::from(!files.is_empty())
}

/// For each day, the one of `n` partitions DataFusion's hash repartitioning on `day` sends
/// its rows to (the day hashed as `RepartitionExec` hashes it): files grouped so may be
/// truthfully declared hash-partitioned on `day`.
fn day_partitions(days: &[i32], n: usize) -> datafusion::common::Result<Vec<usize>> {
    let days: ArrayRef = Arc::new(Date32Array::from_iter_values(days.iter().copied()));
    let mut hashes = vec![0u64; days.len()];
    create_hashes(
        &[days],
        REPARTITION_RANDOM_STATE.random_state(),
        &mut hashes,
    )?;
    Ok(hashes
        .into_iter()
        .map(|h| (h % n as u64) as usize)
        .collect())
}

/// A live file with its partition values parsed from its path.
struct Candidate {
    entry: FileEntry,
    tenant: String,
    day: i32,
    /// Its column statistics, read when a filter is on one of those columns.
    columns: Option<BTreeMap<String, ColumnStats>>,
}

fn candidate(entry: FileEntry) -> Option<Candidate> {
    let key = PartKey::of_dir(entry.path.rsplit_once('/')?.0)?;
    Some(Candidate {
        entry,
        tenant: key.tenant.to_string(),
        day: key.day,
        columns: None,
    })
}

/// The manifest's files as pruning containers, one per file.
struct Stats<'a> {
    files: &'a [Candidate],
    /// The bloom filters of the columns the query looks values up in, by file path.
    blooms: BTreeMap<String, Section>,
}

impl Stats<'_> {
    fn bounds(&self, column: &Column, max: bool) -> Option<ArrayRef> {
        Some(match column.name() {
            "tenant_id" => Arc::new(StringArray::from_iter_values(
                self.files.iter().map(|f| f.tenant.as_str()),
            )),
            "day" => Arc::new(Date32Array::from_iter_values(
                self.files.iter().map(|f| f.day),
            )),
            "time" => Arc::new(
                TimestampMicrosecondArray::from_iter_values(self.files.iter().map(|f| {
                    if max {
                        f.entry.time_max
                    } else {
                        f.entry.time_min
                    }
                }))
                .with_timezone("UTC"),
            ),
            "vendor" => Arc::new(StringArray::from_iter(self.files.iter().map(|f| {
                let v = f.entry.vendors.as_ref()?;
                if max {
                    v.last()
                } else {
                    v.first()
                }
            }))),
            name if one_of(name, &manifest::RANGE_COLS) => {
                Arc::new(StringArray::from_iter(self.files.iter().map(|f| {
                    let c = f.columns.as_ref()?.get(name)?;
                    if max {
                        c.max.as_deref()
                    } else {
                        c.min.as_deref()
                    }
                })))
            }
            _ => return None,
        })
    }
}

impl PruningStatistics for Stats<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, false)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, true)
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        match column.name() {
            "tenant_id" | "day" | "time" => Some(Arc::new(UInt64Array::from_iter_values(
                self.files.iter().map(|_| 0),
            ))),
            name if one_of(name, &manifest::NULL_COLS) => Some(Arc::new(UInt64Array::from_iter(
                self.files
                    .iter()
                    .map(|f| Some(f.columns.as_ref()?.get(name)?.nulls)),
            ))),
            _ => None,
        }
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.files.iter().map(|f| f.entry.rows),
        )))
    }

    fn contained(&self, column: &Column, values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        let name = column.name();
        if !one_of(name, &manifest::MEMBER_COLS) {
            return None;
        }
        let mut wanted = Vec::with_capacity(values.len());
        for v in values {
            match v {
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)) => wanted.push(s.as_str()),
                _ => return None,
            }
        }
        let blooms = self.blooms.get(name)?;
        Some(
            self.files
                .iter()
                .map(|f| {
                    let mut may = wanted
                        .iter()
                        .map(|v| blooms.may_contain(&f.entry.path, v.as_bytes()));
                    // No filter (None) keeps the file, as does any value it may hold.
                    (!may.any(|m| m != Some(false))).then_some(false)
                })
                .collect(),
        )
    }
}

/// The filters as one predicate over the table's columns, unqualified; `None` when
/// there are none or DataFusion cannot plan them (then every file is kept).
fn pruning_predicate(
    state: &dyn Session,
    schema: &SchemaRef,
    filters: &[Expr],
) -> Option<Arc<PruningPredicate>> {
    let expr = unqualified(conjunction(filters.iter().cloned())?);
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).ok()?;
    let physical = state.create_physical_expr(expr, &df_schema).ok()?;
    PruningPredicateBuilder::new()
        .with_file_schema(schema.clone())
        .build(physical)
}

#[async_trait]
impl TableProvider for ManifestTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// A filter on the partition columns alone is exact: the scan keeps only the files
    /// whose partition values it holds for (see [`exact_partitions`]), so no row is
    /// compared again. Every other filter only rules files out.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        let scoped = self.tenant.is_some();
        Ok(filters
            .iter()
            .map(|f| match on_partitions_alone(f, scoped) {
                true => TableProviderFilterPushDown::Exact,
                false => TableProviderFilterPushDown::Inexact,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let files = self.select(state, filters).await?.files;
        tracing::debug!(files = files.len(), "manifest scan");
        if files.is_empty() {
            let projected = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(projected)));
        }

        let time_at = Col::Time as usize;
        let scoped = self.tenant.is_some();
        let total_rows: u64 = files.iter().map(|f| f.entry.rows).sum();
        let partitioned: Vec<PartitionedFile> = files
            .iter()
            .map(|f| {
                let mut columns =
                    vec![ColumnStatistics::new_unknown(); self.file_schema.fields().len()];
                let ts = |v| ScalarValue::TimestampMicrosecond(Some(v), Some("UTC".into()));
                columns[time_at].min_value = Precision::Inexact(ts(f.entry.time_min));
                columns[time_at].max_value = Precision::Inexact(ts(f.entry.time_max));
                for (name, c) in f.columns.iter().flatten() {
                    let Some(at) = COLUMN_NAMES.iter().position(|n| n == name) else {
                        continue;
                    };
                    columns[at].null_count = Precision::Exact(c.nulls as usize);
                    let text = |v: &Option<String>| match v {
                        Some(v) => Precision::Inexact(ScalarValue::Utf8(Some(v.clone()))),
                        None => Precision::Absent,
                    };
                    columns[at].min_value = text(&c.min);
                    columns[at].max_value = text(&c.max);
                }
                let stats = Statistics {
                    num_rows: Precision::Exact(f.entry.rows as usize),
                    total_byte_size: Precision::Inexact(f.entry.bytes as usize),
                    column_statistics: columns,
                };
                let mut values = Vec::new();
                if !scoped {
                    values.push(ScalarValue::Utf8(Some(f.tenant.clone())));
                }
                values.push(ScalarValue::Date32(Some(f.day)));
                // The store's own path (already escaped: a string would be escaped again).
                PartitionedFile::new_from_meta(object_store::ObjectMeta {
                    location: self.store.path(&f.entry.path),
                    last_modified: chrono::DateTime::UNIX_EPOCH,
                    size: f.entry.bytes,
                    e_tag: None,
                    version: None,
                })
                .with_partition_values(values)
                .with_statistics(Arc::new(stats))
            })
            .collect();
        let n = state.config().target_partitions().max(1);
        // One tenant's files (a tenant's branch of a per-tenant view, or a tenant scope) are
        // grouped by the hash of their day, so the scan is declared hash-partitioned on
        // `day`: an aggregation grouped by day (daily_activity) then runs in one stage, with
        // no repartition and no merge. Only where the query reads `day` (the declaration is
        // lost otherwise) and the files cover at least as many days as the session's
        // `datafusion.optimizer.preserve_file_partitions` (DataFusion's setting for the same
        // on a listing; 0 turns it off): the hash makes groups less even than runs of days,
        // and no file is split between partitions.
        let day_at = self.schema.index_of("day")?;
        let threshold = state.config_options().optimizer.preserve_file_partitions;
        let (groups, partitioning) = if threshold > 0
            && n > 1
            && files.iter().all(|f| f.tenant == files[0].tenant)
            && distinct_days(&files) >= threshold
            && projection.is_none_or(|p| p.contains(&day_at))
        {
            let day = Arc::new(PhysicalColumn::new("day", day_at)) as Arc<dyn PhysicalExpr>;
            let days: Vec<i32> = files.iter().map(|f| f.day).collect();
            let mut groups = vec![Vec::new(); n];
            for (file, at) in partitioned.into_iter().zip(day_partitions(&days, n)?) {
                groups[at].push(file);
            }
            let groups = groups.into_iter().map(FileGroup::new).collect();
            (groups, Some(Partitioning::Hash(vec![day], n)))
        } else {
            // Contiguous runs of files (tenant, then day order) per scan partition.
            let per = partitioned.len().div_ceil(n);
            let groups = partitioned
                .chunks(per)
                .map(|c| FileGroup::new(c.to_vec()))
                .collect();
            (groups, None)
        };
        let mut table_stats = Statistics::new_unknown(&self.schema);
        table_stats.num_rows = Precision::Exact(total_rows as usize);

        // The session's Parquet options (what `SET datafusion.execution.parquet.*` says),
        // fitted to this scan: see `scan_options`.
        let parquet = scan_options(
            state.default_table_options().parquet,
            self.store.local_dir().is_some(),
        );
        let format = ParquetFormat::default().with_options(parquet);
        let source = format.file_source(
            TableSchema::builder(self.file_schema.clone())
                .with_table_partition_cols(partition_fields(scoped))
                .build(),
        );
        let url = ObjectStoreUrl::parse(self.store.base_url.as_str())?;
        let config = FileScanConfigBuilder::new(url, source)
            .with_file_groups(groups)
            .with_statistics(table_stats)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .with_output_partitioning(partitioning)
            .build();
        format.create_physical_plan(state, config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(filters: &[Expr]) -> Vec<String> {
        let parts = [("a", 1), ("a", 2), ("b", 1), ("b", 3)];
        let state = datafusion::execution::context::SessionContext::new().state();
        let keep = exact_partitions(&state, &parts, filters, false)
            .expect("partition filters evaluate")
            .unwrap_or_else(|| vec![true; parts.len()]);
        parts
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|((t, d), _)| format!("{t}/{d}.parquet"))
            .collect()
    }

    #[test]
    fn filters_on_partition_columns_alone_keep_exactly_their_files() {
        let day = |d| lit(ScalarValue::Date32(Some(d)));
        assert_eq!(
            kept(&[col("tenant_id").eq(lit("a"))]),
            ["a/1.parquet", "a/2.parquet"]
        );
        // Qualified columns, as a view's scan hands them over.
        let qualified = Expr::Column(Column::new(Some("events"), "tenant_id"));
        assert_eq!(
            kept(&[qualified.not_eq(lit("a")), col("day").gt(day(1))]),
            ["b/3.parquet"]
        );
        assert_eq!(
            kept(&[col("tenant_id").in_list(vec![lit("a"), lit("c")], true)]),
            ["b/1.parquet", "b/3.parquet"]
        );
        // A null is not a match.
        assert!(kept(&[col("tenant_id").eq(lit(ScalarValue::Utf8(None)))]).is_empty());
        // Filters on other columns are left to the rows.
        assert_eq!(kept(&[col("ouid").is_not_null()]).len(), 4);
        assert!(on_partitions_alone(&col("day").eq(day(1)), false));
        assert!(!on_partitions_alone(&col("tenant_id").eq(lit("a")), true));
        assert!(!on_partitions_alone(
            &col("tenant_id").eq(col("ouid")),
            false
        ));
    }

    #[tokio::test]
    async fn files_grouped_by_day_sit_where_datafusion_repartitions_their_rows() {
        use datafusion::datasource::memory::MemorySourceConfig;
        use datafusion::physical_plan::repartition::RepartitionExec;

        let days: Vec<i32> = (19_000..19_400).collect();
        let n = 4;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "day",
            DataType::Date32,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Date32Array::from(days.clone()))],
        )
        .unwrap();
        let input = MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None).unwrap();
        let day = Arc::new(PhysicalColumn::new("day", 0)) as Arc<dyn PhysicalExpr>;
        let repartition =
            RepartitionExec::try_new(input, Partitioning::Hash(vec![day], n)).unwrap();
        let task = datafusion::execution::context::SessionContext::new().task_ctx();
        let out = datafusion::physical_plan::collect_partitioned(Arc::new(repartition), task)
            .await
            .unwrap();
        let mut theirs = BTreeMap::new();
        for (at, batches) in out.iter().enumerate() {
            for b in batches {
                for d in b
                    .column(0)
                    .as_primitive::<arrow::datatypes::Date32Type>()
                    .values()
                {
                    theirs.insert(*d, at);
                }
            }
        }
        let ours = day_partitions(&days, n).unwrap();
        assert_eq!(theirs.len(), days.len());
        for (d, at) in days.iter().zip(&ours) {
            assert_eq!(theirs[d], *at, "day {d}");
        }
        // Every partition gets some of a year's days.
        assert!((0..n).all(|p| ours.contains(&p)));
    }

    #[test]
    fn a_local_scan_reads_a_small_footer_unless_the_session_chose_one() {
        let default = TableParquetOptions::default();
        let local = scan_options(default.clone(), true);
        assert_eq!(local.global.metadata_size_hint, Some(LOCAL_METADATA_HINT));
        let remote = scan_options(default.clone(), false);
        assert_eq!(
            remote.global.metadata_size_hint,
            default.global.metadata_size_hint
        );
        let mut chosen = default;
        chosen.global.metadata_size_hint = Some(100_000);
        assert_eq!(
            scan_options(chosen, true).global.metadata_size_hint,
            Some(100_000)
        );
    }
}
