//! A fake WhatsApp Cloud API (Meta's Graph API) on loopback, faithful to the wire
//! (`../shared/PROVIDERS.md` §3), for Keel's notifier tests: it takes sends as Meta does, and
//! acts as Meta toward Keel's webhook.
//!
//! ```no_run
//! # async fn demo() {
//! use keel_testkit::whatsapp::{FakeWhatsApp, Webhook};
//! use std::time::Duration;
//!
//! let whatsapp = FakeWhatsApp::builder()
//!     .access_token("EAAG-test")
//!     .app_secret("keel-test-app-secret")
//!     .clock_at(1_767_225_600) // fake time, moved only by `advance`
//!     .retry_backoff(Duration::from_millis(10))
//!     .start()
//!     .await;
//! whatsapp.set_webhook("http://127.0.0.1:8080/hooks/notifiers/whatsapp");
//! assert!(whatsapp.verify_webhook().await.passed());
//! // The client writes first: the 24-hour window opens and Keel hears of it, signed.
//! whatsapp.user_says("263771234567", "Is my invoice paid?").await;
//! // … the plugin under test POSTs to whatsapp.messages_url("v21.0") …
//! let wamid = whatsapp.sent()[0].wamid.clone();
//! whatsapp.deliver(Webhook::statuses(&wamid, &["sent", "delivered", "read"]).out_of_order()).await;
//! whatsapp.advance(Duration::from_secs(25 * 3600)); // the window has closed
//! # }
//! ```
//!
//! # What is faithful
//! - Route `POST /{version}/{phone_number_id}/messages`, any version segment (`v21.0`), for
//!   the phone number ids the fake serves; another id gets Graph's `GraphMethodException`
//!   code 100, subcode 33 (`Unsupported post request. Object with ID '…' does not exist…`),
//!   another path `Unknown path components` (code 2500).
//! - The access token: `Authorization: Bearer <token>` (or Graph's `access_token` query
//!   parameter); anything else gets HTTP 401 with code 190, `type` `OAuthException`, no
//!   `error_data`, and a `WWW-Authenticate: OAuth "Facebook Platform" "invalid_token" …` header.
//! - Bodies (§3.1): `messaging_product` `whatsapp`; `recipient_type` `individual` when given;
//!   `to`; `type` (`text` when left out, as Meta's reference says) with its object:
//!   `text.body` (1 to 4096 characters, optional `preview_url`), `template.name`,
//!   `template.language.code` and `components` (`header`/`body`/`footer`/`button`, each
//!   parameter with its value under the key named after its type), `document`/`image` with
//!   exactly one of `link` or `id`, optional `caption` (≤ 1024) and `filename`; optional
//!   `context.message_id` (a reply) and `biz_opaque_callback_data` (≤ 512). Mark-as-read
//!   (`status` `read`, `message_id` of a message a user sent) answers `{"success":true}`.
//! - Template components as Meta's reference has them: a `header` takes at most one
//!   parameter, of type `text`, `currency`, `date_time`, `image`, `document` (with an
//!   optional `filename`), `video` or `location`; a `body` texts, currencies and dates; a
//!   `button` a `sub_type` and an `index` (a string, `"0"`, or a number) from 0 to 9, used
//!   once per template, and exactly one parameter: `text` (the URL's dynamic suffix) for
//!   `url`, `payload` for `quick_reply`, `coupon_code` for `copy_code`. Media parameters
//!   take a `link` or an `id`. Sent messages keep all of it: [`Message::header`],
//!   [`Message::header_parameter`], [`Message::buttons`], [`Message::button`],
//!   [`Message::link`], [`Message::caption`], [`Message::filename`].
//! - Errors (§3.2) are `{"error":{"message":"(#<code>) <title>","type":"OAuthException",
//!   "code":…,"error_data":{"messaging_product":"whatsapp","details":…},"fbtrace_id":…}}`
//!   with an `x-fb-trace-id` header equal to `fbtrace_id`; a missing parameter reads
//!   `(#100) The parameter <name> is required.`, a bad value `(#100) Invalid parameter`.
//!   [`errors`] lists the codes with their HTTP status, title and details: 190, 100, 131000,
//!   131016, 131026, 131030, 131047, 131049, 130429, 131056, 132000, 132001.
//! - Success: `{"messaging_product":"whatsapp","contacts":[{"input":to,"wa_id":to}],
//!   "messages":[{"id":"wamid.…"}]}`, templates adding `"message_status":"accepted"`. Message
//!   ids have the shape of Meta's (`wamid.` and base64 of a record holding the number).
//! - The 24-hour customer-service window, per (business number, user): a free-form message
//!   (anything but a template: text, document, image) to a user who has not written within
//!   24 hours of fake time is refused with 131047 `Re-engagement message`; templates always
//!   go. The window opens when the user writes ([`FakeWhatsApp::user_says`]).
//! - Webhooks (§3.4): `{"object":"whatsapp_business_account","entry":[{"id":<WABA id>,
//!   "changes":[{"value":{"messaging_product":"whatsapp","metadata":{…},…},"field":"messages"}]}]}`,
//!   with inbound `messages[]` and their `contacts[]`, `statuses[]` (`id`, `status`,
//!   `timestamp` as a string of Unix seconds, `recipient_id`, `biz_opaque_callback_data`
//!   echoed, `conversation` and `pricing` on `sent` and `delivered`, `errors[]` on `failed`),
//!   or `errors[]`. Bodies are compact, in Meta's field order, every non-ASCII character
//!   escaped as a lowercase `\uXXXX`: PROVIDERS.md §3.5's worked example comes out byte for
//!   byte. Each POST carries `Content-Type: application/json`, `User-Agent:
//!   facebookexternalua`, `X-Hub-Signature: sha1=…` and `X-Hub-Signature-256: sha256=…`,
//!   HMACs of the exact bytes sent with the app secret.
//! - Webhook verification (§3.3): [`FakeWhatsApp::verify_challenge`] makes Meta's `GET
//!   ?hub.mode=subscribe&hub.challenge=<number>&hub.verify_token=<token>` and passes only on
//!   200 with the bare challenge as the body.
//! - Delivery is at-least-once and unordered when a test says so ([`Webhook::out_of_order`],
//!   [`Webhook::times`], batches); a non-2xx answer or no answer is retried.
//!
//! # What is not
//! - No TLS, no media upload, no real delivery; one WhatsApp Business Account; only `text`,
//!   `template`, `document` and `image` sends (other types get code 100 naming the ones
//!   emulated). `wa_id` always equals `to` (Meta may normalise some countries' numbers).
//! - The fake is stricter than Meta in places: `to` must be digits only (Meta also takes
//!   `+` and formatting), a media `link` must be `https` or plain `http` to a loopback host
//!   (`localhost`, `127.0.0.0/8`, `[::1]`: where tests serve files; Meta also fetches plain
//!   http from anywhere), the body must be `Content-Type: application/json` (Graph also
//!   takes form bodies; the fake answers `(#100) The parameter messaging_product is
//!   required.`), and a missing token gets the same 190 as a wrong one. The `details` of
//!   shape errors are the fake's own words.
//! - **Idempotency is the fake's own.** The real Cloud API has no idempotency key: a
//!   retried send is a second message, whatever it carries. Its `biz_opaque_callback_data`
//!   is real (a string of up to 512 characters, echoed in that message's status webhooks)
//!   but Meta promises nothing about repeats. The fake treats a second send to the same
//!   recipient, from the same business number, with the same non-empty
//!   `biz_opaque_callback_data` as the same message: it answers the first message's wamid
//!   and records no second message (only [`Message::repeats`] counts it); the same value with
//!   different content is refused with code 100 naming the first wamid. So a test can check
//!   that Keel, killed between the send and the recording of the wamid, reaches the client
//!   once when the plugin passes the notification's reference there; against Meta that
//!   guarantee does not exist.
//! - Out of the window, Meta is also seen to accept the send (200 and a wamid) and report
//!   131047 in a `failed` status webhook instead; [`OutOfWindow::FailInStatus`] does that.
//!   Which one Meta does for a given account is not documented.
//! - 130429 answers HTTP 400, as Meta's error-code table lists it, not 429
//!   ([`Failure::http_status`] changes it); [`FakeWhatsApp::down`] answers 503 with code
//!   131016. Graph versions are not checked (any path segment) and `error_subcode` is never
//!   sent (Meta stopped at v16.0).
//! - Status webhooks: timestamps are the fake's clock (or [`Webhook::at`]) plus the event's
//!   position in the batch as given, fixed before any reordering (so a reordered `read`
//!   still carries a later time than `delivered`, and a status repeated by
//!   [`Webhook::times`] carries the same time each time);
//!   `conversation.id` is one random id per (business number, recipient, category),
//!   `expiration_timestamp` (a string, 24 hours on) only on `sent`; `pricing` is
//!   `{"billable":…,"pricing_model":"CBP","category":…}` with templates counted as `utility`
//!   (billable) and free-form messages as `service` (free). Meta's own choices vary by
//!   account, date and template category.
//! - Meta retries failed deliveries for days with an unpublished schedule; the fake makes
//!   [`FakeWhatsAppBuilder::delivery_attempts`] attempts (5 by default), waiting
//!   [`FakeWhatsAppBuilder::retry_backoff`] (1 s by default) and doubling it each time.
//!   Deliveries of one call go one after the other, never concurrently.
//! - Only [`FakeWhatsApp::user_says`] / [`FakeWhatsApp::user_sends`] record a user's
//!   message and open the window; [`FakeWhatsApp::deliver`] of a message event only posts it.

