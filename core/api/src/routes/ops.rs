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
            // The schedules' heartbeat: reported, never a reason to take the node out of
            // rotation (a late schedule is a scheduler problem, not this node's).
            let schedules = heartbeat(&state).await;
            axum::Json(json!({
                "status": "ready",
                "database": state.app.db.engine().name(),
                "schedules": schedules,
            }))
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

/// Every schedule's heartbeat (empty when it cannot be read). Probes call this often, so
/// it logs nothing: `late` and `failing` are in the answer, the gauges and `keel jobs stats`.
async fn heartbeat(state: &State) -> Vec<keel_app::automation::ScheduleView> {
    keel_app::automation::schedule_views(&state.app, &keel_app::Ctx::system("readyz"))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the schedules");
            Vec::new()
        })
}

/// Prometheus text exposition.
pub async fn metrics(state: axum::extract::State<State>) -> impl IntoResponse {
    // Gauges read from the database at scrape time: jobs per queue and state, and each
    // schedule's last firing and lateness.
    if let Ok(counts) = keel_store::jobs::stats(&state.app.db).await {
        for (queue, job_state, n) in counts {
            metrics::gauge!("keel_jobs", "queue" => queue, "state" => job_state.as_str())
                .set(n as f64);
        }
    }
    for v in heartbeat(&state).await {
        if let Some(at) = v.last_fired_at {
            metrics::gauge!("keel_schedule_last_fired_seconds", "schedule" => v.name.clone())
                .set(at.timestamp() as f64);
        }
        metrics::gauge!("keel_schedule_late", "schedule" => v.name.clone()).set(if v.late {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("keel_schedule_failing", "schedule" => v.name).set(if v.failing {
            1.0
        } else {
            0.0
        });
    }
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
