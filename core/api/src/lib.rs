//! keel-api: the only crate that knows HTTP.
//!
//! Where things are:
//! - [`router`] and [`serve`]: the axum app and its layers (request id, tracing, metrics,
//!   timeout, body limit), `serve` taking a bound listener and a shutdown future.
//! - [`error`]: [`error::ApiError`], the one error type; owns the HTTP mapping.
//! - [`extract`]: JSON bodies and queries with field-naming errors, the authenticated
//!   context, the idempotency key.
//! - [`auth`]: bearer API keys, per-key rate limits.
//! - [`idempotency`]: `Idempotency-Key` replays (Stripe's semantics).
//! - [`routes`]: one module per resource under `/api/v1`; `ops` for health and metrics.
//! - [`openapi`]: the generated OpenAPI document and the docs page.
//! - [`replay`]: a loopback server of recorded provider replies, for `keel plugin test`.
//! - [`pages`]: the web pages (server-rendered minijinja templates, embedded, a theme folder
//!   may replace them; guard headers): the pay page of a pay link under `/pay`.

pub mod auth;
pub mod codes;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod pages;
pub mod replay;
pub mod routes;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keel_app::App;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// HTTP settings (from `[server]` in keel.toml).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Requests per second per API key; 0 = no limit.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// How long an unfinished idempotent request owns its key before a retry may run it
    /// again (the first attempt's process died).
    pub idempotency_lock_timeout: Duration,
    /// When set, `/metrics` and `/readyz` answer only `Authorization: Bearer <token>` (401
    /// otherwise): both tell an outsider about the host (traffic, routes, the engine).
    pub metrics_token: Option<OpsToken>,
    /// The host's theme folder (`[server] theme_dir`): `web/<name>` there replaces the
    /// built-in page template `name` (see [`pages::TEMPLATES`]).
    pub theme_dir: Option<std::path::PathBuf>,
}

/// The bearer token of `/metrics` and `/readyz` (`[server] metrics_token`). `Debug` shows
/// `***`, so the config can be logged.
#[derive(Clone)]
pub struct OpsToken(Arc<str>);

impl OpsToken {
    pub fn new(token: impl Into<String>) -> OpsToken {
        OpsToken(token.into().into())
    }

    /// Compares in time that depends on the lengths only, so timing does not reveal how
    /// much of a guess was right.
    fn matches(&self, given: &str) -> bool {
        let (want, got) = (self.0.as_bytes(), given.as_bytes());
        want.len() == got.len() && want.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for OpsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Guards `/metrics` and `/readyz` with `[server] metrics_token` when one is set.
async fn ops_token(
    axum::extract::State(state): axum::extract::State<State>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.config.metrics_token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| token.matches(g.trim())) {
        return next.run(req).await;
    }
    let mut res = error::ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_metrics_token",
        "this route needs Authorization: Bearer <server.metrics_token>",
    )
    .into_response();
    res.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"keel-ops\""),
    );
    res
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            request_timeout: Duration::from_secs(30),
            body_limit_bytes: 1024 * 1024,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            idempotency_lock_timeout: Duration::from_secs(60),
            metrics_token: None,
            theme_dir: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct State {
    pub app: App,
    pub config: Arc<ApiConfig>,
    pub limiter: Arc<auth::RateLimiter>,
    pub touched: Arc<auth::TouchThrottle>,
    pub metrics: Option<PrometheusHandle>,
    pub openapi: Arc<str>,
    pub docs_html: Arc<str>,
    /// The web pages' templates.
    pub pages: Arc<pages::Templates>,
}

/// The process-wide Prometheus recorder (a recorder is global: installed once, shared by
/// every server in the process, as tests start many).
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .clone()
}

impl State {
    pub fn new(app: App, config: ApiConfig) -> State {
        State {
            limiter: Arc::new(auth::RateLimiter::new(
                config.rate_limit_per_second,
                config.rate_limit_burst,
            )),
            touched: Arc::new(auth::TouchThrottle::default()),
            metrics: metrics_handle(),
            openapi: openapi::document().into(),
            docs_html: openapi::docs_page().into(),
            // `keel serve` checked the theme before it got here ([`pages::Templates::load`]);
            // should it have changed since, the built-in pages are served and the cause logged.
            pages: Arc::new(
                pages::Templates::load(config.theme_dir.as_deref()).unwrap_or_else(|e| {
                    tracing::error!("the theme's web templates are not used: {e}");
                    pages::Templates::builtin()
                }),
            ),
            config: Arc::new(config),
            app,
        }
    }
}

async fn timeout(
    axum::extract::State(state): axum::extract::State<State>,
    req: Request,
    next: Next,
) -> Response {
    // A person's page (the pay pages, but not their JSON status) gets the error as a page.
    let path = req.uri().path();
    let page = path.starts_with("/pay/") && !path.starts_with("/pay/status/");
    match tokio::time::timeout(state.config.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) if page => pages::pay::refuse(
            &state,
            &error::ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                "This took too long to answer and was stopped. Open your pay link again in a \
                 moment: it shows a payment already started, so nothing is paid twice.",
            ),
        ),
        Err(_) => error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            "the request took too long and was stopped",
        )
        .into_response(),
    }
}

/// Request count by method, route and status, and latency by method and route. Labels are
/// static strings where they can be (this runs on every request).
async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method: &'static str = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::HEAD => "HEAD",
        _ => "OTHER",
    };
    let res = next.run(req).await;
    let status = res.status().as_str().to_string();
    metrics::counter!("keel_http_requests_total", "method" => method, "path" => path.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("keel_http_request_duration_seconds", "method" => method, "path" => path)
        .record(start.elapsed().as_secs_f64());
    res
}