pub mod errors;
mod request;
#[cfg(test)]
mod tests;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::plugins::Received;
use errors::KnownError;
use request::{Invalid, Parsed};

/// The phone number id served when the builder names none (PROVIDERS.md §3.5's example).
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// Its display number.
pub const DISPLAY_PHONE_NUMBER: &str = "15550783881";
/// The WhatsApp Business Account id of every notification's `entry[].id`, unless changed.
pub const BUSINESS_ACCOUNT_ID: &str = "102290129340398";
/// The access token required unless changed.
pub const ACCESS_TOKEN: &str = "keel-test-access-token";
/// The app secret webhooks are signed with unless changed (§3.5's example).
pub const APP_SECRET: &str = "keel-test-app-secret";
/// The verify token of the GET challenge unless changed.
pub const VERIFY_TOKEN: &str = "keel-test-verify-token";
/// The customer-service window.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Attempts per webhook POST by default, the first included.
pub const DEFAULT_DELIVERY_ATTEMPTS: u32 = 5;
/// The secret [`Webhook::forged`] signs with.
pub const FORGED_SECRET: &str = "not-the-app-secret";
/// The profile name of users the test did not name ([`Inbound::name`]).
pub const DEFAULT_PROFILE_NAME: &str = "Test User";
/// How long one delivery attempt may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two delivery attempts, however many doublings.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What a send asked for (the body's type object, as read).
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text {
        body: String,
        preview_url: bool,
    },
    Template {
        name: String,
        /// `language.code`.
        language: String,
        components: Vec<Component>,
    },
    Document {
        link: Option<String>,
        id: Option<String>,
        filename: Option<String>,
        caption: Option<String>,
    },
    Image {
        link: Option<String>,
        id: Option<String>,
        caption: Option<String>,
    },
}

impl Content {
    /// `text`, `template`, `document` or `image`.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Template { .. } => "template",
            Content::Document { .. } => "document",
            Content::Image { .. } => "image",
        }
    }

    pub fn is_template(&self) -> bool {
        matches!(self, Content::Template { .. })
    }
}

/// A template component (`header`, `body`, `footer`, `button`).
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub kind: String,
    /// Buttons only: `quick_reply`, `url`, ….
    pub sub_type: Option<String>,
    /// Buttons only, as a string (`"0"`) whichever way it was sent.
    pub index: Option<String>,
    pub parameters: Vec<Parameter>,
}

/// A template parameter: its type and the value under the key named after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub kind: String,
    pub value: Value,
}

impl Parameter {
    /// The text of a `text`, `payload` or `coupon_code` parameter.
    pub fn text(&self) -> Option<&str> {
        self.value.as_str()
    }

    /// The `link` of an `image`, `document` or `video` parameter.
    pub fn link(&self) -> Option<&str> {
        self.value.get("link").and_then(Value::as_str)
    }

    /// The `filename` of a `document` parameter.
    pub fn filename(&self) -> Option<&str> {
        self.value.get("filename").and_then(Value::as_str)
    }
}

impl Component {
    /// A button's index as a number (`"0"` is 0).
    pub fn index_number(&self) -> Option<u8> {
        self.index.as_deref().and_then(|i| i.parse().ok())
    }

    /// The texts of its `text`, `payload` and `coupon_code` parameters, in order.
    pub fn texts(&self) -> Vec<&str> {
        self.parameters.iter().filter_map(Parameter::text).collect()
    }
}

/// A message the fake accepted.
#[derive(Debug, Clone)]
pub struct Message {
    /// The business number it was sent from (the path's id).
    pub phone_number_id: String,
    /// The path's version segment (`v21.0`).
    pub version: String,
    pub to: String,
    pub wamid: String,
    pub content: Content,
    pub biz_opaque_callback_data: Option<String>,
    /// `context.message_id`: the message it replies to.
    pub reply_to: Option<String>,
    /// Fake Unix seconds when it was accepted.
    pub at: i64,
    /// The request body as received.
    pub request: Value,
    /// Repeated sends answered with this message's wamid (the fake's own dedupe).
    pub repeats: u32,
    /// Accepted but failing later with this code ([`OutOfWindow::FailInStatus`]).
    pub failure: Option<u32>,
}

