//! Notifiers: implement [`Notifier`] and export it with
//! [`export_notifier!`](crate::export_notifier).
//!
//! What the kernel will do with a notifier, when its notification outbox sends through
//! plugin channels (today the outbox sends e-mail itself; the WhatsApp channel, issue 18,
//! brings the plugin path, and `keel plugin call` runs any operation meanwhile): call `send`
//! for each message of the plugin's channel, retry it on [`PluginError::Unavailable`] (after
//! `retry-after-seconds` when given), and treat `refused` and `misconfigured` as final for
//! that message. The receipt's `provider_id` is kept so delivery reports (`verify-inbound`)
//! can be matched to the message.
//!
//! Since WIT 0.2 a [`Message`] may carry an `attachment` (a [`Media`]: a signed, expiring
//! link to a file such as the invoice PDF) and its [`Template`] a `header` and `buttons`.
//! A channel that cannot send a file answers [`PluginError::Unsupported`] and the kernel
//! sends the text alone: never drop an attachment silently. A [`StatusUpdate`] carries the
//! provider's own time of the event in `at` (RFC 3339) when the provider gives one; the
//! kernel keeps the latest receipt by it.
//!
//! ## A worked example: a JSON API with an idempotency key, and its unit test
//!
//! ```
//! use keel_sdk::http::{Request, Response};
//! use keel_sdk::notifier::*;
//! use keel_sdk::testing::FakeHost;
//! use keel_sdk::{config, fixtures, Features, PluginError, PluginInfo};
//!
//! struct Sms;
//!
//! impl Notifier for Sms {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("SMS", "0.1.0", "Text messages through an SMS gateway", Features::empty())
//!     }
//!
//!     fn send(msg: Message) -> Result<Receipt, PluginError> {
//!         let api = config::require("api_url")?;
//!         let token = config::secret("token")?;
//!         #[derive(serde::Deserialize)]
//!         struct Sent { id: String }
//!         let sent: Sent = Request::post(format!("{api}/messages"))
//!             .bearer(token.expose())
//!             // The message's reference is stable across retries: the provider drops repeats.
//!             .header("idempotency-key", msg.reference.as_str())
//!             .json(&serde_json::json!({ "to": msg.to, "text": msg.body }))?
//!             .send()?
//!             // 429 and 5xx: unavailable (retried); 401/403: misconfigured; other 4xx: internal.
//!             .error_for_status()?
//!             .json()?;
//!         Ok(Receipt { provider_id: sent.id, status: DeliveryStatus::Accepted })
//!     }
//! }
//!
//! // In the plugin crate: keel_sdk::export_notifier!(Sms);
//!
//! let host = FakeHost::new()
//!     .setting("api_url", "https://sms.example.com")
//!     .setting("token", "t-1")
//!     .respond(|req| match req.headers.iter().any(|(n, v)| n == "idempotency-key" && v == "ntf-000042") {
//!         true => Ok(Response { status: 202, headers: vec![], body: br#"{"id":"m-9"}"#.to_vec() }),
//!         false => Ok(Response { status: 400, headers: vec![], body: b"no key".to_vec() }),
//!     })
//!     .install();
//! let receipt = Sms::send(fixtures::message("+263771234567", "Invoice INV-7 is due")).unwrap();
//! assert_eq!(receipt.provider_id, "m-9");
//! assert!(String::from_utf8_lossy(&host.requests()[0].body).contains("\"to\":\"+263771234567\""));
//!
//! // A busy provider is a retry for the kernel, not a failure of the message.
//! let _busy = FakeHost::new()
//!     .setting("api_url", "https://sms.example.com")
//!     .setting("token", "t-1")
//!     .respond(|_| Ok(Response { status: 503, headers: vec![("retry-after".into(), "30".into())], body: vec![] }))
//!     .install();
//! let Err(PluginError::Unavailable(hint)) = Sms::send(fixtures::message("+263771234567", "hi")) else {
//!     panic!("unavailable")
//! };
//! assert_eq!(hint.retry_after_seconds, Some(30));
//! ```

use std::marker::PhantomData;

use crate::bindings::notifier::exports::keel::plugin::notifier::Guest;
pub use crate::bindings::notifier::exports::keel::plugin::notifier::{
    ButtonKind, DeliveryStatus, Inbound, InboundEvent, InboundMessage, Media, Message, Receipt,
    StatusUpdate, Template, TemplateButton, TemplateHeader,
};
use crate::{InboundRequest, PluginError, PluginInfo};

