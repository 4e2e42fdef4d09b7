//! The billing run, started by staff (`POST /billing/runs`).

use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json};
use axum::Router;
use axum::routing::post;
use keel_app::billing_run::{self, RunOptions, RunReport};
use serde::Deserialize;
use utoipa::ToSchema;

pub fn router() -> Router<State> {
    Router::new().route("/billing/runs", post(billing_run))
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