impl Message {
    /// `text`, `template`, `document` or `image`.
    pub fn kind(&self) -> &'static str {
        self.content.kind()
    }

    /// A text message's body.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Content::Text { body, .. } => Some(body),
            _ => None,
        }
    }

    /// A template's name.
    pub fn template_name(&self) -> Option<&str> {
        match &self.content {
            Content::Template { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The texts of a template's `body` parameters, in order.
    pub fn body_parameters(&self) -> Vec<&str> {
        self.components()
            .iter()
            .filter(|c| c.kind == "body")
            .flat_map(|c| c.parameters.iter().filter_map(Parameter::text))
            .collect()
    }

    /// A template's components, in the order sent (none for other messages).
    pub fn components(&self) -> &[Component] {
        match &self.content {
            Content::Template { components, .. } => components,
            _ => &[],
        }
    }

    /// A template's `header` component.
    pub fn header(&self) -> Option<&Component> {
        self.components().iter().find(|c| c.kind == "header")
    }

    /// The one parameter of a template's header: its `kind` is `text`, `document`,
    /// `image`, … ([`Parameter::text`], [`Parameter::link`], [`Parameter::filename`]).
    pub fn header_parameter(&self) -> Option<&Parameter> {
        self.header().and_then(|h| h.parameters.first())
    }

    /// A template's `button` components, in the order sent.
    pub fn buttons(&self) -> Vec<&Component> {
        self.components()
            .iter()
            .filter(|c| c.kind == "button")
            .collect()
    }

    /// The button component with this index.
    pub fn button(&self, index: u8) -> Option<&Component> {
        self.components()
            .iter()
            .find(|c| c.kind == "button" && c.index_number() == Some(index))
    }

    /// A document or image message's `link`.
    pub fn link(&self) -> Option<&str> {
        match &self.content {
            Content::Document { link, .. } | Content::Image { link, .. } => link.as_deref(),
            _ => None,
        }
    }

    /// A document or image message's `caption`.
    pub fn caption(&self) -> Option<&str> {
        match &self.content {
            Content::Document { caption, .. } | Content::Image { caption, .. } => {
                caption.as_deref()
            }
            _ => None,
        }
    }

    /// A document message's `filename`.
    pub fn filename(&self) -> Option<&str> {
        match &self.content {
            Content::Document { filename, .. } => filename.as_deref(),
            _ => None,
        }
    }
}

/// A message a user sent to the business ([`FakeWhatsApp::user_says`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UserMessage {
    pub phone_number_id: String,
    pub from: String,
    pub wamid: String,
    /// `text` or `button`.
    pub kind: String,
    /// The text, or the button's text.
    pub text: String,
    /// Fake Unix seconds.
    pub at: i64,
    /// Marked read by the business.
    pub read: bool,
}

/// What a user sends: a builder for [`FakeWhatsApp::user_sends`] and [`Webhook::message`].
#[derive(Debug, Clone)]
pub struct Inbound {
    from: String,
    name: Option<String>,
    id: Option<String>,
    timestamp: Option<i64>,
    reply_to: Option<String>,
    phone_number_id: Option<String>,
    body: InboundBody,
}

#[derive(Debug, Clone)]
enum InboundBody {
    Text(String),
    Button { payload: String, text: String },
}

impl Inbound {
    /// A text message from `from` (digits).
    pub fn text(from: impl Into<String>, body: impl Into<String>) -> Self {
        Self::new(from.into(), InboundBody::Text(body.into()))
    }

    /// A template's quick-reply button pressed: `type` `button`, `button{payload,text}`.
    pub fn button(
        from: impl Into<String>,
        payload: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self::new(
            from.into(),
            InboundBody::Button {
                payload: payload.into(),
                text: text.into(),
            },
        )
    }

    fn new(from: String, body: InboundBody) -> Self {
        Self {
            from,
            name: None,
            id: None,
            timestamp: None,
            reply_to: None,
            phone_number_id: None,
            body,
        }
    }

    /// The sender's profile name (default [`DEFAULT_PROFILE_NAME`]).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// This wamid instead of a new one (made afresh each time a body is built, so
    /// [`FakeWhatsApp::signed_bodies`] and [`FakeWhatsApp::deliver`] of one `Inbound` without
    /// an id differ).
    pub fn id(mut self, wamid: impl Into<String>) -> Self {
        self.id = Some(wamid.into());
        self
    }

    /// This Unix timestamp instead of the fake's clock.
    pub fn timestamp(mut self, unix_seconds: i64) -> Self {
        self.timestamp = Some(unix_seconds);
        self
    }

    /// A reply to this message of the business's (`context{from,id}`).
    pub fn reply_to(mut self, wamid: impl Into<String>) -> Self {
        self.reply_to = Some(wamid.into());
        self
    }

    /// Written to this business number (default: the first served).
    pub fn to_phone_number(mut self, phone_number_id: impl Into<String>) -> Self {
        self.phone_number_id = Some(phone_number_id.into());
        self
    }
}

/// What [`FakeWhatsApp::user_says`] did: the message id and the webhook's delivery attempts
/// (none when no webhook is set).
#[derive(Debug, Clone)]
pub struct Said {
    pub wamid: String,
    pub deliveries: Vec<Delivery>,
}

/// A scripted error for sends ([`FakeWhatsApp::fail`]): by default the next send, whoever
/// it is to, gets `code`'s reply from [`errors::known_or_generic`]. Scripts are consulted
/// after the token, the path and the body's shape are checked, oldest first.
#[derive(Debug, Clone)]
pub struct Failure {
    code: u32,
    to: Option<String>,
    /// `None`: every matching send.
    times: Option<u32>,
    http_status: Option<u16>,
}

impl Failure {
    pub fn code(code: u32) -> Self {
        Self {
            code,
            to: None,
            times: Some(1),
            http_status: None,
        }
    }

    /// Only sends to this recipient.
    pub fn to(mut self, recipient: impl Into<String>) -> Self {
        self.to = Some(recipient.into());
        self
    }

    /// The next `n` matching sends.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Every matching send until [`FakeWhatsApp::clear_failures`] (a number without
    /// WhatsApp: `Failure::code(131026).to(n).always()`).
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    /// This HTTP status instead of the catalogue's (`Failure::code(130429).http_status(429)`).
    pub fn http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    fn matches(&self, to: &str) -> bool {
        self.times != Some(0) && self.to.as_deref().is_none_or(|r| r == to)
    }
}

/// What the fake does with a free-form message outside the 24-hour window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutOfWindow {
    /// HTTP 400 with code 131047 (the default).
    #[default]
    Refuse,
    /// Accept it (200, a wamid, recorded with [`Message::failure`]) and post a `failed`
    /// status with 131047 to the webhook, if one is set.
    FailInStatus,
}

/// A webhook POST (or several) for [`FakeWhatsApp::deliver`] and
/// [`FakeWhatsApp::signed_bodies`]: events, how they are grouped into bodies, their order,
/// repeats and signing. By default each event is its own body, in the order given, sent
/// once, genuinely signed.
#[derive(Debug, Clone)]
pub struct Webhook {
    events: Vec<Event>,
    raw: Option<Vec<u8>>,
    grouping: Grouping,
    order: Option<Vec<usize>>,
    times: usize,
    signing: Signing,
    error_code: u32,
    recipient: Option<String>,
    /// [`Webhook::at`]: the first event's timestamp instead of the fake's now.
    at: Option<i64>,
}

#[derive(Debug, Clone)]
enum Event {
    Status { wamid: String, status: String },
    Message(Inbound),
    Error(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    EachAlone,
    OneChange,
    EntryPerEvent,
}

#[derive(Debug, Clone)]
enum Signing {
    Genuine,
    Secret(String),
    Literal(String),
    Unsigned,
    Sha1Only,
}

impl Webhook {
    fn of(events: Vec<Event>) -> Self {
        Self {
            events,
            raw: None,
            grouping: Grouping::EachAlone,
            order: None,
            times: 1,
            signing: Signing::Genuine,
            error_code: errors::UNDELIVERABLE,
            recipient: None,
            at: None,
        }
    }

    /// Statuses of a message the fake accepted (`sent`, `delivered`, `read`, `failed`, or
    /// any word), one POST each in this order by default.
    pub fn statuses(wamid: &str, statuses: &[&str]) -> Self {
        Self::of(
            statuses
                .iter()
                .map(|status| Event::Status {
                    wamid: wamid.to_owned(),
                    status: (*status).to_owned(),
                })
                .collect(),
        )
    }

    /// One status.
    pub fn status(wamid: &str, status: &str) -> Self {
        Self::statuses(wamid, &[status])
    }

    /// A `failed` status whose `errors[]` holds `code`'s catalogue entry.
    pub fn failed(wamid: &str, code: u32) -> Self {
        Self::status(wamid, "failed").error_code(code)
    }

    /// A message from a user, with its `contacts[]` entry.
    pub fn message(inbound: Inbound) -> Self {
        Self::of(vec![Event::Message(inbound)])
    }

    /// A `value.errors[]` notification (an error not tied to a message).
    pub fn error(code: u32) -> Self {
        Self::of(vec![Event::Error(code)])
    }

    /// Exactly these bytes as the body (signed as the signing options say); the events,
    /// grouping and order options do not apply.
    pub fn raw(body: impl Into<Vec<u8>>) -> Self {
        let mut webhook = Self::of(Vec::new());
        webhook.raw = Some(body.into());
        webhook
    }

    /// These events followed by `other`'s (its options are dropped).
    pub fn and(mut self, other: Webhook) -> Self {
        self.events.extend(other.events);
        self
    }

    /// The code of `failed` statuses' `errors[]` (default 131026, undeliverable).
    pub fn error_code(mut self, code: u32) -> Self {
        self.error_code = code;
        self
    }

    /// The `recipient_id` of statuses of a wamid the fake never accepted (otherwise taken
    /// from the message).
    pub fn recipient(mut self, wa_id: impl Into<String>) -> Self {
        self.recipient = Some(wa_id.into());
        self
    }

    /// Timestamps from these Unix seconds instead of the fake's clock: event `i` (in the
    /// order given, before any reordering) carries `unix_seconds + i`. A message event's own
    /// [`Inbound::timestamp`] still wins.
    pub fn at(mut self, unix_seconds: i64) -> Self {
        self.at = Some(unix_seconds);
        self
    }

    /// The events in reverse order (`read` before `delivered` before `sent`).
    pub fn out_of_order(mut self) -> Self {
        self.order = Some((0..self.events.len()).rev().collect());
        self
    }

    /// The events in this order: a permutation of their positions as given.
    pub fn order(mut self, positions: &[usize]) -> Self {
        self.order = Some(positions.to_vec());
        self
    }

    /// Each body is POSTed `times` times in a row (each time with its own retries).
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// [`times`](Self::times)`(2)`: every body arrives twice.
    pub fn duplicated(self) -> Self {
        self.times(2)
    }

