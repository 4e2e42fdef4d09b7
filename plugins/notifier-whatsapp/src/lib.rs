//! WhatsApp through Meta's Cloud API (Graph API): text messages inside the 24-hour
//! customer service window, template messages outside it, and the webhooks that report
//! delivery statuses and replies. The wire format is in `PROVIDERS.md` section 3 of the
//! shared notes; the settings, the error mapping and the webhook setup for an admin are in
//! this crate's `README.md`.
//!
//! Layout:
//! - [`settings`]: the access token, the phone number id, the Graph version and base, and
//!   the webhook secrets (the app secret and the verify token);
//! - [`send`]: the recipient's E.164 number, the text, template (header, body and button
//!   parameters), document and image bodies, and Graph's error codes mapped to the
//!   kernel's errors;
//! - [`inbound`]: the subscription check, the `X-Hub-Signature-256` check and the events;
//! - `tests`: whole calls against a scripted fake kernel, with PROVIDERS.md 3.5's vector.
//!
//! What the kernel does with each answer (the SDK's `notifier` module): `send`'s
//! `unavailable` is retried (after `Retry-After` when WhatsApp gives one); `refused`,
//! `invalid-input` and `misconfigured` are final for the message, and `refused` naming
//! code 131047 says a template message is needed. (Today the outbox sends e-mail only; the
//! WhatsApp channel, its template fallback and its webhook route come with the channel
//! work.) Keel has no notifier webhook route yet, only `/hooks/gateway/{id}`; the intent
//! for `verify-inbound` is that hook's: `refused` (a forged or unsigned request, a wrong
//! verify token) is answered 400 and changes nothing, and any other failure, `internal`
//! included (a signed body that is not the JSON expected), 503, so that Meta delivers it
//! again later.

pub mod inbound;
pub mod send;
pub mod settings;

use keel_sdk::notifier::{Inbound, Message, Notifier, Receipt};
use keel_sdk::{Features, InboundRequest, PluginError, PluginInfo};

/// The WhatsApp Cloud API notifier.
pub struct WhatsApp;

impl Notifier for WhatsApp {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "WhatsApp",
            env!("CARGO_PKG_VERSION"),
            "WhatsApp Cloud API: text, template and document messages, delivery statuses and \
             replies through signed webhooks",
            Features::INBOUND,
        )
    }

    /// Sends `msg.template` as a template message, else `msg.attachment` as a document or
    /// image message captioned with `msg.body`, else `msg.body` as a text message, to
    /// `msg.to` (E.164, `+263771234567`; anything else is invalid input). The receipt's
    /// provider id is WhatsApp's `wamid`, the key of later statuses.
    fn send(msg: Message) -> Result<Receipt, PluginError> {
        send::send(msg)
    }

    /// Answers Meta's subscription check (`GET`) or reads a signed event notification
    /// (`POST`) into delivery statuses and inbound messages.
    fn verify_inbound(req: InboundRequest) -> Result<Inbound, PluginError> {
        inbound::verify_inbound(req)
    }
}

keel_sdk::export_notifier!(WhatsApp);

#[cfg(test)]
mod tests;
