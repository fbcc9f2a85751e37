//! A client of the DPoD Audit Query API: the OAuth2 client-credentials token, creating
//! an export job, polling it, and downloading its signed URL to a file. Transient
//! failures (cut connections, 429, 5xx) are retried with capped exponential backoff;
//! the secret, tokens and signed query strings never reach a message.

use std::io::{Seek, Write};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use super::windows::{format_rfc3339, Window};

/// What can go wrong talking to the API, each saying where (never with a secret in it).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the token URL refused the client credentials (HTTP {status}){detail}")]
    Credentials { status: u16, detail: String },
    /// No token to be had (the token URL unreachable, untrusted or answering nonsense).
    #[error("cannot get a token: {0}")]
    Token(Box<ApiError>),
    #[error("{what}: HTTP {status}{detail}")]
    Http {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: {detail}")]
    Transport { what: String, detail: String },
    #[error("{what}: gave up after {attempts} attempts, the last: {last}")]
    GaveUp {
        what: String,
        attempts: u32,
        last: String,
    },
    /// The service refused the window: its export would exceed the size limit.
    #[error("the window is too large for one export{detail}")]
    TooLarge { detail: String },
    #[error("export job {job} ended {state}{detail}")]
    JobEnded {
        job: String,
        state: String,
        detail: String,
    },
    #[error("export job {job} still {state} after {secs}s (--job-timeout)")]
    Timeout {
        job: String,
        state: String,
        secs: u64,
    },
    /// The signed download URL was refused: it expired (a new job gets a new one).
    #[error("the signed download URL of job {job} was refused (HTTP 403): expired")]
    UrlExpired { job: String },
    #[error("{what}: unexpected answer: {detail}")]
    Protocol { what: String, detail: String },
    #[error("{0}")]
    Io(String),
}

/// Retry timing: the n-th retry waits `base * 2^n`, at most `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts of one request before giving up.
    pub attempts: u32,
}

impl Backoff {
    /// 1 s doubling up to 30 s, 8 attempts; `AUDITLAKE_FETCH_BACKOFF_MS` sets the base
    /// (the cap stays 30 bases), for tests.
    pub fn from_env() -> Backoff {
        let base = std::env::var("AUDITLAKE_FETCH_BACKOFF_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1000);
        Backoff {
            base: Duration::from_millis(base),
            cap: Duration::from_millis(base * 30),
            attempts: 8,
        }
    }

    pub fn delay(&self, n: u32) -> Duration {
        self.base.saturating_mul(1u32 << n.min(16)).min(self.cap)
    }
}

/// What the client did besides the happy path, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub retries: u64,
    pub token_refreshes: u64,
    pub resumed_downloads: u64,
}

/// A created export job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
}

struct Token {
    value: String,
    /// When to get a new one: a minute (or a tenth of its life) before it expires.
    renew_at: Instant,
}

/// A client of one tenant's API.
pub struct Api {
    http: reqwest::Client,
    api: url::Url,
    token_url: url::Url,
    client_id: String,
    secret: String,
    token: Option<Token>,
    /// Every token handed out so far, scrubbed from any text that is shown.
    issued: Vec<String>,
    pub backoff: Backoff,
    pub counters: Counters,
}

/// The API as shown: no credentials, no query string.
pub fn shown(url: &url::Url) -> String {
    crate::lake::store::redact(url)
        .trim_end_matches('/')
        .to_string()
}

