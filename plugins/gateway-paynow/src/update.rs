//! What became of a payment: the status updates Paynow posts to the result URL
//! (`verify_callback`), and the replies to a poll or a trace (`poll`). All three carry the
//! same fields and the same hash (PROVIDERS.md 1.5, 1.6), and each is checked with the key
//! of the integration the payment was started on, found by its reference.

use keel_sdk::gateway::{Callback, PaymentRef, PaymentStatus, PaymentUpdate};
use keel_sdk::http::{Origin, Request};
use keel_sdk::{InboundReply, InboundRequest, Money, PluginError, kv};

use crate::initiate::{MERCHANT_TRACE_MAX, merchant_trace};
use crate::message::{Message, Outbound, Unverified};
use crate::settings::{EXPONENT, Integration, Settings};
use crate::{reference_key, send};

/// Keel's status for Paynow's word, compared without case; `None` for a word this plugin
/// does not know. `Awaiting Delivery` and `Delivered` are paid: the money is captured
/// (Paynow's SDKs treat only `Paid` as paid; PROVIDERS.md 1.5 says why not to copy that).
pub fn status_of(word: &str) -> Option<PaymentStatus> {
    Some(match word.trim().to_ascii_lowercase().as_str() {
        "paid" | "awaiting delivery" | "delivered" => PaymentStatus::Paid,
        "created" | "sent" => PaymentStatus::Pending,
        "cancelled" => PaymentStatus::Cancelled,
        "failed" => PaymentStatus::Failed,
        "refunded" => PaymentStatus::Refunded,
        "disputed" => PaymentStatus::Disputed,
        _ => return None,
    })
}

/// Reads a verified status message. An unknown status is pending, with a warning: never
/// paid. The amount is read exactly in the integration's currency; a malformed one is an
/// error (the caller decides which).
fn read(
    message: &Message,
    reference: &str,
    provider_reference: &str,
    integration: &Integration,
) -> Result<PaymentUpdate, String> {
    let word = message.require("status")?;
    let status = status_of(word).unwrap_or_else(|| {
        keel_sdk::warn!(
            "Paynow reported the unknown status {word:?} for {reference}; treated as pending \
             until Paynow says more"
        );
        PaymentStatus::Pending
    });
    let amount = match message.get("amount") {
        None | Some("") => None,
        Some(text) => Some(
            Money::parse_decimal(text, EXPONENT, integration.currency)
                .map_err(|e| e.to_string())?,
        ),
    };
    Ok(PaymentUpdate {
        reference: reference.to_owned(),
        provider_reference: message
            .get("paynowreference")
            .filter(|r| !r.is_empty())
            .unwrap_or(provider_reference)
            .to_owned(),
        status,
        amount,
        provider_status: word.to_owned(),
    })
}

/// The currency `initiate` recorded for `reference`, if it did.
fn recorded_currency(reference: &str) -> Result<Option<String>, PluginError> {
    Ok(kv::get(&reference_key(reference))?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

/// The integration a recorded currency names; gone from the settings is misconfigured.
fn integration_for<'s>(
    settings: &'s Settings,
    currency: &str,
    reference: &str,
) -> Result<&'s Integration, PluginError> {
    settings.integration(currency).ok_or_else(|| {
        PluginError::misconfigured(format!(
            "the payment {reference} was started with the {currency} integration, which is no \
             longer set up"
        ))
    })
}

/// Checks a status update Paynow posted and reads it; see [`crate::Paynow`].
pub fn verify_callback(req: InboundRequest) -> Result<Callback, PluginError> {
    let message = Message::parse(&req.body)
        .map_err(|e| PluginError::refused(format!("malformed form encoding: {e}")))?;
    if message.get("hash").is_none() {
        return Err(PluginError::refused("missing hash"));
    }
    let reference = message
        .require("reference")
        .map_err(|_| PluginError::refused("missing reference"))?;
    let settings = Settings::load()?;
    let Some(currency) = recorded_currency(reference)? else {
        // Named as unknown only to a sender holding one of the integration keys (Paynow
        // itself, for a payment started elsewhere with the same integration): to anyone else
        // it is refused like any forgery, so the answer tells nobody which references exist.
        let mut why = Unverified::Mismatch;
        for integration in settings.integrations() {
            match message.verify(&integration.key) {
                Ok(()) => {
                    return Err(PluginError::refused(format!(
                        "unknown reference {reference:?}: no Paynow payment was started with it"
                    )));
                }
                Err(e) => why = e,
            }
        }
        return Err(PluginError::refused(why.to_string()));
    };
    let integration = integration_for(&settings, &currency, reference)?;
    message
        .verify(&integration.key)
        .map_err(|why| PluginError::refused(why.to_string()))?;
    let update = read(&message, reference, reference, integration)
        .map_err(|why| PluginError::refused(format!("a status update Paynow signed: {why}")))?;
    Ok(Callback {
        update,
        reply: InboundReply::ok(),
    })
}

