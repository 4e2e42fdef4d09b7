//! Bearer API-key authentication for `/api/v1`, a per-key rate limit, and `last_used_at`
//! bookkeeping that stays off the request path.

use crate::State;
use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_app::Ctx;
use keel_domain::ids::ApiKeyId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Token buckets per key. A std mutex is right here: the critical section is a few
/// arithmetic operations and never awaits.
pub struct RateLimiter {
    per_second: u32,
    burst: u32,
    buckets: Mutex<HashMap<ApiKeyId, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second == 0` disables the limit.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second,
            burst: burst.max(per_second).max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` if the key may make a request now, else the seconds until it may.
    pub fn check(&self, key: ApiKeyId, now: Instant) -> Result<(), u64> {
        if self.per_second == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(key).or_insert((f64::from(self.burst), now));
        let refill = now.duration_since(*last).as_secs_f64() * f64::from(self.per_second);
        *tokens = (*tokens + refill).min(f64::from(self.burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / f64::from(self.per_second))
                .ceil()
                .max(1.0) as u64)
        }
    }
}

/// Remembers when each key's `last_used_at` was last written, so it is written at most
/// once a minute per key per process.
#[derive(Default)]
pub struct TouchThrottle(Mutex<HashMap<ApiKeyId, Instant>>);

impl TouchThrottle {
    fn due(&self, key: ApiKeyId, now: Instant) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&key) {
            Some(last) if now.duration_since(*last) < Duration::from_secs(60) => false,
            _ => {
                map.insert(key, now);
                true
            }
        }
    }
}

fn unauthorized(code: &str, message: &str) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"keel\""),
    );
    res
}

/// Authenticates the bearer key and puts the [`Ctx`] on the request.
pub async fn authenticate(
    axum::extract::State(state): axum::extract::State<State>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return unauthorized(
            "missing_credentials",
            "send an API key as: Authorization: Bearer keel_…",
        );
    };
    let Some(token) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string())
    else {
        return unauthorized(
            "malformed_authorization",
            "the Authorization header must be: Bearer <API key>",
        );
    };
    let (actor, key) = match keel_app::access::authenticate(&state.app, &token).await {
        Ok(found) => found,
        Err(keel_app::AppError::Unauthorized { code, message }) => {
            return unauthorized(code, &message);
        }
        Err(other) => return ApiError::from(other).into_response(),
    };
    let now = Instant::now();
    if let Err(retry) = state.limiter.check(key.id, now) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this API key; slow down",
        )
        .with_details(serde_json::json!({ "retry_after_secs": retry }));
        e.retry_after_secs = Some(retry);
        return e.into_response();
    }
    if state.touched.due(key.id, now) {
        let (db, at) = (state.app.db.clone(), state.app.now());
        tokio::spawn(async move {
            if let Err(e) = keel_store::staff::touch_api_key(&db, key.id, at).await {
                tracing::warn!(error = %e, key = %key.id, "could not record the key's last use");
            }
        });
    }
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ctx = Ctx { actor, request_id };
    req.extensions_mut().insert(ctx);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_refills_with_time() {
        let limiter = RateLimiter::new(2, 3);
        let key = ApiKeyId(1);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(key, t0).is_ok());
        }
        assert_eq!(limiter.check(key, t0), Err(1));
        assert!(limiter.check(key, t0 + Duration::from_millis(500)).is_ok());
        assert!(
            limiter.check(ApiKeyId(2), t0).is_ok(),
            "keys have their own buckets"
        );
        assert!(
            RateLimiter::new(0, 0).check(key, t0).is_ok(),
            "0 disables the limit"
        );
    }
}