    /// All events in one POST: one entry, its changes grouping consecutive events of one
    /// kind and business number (all statuses in one `statuses[]`).
    pub fn in_one_body(mut self) -> Self {
        self.grouping = Grouping::OneChange;
        self
    }

    /// All events in one POST with one entry each: a multi-entry batch.
    pub fn entry_per_event(mut self) -> Self {
        self.grouping = Grouping::EntryPerEvent;
        self
    }

    /// Signed with [`FORGED_SECRET`] instead of the app secret (both headers).
    pub fn forged(self) -> Self {
        self.signed_with(FORGED_SECRET)
    }

    /// Signed with this secret (both headers).
    pub fn signed_with(mut self, secret: impl Into<String>) -> Self {
        self.signing = Signing::Secret(secret.into());
        self
    }

    /// This literal `X-Hub-Signature-256` value and no `X-Hub-Signature`.
    pub fn signature(mut self, header_value: impl Into<String>) -> Self {
        self.signing = Signing::Literal(header_value.into());
        self
    }

    /// No signature header at all.
    pub fn unsigned(mut self) -> Self {
        self.signing = Signing::Unsigned;
        self
    }

    /// Only the older `X-Hub-Signature: sha1=…` (genuine), no `X-Hub-Signature-256`.
    pub fn sha1_only(mut self) -> Self {
        self.signing = Signing::Sha1Only;
        self
    }
}

/// A webhook body as the fake would POST it, with every header it would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBody {
    /// The exact bytes (ASCII: non-ASCII is escaped).
    pub body: String,
    /// `Content-Type`, `User-Agent` and the signature headers.
    pub headers: Vec<(String, String)>,
}

impl SignedBody {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body, parsed.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the fake's bodies are JSON")
    }
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One attempt to POST a webhook body to Keel.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub body: String,
    /// The headers sent ([`SignedBody::headers`]).
    pub headers: Vec<(String, String)>,
    /// 1 to the configured attempts, within one body's delivery.
    pub attempt: u32,
    /// Keel's HTTP status; `None` when no answer came.
    pub status: Option<u16>,
    /// Why no answer came (connection refused, timeout).
    pub error: Option<String>,
}

impl Delivery {
    /// Keel answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body, parsed.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the fake's bodies are JSON")
    }
}

/// The outcome of Meta's GET verification against a callback URL.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The URL requested, query included.
    pub url: String,
    /// The `hub.challenge` sent.
    pub challenge: String,
    pub status: Option<u16>,
    pub body: String,
    pub error: Option<String>,
}

impl Challenge {
    /// 200 with exactly the challenge as the body: Meta would save the callback.
    pub fn passed(&self) -> bool {
        self.status == Some(200) && self.body == self.challenge
    }
}

/// Options of a [`FakeWhatsApp`] before it starts.
#[derive(Clone)]
pub struct FakeWhatsAppBuilder {
    listen: SocketAddr,
    phone_numbers: Vec<(String, String)>,
    business_account_id: String,
    access_token: String,
    app_secret: String,
    verify_token: String,
    webhook: Option<String>,
    delivery_attempts: u32,
    retry_backoff: Duration,
    clock_at: Option<i64>,
    out_of_window: OutOfWindow,
    templates: BTreeMap<(String, String), usize>,
    auto_statuses: Vec<String>,
    log: bool,
}

impl FakeWhatsAppBuilder {
    /// Listens here instead of `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Serves this business number (id and display number). The first one added is where
    /// users write by default; with none, [`PHONE_NUMBER_ID`] is served.
    pub fn phone_number(
        mut self,
        phone_number_id: impl Into<String>,
        display_phone_number: impl Into<String>,
    ) -> Self {
        self.phone_numbers
            .push((phone_number_id.into(), display_phone_number.into()));
        self
    }

    /// The WhatsApp Business Account id in notifications' `entry[].id`.
    pub fn business_account_id(mut self, id: impl Into<String>) -> Self {
        self.business_account_id = id.into();
        self
    }

    /// The bearer token sends must carry (default [`ACCESS_TOKEN`]).
    pub fn access_token(mut self, token: impl Into<String>) -> Self {
        self.access_token = token.into();
        self
    }

    /// The app secret webhooks are signed with (default [`APP_SECRET`]).
    pub fn app_secret(mut self, secret: impl Into<String>) -> Self {
        self.app_secret = secret.into();
        self
    }

    /// The verify token of [`FakeWhatsApp::verify_webhook`] (default [`VERIFY_TOKEN`]).
    pub fn verify_token(mut self, token: impl Into<String>) -> Self {
        self.verify_token = token.into();
        self
    }

    /// Keel's callback URL (also settable later: [`FakeWhatsApp::set_webhook`]).
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook = Some(url.into());
        self
    }

    /// Attempts per webhook body, the first included (default 5, at least 1).
    pub fn delivery_attempts(mut self, attempts: u32) -> Self {
        self.delivery_attempts = attempts.max(1);
        self
    }

    /// The wait before the second attempt, doubled before each further one (default 1 s).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Fake time starts at these Unix seconds and stands still but for
    /// [`FakeWhatsApp::advance`]. Default: the system clock plus whatever was advanced.
    pub fn clock_at(mut self, unix_seconds: i64) -> Self {
        self.clock_at = Some(unix_seconds);
        self
    }

    /// What a free-form message outside the window gets (default [`OutOfWindow::Refuse`]).
    pub fn out_of_window(mut self, behaviour: OutOfWindow) -> Self {
        self.out_of_window = behaviour;
        self
    }

    /// An approved template with this many `body` parameters. Once any is declared,
    /// template sends must name one (132001 otherwise) with that many body parameters
    /// (132000 otherwise); with none declared, any template is accepted.
    pub fn template(
        mut self,
        name: impl Into<String>,
        language: impl Into<String>,
        body_parameters: usize,
    ) -> Self {
        self.templates
            .insert((name.into(), language.into()), body_parameters);
        self
    }

    /// After each accepted message, posts these statuses for it (`["sent", "delivered"]`),
    /// in the background, when a webhook is set. Default none: tests script statuses.
    pub fn auto_statuses(mut self, statuses: &[&str]) -> Self {
        self.auto_statuses = statuses.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Prints a line per request and per delivery attempt to stdout (for `keel-fake`).
    pub fn log(mut self, on: bool) -> Self {
        self.log = on;
        self
    }

    /// Binds and serves; panics if the address cannot be bound.
    pub async fn start(self) -> FakeWhatsApp {
        let listen = self.listen;
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("fake WhatsApp: bind {listen}: {e}"))
    }

    /// Binds and serves.
    pub async fn try_start(mut self) -> std::io::Result<FakeWhatsApp> {
        let listener = tokio::net::TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        if self.phone_numbers.is_empty() {
            self.phone_numbers
                .push((PHONE_NUMBER_ID.to_owned(), DISPLAY_PHONE_NUMBER.to_owned()));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .expect("HTTP client");
        let shared = Arc::new(Shared {
            phone_numbers: self.phone_numbers,
            business_account_id: self.business_account_id,
            access_token: self.access_token,
            app_secret: self.app_secret,
            verify_token: self.verify_token,
            delivery_attempts: self.delivery_attempts,
            retry_backoff: self.retry_backoff,
            frozen_at: self.clock_at,
            out_of_window: self.out_of_window,
            templates: self.templates,
            auto_statuses: self.auto_statuses,
            log: self.log,
            http,
            book: Mutex::new(Book {
                webhook: self.webhook,
                ..Book::default()
            }),
            delivered: Notify::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let handler_state = Arc::clone(&shared);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = Arc::clone(&handler_state);
                async move { shared.handle(method, uri, headers, body) }
            },
        );
        let server = crate::spawn_server_on(listener, move |listener, shutdown| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .ok();
        });
        Ok(FakeWhatsApp {
            shared,
            addr,
            server: Some(server),
        })
    }
}

/// The fake, serving until [`FakeWhatsApp::stop`] or drop (which also abandons background
/// deliveries).
pub struct FakeWhatsApp {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// `None` once stopped.
    server: Option<crate::RunningServer>,
}

