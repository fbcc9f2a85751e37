//! Where rows leave: one DataFusion session over the lake, shared by every command.
//!
//! The session has `events` (the lake's Hive-partitioned Parquet files, with
//! `tenant_id` and `day` as typed partition columns that filters prune),
//! `action_catalog`, and the views under `sql/views/`, embedded in the binary.
//! Scoped to a tenant, only that tenant's directory is registered and the
//! session refuses DDL, DML and COPY; scoped to a period, `events` itself is
//! filtered, so every view over it reads only that period's partitions, and
//! `events_before_period` / `events_baseline` hold what came before it (all of it, and
//! the look-back window of findings).

pub mod cache;
pub mod categories;
pub mod cluster;
pub mod live;
pub mod per_tenant;
pub mod planned;
pub mod print;
pub mod repl;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::DataFrame;
use datafusion::sql::parser::DFParser;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::lake::store::LakeStore;
use crate::lake::{encode_part_value, file_schema, EVENTS_DIR};
use crate::time::format_day;
use crate::{Error, Result};

/// The action catalog and the standard views, in dependency order.
pub const BUILTIN_SQL: &[(&str, &str)] = &[
    (
        "action_catalog",
        include_str!("../../sql/action_catalog.sql"),
    ),
    (
        "events_categorized",
        include_str!("../../sql/views/events_categorized.sql"),
    ),
    (
        "failed_logins",
        include_str!("../../sql/views/failed_logins.sql"),
    ),
    (
        "login_bursts",
        include_str!("../../sql/views/login_bursts.sql"),
    ),
    (
        "key_first_use",
        include_str!("../../sql/views/key_first_use.sql"),
    ),
    (
        "key_lifecycle",
        include_str!("../../sql/views/key_lifecycle.sql"),
    ),
    (
        "actions_by_role",
        include_str!("../../sql/views/actions_by_role.sql"),
    ),
    (
        "new_client_ips",
        include_str!("../../sql/views/new_client_ips.sql"),
    ),
    (
        "off_hours_activity",
        include_str!("../../sql/views/off_hours_activity.sql"),
    ),
    (
        "privileged_actions",
        include_str!("../../sql/views/privileged_actions.sql"),
    ),
    (
        "daily_activity",
        include_str!("../../sql/views/daily_activity.sql"),
    ),
    (
        "key_inventory",
        include_str!("../../sql/views/key_inventory.sql"),
    ),
    (
        "ocsf_authentication",
        include_str!("../../sql/views/ocsf_authentication.sql"),
    ),
    (
        "ocsf_api_activity",
        include_str!("../../sql/views/ocsf_api_activity.sql"),
    ),
    (
        "ocsf_entity_management",
        include_str!("../../sql/views/ocsf_entity_management.sql"),
    ),
];

/// Memory a session may spend on small byte ranges of lake files (bloom filters of
/// ~1,100 files, about 25 MB for a year of three tenants, fit).
const RANGE_CACHE_BYTES: usize = 64 << 20;

/// Name of the listing table behind the `events` view.
const LAKE_TABLE: &str = "lake_events";

/// What a session sees.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub store: LakeStore,
    /// Only this tenant's partitions are registered.
    pub tenant: Option<String>,
    /// Only these tenants' files are read (`serve`'s users of several tenants; lakes
    /// with a manifest only); empty: no such scope.
    pub tenants: Vec<String>,
    /// Only days in this inclusive range (Date32) are visible.
    pub period: Option<(i32, i32)>,
    /// A directory of the user's own `.sql` view files, run after the built-in ones.
    pub sql_dir: Option<PathBuf>,
    /// Bytes the query engine may hold for sorts, joins and aggregates before it
    /// spills to temporary files (None: [`default_memory_limit`]).
    pub memory_limit: Option<usize>,
    /// Days before the period that `events_baseline` holds (the look-back of findings).
    pub baseline_days: Option<u32>,
    /// A Ballista scheduler (`df://host:port`) that runs the session's queries.
    pub cluster: Option<String>,
    /// Each tenant's clock (`events_local`, `off_hours_activity`).
    pub zones: TenantZones,
}

