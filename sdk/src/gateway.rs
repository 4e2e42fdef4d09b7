//! Payment gateways: implement [`Gateway`] and export it with
//! [`export_gateway!`](crate::export_gateway).
//!
//! The kernel records each payment under its own `reference` before it calls `initiate`,
//! sends the payer where [`NextAction`] says, and treats a provider's callback as a trigger:
//! `verify-callback` checks the signature over the raw bytes and reads the update, then, for a
//! gateway with the `POLLING` feature, the kernel asks `poll` and acts only on that answer.
//! What `initiate` returns as `state` comes back in [`PaymentRef`] (a poll URL, say).
//!
//! ## A worked example: a gateway with signed callbacks, and its unit test
//!
//! ```
//! use keel_sdk::gateway::*;
//! use keel_sdk::http::{Request, Response};
//! use keel_sdk::testing::FakeHost;
//! use keel_sdk::{config, digest, fixtures, Features, InboundReply, InboundRequest, Money, PluginError, PluginInfo};
//!
//! struct Voucher;
//!
//! impl Gateway for Voucher {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("Voucher", "0.1.0", "Pays with a provider's vouchers", Features::empty())
//!     }
//!
//!     fn initiate(req: PaymentRequest) -> Result<PaymentStarted, PluginError> {
//!         let api = config::require("api_url")?;
//!         let key = config::secret("api_key")?;
//!         let id = Request::post(format!("{api}/payments"))
//!             .bearer(key.expose())
//!             .form(&[("reference", req.reference.as_str()), ("amount", &req.amount.to_major()?)])
//!             .send()?
//!             .error_for_status()?
//!             .text();
//!         Ok(PaymentStarted {
//!             action: NextAction::Redirect(format!("{api}/pay/{id}")),
//!             provider_reference: id,
//!             status: PaymentStatus::Pending,
//!             state: None,
//!         })
//!     }
//!
//!     fn verify_callback(req: InboundRequest) -> Result<Callback, PluginError> {
//!         // The signature first, over the raw bytes, compared in constant time.
//!         let secret = config::secret("webhook_secret")?;
//!         let claimed = req.header("x-signature").ok_or_else(|| PluginError::refused("no signature"))?;
//!         let expected = digest::hex(&digest::hmac_sha256(secret.expose(), &req.body));
//!         if !digest::eq_hex(claimed, &expected) {
//!             return Err(PluginError::refused("signature mismatch"));
//!         }
//!         let fields = req.form_strict().map_err(|e| PluginError::refused(e.to_string()))?;
//!         let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
//!         Ok(Callback {
//!             update: PaymentUpdate {
//!                 reference: get("reference"),
//!                 provider_reference: get("id"),
//!                 // An unknown word stays pending: never paid on a guess.
//!                 status: if get("status") == "paid" { PaymentStatus::Paid } else { PaymentStatus::Pending },
//!                 amount: Some(Money::from_major(&get("amount"), &get("currency"))?),
//!                 provider_status: get("status"),
//!             },
//!             reply: InboundReply::ok(),
//!         })
//!     }
//! }
//!
//! // In the plugin crate (crate-type = ["cdylib"]): keel_sdk::export_gateway!(Voucher);
//!
//! // A native unit test: the settings, the provider's answer, then a signed callback.
//! let host = FakeHost::new()
//!     .setting("api_url", "https://vouchers.example.com")
//!     .setting("api_key", "k-1")
//!     .setting("webhook_secret", "s3cret")
//!     .respond(|_| Ok(Response { status: 201, headers: vec![], body: b"V-77".to_vec() }))
//!     .install();
//! let started = Voucher::initiate(fixtures::payment_request(2500, "USD")).unwrap();
//! assert_eq!(started.action, NextAction::Redirect("https://vouchers.example.com/pay/V-77".into()));
//! assert!(String::from_utf8_lossy(&host.requests()[0].body).contains("amount=25.00"));
//!
//! let body = format!("reference={}&id=V-77&status=paid&amount=25.00&currency=USD", fixtures::REFERENCE);
//! let signature = digest::hex(&digest::hmac_sha256("s3cret", body.as_bytes()));
//! let mut callback = fixtures::inbound_form(&body);
//! callback.headers.push(("x-signature".into(), signature));
//! let update = Voucher::verify_callback(callback.clone()).unwrap().update;
//! assert_eq!((update.status, update.amount), (PaymentStatus::Paid, Some(Money::new(2500, "USD"))));
//!
//! // A forged one is refused: what the kernel answers the provider is 400 `callback_refused`.
//! callback.headers.last_mut().unwrap().1 = "00".into();
//! assert_eq!(Voucher::verify_callback(callback).unwrap_err(), PluginError::refused("signature mismatch"));
//! ```

use std::marker::PhantomData;

use crate::bindings::gateway::exports::keel::plugin::gateway::Guest;
pub use crate::bindings::gateway::exports::keel::plugin::gateway::{
    Callback, NextAction, PaymentRef, PaymentRequest, PaymentStarted, PaymentStatus, PaymentUpdate,
    RefundRequest, RefundStarted, RefundStatus,
};
use crate::{InboundRequest, PluginError, PluginInfo};

/// A payment gateway. Only [`describe`](Gateway::describe) and
/// [`initiate`](Gateway::initiate) are required; the others answer
/// [`PluginError::Unsupported`] until implemented (and advertised in `describe`'s
/// features).
///
/// The kernel may repeat a call after a crash or a retry with the same `reference`: answer
/// the same way rather than charge twice.
pub trait Gateway {
    /// Name, version, description and features.
    fn describe() -> PluginInfo;

    /// Starts a payment.
    fn initiate(req: PaymentRequest) -> Result<PaymentStarted, PluginError>;

    /// Verifies a provider callback over its raw bytes and reads the new status.
    fn verify_callback(req: InboundRequest) -> Result<Callback, PluginError> {
        let _ = req;
        Err(PluginError::Unsupported)
    }

    /// Asks the provider where a payment stands (feature `POLLING`).
    fn poll(payment: PaymentRef) -> Result<PaymentUpdate, PluginError> {
        let _ = payment;
        Err(PluginError::Unsupported)
    }

    /// Refunds a paid payment (feature `REFUNDS`).
    fn refund(req: RefundRequest) -> Result<RefundStarted, PluginError> {
        let _ = req;
        Err(PluginError::Unsupported)
    }
}

#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Gateway + 'static> Guest for Adapter<T> {
    fn describe() -> PluginInfo {
        crate::export::enter();
        T::describe()
    }
    fn initiate(req: PaymentRequest) -> Result<PaymentStarted, PluginError> {
        crate::export::enter();
        T::initiate(req)
    }
    fn verify_callback(req: InboundRequest) -> Result<Callback, PluginError> {
        crate::export::enter();
        T::verify_callback(req)
    }
    fn poll(payment: PaymentRef) -> Result<PaymentUpdate, PluginError> {
        crate::export::enter();
        T::poll(payment)
    }
    fn refund(req: RefundRequest) -> Result<RefundStarted, PluginError> {
        crate::export::enter();
        T::refund(req)
    }
}

/// Exports a [`Gateway`] implementation as the component's `keel:plugin/gateway`
/// interface. Use once, at the crate root of a `cdylib` plugin crate.
#[macro_export]
macro_rules! export_gateway {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __KeelGatewayExport = $crate::gateway::Adapter<$plugin>;
        $crate::bindings::gateway::export!(__KeelGatewayExport with_types_in $crate::bindings::gateway);
    };
}
