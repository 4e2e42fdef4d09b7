//! Orders, invoices, payments, services and the billing run.

use super::List;
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencyKey, IdempotencySlot, Json, Path, Query};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use keel_app::billing_run::{self, RunOptions, RunReport};
use keel_app::credit_notes::{self, CreditNoteInput, CreditNoteView};
use keel_app::invoices::{
    self, CancelInput, DraftInput, InvoiceQuery, InvoiceSummary, InvoiceView,
};
use keel_app::orders::{self, OrderInput, OrderStatusInput, OrderView};
use keel_app::payments::{self, PaymentInput, TopUpInput, WalletPayInput};
use keel_app::plan_change::{self, PlanChangeInput, PlanChangePreview, PlanChangeResult};
use keel_app::services::{self, CancellationInput, ServiceQuery, ServiceView, StatusInput};
use keel_domain::ids::{CreditNoteId, InvoiceId, OrderId, ServiceId};
use serde::Deserialize;
use utoipa::ToSchema;

pub fn router() -> Router<State> {
    Router::new()
        .route("/orders", post(place_order))
        .route("/orders/{id}", get(show_order))
        .route("/orders/{id}/status", post(close_order))
        .route("/invoices", get(list_invoices).post(create_draft))
        .route("/invoices/{id}", get(show_invoice).put(update_draft))
        .route("/invoices/{id}/issue", post(issue_draft))
        .route("/invoices/{id}/pdf", get(invoice_pdf))
        .route("/invoices/{id}/payments", post(record_payment))
        .route("/invoices/{id}/wallet-payments", post(pay_with_wallet))
        .route("/invoices/{id}/cancel", post(cancel_invoice))
        .route("/invoices/{id}/collections", post(send_to_collections))
        .route(
            "/invoices/{id}/credit-notes",
            get(list_credit_notes).post(issue_credit_note),
        )
        .route("/credit-notes/{id}", get(show_credit_note))
        .route("/credit-notes/{id}/pdf", get(credit_note_pdf))
        .route("/top-ups", post(top_up))
        .route("/services", get(list_services))
        .route("/services/{id}", get(show_service))
        .route("/services/{id}/status", post(change_service_status))
        .route("/services/{id}/cancellation", post(request_cancellation))
        .route(
            "/services/{id}/plan-change/preview",
            post(preview_plan_change),
        )
        .route("/services/{id}/plan-change", post(apply_plan_change))
        .route("/billing/runs", post(billing_run))
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// YYYY-MM-DD; default today.
    #[schema(value_type = Option<chrono::NaiveDate>)]
    pub as_of: Option<String>,
    /// Compute and report, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Run (or preview) the billing run: renewal invoices for services coming due. The same run
/// as `keel billing run`; safe to repeat.
#[utoipa::path(post, path = "/api/v1/billing/runs", tag = "billing", request_body = RunInput,
    responses((status = 200, body = Object, description = "The run's report"), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn billing_run(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Json(body): Json<RunInput>,
) -> Result<axum::Json<RunReport>, ApiError> {
    let as_of = match body.as_of.as_deref() {
        Some(t) => keel_app::billing::parse_date(t, "as_of")?,
        None => state.app.today(),
    };
    let report = billing_run::run(
        &state.app,
        &ctx,
        &RunOptions {
            as_of,
            dry_run: body.dry_run,
        },
        &|_| {},
    )
    .await?;
    Ok(axum::Json(report))
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

fn pdf_response(number: &str, bytes: Vec<u8>) -> axum::response::Response {
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
