//! Signed outgoing webhooks: endpoints, events written with the change that caused them,
//! and their delivery (docs/webhooks.md has the contract a receiver relies on).
//!
//! - [`crate::events::emit`] is called inside the causing use case's transaction. It reads the enabled
//!   endpoints' subscriptions (one small read) and writes nothing when none wants the
//!   event; otherwise the event, one delivery per endpoint and a `webhook.deliver` job each.
//! - The `webhook.deliver` handler ([`deliver`]) claims the delivery (pending, due, its
//!   endpoint enabled, no earlier pending delivery of the same subject to that endpoint),
//!   POSTs the event's body signed with the endpoint's secret ([`signature_header`]) under
//!   a timeout, and records the attempt: a 2xx delivers it; anything else waits for the
//!   next step of [`RETRY_DELAYS`] (jittered up by at most a tenth) and after the last one
//!   fails it for good. A finished delivery wakes the next one of its subject.
//! - Staff manage endpoints (created with a secret shown once), read an endpoint's delivery
//!   log, replay a delivery and send a ping; all with the `automation:manage` permission
//!   (webhooks are automation that talks to the host's own systems: the same admins), and
//!   every change is audited.
//!
//! - Endpoints may not be aimed at the host's own network (SSRF): a URL whose host is, or
//!   resolves to, a loopback, private, link-local or other special address
//!   (`keel_domain::network`) is refused at creation (422 `webhook_url_not_allowed`) and at
//!   every delivery (each resolved address, redirects never followed, no proxy), unless
//!   `[webhooks] allow_networks` ([`Settings`]) lists its network. A ping's answer is not
//!   kept, so the ping cannot be used to read internal pages.
//!
//! Time comes from the application's clock only, so tests fast-forward through the retries.

use crate::audit::record;
use crate::events::EventType;
use crate::jobs::app_of;
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use keel_domain::access::Permission;
use keel_domain::network::{self, Network};
use keel_domain::text::{Rule, limits};
use keel_jobs::{Env, Handler, JobError};
use keel_store::Page;
use keel_store::jobs::JobRecord;
use keel_store::webhooks::{
    self as store, AttemptRecord, Claimed, DeliveryRecord, DeliveryState, EndpointChange,
    EndpointRecord, EventRecord, Outcome,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use utoipa::ToSchema;

// ---------------------------------------------------------------------------------------
// Events

/// The event of `POST /api/v1/webhooks/endpoints/{id}/test`: sent to that endpoint only.
pub const PING: &str = "webhook.ping";

/// The waits after each failed attempt: attempt 1 is at once, attempt 2 a minute after it
/// fails, …, attempt 8 a day after the 7th; when the 8th fails the delivery is failed.
/// From the first attempt to the last is at least 41 h 36 min, so a receiver that is down
/// for a day still gets every event. Each wait is jittered up by at most a tenth.
pub const RETRY_DELAYS: [Duration; 7] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(24 * 3600),
];

/// How long one POST may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The oldest or newest signature timestamp [`verify`] accepts by default.
pub const DEFAULT_TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

/// When attempt `attempt` (1-based) failed at `now`: its next attempt, or `None` when it was
/// the last.
pub fn next_attempt(attempt: i32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    use rand::Rng;
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    let delay = *RETRY_DELAYS.get(index)?;
    let jitter_ms = u64::try_from(delay.as_millis() / 10).unwrap_or(0);
    let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms));
    Some(now + chrono::Duration::from_std(delay + jitter).ok()?)
}

// ---------------------------------------------------------------------------------------
// Signatures

type HmacSha256 = Hmac<Sha256>;

