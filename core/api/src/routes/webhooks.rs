//! Outgoing webhooks: endpoints (the secret is in the creation answer only), an endpoint's
//! delivery log, a delivery with its attempts, replay, and a ping. Admin keys and staff
//! with the automation permission only.

use super::List;
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencySlot, Json, Path, Query};
use crate::idempotency::{SECRET_SHOWN_ONCE, ShownOnce};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use keel_app::webhooks::{
    self as uc, CreatedEndpoint, DeliveryDetail, DeliveryView, EndpointPatch, EndpointView,
    NewEndpoint,
};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<State> {
    Router::new()
        .route(
            "/webhooks/endpoints",
            get(list_endpoints).post(create_endpoint),
        )
        .route(
            "/webhooks/endpoints/{id}",
            get(show_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route("/webhooks/endpoints/{id}/deliveries", get(list_deliveries))
        .route("/webhooks/endpoints/{id}/test", post(test_endpoint))
        .route("/webhooks/deliveries/{id}", get(show_delivery))
        .route("/webhooks/deliveries/{id}/replay", post(replay_delivery))
}

/// Every webhook endpoint (without secrets).
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints", tag = "webhooks",
    responses((status = 200, body = Vec<EndpointView>), (status = 403, body = ErrorBody)))]
pub async fn list_endpoints(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<EndpointView>>, ApiError> {
    Ok(axum::Json(uc::list_endpoints(&state.app, &ctx).await?))
}

/// Add an endpoint. The answer carries its signing secret, shown this once. A retry under
/// the same `Idempotency-Key` is 409 `idempotent_secret_not_replayed`, with the endpoint
/// (not its secret) in `details.resource`: the secret is not kept to be replayed.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", tag = "webhooks", request_body = NewEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry is answered 409 idempotent_secret_not_replayed: the secret is shown once")),
    responses((status = 201, body = CreatedEndpoint), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_endpoint(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: IdempotencySlot,
    Json(body): Json<NewEndpoint>,
) -> Result<
    (
        StatusCode,
        Extension<ShownOnce>,
        axum::Json<CreatedEndpoint>,
    ),
    ApiError,
> {
    let answer = slot.answer_withholding(StatusCode::CREATED, &SECRET_SHOWN_ONCE);
    Ok((
        StatusCode::CREATED,
        Extension(SECRET_SHOWN_ONCE),
        axum::Json(uc::create_endpoint_answering(&state.app, &ctx, &body, answer).await?),
    ))
}

/// One endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 200, body = EndpointView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show_endpoint(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<EndpointView>, ApiError> {
    Ok(axum::Json(uc::get_endpoint(&state.app, &ctx, id).await?))
}

/// Change an endpoint's URL, events or description, or disable (pause) and enable it.
#[utoipa::path(patch, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", params(("id" = i64, Path)),
    request_body = EndpointPatch,
    responses((status = 200, body = EndpointView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_endpoint(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<EndpointPatch>,
) -> Result<axum::Json<EndpointView>, ApiError> {
    Ok(axum::Json(
        uc::update_endpoint(&state.app, &ctx, id, &body).await?,
    ))
}

/// Remove an endpoint and its delivery log (to pause it, disable it instead).
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_endpoint(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    uc::delete_endpoint(&state.app, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// pending, delivered or failed.
    #[param(value_type = Option<keel_store::webhooks::DeliveryState>)]
    pub state: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    #[param(schema_with = keel_app::page_limit_schema)]
    pub limit: Option<u32>,
}

/// An endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path), DeliveryQuery),
    responses((status = 200, body = List<DeliveryView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_deliveries(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Query(q): Query<DeliveryQuery>,
) -> Result<axum::Json<List<DeliveryView>>, ApiError> {
    let page = uc::deliveries(
        &state.app,
        &ctx,
        id,
        q.state.as_deref(),
        q.cursor.as_deref(),
        q.limit,
    )
    .await?;
    Ok(axum::Json(page.into()))
}

/// Send a `webhook.ping` event to this endpoint now.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/test", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 202, body = DeliveryView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn test_endpoint(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: IdempotencySlot,
    Path(id): Path<i64>,
) -> Result<(StatusCode, axum::Json<DeliveryView>), ApiError> {
    let answer = slot.answer(StatusCode::ACCEPTED);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(uc::ping_answering(&state.app, &ctx, id, answer).await?),
    ))
}

/// One delivery with every attempt.
#[utoipa::path(get, path = "/api/v1/webhooks/deliveries/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 200, body = DeliveryDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show_delivery(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<DeliveryDetail>, ApiError> {
    Ok(axum::Json(uc::delivery(&state.app, &ctx, id).await?))
}

/// Send a delivered or failed delivery again (pending now, fresh attempts).
#[utoipa::path(post, path = "/api/v1/webhooks/deliveries/{id}/replay", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 202, body = DeliveryView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn replay_delivery(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: IdempotencySlot,
    Path(id): Path<i64>,
) -> Result<(StatusCode, axum::Json<DeliveryView>), ApiError> {
    let answer = slot.answer(StatusCode::ACCEPTED);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(uc::replay_answering(&state.app, &ctx, id, answer).await?),
    ))
}
