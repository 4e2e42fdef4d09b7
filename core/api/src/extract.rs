//! Request extractors with Keel's error shape: JSON bodies that name the offending field,
//! query strings, the authenticated context and the idempotency key.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use keel_app::Ctx;
use serde::de::DeserializeOwned;
use serde_json::json;

/// A JSON body. Syntax errors are 400 `invalid_json`; a body that parses but does not fit
/// (unknown, missing or invalid field) is 422 with `details.field` naming the path; a
/// string holding NUL is 422 `invalid_text` and a date outside the accepted years 422
/// `invalid_date`, on every route (see [`parse_json`]).
pub struct Json<T>(pub T);

/// Fields whose own validation gives the error its code (`invalid_email`, …).
const VALIDATED: &[(&str, &str)] = &[
    ("email", "invalid_email"),
    ("country", "invalid_country"),
    ("phone", "invalid_phone"),
    ("language", "invalid_language"),
    ("currency", "unknown_currency"),
];

pub(crate) fn body_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.inner();
    match inner.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {inner}"),
        ),
        serde_json::error::Category::Data => {
            let message = inner.to_string();
            let text = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            let last = path
                .rsplit('.')
                .next()
                .unwrap_or("")
                .trim_end_matches(|c: char| c == ']' || c.is_ascii_digit() || c == '[');
            let code = if text.starts_with("unknown field") {
                "unknown_field"
            } else if text.starts_with("missing field") {
                "missing_field"
            } else if text.starts_with("invalid type") || text.starts_with("invalid value") {
                "wrong_type"
            } else if let Some((_, code)) = VALIDATED.iter().find(|(f, _)| *f == last) {
                code
            } else {
                "invalid_field"
            };
            let mut field = if path == "." { String::new() } else { path };
            // "missing field `email`" is reported at the enclosing object: name the field.
            if let Some(name) = text
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
            {
                field = if field.is_empty() {
                    name.to_string()
                } else {
                    format!("{field}.{name}")
                };
            }
            let message = if field.is_empty() {
                text
            } else {
                format!("{field}: {text}")
            };
            ApiError::unprocessable(code, message).with_details(json!({ "field": field }))
        }
    }
}

/// Parses a JSON body with Keel's error shape (also used by the idempotency layer's tests).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request needs a JSON body",
        ));
    }
    // Syntax first, fit second: serde_json reports some type errors (a number where an
    // enum is expected) as syntax errors when it deserializes straight from text.
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    check_strings(&json, &mut String::new())?;
    serde_path_to_error::deserialize(json).map_err(body_error)
}

/// The guard every body passes, whatever its route: no string (or key) may hold NUL, which
/// PostgreSQL text cannot store (a 500 on one engine, stored on the other), and no string
/// that is a whole date or timestamp may fall outside `keel_domain::dates::YEARS`. Fields'
/// own rules (`keel_domain::text`) run later in the use cases; this makes sure no route
/// forgets the two that break the database. `path` is built like serde_path_to_error's
/// (`items[0].label`), so `details.field` reads the same as other body errors.
fn check_strings(value: &serde_json::Value, path: &mut String) -> Result<(), ApiError> {
    use serde_json::Value;
    match value {
        Value::String(s) => check_string(s, path),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_strings(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if key.contains('\0') {
                    return Err(nul_in_text(path));
                }
                check_strings(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn check_string(s: &str, field: &str) -> Result<(), ApiError> {
    if s.contains('\0') {
        return Err(nul_in_text(field));
    }
    // A text starting with a sign is left to its field: "+12025-05-12" is a phone number
    // as much as a year-12025 date, and the date fields check their years themselves
    // (`keel_app::billing::parse_date`, the use cases' typed dates).
    if !s.starts_with(['+', '-'])
        && let Some(date) = keel_domain::dates::parse_any(s)
    {
        keel_domain::dates::check(date).map_err(|e| invalid_date(field, e))?;
    }
    Ok(())
}

/// 422 `invalid_text` / `nul_character` for a body string holding U+0000.
fn nul_in_text(field: &str) -> ApiError {
    ApiError::invalid_text(
        field,
        keel_domain::text::TextError {
            problem: keel_domain::text::Problem::NulCharacter,
            max_chars: 0,
        },
    )
}

/// 422 `invalid_date`: a date outside the years Keel accepts (`0000-01-01`, `+10000-…`).
fn invalid_date(field: &str, e: keel_domain::dates::YearOutOfRange) -> ApiError {
    let (from, to) = (
        *keel_domain::dates::YEARS.start(),
        *keel_domain::dates::YEARS.end(),
    );
    ApiError::unprocessable("invalid_date", format!("{field}: {e}")).with_details(json!({
        "field": field,
        "year": e.year,
        "min_year": from,
        "max_year": to,
    }))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request("invalid_body", r.body_text())
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than this server accepts",
    )
}

/// A query string, with the same error shape as bodies (400 `invalid_query`); a date
/// outside `keel_domain::dates::YEARS` is 422 `invalid_date` naming the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        // NUL anywhere in the URI was refused by `refuse_nul`; dates are checked here, as
        // in bodies, whatever the parameter.
        for (name, value) in form_urlencoded::parse(q.as_bytes()) {
            check_string(&value, &name)?;
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                ApiError::bad_request("invalid_query", format!("{}: {}", e.path(), e.inner()))
            })
    }
}

