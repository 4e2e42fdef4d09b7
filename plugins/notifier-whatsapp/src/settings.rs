//! The plugin's settings, read on every call (a plugin instance lives for one call). A
//! send reads only what sending needs and an inbound call only the webhook secrets, so a
//! half-configured installation still reports the setting the operation at hand lacks.

use keel_sdk::http::Origin;
use keel_sdk::{PluginError, Secret, config};

/// The Graph API version used when `graph_version` is not set.
pub const DEFAULT_GRAPH_VERSION: &str = "v21.0";

/// The Graph API base used when `api_base` is not set.
pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com";

/// What a send needs. `Debug` does not show the token.
#[derive(Debug)]
pub struct SendSettings {
    pub access_token: Secret,
    /// `<api_base>/<graph_version>/<phone_number_id>/messages`.
    pub messages_url: String,
}

impl SendSettings {
    /// Reads `access_token`, `phone_number_id`, `graph_version` and `api_base`: a missing
    /// one, or one that cannot be a path segment or a base URL, is misconfigured.
    pub fn load() -> Result<Self, PluginError> {
        let access_token = config::secret("access_token")?;
        let phone_number_id = segment("phone_number_id", config::require("phone_number_id")?)?;
        let graph_version = segment(
            "graph_version",
            config::get("graph_version").unwrap_or_else(|| DEFAULT_GRAPH_VERSION.into()),
        )?;
        let api_base = config::get("api_base").unwrap_or_else(|| DEFAULT_API_BASE.into());
        let api_base = api_base.trim().trim_end_matches('/').to_owned();
        Origin::of(&api_base)
            .map_err(|e| PluginError::misconfigured(format!("the setting `api_base`: {e}")))?;
        if api_base.contains(['?', '#']) {
            return Err(PluginError::misconfigured(format!(
                "the setting `api_base` ({api_base}) must not have a query or fragment: the \
                 plugin appends /<graph_version>/<phone_number_id>/messages to it"
            )));
        }
        Ok(Self {
            access_token,
            messages_url: format!("{api_base}/{graph_version}/{phone_number_id}/messages"),
        })
    }
}

/// What a webhook needs. `Debug` does not show the secrets.
#[derive(Debug)]
pub struct InboundSettings {
    pub app_secret: Secret,
    pub verify_token: Secret,
}

impl InboundSettings {
    pub fn load() -> Result<Self, PluginError> {
        Ok(Self {
            app_secret: config::secret("app_secret")?,
            verify_token: config::secret("verify_token")?,
        })
    }
}

/// `value` trimmed, if it is one non-empty URL path segment of letters, digits, `.`, `_`
/// and `-` (a phone number id is digits, a version `v21.0`).
fn segment(key: &str, value: String) -> Result<String, PluginError> {
    let value = value.trim();
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if value.is_empty() || !value.chars().all(fine) {
        return Err(PluginError::misconfigured(format!(
            "the setting `{key}` ({value:?}) must be one path segment of letters, digits, \
             `.`, `_` or `-`"
        )));
    }
    Ok(value.to_owned())
}
