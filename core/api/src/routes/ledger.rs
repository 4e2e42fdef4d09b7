//! Ledger reads, manual adjustments and reversals, and the audit log.

use super::{List, PageQuery};
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencyKey, Json, Path, Query};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use keel_app::ledger::{self as uc, AccountView, AdjustmentInput, EntryView};
use keel_domain::ids::{AccountId, ClientId, EntryId};
use keel_domain::ledger::AccountKind;
use keel_store::audit::{AuditEntry, ChainReport};
use keel_store::ledger::AccountFilter;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<State> {
    Router::new()
        .route("/ledger/accounts", get(list_accounts))
        .route("/ledger/accounts/{id}", get(show_account))
        .route("/ledger/entries", get(list_entries).post(adjust))
        .route("/ledger/entries/{id}", get(show_entry))
        .route("/ledger/entries/{id}/reverse", post(reverse))
        .route("/audit", get(audit))
        .route("/audit/verify", get(audit_verify))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    pub client_id: Option<i64>,
    pub kind: Option<AccountKind>,
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    #[param(schema_with = keel_app::page_limit_schema)]
    pub limit: Option<u32>,
}

/// Ledger accounts with their balances.
#[utoipa::path(get, path = "/api/v1/ledger/accounts", tag = "ledger", params(AccountQuery),
    responses((status = 200, body = List<AccountView>), (status = 403, body = ErrorBody)))]
pub async fn list_accounts(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<AccountQuery>,
) -> Result<axum::Json<List<AccountView>>, ApiError> {
    let filter = AccountFilter {
        client: q.client_id.map(ClientId),
        kind: q.kind,
    };
    Ok(axum::Json(
        uc::list_accounts(&state.app, &ctx, filter, q.cursor.as_deref(), q.limit)
            .await?
            .into(),
    ))
}

/// One account.
#[utoipa::path(get, path = "/api/v1/ledger/accounts/{id}", tag = "ledger", params(("id" = i64, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)))]
pub async fn show_account(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<AccountView>, ApiError> {
    Ok(axum::Json(
        uc::get_account(&state.app, &ctx, AccountId(id)).await?,
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntryQuery {
    /// Only entries that post to this account.
    pub account_id: Option<i64>,
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    #[param(schema_with = keel_app::page_limit_schema)]
    pub limit: Option<u32>,
}

/// Journal entries, oldest first.
#[utoipa::path(get, path = "/api/v1/ledger/entries", tag = "ledger", params(EntryQuery),
    responses((status = 200, body = List<EntryView>), (status = 403, body = ErrorBody)))]
pub async fn list_entries(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<EntryQuery>,
) -> Result<axum::Json<List<EntryView>>, ApiError> {
    Ok(axum::Json(
        uc::list_entries(
            &state.app,
            &ctx,
            q.account_id.map(AccountId),
            q.cursor.as_deref(),
            q.limit,
        )
        .await?
        .into(),
    ))
}

/// One entry with its postings.
#[utoipa::path(get, path = "/api/v1/ledger/entries/{id}", tag = "ledger", params(("id" = i64, Path)),
    responses((status = 200, body = EntryView), (status = 404, body = ErrorBody)))]
pub async fn show_entry(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<EntryView>, ApiError> {
    Ok(axum::Json(
        uc::get_entry(&state.app, &ctx, EntryId(id)).await?,
    ))
}

/// Post a manual, balanced journal entry (admin and billing staff). Requires an
/// Idempotency-Key: a retry replays the first answer (`Idempotent-Replayed: true`); after the
/// stored answer expires, the same key still returns the original entry (200), never a second one.
#[utoipa::path(post, path = "/api/v1/ledger/entries", tag = "ledger", request_body = AdjustmentInput,
    params(("Idempotency-Key" = String, Header, description = "Required: money moves once per key")),
    responses((status = 201, body = EntryView), (status = 200, body = EntryView, description = "Already posted under this key (after the stored answer expired)"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn adjust(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Json(body): Json<AdjustmentInput>,
) -> Result<(StatusCode, axum::Json<EntryView>), ApiError> {
    let (entry, created) = uc::adjust(&state.app, &ctx, &key, body).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        axum::Json(entry),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseInput {
    /// Why the entry is reversed.
    #[schema(schema_with = keel_domain::text::schema::memo)]
    pub reason: String,
}

/// Reverse an entry: a new entry with every side swapped, linked to the original.
#[utoipa::path(post, path = "/api/v1/ledger/entries/{id}/reverse", tag = "ledger", params(("id" = i64, Path),
    ("Idempotency-Key" = String, Header, description = "Required")), request_body = ReverseInput,
    responses((status = 201, body = EntryView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reverse(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(id): Path<i64>,
    Json(body): Json<ReverseInput>,
) -> Result<(StatusCode, axum::Json<EntryView>), ApiError> {
    let (entry, created) = uc::reverse(&state.app, &ctx, &key, EntryId(id), &body.reason).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        axum::Json(entry),
    ))
}

/// The audit log, oldest first (admins).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(PageQuery),
    responses((status = 200, body = Object, description = "A page of audit rows"), (status = 403, body = ErrorBody)))]
pub async fn audit(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let page: keel_store::Page<AuditEntry> =
        keel_app::audit::list(&state.app, &ctx, q.cursor.as_deref(), q.limit).await?;
    Ok(axum::Json(
        serde_json::json!({ "items": page.items, "next_cursor": page.next_cursor }),
    ))
}

/// Walk the audit chain and report the first broken row, if any (admins).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = Object, description = "rows, first_break, head_hash"), (status = 403, body = ErrorBody)))]
pub async fn audit_verify(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<ChainReport>, ApiError> {
    Ok(axum::Json(keel_app::audit::verify(&state.app, &ctx).await?))
}