impl Template {
    /// Template `name` in `language` with its body `parameters`, in order; no header and
    /// no buttons (add them with [`with_header`](Template::with_header) and
    /// [`with_button`](Template::with_button)).
    ///
    /// ```
    /// use keel_sdk::notifier::{ButtonKind, Media, Template, TemplateButton, TemplateHeader};
    ///
    /// let pdf = Media::new("https://billing.example.com/f/Xy7", "application/pdf")
    ///     .with_filename("INV-2026-0042.pdf");
    /// let template = Template::new("invoice_due", "en", vec!["Rudo".into(), "USD 25.00".into()])
    ///     .with_header(TemplateHeader::Document(pdf))
    ///     .with_button(TemplateButton::url(0, "INV-2026-0042"));
    /// assert_eq!(template.buttons[0].kind, ButtonKind::Url);
    /// ```
    pub fn new(
        name: impl Into<String>,
        language: impl Into<String>,
        parameters: Vec<String>,
    ) -> Self {
        Self {
            name: name.into(),
            language: language.into(),
            parameters,
            header: None,
            buttons: Vec::new(),
        }
    }

    /// The same template with `header`'s parameters (a text header's, or its document or
    /// image).
    pub fn with_header(mut self, header: TemplateHeader) -> Self {
        self.header = Some(header);
        self
    }

    /// The same template with one more button parameter.
    pub fn with_button(mut self, button: TemplateButton) -> Self {
        self.buttons.push(button);
        self
    }
}

impl TemplateButton {
    /// The dynamic suffix of the URL of the template's button at `index` (from 0).
    pub fn url(index: u8, suffix: impl Into<String>) -> Self {
        Self {
            index,
            kind: ButtonKind::Url,
            parameter: suffix.into(),
        }
    }

    /// The payload the quick-reply button at `index` (from 0) carries back when pressed.
    pub fn quick_reply(index: u8, payload: impl Into<String>) -> Self {
        Self {
            index,
            kind: ButtonKind::QuickReply,
            parameter: payload.into(),
        }
    }
}

impl Media {
    /// The file at `link` of type `media_type` (`"application/pdf"`), with no file name and
    /// no caption.
    pub fn new(link: impl Into<String>, media_type: impl Into<String>) -> Self {
        Self {
            link: link.into(),
            filename: None,
            media_type: media_type.into(),
            caption: None,
        }
    }

    /// The same file with the name the recipient sees (`"INV-2026-0042.pdf"`).
    pub fn with_filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }

    /// The same file with a caption, on channels that show one.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }
}

/// A notifier. [`describe`](Notifier::describe) and [`send`](Notifier::send) are
/// required; [`verify_inbound`](Notifier::verify_inbound) answers
/// [`PluginError::Unsupported`] until implemented (feature `INBOUND`).
///
/// `Message::reference` is stable across retries: pass it to the provider where it takes
/// an idempotency key, so a retried send does not reach the person twice.
pub trait Notifier {
    /// Name, version, description and features.
    fn describe() -> PluginInfo;

    /// Sends one message.
    fn send(msg: Message) -> Result<Receipt, PluginError>;

    /// Verifies an inbound webhook over its raw bytes and reads its events.
    fn verify_inbound(req: InboundRequest) -> Result<Inbound, PluginError> {
        let _ = req;
        Err(PluginError::Unsupported)
    }
}

#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Notifier + 'static> Guest for Adapter<T> {
    fn describe() -> PluginInfo {
        crate::export::enter();
        T::describe()
    }
    fn send(msg: Message) -> Result<Receipt, PluginError> {
        crate::export::enter();
        T::send(msg)
    }
    fn verify_inbound(req: InboundRequest) -> Result<Inbound, PluginError> {
        crate::export::enter();
        T::verify_inbound(req)
    }
}

/// Exports a [`Notifier`] implementation as the component's `keel:plugin/notifier`
/// interface. Use once, at the crate root of a `cdylib` plugin crate.
#[macro_export]
macro_rules! export_notifier {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __KeelNotifierExport = $crate::notifier::Adapter<$plugin>;
        $crate::bindings::notifier::export!(__KeelNotifierExport with_types_in $crate::bindings::notifier);
    };
}
