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

/// Keys are 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
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
    let mut hasher = Sha256::new();
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        hasher.update(ct.as_bytes());
    }
    hasher.update(b"\n");
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());

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
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Err(e) = idempotency::complete(db, id, status.as_u16(), &text, state.app.now()).await {
        tracing::error!(error = %e, "could not store the response of an idempotent request");
    }
    Response::from_parts(res_parts, Body::from(body))
}
