//! Payments through gateway plugins: starting one, an invoice's attempts, its pay link, and
//! the hook the providers post their status updates to.

use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, IdempotencyKey, Json, Path, provider_reply, provider_request};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use keel_app::crash_points::{self, Point};
use keel_app::gateway_payments::{self, AttemptView, StartInput};
use keel_app::pay_links::PayLink;
use keel_domain::ids::InvoiceId;

/// The largest provider callback read (Paynow's status updates are a few hundred bytes);
/// a larger one is refused with 413 before any plugin sees it.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

pub fn router() -> Router<State> {
    Router::new()
        .route(
            "/invoices/{id}/attempts",
            get(list_attempts).post(start_attempt),
        )
        .route("/invoices/{id}/pay-link", get(pay_link))
}

/// The provider hooks, outside `/api/v1` and its authentication: a provider proves itself
/// to the plugin (a hash, a signature), not with a Keel key.
pub fn hooks() -> Router<State> {
    Router::new().route("/hooks/gateway/{gateway}", post(gateway_callback))
}

/// Start paying an invoice's balance at a gateway: answers with the attempt and what the
/// payer does next (a redirect URL, or instructions such as "approve on your phone"). The
/// same `Idempotency-Key` returns the same attempt.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/attempts", tag = "invoices", params(("id" = i64, Path),
    ("Idempotency-Key" = String, Header, description = "Required")), request_body = StartInput,
    responses((status = 201, body = AttemptView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start_attempt(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    IdempotencyKey(key): IdempotencyKey,
    Path(id): Path<i64>,
    Json(body): Json<StartInput>,
) -> Result<(StatusCode, axum::Json<AttemptView>), ApiError> {
    let attempt =
        gateway_payments::start(&state.app, &ctx, InvoiceId(id), &body, Some(&key)).await?;
    Ok((StatusCode::CREATED, axum::Json(attempt)))
}

/// An invoice's payment attempts, newest first, with their states.
#[utoipa::path(get, path = "/api/v1/invoices/{id}/attempts", tag = "invoices", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AttemptView>), (status = 404, body = ErrorBody)))]
pub async fn list_attempts(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<AttemptView>>, ApiError> {
    Ok(axum::Json(
        gateway_payments::attempts(&state.app, &ctx, InvoiceId(id)).await?,
    ))
}

/// The hook's path: the gateway plugin's id.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HookPath {
    /// The gateway plugin's id (`paynow`).
    #[param(schema_with = gateway_payments::gateway_schema)]
    pub gateway: String,
}

/// A signed pay link for the invoice: `{public_url}/pay/{token}`, a page where whoever holds
/// it sees the invoice and pays it through an enabled gateway, until `expires_at`
/// (`[payments] link_days`, 30 by default). Staff for any invoice; a client's or reseller's
/// key for one in its scope (another's is 404).
#[utoipa::path(get, path = "/api/v1/invoices/{id}/pay-link", tag = "invoices", params(("id" = i64, Path)),
    responses((status = 200, body = PayLink), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn pay_link(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<PayLink>, ApiError> {
    Ok(axum::Json(
        keel_app::pay_links::pay_link(&state.app, &ctx, InvoiceId(id)).await?,
    ))
}

/// A provider's status update for a payment, handed raw to the gateway plugin's
/// `verify-callback`, confirmed by polling, applied once. Answers what the plugin says to
/// answer; a forged or unknown update gets an error code and changes nothing.
#[utoipa::path(post, path = "/hooks/gateway/{gateway}", tag = "hooks", params(HookPath),
    responses((status = 200, description = "The plugin's reply to the provider"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn gateway_callback(
    state: axum::extract::State<State>,
    axum::extract::Path(gateway): axum::extract::Path<String>,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let inbound = provider_request(req, MAX_CALLBACK_BYTES).await?;
    let handled = gateway_payments::callback(&state.app, &gateway, inbound).await?;
    crash_points::reached(Point::BeforeReply, &handled.reference).await;
    Ok(provider_reply(handled.reply))
}