/// The hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret` (its UTF-8 bytes).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `Keel-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Why [`verify`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is not t=<seconds>,v1=<hex>")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// Checks a `Keel-Signature` header against the raw body: its timestamp is within
/// `tolerance` of `now`, and one of its `v1` values is the HMAC of `"{t}.{body}"` (compared
/// in constant time). What a receiver does before trusting a request.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: chrono::Duration,
) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                timestamp = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?);
            }
            Some(("v1", v)) => signatures.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            Some(_) => {} // other schemes, for later versions
            None => return Err(VerifyError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if (now.timestamp() - timestamp).abs() > tolerance.num_seconds() {
        return Err(VerifyError::Stale);
    }
    for signature in signatures {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

/// The body POSTed for an event: `{id, type, subject, occurred_at, data}`; the same bytes
/// for every attempt and endpoint.
pub fn body(event: &EventRecord) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        id: i64,
        #[serde(rename = "type")]
        event_type: &'a str,
        subject: &'a str,
        occurred_at: DateTime<Utc>,
        data: &'a Value,
    }
    serde_json::to_vec(&Envelope {
        id: event.id,
        event_type: &event.event_type,
        subject: &event.subject,
        occurred_at: event.occurred_at,
        data: &event.data,
    })
    .expect("an event serializes")
}

// ---------------------------------------------------------------------------------------
// Delivery

fn deliver_job<'a>(env: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let app = app_of(env)?;
        let id = crate::jobs::payload_id(job, "delivery_id")?;
        deliver(app, id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        Ok(())
    })
}

inventory::submit! { Handler { kind: store::DELIVER, run: deliver_job } }

/// Where webhooks may go (`[webhooks]`): besides public addresses, only the special networks
/// (loopback, private, link-local, …; `keel_domain::network`) the admin lists.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Special networks endpoints may be in (`allow_networks = ["10.0.0.0/8"]`); none by
    /// default, so an endpoint cannot be aimed at the host's own network.
    pub allow_networks: Vec<Network>,
}

/// The settings and the HTTP client built from them (once, on the first delivery).
#[derive(Debug, Default)]
pub struct Outbound {
    settings: Settings,
    client: OnceLock<reqwest::Client>,
}

impl Outbound {
    pub fn new(settings: Settings) -> Outbound {
        Outbound {
            settings,
            client: OnceLock::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `Ok` when `ip` is public or in an allowed network.
    fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        network::check_ip(ip, &self.settings.allow_networks, "webhooks.allow_networks")
    }

    /// The client: no proxy (a proxy would resolve the name itself, out of the guard's
    /// sight), no redirects (a redirect is an answer that is not 2xx: the endpoint's URL is
    /// what staff set, and following one could lead to a private address), and every
    /// resolved address checked before connecting, so a name that changes to a private
    /// address after the endpoint was created (DNS rebinding) is refused too.
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver {
                    allow: self.settings.allow_networks.clone(),
                }))
                .user_agent(concat!("Keel-Webhooks/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the webhook HTTP client builds")
        })
    }
}

