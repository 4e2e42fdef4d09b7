//! Orders: placing one (services and their first invoice), reading it, closing it.

use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencyKey, Json, Path};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use keel_app::orders::{self, OrderInput, OrderStatusInput, OrderView};
use keel_domain::ids::OrderId;

pub fn router() -> Router<State> {
    Router::new()
        .route("/orders", post(place_order))
        .route("/orders/{id}", get(show_order))
        .route("/orders/{id}/status", post(close_order))
}

/// Place an order: pending services and their first invoice (issued, numbered, taxed).
/// The wallet pays what it can when the client's terms say so; paying the invoice starts the
/// services. Requires an Idempotency-Key: a retry returns the same order.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = OrderInput,
    params(("Idempotency-Key" = String, Header, description = "Required: one order per key")),
    responses((status = 201, body = OrderView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn place_order(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<OrderInput>,
) -> Result<(StatusCode, axum::Json<OrderView>), ApiError> {
    let order = orders::place(&state.app, &ctx, &body, Some(&key)).await?;
    Ok((StatusCode::CREATED, axum::Json(order)))
}

/// One order with its services and first invoice.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody)))]
pub async fn show_order(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<OrderView>, ApiError> {
    Ok(axum::Json(
        orders::get(&state.app, &ctx, OrderId(id)).await?,
    ))
}

/// Cancel a pending order or mark it as fraud: its services are cancelled, stock given back,
/// and its unpaid invoice cancelled.
#[utoipa::path(post, path = "/api/v1/orders/{id}/status", tag = "orders", params(("id" = i64, Path)),
    request_body = OrderStatusInput,
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn close_order(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<OrderStatusInput>,
) -> Result<axum::Json<OrderView>, ApiError> {
    Ok(axum::Json(
        orders::close(&state.app, &ctx, OrderId(id), &body).await?,
    ))
}
