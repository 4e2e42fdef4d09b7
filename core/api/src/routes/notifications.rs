//! Notifications: a client's notifications, its channel preferences, its consents to plugin
//! channels (opt-in and opt-out) and the messages it sent in; and the hook notifier
//! plugins' providers post to (delivery receipts, messages clients send in, the
//! subscription handshake).

use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path, provider_reply, provider_request};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::{get, put};
use keel_app::gateway_payments::InboundReply;
use keel_app::notifications::{self, ConsentView, InboundView, NotificationView, OptInInput};
use keel_domain::ids::ClientId;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// A client's notifications, channels and consents, under the authenticated `/api/v1`.
pub fn router() -> Router<State> {
    Router::new()
        .route("/clients/{id}/notifications", get(list_notifications))
        .route(
            "/clients/{id}/notification-channels/{channel}",
            put(set_channel),
        )
        .route("/clients/{id}/consents", get(list_consents))
        .route(
            "/clients/{id}/consents/{channel}",
            put(opt_in).delete(opt_out),
        )
        .route("/clients/{id}/inbound-messages", get(list_inbound))
}

/// A channel's name: lower-case letters, digits, `_` and `-`, starting with a letter
/// (`email`, `whatsapp`: the `[notifications.<channel>]` sections).
pub const CHANNEL_PATTERN: &str = "^[a-z][a-z0-9_-]{0,62}$";

fn channel_schema() -> utoipa::openapi::Object {
    keel_app::schema::string(
        CHANNEL_PATTERN,
        Some(63),
        "`email`, or a plugin channel `[notifications.<channel>]` configures (`whatsapp`); \
         any other is 422 `unknown_channel`",
    )
}

/// A client and one of its channels.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ChannelPath {
    /// The client's id.
    pub id: i64,
    #[param(schema_with = channel_schema)]
    pub channel: String,
}

/// A client's latest notifications (at most 100, newest first) on every channel, with
/// their state, last error and, for plugin channels, the provider's id and the latest
/// delivery receipt. A client key reads its own, a reseller key its clients'; another
/// client's is 404.
#[utoipa::path(get, path = "/api/v1/clients/{id}/notifications", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<NotificationView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_notifications(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<NotificationView>>, ApiError> {
    Ok(axum::Json(
        notifications::of_client(&state.app, &ctx, ClientId(id)).await?,
    ))
}

/// Whether a client receives messages on a channel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// `false` turns the channel off: its messages are recorded `skipped` with the reason
    /// and not sent; `true` turns it back on.
    pub enabled: bool,
}

