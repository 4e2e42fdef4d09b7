//! The kernel's inputs as a plugin's tests need them: realistic values, each a plain struct
//! to change before use (`PaymentRequest { method: Some("ecocash".into()), ..payment_request(2500, "USD") }`).
//! They work natively and in `keel_sdk::testing` tests alike.
//!
//! ```
//! use keel_sdk::fixtures;
//! use keel_sdk::gateway::PaymentRequest;
//!
//! let req = PaymentRequest { method: Some("ecocash".into()), ..fixtures::payment_request(2500, "USD") };
//! assert_eq!(req.amount.minor, 2500);
//! assert_eq!(req.payer.email, "rudo@example.co.zw");
//! let callback = fixtures::inbound_form("reference=INV-2026-000123-AB12CD&status=Paid");
//! assert_eq!(callback.header("content-type"), Some("application/x-www-form-urlencoded"));
//! ```

use crate::gateway::{PaymentRef, PaymentRequest};
use crate::notifier::Message;
use crate::{Contact, InboundRequest, Money};

/// The kernel's reference of the payment in [`payment_request`].
pub const REFERENCE: &str = "INV-2026-000123-AB12CD";

/// A payer: a person in Harare with an e-mail address and a mobile number.
pub fn contact() -> Contact {
    Contact {
        first_name: "Rudo".into(),
        last_name: "Chikwanha".into(),
        company: None,
        email: "rudo@example.co.zw".into(),
        phone: Some("+263771234567".into()),
        address: None,
    }
}

/// A payment of `minor` units of `currency` for invoice `INV-2026-000123`, as the kernel
/// asks a gateway's `initiate`.
pub fn payment_request(minor: i64, currency: &str) -> PaymentRequest {
    PaymentRequest {
        reference: REFERENCE.into(),
        invoice_id: "INV-2026-000123".into(),
        amount: Money::new(minor, currency),
        description: "Invoice INV-2026-000123".into(),
        payer: contact(),
        return_url: format!("https://billing.example.com/pay/return/{REFERENCE}"),
        callback_url: "https://billing.example.com/hooks/gateway/my-gateway".into(),
        method: None,
    }
}

/// The payment of [`payment_request`] as the kernel names it to `poll`, with the provider's
/// reference and the `state` the plugin returned from `initiate`.
pub fn payment_ref(provider_reference: &str, state: Option<&str>) -> PaymentRef {
    PaymentRef {
        reference: REFERENCE.into(),
        provider_reference: provider_reference.into(),
        state: state.map(str::to_owned),
    }
}

/// A provider's `POST` with a form body, as the kernel hands it to `verify-callback`.
pub fn inbound_form(body: &str) -> InboundRequest {
    inbound("application/x-www-form-urlencoded", body)
}

/// A provider's `POST` with a JSON body.
pub fn inbound_json(body: &str) -> InboundRequest {
    inbound("application/json", body)
}

fn inbound(content_type: &str, body: &str) -> InboundRequest {
    InboundRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("content-type".into(), content_type.into())],
        body: body.as_bytes().to_vec(),
    }
}

/// A plain-text message to `to`, as the kernel asks a notifier's `send`.
pub fn message(to: &str, body: &str) -> Message {
    Message {
        reference: "ntf-000042".into(),
        to: to.into(),
        subject: None,
        body: body.into(),
        template: None,
        attachment: None,
    }
}
