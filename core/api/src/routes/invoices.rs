//! Invoices: reading them, staff drafts, issuing, the PDF, cancelling, collections.

use super::List;
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencySlot, Json, Path, Query};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use keel_app::invoices::{
    self, CancelInput, DraftInput, InvoiceQuery, InvoiceSummary, InvoiceView,
};
use keel_domain::ids::InvoiceId;

pub fn router() -> Router<State> {
    Router::new()
        .route("/invoices", get(list_invoices).post(create_draft))
        .route("/invoices/{id}", get(show_invoice).put(update_draft))
        .route("/invoices/{id}/issue", post(issue_draft))
        .route("/invoices/{id}/pdf", get(invoice_pdf))
        .route("/invoices/{id}/cancel", post(cancel_invoice))
        .route("/invoices/{id}/collections", post(send_to_collections))
}

/// Invoices in the caller's scope, newest last.
#[utoipa::path(get, path = "/api/v1/invoices", tag = "invoices", params(InvoiceQuery),
    responses((status = 200, body = List<InvoiceSummary>), (status = 422, body = ErrorBody)))]
pub async fn list_invoices(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<InvoiceQuery>,
) -> Result<axum::Json<List<InvoiceSummary>>, ApiError> {
    Ok(axum::Json(
        invoices::list(&state.app, &ctx, &q).await?.into(),
    ))
}

/// One invoice with its lines, taxes and payments.
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "invoices", params(("id" = i64, Path)),
    responses((status = 200, body = InvoiceView), (status = 404, body = ErrorBody)))]
pub async fn show_invoice(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<InvoiceView>, ApiError> {
    Ok(axum::Json(
        invoices::get(&state.app, &ctx, InvoiceId(id)).await?,
    ))
}

/// Create a draft invoice (staff): no number and no ledger entry until it is issued.
#[utoipa::path(post, path = "/api/v1/invoices", tag = "invoices", request_body = DraftInput,
    responses((status = 201, body = InvoiceView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_draft(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: IdempotencySlot,
    Json(body): Json<DraftInput>,
) -> Result<(StatusCode, axum::Json<InvoiceView>), ApiError> {
    let answer = slot.answer(StatusCode::CREATED);
    let inv = invoices::create_draft_answering(&state.app, &ctx, &body, answer).await?;
    Ok((StatusCode::CREATED, axum::Json(inv)))
}

/// Replace a draft's lines. An issued invoice is frozen (409 `invoice_issued`).
#[utoipa::path(put, path = "/api/v1/invoices/{id}", tag = "invoices", params(("id" = i64, Path)), request_body = DraftInput,
    responses((status = 200, body = InvoiceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_draft(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<DraftInput>,
) -> Result<axum::Json<InvoiceView>, ApiError> {
    Ok(axum::Json(
        invoices::update_draft(&state.app, &ctx, InvoiceId(id), &body).await?,
    ))
}

/// Issue a draft: numbered, dated, parties and exchange rate frozen, posted to the ledger.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/issue", tag = "invoices", params(("id" = i64, Path)),
    responses((status = 200, body = InvoiceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn issue_draft(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<InvoiceView>, ApiError> {
    Ok(axum::Json(
        invoices::issue(&state.app, &ctx, InvoiceId(id)).await?,
    ))
}

/// The invoice as a PDF, from its frozen details (the host's template when one is set).
#[utoipa::path(get, path = "/api/v1/invoices/{id}/pdf", tag = "invoices", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn invoice_pdf(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, ApiError> {
    let (number, bytes) = invoices::pdf(&state.app, &ctx, InvoiceId(id)).await?;
    Ok(pdf_response(&number, bytes))
}

/// Cancel an unpaid invoice with nothing paid on it (its issue entry is reversed).
#[utoipa::path(post, path = "/api/v1/invoices/{id}/cancel", tag = "invoices", params(("id" = i64, Path)),
    request_body = CancelInput,
    responses((status = 200, body = InvoiceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn cancel_invoice(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<CancelInput>,
) -> Result<axum::Json<InvoiceView>, ApiError> {
    Ok(axum::Json(
        invoices::cancel(&state.app, &ctx, InvoiceId(id), &body).await?,
    ))
}

/// Hand an unpaid invoice to collections: it stays owed and payable; only its status (and
/// the audit trail, with the reason) changes.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/collections", tag = "invoices", params(("id" = i64, Path)),
    request_body = CancelInput,
    responses((status = 200, body = InvoiceView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send_to_collections(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<CancelInput>,
) -> Result<axum::Json<InvoiceView>, ApiError> {
    Ok(axum::Json(
        invoices::send_to_collections(&state.app, &ctx, InvoiceId(id), &body).await?,
    ))
}

pub(crate) fn pdf_response(number: &str, bytes: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/pdf".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{number}.pdf\""),
            ),
        ],
        bytes,
    )
        .into_response()
}
