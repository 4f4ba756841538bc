//! Interactive queries over HTTP: JSON in and out.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /v1/stores` | `{"stores": [{"name", "kind", "key_serde", "value_serde", "partitions", ...}]}` |
//! | `GET /v1/stores/{store}/keys/{key}?fields=a,b.c` | `{"key", "value", "timestamp"}` |
//! | `GET /v1/stores/{store}/range?from=&to=&prefix=&limit=&after=&fields=` | `{"entries": [...], "next": cursor or null}` |
//! | `GET /v1/stores/{store}/windows/{key}?from=MS&to=MS&limit=&fields=` | `{"key", "windows": [{"start", "end", "value", "timestamp"}], "next"}` |
//! | `GET /v1/stores/{store}/metadata/{key}` | `{"store", "key", "partition", "task", "hosted_here", "active_host", "standby_hosts"}` |
//!
//! Errors are `{"error": "...", "retryable": bool}`: 404 for an unknown
//! store or an absent key, 400 for a malformed key or parameter, 503
//! (retryable, with `Retry-After`) while the task that holds the data is
//! restoring or moving, 500 if a store fails to read (the detail goes to the
//! log, not the client). Where another instance of the application runs
//! the task (on Kafka, instances started with `--listen`), the router
//! forwards a key, window or metadata query there and relays its answer;
//! a forwarded query is not forwarded again, and a range scan, which reads
//! every partition, answers 421 naming the instance. [`router`] mounts the routes; the functions
//! [`stores`], [`key`], [`range`], [`windows`] and [`metadata`] answer them
//! for handlers that mount them elsewhere. They read stores on the calling
//! thread: call them from a blocking context, as the router does.
//! [`Server`] serves the router on its own thread (`eddy run --listen`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

use super::{Fault, KeyParams, QueryError, Queryable, RangeParams, WindowParams};

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let (status, message) = match self.fault() {
            Fault::NotFound => (StatusCode::NOT_FOUND, self.to_string()),
            Fault::BadRequest => (StatusCode::BAD_REQUEST, self.to_string()),
            Fault::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, self.to_string()),
            Fault::Elsewhere => (
                StatusCode::MISDIRECTED_REQUEST,
                format!("{self}: ask it (a range scan reads only the partitions of the instance it asks)"),
            ),
            Fault::Internal => {
                tracing::warn!("interactive query failed: {self}");
                let store = match &self {
                    QueryError::Store { store, .. } => store.as_str(),
                    _ => "?",
                };
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reading store '{store}' failed; the instance's log says why"),
                )
            }
        };
        let mut response =
            (status, axum::Json(json!({ "error": message, "retryable": self.retryable() }))).into_response();
        if self.retryable() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The header that marks a query one instance forwarded to another.
const FORWARDED: &str = "x-eddy-forwarded";

/// How long a forwarded query may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// `answer` unless the data is in another instance: then the query (path
/// and query string `target`) goes there once, and its answer comes back.
fn answer_or_forward<T: Serialize>(result: Result<T, QueryError>, target: &str, forwarded: bool) -> Response {
    let address = match &result {
        Err(QueryError::Elsewhere { address, .. }) if !forwarded => address.clone(),
        _ => return answer(result),
    };
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(FORWARD_TIMEOUT)).build().into();
    match agent.get(&format!("http://{address}{target}")).header(FORWARDED, "1").call() {
        Ok(mut relayed) => {
            let status = StatusCode::from_u16(relayed.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = relayed.body_mut().read_to_string().unwrap_or_default();
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => {
            let message =
                format!("{}; it did not answer: {e}", result.err().map(|e| e.to_string()).unwrap_or_default());
            let body = json!({ "error": message, "retryable": true });
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], axum::Json(body)).into_response()
        }
    }
}

/// The path and query string of a request, and whether another instance
/// forwarded it.
fn target(uri: &Uri, headers: &HeaderMap) -> (String, bool) {
    let target = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    (target, headers.contains_key(FORWARDED))
}