/// A refused address, carried through reqwest's error chain into the attempt's error.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves through the system and keeps only the addresses webhooks may reach; a name left
/// with none is refused. The address connected to is the one checked.
struct GuardedResolver {
    allow: Vec<Network>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter_map(
                    |ip| match network::check_ip(ip, &allow, "webhooks.allow_networks") {
                        Ok(()) => Some(SocketAddr::new(ip, 0)),
                        Err(e) => {
                            refused.get_or_insert(e);
                            None
                        }
                    },
                )
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| "no address".into());
                return Err(Box::new(Refused(format!("`{host}` resolves to {why}")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Refuses a URL whose host is an address webhooks may not reach. A literal IP never goes
/// through the resolver, so it is checked here; a name is checked by the resolver.
fn check_literal(outbound: &Outbound, url: &url::Url) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    outbound.check_ip(ip)
}

/// At creation and change: refuses (422 `webhook_url_not_allowed`) a URL whose host is, or
/// now resolves to, an address webhooks may not reach, so staff learn it at once. A name
/// that does not resolve yet is accepted: delivery checks every address again.
async fn check_destination(app: &App, text: &str) -> Result<(), AppError> {
    let refused = |why: String| {
        AppError::invalid(
            "webhook_url_not_allowed",
            Some("url"),
            format!("webhooks may not be sent there: {why}"),
        )
    };
    let url = url::Url::parse(text).map_err(|e| refused(e.to_string()))?;
    let outbound = &app.webhooks;
    check_literal(outbound, &url).map_err(refused)?;
    if let Some(url::Host::Domain(host)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::lookup_host((host, port)),
        )
        .await;
        if let Ok(Ok(addrs)) = lookup {
            for addr in addrs {
                outbound
                    .check_ip(addr.ip())
                    .map_err(|e| refused(format!("`{host}` resolves to {e}")))?;
            }
        }
    }
    Ok(())
}

/// Makes one attempt of a delivery if it is its turn, and records it. `None`: not its turn
/// (not due, already finished, its endpoint disabled, an earlier delivery of its subject
/// still pending, or another attempt under way); otherwise the state it ended in.
pub async fn deliver(app: &App, delivery: i64) -> Result<Option<DeliveryState>, AppError> {
    let now = app.now();
    // The lock outlives the attempt's timeout; an attempt whose worker died is retried then.
    let lock_until = now + chrono::Duration::from_std(TIMEOUT * 3).unwrap_or_default();
    let Some(claimed) = store::claim(&app.db, delivery, now, lock_until).await? else {
        // Held by another attempt (a second wake-up, or one whose outcome was not recorded):
        // try again after its lock, so a lost outcome cannot leave the delivery unwoken.
        if let Some(until) = store::held_until(&app.db, delivery).await?
            && until >= now
        {
            return Err(AppError::conflict(
                "delivery_held",
                format!("delivery {delivery} is held by another attempt until {until}"),
            ));
        }
        return Ok(None);
    };
    let body = body(&claimed.event);
    let started = std::time::Instant::now();
    let result = post(&app.webhooks, &claimed, body, now.timestamp()).await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let at = app.now();
    // A ping's answer is not kept: with the ping, staff could otherwise read any page an
    // endpoint's address serves (an internal service in an allowed network). Its status
    // and timing say whether the endpoint works.
    let keep_answer = claimed.event.event_type != PING;
    let (status_code, error, response) = match &result {
        Ok((status, text)) => (
            Some(i32::from(*status)),
            (!(200..300).contains(status)).then(|| format!("the endpoint answered {status}")),
            keep_answer.then_some(text.as_str()),
        ),
        Err(e) => (None, Some(e.clone()), None),
    };
    let (state, next_attempt_at) = if error.is_none() {
        (DeliveryState::Delivered, at)
    } else {
        match next_attempt(claimed.attempt, at) {
            Some(next) => (DeliveryState::Pending, next),
            None => (DeliveryState::Failed, at),
        }
    };
    let outcome = Outcome {
        status_code,
        error: error.as_deref(),
        response,
        duration_ms,
        state,
        next_attempt_at,
    };
    if !store::finish(&app.db, &claimed, &outcome, at).await? {
        return Ok(None);
    }
    match state {
        DeliveryState::Delivered => {
            tracing::debug!(delivery, attempt = claimed.attempt, "webhook delivered");
        }
        DeliveryState::Pending => {
            tracing::warn!(delivery, attempt = claimed.attempt, error = error.as_deref().unwrap_or(""), %next_attempt_at, "webhook attempt failed; retrying");
        }
        DeliveryState::Failed => {
            tracing::error!(
                delivery,
                attempts = claimed.attempt,
                error = error.as_deref().unwrap_or(""),
                "webhook delivery failed; gave up"
            );
        }
    }
    Ok(Some(state))
}

/// POSTs the body; `Ok((status, start of the answer))` when the endpoint answered. An
/// address webhooks may not reach is an error like a refused connection (retried: the
/// admin may allow its network, or its DNS may change back).
async fn post(
    outbound: &Outbound,
    claimed: &Claimed,
    body: Vec<u8>,
    timestamp: i64,
) -> Result<(u16, String), String> {
    let url = url::Url::parse(&claimed.url).map_err(|e| format!("bad URL: {e}"))?;
    check_literal(outbound, &url).map_err(|e| format!("refused: {e}"))?;
    let signature = signature_header(&claimed.secret, timestamp, &body);
    let mut response = outbound
        .client()
        .post(url)
        .header("content-type", "application/json")
        .header("keel-event-id", claimed.event.id.to_string())
        .header("keel-event-type", claimed.event.event_type.as_str())
        .header("keel-delivery-id", claimed.delivery.to_string())
        .header("keel-delivery-attempt", claimed.attempt.to_string())
        .header("keel-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    // Keep the start of the answer only: a snippet for the log, not the receiver's page.
    while bytes.len() < store::MAX_RESPONSE_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .take(store::MAX_RESPONSE_CHARS)
        .collect();
    Ok((status, text))
}

fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    // The source chain says why (refused, reset, DNS) without the URL twice.
    let mut cause = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {cause}")
    }
}