/// Turn a channel on or off for a client (the client itself, its reseller, or staff):
/// `email`, or a configured plugin channel (`whatsapp`); any other is 422
/// `unknown_channel`. Audited.
#[utoipa::path(put, path = "/api/v1/clients/{id}/notification-channels/{channel}", tag = "notifications",
    params(ChannelPath),
    request_body = ChannelInput,
    responses((status = 204, description = "The choice is recorded"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn set_channel(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(ChannelPath { id, channel }): Path<ChannelPath>,
    Json(body): Json<ChannelInput>,
) -> Result<StatusCode, ApiError> {
    notifications::set_channel(&state.app, &ctx, ClientId(id), &channel, body.enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A client's consents, one per plugin channel it ever opted in to: where messages go,
/// whether they may be sent, and who recorded the opt-in and opt-out and how.
#[utoipa::path(get, path = "/api/v1/clients/{id}/consents", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ConsentView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_consents(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<ConsentView>>, ApiError> {
    Ok(axum::Json(
        notifications::consents(&state.app, &ctx, ClientId(id)).await?,
    ))
}

/// Record a client's opt-in to a plugin channel at an E.164 number (the client itself, its
/// reseller, or staff), with who recorded it and how consent was given (`source`). It
/// replaces an earlier opt-in and clears an opt-out. A number that is not E.164 is 422
/// `invalid_phone`; a channel that is not configured 422 `unknown_channel`. Audited.
#[utoipa::path(put, path = "/api/v1/clients/{id}/consents/{channel}", tag = "notifications",
    params(ChannelPath),
    request_body = OptInInput,
    responses((status = 200, body = ConsentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn opt_in(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(ChannelPath { id, channel }): Path<ChannelPath>,
    Json(body): Json<OptInInput>,
) -> Result<axum::Json<ConsentView>, ApiError> {
    Ok(axum::Json(
        notifications::opt_in(&state.app, &ctx, ClientId(id), &channel, &body).await?,
    ))
}

/// Record a client's opt-out of a plugin channel: nothing is sent to it there until it
/// opts in again (a message already queued is skipped). 404 when the client never opted
/// in; an opt-out already recorded stays as it was. Audited.
#[utoipa::path(delete, path = "/api/v1/clients/{id}/consents/{channel}", tag = "notifications",
    params(ChannelPath),
    responses((status = 200, body = ConsentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn opt_out(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(ChannelPath { id, channel }): Path<ChannelPath>,
) -> Result<axum::Json<ConsentView>, ApiError> {
    Ok(axum::Json(
        notifications::opt_out(&state.app, &ctx, ClientId(id), &channel).await?,
    ))
}

/// The latest messages a client sent in on plugin channels (at most 100, newest first),
/// matched to it by the number it opted in with.
#[utoipa::path(get, path = "/api/v1/clients/{id}/inbound-messages", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<InboundView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_inbound(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<InboundView>>, ApiError> {
    Ok(axum::Json(
        notifications::inbound_of_client(&state.app, &ctx, ClientId(id)).await?,
    ))
}

/// The largest provider webhook read (WhatsApp's are a few KiB, batches tens of KiB); a
/// larger one is refused with 413 before any plugin sees it.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// The provider hooks, outside `/api/v1` and its authentication: a provider proves itself
/// to the plugin (a signature, a verify token), not with a Keel key.
pub fn hooks() -> Router<State> {
    Router::new().route(
        "/hooks/notifier/{plugin}",
        get(notifier_subscription).post(notifier_webhook),
    )
}

/// The hook's path: the notifier plugin's id.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NotifierHookPath {
    /// The notifier plugin's id (`whatsapp`).
    #[param(schema_with = plugin_schema)]
    pub plugin: String,
}

/// A plugin's id, as its manifest must have it: lower-case letters, digits and dashes,
/// starting with a letter, at most 63.
fn plugin_schema() -> utoipa::openapi::Object {
    keel_app::schema::string(
        keel_app::gateway_payments::GATEWAY_PATTERN,
        Some(63),
        "A notifier plugin's id",
    )
}

/// A notifier provider's webhook, handed raw to the plugin's `verify-inbound`: a
/// subscription check (`GET` with a challenge), delivery receipts (applied in order of
/// progress, duplicates changing nothing), messages clients send in (a STOP reply opts the
/// client out). Answers what the plugin says; a forged, unsigned or wrongly verified request
/// is 403 `webhook_refused` and changes nothing.
#[utoipa::path(post, path = "/hooks/notifier/{plugin}", tag = "hooks", params(NotifierHookPath),
    responses((status = 200, description = "The plugin's reply to the provider"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn notifier_webhook(
    state: axum::extract::State<State>,
    axum::extract::Path(plugin): axum::extract::Path<String>,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    webhook(state, plugin, req).await
}

/// A notifier provider's subscription check (WhatsApp: `hub.mode=subscribe`,
/// `hub.verify_token`, `hub.challenge`), handed to the plugin, which answers the challenge
/// when the verify token is the configured one; otherwise 403 `webhook_refused`.
#[utoipa::path(get, path = "/hooks/notifier/{plugin}", tag = "hooks", params(NotifierHookPath),
    responses((status = 200, description = "The challenge, as the plugin answers it"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn notifier_subscription(
    state: axum::extract::State<State>,
    axum::extract::Path(plugin): axum::extract::Path<String>,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    webhook(state, plugin, req).await
}

async fn webhook(
    state: axum::extract::State<State>,
    plugin: String,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let inbound = provider_request(req, MAX_WEBHOOK_BYTES).await?;
    let handled = notifications::inbound(&state.app, &plugin, inbound).await?;
    Ok(provider_reply(handled.reply.unwrap_or(InboundReply {
        status: 200,
        content_type: None,
        headers: Vec::new(),
        body: Vec::new(),
    })))
}
