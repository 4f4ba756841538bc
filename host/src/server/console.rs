//! The web console: one static page, served at `/`, that signs a tenant in
//! with a token and shows its apps over the REST API: state, throughput,
//! lag, the topology as a graph with live figures, recent errors, and a
//! form to look up a key in a store.

use axum::http::header;
use axum::response::IntoResponse;

/// The page (HTML, CSS and script in one file).
const PAGE: &str = include_str!("console.html");

/// `GET /`: the console.
pub async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE)
}