/// The authenticated context the auth layer put on the request.
pub struct Auth(pub Ctx);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| ApiError::internal(&"route is missing the authentication layer"))
    }
}

/// The request's `Idempotency-Key`, required by routes that move money.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<IdempotencyKey>().cloned().ok_or_else(|| {
            ApiError::bad_request(
                "idempotency_key_required",
                "this request moves money: send an Idempotency-Key header so a retry cannot move it twice",
            )
        })
    }
}

/// The stored slot of the request's `Idempotency-Key`, when it has one: a use case that
/// stores its own answer ([`keel_app::Answer`]) writes it there, in its transaction.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencySlot(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencySlot {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(IdempotencySlot(
            parts.extensions.get::<SlotId>().map(|s| s.0),
        ))
    }
}

impl IdempotencySlot {
    /// The answer a use case stores for this request, with the status the route answers.
    pub fn answer(self, status: axum::http::StatusCode) -> Option<keel_app::Answer> {
        self.0
            .map(|slot| keel_app::Answer::new(slot, status.as_u16()))
    }

    /// The answer of a route whose answer shows a secret once (`shown_once`, the same
    /// marker the route returns): the use case stores it withheld, exactly as the layer
    /// would, so even a retry after a crash gets 409 `idempotent_secret_not_replayed`.
    pub fn answer_withholding(
        self,
        status: axum::http::StatusCode,
        shown_once: &'static crate::idempotency::ShownOnce,
    ) -> Option<keel_app::Answer> {
        self.0.map(|slot| keel_app::Answer {
            form: Some(shown_once),
            ..keel_app::Answer::new(slot, status.as_u16())
        })
    }
}

/// The layer's record of a request's idempotency slot (see [`IdempotencySlot`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotId(pub i64);

/// A path parameter; one that does not parse (`/clients/abc`) names nothing that exists.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// Refuses, on every route, a path or query string that decodes to U+0000 (`%00`): 400
/// `nul_character`. PostgreSQL text cannot hold NUL, so a string path id or search query
/// carrying one would otherwise reach the database and fail there with a 500.
pub async fn refuse_nul(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let decodes_to_nul = |raw: &str| raw.contains('\0') || percent_decodes_to_nul(raw.as_bytes());
    let part = if decodes_to_nul(req.uri().path()) {
        Some("path")
    } else if req.uri().query().is_some_and(decodes_to_nul) {
        Some("query")
    } else {
        None
    };
    match part {
        Some(part) => ApiError::bad_request(
            "nul_character",
            format!("the {part} holds a NUL character (%00), which no Keel value may contain"),
        )
        .with_details(json!({ "in": part }))
        .into_response(),
        None => next.run(req).await,
    }
}

/// True if `raw` holds `%00` (either case of hex digits does not matter for zeros).
fn percent_decodes_to_nul(raw: &[u8]) -> bool {
    raw.windows(3).any(|w| w == b"%00")
}

/// A provider's request to a hook (`/hooks/gateway/…`, `/hooks/notifier/…`), read whole (at
/// most `limit` bytes, else 413 before any plugin sees it) and handed over as the plugin
/// takes it: method, query, headers and the raw body, byte for byte, without the credentials
/// meant for Keel (`Authorization`, `Cookie`), which never reach a plugin.
pub async fn provider_request(
    req: Request,
    limit: usize,
) -> Result<keel_app::gateway_payments::InboundRequest, ApiError> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    Ok(keel_app::gateway_payments::InboundRequest {
        method: parts.method.to_string(),
        path: "/".to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .filter(|(name, _)| *name != header::AUTHORIZATION && *name != header::COOKIE)
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    })
}

/// What a plugin said to answer a provider with, as the hook's response.
pub fn provider_reply(reply: keel_app::gateway_payments::InboundReply) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut res = (status, reply.body).into_response();
    if let Some(ct) = reply.content_type
        && let Ok(v) = axum::http::HeaderValue::from_str(&ct)
    {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    for (name, value) in reply.headers {
        let parsed = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        );
        match parsed {
            (Ok(n), Ok(v)) if !KERNELS_HEADERS.contains(&n) => {
                res.headers_mut().append(n, v);
            }
            _ => tracing::warn!(
                header = %name,
                "a plugin's reply header was dropped: the kernel sets it, or it is not a valid header"
            ),
        }
    }
    res
}

/// Headers of a provider reply the kernel sets itself: a plugin's are dropped.
const KERNELS_HEADERS: [header::HeaderName; 6] = [
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::SET_COOKIE,
    header::UPGRADE,
];
