//! One connection's handlers, and its startup: SCRAM-SHA-256 against the users file
//! (the only password method offered), or no password at all when there is no users
//! file (which [`super::check_exposure`] allows on loopback only).

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion_postgres::pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use datafusion_postgres::pgwire::api::{
    ClientInfo, PgWireConnectionState, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, METADATA_USER,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt};

use super::scram::{self, Exchange, ScramError};
use super::session::LazyService;
use super::users::Users;
use super::Shared;

/// Who is connected, once they are: the user and the tenants they see (empty: all).
#[derive(Debug, Clone)]
pub struct Scope {
    pub user: String,
    pub tenants: Vec<String>,
}

/// The handlers of one connection (pgwire asks for them per message).
#[derive(Clone)]
pub struct Connection {
    startup: Arc<Startup>,
    service: Arc<LazyService>,
}

impl Connection {
    /// `full`: the server is at `--max-connections`, so the startup is refused.
    pub fn new(shared: Arc<Shared>, peer: SocketAddr, full: bool) -> Arc<Connection> {
        let scope = Arc::new(OnceLock::new());
        Arc::new(Connection {
            startup: Arc::new(Startup {
                shared: shared.clone(),
                peer,
                full,
                state: Mutex::new(State::Initial),
                scope: scope.clone(),
            }),
            service: Arc::new(LazyService::new(shared, scope)),
        })
    }

    /// The authenticated user, if any yet.
    pub fn user(&self) -> Option<String> {
        self.startup.scope.get().map(|s| s.user.clone())
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(
        &self,
    ) -> Arc<impl datafusion_postgres::pgwire::api::query::SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(
        &self,
    ) -> Arc<impl datafusion_postgres::pgwire::api::query::ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
}

enum State {
    Initial,
    /// The server's first message is sent; the client's final one is awaited (the
    /// user, their tenants as the users file said when the exchange began).
    Sent(String, Vec<String>, Box<Exchange>),
    Done,
}

/// The startup of one connection.
pub struct Startup {
    shared: Arc<Shared>,
    peer: SocketAddr,
    full: bool,
    state: Mutex<State>,
    scope: Arc<OnceLock<Scope>>,
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_string(),
        code.to_string(),
        message,
    )))
}

/// The PostgreSQL version the server says it is (what clients' catalog queries expect).
pub const PG_VERSION: &str = "16.6";

/// The server's parameters: PostgreSQL 16 as clients expect, read-only, UTC.
fn parameters() -> DefaultServerParameterProvider {
    let mut p = DefaultServerParameterProvider::default();
    p.is_superuser = false;
    p.default_transaction_read_only = true;
    p.server_version = format!("{PG_VERSION} (auditlake {})", env!("CARGO_PKG_VERSION"));
    p
}

impl Startup {
    async fn authenticated<C>(&self, client: &mut C, scope: Scope) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        tracing::info!(peer = %self.peer, user = %scope.user, tenants = ?scope.tenants, tls = client.is_secure(), "connection authenticated");
        let _ = self.scope.set(scope);
        static PIDS: LazyLock<RandomPidSecretKeyGenerator> =
            LazyLock::new(RandomPidSecretKeyGenerator::default);
        let (pid, key) = PIDS.generate(client);
        client.set_pid_and_secret_key(pid, key);
        finish_authentication(client, &parameters()).await
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if self.full {
                    tracing::warn!(peer = %self.peer, max = self.shared.opts.max_connections, "connection refused: too many connections");
                    return Err(fatal(
                        "53300",
                        format!(
                            "too many connections: auditlake serve allows {} (--max-connections)",
                            self.shared.opts.max_connections
                        ),
                    ));
                }
                if self.shared.opts.tls.is_some() && !client.is_secure() {
                    // With a certificate, every connection is encrypted (PostgreSQL's
                    // `hostssl`): a client that did not ask for TLS is turned away.
                    tracing::warn!(peer = %self.peer, "connection refused: not TLS");
                    return Err(fatal(
                        "28000",
                        "auditlake serve accepts TLS connections only: connect with sslmode=require or stronger".into(),
                    ));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                match &self.shared.opts.users {
                    None => {
                        // No users file: anyone on loopback, as an administrator.
                        *self.state.lock().expect("state") = State::Done;
                        self.authenticated(
                            client,
                            Scope {
                                user,
                                tenants: Vec::new(),
                            },
                        )
                        .await?;
                    }
                    Some(_) => {
                        client.set_state(PgWireConnectionState::AuthenticationInProgress);
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                                vec!["SCRAM-SHA-256".to_string()],
                            )))
                            .await?;
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let Some((path, loaded)) = &self.shared.opts.users else {
                    return Err(PgWireError::InvalidSASLState);
                };
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let state = std::mem::replace(&mut *self.state.lock().expect("state"), State::Done);
                match state {
                    State::Initial => {
                        let first = msg.into_sasl_initial_response()?;
                        if first.auth_method != "SCRAM-SHA-256" {
                            return Err(PgWireError::UnsupportedSASLAuthMethod(first.auth_method));
                        }
                        let data = first.data.unwrap_or_default();
                        // The file as it is now: `users add` and `users remove` take effect
                        // for the next connection (the copy read at start if it went bad).
                        let fresh = Users::load(path, false).map_err(|e| {
                            tracing::warn!(error = %e, "users file unreadable: using the users read at start");
                        });
                        let users = fresh.as_ref().unwrap_or(loaded);
                        let (verifier, tenants) = match users.get(&user) {
                            Some((v, t)) => (Some(v), t.to_vec()),
                            None => (None, Vec::new()),
                        };
                        let (server_first, exchange) = scram::server_first(&data, verifier)
                            .map_err(|e| refused(&self.peer, &user, e))?;
                        *self.state.lock().expect("state") =
                            State::Sent(user, tenants, Box::new(exchange));
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(Bytes::from(server_first)),
                            ))
                            .await?;
                    }
                    State::Sent(user, tenants, exchange) => {
                        let last = msg.into_sasl_response()?;
                        let server_final = exchange
                            .finish(&last.data)
                            .map_err(|e| refused(&self.peer, &user, e))?;
                        client
                            .feed(PgWireBackendMessage::Authentication(
                                Authentication::SASLFinal(Bytes::from(server_final)),
                            ))
                            .await?;
                        self.authenticated(client, Scope { user, tenants }).await?;
                    }
                    State::Done => return Err(PgWireError::InvalidSASLState),
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The error a failed exchange ends the connection with (the same for an unknown user
/// as for a wrong password, as PostgreSQL does).
fn refused(peer: &SocketAddr, user: &str, e: ScramError) -> PgWireError {
    tracing::warn!(%peer, user, reason = ?e, "authentication failed");
    match e {
        ScramError::WrongPassword => fatal(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        ),
        ScramError::Malformed(what) => fatal("08P01", format!("malformed SCRAM message: {what}")),
    }
}
