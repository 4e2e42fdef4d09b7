//! Assistants: implement [`Assistant`] and export it with
//! [`export_assistant!`](crate::export_assistant).

use std::marker::PhantomData;

use crate::bindings::assistant::exports::keel::plugin::assistant::Guest;
pub use crate::bindings::assistant::exports::keel::plugin::assistant::{
    Conversation, Role, Suggestion, Turn,
};
use crate::{PluginError, PluginInfo};

/// An assistant that suggests replies in tickets and chats.
pub trait Assistant {
    /// Name, version, description and features.
    fn describe() -> PluginInfo;

    /// Suggests the next reply.
    fn suggest(conversation: Conversation) -> Result<Suggestion, PluginError>;
}

#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Assistant + 'static> Guest for Adapter<T> {
    fn describe() -> PluginInfo {
        crate::export::enter();
        T::describe()
    }
    fn suggest(conversation: Conversation) -> Result<Suggestion, PluginError> {
        crate::export::enter();
        T::suggest(conversation)
    }
}

/// Exports an [`Assistant`] implementation as the component's `keel:plugin/assistant`
/// interface. Use once, at the crate root of a `cdylib` plugin crate.
#[macro_export]
macro_rules! export_assistant {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __KeelAssistantExport = $crate::assistant::Adapter<$plugin>;
        $crate::bindings::assistant::export!(__KeelAssistantExport with_types_in $crate::bindings::assistant);
    };
}
