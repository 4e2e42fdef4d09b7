//! Assistants: implement [`Assistant`] and export it with
//! [`export_assistant!`](crate::export_assistant).
//!
//! No kernel flow calls an assistant yet: tickets and live chats come with a later issue.
//! Until then `keel plugin call <id> suggest --input @conversation.json` runs one by hand.
//! What follows is the contract of `wit/assistant.wit` those flows will hold the plugin to:
//!
//! - `suggest` gets the conversation so far, oldest turn first, with the customer's
//!   language when known and facts the kernel adds (`client.name`, `service.status`), and
//!   answers one reply. It is a question, not an action: it may be asked again for the same
//!   conversation (another suggestion, a retry), so it changes nothing at the provider
//!   beyond answering, and whether the reply is sent is not the plugin's to decide.
//! - `confidence` is a decimal string from `"0"` to `"1"`, never a float. `handover` says a
//!   person should take over rather than the reply be sent (the customer asks for a person,
//!   a question the model should not answer).
//! - Turns of role [`Role::Assistant`] are earlier suggestions that were sent;
//!   [`Role::System`] turns are the kernel's notes (a status change, a handover), not
//!   anyone's words to answer.
//! - The conversation is the customer's personal data: send it only to the model's API
//!   that the manifest declares and the admin grants, and keep it out of logs.
//! - There are no optional operations: `describe` claims no
//!   [`Features`](crate::Features).
//!
//! What each error tells the kernel (`wit/types.wit`):
//!
//! | Error | For an assistant | Retried? |
//! |---|---|---|
//! | `invalid-input` | nothing to answer, a conversation too long for the model | no: shown to whoever asked |
//! | `refused` | the provider declined to answer (its content policy) | no: recorded as the outcome |
//! | `unavailable` | the model is down or rate-limited: a timeout, 429, 5xx ([`error_for_status`](crate::http::Response::error_for_status) maps them) | yes, later, after `retry-after-seconds` when given |
//! | `misconfigured` | the key is refused (401/403), a model the provider does not have, an outbound host not granted | not until the admin changes the settings |
//! | `internal` | a reply the plugin does not understand | no: left for a person |
//!
//! ## A worked example: a hosted model's JSON API, and its unit test
//!
//! ```
//! use keel_sdk::assistant::*;
//! use keel_sdk::http::{Request, Response};
//! use keel_sdk::testing::FakeHost;
//! use keel_sdk::{config, Features, PluginError, PluginInfo};
//! use serde_json::json;
//!
//! struct Helper;
//!
//! /// `"0"`, `"1"`, `"0.86"`, `"1.00"`: a decimal from 0 to 1, checked as text.
//! fn unit_decimal(text: &str) -> bool {
//!     let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
//!     !fraction.is_empty()
//!         && fraction.bytes().all(|b| b.is_ascii_digit())
//!         && (whole == "0" || (whole == "1" && fraction.bytes().all(|b| b == b'0')))
//! }
//!
//! impl Assistant for Helper {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("Helper", "0.1.0", "Suggests replies with a hosted language model", Features::empty())
//!     }
//!
//!     fn suggest(conversation: Conversation) -> Result<Suggestion, PluginError> {
//!         if !conversation.turns.iter().any(|t| t.role == Role::Customer) {
//!             return Err(PluginError::invalid_input("the customer has not written anything to answer"));
//!         }
//!         let api = config::require("api_url")?;
//!         let key = config::secret("api_key")?;
//!         let messages: Vec<_> = conversation
//!             .turns
//!             .iter()
//!             .map(|t| {
//!                 let role = match t.role {
//!                     Role::Customer => "user",
//!                     Role::Agent | Role::Assistant => "assistant",
//!                     Role::System => "system",
//!                 };
//!                 json!({ "role": role, "content": t.text })
//!             })
//!             .collect();
//!         let facts: Vec<String> = conversation.context.iter().map(|(k, v)| format!("{k}: {v}")).collect();
//!         #[derive(serde::Deserialize)]
//!         struct Draft { reply: String, confidence: String, escalate: bool }
//!         let draft: Draft = Request::post(format!("{api}/v1/replies"))
//!             .bearer(key.expose())
//!             .json(&json!({
//!                 "instructions": config::get("instructions").unwrap_or_default(),
//!                 "language": conversation.language.as_deref().unwrap_or("en"),
//!                 "facts": facts,
//!                 "messages": messages,
//!             }))?
//!             .send()?
//!             // 429 and 5xx: unavailable (retried); 401/403: misconfigured; other 4xx: internal.
//!             .error_for_status()?
//!             .json()?;
//!         // A decimal string end to end: checked, never turned into a float.
//!         if !unit_decimal(&draft.confidence) {
//!             return Err(PluginError::internal(format!("confidence {:?} is not a decimal from 0 to 1", draft.confidence)));
//!         }
//!         Ok(Suggestion { handover: draft.escalate || draft.reply.trim().is_empty(), text: draft.reply, confidence: draft.confidence })
//!     }
//! }
//!
//! // In the plugin crate (crate-type = ["cdylib"]): keel_sdk::export_assistant!(Helper);
//!
//! let host = FakeHost::new()
//!     .setting("api_url", "https://ai.example.com")
//!     .setting("api_key", "sk-1")
//!     .respond(|_| Ok(Response { status: 200, headers: vec![], body: br#"{"reply":"Your hosting is suspended until invoice INV-7 is paid; paying it brings the site back.","confidence":"0.86","escalate":false}"#.to_vec() }))
//!     .install();
//!
//! // The conversation, built as the kernel sends it.
//! let ticket = Conversation {
//!     id: "T-1042".into(),
//!     subject: Some("Website down".into()),
//!     language: Some("en".into()),
//!     turns: vec![Turn { role: Role::Customer, author: "Rudo Chikwanha".into(), text: "My website has been down since this morning.".into(), at: "2026-03-02T07:41:00Z".into() }],
//!     context: vec![("client.name".into(), "Rudo".into()), ("service.status".into(), "suspended".into())],
//! };
//! let suggestion = Helper::suggest(ticket.clone()).unwrap();
//! assert_eq!((suggestion.confidence.as_str(), suggestion.handover), ("0.86", false));
//! let sent = &host.requests()[0];
//! assert_eq!(sent.url, "https://ai.example.com/v1/replies");
//! let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
//! assert_eq!(body["messages"][0], json!({ "role": "user", "content": "My website has been down since this morning." }));
//! assert_eq!(body["facts"][1], "service.status: suspended");
//!
//! // Nothing from the customer yet: nothing to answer, and no request made.
//! assert!(matches!(Helper::suggest(Conversation { turns: vec![], ..ticket.clone() }), Err(PluginError::InvalidInput(_))));
//! assert_eq!(host.requests().len(), 1);
//!
//! // A rate-limited model is a retry for later, not a failure.
//! let _busy = FakeHost::new()
//!     .setting("api_url", "https://ai.example.com")
//!     .setting("api_key", "sk-1")
//!     .respond(|_| Ok(Response { status: 429, headers: vec![("retry-after".into(), "20".into())], body: b"slow down".to_vec() }))
//!     .install();
//! let Err(PluginError::Unavailable(hint)) = Helper::suggest(ticket) else { panic!("unavailable") };
//! assert_eq!(hint.retry_after_seconds, Some(20));
//! ```

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
