//! Automation: jobs (list, read, retry, cancel) and schedules with their heartbeat. Admin
//! keys and staff with the automation permission only.

use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Path, Query};
use axum::Router;
use axum::routing::{get, post};
use keel_app::automation::{self as uc, JobView, ScheduleView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<State> {
    Router::new()
        .route("/jobs", get(list_jobs))
        .route("/jobs/{id}", get(get_job))
        .route("/jobs/{id}/retry", post(retry_job))
        .route("/jobs/{id}/cancel", post(cancel_job))
        .route("/schedules", get(list_schedules))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// ready, running, done, parked or cancelled.
    #[param(value_type = Option<keel_store::jobs::JobState>)]
    pub state: Option<String>,
    /// Jobs with an id below this (the `next_before` of the previous page).
    pub before: Option<i64>,
    /// Default 50; values outside 1 to 500 are brought inside.
    pub limit: Option<u32>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub items: Vec<JobView>,
    /// Pass as `before` for the next page; absent on the last one.
    pub next_before: Option<i64>,
}

/// Jobs, newest first, optionally in one state.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "automation", params(JobQuery),
    responses((status = 200, body = JobPage), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_jobs(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<JobQuery>,
) -> Result<axum::Json<JobPage>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let jobs = uc::list(&state.app, &ctx, q.state.as_deref(), q.before, limit).await?;
    let next_before = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    Ok(axum::Json(JobPage {
        items: jobs.into_iter().map(JobView::from).collect(),
        next_before,
    }))
}

/// One job, with its payload, attempts and last error.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = JobView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<JobView>, ApiError> {
    Ok(axum::Json(uc::get(&state.app, &ctx, id).await?.into()))
}

/// Run a parked or cancelled job again now, with a fresh set of attempts.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = JobView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry_job(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<JobView>, ApiError> {
    Ok(axum::Json(uc::retry(&state.app, &ctx, id).await?.into()))
}

/// Cancel a job that is waiting or parked.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "automation", params(("id" = i64, Path)),
    responses((status = 200, body = JobView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_job(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<JobView>, ApiError> {
    Ok(axum::Json(uc::cancel(&state.app, &ctx, id).await?.into()))
}

/// Every schedule: next slot, last firing and its job's outcome, and whether it is late
/// (no scheduler running) or failing (its last job was parked).
#[utoipa::path(get, path = "/api/v1/schedules", tag = "automation",
    responses((status = 200, body = Vec<ScheduleView>), (status = 403, body = ErrorBody)))]
pub async fn list_schedules(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<ScheduleView>>, ApiError> {
    Ok(axum::Json(uc::schedule_views(&state.app, &ctx).await?))
}