/// Each tenant's time zone as Arrow names them (`Europe/Berlin`, `+05:30`), from the
/// rules; the others' zone (`+00:00` unless the rules say otherwise).
#[derive(Debug, Clone)]
pub struct TenantZones {
    pub tenants: Vec<(String, String)>,
    pub default: String,
}

impl Default for TenantZones {
    fn default() -> Self {
        TenantZones {
            tenants: Vec::new(),
            default: "+00:00".into(),
        }
    }
}

impl TenantZones {
    /// `events_local`: every event with `local_time`, its time on its tenant's clock
    /// (summer time followed), as a timestamp without a zone.
    fn view_sql(&self) -> String {
        let local = |tz: &str| {
            if tz == "+00:00" {
                // UTC: the same instant without its zone (a cast, not a conversion per
                // value: off_hours_activity took 617 ms over 10M events with
                // to_local_time, 532 ms on time itself).
                "arrow_cast(time, 'Timestamp(Microsecond, None)')".to_string()
            } else {
                format!(
                    "to_local_time(arrow_cast(time, 'Timestamp(Microsecond, Some(\"{}\"))'))",
                    tz.replace(['\'', '"'], "")
                )
            }
        };
        let expr = if self.tenants.is_empty() {
            local(&self.default)
        } else {
            let arms: String = self
                .tenants
                .iter()
                .map(|(t, tz)| format!(" WHEN {} THEN {}", sql_literal(t), local(tz)))
                .collect();
            format!("CASE tenant_id{arms} ELSE {} END", local(&self.default))
        };
        format!("CREATE VIEW events_local AS SELECT *, {expr} AS local_time FROM events")
    }
}

/// Half the machine's memory (from `/proc/meminfo`; 4 GiB where that is not there),
/// at least 256 MiB.
pub fn default_memory_limit() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(8 << 30, |kib| kib << 10);
    (total / 2).max(256 << 20)
}

/// Parses a size such as `512M`, `2G`, `1.5GiB` or a plain number of bytes.
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512M, 2G)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown unit (K, M, G, T)")),
    };
    let bytes = n * mult as f64;
    if !(1.0..=(usize::MAX as f64)).contains(&bytes) {
        return Err(format!("{s:?} is not a usable size"));
    }
    Ok(bytes as usize)
}

/// A view or table and the one line saying what it answers.
#[derive(Debug, Clone)]
pub struct Described {
    pub name: String,
    pub purpose: String,
}

/// A ready session.
pub struct Session {
    pub ctx: SessionContext,
    /// Tenant-scoped sessions refuse DDL, DML and COPY.
    pub restricted: bool,
    pub views: Vec<Described>,
    /// Queries run on a Ballista cluster: in-memory tables cannot be sent there.
    pub on_cluster: bool,
}

/// The `-- name: purpose` header line of a view file.
pub fn purpose_of(sql: &str) -> String {
    let first = sql
        .lines()
        .find(|l| l.trim_start().starts_with("--"))
        .unwrap_or("");
    let text = first.trim_start().trim_start_matches('-').trim();
    text.split_once(':')
        .map_or(text, |(_, p)| p.trim())
        .to_string()
}

