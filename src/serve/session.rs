//! Each connection's own session over the lake: built on its first statement, once the
//! user is known, exactly as `query` builds one (the same `events`, catalog, standard and
//! OCSF views, planned the same way), scoped to the user's tenants, with the PostgreSQL
//! catalog clients browse; then every statement is handed to datafusion-postgres behind
//! the read-only guard, and logged with its user, duration and rows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore, Type};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{Sink, StreamExt};
use tokio::sync::OnceCell;

use super::auth::Scope;
use super::guard::ReadOnly;
use super::{ServeOptions, Shared};
use crate::query::{build_session, SessionOptions};
use crate::Result;

/// The catalog name clients see (`current_database()`); the schema is `public`.
pub const CATALOG: &str = "auditlake";

/// What a statement is, as datafusion-postgres keeps it between Parse and Execute.
type Statement = (
    String,
    Option<(
        datafusion::sql::sqlparser::ast::Statement,
        datafusion::logical_expr::LogicalPlan,
    )>,
);

/// The session options of a scope (one tenant: `query --tenant`'s own scoping).
fn options(opts: &ServeOptions, scope: &Scope, memory: usize) -> SessionOptions {
    let (tenant, tenants) = match scope.tenants.as_slice() {
        [one] => (Some(one.clone()), Vec::new()),
        many => (None, many.to_vec()),
    };
    SessionOptions {
        store: opts.store.clone(),
        tenant,
        tenants,
        period: None,
        sql_dir: opts.sql_dir.clone(),
        memory_limit: Some(memory),
        baseline_days: None,
        cluster: None,
        zones: opts.zones.clone(),
    }
}

/// Opens the lake once as an administrator would, so a wrong `--lake` (or a user
/// view that does not plan) stops the server before it listens.
pub async fn check_lake(opts: &ServeOptions) -> Result<()> {
    let admin = Scope {
        user: String::new(),
        tenants: Vec::new(),
    };
    build_session(&options(opts, &admin, 64 << 20)).await?;
    Ok(())
}

/// A session and its PostgreSQL face, for one scope.
async fn connect(shared: &Shared, scope: &Scope) -> Result<DfSessionService> {
    let session = build_session(&options(
        &shared.opts,
        scope,
        shared.memory_per_connection(),
    ))
    .await?;
    let ctx: SessionContext = session.ctx;
    setup_pg_catalog(&ctx, CATALOG, EmptyContextProvider)
        .map_err(|e| crate::Error::DataFusion(*e))?;
    // `version()` as PostgreSQL words it: drivers read the server's version from it
    // (SQLAlchemy refuses to connect to "Apache DataFusion …").
    let version = format!(
        "PostgreSQL {} (auditlake {}) on {}-{}",
        super::auth::PG_VERSION,
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    ctx.register_udf(constant_text("version", 0, Some(version)));
    ctx.register_udf(to_regtype());
    // No column of the lake is backed by a sequence (SQLAlchemy's get_columns asks).
    ctx.register_udf(constant_text("pg_get_serial_sequence", 2, None));
    let hooks: Vec<Arc<dyn QueryHook>> = vec![
        Arc::new(ReadOnly),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    Ok(DfSessionService::new_with_hooks(Arc::new(ctx), hooks))
}

/// A function of `args` text arguments whose answer is always `value`.
fn constant_text(
    name: &str,
    args: usize,
    value: Option<String>,
) -> datafusion::logical_expr::ScalarUDF {
    use arrow::datatypes::DataType;
    use datafusion::logical_expr::ColumnarValue;
    datafusion::logical_expr::create_udf(
        name,
        vec![DataType::Utf8; args],
        DataType::Utf8,
        datafusion::logical_expr::Volatility::Immutable,
        Arc::new(move |_| {
            Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::Utf8(value.clone()),
            ))
        }),
    )
}