impl FakeWhatsApp {
    /// Serves [`PHONE_NUMBER_ID`] with the default token and secrets on `127.0.0.1:0`.
    pub async fn start() -> FakeWhatsApp {
        Self::builder().start().await
    }

    pub fn builder() -> FakeWhatsAppBuilder {
        FakeWhatsAppBuilder {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            phone_numbers: Vec::new(),
            business_account_id: BUSINESS_ACCOUNT_ID.to_owned(),
            access_token: ACCESS_TOKEN.to_owned(),
            app_secret: APP_SECRET.to_owned(),
            verify_token: VERIFY_TOKEN.to_owned(),
            webhook: None,
            delivery_attempts: DEFAULT_DELIVERY_ATTEMPTS,
            retry_backoff: Duration::from_secs(1),
            clock_at: None,
            out_of_window: OutOfWindow::Refuse,
            templates: BTreeMap::new(),
            auto_statuses: Vec::new(),
            log: false,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://<ip>:<port>`: where the fake listens (stands for `https://graph.facebook.com`).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// [`origin`](Self::origin) followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// The send URL of the first business number for this Graph version (`v21.0`).
    pub fn messages_url(&self, version: &str) -> String {
        self.url(&format!(
            "/{version}/{}/messages",
            self.shared.phone_numbers[0].0
        ))
    }

    /// The business numbers served: (phone number id, display number).
    pub fn phone_numbers(&self) -> Vec<(String, String)> {
        self.shared.phone_numbers.clone()
    }

    pub fn access_token(&self) -> &str {
        &self.shared.access_token
    }

    pub fn app_secret(&self) -> &str {
        &self.shared.app_secret
    }

    pub fn verify_token(&self) -> &str {
        &self.shared.verify_token
    }

    /// Keel's callback URL, where webhooks go.
    pub fn set_webhook(&self, url: impl Into<String>) {
        self.shared.book().webhook = Some(url.into());
    }

    pub fn webhook(&self) -> Option<String> {
        self.shared.book().webhook.clone()
    }

    // ---- time ----

    /// Fake time, in Unix seconds.
    pub fn now(&self) -> i64 {
        self.shared.now()
    }

    /// Moves fake time on (windows close, timestamps move); nothing waits.
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        let mut book = self.shared.book();
        book.clock_offset = book.clock_offset.saturating_add(seconds);
    }

    // ---- scripting ----

    /// The next send (to anyone) fails with `code`'s catalogue reply.
    pub fn fail_next(&self, code: u32) {
        self.fail(Failure::code(code));
    }

    /// Adds a scripted failure.
    pub fn fail(&self, failure: Failure) {
        self.shared.book().failures.push(failure);
    }

    /// Drops every scripted failure not used up.
    pub fn clear_failures(&self) {
        self.shared.book().failures.clear();
    }

    /// While `true`, every request gets HTTP 503 with code 131016 (an outage).
    pub fn down(&self, down: bool) {
        self.shared.book().down = down;
    }

    /// Whether `wa_id` wrote to the first business number within the last 24 hours of fake
    /// time.
    pub fn window_open(&self, wa_id: &str) -> bool {
        let now = self.now();
        let book = self.shared.book();
        book.window_open(&self.shared.phone_numbers[0].0, wa_id, now)
    }

    /// Opens `wa_id`'s window with the first business number now, recording and posting
    /// nothing (for a test that does not care how the user wrote).
    pub fn open_window(&self, wa_id: &str) {
        let now = self.now();
        let phone = self.shared.phone_numbers[0].0.clone();
        self.shared
            .book()
            .last_inbound
            .insert((phone, wa_id.to_owned()), now);
    }

    // ---- records ----

    /// Every message accepted, oldest first (a deduplicated repeat is not a new one).
    pub fn sent(&self) -> Vec<Message> {
        self.shared.book().messages.clone()
    }

    /// [`sent`](Self::sent).
    pub fn messages(&self) -> Vec<Message> {
        self.sent()
    }

    /// The accepted message with this wamid.
    pub fn message(&self, wamid: &str) -> Option<Message> {
        self.shared
            .book()
            .messages
            .iter()
            .find(|m| m.wamid == wamid)
            .cloned()
    }

    /// Every message users sent ([`user_says`](Self::user_says)), oldest first.
    pub fn user_messages(&self) -> Vec<UserMessage> {
        self.shared.book().user_messages.clone()
    }

    /// Every request the fake received, in order, as received.
    pub fn received(&self) -> Vec<Received> {
        self.shared.book().received.clone()
    }

    /// Every webhook delivery attempt so far (scripted and background ones).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.book().deliveries.clone()
    }