/// Asks Paynow where a payment stands; see [`crate::Paynow`].
pub fn poll(payment: PaymentRef) -> Result<PaymentUpdate, PluginError> {
    let settings = Settings::load()?;
    let poll_url = payment
        .state
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    if let Some(url) = poll_url
        && Origin::of(url).ok().as_ref() != Some(&settings.origin)
    {
        return Err(PluginError::refused(format!(
            "the poll URL {url:?} is not on the Paynow host {} (the setting api_url); it was not \
             followed",
            settings.origin
        )));
    }
    let currency = recorded_currency(&payment.reference)?.ok_or_else(|| {
        PluginError::internal(format!(
            "no record of which Paynow integration started {}: it was not started by this \
             plugin, or its storage was lost",
            payment.reference
        ))
    })?;
    let integration = integration_for(&settings, &currency, &payment.reference)?;
    let reply = match poll_url {
        // Paynow's poll is a POST with an empty body (PROVIDERS.md 1.1).
        Some(url) => send(Request::post(url))?,
        None => send(trace_request(&settings, integration, &payment.reference)?)?,
    };
    read_reply(&reply, &payment, integration)
}

/// `initiate` never got a poll URL back: look the payment up by its merchant trace.
fn trace_request(
    settings: &Settings,
    integration: &Integration,
    reference: &str,
) -> Result<Request, PluginError> {
    let trace = merchant_trace(reference).ok_or_else(|| {
        PluginError::internal(format!(
            "the payment {reference} has no poll URL and cannot be traced: its reference is \
             longer than the {MERCHANT_TRACE_MAX} characters of a merchant trace, so none \
             was sent"
        ))
    })?;
    let fields = Outbound::new()
        .field("id", integration.id.as_str())
        .field("merchanttrace", trace)
        .field("status", "Message")
        .signed(&integration.key);
    Ok(Request::post(settings.endpoint("trace")).form(&fields))
}

/// Reads a poll or trace reply for `payment`: `status=Error` means Paynow could not answer
/// (not that the payment failed), `NotFound` that Paynow never saw it; anything else is a
/// status message like a callback's.
fn read_reply(
    reply: &Message,
    payment: &PaymentRef,
    integration: &Integration,
) -> Result<PaymentUpdate, PluginError> {
    let status = reply.get("status").unwrap_or_default();
    if status.eq_ignore_ascii_case("error") {
        let error = reply.get("error").unwrap_or_default();
        return Err(PluginError::unavailable(
            format!("Paynow could not report on {}: {error}", payment.reference),
            None,
        ));
    }
    let unverified = |why: Unverified| {
        PluginError::internal(format!(
            "Paynow's reply about {} did not verify ({why}) with the {} integration's key",
            payment.reference, integration.currency
        ))
    };
    reply.verify(&integration.key).map_err(unverified)?;
    if let Some(other) = reply.get("reference")
        && other != payment.reference
    {
        return Err(PluginError::internal(format!(
            "Paynow answered about {other:?} when asked about {}",
            payment.reference
        )));
    }
    if status.eq_ignore_ascii_case("notfound") {
        return Ok(PaymentUpdate {
            reference: payment.reference.clone(),
            provider_reference: payment.provider_reference.clone(),
            status: PaymentStatus::Failed,
            amount: None,
            provider_status: status.to_owned(),
        });
    }
    read(
        reply,
        &payment.reference,
        &payment.provider_reference,
        integration,
    )
    .map_err(|why| PluginError::internal(format!("Paynow's reply: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paynow_words_map_to_keel_statuses() {
        use PaymentStatus::*;
        for (word, status) in [
            ("Paid", Some(Paid)),
            ("paid", Some(Paid)),
            ("Awaiting Delivery", Some(Paid)),
            ("AWAITING DELIVERY", Some(Paid)),
            ("Delivered", Some(Paid)),
            ("Created", Some(Pending)),
            ("Sent", Some(Pending)),
            ("Cancelled", Some(Cancelled)),
            ("Failed", Some(Failed)),
            ("Refunded", Some(Refunded)),
            ("Disputed", Some(Disputed)),
            ("Pending3ds", None),
            ("AwaitingDelivery", None),
            ("", None),
        ] {
            assert_eq!(status_of(word), status, "{word:?}");
        }
    }
}
