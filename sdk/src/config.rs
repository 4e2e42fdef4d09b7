//! The plugin's own settings, as the admin wrote them and `plugin.toml` typed them.

use std::fmt;
use std::str::FromStr;

use crate::PluginError;

/// A setting as text (numbers and booleans in their TOML spelling), or `None` when it is
/// not set and has no default.
pub fn get(key: &str) -> Option<String> {
    crate::backend::config_get(key)
}

/// A setting that must be there: its absence is [`PluginError::Misconfigured`] naming it.
/// (The kernel checks required settings before it starts, so this only fails for
/// settings the manifest calls optional.)
pub fn require(key: &str) -> Result<String, PluginError> {
    get(key).ok_or_else(|| PluginError::misconfigured(format!("the setting `{key}` is not set")))
}

/// A setting parsed as `T` (`config::parse::<u32>("timeout")`), `None` when not set.
pub fn parse<T>(key: &str) -> Result<Option<T>, PluginError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    get(key)
        .map(|raw| {
            raw.parse::<T>().map_err(|e| {
                PluginError::misconfigured(format!(
                    "the setting `{key}` ({raw:?}) is not valid: {e}"
                ))
            })
        })
        .transpose()
}

/// A boolean setting, `default` when not set.
pub fn flag(key: &str, default: bool) -> Result<bool, PluginError> {
    Ok(parse::<bool>(key)?.unwrap_or(default))
}

/// A secret setting (a password, an API key): required and not blank (an empty key would
/// sign every request with nothing), and wrapped so it cannot end up in a log line by
/// accident.
pub fn secret(key: &str) -> Result<Secret, PluginError> {
    let value = require(key)?;
    if value.trim().is_empty() {
        return Err(PluginError::misconfigured(format!(
            "the setting `{key}` is empty: a secret needs a value"
        )));
    }
    Ok(Secret(value))
}

/// A secret value. `Debug` and `Display` show `***`; [`Secret::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear text, for the one place that needs it (a signature, a header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn an_empty_secret_is_a_settings_problem_naming_the_key() {
        let _host = FakeHost::new()
            .setting("api_key", "  ")
            .setting("token", "s3cret")
            .install();
        assert_eq!(
            secret("api_key").unwrap_err(),
            PluginError::misconfigured("the setting `api_key` is empty: a secret needs a value")
        );
        assert_eq!(secret("token").unwrap().expose(), "s3cret");
        assert!(matches!(
            secret("missing"),
            Err(PluginError::Misconfigured(_))
        ));
    }
}
