//! `Idempotency-Key` on unsafe requests, with Stripe's semantics.
//!
//! The first request under a key (per authenticated principal) runs and its response is
//! stored; a retry with the same method, path and body gets the stored response again with
//! `Idempotent-Replayed: true`; the same key with a different request is 422
//! `idempotency_key_reused`; a retry while the first is still running is 409
//! `idempotency_key_in_use`. Responses that say the request did nothing — 401, 429 and
//! server errors — are not stored, so the client may retry them. Routes that move money
//! also derive their ledger entry key from this key, so even a retry after a crash between
//! commit and storing the response cannot post twice.
//!
//! Routes whose retry would otherwise run again or be refused by their own first attempt
//! (creating a client, an API key, a webhook endpoint, a draft; a payment, a plan change, a
//! ping, a delivery replay) hand the key's slot to their use case
//! ([`crate::extract::IdempotencySlot`]), which stores the answer in its own transaction
//! ([`keel_app::Answer`]): the answer commits with the change, so a retry after a crash at
//! any point is a replay. The first answer stored is kept; this layer's own store after the
//! handler then changes nothing.
//!
//! A response that shows a secret once (a new API key, a new webhook endpoint's signing
//! secret) is marked by its route with [`ShownOnce`]. Its secret is never stored: the table
//! would hand live credentials to anyone reading the database or a backup. A retry of such
//! a request gets 409 `idempotent_secret_not_replayed` (with `Idempotent-Replayed: true`)
//! whose `details` hold the first answer's `status` and its `resource` without the secret
//! fields (named in `details.withheld`). A 409 rather than the 201 without its secret, so
//! a client library cannot mistake the replay for a usable answer: the request did take
//! effect (find it by `details.resource.id`), and the secret is only in the first answer;
//! revoke the key (or delete the endpoint) and create another if that answer was lost.
//!
//! Stored answers are kept `[server] idempotency_keep_hours` (24 by default); the daily
//! cleanup job purges older ones.

use crate::State;
use crate::error::ApiError;
use crate::extract::{IdempotencyKey, too_large};
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_app::Ctx;
use keel_store::idempotency::{self, Begin};
use sha2::{Digest, Sha256};

/// Marks a response that shows a secret once: the top-level fields named here are
/// withheld from the stored answer, and a retry gets 409 `idempotent_secret_not_replayed`
/// (see the module docs). A route returns it as a response part:
/// `(StatusCode::CREATED, Extension(ShownOnce(&["secret"])), Json(created))`.
#[derive(Debug, Clone, Copy)]
pub struct ShownOnce(pub &'static [&'static str]);

/// The mark of an answer whose `secret` field is shown once (a new API key, a new webhook
/// endpoint): the route returns it and hands it to its use case's stored answer
/// ([`crate::extract::IdempotencySlot::answer_withholding`]), so both store one form.
pub static SECRET_SHOWN_ONCE: ShownOnce = ShownOnce(&["secret"]);

/// A use case that stores its own answer ([`keel_app::Answer`]) stores a secret-bearing
/// one in the same withheld form as the layer: one function makes both.
impl keel_app::AnswerForm for ShownOnce {
    fn stored(&self, status: u16, body: &str) -> (u16, String) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let (stored, text) = withheld_answer(status, body.as_bytes(), *self);
        (stored.as_u16(), text)
    }
}

/// The error code of a replay whose first answer showed a secret.
pub const SECRET_NOT_REPLAYED: &str = "idempotent_secret_not_replayed";

/// What is stored for a secret-bearing answer: the replay's refusal, holding the answer
/// without the withheld fields. A body that is not a JSON object keeps nothing of it (it
/// cannot be told apart from its secret).
fn withheld_answer(status: StatusCode, body: &[u8], shown_once: ShownOnce) -> (StatusCode, String) {
    let resource = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut fields)) => {
            for name in shown_once.0 {
                fields.remove(*name);
            }
            serde_json::Value::Object(fields)
        }
        _ => serde_json::Value::Null,
    };
    let refusal = crate::error::ErrorBody {
        error: crate::error::ErrorDetail {
            code: SECRET_NOT_REPLAYED.to_string(),
            message: format!(
                "the first request with this Idempotency-Key succeeded ({}) and its answer showed a secret ({}) that Keel does not keep; details.resource is that answer without it. If the first answer was lost, revoke or delete the resource and create a new one",
                status.as_u16(),
                shown_once.0.join(", ")
            ),
            details: serde_json::json!({
                "status": status.as_u16(),
                "withheld": shown_once.0,
                "resource": resource,
            }),
        },
    };
    (
        StatusCode::CONFLICT,
        serde_json::to_string(&refusal).expect("an error body serializes"),
    )
}

/// Keys are 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// What identifies a request's content under its key: SHA-256 of its content type and body.
pub fn request_hash(content_type: Option<&[u8]>, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    if let Some(ct) = content_type {
        hasher.update(ct);
    }
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

pub async fn layer(
    axum::extract::State(state): axum::extract::State<State>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get("idempotency-key") else {
        return next.run(req).await;
    };
    let Some(key) = raw
        .to_str()
        .ok()
        .filter(|k| valid_key(k))
        .map(str::to_string)
    else {
        return ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
        .into_response();
    };
    let Some(ctx) = req.extensions().get::<Ctx>().cloned() else {
        return ApiError::internal(&"idempotency layer runs before authentication").into_response();
    };
    let principal = keel_app::ledger::principal(&ctx.actor);
    let method = req.method().to_string();
    // The full path (the router is nested under /api/v1, which strips the prefix from the URI).
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |o| o.path().to_string());
    let (mut parts, body) = req.into_parts();
    let bytes = match to_bytes(body, state.config.body_limit_bytes).await {
        Ok(b) => b,
        Err(_) => return too_large().into_response(),
    };
    let request_hash = request_hash(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes),
        &bytes,
    );

    let db = &state.app.db;
    let lock_timeout = chrono::Duration::from_std(state.config.idempotency_lock_timeout)
        .unwrap_or(idempotency::LOCK_TIMEOUT);
    let begun = match idempotency::begin_with_timeout(
        db,
        &principal,
        &key,
        &method,
        &path,
        &request_hash,
        state.app.now(),
        lock_timeout,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let id = match begun {
        Begin::Started(id) => id,
        Begin::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let has_body = !body.is_empty();
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = status;
            if has_body {
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return res;
        }
        Begin::Mismatch { differs } => {
            return ApiError::unprocessable(
                "idempotency_key_reused",
                format!(
                    "this Idempotency-Key was already used for a different request (its {} {}); use a new key for a new request",
                    differs.join(" and "),
                    if differs.len() == 1 { "differs" } else { "differ" }
                ),
            )
            .with_details(serde_json::json!({ "differences": differs }))
            .into_response();
        }
        Begin::InProgress => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .into_response();
        }
    };

    parts.extensions.insert(IdempotencyKey(key));
    parts.extensions.insert(crate::extract::SlotId(id));
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = res.status();
    if status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        if let Err(e) = idempotency::release(db, id).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
        return res;
    }
    let (res_parts, res_body) = res.into_parts();
    let body = match to_bytes(res_body, 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let (stored_status, text) = match res_parts.extensions.get::<ShownOnce>() {
        Some(shown_once) => withheld_answer(status, &body, *shown_once),
        None => (status, String::from_utf8_lossy(&body).into_owned()),
    };
    if let Err(e) =
        idempotency::complete(db, id, stored_status.as_u16(), &text, state.app.now()).await
    {
        tracing::error!(error = %e, "could not store the response of an idempotent request");
    }
    Response::from_parts(res_parts, Body::from(body))
}
