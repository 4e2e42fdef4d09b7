//! Notifiers: implement [`Notifier`] and export it with
//! [`export_notifier!`](crate::export_notifier).

use std::marker::PhantomData;

use crate::bindings::notifier::exports::keel::plugin::notifier::Guest;
pub use crate::bindings::notifier::exports::keel::plugin::notifier::{
    DeliveryStatus, Inbound, InboundEvent, InboundMessage, Message, Receipt, StatusUpdate, Template,
};
use crate::{InboundRequest, PluginError, PluginInfo};

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
