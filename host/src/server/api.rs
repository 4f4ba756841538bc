//! The server's REST API, `/v1/...`: routes, authentication and the
//! mapping of [`ServerError`]s to HTTP statuses. Handlers do their
//! (blocking) work on tokio's blocking pool; [`super::tenant`] does it.
//!
//! Every tenant endpoint takes the tenant from the bearer token, never from
//! the path, so a token cannot even name another tenant's objects: asking
//! for one is the same 404 as asking for something that does not exist.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;

use super::auth::{self, AuthError, Caller};
use super::meta::Quotas;
use super::tenant::TenantRuntime;
use super::{Server, ServerError};
use crate::jsonl::LineFormat;
use crate::serdes::Serde;

/// The OpenAPI document of this API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Most bytes of one request body (a plugin upload, a batch of records).
const MAX_BODY: usize = 64 << 20;

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, retryable) = match &self {
            ServerError::NotFound(_) => (StatusCode::NOT_FOUND, false),
            ServerError::BadRequest(_) => (StatusCode::BAD_REQUEST, false),
            ServerError::Conflict(_) => (StatusCode::CONFLICT, false),
            ServerError::Quota(_) => (StatusCode::FORBIDDEN, false),
            ServerError::TooFast(_) => (StatusCode::TOO_MANY_REQUESTS, true),
            ServerError::Auth(AuthError::Forbidden) => (StatusCode::FORBIDDEN, false),
            ServerError::Auth(_) => (StatusCode::UNAUTHORIZED, false),
            ServerError::Meta(_) | ServerError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, true),
        };
        if status.is_server_error() {
            tracing::error!("{self}");
        }
        let mut response =
            (status, axum::Json(json!({ "error": self.to_string(), "retryable": retryable }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type Reply = Result<Response, ServerError>;

/// Runs blocking work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ServerError::Internal(format!("a request handler failed: {e}")))?
}

fn caller(server: &Server, headers: &HeaderMap) -> Result<Caller, ServerError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    server.authenticate(auth::bearer(value)?)
}

fn admin(server: &Server, headers: &HeaderMap) -> Result<(), ServerError> {
    match caller(server, headers)? {
        Caller::Admin => Ok(()),
        Caller::Tenant(_) => Err(AuthError::Forbidden.into()),
    }
}

fn tenant(server: &Server, headers: &HeaderMap) -> Result<Arc<TenantRuntime>, ServerError> {
    match caller(server, headers)? {
        Caller::Tenant(name) => server.tenant_runtime(&name),
        Caller::Admin => Err(AuthError::Forbidden.into()),
    }
}

fn json(status: StatusCode, value: impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

/// The API's routes over `server`.
pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/", get(super::console::page))
        .route("/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .route("/metrics", get(metrics))
        .route("/v1/metrics", get(tenant_metrics))
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/v1/tenants/{tenant}/tokens", post(issue_token))
        .route("/v1/tenants/{tenant}/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/v1/whoami", get(whoami))
        .route("/v1/plugins", get(list_plugins))
        .route("/v1/plugins/{name}", post(upload_plugin).get(plugin_versions))
        .route("/v1/apps", get(list_apps).post(deploy))
        .route("/v1/apps/{app}", get(app_status).delete(delete_app))
        .route("/v1/apps/{app}/pause", post(pause))
        .route("/v1/apps/{app}/resume", post(resume))
        .route("/v1/apps/{app}/upgrade", post(upgrade))
        .route("/v1/apps/{app}/logs", get(app_logs))
        .route("/v1/apps/{app}/topology", get(app_topology))
        .route("/v1/apps/{app}/stores", get(app_query))
        .route("/v1/apps/{app}/stores/{*rest}", get(app_query))
        .route("/v1/topics", get(list_topics).post(create_topic))
        .route("/v1/topics/{topic}/records", post(produce).get(consume))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(server)
}

#[derive(Deserialize)]
struct NewTenant {
    name: String,
    #[serde(default)]
    quotas: Option<Quotas>,
}

async fn create_tenant(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Reply {
    admin(&server, &headers)?;
    let request: NewTenant = serde_json::from_slice(&body)
        .map_err(|e| ServerError::BadRequest(format!("body: {e}; send {{\"name\": ...}}")))?;
    blocking(move || {
        let (tenant, id, secret) = server.create_tenant(&request.name, request.quotas)?;
        Ok(json(StatusCode::CREATED, json!({ "tenant": tenant, "token": { "id": id, "secret": secret } })))
    })
    .await
}

async fn list_tenants(State(server): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    admin(&server, &headers)?;
    blocking(move || Ok(json(StatusCode::OK, server.meta().tenants()?))).await
}

async fn issue_token(State(server): State<Arc<Server>>, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    admin(&server, &headers)?;
    blocking(move || {
        let (id, secret) = server.issue_token(&name)?;
        Ok(json(StatusCode::CREATED, json!({ "id": id, "secret": secret })))
    })
    .await
}

async fn revoke_token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
) -> Reply {
    admin(&server, &headers)?;
    blocking(move || {
        server.revoke_token(&name, &id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn whoami(State(server): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    let t = tenant(&server, &headers)?;
    Ok(json(StatusCode::OK, json!({ "tenant": t.tenant.name, "quotas": t.tenant.quotas })))
}

async fn list_plugins(State(server): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || Ok(json(StatusCode::OK, server.meta().plugins(&t.tenant.name)?))).await
}

async fn plugin_versions(State(server): State<Arc<Server>>, headers: HeaderMap, Path(name): Path<String>) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || {
        let versions = server.meta().plugin_versions(&t.tenant.name, &name)?;
        if versions.is_empty() {
            return Err(ServerError::NotFound(format!("no plugin '{name}'")));
        }
        Ok(json(StatusCode::OK, versions))
    })
    .await
}

async fn upload_plugin(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || Ok(json(StatusCode::CREATED, t.upload_plugin(&server, &name, &body)?))).await
}

#[derive(Deserialize)]
struct Deploy {
    document: String,
    #[serde(default)]
    plugin_version: Option<u32>,
}

async fn deploy(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Reply {
    let t = tenant(&server, &headers)?;
    let request: Deploy = serde_json::from_slice(&body).map_err(|e| {
        ServerError::BadRequest(format!(
            "body: {e}; send {{\"document\": \"<the app's YAML>\", \"plugin_version\": N}}"
        ))
    })?;
    blocking(move || Ok(json(StatusCode::CREATED, t.deploy(&server, &request.document, request.plugin_version)?))).await
}

async fn list_apps(State(server): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || Ok(json(StatusCode::OK, t.statuses()))).await
}

async fn app_status(State(server): State<Arc<Server>>, headers: HeaderMap, Path(app): Path<String>) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || Ok(json(StatusCode::OK, t.status(&app)?))).await
}