    /// Waits until at least `count` delivery attempts are recorded and returns them all;
    /// panics after `timeout` (for deliveries made in the background).
    pub async fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        crate::wait_for_count(
            &self.shared.delivered,
            count,
            timeout,
            "webhook delivery attempts",
            || self.deliveries(),
        )
        .await
    }

    // ---- acting as Meta toward Keel ----

    /// The user `from` writes `text` to the first business number: the message is recorded,
    /// the window opens, and the signed `messages` webhook is posted (with retries) when a
    /// webhook is set.
    pub async fn user_says(&self, from: &str, text: &str) -> Said {
        self.user_sends(Inbound::text(from, text)).await
    }

    /// [`user_says`](Self::user_says) for any [`Inbound`]. The window opens at the fake's
    /// now, whatever [`Inbound::timestamp`] the body carries.
    pub async fn user_sends(&self, inbound: Inbound) -> Said {
        let now = self.now();
        let mut inbound = inbound;
        let wamid = inbound
            .id
            .get_or_insert_with(|| wire::wamid(&inbound.from, false))
            .clone();
        let phone = inbound
            .phone_number_id
            .get_or_insert_with(|| self.shared.phone_numbers[0].0.clone())
            .clone();
        let (kind, text) = match &inbound.body {
            InboundBody::Text(body) => ("text", body.clone()),
            InboundBody::Button { text, .. } => ("button", text.clone()),
        };
        {
            let mut book = self.shared.book();
            book.user_messages.push(UserMessage {
                phone_number_id: phone.clone(),
                from: inbound.from.clone(),
                wamid: wamid.clone(),
                kind: kind.to_owned(),
                text,
                at: inbound.timestamp.unwrap_or(now),
                read: false,
            });
            book.last_inbound.insert((phone, inbound.from.clone()), now);
        }
        let deliveries = if self.webhook().is_some() {
            self.deliver(Webhook::message(inbound)).await
        } else {
            Vec::new()
        };
        Said { wamid, deliveries }
    }

    /// The bodies `webhook` makes, signed, with the headers they would carry, without
    /// sending anything (for a test that posts them itself).
    pub fn signed_bodies(&self, webhook: &Webhook) -> Vec<SignedBody> {
        self.shared.signed_bodies(webhook)
    }

    /// POSTs `webhook`'s bodies to the webhook URL one after the other, each with retries,
    /// and returns every attempt. Panics if no webhook is set.
    pub async fn deliver(&self, webhook: Webhook) -> Vec<Delivery> {
        self.shared.deliver(&webhook).await
    }

    /// Posts these statuses of `wamid` in order, one POST each.
    pub async fn statuses(&self, wamid: &str, statuses: &[&str]) -> Vec<Delivery> {
        self.deliver(Webhook::statuses(wamid, statuses)).await
    }

    /// Meta's GET verification of `target` with `token` (§3.3).
    pub async fn verify_challenge(&self, target: &str, token: &str) -> Challenge {
        let challenge = (rand::random::<u32>() % 2_000_000_000 + 100_000_000).to_string();
        let request = self.shared.http.get(target).query(&[
            ("hub.mode", "subscribe"),
            ("hub.challenge", challenge.as_str()),
            ("hub.verify_token", token),
        ]);
        let url = request
            .try_clone()
            .and_then(|r| r.build().ok())
            .map(|r| r.url().to_string())
            .unwrap_or_else(|| target.to_owned());
        let outcome = match request
            .header(
                header::USER_AGENT,
                "facebookplatform/1.0 (+http://developers.facebook.com)",
            )
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(body) => (Some(status), body, None),
                    Err(e) => (Some(status), String::new(), Some(error_chain(&e))),
                }
            }
            Err(e) => (None, String::new(), Some(error_chain(&e))),
        };
        let (status, body, error) = outcome;
        if self.shared.log {
            println!("GET {url} -> {status:?} {body:?}");
        }
        Challenge {
            url,
            challenge,
            status,
            body,
            error,
        }
    }

    /// [`verify_challenge`](Self::verify_challenge) of the webhook URL with the configured
    /// verify token. Panics if no webhook is set.
    pub async fn verify_webhook(&self) -> Challenge {
        let target = self
            .webhook()
            .expect("fake WhatsApp: no webhook set (builder.webhook or set_webhook)");
        self.verify_challenge(&target, &self.shared.verify_token)
            .await
    }

    /// Stops serving and abandons background work.
    pub async fn stop(mut self) {
        self.shared.abort_tasks();
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

impl Drop for FakeWhatsApp {
    fn drop(&mut self) {
        self.shared.abort_tasks();
    }
}

/// State shared by the server's handler, background deliveries and the test's handle.
struct Shared {
    /// (phone number id, display number); the first is the default.
    phone_numbers: Vec<(String, String)>,
    business_account_id: String,
    access_token: String,
    app_secret: String,
    verify_token: String,
    delivery_attempts: u32,
    retry_backoff: Duration,
    /// [`FakeWhatsAppBuilder::clock_at`].
    frozen_at: Option<i64>,
    out_of_window: OutOfWindow,
    /// (name, language) → number of body parameters.
    templates: BTreeMap<(String, String), usize>,
    auto_statuses: Vec<String>,
    log: bool,
    http: reqwest::Client,
    /// A std mutex: every critical section is a few reads or pushes and none is held
    /// across an `.await`, so an async mutex would buy nothing.
    book: Mutex<Book>,
    /// Woken on every delivery attempt ([`FakeWhatsApp::wait_for_deliveries`]).
    delivered: Notify,
    /// Background deliveries still running.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct Book {
    webhook: Option<String>,
    /// Seconds added to the clock by [`FakeWhatsApp::advance`].
    clock_offset: i64,
    down: bool,
    failures: Vec<Failure>,
    messages: Vec<Message>,
    /// (phone number id, recipient, biz_opaque_callback_data) → index in `messages`: the
    /// fake's idempotency check in constant time, however many messages a run sends.
    by_reference: HashMap<(String, String, String), usize>,
    user_messages: Vec<UserMessage>,
    /// (phone number id, user) → fake time of the user's last message.
    last_inbound: HashMap<(String, String), i64>,
    /// (phone number id, recipient, category) → (conversation id, opened at).
    conversations: HashMap<(String, String, String), (String, i64)>,
    received: Vec<Received>,
    deliveries: Vec<Delivery>,
}

impl Book {
    fn window_open(&self, phone_number_id: &str, wa_id: &str, now: i64) -> bool {
        self.last_inbound
            .get(&(phone_number_id.to_owned(), wa_id.to_owned()))
            .is_some_and(|at| now - at < WINDOW.as_secs() as i64)
    }
}

/// A synchronous Graph error reply.
struct Refusal {
    http_status: u16,
    /// Boxed: the refusal travels in `Err`, which should stay small.
    body: Box<wire::GraphErrorBody>,
}

impl Refusal {
    fn known(known: KnownError, http_status: Option<u16>, details: Option<String>) -> Self {
        Self {
            http_status: http_status.unwrap_or(known.http_status),
            body: Box::new(wire::GraphErrorBody {
                message: known.message(),
                kind: "OAuthException".to_owned(),
                code: known.code,
                error_data: (known.code != errors::INVALID_TOKEN).then(|| wire::GraphErrorData {
                    messaging_product: wire::MESSAGING_PRODUCT.to_owned(),
                    details: details.unwrap_or_else(|| known.details.to_owned()),
                }),
                error_subcode: None,
                fbtrace_id: wire::fbtrace_id(),
            }),
        }
    }

    fn code(code: u32) -> Self {
        Self::known(errors::known_or_generic(code), None, None)
    }

    fn invalid(invalid: Invalid) -> Self {
        let mut refusal = Self::known(
            errors::known(errors::INVALID_PARAMETER).expect("100 is known"),
            None,
            Some(invalid.details),
        );
        refusal.body.message = invalid.message;
        refusal
    }

    /// Graph's answer for an object it does not serve that way.
    fn unsupported(method: &Method, object: &str) -> Self {
        Self {
            http_status: 400,
            body: Box::new(wire::GraphErrorBody {
                message: format!(
                    "Unsupported {} request. Object with ID '{object}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                    method.as_str().to_ascii_lowercase()
                ),
                kind: "GraphMethodException".to_owned(),
                code: errors::INVALID_PARAMETER,
                error_data: None,
                error_subcode: Some(33),
                fbtrace_id: wire::fbtrace_id(),
            }),
        }
    }

    fn unknown_path(components: &str) -> Self {
        Self {
            http_status: 400,
            body: Box::new(wire::GraphErrorBody {
                message: format!("Unknown path components: {components}"),
                kind: "OAuthException".to_owned(),
                code: 2500,
                error_data: None,
                error_subcode: None,
                fbtrace_id: wire::fbtrace_id(),
            }),
        }
    }

    fn into_response(self) -> Response {
        let trace = self.body.fbtrace_id.clone();
        let unauthorized = self.http_status == 401;
        let mut response = json_reply(
            self.http_status,
            wire::to_json(&wire::GraphError { error: *self.body }),
            &trace,
        );
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(
                    "OAuth \"Facebook Platform\" \"invalid_token\" \"Invalid OAuth access token - Cannot parse access token\"",
                ),
            );
        }
        response
    }
}

fn json_reply(status: u16, body: String, trace: &str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    if let Ok(value) = header::HeaderValue::from_str(trace) {
        headers.insert("x-fb-trace-id", value);
    }
    response
}

/// What one event of a webhook becomes before it is grouped into bodies.
enum Resolved {
    Status(wire::StatusItem),
    Message(wire::Contact, wire::InboundMessage),
    Error(wire::ErrorItem),
}

impl Resolved {
    fn kind(&self) -> u8 {
        match self {
            Resolved::Status(_) => 0,
            Resolved::Message(..) => 1,
            Resolved::Error(_) => 2,
        }
    }
}

