//! Constructors and conversions for [`PluginError`]. (Its `Display` and `Error` impls
//! come with the generated bindings.)

use crate::types::{PluginError, RetryHint};

impl PluginError {
    /// The input cannot be processed as given.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// The provider said no.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refused(message.into())
    }

    /// The provider is unavailable; try again later.
    pub fn unavailable(reason: impl Into<String>, retry_after_seconds: Option<u32>) -> Self {
        Self::Unavailable(RetryHint {
            reason: reason.into(),
            retry_after_seconds,
        })
    }

    /// The settings are wrong or missing.
    pub fn misconfigured(message: impl Into<String>) -> Self {
        Self::Misconfigured(message.into())
    }

    /// A bug, or a reply the plugin does not understand.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }
}

impl From<crate::http::Error> for PluginError {
    /// A denied destination is a settings problem (the admin's grant or the manifest);
    /// time-outs and connection failures are worth a retry; the rest are plugin bugs.
    fn from(err: crate::http::Error) -> Self {
        use crate::http::Error as E;
        match err {
            E::Denied(m) => Self::Misconfigured(format!("outbound request denied: {m}")),
            E::Timeout => Self::unavailable("the provider did not answer in time", None),
            E::Connection(m) => {
                Self::unavailable(format!("could not reach the provider: {m}"), None)
            }
            E::InvalidRequest(m) => Self::Internal(format!("invalid outbound request: {m}")),
            E::TooLarge(m) => Self::Internal(format!("body too large: {m}")),
            E::TooManyRequests(m) => Self::Internal(format!("too many requests in one call: {m}")),
        }
    }
}

impl From<serde_json::Error> for PluginError {
    fn from(err: serde_json::Error) -> Self {
        Self::Internal(format!("JSON: {err}"))
    }
}
