//! The read-only guard: the first hook every statement meets, through the simple and the
//! extended protocol alike. Queries, `EXPLAIN`, `SHOW`, transaction no-ops, cursors and
//! the session `SET`s clients send at startup pass; everything else (DDL, DML, `COPY`,
//! `CREATE EXTERNAL TABLE`, `SET datafusion.*`, `SELECT … INTO`) gets a PostgreSQL
//! error and changes nothing.

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::hooks::HookClient;
use std::sync::Arc;

use datafusion_postgres::pgwire::api::results::{
    DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::QueryHook;

/// The guard (stateless: it looks at each statement alone).
#[derive(Debug)]
pub struct ReadOnly;

/// What the session may plan: queries only.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// `25006 read_only_sql_transaction`, as PostgreSQL answers a write on a read-only server.
pub fn refusal(what: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        "25006".to_string(),
        format!("auditlake serve is read-only: {what} is not allowed (only SELECT, EXPLAIN, SHOW and session SET)"),
    )))
}

/// The statement's leading keywords (`CREATE EXTERNAL TABLE`, `COPY`), for the message.
fn verb(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take(3)
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    if words.is_empty() {
        "this statement".to_string()
    } else {
        words.join(" ")
    }
}

/// Why a statement is refused, or `None` when it may run (queries are checked again
/// once planned, for `SELECT … INTO`).
pub fn refused(stmt: &Statement) -> Option<String> {
    match stmt {
        Statement::Query(_)
        | Statement::ExplainTable { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => None,
        Statement::Explain { statement, .. } => refused(statement),
        Statement::Declare { stmts } => stmts
            .iter()
            .filter_map(|d| d.for_query.as_ref())
            .find_map(|q| refused(&Statement::Query(q.clone()))),
        Statement::Set(set) => match set {
            Set::SingleAssignment { variable, .. } => {
                let name = variable.to_string().to_ascii_lowercase();
                // DataFusion's own settings would change how this server plans.
                (name.starts_with("datafusion.") || name.contains("datafusion"))
                    .then(|| format!("SET {name}"))
            }
            Set::SetTimeZone { .. } | Set::SetNames { .. } | Set::SetNamesDefault { .. } => None,
            _ => Some(verb(stmt)),
        },
        _ => Some(verb(stmt)),
    }
}

/// Whether DataFusion's own parser, which knows more statements than the PostgreSQL
/// one clients' SQL goes through (`CREATE EXTERNAL TABLE`, `COPY … TO`), reads `sql`
/// as something to refuse: checked before anything else, so such a statement gets
/// the read-only error instead of a parse error. SQL it cannot read is left to the
/// PostgreSQL parser.
pub fn refused_sql(sql: &str) -> Option<PgWireError> {
    use datafusion::sql::parser::{DFParser, Statement as DfStatement};
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    fn why(s: &DfStatement) -> Option<String> {
        match s {
            DfStatement::Statement(s) => refused(s),
            DfStatement::Explain(e) => why(&e.statement),
            DfStatement::CreateExternalTable(_) => Some("CREATE EXTERNAL TABLE".into()),
            DfStatement::CopyTo(_) => Some("COPY".into()),
            _ => Some("this statement".into()),
        }
    }
    let statements = DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {}).ok()?;
    statements.iter().find_map(why).map(|w| refusal(&w))
}

/// Plans a query as the session would and checks it does not write (`SELECT … INTO`
/// plans as a `CREATE TABLE`).
async fn plan_read_only(ctx: &SessionContext, stmt: &Statement) -> PgWireResult<LogicalPlan> {
    let plan = ctx
        .state()
        .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
            stmt.clone(),
        )))
        .await
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    read_only()
        .verify_plan(&plan)
        .map_err(|_| refusal(&verb(stmt)))?;
    Ok(plan)
}

/// Savepoints, which drivers wrap their own lookups in (SQLAlchemy's psycopg dialect
/// at connect), are no-ops as `BEGIN` and `COMMIT` are: nothing here can be undone.
fn savepoint(stmt: &Statement) -> Option<Response> {
    match stmt {
        Statement::Savepoint { .. } => Some(Response::Execution(Tag::new("SAVEPOINT"))),
        Statement::ReleaseSavepoint { .. } => Some(Response::Execution(Tag::new("RELEASE"))),
        _ => None,
    }
}

