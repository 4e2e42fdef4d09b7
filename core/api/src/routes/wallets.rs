//! Client wallets: balances per currency, history, staff credits and debits, credit limits.

use super::{List, PageQuery};
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencyKey, Json, Path, Query};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use keel_app::wallets::{
    self as uc, CreditLimitInput, WalletMoveInput, WalletMoveView, WalletPostingView, WalletView,
    WalletsView,
};
use keel_domain::ids::ClientId;

pub fn router() -> Router<State> {
    Router::new()
        .route("/clients/{id}/wallets", get(list_wallets))
        .route(
            "/clients/{id}/wallets/{currency}/history",
            get(wallet_history),
        )
        .route(
            "/clients/{id}/wallets/{currency}/credit",
            post(credit_wallet),
        )
        .route("/clients/{id}/wallets/{currency}/debit", post(debit_wallet))
        .route(
            "/clients/{id}/wallets/{currency}/credit-limit",
            put(set_credit_limit),
        )
}

/// A client's wallets: balance, credit limit and what is available, per currency. A client
/// key reads its own; another client's is 404.
#[utoipa::path(get, path = "/api/v1/clients/{id}/wallets", tag = "wallets", params(("id" = i64, Path)),
    responses((status = 200, body = WalletsView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_wallets(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<WalletsView>, ApiError> {
    Ok(axum::Json(uc::list(&state.app, &ctx, ClientId(id)).await?))
}

/// The postings of one wallet, newest first, each with the entry's memo and the balance
/// after it.
#[utoipa::path(get, path = "/api/v1/clients/{id}/wallets/{currency}/history", tag = "wallets",
    params(("id" = i64, Path), ("currency" = keel_domain::currency::Currency, Path), PageQuery),
    responses((status = 200, body = List<WalletPostingView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn wallet_history(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path((id, currency)): Path<(i64, String)>,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<List<WalletPostingView>>, ApiError> {
    Ok(axum::Json(
        uc::history(
            &state.app,
            &ctx,
            ClientId(id),
            &currency,
            q.cursor.as_deref(),
            q.limit,
        )
        .await?
        .into(),
    ))
}

fn created_or_replayed(
    (view, created): (WalletMoveView, bool),
) -> (StatusCode, axum::Json<WalletMoveView>) {
    (
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        axum::Json(view),
    )
}

/// Credit a client's wallet (staff: billing or ledger write), against the host's
/// adjustments account. Requires an Idempotency-Key: the entry's key is derived from it,
/// so a retry never credits twice.
#[utoipa::path(post, path = "/api/v1/clients/{id}/wallets/{currency}/credit", tag = "wallets",
    params(("id" = i64, Path), ("currency" = keel_domain::currency::Currency, Path),
        ("Idempotency-Key" = String, Header, description = "Required: money moves once per key")),
    request_body = WalletMoveInput,
    responses((status = 201, body = WalletMoveView), (status = 200, body = WalletMoveView, description = "Already posted under this key"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn credit_wallet(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path((id, currency)): Path<(i64, String)>,
    Json(body): Json<WalletMoveInput>,
) -> Result<(StatusCode, axum::Json<WalletMoveView>), ApiError> {
    let moved = uc::credit(&state.app, &ctx, &key, ClientId(id), &currency, &body).await?;
    Ok(created_or_replayed(moved))
}

/// Debit a client's wallet (staff), against the host's adjustments account. Beyond balance +
/// credit limit it is 409 `insufficient_wallet_balance` and nothing changes. Requires an
/// Idempotency-Key.
#[utoipa::path(post, path = "/api/v1/clients/{id}/wallets/{currency}/debit", tag = "wallets",
    params(("id" = i64, Path), ("currency" = keel_domain::currency::Currency, Path),
        ("Idempotency-Key" = String, Header, description = "Required: money moves once per key")),
    request_body = WalletMoveInput,
    responses((status = 201, body = WalletMoveView), (status = 200, body = WalletMoveView, description = "Already posted under this key"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "insufficient_wallet_balance"), (status = 422, body = ErrorBody)))]
pub async fn debit_wallet(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path((id, currency)): Path<(i64, String)>,
    Json(body): Json<WalletMoveInput>,
) -> Result<(StatusCode, axum::Json<WalletMoveView>), ApiError> {
    let moved = uc::debit(&state.app, &ctx, &key, ClientId(id), &currency, &body).await?;
    Ok(created_or_replayed(moved))
}

/// Set how far below zero a wallet may go (staff). Lowering it below what the wallet has
/// already spent on credit is 409 `credit_limit_below_spent`.
#[utoipa::path(put, path = "/api/v1/clients/{id}/wallets/{currency}/credit-limit", tag = "wallets",
    params(("id" = i64, Path), ("currency" = keel_domain::currency::Currency, Path)),
    request_body = CreditLimitInput,
    responses((status = 200, body = WalletView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "credit_limit_below_spent"), (status = 422, body = ErrorBody)))]
pub async fn set_credit_limit(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path((id, currency)): Path<(i64, String)>,
    Json(body): Json<CreditLimitInput>,
) -> Result<axum::Json<WalletView>, ApiError> {
    Ok(axum::Json(
        uc::set_credit_limit(&state.app, &ctx, ClientId(id), &currency, &body).await?,
    ))
}
