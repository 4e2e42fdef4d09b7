//! Staff users and API keys.

use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencySlot, Json, Path};
use crate::idempotency::{SECRET_SHOWN_ONCE, ShownOnce};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch};
use axum::{Extension, Router};
use keel_app::access::{self as uc, CreatedKey, NewKey, NewStaff, StaffChanges};
use keel_domain::access::{ApiKey, Staff};
use keel_domain::ids::{ApiKeyId, StaffId};

pub fn router() -> Router<State> {
    Router::new()
        .route("/staff", get(list_staff).post(create_staff))
        .route("/staff/{id}", patch(update_staff))
        .route("/api-keys", get(list_keys).post(create_key))
        .route("/api-keys/{id}", delete(revoke_key))
}

/// Staff users.
#[utoipa::path(get, path = "/api/v1/staff", tag = "staff", responses((status = 200, body = Vec<Staff>), (status = 403, body = ErrorBody)))]
pub async fn list_staff(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<Staff>>, ApiError> {
    Ok(axum::Json(uc::list_staff(&state.app, &ctx).await?))
}

/// Add a staff user (password at least 12 characters, stored as argon2id).
#[utoipa::path(post, path = "/api/v1/staff", tag = "staff", request_body = NewStaff,
    responses((status = 201, body = Staff), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_staff(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewStaff>,
) -> Result<(StatusCode, axum::Json<Staff>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::create_staff_answering(&state.app, &ctx, body, slot.answer(StatusCode::CREATED))
                .await?,
        ),
    ))
}

/// Rename, change the role of, or (de)activate a staff user. 409 `cannot_deactivate_self`
/// for your own account, 409 `last_active_admin` for deactivating or demoting the last
/// active admin: either would lock the host out of its own API.
#[utoipa::path(patch, path = "/api/v1/staff/{id}", tag = "staff", params(("id" = i64, Path)), request_body = StaffChanges,
    responses((status = 200, body = Staff), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_staff(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<StaffChanges>,
) -> Result<axum::Json<Staff>, ApiError> {
    Ok(axum::Json(
        uc::update_staff(&state.app, &ctx, StaffId(id), body).await?,
    ))
}

/// API keys (never the keys themselves).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", responses((status = 200, body = Vec<ApiKey>), (status = 403, body = ErrorBody)))]
pub async fn list_keys(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<ApiKey>>, ApiError> {
    Ok(axum::Json(uc::list_keys(&state.app, &ctx).await?))
}

/// Create an API key. The answer carries the key once; Keel keeps only its hash. A retry
/// under the same `Idempotency-Key` is 409 `idempotent_secret_not_replayed`, with the key's
/// record (not the key) in `details.resource`: the secret is not kept to be replayed.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = NewKey,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry is answered 409 idempotent_secret_not_replayed: the key is shown once")),
    responses((status = 201, body = CreatedKey), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_key(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: IdempotencySlot,
    Json(body): Json<NewKey>,
) -> Result<(StatusCode, Extension<ShownOnce>, axum::Json<CreatedKey>), ApiError> {
    let answer = slot.answer_withholding(StatusCode::CREATED, &SECRET_SHOWN_ONCE);
    Ok((
        StatusCode::CREATED,
        Extension(SECRET_SHOWN_ONCE),
        axum::Json(uc::create_key_answering(&state.app, &ctx, body, answer).await?),
    ))
}

/// Revoke an API key (it stops working at once).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = i64, Path)),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<ApiKey>, ApiError> {
    Ok(axum::Json(
        uc::revoke_key(&state.app, &ctx, ApiKeyId(id)).await?,
    ))
}
