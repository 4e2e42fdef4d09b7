//! Payments: staff-recorded payments, wallet payments, wallet top-ups.

use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencyKey, IdempotencySlot, Json, Path};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use keel_app::invoices::InvoiceView;
use keel_app::payments::{self, PaymentInput, TopUpInput, WalletPayInput};
use keel_domain::ids::InvoiceId;

pub fn router() -> Router<State> {
    Router::new()
        .route("/invoices/{id}/payments", post(record_payment))
        .route("/invoices/{id}/wallet-payments", post(pay_with_wallet))
        .route("/top-ups", post(top_up))
}

/// Record money received by staff (bank transfer, cash, cheque). A (method, reference) pair
/// is recorded once; more than is due is refused.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/payments", tag = "invoices", params(("id" = i64, Path),
    ("Idempotency-Key" = String, Header, description = "Required")), request_body = PaymentInput,
    responses((status = 201, body = InvoiceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn record_payment(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(_key): IdempotencyKey,
    slot: IdempotencySlot,
    Path(id): Path<i64>,
    Json(body): Json<PaymentInput>,
) -> Result<(StatusCode, axum::Json<InvoiceView>), ApiError> {
    let answer = slot.answer(StatusCode::CREATED);
    let inv =
        payments::record_payment_answering(&state.app, &ctx, InvoiceId(id), &body, answer).await?;
    Ok((StatusCode::CREATED, axum::Json(inv)))
}

/// Pay (part of) an invoice from the client's wallet.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/wallet-payments", tag = "invoices", params(("id" = i64, Path),
    ("Idempotency-Key" = String, Header, description = "Required")), request_body = WalletPayInput,
    responses((status = 201, body = InvoiceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pay_with_wallet(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(id): Path<i64>,
    Json(body): Json<WalletPayInput>,
) -> Result<(StatusCode, axum::Json<InvoiceView>), ApiError> {
    let inv = payments::pay_with_wallet(&state.app, &ctx, InvoiceId(id), &body, Some(&key)).await?;
    Ok((StatusCode::CREATED, axum::Json(inv)))
}

/// Issue a wallet top-up invoice; paying it credits the wallet.
#[utoipa::path(post, path = "/api/v1/top-ups", tag = "invoices", request_body = TopUpInput,
    params(("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 201, body = InvoiceView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn top_up(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<TopUpInput>,
) -> Result<(StatusCode, axum::Json<InvoiceView>), ApiError> {
    let inv = payments::top_up(&state.app, &ctx, &body, Some(&key)).await?;
    Ok((StatusCode::CREATED, axum::Json(inv)))
}