/// `SHOW` of what this server is, as PostgreSQL names it (the crate would answer
/// `server_version` with DataFusion's version, which drivers cannot read).
fn show(stmt: &Statement) -> Option<PgWireResult<Response>> {
    let Statement::ShowVariable { variable } = stmt else {
        return None;
    };
    let name: Vec<String> = variable.iter().map(|v| v.value.to_lowercase()).collect();
    let value = match name
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["server_version"] => super::auth::PG_VERSION.to_string(),
        ["server_version_num"] => {
            let (major, minor) = super::auth::PG_VERSION
                .split_once('.')
                .unwrap_or((super::auth::PG_VERSION, "0"));
            format!("{major}{:0>4}", minor)
        }
        ["transaction_read_only"] | ["default_transaction_read_only"] => "on".to_string(),
        ["standard_conforming_strings"] => "on".to_string(),
        _ => return None,
    };
    let fields = Arc::new(vec![FieldInfo::new(
        name.join(" "),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    )]);
    let row = {
        let mut encoder = DataRowEncoder::new(fields.clone());
        encoder
            .encode_field(&Some(value))
            .map(|_| encoder.take_row())
    };
    Some(Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::once(async move { row }),
    ))))
}

fn is_query(stmt: &Statement) -> bool {
    matches!(stmt, Statement::Query(_) | Statement::Explain { .. })
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if let Some(what) = refused(statement) {
            tracing::info!(statement = %statement, "refused");
            return Some(Err(refusal(&what)));
        }
        if let Some(done) = savepoint(statement) {
            return Some(Ok(done));
        }
        if let Some(shown) = show(statement) {
            return Some(shown);
        }
        if is_query(statement) {
            if let Err(e) = plan_read_only(ctx, statement).await {
                return Some(Err(e));
            }
        }
        None
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        if let Some(what) = refused(statement) {
            tracing::info!(statement = %statement, "refused");
            return Some(Err(refusal(&what)));
        }
        if is_query(statement) {
            return Some(plan_read_only(ctx, statement).await);
        }
        if savepoint(statement).is_some() {
            return Some(Ok(LogicalPlan::EmptyRelation(
                datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: Arc::new(datafusion::common::DFSchema::empty()),
                },
            )));
        }
        None
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        savepoint(statement).map(Ok).or_else(|| show(statement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;

    fn parse(sql: &str) -> Statement {
        PostgresCompatibilityParser::new()
            .parse(sql)
            .expect("parses")
            .remove(0)
    }

    #[test]
    fn reads_pass_and_writes_are_named() {
        for ok in [
            "SELECT * FROM events",
            "EXPLAIN SELECT 1",
            "SHOW search_path",
            "SET application_name = 'psql'",
            "SET extra_float_digits = 3",
            "SET TIME ZONE 'UTC'",
            "BEGIN",
            "COMMIT",
            "SAVEPOINT sa_1",
            "RELEASE SAVEPOINT sa_1",
        ] {
            assert_eq!(refused(&parse(ok)), None, "{ok}");
        }
        for (bad, named) in [
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("DROP VIEW failed_logins", "DROP VIEW"),
            ("INSERT INTO t VALUES (1)", "INSERT INTO"),
            (
                "SET datafusion.execution.target_partitions = 1",
                "SET datafusion.execution.target_partitions",
            ),
            ("EXPLAIN INSERT INTO t VALUES (1)", "INSERT INTO"),
        ] {
            let why = refused(&parse(bad)).unwrap_or_default();
            assert!(why.starts_with(named), "{bad}: {why}");
        }
        // What only DataFusion's parser reads is refused by name, not as a parse error.
        for bad in [
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "COPY (SELECT 1) TO '/tmp/out.csv'",
            "EXPLAIN COPY (SELECT 1) TO '/tmp/out.csv'",
        ] {
            let e = refused_sql(bad).map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("read-only"), "{bad}: {e}");
        }
        assert!(refused_sql("SELECT 1; SELECT 2").is_none());
        assert!(refused_sql("SELECT 'x'::regclass").is_none());
    }
}
