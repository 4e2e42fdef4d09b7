//! Webhooks from Meta: the subscription check (`GET`, PROVIDERS.md 3.3) and signed event
//! notifications (`POST`, 3.4 and 3.5) read into the kernel's events.
//!
//! How a message that is not text becomes an inbound message's `body`:
//!
//! | `type` | `body` |
//! |---|---|
//! | `text` | `text.body` |
//! | `button` (a template's quick reply) | `button.text`, else `button.payload` |
//! | `interactive` | the chosen `button_reply.title` or `list_reply.title` |
//! | `image`, `video`, `document` | the caption when there is one, else `[image]`, `[video]`, `[document]` (`[document: <filename>]`) |
//! | `location` | `[location: <name>, <address>]`, or `[location]` |
//! | `reaction` | `[reaction: <emoji>]` (`[reaction]` when removed) |
//! | anything else (`audio`, `sticker`, `contacts`, `system`, `unsupported`, types Meta adds later) | `[<type>]` |
//!
//! Media are not downloaded (an inbound message has no attachment in the WIT).
//!
//! A status update's `at` is the status's `timestamp` (Unix seconds) as RFC 3339 UTC, or
//! none when it is missing or malformed: never a reason to fail the whole webhook.

use keel_sdk::notifier::{DeliveryStatus, Inbound, InboundEvent, InboundMessage, StatusUpdate};
use keel_sdk::{InboundReply, InboundRequest, PluginError, digest};
use serde::Deserialize;

use crate::settings::InboundSettings;

/// The header carrying the body's HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// Reads one webhook call: a `GET` subscription check or a signed `POST`.
pub fn verify_inbound(req: InboundRequest) -> Result<Inbound, PluginError> {
    let settings = InboundSettings::load()?;
    if req.method.eq_ignore_ascii_case("GET") {
        subscribe(&req, &settings)
    } else if req.method.eq_ignore_ascii_case("POST") {
        verify_signature(&req, &settings)?;
        let events = events(&req.body)?;
        Ok(Inbound {
            reply: InboundReply::ok(),
            events,
        })
    } else {
        Err(PluginError::refused(format!(
            "Meta's webhooks are GET (subscription check) or POST (events), not {}",
            req.method
        )))
    }
}