/// Request ids: a random per-process prefix and a counter. Unique without a system call
/// per request (a v4 UUID asks the OS for randomness every time).
#[derive(Clone)]
struct MakeRequestId {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl MakeRequestId {
    fn new() -> MakeRequestId {
        let prefix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        MakeRequestId {
            prefix: prefix.into(),
            next: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        }
    }
}

impl tower_http::request_id::MakeRequestId for MakeRequestId {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// The longest client `X-Request-Id` kept, in bytes (a UUID is 36, a W3C traceparent 55).
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// A client's `X-Request-Id` is kept (echoed, logged, written to audit rows) only if it is
/// 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters (`!` to `~`): anything else (spaces,
/// control or non-ASCII bytes, a kilobyte of text) could forge log lines or bloat every
/// audit row, so it is dropped here and [`MakeRequestId`] gives the request its own id.
pub fn usable_request_id(value: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&value.len()) && value.iter().all(|b| b.is_ascii_graphic())
}

/// Runs before `SetRequestIdLayer`, which keeps any id it finds: removes an unusable one.
async fn drop_unusable_request_id(mut req: Request, next: Next) -> Response {
    let headers = req.headers_mut();
    let all_usable = headers
        .get_all("x-request-id")
        .iter()
        .all(|v| usable_request_id(v.as_bytes()));
    if !all_usable || headers.get_all("x-request-id").iter().count() > 1 {
        headers.remove("x-request-id");
    }
    next.run(req).await
}

/// The whole HTTP app.
pub fn router(state: State) -> Router {
    let api = Router::new()
        .merge(routes::clients::router())
        .merge(routes::access::router())
        .merge(routes::ledger::router())
        .merge(routes::orders::router())
        .merge(routes::invoices::router())
        .merge(routes::payments::router())
        .merge(routes::gateway_payments::router())
        .merge(routes::credit_notes::router())
        .merge(routes::services::router())
        .merge(routes::billing_run::router())
        .merge(routes::catalog::router())
        .merge(routes::wallets::router())
        .merge(routes::jobs::router())
        .merge(routes::dunning::router())
        .merge(routes::webhooks::router())
        .merge(routes::notifications::router())
        .method_not_allowed_fallback(error::method_not_allowed)
        // Timeouts guard the routes that do work; /healthz touches nothing and skips the timer.
        .layer(from_fn_with_state(state.clone(), timeout))
        .layer(from_fn_with_state(state.clone(), idempotency::layer))
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    let public = Router::new()
        .route("/openapi.json", get(routes::ops::openapi_json))
        .route("/docs", get(routes::ops::docs));
    Router::new()
        .route("/healthz", get(routes::ops::healthz))
        .route(
            "/readyz",
            get(routes::ops::readyz)
                .layer(from_fn_with_state(state.clone(), timeout))
                .layer(from_fn_with_state(state.clone(), ops_token)),
        )
        .route(
            "/metrics",
            get(routes::ops::metrics).layer(from_fn_with_state(state.clone(), ops_token)),
        )
        .merge(
            routes::gateway_payments::hooks()
                .layer(from_fn_with_state(state.clone(), timeout)),
        )
        .merge(routes::notifications::hooks().layer(from_fn_with_state(state.clone(), timeout)))
        .merge(pages::pay::router().layer(from_fn_with_state(state.clone(), timeout)))
        .nest("/api/v1", public.merge(api))
        .fallback(error::no_route)
        .layer(from_fn(extract::refuse_nul))
        .layer(axum::extract::DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestId::new()))
        .layer(from_fn(drop_unusable_request_id))
        .with_state(state)
}

/// Serves until `shutdown` completes, then drains in-flight requests. Accepted sockets get
/// TCP_NODELAY (Nagle's algorithm costs milliseconds at p99 on small replies).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // The recorder was built without its exporter task, so its upkeep (draining histogram
    // samples into their summaries) is ours to run; without it samples pile up in memory.
    let upkeep = state.metrics.clone().map(|handle| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        })
    });
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(task) = upkeep {
        task.abort();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn state(timeout: Duration) -> State {
        let db = keel_store::Db::connect("sqlite::memory:", &Default::default())
            .await
            .expect("in-memory SQLite");
        State::new(
            App::new(db),
            ApiConfig {
                request_timeout: timeout,
                ..ApiConfig::default()
            },
        )
    }

    #[tokio::test]
    async fn a_request_that_outlives_the_timeout_is_stopped_with_a_503() {
        let state = state(Duration::from_secs(2)).await;
        // Paused time runs the handlers' sleeps instantly and in order: no waiting, no flakes.
        tokio::time::pause();
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "late"
                }),
            )
            .route(
                "/quick",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    "on time"
                }),
            )
            .layer(from_fn_with_state(state.clone(), timeout))
            .with_state(state);
        let slow = app
            .clone()
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(slow.into_body(), 4096).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "request_timeout");
        let quick = app
            .oneshot(Request::get("/quick").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(quick.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_pay_page_that_outlives_the_timeout_is_a_page_not_json() {
        let state = state(Duration::from_secs(2)).await;
        tokio::time::pause();
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late"
        };
        let app = Router::new()
            .route("/pay/{token}", get(slow))
            .route("/pay/status/{reference}", get(slow))
            .layer(from_fn_with_state(state.clone(), timeout))
            .with_state(state);
        let page = app
            .clone()
            .oneshot(Request::get("/pay/v1.1.2.ab").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        let kind = page.headers()[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(kind.starts_with("text/html"), "{kind}");
        let body = axum::body::to_bytes(page.into_body(), 64 * 1024)
            .await
            .unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains("Open your pay link again"), "{html}");
        // The status endpoint a script reads stays JSON.
        let status = app
            .oneshot(Request::get("/pay/status/R-1").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(status.into_body(), 4096)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "request_timeout");
    }
}