async fn delete_app(State(server): State<Arc<Server>>, headers: HeaderMap, Path(app): Path<String>) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || {
        t.delete(&server, &app)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn pause(State(server): State<Arc<Server>>, headers: HeaderMap, Path(app): Path<String>) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || Ok(json(StatusCode::OK, t.set_running(&server, &app, false)?))).await
}

async fn resume(State(server): State<Arc<Server>>, headers: HeaderMap, Path(app): Path<String>) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || Ok(json(StatusCode::OK, t.set_running(&server, &app, true)?))).await
}

#[derive(Deserialize)]
struct Upgrade {
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    document: Option<String>,
}

async fn upgrade(State(server): State<Arc<Server>>, headers: HeaderMap, Path(app): Path<String>, body: Bytes) -> Reply {
    let t = tenant(&server, &headers)?;
    let request: Upgrade = serde_json::from_slice(&body).map_err(|e| {
        ServerError::BadRequest(format!("body: {e}; send {{\"plugin\": \"NAME@VERSION\", \"document\": ...}}"))
    })?;
    if request.plugin.is_none() && request.document.is_none() {
        return Err(ServerError::BadRequest("upgrade needs a `plugin`, a `document`, or both".into()));
    }
    blocking(move || {
        let status = t.upgrade(&server, &app, request.plugin.as_deref(), request.document.as_deref())?;
        Ok(json(StatusCode::OK, status))
    })
    .await
}