fn error_item(code: u32) -> wire::ErrorItem {
    let known = errors::known_or_generic(code);
    wire::ErrorItem {
        code,
        title: known.title.to_owned(),
        message: known.title.to_owned(),
        error_data: wire::ErrorDetails {
            details: known.details.to_owned(),
        },
        href: wire::ERROR_CODES_HREF.to_owned(),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn random_hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(rand::random::<u32>() % 16, 16).expect("a hex digit"))
        .collect()
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> i64 {
        let base = self
            .frozen_at
            .unwrap_or_else(|| chrono::Utc::now().timestamp());
        base.saturating_add(self.book().clock_offset)
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    fn abort_tasks(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    fn display_number(&self, phone_number_id: &str) -> String {
        self.phone_numbers
            .iter()
            .find(|(id, _)| id == phone_number_id)
            .map_or_else(|| phone_number_id.to_owned(), |(_, d)| d.clone())
    }

    fn handle(
        self: &Arc<Self>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let down = {
            let mut book = self.book();
            book.received
                .push(Received::new(&method, &uri, &headers, &body));
            book.down
        };
        let response = if down {
            Refusal::code(errors::SERVICE_UNAVAILABLE).into_response()
        } else {
            match self.route(&method, &uri, &headers, &body) {
                Ok(response) => response,
                Err(refusal) => refusal.into_response(),
            }
        };
        if self.log {
            println!(
                "{method} {} -> {}\n  {}",
                uri.path(),
                response.status(),
                String::from_utf8_lossy(&body)
            );
        }
        response
    }

    fn authorized(&self, uri: &Uri, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        let query = uri.query().and_then(|q| {
            url_pairs(q)
                .into_iter()
                .find(|(k, _)| k == "access_token")
                .map(|(_, v)| v)
        });
        bearer.or(query).as_deref() == Some(self.access_token.as_str())
    }

    fn route(
        self: &Arc<Self>,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, Refusal> {
        if !self.authorized(uri, headers) {
            return Err(Refusal::code(errors::INVALID_TOKEN));
        }
        let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let (version, object, edge) = match segments.as_slice() {
            [version, object, edge] => (*version, *object, *edge),
            [_, object] => return Err(Refusal::unsupported(method, object)),
            _ => return Err(Refusal::unknown_path(uri.path())),
        };
        if edge != "messages" {
            return Err(Refusal::unknown_path(&format!("/{edge}")));
        }
        if method != Method::POST || !self.phone_numbers.iter().any(|(id, _)| id == object) {
            return Err(Refusal::unsupported(method, object));
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(Refusal::invalid(request::required("messaging_product")));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            Refusal::invalid(request::invalid(format!(
                "The request body is not valid JSON: {e}"
            )))
        })?;
        match request::parse(&value).map_err(Refusal::invalid)? {
            Parsed::MarkRead { message_id } => self.mark_read(object, &message_id),
            Parsed::Send(outgoing) => self.send(version, object, outgoing, value),
        }
    }

    fn mark_read(&self, phone_number_id: &str, message_id: &str) -> Result<Response, Refusal> {
        let mut book = self.book();
        let found = book
            .user_messages
            .iter_mut()
            .find(|m| m.wamid == message_id && m.phone_number_id == phone_number_id);
        match found {
            Some(message) => {
                message.read = true;
                Ok(json_reply(
                    200,
                    r#"{"success":true}"#.to_owned(),
                    &wire::fbtrace_id(),
                ))
            }
            None => Err(Refusal::invalid(request::invalid(format!(
                "Param message_id {message_id:?} is not a message received by this phone number"
            )))),
        }
    }

    fn send(
        self: &Arc<Self>,
        version: &str,
        phone_number_id: &str,
        outgoing: request::Outgoing,
        request: Value,
    ) -> Result<Response, Refusal> {
        let now = self.now();
        let reply = |wamid: &str, template: bool| {
            let reply = wire::SendReply {
                messaging_product: wire::MESSAGING_PRODUCT.to_owned(),
                contacts: vec![wire::ReplyContact {
                    input: outgoing.to.clone(),
                    wa_id: outgoing.to.clone(),
                }],
                messages: vec![wire::ReplyMessage {
                    id: wamid.to_owned(),
                    message_status: template.then(|| "accepted".to_owned()),
                }],
            };
            json_reply(200, wire::to_json(&reply), &wire::fbtrace_id())
        };
        let mut book = self.book();

        // Scripted failures, oldest first.
        if let Some(failure) = book.failures.iter_mut().find(|f| f.matches(&outgoing.to)) {
            if let Some(times) = &mut failure.times {
                *times -= 1;
            }
            let refusal = Refusal::known(
                errors::known_or_generic(failure.code),
                failure.http_status,
                None,
            );
            book.failures.retain(|f| f.times != Some(0));
            return Err(refusal);
        }

        // The fake's own idempotency on biz_opaque_callback_data.
        if let Some(key) = outgoing
            .biz_opaque_callback_data
            .as_deref()
            .filter(|k| !k.is_empty())
            && let Some(&index) = book.by_reference.get(&(
                phone_number_id.to_owned(),
                outgoing.to.clone(),
                key.to_owned(),
            ))
        {
            let first = &mut book.messages[index];
            if first.content != outgoing.content || first.reply_to != outgoing.reply_to {
                return Err(Refusal::invalid(request::invalid(format!(
                    "biz_opaque_callback_data {key:?} was already used for a different message to {} ({}): the fake's idempotency check",
                    outgoing.to, first.wamid
                ))));
            }
            first.repeats += 1;
            return Ok(reply(&first.wamid, first.content.is_template()));
        }

        // Templates, when the test declared which exist.
        if let Content::Template {
            name,
            language,
            components,
        } = &outgoing.content
            && !self.templates.is_empty()
        {
            let Some(expected) = self.templates.get(&(name.clone(), language.clone())) else {
                return Err(Refusal::known(
                    errors::known(errors::TEMPLATE_MISSING).expect("known"),
                    None,
                    Some(format!(
                        "template name ({name}) does not exist in {language}"
                    )),
                ));
            };
            let given: usize = components
                .iter()
                .filter(|c| c.kind == "body")
                .map(|c| c.parameters.len())
                .sum();
            if given != *expected {
                return Err(Refusal::known(
                    errors::known(errors::TEMPLATE_PARAMETERS).expect("known"),
                    None,
                    Some(format!(
                        "body: number of localizable_params ({given}) does not match the expected number of params ({expected})"
                    )),
                ));
            }
        }

        // The 24-hour window.
        let mut failure = None;
        if !outgoing.content.is_template() && !book.window_open(phone_number_id, &outgoing.to, now)
        {
            match self.out_of_window {
                OutOfWindow::Refuse => return Err(Refusal::code(errors::REENGAGEMENT)),
                OutOfWindow::FailInStatus => failure = Some(errors::REENGAGEMENT),
            }
        }

        let wamid = wire::wamid(&outgoing.to, true);
        let template = outgoing.content.is_template();
        if let Some(key) = outgoing
            .biz_opaque_callback_data
            .as_deref()
            .filter(|k| !k.is_empty())
        {
            let index = book.messages.len();
            book.by_reference.insert(
                (
                    phone_number_id.to_owned(),
                    outgoing.to.clone(),
                    key.to_owned(),
                ),
                index,
            );
        }
        book.messages.push(Message {
            phone_number_id: phone_number_id.to_owned(),
            version: version.to_owned(),
            to: outgoing.to.clone(),
            wamid: wamid.clone(),
            content: outgoing.content.clone(),
            biz_opaque_callback_data: outgoing.biz_opaque_callback_data.clone(),
            reply_to: outgoing.reply_to.clone(),
            at: now,
            request,
            repeats: 0,
            failure,
        });
        let webhook_set = book.webhook.is_some();
        drop(book);

        let later = match failure {
            Some(code) => Some(Webhook::failed(&wamid, code)),
            None if !self.auto_statuses.is_empty() => {
                let statuses: Vec<&str> = self.auto_statuses.iter().map(String::as_str).collect();
                Some(Webhook::statuses(&wamid, &statuses))
            }
            None => None,
        };
        if let Some(webhook) = later.filter(|_| webhook_set) {
            let shared = Arc::clone(self);
            self.spawn(async move {
                shared.deliver(&webhook).await;
            });
        }
        Ok(reply(&wamid, template))
    }

    // ---- webhooks ----

    fn resolve(&self, webhook: &Webhook) -> Vec<(String, Resolved)> {
        // Each event's time is fixed by its position as given, before any reordering, so a
        // reordered `read` still carries a later time than its `delivered`.
        let now = webhook.at.unwrap_or_else(|| self.now());
        let default_phone = &self.phone_numbers[0].0;
        let mut book = self.book();
        let mut resolved = Vec::new();
        for (position, event) in webhook.events.iter().enumerate() {
            let timestamp = now + position as i64;
            match event {
                Event::Status { wamid, status } => {
                    let message = book.messages.iter().find(|m| &m.wamid == wamid).cloned();
                    let (phone, recipient, template, callback) = match (
                        &message,
                        &webhook.recipient,
                    ) {
                        (Some(m), _) => (
                            m.phone_number_id.clone(),
                            m.to.clone(),
                            m.content.is_template(),
                            m.biz_opaque_callback_data.clone(),
                        ),
                        (None, Some(recipient)) => {
                            (default_phone.clone(), recipient.clone(), false, None)
                        }
                        (None, None) => panic!(
                            "fake WhatsApp: no message {wamid} was sent; give Webhook::recipient for a status of an unknown message"
                        ),
                    };
                    let category = if template { "utility" } else { "service" };
                    let with_pricing = matches!(status.as_str(), "sent" | "delivered");
                    let conversation = with_pricing.then(|| {
                        let (id, opened) = book
                            .conversations
                            .entry((phone.clone(), recipient.clone(), category.to_owned()))
                            .or_insert_with(|| (random_hex(32), timestamp))
                            .clone();
                        wire::Conversation {
                            id,
                            expiration_timestamp: (status == "sent")
                                .then(|| (opened + WINDOW.as_secs() as i64).to_string()),
                            origin: wire::Origin {
                                kind: category.to_owned(),
                            },
                        }
                    });
                    let item = wire::StatusItem {
                        id: wamid.clone(),
                        status: status.clone(),
                        timestamp: timestamp.to_string(),
                        recipient_id: recipient,
                        biz_opaque_callback_data: callback,
                        conversation,
                        pricing: with_pricing.then(|| wire::Pricing {
                            billable: template,
                            pricing_model: "CBP".to_owned(),
                            category: category.to_owned(),
                        }),
                        errors: if status == "failed" {
                            vec![error_item(webhook.error_code)]
                        } else {
                            Vec::new()
                        },
                    };
                    resolved.push((phone, Resolved::Status(item)));
                }
                Event::Message(inbound) => {
                    let phone = inbound
                        .phone_number_id
                        .clone()
                        .unwrap_or_else(|| default_phone.clone());
                    let (kind, text, button) = match &inbound.body {
                        InboundBody::Text(body) => {
                            ("text", Some(wire::TextBody { body: body.clone() }), None)
                        }
                        InboundBody::Button { payload, text } => (
                            "button",
                            None,
                            Some(wire::ButtonBody {
                                payload: payload.clone(),
                                text: text.clone(),
                            }),
                        ),
                    };
                    let display = self.display_number(&phone);
                    let message = wire::InboundMessage {
                        context: inbound.reply_to.as_ref().map(|id| wire::MessageContext {
                            from: display,
                            id: id.clone(),
                        }),
                        from: inbound.from.clone(),
                        id: inbound
                            .id
                            .clone()
                            .unwrap_or_else(|| wire::wamid(&inbound.from, false)),
                        timestamp: inbound.timestamp.unwrap_or(timestamp).to_string(),
                        kind: kind.to_owned(),
                        text,
                        button,
                    };
                    let contact = wire::Contact {
                        profile: wire::Profile {
                            name: inbound
                                .name
                                .clone()
                                .unwrap_or_else(|| DEFAULT_PROFILE_NAME.to_owned()),
                        },
                        wa_id: inbound.from.clone(),
                    };
                    resolved.push((phone, Resolved::Message(contact, message)));
                }
                Event::Error(code) => {
                    resolved.push((default_phone.clone(), Resolved::Error(error_item(*code))));
                }
            }
        }
        drop(book);
        if let Some(order) = &webhook.order {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert!(
                sorted == (0..resolved.len()).collect::<Vec<_>>(),
                "fake WhatsApp: Webhook::order({order:?}) is not a permutation of 0..{}",
                resolved.len()
            );
            let mut slots: Vec<Option<(String, Resolved)>> =
                resolved.into_iter().map(Some).collect();
            resolved = order
                .iter()
                .map(|&i| slots[i].take().expect("a permutation"))
                .collect();
        }
        resolved
    }

    fn change(&self, phone: &str, events: Vec<Resolved>) -> wire::Change {
        let mut value = wire::ChangeValue {
            messaging_product: wire::MESSAGING_PRODUCT.to_owned(),
            metadata: wire::Metadata {
                display_phone_number: self.display_number(phone),
                phone_number_id: phone.to_owned(),
            },
            contacts: Vec::new(),
            messages: Vec::new(),
            statuses: Vec::new(),
            errors: Vec::new(),
        };
        for event in events {
            match event {
                Resolved::Status(item) => value.statuses.push(item),
                Resolved::Message(contact, message) => {
                    if !value.contacts.iter().any(|c| c.wa_id == contact.wa_id) {
                        value.contacts.push(contact);
                    }
                    value.messages.push(message);
                }
                Resolved::Error(item) => value.errors.push(item),
            }
        }
        wire::Change {
            value,
            field: "messages".to_owned(),
        }
    }

    fn entry(&self, changes: Vec<wire::Change>) -> wire::Entry {
        wire::Entry {
            id: self.business_account_id.clone(),
            changes,
        }
    }

    fn notification(entries: Vec<wire::Entry>) -> String {
        wire::to_json(&wire::Notification {
            object: wire::OBJECT.to_owned(),
            entry: entries,
        })
    }

    fn bodies(&self, webhook: &Webhook) -> Vec<String> {
        if let Some(raw) = &webhook.raw {
            return vec![String::from_utf8_lossy(raw).into_owned()];
        }
        let resolved = self.resolve(webhook);
        match webhook.grouping {
            Grouping::EachAlone => resolved
                .into_iter()
                .map(|(phone, event)| {
                    Self::notification(vec![self.entry(vec![self.change(&phone, vec![event])])])
                })
                .collect(),
            Grouping::EntryPerEvent => {
                let entries = resolved
                    .into_iter()
                    .map(|(phone, event)| self.entry(vec![self.change(&phone, vec![event])]))
                    .collect();
                vec![Self::notification(entries)]
            }
            Grouping::OneChange => {
                let mut groups: Vec<(String, u8, Vec<Resolved>)> = Vec::new();
                for (phone, event) in resolved {
                    match groups.last_mut() {
                        Some((p, kind, events)) if *p == phone && *kind == event.kind() => {
                            events.push(event);
                        }
                        _ => groups.push((phone, event.kind(), vec![event])),
                    }
                }
                let changes = groups
                    .into_iter()
                    .map(|(phone, _, events)| self.change(&phone, events))
                    .collect();
                vec![Self::notification(vec![self.entry(changes)])]
            }
        }
    }

    fn sign(&self, body: String, signing: &Signing) -> SignedBody {
        let bytes = body.as_bytes();
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("User-Agent".to_owned(), "facebookexternalua".to_owned()),
        ];
        let both = |secret: &str| {
            vec![
                (
                    "X-Hub-Signature".to_owned(),
                    wire::signature_sha1(secret, bytes),
                ),
                (
                    "X-Hub-Signature-256".to_owned(),
                    wire::signature_256(secret, bytes),
                ),
            ]
        };
        headers.extend(match signing {
            Signing::Genuine => both(&self.app_secret),
            Signing::Secret(secret) => both(secret),
            Signing::Literal(value) => vec![("X-Hub-Signature-256".to_owned(), value.clone())],
            Signing::Unsigned => Vec::new(),
            Signing::Sha1Only => vec![(
                "X-Hub-Signature".to_owned(),
                wire::signature_sha1(&self.app_secret, bytes),
            )],
        });
        SignedBody { body, headers }
    }

    fn signed_bodies(&self, webhook: &Webhook) -> Vec<SignedBody> {
        self.bodies(webhook)
            .into_iter()
            .map(|body| self.sign(body, &webhook.signing))
            .collect()
    }

    async fn deliver(&self, webhook: &Webhook) -> Vec<Delivery> {
        let url = self
            .book()
            .webhook
            .clone()
            .expect("fake WhatsApp: no webhook set (builder.webhook or set_webhook)");
        let mut attempts = Vec::new();
        for signed in self.signed_bodies(webhook) {
            for _ in 0..webhook.times {
                attempts.extend(self.post_with_retries(&url, &signed).await);
            }
        }
        attempts
    }

    async fn post_with_retries(&self, url: &str, signed: &SignedBody) -> Vec<Delivery> {
        let mut attempts = Vec::new();
        let mut backoff = self.retry_backoff;
        for attempt in 1..=self.delivery_attempts {
            let mut request = self.http.post(url).body(signed.body.clone());
            for (name, value) in &signed.headers {
                request = request.header(name, value);
            }
            let (status, error) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    (Some(status), None)
                }
                Err(e) => (None, Some(error_chain(&e))),
            };
            let delivery = Delivery {
                url: url.to_owned(),
                body: signed.body.clone(),
                headers: signed.headers.clone(),
                attempt,
                status,
                error,
            };
            if self.log {
                let outcome = match (&delivery.status, &delivery.error) {
                    (Some(status), _) => status.to_string(),
                    (None, Some(error)) => error.clone(),
                    (None, None) => String::new(),
                };
                println!(
                    "webhook attempt {attempt}/{}, POST {url}: {outcome}\n  {}",
                    self.delivery_attempts, signed.body
                );
            }
            let succeeded = delivery.succeeded();
            self.book().deliveries.push(delivery.clone());
            self.delivered.notify_waiters();
            attempts.push(delivery);
            if succeeded {
                break;
            }
            if attempt < self.delivery_attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        attempts
    }
}

/// A query string's pairs, decoded once.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}
