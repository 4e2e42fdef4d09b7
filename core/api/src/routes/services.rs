//! Services: reading them, status changes, cancellation requests, plan changes.

use super::List;
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencyKey, IdempotencySlot, Json, Path, Query};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use keel_app::plan_change::{self, PlanChangeInput, PlanChangePreview, PlanChangeResult};
use keel_app::services::{self, CancellationInput, ServiceQuery, ServiceView, StatusInput};
use keel_domain::ids::ServiceId;

pub fn router() -> Router<State> {
    Router::new()
        .route("/services", get(list_services))
        .route("/services/{id}", get(show_service))
        .route("/services/{id}/status", post(change_service_status))
        .route("/services/{id}/cancellation", post(request_cancellation))
        .route(
            "/services/{id}/plan-change/preview",
            post(preview_plan_change),
        )
        .route("/services/{id}/plan-change", post(apply_plan_change))
}

/// Services in the caller's scope.
#[utoipa::path(get, path = "/api/v1/services", tag = "services", params(ServiceQuery),
    responses((status = 200, body = List<ServiceView>), (status = 422, body = ErrorBody)))]
pub async fn list_services(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<ServiceQuery>,
) -> Result<axum::Json<List<ServiceView>>, ApiError> {
    Ok(axum::Json(
        services::list(&state.app, &ctx, &q).await?.into(),
    ))
}

/// One service with its status history.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "services", params(("id" = i64, Path)),
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody)))]
pub async fn show_service(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<ServiceView>, ApiError> {
    Ok(axum::Json(
        services::get(&state.app, &ctx, ServiceId(id)).await?,
    ))
}

/// Suspend, unsuspend, terminate or cancel a service (staff), with a reason.
#[utoipa::path(post, path = "/api/v1/services/{id}/status", tag = "services", params(("id" = i64, Path)),
    request_body = StatusInput,
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_service_status(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<StatusInput>,
) -> Result<axum::Json<ServiceView>, ApiError> {
    Ok(axum::Json(
        services::change_status(&state.app, &ctx, ServiceId(id), &body).await?,
    ))
}

/// Ask to cancel a service, now or at the end of the paid period.
#[utoipa::path(post, path = "/api/v1/services/{id}/cancellation", tag = "services", params(("id" = i64, Path)),
    request_body = CancellationInput,
    responses((status = 200, body = ServiceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn request_cancellation(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<CancellationInput>,
) -> Result<axum::Json<ServiceView>, ApiError> {
    Ok(axum::Json(
        services::request_cancellation(&state.app, &ctx, ServiceId(id), &body).await?,
    ))
}

/// What moving the service to another product or options would cost today (prorated by
/// days remaining); changes nothing.
#[utoipa::path(post, path = "/api/v1/services/{id}/plan-change/preview", tag = "services", params(("id" = i64, Path)),
    request_body = PlanChangeInput,
    responses((status = 200, body = PlanChangePreview), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview_plan_change(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<PlanChangeInput>,
) -> Result<axum::Json<PlanChangePreview>, ApiError> {
    Ok(axum::Json(
        plan_change::preview(&state.app, &ctx, ServiceId(id), &body).await?,
    ))
}

/// Upgrade or downgrade a service: an upgrade is invoiced at once for the days remaining;
/// a downgrade's credit goes to the wallet or the next invoice (`billing.downgrade_credit`).
#[utoipa::path(post, path = "/api/v1/services/{id}/plan-change", tag = "services", params(("id" = i64, Path),
    ("Idempotency-Key" = String, Header, description = "Required")), request_body = PlanChangeInput,
    responses((status = 200, body = PlanChangeResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply_plan_change(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(_key): IdempotencyKey,
    slot: IdempotencySlot,
    Path(id): Path<i64>,
    Json(body): Json<PlanChangeInput>,
) -> Result<axum::Json<PlanChangeResult>, ApiError> {
    let answer = slot.answer(StatusCode::OK);
    Ok(axum::Json(
        plan_change::apply_answering(&state.app, &ctx, ServiceId(id), &body, answer).await?,
    ))
}
