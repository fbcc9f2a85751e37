//! `--cluster df://host:port`: the session's SQL planned here and run on an Apache
//! Ballista cluster (a stock scheduler and its executors).
//!
//! Only what serialises goes to the cluster: a stock listing table of the lake (its URL,
//! Parquet format, typed partition columns and sort order travel in the plan), the
//! VALUES view `action_catalog` and the views over them. A lake with a manifest is
//! planned from it here, before the plan leaves: each scan of the manifest table is
//! handed over as the listing with a filter keeping the partitions the manifest
//! selects ([`ManifestTable::for_cluster`]), or as no rows at all. The executors open
//! the lake's files through their own object stores (`file://` paths, or `s3://` with
//! the AWS_* environment of each executor), so the session's range cache and
//! compaction-aware listing ([`super::cache`], [`super::live`]) are not part of a
//! cluster session.

use std::sync::Arc;

use async_trait::async_trait;
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::catalog::Session;
use datafusion::execution::context::{QueryPlanner, SessionConfig, SessionContext};
use datafusion::execution::session_state::SessionStateBuilder;
use std::collections::HashMap;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::{DFSchema, DFSchemaRef, ScalarValue};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::{lit, EmptyRelation, LogicalPlan, Projection, TableScanBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

use super::planned::ManifestTable;
use crate::{Error, Result};

/// The scheduler's address from a `df://host[:port]` URL (port 50050 by default).
pub fn parse_url(url: &str) -> Result<url::Url> {
    let bad = |why: &str| Error::Usage(format!("--cluster {url:?}: {why} (df://HOST:PORT)"));
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "df" {
        return Err(bad("the scheme must be df://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
        return Err(bad("a scheduler address has no path or query"));
    }
    Ok(parsed)
}

/// A Ballista client session with the settings of `config` (catalog, information
/// schema); queries run on the scheduler at `url`, DDL (the views) here.
pub async fn remote_context(url: &str, config: SessionConfig) -> Result<SessionContext> {
    let parsed = parse_url(url)?;
    // Ballista's client connects lazily and reports a refused connection as a nested
    // transport error at the first query: ask the address first, for one clear line.
    let addr = (
        parsed
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']']),
        parsed.port().unwrap_or(50050),
    );
    let unreachable = |why: String| {
        Error::Usage(format!(
            "--cluster {url}: could not open a session on the scheduler ({})",
            super::repl::one_line(&why)
        ))
    };
    let wait = std::time::Duration::from_secs(10);
    match tokio::time::timeout(wait, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => return Err(unreachable("no answer in 10 s".into())),
    }
    let config = config
        .upgrade_for_ballista()
        // Each file is read by the task it was planned for. Work stealing shares a
        // scan's files between the partitions of one process; a Ballista task runs one
        // partition, so a file could be read by two tasks (counts inflated). Off, the
        // counts match the local session's (tests/it/cluster.rs); on was not tried.
        .set_bool(
            "datafusion.execution.enable_file_stream_work_stealing",
            false,
        )
        // Ballista's static distributed planner, not its adaptive one (on by default in
        // 55): with the adaptive planner, key_first_use run once per tenant gave 526 rows
        // on the cluster where the local session gives 233 (tests/it/cluster.rs, in each of
        // three runs; the general form gave 233 with it). The cause was not traced.
        .set_bool("ballista.planner.adaptive.enabled", false);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    let ctx = SessionContext::remote_with_state(url, state)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let state = ctx.state();
    let ballista = state.query_planner().clone();
    let state = SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(EmptyHere { ballista }))
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// Plans a query that the optimizer proved empty (or one row of constants, `SELECT 1`)
/// here, everything else on the cluster: Ballista 55 answers such a plan with no
/// columns at all, where a result needs its schema (a CSV header, a table to register).
#[derive(Debug)]
struct EmptyHere {
    ballista: Arc<dyn QueryPlanner + Send + Sync>,
}

#[async_trait]
impl QueryPlanner for EmptyHere {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let plan = from_manifest(plan, session).await?;
        let mut reads = false;
        plan.apply_with_subqueries(|node| {
            reads |= matches!(node, LogicalPlan::TableScan(_));
            Ok(TreeNodeRecursion::Continue)
        })?;
        if reads {
            return self.ballista.create_physical_plan(&plan, session).await;
        }
        // Nothing to read (proved empty, constants, or no file selected for any scan).
        DefaultPhysicalPlanner::default()
            .create_physical_plan(&plan, session)
            .await
    }
}