/// `to_regtype(name)`: the oid of a built-in type, NULL for any other name (drivers
/// probe for extension types such as `hstore` with it, as psycopg does when
/// SQLAlchemy connects).
fn to_regtype() -> datafusion::logical_expr::ScalarUDF {
    use arrow::array::{Array, AsArray, Int32Array};
    use datafusion::logical_expr::ColumnarValue;
    const TYPES: &[(&str, i32)] = &[
        ("bool", 16),
        ("boolean", 16),
        ("bytea", 17),
        ("int8", 20),
        ("bigint", 20),
        ("int2", 21),
        ("smallint", 21),
        ("int4", 23),
        ("integer", 23),
        ("text", 25),
        ("oid", 26),
        ("json", 114),
        ("float4", 700),
        ("real", 700),
        ("float8", 701),
        ("double precision", 701),
        ("varchar", 1043),
        ("character varying", 1043),
        ("date", 1082),
        ("timestamp", 1114),
        ("timestamp without time zone", 1114),
        ("timestamptz", 1184),
        ("timestamp with time zone", 1184),
        ("interval", 1186),
        ("numeric", 1700),
        ("uuid", 2950),
        ("jsonb", 3802),
    ];
    let oid = |name: &str| {
        let n = name
            .trim()
            .trim_start_matches("pg_catalog.")
            .to_ascii_lowercase();
        TYPES.iter().find(|(t, _)| *t == n).map(|(_, o)| *o)
    };
    datafusion::logical_expr::create_udf(
        "to_regtype",
        vec![arrow::datatypes::DataType::Utf8],
        arrow::datatypes::DataType::Int32,
        datafusion::logical_expr::Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let names = match &args[0] {
                ColumnarValue::Array(a) => a.clone(),
                ColumnarValue::Scalar(s) => s.to_array()?,
            };
            let names = arrow::compute::cast(&names, &arrow::datatypes::DataType::Utf8)?;
            let names = names.as_string::<i32>();
            let out: Int32Array = (0..names.len())
                .map(|i| (!names.is_null(i)).then(|| oid(names.value(i))).flatten())
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

/// The part of a connection the handlers and the parser share.
pub struct Core {
    shared: Arc<Shared>,
    scope: Arc<OnceLock<Scope>>,
    service: OnceCell<Arc<DfSessionService>>,
}

impl Core {
    /// The connection's session, built on first use.
    async fn service(&self) -> PgWireResult<Arc<DfSessionService>> {
        self.service
            .get_or_try_init(|| async {
                let scope = self.scope.get().ok_or(PgWireError::InvalidSASLState)?;
                let started = Instant::now();
                let service = connect(&self.shared, scope).await.map_err(|e| {
                    PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".into(),
                        "58000".into(),
                        format!("cannot open the lake: {e}"),
                    )))
                })?;
                tracing::info!(user = %scope.user, tenants = ?scope.tenants, ms = started.elapsed().as_secs_f64() * 1e3, "session opened");
                Ok(Arc::new(service))
            })
            .await
            .cloned()
    }

    fn ready(&self) -> PgWireResult<&Arc<DfSessionService>> {
        self.service.get().ok_or(PgWireError::InvalidSASLState)
    }

    /// Counts a query's rows as they are sent and logs the statement when its last row
    /// has gone (or the client stopped reading); other responses are logged at once.
    fn logged(&self, sql: &str, started: Instant, response: Response) -> Response {
        let user = self
            .scope
            .get()
            .map_or("-", |s| s.user.as_str())
            .to_string();
        match response {
            Response::Query(mut q) => {
                let log = Arc::new(StatementLog {
                    user,
                    sql: sql.to_string(),
                    started,
                    rows: AtomicU64::new(0),
                    _running: self.shared.statement(),
                });
                q.data_rows = Box::pin(q.data_rows.map(move |row| {
                    log.rows.fetch_add(1, Ordering::Relaxed);
                    row
                }));
                Response::Query(q)
            }
            other => {
                tracing::info!(
                    user,
                    sql,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "statement"
                );
                other
            }
        }
    }
}

/// One statement's log line, written when its rows are done.
struct StatementLog {
    user: String,
    sql: String,
    started: Instant,
    rows: AtomicU64,
    /// A shutdown waits for this statement while it lives.
    _running: super::Running,
}

impl Drop for StatementLog {
    fn drop(&mut self) {
        tracing::info!(
            user = %self.user,
            sql = %self.sql,
            rows = self.rows.load(Ordering::Relaxed),
            ms = self.started.elapsed().as_secs_f64() * 1e3,
            "statement"
        );
    }
}

/// The query handlers of one connection.
pub struct LazyService {
    core: Arc<Core>,
    parser: Arc<LazyParser>,
}

impl LazyService {
    pub fn new(shared: Arc<Shared>, scope: Arc<OnceLock<Scope>>) -> LazyService {
        let core = Arc::new(Core {
            shared,
            scope,
            service: OnceCell::new(),
        });
        LazyService {
            parser: Arc::new(LazyParser { core: core.clone() }),
            core,
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for LazyService {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let service = self.core.service().await?;
        if let Some(refusal) = super::guard::refused_sql(query) {
            tracing::info!(sql = query, "refused");
            return Err(refusal);
        }
        let started = Instant::now();
        let running = self.core.shared.statement();
        let out = SimpleQueryHandler::do_query(&*service, client, query).await;
        drop(running);
        match out {
            Ok(responses) => Ok(responses
                .into_iter()
                .map(|r| self.core.logged(query, started, r))
                .collect()),
            Err(e) => {
                tracing::info!(user = self.core.scope.get().map_or("-", |s| s.user.as_str()), sql = query, error = %e, "statement failed");
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for LazyService {
    type Statement = Statement;
    type QueryParser = LazyParser;

    fn query_parser(&self) -> Arc<LazyParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let service = self.core.service().await?;
        let started = Instant::now();
        let running = self.core.shared.statement();
        let out = ExtendedQueryHandler::do_query(&*service, client, portal, max_rows).await;
        drop(running);
        let sql = &portal.statement.statement.0;
        match out {
            Ok(r) => Ok(self.core.logged(sql, started, r)),
            Err(e) => {
                tracing::info!(user = self.core.scope.get().map_or("-", |s| s.user.as_str()), sql, error = %e, "statement failed");
                Err(e)
            }
        }
    }
}

/// The extended protocol's parser: the session's own, once the session is there.
pub struct LazyParser {
    core: Arc<Core>,
}

#[async_trait]
impl QueryParser for LazyParser {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let service = self.core.service().await?;
        if let Some(refusal) = super::guard::refused_sql(sql) {
            tracing::info!(sql, "refused");
            return Err(refusal);
        }
        let parser = ExtendedQueryHandler::query_parser(&*service);
        parser.parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        let service = self.core.ready()?;
        ExtendedQueryHandler::query_parser(&**service).get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let service = self.core.ready()?;
        ExtendedQueryHandler::query_parser(&**service).get_result_schema(stmt, column_format)
    }
}
