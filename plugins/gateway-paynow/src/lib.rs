//! Paynow (Zimbabwe): web checkout and express checkout (EcoCash, OneMoney, InnBucks,
//! O'mari/PayGo, Visa/Mastercard and ZimSwitch card tokens), in USD and ZWG, one Paynow
//! integration per currency. The wire format is in `PROVIDERS.md` section 1 of the shared
//! notes; the settings and behaviour for an admin are in this crate's `README.md`.
//!
//! Layout:
//! - [`settings`]: `api_url`, the integration (id and key) of each currency, `auth_email`;
//! - [`message`]: Paynow's form messages and their SHA-512 hash, both directions;
//! - [`initiate`]: the payer's method, the signed initiate request, Paynow's reply;
//! - [`update`]: status updates, poll and trace replies, and Paynow's status words;
//! - `tests`: whole calls against a scripted fake kernel, with Paynow's test vectors.
//!
//! Every payment's reference is recorded in the plugin's storage (`ref:<reference>` → the
//! currency) before Paynow is asked, so that a status update or a poll is checked with
//! the key of the integration that started it.

pub mod initiate;
pub mod message;
pub mod settings;
pub mod update;

use keel_sdk::gateway::{
    Callback, Gateway, PaymentRef, PaymentRequest, PaymentStarted, PaymentUpdate, RefundRequest,
    RefundStarted,
};
use keel_sdk::http::Request;
use keel_sdk::{Features, InboundRequest, PluginError, PluginInfo};

use crate::message::Message;

/// The Paynow gateway.
pub struct Paynow;

impl Gateway for Paynow {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "Paynow",
            env!("CARGO_PKG_VERSION"),
            "Paynow Zimbabwe: web checkout, EcoCash, OneMoney, InnBucks, O'mari and card \
             tokens, in USD and ZWG",
            Features::POLLING,
        )
    }

    /// Starts a payment with the integration of `req.amount`'s currency (none set up for
    /// it: refused). `req.method` chooses the checkout: none or `web` sends the payer to
    /// Paynow's page (a redirect); `ecocash`, `onemoney`, `innbucks`, `paygo` (`omari`)
    /// push a prompt to `req.payer.phone`, and `vmc:<token>` / `zimswitch:<token>` charge
    /// a card token (instructions). The state kept is Paynow's poll URL.
    ///
    /// Paynow's `Invalid id.` and `Invalid Hash` are misconfigured; its other errors
    /// (`Insufficient balance`) refused; an HTTP error or no answer unavailable; a reply
    /// that does not verify internal.
    fn initiate(req: PaymentRequest) -> Result<PaymentStarted, PluginError> {
        initiate::initiate(req)
    }

    /// Checks a status update Paynow posted to the result URL: the hash over every field
    /// in order, with the key of the integration the payment was started on. A malformed
    /// body, a missing or wrong hash, or a reference this plugin never started is refused.
    /// The kernel should still confirm by polling before acting on it: the result URL is
    /// public, and Paynow advises so.
    fn verify_callback(req: InboundRequest) -> Result<Callback, PluginError> {
        update::verify_callback(req)
    }

    /// Polls the payment's poll URL (its state), which must be on `api_url`'s scheme, host
    /// and port; without one (initiate never got Paynow's answer), traces it by its
    /// reference, and a payment Paynow never saw is failed (`NotFound`).
    fn poll(payment: PaymentRef) -> Result<PaymentUpdate, PluginError> {
        update::poll(payment)
    }

    /// Unsupported: Paynow has no refund API; refunds are made in Paynow's dashboard.
    fn refund(req: RefundRequest) -> Result<RefundStarted, PluginError> {
        let _ = req;
        Err(PluginError::Unsupported)
    }
}

keel_sdk::export_gateway!(Paynow);

/// The storage key recording which currency's integration started `reference`.
fn reference_key(reference: &str) -> String {
    format!("ref:{reference}")
}

/// Sends a request to Paynow and decodes its reply strictly. No answer or an HTTP error
/// is [`PluginError::Unavailable`] (Paynow answers 200 even for errors, so a non-2xx is the
/// service or a proxy in trouble); a reply that is not a form is internal.
fn send(request: Request) -> Result<Message, PluginError> {
    let url = request.url().to_owned();
    let response = request.send()?;
    let snippet = || -> String { response.text().chars().take(200).collect() };
    if !response.is_success() {
        let retry_after = response
            .header("retry-after")
            .and_then(|v| v.trim().parse().ok());
        return Err(PluginError::unavailable(
            format!(
                "Paynow answered HTTP {} at {url}: {}",
                response.status,
                snippet()
            ),
            retry_after,
        ));
    }
    response
        .form_strict()
        .map(Message::from_fields)
        .map_err(|e| {
            PluginError::internal(format!(
                "Paynow's reply from {url} is not form-encoded ({e}): {}",
                snippet()
            ))
        })
}

#[cfg(test)]
mod tests;