/// `plan` with each scan of the manifest table replaced by what the cluster is handed
/// for its filters: a listing scan keeping the partitions the manifest selects, or no
/// rows of its columns ([`no_rows`]; Ballista 55 waits forever on a join or union one of
/// whose scans lists no file).
async fn from_manifest(
    plan: &LogicalPlan,
    session: &dyn Session,
) -> datafusion::error::Result<LogicalPlan> {
    let manifest_scan = |node: &LogicalPlan| -> Option<(Arc<dyn TableProvider>, String)> {
        let LogicalPlan::TableScan(scan) = node else {
            return None;
        };
        let provider = source_as_provider(&scan.source).ok()?;
        provider
            .is::<ManifestTable>()
            .then(|| (provider, format!("{:?}", scan.filters)))
    };
    let mut scans = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let (Some(found), LogicalPlan::TableScan(scan)) = (manifest_scan(node), node) {
            scans.push((found, scan.filters.clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if scans.is_empty() {
        return Ok(plan.clone());
    }
    // One selection per distinct set of filters (a view scanned twice is selected once).
    let mut handed = HashMap::new();
    for ((provider, key), filters) in scans {
        if handed.contains_key(&key) {
            continue;
        }
        let table = provider
            .downcast_ref::<ManifestTable>()
            .expect("checked above");
        handed.insert(key, table.for_cluster(session, &filters).await?);
    }
    let rewritten = plan.clone().transform_up_with_subqueries(|node| {
        let Some((_, key)) = manifest_scan(&node) else {
            return Ok(Transformed::no(node));
        };
        let LogicalPlan::TableScan(scan) = node else {
            unreachable!("a manifest scan is a table scan")
        };
        Ok(Transformed::yes(match &handed[&key] {
            None => no_rows(&scan.projected_schema)?,
            Some((listing, keep)) => {
                let mut filters = scan.filters.clone();
                filters.extend(keep.clone());
                let mut handed = TableScanBuilder::new(
                    scan.table_name.clone(),
                    provider_as_source(listing.clone()),
                )
                .with_projection(scan.projection.clone())
                .with_filters(filters)
                .with_fetch(scan.fetch)
                .build()?;
                handed.statistics_requests = scan.statistics_requests.clone();
                LogicalPlan::TableScan(handed)
            }
        }))
    })?;
    Ok(rewritten.data)
}

/// No rows, of `schema`: its columns as typed nulls over an empty relation. An empty
/// relation alone loses its schema on the way to the cluster (Ballista sends it with
/// none, and the scheduler rejects the plan above it: "No field named lake_events.time");
/// a projection carries each column's name, qualifier and type.
fn no_rows(schema: &DFSchemaRef) -> datafusion::error::Result<LogicalPlan> {
    let empty = Arc::new(LogicalPlan::EmptyRelation(EmptyRelation {
        produce_one_row: false,
        schema: Arc::new(DFSchema::empty()),
    }));
    let columns = schema
        .iter()
        .map(|(qualifier, field)| {
            let null = ScalarValue::try_from(field.data_type())?;
            Ok(lit(null).alias_qualified(qualifier.cloned(), field.name()))
        })
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    Ok(LogicalPlan::Projection(Projection::try_new(
        columns, empty,
    )?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn scheduler_urls() {
        assert!(super::parse_url("df://localhost:50050").is_ok());
        assert!(super::parse_url("df://10.0.0.5").is_ok());
        assert!(super::parse_url("http://localhost:50050").is_err());
        assert!(super::parse_url("df://").is_err());
        assert!(super::parse_url("df://host:50050/lake").is_err());
        assert!(super::parse_url("localhost:50050").is_err());
    }
}
