//! Health, readiness, metrics, and the API's own description.

use crate::State;
use crate::error::ApiError;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

/// Liveness: the process answers. Touches nothing.
pub async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Readiness: the database answers.
pub async fn readyz(state: axum::extract::State<State>) -> Response {
    match state.app.db.ping().await {
        Ok(()) => {
            axum::Json(json!({ "status": "ready", "database": state.app.db.engine().name() }))
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database does not answer",
            )
            .into_response()
        }
    }
}

/// Prometheus text exposition.
pub async fn metrics(state: axum::extract::State<State>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .metrics
            .as_ref()
            .map(|h| h.render())
            .unwrap_or_default(),
    )
}

/// The OpenAPI document, generated from the handlers' types.
pub async fn openapi_json(state: axum::extract::State<State>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.to_string(),
    )
}

/// A readable page listing every operation, rendered from the same document.
pub async fn docs(state: axum::extract::State<State>) -> Html<String> {
    Html(state.docs_html.to_string())
}