/// `200` with `answer` as JSON, or the error's answer.
fn answer<T: Serialize>(result: Result<T, QueryError>) -> Response {
    match result {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/stores`: the queryable stores.
pub fn stores(q: &Queryable) -> Response {
    answer(Ok(json!({ "application": q.app_id(), "stores": q.describe() })))
}

/// `GET /v1/stores/{store}/keys/{key}`: a key's value.
pub fn key(q: &Queryable, store: &str, key: &str, params: &KeyParams) -> Response {
    answer(q.get(store, key, params))
}

/// `GET /v1/stores/{store}/range`: a page of entries over all partitions.
pub fn range(q: &Queryable, store: &str, params: &RangeParams) -> Response {
    answer(q.range(store, params))
}

/// `GET /v1/stores/{store}/windows/{key}`: a key's windows or sessions.
pub fn windows(q: &Queryable, store: &str, key: &str, params: &WindowParams) -> Response {
    answer(q.windows(store, key, params))
}

/// `GET /v1/stores/{store}/metadata/{key}`: where a key lives.
pub fn metadata(q: &Queryable, store: &str, key: &str) -> Response {
    answer(q.metadata(store, key))
}

/// The routes above on `q`, at `/v1/stores...`.
pub fn router(q: Arc<Queryable>) -> Router {
    Router::new()
        .route("/v1/stores", get(|State(q): State<Arc<Queryable>>| blocking(move || stores(&q))))
        .route("/v1/stores/{store}/keys/{key}", get(key_route))
        .route("/v1/stores/{store}/range", get(range_route))
        .route("/v1/stores/{store}/windows/{key}", get(windows_route))
        .route("/v1/stores/{store}/metadata/{key}", get(metadata_route))
        .fallback(|| async {
            let message = "no such route: see /v1/stores, /v1/stores/{store}/keys/{key}, /v1/stores/{store}/range, /v1/stores/{store}/windows/{key} and /v1/stores/{store}/metadata/{key}";
            (StatusCode::NOT_FOUND, axum::Json(json!({ "error": message, "retryable": false })))
        })
        .with_state(q)
}

/// Runs `f`, which reads stores, on a thread that may block.
async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!("interactive query panicked: {e}");
            let body = json!({ "error": "the query failed; the instance's log says why", "retryable": false });
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
        }
    }
}

/// A malformed path or query string, as a JSON 400.
fn bad(what: impl std::fmt::Display) -> Response {
    QueryError::BadRequest(what.to_string()).into_response()
}

async fn key_route(
    State(q): State<Arc<Queryable>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<KeyParams>, QueryRejection>,
) -> Response {
    let (target, forwarded) = target(&uri, &headers);
    match (path, params) {
        (Ok(Path((store, k))), Ok(Query(params))) => {
            blocking(move || answer_or_forward(q.get(&store, &k, &params), &target, forwarded)).await
        }
        (Err(e), _) => bad(format!("path: {}", e.body_text())),
        (_, Err(e)) => bad(e.body_text()),
    }
}

async fn range_route(
    State(q): State<Arc<Queryable>>,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Response {
    match (path, params) {
        (Ok(Path(store)), Ok(Query(params))) => blocking(move || range(&q, &store, &params)).await,
        (Err(e), _) => bad(format!("path: {}", e.body_text())),
        (_, Err(e)) => bad(e.body_text()),
    }
}

async fn windows_route(
    State(q): State<Arc<Queryable>>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> Response {
    let (target, forwarded) = target(&uri, &headers);
    match (path, params) {
        (Ok(Path((store, k))), Ok(Query(params))) => {
            blocking(move || answer_or_forward(q.windows(&store, &k, &params), &target, forwarded)).await
        }
        (Err(e), _) => bad(format!("path: {}", e.body_text())),
        (_, Err(e)) => bad(e.body_text()),
    }
}

async fn metadata_route(
    State(q): State<Arc<Queryable>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    match path {
        Ok(Path((store, k))) => blocking(move || metadata(&q, &store, &k)).await,
        Err(e) => bad(format!("path: {}", e.body_text())),
    }
}

/// Why the query server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another process listens on the address.
    #[error(
        "cannot listen on {addr}: the address is already in use (another process listens there; pick another port)"
    )]
    InUse {
        /// The address.
        addr: SocketAddr,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The server's runtime or thread could not start.
    #[error("cannot start the query server: {0}")]
    Start(std::io::Error),
}

/// How long a stopping server lets requests under way finish.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The [`router`] served on its own thread (a one-thread tokio runtime)
/// until stopped or dropped.
pub struct Server {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Listens on `addr` (port 0: any free port, see [`Server::local_addr`])
    /// and serves `q`'s queries.
    pub fn start(addr: SocketAddr, q: Arc<Queryable>) -> Result<Server, ServeError> {
        let listener = std::net::TcpListener::bind(addr).map_err(|source| match source.kind() {
            std::io::ErrorKind::AddrInUse => ServeError::InUse { addr },
            _ => ServeError::Bind { addr, source },
        })?;
        listener.set_nonblocking(true).map_err(ServeError::Start)?;
        let local = listener.local_addr().map_err(ServeError::Start)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("eddy-query")
            .enable_io()
            .enable_time()
            .build()
            .map_err(ServeError::Start)?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("eddy-query-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::warn!("query server on {local}: {e}");
                            return;
                        }
                    };
                    let mut signal = stopped.clone();
                    let serving = axum::serve(listener, router(q)).with_graceful_shutdown(async move {
                        let _ = signal.wait_for(|s| *s).await;
                    });
                    let mut deadline = stopped;
                    tokio::select! {
                        served = serving => if let Err(e) = served {
                            tracing::warn!("query server on {local}: {e}");
                        },
                        // Connections still open after the grace are dropped.
                        _ = async {
                            let _ = deadline.wait_for(|s| *s).await;
                            tokio::time::sleep(STOP_GRACE).await;
                        } => {}
                    }
                });
                runtime.shutdown_timeout(STOP_GRACE);
            })
            .map_err(ServeError::Start)?;
        Ok(Server { addr: local, stop, thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening, lets requests under way finish (for up to two
    /// seconds), and waits for the thread.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}