/// The table schema of `events` files as DataFusion reads them (strings as views).
fn scan_schema() -> Arc<Schema> {
    let fields: Vec<Field> = file_schema()
        .fields()
        .iter()
        .map(|f| {
            let t = if f.data_type() == &DataType::Utf8 {
                DataType::Utf8View
            } else {
                f.data_type().clone()
            };
            Field::new(f.name(), t, f.is_nullable())
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `sql` with every mark `<open>ARG}` (`open` one of `opens`, e.g. `{category:`) replaced by
/// `with(index of open, ARG)`, in one pass: what `with` writes is not read again. An unclosed
/// mark is an error. The built-in views' marks: see `categories` and `per_tenant`.
fn replace_marks(
    sql: &str,
    opens: &[&str],
    mut with: impl FnMut(usize, &str) -> Result<String>,
) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some((at, which)) = opens
        .iter()
        .enumerate()
        .filter_map(|(i, open)| Some((rest.find(open)?, i)))
        .min()
    {
        out.push_str(&rest[..at]);
        let mark = &rest[at..];
        let after = &mark[opens[which].len()..];
        let end = after.find('}').ok_or_else(|| {
            let head = mark
                .char_indices()
                .nth(60)
                .map_or(mark, |(i, _)| &mark[..i]);
            Error::Usage(format!("unclosed {}...}} in {head:?}", opens[which]))
        })?;
        out.push_str(&with(which, &after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Builds the session over a lake (local or in an object store).
pub async fn build_session(opts: &SessionOptions) -> Result<Session> {
    if let Some(url) = &opts.cluster {
        check_cluster(url)?;
    }
    let store = &opts.store;
    if store.list_dirs("").await?.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no lake here (convert exports into it first)",
            store.display
        )));
    }
    // A lake holds one file per tenant and day (about a thousand for a year of three
    // tenants); opening them is waiting on reads as much as computing, so twice as many
    // scan partitions as cores keep the cores busy. Each partition decodes one file at a
    // time, so this is also what bounds a streamed scan's memory: on a 10M-event lake
    // `SELECT *` peaked at 265 MB with 4 partitions, 316 MB with 8, over 400 MB with 16
    // (point lookups and views within noise of each other).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // A bounded pool: a heavy sort or aggregate spills to disk instead of being killed.
    // Each sorting partition sets memory aside for merging its spills (10 MB by
    // default): under a small limit that share shrinks, so the sort still runs.
    let limit = opts.memory_limit.unwrap_or_else(default_memory_limit);
    // Under a small limit, fewer partitions: each sorting partition holds its merge
    // share and its batches, and with four sharing 6.8 MiB a sort failed now and then
    // (which partition registers first decides how the pool is split). One partition
    // per 16 MiB of the limit; the default limit (half the RAM) is far above that.
    let partitions = (cores * 2).min((limit / (16 << 20)).max(1));
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_information_schema(true)
        .with_default_catalog_and_schema("auditlake", "public")
        .with_sort_spill_reservation_bytes((limit / (4 * partitions)).min(10 << 20));
    // A join whose smaller side is up to a million rows (64 MiB) builds one table that every
    // partition probes, instead of repartitioning both sides by hash: key_first_use joins the
    // 300k keys of a 10M-event year back to every event, and moving those 10M rows between
    // partitions cost more than building the table once (3.1-3.6 s against 3.7-4.5 s).
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.hash_join_single_partition_threshold = 64 << 20;
    optimizer.hash_join_single_partition_threshold_rows = 1 << 20;
    // A scan of one tenant's files over 32 days or more is grouped by the hash of the day
    // and declared hash-partitioned on `day` (`planned`): daily_activity aggregates each
    // tenant's days in one stage, 0.80-0.84 against 0.95-1.03 s on a 10M-event year. Over
    // fewer days the hash would leave the scan's partitions uneven, and runs of days are
    // kept. The cluster reads listings, where DataFusion would group files its own way:
    // not asked for there.
    if opts.cluster.is_none() {
        optimizer.preserve_file_partitions = 32;
    }
    // Parquet filter pushdown (`datafusion.execution.parquet.pushdown_filters`) stays
    // off by default: on a 10M-event year it made every view slower (failed_logins 291
    // against 248 ms, key_first_use 1,364 against 1,155 ms). A session may `SET` it.
    // Every query lists the lake afresh (DataFusion would keep the first listing for the
    // session): new conversions show, and a compaction's switch is seen as it happens.
    let runtime = RuntimeEnvBuilder::new()
        .with_object_list_cache_limit(0)
        .with_memory_pool(Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(limit),
            std::num::NonZeroUsize::new(3).expect("non-zero"),
        )))
        .build_arc()?;
    let ctx = match &opts.cluster {
        // The executors read the lake with their own stores: see `cluster`.
        Some(url) => remote_context(url, config).await?,
        None => {
            let ctx = SessionContext::new_with_config_rt(config, runtime);
            // Small reads (bloom filters, footers) are kept for the session: see `cache`.
            let mut cached = cache::RangeCache::new(store.store.clone(), RANGE_CACHE_BYTES);
            if store.local_dir().is_some() {
                cached = cached.read_inline();
            }
            // Listings leave out what a compaction is replacing or writing: see `live`.
            let live = live::LiveListing::new(Arc::new(cached), store.clone());
            ctx.register_object_store(&store.base_url, Arc::new(live));
            ctx
        }
    };

    let rel = match &opts.tenant {
        Some(t) => {
            let rel = format!("{EVENTS_DIR}/tenant_id={}", encode_part_value(t));
            if store.list_dirs(&rel).await?.is_empty() {
                return Err(Error::Usage(format!(
                    "tenant {t:?} has no data in {}",
                    store.display
                )));
            }
            rel
        }
        None => EVENTS_DIR.to_string(),
    };
    if let Some(dir) = store.local_dir() {
        // A lake with no events yet still has an (empty) events table.
        let d = dir.join(&rel);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    // Planned from the manifest where the lake has one (a cluster is handed a stock
    // listing of what it selects: see `cluster`; `AUDITLAKE_PLAN=listing` asks for the
    // listing, to compare).
    let from_manifest = std::env::var("AUDITLAKE_PLAN").as_deref() != Ok("listing")
        && crate::lake::manifest::exists(store).await?;
    if !opts.tenants.is_empty() && !from_manifest {
        return Err(Error::Usage(format!(
            "{}: a session of several tenants needs the lake's manifest (run `auditlake compact` on it once)",
            store.display
        )));
    }
    if from_manifest {
        let table = planned::ManifestTable::new(store.clone(), opts.tenant.clone(), scan_schema())
            .only(&opts.tenants);
        ctx.register_table(LAKE_TABLE, Arc::new(table))?;
    } else {
        register_listing(&ctx, opts).await?;
    }
    tracing::info!(lake = %store.display, tenant = ?opts.tenant, memory_limit = limit, target_partitions = partitions, from_manifest, "session: events registered");

    // `events`: the spec's column order, the tenant as a column in a scoped session,
    // and the period applied before any view sees a row.
    let tenant_expr = match &opts.tenant {
        Some(t) => format!("arrow_cast({}, 'Utf8') AS tenant_id", sql_literal(t)),
        None => "tenant_id".to_string(),
    };
    // On a cluster, a view whose days hold no file at all is defined as empty: Ballista
    // 55 waits forever on a join or union one of whose scans lists no file (the report
    // of a lake's first month joins what came before it, which is nothing).
    let empty_on_cluster = EmptyDays::of(opts).await?;
    let period = match opts.period {
        _ if empty_on_cluster.no_files(i32::MIN, i32::MAX) => " WHERE false".to_string(),
        Some((a, b)) if empty_on_cluster.no_files(a, b) => " WHERE false".to_string(),
        Some((a, b)) => format!(
            " WHERE day BETWEEN DATE '{}' AND DATE '{}'",
            format_day(a),
            format_day(b)
        ),
        None => String::new(),
    };
    let cols: Vec<&str> = crate::lake::COLUMN_NAMES.to_vec();
    let events_sql = format!(
        "CREATE VIEW events AS SELECT time, {tenant_expr}, day, {} FROM {LAKE_TABLE}{period}",
        cols[1..].join(", ")
    );
    ctx.sql(&events_sql).await?;
    // What came before the period (for reports that ask what is new); empty without a period.
    let before = match opts.period {
        Some((a, _)) if empty_on_cluster.no_files(i32::MIN, a - 1) => " WHERE false".to_string(),
        Some((a, _)) => format!(" WHERE day < DATE '{}'", format_day(a)),
        None => " WHERE false".to_string(),
    };
    let before_sql = format!(
        "CREATE VIEW events_before_period AS SELECT time, {tenant_expr}, day, {} FROM {LAKE_TABLE}{before}",
        cols[1..].join(", ")
    );
    ctx.sql(&before_sql).await?;
    // Everything up to the period's end (the key inventory's history); all of it without a period.
    let to_date = match opts.period {
        Some((_, b)) if empty_on_cluster.no_files(i32::MIN, b) => " WHERE false".to_string(),
        Some((_, b)) => format!(" WHERE day <= DATE '{}'", format_day(b)),
        None if empty_on_cluster.no_files(i32::MIN, i32::MAX) => " WHERE false".to_string(),
        None => String::new(),
    };
    let to_date_sql = format!(
        "CREATE VIEW events_to_date AS SELECT time, {tenant_expr}, day, {} FROM {LAKE_TABLE}{to_date}",
        cols[1..].join(", ")
    );
    ctx.sql(&to_date_sql).await?;
    // The look-back window of findings: the days just before the period.
    let baseline = match (opts.period, opts.baseline_days) {
        (Some((a, _)), Some(n)) if empty_on_cluster.no_files(a - n as i32, a - 1) => {
            " WHERE false".to_string()
        }
        (Some((a, _)), Some(n)) => format!(
            " WHERE day BETWEEN DATE '{}' AND DATE '{}'",
            format_day(a - n as i32),
            format_day(a - 1)
        ),
        _ => " WHERE false".to_string(),
    };
    let baseline_sql = format!(
        "CREATE VIEW events_baseline AS SELECT time, {tenant_expr}, day, {} FROM {LAKE_TABLE}{baseline}",
        cols[1..].join(", ")
    );
    ctx.sql(&baseline_sql).await?;

    ctx.sql(&opts.zones.view_sql()).await?;
    let mut views = vec![
        Described {
            name: "events".into(),
            purpose: "every audit event in the lake (one row per record)".into(),
        },
        Described {
            name: "events_local".into(),
            purpose: "every event with local_time, its time on its tenant's clock (the rules' time zone, UTC where none is set)".into(),
        },
    ];
    // The tenants a view may run once each for (see `per_tenant`): none in a scoped session
    // (its tenant is a literal already), nor on a cluster over a lake without a manifest.
    // Ballista 55 waits forever on a union branch whose scans list no file, as the one for
    // later tenants does; from the manifest, a cluster is handed such a branch as no rows
    // of its columns (`cluster::from_manifest`), never as a scan of no file.
    let tenants: Option<Vec<String>> = match (&opts.cluster, &opts.tenant) {
        (_, Some(_)) => None,
        (Some(_), _) if !from_manifest => None,
        _ if !opts.tenants.is_empty() => Some(opts.tenants.clone()),
        _ => Some(
            store
                .list_dirs(EVENTS_DIR)
                .await?
                .iter()
                .filter_map(|d| crate::lake::decode_part_value(d.strip_prefix("tenant_id=")?))
                .collect(),
        ),
    };
    let mut categories = None;
    for (name, sql) in BUILTIN_SQL {
        let built_in =
            |e: &dyn std::fmt::Display| Error::Usage(format!("built-in view {name}: {e}"));
        // The catalog comes first; views naming `{category:...}` get its rows spelled out.
        let expanded;
        let sql = if sql.contains("{category:") {
            if categories.is_none() {
                categories = Some(categories::Categories::of_session(&ctx).await?);
            }
            let c = categories.as_ref().expect("read above");
            expanded = c.expand(sql).map_err(|e| built_in(&e))?;
            expanded.as_str()
        } else {
            sql
        };
        let per_tenant;
        let sql = if per_tenant::has_marks(sql) {
            per_tenant = per_tenant::expand(sql, tenants.as_deref()).map_err(|e| built_in(&e))?;
            per_tenant.as_str()
        } else {
            sql
        };
        ctx.sql(sql).await.map_err(|e| built_in(&e))?;
        views.push(Described {
            name: name.to_string(),
            purpose: purpose_of(sql),
        });
    }
    if let Some(dir) = &opts.sql_dir {
        for (name, sql) in user_views(dir)? {
            run_statements(&ctx, &sql, &SQLOptions::new())
                .await
                .map_err(|e| Error::Usage(format!("{name}: {e}")))?;
            views.push(Described {
                name,
                purpose: purpose_of(&sql),
            });
        }
    }
    Ok(Session {
        ctx,
        restricted: opts.tenant.is_some() || !opts.tenants.is_empty(),
        views,
        on_cluster: opts.cluster.is_some(),
    })
}

/// Registers `events` as a listing of the lake's directories (lakes without a manifest).
async fn register_listing(ctx: &SessionContext, opts: &SessionOptions) -> Result<()> {
    let parquet = ctx.state().default_table_options().parquet;
    let table =
        planned::events_listing(&opts.store, opts.tenant.as_deref(), scan_schema(), parquet)?;
    // Statistics of each file, kept for the session (checked against the file's size and
    // mtime): without this every query re-derives them from a thousand footers. (On a
    // cluster the scheduler plans the scans, with its own caches.)
    let table = match opts.cluster {
        None => table.with_cache(ctx.runtime_env().cache_manager.get_file_statistic_cache()),
        Some(_) => table,
    };
    ctx.register_table(LAKE_TABLE, Arc::new(table))?;
    Ok(())
}

/// Whether `--cluster URL` can be used: a `df://host:port` address.
pub fn check_cluster(url: &str) -> Result<()> {
    cluster::parse_url(url).map(|_| ())
}

use cluster::remote_context;

/// Which days of the session's lake hold live files, asked only on a cluster (see where
/// `build_session` uses it).
struct EmptyDays {
    days: Option<Vec<i32>>,
}

impl EmptyDays {
    async fn of(opts: &SessionOptions) -> Result<EmptyDays> {
        let days = match opts.cluster {
            Some(_) => Some(
                crate::lake::live_set(&opts.store, opts.tenant.as_deref())
                    .await?
                    .into_iter()
                    .map(|(p, _)| p.key.day)
                    .collect(),
            ),
            None => None,
        };
        Ok(EmptyDays { days })
    }

    /// On a cluster, whether no live file lies in the inclusive range of days; off a
    /// cluster, always false.
    fn no_files(&self, from: i32, to: i32) -> bool {
        self.days
            .as_ref()
            .is_some_and(|days| !days.iter().any(|d| (from..=to).contains(d)))
    }
}

/// The `.sql` files of a directory, in name order.
fn user_views(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let sql = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            Ok((
                p.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                sql,
            ))
        })
        .collect()
}

