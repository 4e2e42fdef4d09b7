//! The one API error type. Every failure leaves the API as
//! `{"error": {"code", "message", "details"}}` with the status its variant names; internal
//! causes are logged with the request id and never echoed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keel_app::AppError;
use keel_domain::ledger::LedgerError;
use keel_domain::text::TextError;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, stable: `not_found`, `email_taken`, `idempotency_key_reused`, …
    /// One of `keel_api::codes::CODES`, each always with the same status.
    #[schema(schema_with = crate::codes::schema)]
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// Structured context: the offending `field`, the `differences`, limits.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// An error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Value,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        let code = code.into();
        debug_assert_eq!(
            crate::codes::status_of(&code),
            Some(status),
            "error code {code:?} must be listed in keel_api::codes::CODES with this status"
        );
        ApiError {
            status,
            code,
            message: message.into(),
            details: json!({}),
            retry_after_secs: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 422 `invalid_text`: `field` broke the stored-text rule (`keel_domain::text`);
    /// `details.problem` says how (`nul_character`, `control_character`, `bidi_control`,
    /// `invisible_character`, `too_long`, `empty`) and `details.max_chars` gives the limit.
    pub fn invalid_text(field: &str, error: TextError) -> ApiError {
        ApiError::unprocessable("invalid_text", format!("{field}: {error}")).with_details(json!({
            "field": field,
            "problem": error.problem.as_str(),
            "max_chars": error.max_chars,
        }))
    }

    /// A failure whose cause must not reach the client: logged here, with the request id
    /// attached by the caller's span.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("keel_api_errors_total", "code" => self.code.clone()).increment(1);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        match e {
            AppError::NotFound { what } => ApiError::not_found(what),
            AppError::Forbidden { permission } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
                    .with_details(json!({ "permission": permission }))
            }
            AppError::FieldForbidden { ref field, writers } => {
                let details = json!({ "field": field, "writable_by": writers });
                ApiError::new(StatusCode::FORBIDDEN, "field_not_writable", e.to_string())
                    .with_details(details)
            }
            AppError::Unauthorized { code, message } => {
                ApiError::new(status_for(code, StatusCode::UNAUTHORIZED), code, message)
            }
            AppError::Invalid {
                code,
                field,
                message,
            } => {
                let details = field.map_or(json!({}), |f| json!({ "field": f }));
                ApiError::new(
                    status_for(code, StatusCode::UNPROCESSABLE_ENTITY),
                    code,
                    message,
                )
                .with_details(details)
            }
            AppError::InvalidText { field, error } => ApiError::invalid_text(&field, error),
            AppError::Conflict { code, message } => {
                ApiError::new(status_for(code, StatusCode::CONFLICT), code, message)
            }
            AppError::NotConfigured { setting, message } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_configured", message)
                    .with_details(json!({ "setting": setting }))
            }
            AppError::Unavailable {
                code,
                message,
                retry_after,
            } => {
                let mut e = ApiError::new(
                    status_for(code, StatusCode::SERVICE_UNAVAILABLE),
                    code,
                    message,
                );
                e.retry_after_secs = retry_after.map(u64::from);
                e
            }
            AppError::Ledger(l) => ledger_error(l),
            AppError::Internal(cause) => ApiError::internal(&cause),
        }
    }
}

/// A use case's code gets the one status [`crate::codes::CODES`] gives it (an empty
/// `Idempotency-Key` is 400 from the use case as from the header check); `default`, the
/// status of the error's kind, only for a code missing there (which a debug build refuses).
fn status_for(code: &str, default: StatusCode) -> StatusCode {
    crate::codes::status_of(code).unwrap_or(default)
}

fn ledger_error(e: LedgerError) -> ApiError {
    let message = e.to_string();
    let e_code = e.code();
    match e {
        LedgerError::KeyReused { differences, .. } => {
            ApiError::unprocessable("idempotency_key_reused", message)
                .with_details(json!({ "differences": differences }))
        }
        LedgerError::InsufficientFunds {
            account,
            available,
            requested,
        } => ApiError::new(StatusCode::CONFLICT, e_code, message).with_details(json!({
            "account_id": account,
            "available_minor": available.minor(),
            "requested_minor": requested.minor(),
            "currency": available.currency(),
        })),
        LedgerError::UnknownAccount(_) | LedgerError::UnknownEntry(_) => {
            ApiError::new(StatusCode::NOT_FOUND, e.code(), message)
        }
        LedgerError::AlreadyReversed(_) => ApiError::new(StatusCode::CONFLICT, e.code(), message),
        other => ApiError::new(
            status_for(other.code(), StatusCode::UNPROCESSABLE_ENTITY),
            other.code(),
            message,
        ),
    }
}

/// The answer for a route that does not exist.
pub async fn no_route() -> ApiError {
    ApiError::not_found("route")
}

/// The answer for a method a route does not serve (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not serve this method; see the Allow header",
    )
}
