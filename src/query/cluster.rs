//! `--cluster df://host:port`: the session's SQL planned here and run on an Apache
//! Ballista cluster (a stock scheduler and its executors).
//!
//! Only what serialises goes to the cluster: the `events` listing table (its URL,
//! Parquet format, typed partition columns and sort order travel in the plan), the
//! VALUES view `action_catalog` and the views over them. The executors open the lake's
//! files through their own object stores (`file://` paths, or `s3://` with the AWS_*
//! environment of each executor), so the session's range cache and compaction-aware
//! listing ([`super::cache`], [`super::live`]) are not part of a cluster session.

use std::sync::Arc;

use async_trait::async_trait;
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::catalog::Session;
use datafusion::execution::context::{QueryPlanner, SessionConfig, SessionContext};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

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
        );
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
        match plan {
            LogicalPlan::EmptyRelation(_) => {
                DefaultPhysicalPlanner::default()
                    .create_physical_plan(plan, session)
                    .await
            }
            _ => self.ballista.create_physical_plan(plan, session).await,
        }
    }
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