impl Session {
    /// What this session allows: everything, or only queries when scoped to a tenant.
    pub fn sql_options(&self) -> SQLOptions {
        if self.restricted {
            SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false)
        } else {
            SQLOptions::new()
        }
    }

    /// Plans every statement of `sql` (one or more, `;`-separated), in order.
    pub async fn statements(&self, sql: &str) -> Result<Vec<DataFrame>> {
        run_statements(&self.ctx, sql, &self.sql_options())
            .await
            .map_err(|e| self.explain_refusal(e))
    }

    fn explain_refusal(&self, e: Error) -> Error {
        match e {
            Error::DataFusion(ref d)
                if self.restricted && d.to_string().contains("not supported") =>
            {
                Error::Usage(format!(
                    "this session is scoped to one tenant: only queries are allowed ({})",
                    d.to_string().lines().next().unwrap_or_default()
                ))
            }
            other => other,
        }
    }
}

/// Splits `sql` into statements and plans each, checked against `options`.
/// DDL runs as it is planned, so later statements see what earlier ones created.
pub async fn run_statements(
    ctx: &SessionContext,
    sql: &str,
    options: &SQLOptions,
) -> Result<Vec<DataFrame>> {
    let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})?;
    let mut out = Vec::new();
    tracing::info!(statements = statements.len(), "running SQL");
    for stmt in statements {
        tracing::debug!(statement = %stmt, "planning");
        let plan = ctx.state().statement_to_plan(stmt).await?;
        options.verify_plan(&plan)?;
        out.push(ctx.execute_logical_plan(plan).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("512M"), Ok(512 << 20));
        assert_eq!(super::parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(super::parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert!(super::parse_size("lots").is_err());
        assert!(super::parse_size("5X").is_err());
        assert!(super::default_memory_limit() >= 256 << 20);
    }
}
