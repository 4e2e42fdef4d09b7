//! Payment gateways: implement [`Gateway`] and export it with
//! [`export_gateway!`](crate::export_gateway).

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
