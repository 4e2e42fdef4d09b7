//! Dunning: policies and who follows them, an invoice's dunning steps, a dunning run on
//! demand, and the automation preview.

use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use keel_app::dunning::{
    self as uc, AssignInput, PoliciesView, PolicyInput, PolicyView, RunReport, StepView,
};
use keel_app::preview::{self, Preview};
use keel_domain::ids::InvoiceId;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<State> {
    Router::new()
        .route("/dunning/policies", get(list_policies).post(create_policy))
        .route("/dunning/policies/{id}", put(update_policy))
        .route("/dunning/assignments", put(assign_policy))
        .route("/dunning/runs", post(dunning_run))
        .route("/invoices/{id}/dunning", get(invoice_steps))
        .route("/automation/preview", get(automation_preview))
}

/// The default policy (from keel.toml) and the named ones.
#[utoipa::path(get, path = "/api/v1/dunning/policies", tag = "dunning",
    responses((status = 200, body = PoliciesView), (status = 403, body = ErrorBody)))]
pub async fn list_policies(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<PoliciesView>, ApiError> {
    Ok(axum::Json(uc::policies(&state.app, &ctx).await?))
}

/// Create a named policy. Fields left out of `policy` take Keel's default.
#[utoipa::path(post, path = "/api/v1/dunning/policies", tag = "dunning", request_body = PolicyInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 201, body = PolicyView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_policy(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<PolicyInput>,
) -> Result<(StatusCode, axum::Json<PolicyView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::create_policy_answering(&state.app, &ctx, &body, slot.answer(StatusCode::CREATED))
                .await?,
        ),
    ))
}

/// Replace a named policy (its name and its steps); steps already recorded stay.
#[utoipa::path(put, path = "/api/v1/dunning/policies/{id}", tag = "dunning", params(("id" = i64, Path)),
    request_body = PolicyInput,
    responses((status = 200, body = PolicyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_policy(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<PolicyInput>,
) -> Result<axum::Json<PolicyView>, ApiError> {
    Ok(axum::Json(
        uc::update_policy(&state.app, &ctx, id, &body).await?,
    ))
}

/// Name the policy a product, client or service follows (`policy_id: null` returns it to
/// the next level: service → client → product → default).
#[utoipa::path(put, path = "/api/v1/dunning/assignments", tag = "dunning", request_body = AssignInput,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign_policy(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Json(body): Json<AssignInput>,
) -> Result<StatusCode, ApiError> {
    uc::assign(&state.app, &ctx, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DunningRunInput {
    /// YYYY-MM-DD; default today.
    #[schema(value_type = Option<chrono::NaiveDate>)]
    pub as_of: Option<String>,
}

/// Record the dunning steps owed as of a day, each with the job that performs it (what the
/// `overdue` schedule does daily); safe to repeat.
#[utoipa::path(post, path = "/api/v1/dunning/runs", tag = "dunning", request_body = DunningRunInput,
    responses((status = 200, body = RunReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn dunning_run(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Json(body): Json<DunningRunInput>,
) -> Result<axum::Json<RunReport>, ApiError> {
    let as_of = match body.as_of.as_deref() {
        Some(t) => keel_app::billing::parse_date(t, "as_of")?,
        None => state.app.today(),
    };
    Ok(axum::Json(uc::run(&state.app, &ctx, as_of).await?))
}

/// An invoice's dunning steps: taken, held, skipped (and why).
#[utoipa::path(get, path = "/api/v1/invoices/{id}/dunning", tag = "dunning", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<StepView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn invoice_steps(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<StepView>>, ApiError> {
    Ok(axum::Json(
        uc::steps(&state.app, &ctx, InvoiceId(id)).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// 1 to 366; default 30.
    #[param(schema_with = keel_app::preview::days_schema)]
    pub days: Option<u32>,
}

/// What automation would do from today, day by day: invoices, reminders, late fees,
/// suspensions, terminations, cancellations, with totals. Changes nothing.
#[utoipa::path(get, path = "/api/v1/automation/preview", tag = "dunning", params(PreviewQuery),
    responses((status = 200, body = Preview), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn automation_preview(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<PreviewQuery>,
) -> Result<axum::Json<Preview>, ApiError> {
    Ok(axum::Json(
        preview::preview(&state.app, &ctx, q.days.unwrap_or(30)).await?,
    ))
}