async fn app_logs(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(app): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    let t = tenant(&server, &headers)?;
    let after = q.get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(200).min(2000);
    blocking(move || Ok(json(StatusCode::OK, t.inspect(&app, |d| d.logs.since(after, limit))?))).await
}

async fn app_topology(State(server): State<Arc<Server>>, headers: HeaderMap, Path(app): Path<String>) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || {
        let (text, dot, graph) = t.inspect(&app, |d| {
            let topology = &d.app.topology;
            (topology.describe(), topology.describe_dot(), topology.describe_graph())
        })?;
        Ok(json(StatusCode::OK, json!({ "describe": text, "dot": dot, "graph": graph })))
    })
    .await
}

/// `/v1/apps/{app}/stores/...`: the app's interactive queries, answered by
/// the same routes as `eddy run --listen` serves at `/v1/stores/...`.
async fn app_query(State(server): State<Arc<Server>>, headers: HeaderMap, request: Request) -> Reply {
    let t = tenant(&server, &headers)?;
    let path = request.uri().path().to_owned();
    let rest = path.strip_prefix("/v1/apps/").unwrap_or_default();
    let (app, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let app = app.to_owned();
    let queries = blocking(move || t.inspect(&app, |d| d.queries.clone())).await?;
    let target = match request.uri().query() {
        Some(q) => format!("/v1/{rest}?{q}"),
        None => format!("/v1/{rest}"),
    };
    let uri: Uri = target.parse().map_err(|e| ServerError::BadRequest(format!("path: {e}")))?;
    let forwarded =
        Request::builder().uri(uri).body(Body::empty()).map_err(|e| ServerError::Internal(e.to_string()))?;
    crate::query::http::router(queries)
        .oneshot(forwarded)
        .await
        .map_err(|e| ServerError::Internal(format!("query: {e}")))
}

async fn list_topics(State(server): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || Ok(json(StatusCode::OK, t.topics()?))).await
}

#[derive(Deserialize)]
struct NewTopic {
    name: String,
    #[serde(default = "one")]
    partitions: u32,
}

fn one() -> u32 {
    1
}

async fn create_topic(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Reply {
    let t = tenant(&server, &headers)?;
    let request: NewTopic = serde_json::from_slice(&body)
        .map_err(|e| ServerError::BadRequest(format!("body: {e}; send {{\"name\": ..., \"partitions\": N}}")))?;
    blocking(move || {
        t.create_topic(&request.name, request.partitions)?;
        Ok(json(StatusCode::CREATED, json!({ "name": request.name, "partitions": request.partitions })))
    })
    .await
}

/// The record format of `?key-serde=&value-serde=` (JSON by default).
fn line_format(q: &HashMap<String, String>) -> Result<LineFormat, ServerError> {
    let serde = |name: &str| -> Result<Serde, ServerError> {
        match q.get(name) {
            Some(v) => v.parse().map_err(|e| ServerError::BadRequest(format!("{name}: {e}"))),
            None => Ok(Serde::Json),
        }
    };
    Ok(LineFormat { key: serde("key-serde")?, value: serde("value-serde")?, windowed: None })
}

async fn produce(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(topic): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Reply {
    let t = tenant(&server, &headers)?;
    let format = line_format(&q)?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| ServerError::BadRequest("body: not UTF-8".into()))?;
    blocking(move || {
        let count = t.produce(&topic, &format, &text)?;
        Ok(json(StatusCode::OK, json!({ "produced": count })))
    })
    .await
}

async fn consume(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(topic): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Reply {
    let t = tenant(&server, &headers)?;
    let format = line_format(&q)?;
    let offset = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100).clamp(1, 10_000);
    blocking(move || Ok(json(StatusCode::OK, t.consume(&topic, &format, offset, limit)?))).await
}

async fn metrics(State(server): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    admin(&server, &headers)?;
    blocking(move || Ok(prometheus_text(super::metrics::gather(&server, None)))).await
}

async fn tenant_metrics(State(server): State<Arc<Server>>, headers: HeaderMap) -> Reply {
    let t = tenant(&server, &headers)?;
    blocking(move || Ok(prometheus_text(super::metrics::gather(&server, Some(&t.tenant.name))))).await
}

fn prometheus_text(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