// ---------------------------------------------------------------------------------------
// Staff: endpoints, the delivery log, replay

/// A new endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// An http or https URL.
    #[schema(schema_with = url_schema)]
    pub url: String,
    /// Event types (see docs/webhooks.md), or `["*"]` for all.
    #[schema(schema_with = events_schema)]
    pub events: Vec<String>,
    #[schema(schema_with = keel_domain::text::schema::webhook_description)]
    pub description: Option<String>,
}

/// A change to an endpoint; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[schema(schema_with = url_schema)]
    pub url: Option<String>,
    #[schema(schema_with = events_schema)]
    pub events: Option<Vec<String>>,
    #[schema(schema_with = keel_domain::text::schema::webhook_description)]
    pub description: Option<String>,
    /// `false` pauses deliveries (they wait, pending); `true` resumes them.
    pub enabled: Option<bool>,
    /// Why it is disabled (kept while it is).
    #[schema(schema_with = keel_domain::text::schema::disabled_reason)]
    pub disabled_reason: Option<String>,
}

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EndpointRecord> for EndpointView {
    fn from(e: EndpointRecord) -> EndpointView {
        EndpointView {
            id: e.id,
            url: e.url,
            description: e.description,
            events: e.events,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A created endpoint with its signing secret: shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_` and 64 hex digits; signs every request (docs/webhooks.md). Not shown again.
    pub secret: String,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub subject: String,
    /// pending, delivered or failed.
    pub state: String,
    pub attempts: i32,
    /// When a pending delivery is tried next (it may also wait for an earlier one).
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// The start of the last answer (at most 1,000 characters).
    pub last_response: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(d: DeliveryRecord) -> DeliveryView {
        DeliveryView {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            subject: d.subject,
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            last_response: d.last_response,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub response: Option<String>,
    pub duration_ms: i64,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> AttemptView {
        AttemptView {
            attempt: a.attempt,
            at: a.at,
            status_code: a.status_code,
            error: a.error,
            response: a.response,
            duration_ms: a.duration_ms,
        }
    }
}

/// A delivery with every attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempts_log: Vec<AttemptView>,
}

const MAX_URL_CHARS: usize = 2000;

/// The URLs the OpenAPI document states: http or https, a host name, an optional port,
/// then printable ASCII. Every match is one [`check_url`] takes in (it
/// parses more, such as IP literals; the pattern states what a program should send).
pub const URL_PATTERN: &str = concat!(
    "^https?://",
    // Labels of letters, digits and hyphens, none starting with "xn--" (punycode, which
    // must then decode), the last starting with a letter (a host ending in a number is
    // read as an IPv4 address).
    "(?:(?:[A-WYZa-wyz0-9][A-Za-z0-9-]{0,62}|[Xx](?:[A-MO-Za-mo-z0-9-][A-Za-z0-9-]{0,61})?",
    "|[Xx][Nn](?:[A-Za-z0-9][A-Za-z0-9-]{0,60})?|[Xx][Nn]-(?:[A-Za-z0-9][A-Za-z0-9-]{0,59})?)[.])*",
    "(?:[A-WYZa-wyz][A-Za-z0-9-]{0,62}|[Xx](?:[A-MO-Za-mo-z0-9-][A-Za-z0-9-]{0,61})?",
    "|[Xx][Nn](?:[A-Za-z0-9][A-Za-z0-9-]{0,60})?|[Xx][Nn]-(?:[A-Za-z0-9][A-Za-z0-9-]{0,59})?)",
    "(?::[0-9]{1,4})?(?:/[!-~]*)?$"
);

/// The schema of an endpoint's `url`.
pub fn url_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".into())))
        .pattern(Some(URL_PATTERN))
        .max_length(Some(MAX_URL_CHARS))
        .description(Some(
            "An http or https URL the deliveries are posted to. Where it may point (not \
             loopback or private networks, unless allowed) is checked against the host's \
             `[webhooks] allow_networks`.",
        ))
        .examples(["https://example.com/hooks/keel"])
        .build()
}

/// The schema of an event type an endpoint subscribes to: one of [`EventType`], or `*`.
pub fn event_type_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(
            std::iter::once("*").chain(EventType::ALL.iter().map(|t| t.as_str())),
        ))
        .build()
}

/// The schema of an endpoint's `events`: at least one event type.
pub fn events_schema() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(event_type_schema())
        .min_items(Some(1))
        .description(Some("Event types, or \"*\" for all; at least one."))
        .build()
}

fn check_url(text: &str) -> Result<String, AppError> {
    let text = text.trim();
    let bad = |why: &str| {
        AppError::invalid(
            "invalid_url",
            Some("url"),
            format!("the URL {why}; give an http or https URL"),
        )
    };
    if text.chars().count() > MAX_URL_CHARS {
        return Err(bad(&format!("is longer than {MAX_URL_CHARS} characters")));
    }
    let url = url::Url::parse(text).map_err(|e| bad(&format!("does not parse ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!("has the scheme {:?}", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(url.to_string())
}

fn check_events(events: &[String]) -> Result<Vec<String>, AppError> {
    if events.is_empty() {
        return Err(AppError::invalid(
            "invalid_events",
            Some("events"),
            "subscribe to at least one event type, or \"*\" for all",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let e = e.trim();
        if e != "*" && EventType::parse(e).is_none() {
            return Err(AppError::invalid(
                "unknown_event_type",
                Some("events"),
                format!(
                    "{e:?} is not an event type; known: {}",
                    EventType::ALL
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !out.iter().any(|o| o == e) {
            out.push(e.to_string());
        }
    }
    if out.iter().any(|e| e == "*") {
        return Ok(vec!["*".to_string()]);
    }
    Ok(out)
}

/// Optional text by its stored-text rule, returned trimmed as it is stored.
fn check_text(text: &str, field: &str, rule: Rule) -> Result<String, AppError> {
    AppError::check_text(field, text, rule)?;
    Ok(text.trim().to_string())
}

fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

/// Adds an endpoint; its secret is in the answer and never shown again.
pub async fn create_endpoint(
    app: &App,
    ctx: &Ctx,
    input: &NewEndpoint,
) -> Result<CreatedEndpoint, AppError> {
    create_endpoint_answering(app, ctx, input, None).await
}

/// [`create_endpoint`], storing the API's answer in the same transaction
/// ([`crate::Answer`], in the form that withholds the secret): a retry after a crash is told
/// which endpoint it made, and never makes a second one.
pub async fn create_endpoint_answering(
    app: &App,
    ctx: &Ctx,
    input: &NewEndpoint,
    answer: Option<crate::Answer>,
) -> Result<CreatedEndpoint, AppError> {
    ctx.require(Permission::Automation)?;
    let url = check_url(&input.url)?;
    let events = check_events(&input.events)?;
    check_destination(app, &url).await?;
    let description = check_text(
        input.description.as_deref().unwrap_or(""),
        "description",
        limits::WEBHOOK_DESCRIPTION,
    )?;
    let secret = new_secret();
    let mut tx = app.db.begin().await?;
    let id = store::insert_endpoint(
        &mut tx,
        &store::NewEndpoint {
            url: &url,
            description: &description,
            events: &events,
            secret: &secret,
        },
        app.now(),
    )
    .await?;
    record(
        &mut tx,
        app,
        ctx,
        "webhook.endpoint.create",
        "webhook_endpoint",
        id,
        json!({ "url": url, "events": events }),
    )
    .await?;
    let created = CreatedEndpoint {
        endpoint: store::endpoint_tx(&mut tx, id)
            .await?
            .ok_or(AppError::NotFound {
                what: "webhook endpoint",
            })?
            .into(),
        secret,
    };
    if let Some(a) = answer {
        a.store(&mut tx, app, &created).await?;
    }
    tx.commit().await?;
    Ok(created)
}

pub async fn list_endpoints(app: &App, ctx: &Ctx) -> Result<Vec<EndpointView>, AppError> {
    ctx.require(Permission::Automation)?;
    Ok(store::endpoints(&app.db)
        .await?
        .into_iter()
        .map(EndpointView::from)
        .collect())
}

pub async fn get_endpoint(app: &App, ctx: &Ctx, id: i64) -> Result<EndpointView, AppError> {
    ctx.require(Permission::Automation)?;
    Ok(endpoint(app, id).await?.into())
}

async fn endpoint(app: &App, id: i64) -> Result<EndpointRecord, AppError> {
    store::endpoint(&app.db, id)
        .await?
        .ok_or(AppError::NotFound {
            what: "webhook endpoint",
        })
}

/// Changes an endpoint. Enabling it again wakes its pending deliveries.
pub async fn update_endpoint(
    app: &App,
    ctx: &Ctx,
    id: i64,
    patch: &EndpointPatch,
) -> Result<EndpointView, AppError> {
    ctx.require(Permission::Automation)?;
    let url = patch.url.as_deref().map(check_url).transpose()?;
    let events = patch.events.as_deref().map(check_events).transpose()?;
    if let Some(url) = &url {
        check_destination(app, url).await?;
    }
    let description = patch
        .description
        .as_deref()
        .map(|d| check_text(d, "description", limits::WEBHOOK_DESCRIPTION))
        .transpose()?;
    let reason = patch
        .disabled_reason
        .as_deref()
        .map(|r| check_text(r, "disabled_reason", limits::DISABLED_REASON))
        .transpose()?;
    if reason.is_some() && patch.enabled != Some(false) {
        return Err(AppError::invalid(
            "invalid_field",
            Some("disabled_reason"),
            "a disabled_reason goes with \"enabled\": false",
        ));
    }
    let before = endpoint(app, id).await?;
    let mut tx = app.db.begin().await?;
    let now = app.now();
    store::update_endpoint(
        &mut tx,
        id,
        &EndpointChange {
            url: url.as_deref(),
            description: description.as_deref(),
            events: events.as_deref(),
            enabled: patch.enabled.map(|on| (on, reason.as_deref())),
        },
        now,
    )
    .await?;
    if patch.enabled == Some(true) && !before.enabled {
        store::wake_endpoint(&mut tx, id, now).await?;
    }
    record(
        &mut tx,
        app,
        ctx,
        "webhook.endpoint.update",
        "webhook_endpoint",
        id,
        json!({ "url": url, "events": events, "description": description,
                "enabled": patch.enabled, "disabled_reason": reason }),
    )
    .await?;
    tx.commit().await?;
    get_endpoint(app, ctx, id).await
}

/// Removes an endpoint with its delivery log; the events stay.
pub async fn delete_endpoint(app: &App, ctx: &Ctx, id: i64) -> Result<(), AppError> {
    ctx.require(Permission::Automation)?;
    let before = endpoint(app, id).await?;
    let mut tx = app.db.begin().await?;
    store::delete_endpoint(&mut tx, id).await?;
    record(
        &mut tx,
        app,
        ctx,
        "webhook.endpoint.delete",
        "webhook_endpoint",
        id,
        json!({ "url": before.url }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An endpoint's deliveries, newest first; `state` filters (pending, delivered, failed).
pub async fn deliveries(
    app: &App,
    ctx: &Ctx,
    endpoint_id: i64,
    state: Option<&str>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<DeliveryView>, AppError> {
    ctx.require(Permission::Automation)?;
    let state = crate::parse_status(state, DeliveryState::parse, "delivery")?;
    let cursor = crate::cursor(cursor)?;
    let limit = crate::page_limit(limit)?;
    endpoint(app, endpoint_id).await?;
    Ok(
        store::deliveries(&app.db, endpoint_id, state, cursor, limit)
            .await?
            .map(DeliveryView::from),
    )
}

/// One delivery with its attempts.
pub async fn delivery(app: &App, ctx: &Ctx, id: i64) -> Result<DeliveryDetail, AppError> {
    ctx.require(Permission::Automation)?;
    let d = store::delivery(&app.db, id)
        .await?
        .ok_or(AppError::NotFound {
            what: "webhook delivery",
        })?;
    Ok(DeliveryDetail {
        delivery: d.into(),
        attempts_log: store::attempts(&app.db, id)
            .await?
            .into_iter()
            .map(AttemptView::from)
            .collect(),
    })
}

/// Sends a delivered or failed delivery again: pending now, with fresh attempts. It keeps
/// its place in its subject's order (later pending deliveries of the subject wait for it).
pub async fn replay(app: &App, ctx: &Ctx, id: i64) -> Result<DeliveryView, AppError> {
    replay_answering(app, ctx, id, None).await
}

/// [`replay`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash gets this replay's answer, and never sends the delivery a third time once
/// it went out again.
pub async fn replay_answering(
    app: &App,
    ctx: &Ctx,
    id: i64,
    answer: Option<crate::Answer>,
) -> Result<DeliveryView, AppError> {
    ctx.require(Permission::Automation)?;
    let before = delivery(app, ctx, id).await?.delivery;
    let mut tx = app.db.begin().await?;
    if !store::replay(&mut tx, id, app.now()).await? {
        return Err(AppError::conflict(
            "delivery_pending",
            format!(
                "delivery {id} is pending already; it is replayed when it is delivered or failed"
            ),
        ));
    }
    record(
        &mut tx,
        app,
        ctx,
        "webhook.delivery.replay",
        "webhook_delivery",
        id,
        json!({ "endpoint_id": before.endpoint_id, "event_id": before.event_id, "was": before.state }),
    )
    .await?;
    let replayed = delivery_in(&mut tx, id).await?;
    if let Some(a) = answer {
        a.store(&mut tx, app, &replayed).await?;
    }
    tx.commit().await?;
    Ok(replayed)
}

/// A delivery as the API shows it, read in `tx` before it commits.
async fn delivery_in(tx: &mut keel_store::Tx, id: i64) -> Result<DeliveryView, AppError> {
    Ok(store::delivery_tx(tx, id)
        .await?
        .ok_or(AppError::NotFound {
            what: "webhook delivery",
        })?
        .into())
}

/// Sends a `webhook.ping` event to one enabled endpoint (whatever it subscribes to).
pub async fn ping(app: &App, ctx: &Ctx, endpoint_id: i64) -> Result<DeliveryView, AppError> {
    ping_answering(app, ctx, endpoint_id, None).await
}

/// [`ping`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash gets the ping it made, not a second one.
pub async fn ping_answering(
    app: &App,
    ctx: &Ctx,
    endpoint_id: i64,
    answer: Option<crate::Answer>,
) -> Result<DeliveryView, AppError> {
    ctx.require(Permission::Automation)?;
    let e = endpoint(app, endpoint_id).await?;
    if !e.enabled {
        return Err(AppError::conflict(
            "endpoint_disabled",
            format!("webhook endpoint {endpoint_id} is disabled; enable it first"),
        ));
    }
    let mut tx = app.db.begin().await?;
    let (_, deliveries) = store::insert_event(
        &mut tx,
        PING,
        &format!("webhook_endpoint:{endpoint_id}"),
        &json!({ "endpoint_id": endpoint_id }),
        &[endpoint_id],
        app.now(),
    )
    .await?;
    let id = deliveries[0];
    record(
        &mut tx,
        app,
        ctx,
        "webhook.endpoint.ping",
        "webhook_endpoint",
        endpoint_id,
        json!({ "delivery_id": id }),
    )
    .await?;
    let sent = delivery_in(&mut tx, id).await?;
    if let Some(a) = answer {
        a.store(&mut tx, app, &sent).await?;
    }
    tx.commit().await?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every URL the document's pattern allows is one `check_url` takes in.
        #[test]
        fn every_url_the_schema_allows_is_taken_in(
            url in URL_PATTERN.trim_start_matches('^').trim_end_matches('$'),
        ) {
            let checked = check_url(&url);
            proptest::prop_assert!(checked.is_ok(), "{url:?}: {checked:?}");
        }
    }
    use chrono::TimeZone;

    /// The worked example of docs/webhooks.md.
    #[test]
    fn the_documented_signature_example_holds() {
        let secret = "whsec_test";
        let at = Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap();
        let event = EventRecord {
            id: 1,
            event_type: PING.into(),
            subject: "webhook_endpoint:1".into(),
            occurred_at: at,
            data: json!({ "endpoint_id": 1 }),
        };
        let body = body(&event);
        assert_eq!(
            String::from_utf8(body.clone()).unwrap(),
            r#"{"id":1,"type":"webhook.ping","subject":"webhook_endpoint:1","occurred_at":"2027-01-01T09:00:00Z","data":{"endpoint_id":1}}"#
        );
        assert_eq!(at.timestamp(), 1798794000);
        let header = signature_header(secret, at.timestamp(), &body);
        assert_eq!(
            header,
            "t=1798794000,v1=5cf5c7c1148dfddfcea1927a11c57df4ba0c856d8f05b5642028322ce508dab6",
            "update docs/webhooks.md if this changes"
        );
    }

    #[test]
    fn verify_accepts_the_signature_and_refuses_tampering_and_staleness() {
        let now = Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap();
        let body = br#"{"id":7}"#;
        let header = signature_header("s3cret", now.timestamp(), body);
        let tol = DEFAULT_TOLERANCE;
        assert_eq!(verify("s3cret", &header, body, now, tol), Ok(()));
        assert_eq!(
            verify("s3cret", &header, br#"{"id":8}"#, now, tol),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("other", &header, body, now, tol),
            Err(VerifyError::Mismatch)
        );
        let later = now + chrono::Duration::minutes(6);
        assert_eq!(
            verify("s3cret", &header, body, later, tol),
            Err(VerifyError::Stale)
        );
        let moved = header.replace(
            &format!("t={}", now.timestamp()),
            &format!("t={}", now.timestamp() + 1),
        );
        assert_eq!(
            verify("s3cret", &moved, body, now, tol),
            Err(VerifyError::Mismatch)
        );
        for bad in ["", "v1=00", "t=1", "t=x,v1=00", "t=1,v1=zz", "garbage"] {
            assert_eq!(
                verify("s3cret", bad, body, now, tol),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
        // Several v1 values (a rotation): one matching is enough.
        let two = format!("{header},v1={}", "00".repeat(32));
        assert_eq!(verify("s3cret", &two, body, now, tol), Ok(()));
    }

    #[test]
    fn the_retry_schedule_spans_more_than_a_day_and_then_gives_up() {
        let start = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let mut at = start;
        let mut attempt = 1;
        while let Some(next) = next_attempt(attempt, at) {
            let delay = RETRY_DELAYS[(attempt - 1) as usize];
            let waited = (next - at).to_std().unwrap();
            assert!(
                waited >= delay && waited <= delay + delay / 10,
                "{attempt}: {waited:?}"
            );
            at = next;
            attempt += 1;
        }
        assert_eq!(attempt, 8, "eight attempts, then failed");
        assert!(at - start >= chrono::Duration::hours(41));
        assert_eq!(next_attempt(0, start), None);
    }

    #[test]
    fn events_and_urls_are_checked() {
        assert_eq!(
            check_events(&["*".into(), "invoice.paid".into()]).unwrap(),
            vec!["*"]
        );
        assert_eq!(
            check_events(&["invoice.paid".into(), "invoice.paid".into()]).unwrap(),
            vec!["invoice.paid"]
        );
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["invoice.eaten".into()]).is_err());
        assert!(check_url("https://example.com/hook").is_ok());
        for bad in [
            "ftp://example.com",
            "example.com/hook",
            "http://",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