/// Answers Meta's subscription check: the bare `hub.challenge` when `hub.mode` is
/// `subscribe` and `hub.verify_token` is the configured one.
fn subscribe(req: &InboundRequest, settings: &InboundSettings) -> Result<Inbound, PluginError> {
    let query = req.query_pairs();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("hub.mode") != Some("subscribe") {
        return Err(PluginError::refused(
            "not a subscribe request (hub.mode is not `subscribe`)",
        ));
    }
    let token = param("hub.verify_token").unwrap_or_default();
    if !digest::eq(token.as_bytes(), settings.verify_token.expose().as_bytes()) {
        return Err(PluginError::refused("verify token mismatch"));
    }
    let Some(challenge) = param("hub.challenge").filter(|c| !c.is_empty()) else {
        return Err(PluginError::refused(
            "the subscribe request has no hub.challenge",
        ));
    };
    Ok(Inbound {
        reply: InboundReply::text(challenge),
        events: Vec::new(),
    })
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` against the HMAC-SHA256 of the raw body with
/// the app secret, in constant time. The old `X-Hub-Signature` (SHA-1) is not enough.
pub fn verify_signature(
    req: &InboundRequest,
    settings: &InboundSettings,
) -> Result<(), PluginError> {
    let Some(header) = req.header(SIGNATURE_HEADER) else {
        let also = if req.header("X-Hub-Signature").is_some() {
            " (the SHA-1 X-Hub-Signature alone is not accepted)"
        } else {
            ""
        };
        return Err(PluginError::refused(format!(
            "missing signature: no {SIGNATURE_HEADER} header{also}"
        )));
    };
    let header = header.trim();
    let given = match header.split_at_checked(7) {
        Some((prefix, hex)) if prefix.eq_ignore_ascii_case("sha256=") => hex,
        _ => {
            return Err(PluginError::refused(format!(
                "malformed signature: {SIGNATURE_HEADER} is not `sha256=<hex>`"
            )));
        }
    };
    let expected = digest::hex(&digest::hmac_sha256(
        settings.app_secret.expose(),
        &req.body,
    ));
    if !digest::eq_hex(given, &expected) {
        return Err(PluginError::refused(format!(
            "signature mismatch: {SIGNATURE_HEADER} does not sign this body with the app secret"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Default, Deserialize)]
struct Value {
    #[serde(default)]
    statuses: Vec<Status>,
    #[serde(default)]
    messages: Vec<WaMessage>,
    #[serde(default)]
    errors: Vec<WaError>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    /// Unix seconds as a string; read leniently (any JSON) so a bad one costs only `at`.
    #[serde(default)]
    timestamp: serde_json::Value,
    #[serde(default)]
    errors: Vec<WaError>,
}

#[derive(Deserialize)]
struct WaError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

#[derive(Deserialize)]
struct WaMessage {
    from: String,
    id: String,
    #[serde(default)]
    timestamp: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    button: Option<Button>,
    #[serde(default)]
    interactive: Option<Interactive>,
    #[serde(default)]
    image: Option<Media>,
    #[serde(default)]
    video: Option<Media>,
    #[serde(default)]
    document: Option<Media>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    reaction: Option<Reaction>,
}

#[derive(Deserialize)]
struct Text {
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct Button {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(default)]
    button_reply: Option<Reply>,
    #[serde(default)]
    list_reply: Option<Reply>,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct Media {
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
struct Reaction {
    #[serde(default)]
    emoji: Option<String>,
}

/// The events of a verified notification body, in the order Meta listed them: every entry,
/// change, status and message (not only the first). Changes of other fields, statuses
/// other than sent/delivered/read/failed and unknown keys are skipped; errors not tied to a
/// message are logged. A body that is not the JSON expected is internal.
pub fn events(body: &[u8]) -> Result<Vec<InboundEvent>, PluginError> {
    let notification: Notification = serde_json::from_slice(body).map_err(|e| {
        PluginError::internal(format!(
            "the webhook is signed but its body is not the notification JSON expected: {e}"
        ))
    })?;
    let mut events = Vec::new();
    if notification.object != "whatsapp_business_account" {
        keel_sdk::warn!(
            "ignored a webhook for object {:?} (not whatsapp_business_account)",
            notification.object
        );
        return Ok(events);
    }
    for change in notification.entry.iter().flat_map(|e| &e.changes) {
        if change.field != "messages" {
            continue;
        }
        for status in &change.value.statuses {
            let Some(delivery) = delivery_status(&status.status) else {
                keel_sdk::debug!("ignored status {:?} of {}", status.status, status.id);
                continue;
            };
            events.push(InboundEvent::Status(StatusUpdate {
                provider_id: status.id.clone(),
                status: delivery,
                detail: describe_errors(&status.errors),
                at: status_at(&status.timestamp),
            }));
        }
        for message in &change.value.messages {
            events.push(InboundEvent::Message(InboundMessage {
                provider_id: message.id.clone(),
                sender: format!("+{}", message.from),
                body: message_text(message),
                received_at: received_at(&message.timestamp),
            }));
        }
        if let Some(errors) = describe_errors(&change.value.errors) {
            keel_sdk::warn!("WhatsApp reported errors: {errors}");
        }
    }
    Ok(events)
}

fn delivery_status(status: &str) -> Option<DeliveryStatus> {
    match status {
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" => Some(DeliveryStatus::Delivered),
        "read" => Some(DeliveryStatus::Read),
        "failed" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

/// `131026 Message undeliverable: <details>; …`, or `None` without errors.
fn describe_errors(errors: &[WaError]) -> Option<String> {
    let described: Vec<String> = errors
        .iter()
        .map(|e| {
            let mut out = e.code.map(|c| c.to_string()).unwrap_or_default();
            let title = e
                .title
                .as_deref()
                .or(e.message.as_deref())
                .unwrap_or_default();
            if !title.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(title);
            }
            if let Some(details) = e.error_data.as_ref().and_then(|d| d.details.as_deref())
                && !details.is_empty()
            {
                out.push_str(": ");
                out.push_str(details);
            }
            out
        })
        .filter(|d| !d.is_empty())
        .collect();
    (!described.is_empty()).then(|| described.join("; "))
}

fn message_text(m: &WaMessage) -> String {
    let caption = |media: &Option<Media>| {
        media
            .as_ref()
            .and_then(|m| m.caption.clone())
            .filter(|c| !c.is_empty())
    };
    let found = match m.kind.as_str() {
        "text" => m.text.as_ref().map(|t| t.body.clone()),
        "button" => m
            .button
            .as_ref()
            .and_then(|b| b.text.clone().or_else(|| b.payload.clone())),
        "interactive" => m.interactive.as_ref().and_then(|i| {
            i.button_reply
                .as_ref()
                .or(i.list_reply.as_ref())
                .map(|r| r.title.clone())
        }),
        "image" => caption(&m.image),
        "video" => caption(&m.video),
        "document" => caption(&m.document).or_else(|| {
            m.document
                .as_ref()
                .and_then(|d| d.filename.as_ref())
                .map(|f| format!("[document: {f}]"))
        }),
        "location" => m.location.as_ref().map(|l| {
            let parts: Vec<&str> = [l.name.as_deref(), l.address.as_deref()]
                .into_iter()
                .flatten()
                .filter(|p| !p.is_empty())
                .collect();
            match parts.is_empty() {
                true => "[location]".to_owned(),
                false => format!("[location: {}]", parts.join(", ")),
            }
        }),
        "reaction" => Some(
            match m
                .reaction
                .as_ref()
                .and_then(|r| r.emoji.as_deref())
                .filter(|e| !e.is_empty())
            {
                Some(emoji) => format!("[reaction: {emoji}]"),
                None => "[reaction]".to_owned(),
            },
        ),
        _ => None,
    };
    found.unwrap_or_else(|| {
        let kind = if m.kind.is_empty() {
            "message"
        } else {
            &m.kind
        };
        format!("[{kind}]")
    })
}

/// The latest Unix second RFC 3339 can write (9999-12-31T23:59:59Z).
const MAX_RFC3339_SECONDS: i64 = 253_402_300_799;

/// RFC 3339 UTC of a status's `timestamp` (Unix seconds as a string, or a number), or
/// `None` (with a warning) when it is missing, not a whole number of seconds, or outside
/// what RFC 3339 can write: the kernel then orders that receipt by its status.
fn status_at(timestamp: &serde_json::Value) -> Option<String> {
    let seconds = match timestamp {
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    };
    match seconds {
        Some(seconds) if (0..=MAX_RFC3339_SECONDS).contains(&seconds) => {
            Some(keel_sdk::clock::rfc3339(seconds))
        }
        _ => {
            keel_sdk::warn!("status timestamp {timestamp} is not Unix seconds; sent without `at`");
            None
        }
    }
}

/// RFC 3339 UTC of WhatsApp's `timestamp` (Unix seconds as a string); the kernel's clock,
/// with a warning, when it is missing or not a number.
fn received_at(timestamp: &str) -> String {
    match timestamp.trim().parse::<i64>() {
        Ok(seconds) => keel_sdk::clock::rfc3339(seconds),
        Err(_) => {
            keel_sdk::warn!("message timestamp {timestamp:?} is not Unix seconds; using now");
            keel_sdk::clock::now()
        }
    }
}
