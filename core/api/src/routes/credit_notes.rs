//! Credit notes against issued invoices, and their PDFs.

use super::invoices::pdf_response;
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencyKey, Json, Path};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use keel_app::credit_notes::{self, CreditNoteInput, CreditNoteView};
use keel_domain::ids::{CreditNoteId, InvoiceId};

pub fn router() -> Router<State> {
    Router::new()
        .route(
            "/invoices/{id}/credit-notes",
            get(list_credit_notes).post(issue_credit_note),
        )
        .route("/credit-notes/{id}", get(show_credit_note))
        .route("/credit-notes/{id}/pdf", get(credit_note_pdf))
}

/// Credit an invoice, whole or by lines: the money comes off what is owed, and what was
/// already paid goes to the client's wallet. Numbered in its own sequence.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/credit-notes", tag = "invoices", params(("id" = i64, Path),
    ("Idempotency-Key" = String, Header, description = "Required")), request_body = CreditNoteInput,
    responses((status = 201, body = CreditNoteView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn issue_credit_note(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(id): Path<i64>,
    Json(body): Json<CreditNoteInput>,
) -> Result<(StatusCode, axum::Json<CreditNoteView>), ApiError> {
    let note =
        credit_notes::issue_keyed(&state.app, &ctx, InvoiceId(id), &body, Some(&key)).await?;
    Ok((StatusCode::CREATED, axum::Json(note)))
}

/// The credit notes of an invoice.
#[utoipa::path(get, path = "/api/v1/invoices/{id}/credit-notes", tag = "invoices", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<CreditNoteView>), (status = 404, body = ErrorBody)))]
pub async fn list_credit_notes(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<CreditNoteView>>, ApiError> {
    Ok(axum::Json(
        credit_notes::of_invoice(&state.app, &ctx, InvoiceId(id)).await?,
    ))
}

/// One credit note.
#[utoipa::path(get, path = "/api/v1/credit-notes/{id}", tag = "invoices", params(("id" = i64, Path)),
    responses((status = 200, body = CreditNoteView), (status = 404, body = ErrorBody)))]
pub async fn show_credit_note(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<CreditNoteView>, ApiError> {
    Ok(axum::Json(
        credit_notes::get(&state.app, &ctx, CreditNoteId(id)).await?,
    ))
}

/// The credit note as a PDF.
#[utoipa::path(get, path = "/api/v1/credit-notes/{id}/pdf", tag = "invoices", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 404, body = ErrorBody)))]
pub async fn credit_note_pdf(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, ApiError> {
    let (number, bytes) = credit_notes::pdf(&state.app, &ctx, CreditNoteId(id)).await?;
    Ok(pdf_response(&number, bytes))
}