impl Api {
    /// `ca_cert`: a PEM file of CAs trusted besides the system's (and `SSL_CERT_FILE`'s).
    pub fn new(
        api: url::Url,
        token_url: url::Url,
        client_id: String,
        secret: String,
        ca_cert: Option<&std::path::Path>,
        backoff: Backoff,
    ) -> Result<Api, ApiError> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .read_timeout(Duration::from_secs(120))
            .https_only(true)
            .user_agent(concat!("auditlake/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| ApiError::Io(format!("--ca-cert {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ApiError::Io(format!(
                    "--ca-cert {}: not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(ApiError::Io(format!(
                    "--ca-cert {}: no certificate in it",
                    path.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b.build().map_err(|e| ApiError::Transport {
            what: "TLS setup".into(),
            detail: e.without_url().to_string(),
        })?;
        Ok(Api {
            http,
            api,
            token_url,
            client_id,
            secret,
            token: None,
            issued: Vec::new(),
            backoff,
            counters: Counters::default(),
        })
    }

    /// `text` with the secret and every token replaced by `****`, on one line, short.
    pub fn scrub(&self, text: &str) -> String {
        let mut t = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for s in std::iter::once(&self.secret).chain(&self.issued) {
            if !s.is_empty() {
                t = t.replace(s.as_str(), "****");
            }
        }
        if t.chars().count() > 300 {
            t = t.chars().take(300).collect::<String>() + "…";
        }
        t
    }

    /// A reqwest error without its URL (a signed URL's query string lives there), with
    /// its causes (they say what really happened: a certificate, a refused connection).
    fn transport(&self, e: reqwest::Error) -> String {
        let e = e.without_url();
        let mut parts = vec![e.to_string()];
        let mut cur = std::error::Error::source(&e);
        while let Some(c) = cur {
            let t = c.to_string();
            if !parts.iter().any(|p| p.contains(&t)) {
                parts.push(t);
            }
            cur = c.source();
        }
        self.scrub(&parts.join(": "))
    }

    /// The service's own words about a refusal: its `message`/`error` field, or the body.
    /// A refusal the caller has no special meaning for: its status and the service's words.
    fn http_error(&self, what: String, status: StatusCode, body: &str) -> ApiError {
        ApiError::Http {
            what,
            status: status.as_u16(),
            detail: self.detail(body),
        }
    }

    fn detail(&self, body: &str) -> String {
        let v: Option<Value> = serde_json::from_str(body).ok();
        let text = v
            .as_ref()
            .and_then(|v| {
                ["message", "error_description", "error", "detail"]
                    .iter()
                    .find_map(|k| v.get(k).and_then(Value::as_str).map(str::to_string))
            })
            .unwrap_or_else(|| body.to_string());
        let text = self.scrub(&text);
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        }
    }

    async fn sleep(&mut self, n: u32, retry_after: Option<Duration>) {
        self.counters.retries += 1;
        let d = retry_after
            .map(|r| r.min(self.backoff.cap))
            .unwrap_or_else(|| self.backoff.delay(n));
        tokio::time::sleep(d).await;
    }

    /// A bearer token, fetched anew when there is none or it is about to expire.
    /// Every failure is [`ApiError::Credentials`] or [`ApiError::Token`].
    async fn token(&mut self, renew: bool) -> Result<String, ApiError> {
        self.token_inner(renew).await.map_err(|e| match e {
            e @ (ApiError::Credentials { .. } | ApiError::Token(_)) => e,
            e => ApiError::Token(Box::new(e)),
        })
    }

    async fn token_inner(&mut self, renew: bool) -> Result<String, ApiError> {
        if let Some(t) = &self.token {
            if !renew && Instant::now() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        if self.token.is_some() {
            self.counters.token_refreshes += 1;
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.secret)
            .finish();
        let what = format!("token from {}", shown(&self.token_url));
        let mut n = 0;
        let resp = loop {
            let sent = self
                .http
                .post(self.token_url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.clone())
                .send()
                .await;
            let last = match sent {
                Ok(r) if retryable(r.status()) => format!("HTTP {}", r.status().as_u16()),
                Ok(r) => break r,
                Err(e) => {
                    let t = self.transport(e);
                    if tls_refused(&t) {
                        return Err(ApiError::Transport { what, detail: t });
                    }
                    t
                }
            };
            n += 1;
            if n >= self.backoff.attempts {
                return Err(ApiError::GaveUp {
                    what,
                    attempts: n,
                    last,
                });
            }
            self.sleep(n - 1, None).await;
        };
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if matches!(status.as_u16(), 400 | 401 | 403) {
            return Err(ApiError::Credentials {
                status: status.as_u16(),
                detail: self.detail(&text),
            });
        }
        if !status.is_success() {
            return Err(self.http_error(what, status, &text));
        }
        let v = json_body(&what, &text)?;
        let value = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::Protocol {
                what: what.clone(),
                detail: "no access_token".into(),
            })?
            .to_string();
        let life = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        let margin = (life / 10).min(60);
        self.issued.push(value.clone());
        self.token = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + Duration::from_secs(life.saturating_sub(margin)),
        });
        Ok(value)
    }

    /// Sends an authorised API request, retrying 429/5xx and cut connections, and once
    /// with a new token on 401. Returns the status and body of the final answer.
    async fn call(
        &mut self,
        what: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, String), ApiError> {
        let mut n = 0;
        let mut renewed = false;
        loop {
            let token = self.token(false).await?;
            // What went wrong this time, and how long the server asked us to wait.
            let (last, after) = match build(&self.http, &token).send().await {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED && !renewed => {
                    // Expired or revoked early: one new token, then the same request again.
                    renewed = true;
                    self.token(true).await?;
                    continue;
                }
                Ok(r) if retryable(r.status()) => {
                    (format!("HTTP {}", r.status().as_u16()), retry_after(&r))
                }
                Ok(r) => {
                    let status = r.status();
                    match r.text().await {
                        Ok(t) => return Ok((status, t)),
                        Err(e) => (self.transport(e), None),
                    }
                }
                Err(e) => {
                    let t = self.transport(e);
                    if tls_refused(&t) {
                        return Err(ApiError::Transport {
                            what: what.into(),
                            detail: t,
                        });
                    }
                    (t, None)
                }
            };
            n += 1;
            if n >= self.backoff.attempts {
                return Err(ApiError::GaveUp {
                    what: what.into(),
                    attempts: n,
                    last,
                });
            }
            self.sleep(n - 1, after).await;
        }
    }

    fn endpoint(&self, rel: &str) -> url::Url {
        let mut u = self.api.clone();
        let path = format!("{}/{rel}", u.path().trim_end_matches('/'));
        u.set_path(&path);
        u
    }

    /// `POST /v1/audit-log-exports` for one window and the filters.
    pub async fn create(
        &mut self,
        window: Window,
        filters: &std::collections::BTreeMap<String, String>,
    ) -> Result<Job, ApiError> {
        let mut body = serde_json::Map::new();
        body.insert("from".into(), format_rfc3339(window.0).into());
        body.insert("to".into(), format_rfc3339(window.1).into());
        for (k, v) in filters {
            body.insert(k.clone(), v.clone().into());
        }
        let body = Value::Object(body).to_string();
        let url = self.endpoint("v1/audit-log-exports");
        let what = format!("creating an export job at {}", shown(&url));
        let (status, text) = self
            .call(&what, |c, t| {
                c.post(url.clone())
                    .bearer_auth(t)
                    .header("content-type", "application/json")
                    .header("accept", "application/json")
                    .body(body.clone())
            })
            .await?;
        if !status.is_success() {
            let detail = self.detail(&text);
            if status == StatusCode::PAYLOAD_TOO_LARGE
                || (status.is_client_error() && says_too_large(&detail))
            {
                return Err(ApiError::TooLarge { detail });
            }
            return Err(ApiError::Http {
                what,
                status: status.as_u16(),
                detail,
            });
        }
        let v = json_body(&what, &text)?;
        let id = v
            .get("jobId")
            .and_then(|j| {
                j.as_str()
                    .map(str::to_string)
                    .or_else(|| j.as_u64().map(|n| n.to_string()))
            })
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::Protocol {
                what,
                detail: "no jobId".into(),
            })?;
        Ok(Job { id })
    }

