//! How a plugin call can fail, as the rest of Keel sees it.

use std::fmt;

pub use crate::bindings::v0_2::host::keel::plugin::types::{PluginError, RetryHint};

/// A plugin call that did not produce an answer, or produced a plugin error.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginFailure {
    /// The plugin answered with an error; it says what the kernel should do.
    Plugin(PluginError),
    /// The plugin used up its CPU budget (epoch ticks).
    CpuLimit,
    /// The plugin tried to grow its memories past the cap.
    MemoryLimit,
    /// The call did not finish in its wall-clock time (host imports included).
    Timeout,
    /// The plugin overflowed its stack.
    StackOverflow,
    /// The plugin panicked or aborted; the message when it logged one.
    Panic(Option<String>),
    /// Any other trap (out-of-bounds access, a host function that refused to continue).
    Trap(String),
    /// The plugin does not implement this kind.
    WrongKind(String),
    /// The host could not run the call (instantiation failed).
    Host(String),
}

impl PluginFailure {
    /// A short stable name, the `outcome` label on `/metrics`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Plugin(PluginError::InvalidInput(_)) => "invalid_input",
            Self::Plugin(PluginError::Refused(_)) => "refused",
            Self::Plugin(PluginError::Unavailable(_)) => "unavailable",
            Self::Plugin(PluginError::Misconfigured(_)) => "misconfigured",
            Self::Plugin(PluginError::Unsupported) => "unsupported",
            Self::Plugin(PluginError::Internal(_)) => "internal",
            Self::CpuLimit => "cpu_limit",
            Self::MemoryLimit => "memory_limit",
            Self::Timeout => "timeout",
            Self::StackOverflow => "stack_overflow",
            Self::Panic(_) => "panic",
            Self::Trap(_) => "trap",
            Self::WrongKind(_) => "wrong_kind",
            Self::Host(_) => "host_error",
        }
    }
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plugin(e) => write!(f, "the plugin answered with an error: {e:?}"),
            Self::CpuLimit => f.write_str("the plugin used up its CPU time and was stopped"),
            Self::MemoryLimit => {
                f.write_str("the plugin tried to use more memory than allowed and was stopped")
            }
            Self::Timeout => f.write_str("the plugin did not finish in time and was stopped"),
            Self::StackOverflow => f.write_str("the plugin overflowed its stack and was stopped"),
            Self::Panic(Some(m)) => write!(f, "the plugin crashed: {m}"),
            Self::Panic(None) => f.write_str("the plugin crashed (no message)"),
            Self::Trap(m) => write!(f, "the plugin was stopped: {m}"),
            Self::WrongKind(m) => f.write_str(m),
            Self::Host(m) => write!(f, "the plugin could not be run: {m}"),
        }
    }
}

impl std::error::Error for PluginFailure {}

/// Why a plugin could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}`: {message}")]
pub struct LoadError {
    pub plugin: String,
    pub message: String,
}

impl LoadError {
    pub fn new(plugin: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            plugin: plugin.into(),
            message: message.into(),
        }
    }
}