    /// Polls `GET /v1/audit-log-exports/{jobId}` until the job ends; the signed
    /// `location` of a job that succeeded. `on_state` hears each state seen.
    pub async fn wait(
        &mut self,
        job: &Job,
        timeout: Duration,
        mut on_state: impl FnMut(&str),
    ) -> Result<url::Url, ApiError> {
        let started = Instant::now();
        let url = self.endpoint(&format!(
            "v1/audit-log-exports/{}",
            url::form_urlencoded::byte_serialize(job.id.as_bytes()).collect::<String>()
        ));
        let what = format!("export job {}", job.id);
        let mut polls = 0u32;
        loop {
            let (status, text) = self
                .call(&what, |c, t| {
                    c.get(url.clone())
                        .bearer_auth(t)
                        .header("accept", "application/json")
                })
                .await?;
            if !status.is_success() {
                return Err(self.http_error(what, status, &text));
            }
            let v = json_body(&what, &text)?;
            let state = v
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_uppercase();
            on_state(&state);
            match state.as_str() {
                "SUCCEEDED" => {
                    let loc = v.get("location").and_then(Value::as_str).ok_or_else(|| {
                        ApiError::Protocol {
                            what: what.clone(),
                            detail: "SUCCEEDED without a location".into(),
                        }
                    })?;
                    let loc = url::Url::parse(loc).map_err(|_| ApiError::Protocol {
                        what: what.clone(),
                        detail: "its location is not a URL".into(),
                    })?;
                    // Its signature is as secret as a token.
                    if let Some(q) = loc.query() {
                        self.issued.push(q.to_string());
                    }
                    self.issued.extend(
                        loc.query_pairs()
                            .map(|(_, v)| v.into_owned())
                            .filter(|v| v.len() >= 8),
                    );
                    return Ok(loc);
                }
                "FAILED" | "CANCELLED" | "CANCELED" => {
                    let detail = ["error", "message", "reason", "errorMessage"]
                        .iter()
                        .find_map(|k| v.get(k).and_then(Value::as_str))
                        .map(|m| format!(": {}", self.scrub(m)))
                        .unwrap_or_default();
                    if says_too_large(&detail) {
                        return Err(ApiError::TooLarge { detail });
                    }
                    return Err(ApiError::JobEnded {
                        job: job.id.clone(),
                        state,
                        detail,
                    });
                }
                _ => {}
            }
            if started.elapsed() >= timeout {
                return Err(ApiError::Timeout {
                    job: job.id.clone(),
                    state,
                    secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(self.backoff.delay(polls.min(5))).await;
            polls += 1;
        }
    }

    /// Downloads a signed URL into `file` (emptied first), without auth headers. A cut
    /// body resumes with a Range request where the server allows it, else starts over;
    /// 429/5xx and connection failures are retried; 403 is [`ApiError::UrlExpired`].
    /// Returns the bytes written; `progress` hears each chunk's length.
    pub async fn download(
        &mut self,
        job: &Job,
        location: &url::Url,
        file: &mut std::fs::File,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, ApiError> {
        let what = format!("downloading {}", shown(location));
        let io = |e: std::io::Error| ApiError::Io(format!("download spool file: {e}"));
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        let mut have = 0u64;
        let mut n = 0u32; // failed attempts since the last progress
        loop {
            let mut req = self.http.get(location.clone());
            if have > 0 {
                req = req.header("range", format!("bytes={have}-"));
            }
            let last = match req.send().await {
                Err(e) => self.transport(e),
                Ok(r) if r.status() == StatusCode::FORBIDDEN => {
                    return Err(ApiError::UrlExpired {
                        job: job.id.clone(),
                    })
                }
                Ok(r) if retryable(r.status()) => format!("HTTP {}", r.status().as_u16()),
                Ok(r) if r.status() == StatusCode::RANGE_NOT_SATISFIABLE && have > 0 => {
                    // Cannot resume here: from the start again.
                    have = 0;
                    file.set_len(0).map_err(io)?;
                    file.rewind().map_err(io)?;
                    "HTTP 416".into()
                }
                Ok(r) if !r.status().is_success() => {
                    return Err(ApiError::Http {
                        what,
                        status: r.status().as_u16(),
                        detail: String::new(),
                    })
                }
                Ok(r)
                    if r.status() == StatusCode::PARTIAL_CONTENT
                        && (have == 0 || content_range_start(&r) != Some(have)) =>
                {
                    // Not the part asked for: from the start again, without a Range.
                    have = 0;
                    file.set_len(0).map_err(io)?;
                    file.rewind().map_err(io)?;
                    "HTTP 206 of another range".into()
                }
                Ok(r) => {
                    let resumed = r.status() == StatusCode::PARTIAL_CONTENT;
                    if !resumed && have > 0 {
                        // The server sent the whole body again.
                        have = 0;
                        file.set_len(0).map_err(io)?;
                        file.rewind().map_err(io)?;
                    }
                    if resumed {
                        self.counters.resumed_downloads += 1;
                    }
                    let expected = r.content_length().map(|l| l + have);
                    let mut stream = r.bytes_stream();
                    let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut *file);
                    let res: Result<(), String> = loop {
                        match stream.try_next().await {
                            Ok(Some(chunk)) => {
                                w.write_all(&chunk).map_err(io)?;
                                have += chunk.len() as u64;
                                n = 0;
                                progress(chunk.len() as u64);
                                crate::testhook::point("fetch-download");
                            }
                            Ok(None) => break Ok(()),
                            Err(e) => break Err(self.transport(e)),
                        }
                    };
                    w.flush().map_err(io)?;
                    drop(w);
                    match (res, expected) {
                        (Ok(()), Some(total)) if have < total => {
                            format!("the body ended after {have} of {total} bytes")
                        }
                        (Ok(()), _) => return Ok(have),
                        (Err(e), _) => e,
                    }
                }
            };
            n += 1;
            if n >= self.backoff.attempts {
                return Err(ApiError::GaveUp {
                    what,
                    attempts: n,
                    last,
                });
            }
            tracing::info!(bytes = have, why = %last, "download interrupted; trying again");
            self.sleep(n - 1, None).await;
        }
    }
}

/// Whether a connection failed on the server's certificate: no retry mends that.
fn tls_refused(detail: &str) -> bool {
    detail.to_ascii_lowercase().contains("certificate")
}

fn retryable(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT
}

fn retry_after(r: &reqwest::Response) -> Option<Duration> {
    r.headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The first byte of a 206 answer, from `Content-Range: bytes A-B/N`.
fn content_range_start(r: &reqwest::Response) -> Option<u64> {
    let v = r.headers().get("content-range")?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

/// Whether the service's words say the export would be too large (its size limit).
fn says_too_large(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "too large",
        "too big",
        "exceed",
        "size limit",
        "maximum size",
    ]
    .iter()
    .any(|w| d.contains(w))
}

/// A successful response's body as JSON (the service's answers are small objects).
fn json_body(what: &str, text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text).map_err(|_| ApiError::Protocol {
        what: what.to_string(),
        detail: "not JSON".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
            attempts: 5,
        };
        let d: Vec<u128> = (0..6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn refusals_that_mean_too_large() {
        assert!(says_too_large(
            ": the export would exceed the maximum size of 1GB"
        ));
        assert!(says_too_large(": File too large"));
        assert!(!says_too_large(": from must be before to"));
    }
}
