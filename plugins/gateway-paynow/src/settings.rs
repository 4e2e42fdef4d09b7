//! The plugin's settings: Paynow's base URL, one integration (id and key) per currency,
//! and the optional `authemail` override. Read on every call (a plugin instance lives for
//! one call) and checked as a whole, so a half-configured currency is reported even when
//! the payment at hand is in the other one.

use keel_sdk::http::Origin;
use keel_sdk::{PluginError, Secret, config};

/// The currencies Paynow serves, each through its own integration (PROVIDERS.md 1.7), in
/// the order their settings appear in `plugin.toml`. Both have two decimal places.
pub const CURRENCIES: [&str; 2] = ["USD", "ZWG"];

/// Decimal places of every currency in [`CURRENCIES`].
pub const EXPONENT: u32 = 2;

/// The settings of one call.
#[derive(Debug)]
pub struct Settings {
    /// `api_url` without a trailing `/`.
    api_url: String,
    /// Its origin: the only place poll URLs may point.
    pub origin: Origin,
    /// The configured integrations; at least one.
    integrations: Vec<Integration>,
    /// Sent as `authemail` instead of the payer's e-mail, when set.
    pub auth_email: Option<String>,
}

/// One Paynow integration: the currency it takes, its id and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// `USD` or `ZWG`.
    pub currency: &'static str,
    /// The integration id, as Paynow's `id` field (digits).
    pub id: String,
    pub key: IntegrationKey,
}

/// An integration key, trimmed and in lower case: Paynow's SDKs lower-case the key before
/// hashing (PROVIDERS.md 1.3 rule 4), so whatever case the admin pasted it in, this is the
/// text that signs. `Debug` does not show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationKey(Secret);

impl IntegrationKey {
    pub fn new(raw: &str) -> Self {
        Self(Secret::new(raw.trim().to_lowercase()))
    }

    /// The lower-case key, to append to the text being hashed.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl Settings {
    /// Reads and checks every setting: a bad `api_url`, a currency with only its id or
    /// only its key, or no currency at all is [`PluginError::Misconfigured`].
    pub fn load() -> Result<Self, PluginError> {
        let api_url = config::require("api_url")?;
        let api_url = api_url.trim().trim_end_matches('/').to_owned();
        let origin = Origin::of(&api_url)
            .map_err(|e| PluginError::misconfigured(format!("the setting `api_url`: {e}")))?;
        if api_url.contains(['?', '#']) {
            return Err(PluginError::misconfigured(format!(
                "the setting `api_url` ({api_url}) must not have a query or fragment: \
                 the plugin appends /interface/… to it"
            )));
        }
        let mut integrations = Vec::new();
        for currency in CURRENCIES {
            if let Some(integration) = Integration::load(currency)? {
                integrations.push(integration);
            }
        }
        if integrations.is_empty() {
            return Err(PluginError::misconfigured(
                "no Paynow integration is set up: set usd_integration_id and \
                 usd_integration_key, or zwg_integration_id and zwg_integration_key",
            ));
        }
        let auth_email = config::get("auth_email")
            .map(|email| email.trim().to_owned())
            .filter(|email| !email.is_empty());
        Ok(Self {
            api_url,
            origin,
            integrations,
            auth_email,
        })
    }

    /// The integration that takes `currency` (ISO code, any case), if one is set up.
    /// The configured integrations, at least one.
    pub fn integrations(&self) -> &[Integration] {
        &self.integrations
    }

    pub fn integration(&self, currency: &str) -> Option<&Integration> {
        self.integrations
            .iter()
            .find(|i| i.currency.eq_ignore_ascii_case(currency))
    }

    /// The currencies set up, for messages: `"USD, ZWG"`.
    pub fn currencies(&self) -> String {
        let codes: Vec<&str> = self.integrations.iter().map(|i| i.currency).collect();
        codes.join(", ")
    }

    /// `<api_url>/interface/<name>`.
    pub fn endpoint(&self, name: &str) -> String {
        format!("{}/interface/{name}", self.api_url)
    }
}

impl Integration {
    /// The integration for `currency`, `None` when neither of its settings is set.
    fn load(currency: &'static str) -> Result<Option<Self>, PluginError> {
        let prefix = currency.to_ascii_lowercase();
        let id_key = format!("{prefix}_integration_id");
        let key_key = format!("{prefix}_integration_key");
        let id = config::get(&id_key).filter(|v| !v.trim().is_empty());
        let key = config::get(&key_key).map(|raw| IntegrationKey::new(&raw));
        let key = key.filter(|k| !k.expose().is_empty());
        match (id, key) {
            (None, None) => Ok(None),
            (Some(id), Some(key)) => {
                let id = match id.trim().parse::<u64>() {
                    Ok(id) if id > 0 => id.to_string(),
                    _ => {
                        return Err(PluginError::misconfigured(format!(
                            "the setting `{id_key}` ({id:?}) is not a Paynow integration id \
                             (a positive whole number)"
                        )));
                    }
                };
                Ok(Some(Self { currency, id, key }))
            }
            (Some(_), None) => Err(PluginError::misconfigured(format!(
                "`{id_key}` is set but `{key_key}` is not: {currency} payments need both"
            ))),
            (None, Some(_)) => Err(PluginError::misconfigured(format!(
                "`{key_key}` is set but `{id_key}` is not: {currency} payments need both"
            ))),
        }
    }

    /// The id and key settings' names, for messages: `usd_integration_id and
    /// usd_integration_key`.
    pub fn setting_names(&self) -> String {
        let prefix = self.currency.to_ascii_lowercase();
        format!("{prefix}_integration_id and {prefix}_integration_key")
    }
}

#[cfg(test)]
mod tests {
    use keel_sdk::testing::FakeHost;

    use super::*;

    fn misconfigured(host: FakeHost) -> String {
        let _host = host.install();
        match Settings::load() {
            Err(PluginError::Misconfigured(message)) => message,
            other => panic!("expected misconfigured, got {other:?}"),
        }
    }

    #[test]
    fn each_currency_takes_its_own_pair_and_keys_are_lower_cased() {
        let _host = FakeHost::new()
            .setting("api_url", "https://www.paynow.co.zw/")
            .setting("usd_integration_id", "7175")
            .setting(
                "usd_integration_key",
                " D4E1C8A2-5B7F-4C3E-9A10-6F2B8E7D9C31\n",
            )
            .setting("zwg_integration_id", "8000")
            .setting("zwg_integration_key", "zig-key")
            .install();
        let settings = Settings::load().unwrap();
        let usd = settings.integration("usd").unwrap();
        assert_eq!((usd.currency, usd.id.as_str()), ("USD", "7175"));
        assert_eq!(usd.key.expose(), "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31");
        assert_eq!(settings.integration("ZWG").unwrap().id, "8000");
        assert_eq!(settings.integration("ZAR"), None);
        assert_eq!(settings.currencies(), "USD, ZWG");
        assert_eq!(
            settings.endpoint("trace"),
            "https://www.paynow.co.zw/interface/trace"
        );
        assert_eq!(settings.auth_email, None);
        assert!(
            !format!("{settings:?}").contains("d4e1c8a2"),
            "Debug hides the keys"
        );
    }

    #[test]
    fn a_half_pair_or_no_pair_is_misconfigured() {
        let base = || FakeHost::new().setting("api_url", "https://www.paynow.co.zw");
        let message = misconfigured(base());
        assert!(
            message.starts_with("no Paynow integration is set up"),
            "{message}"
        );
        let message = misconfigured(base().setting("zwg_integration_id", "1"));
        assert_eq!(
            message,
            "`zwg_integration_id` is set but `zwg_integration_key` is not: ZWG payments need both"
        );
        // A complete USD pair does not excuse a half ZWG one.
        let message = misconfigured(
            base()
                .setting("usd_integration_id", "1")
                .setting("usd_integration_key", "k")
                .setting("zwg_integration_key", "k"),
        );
        assert!(
            message.starts_with("`zwg_integration_key` is set but"),
            "{message}"
        );
        let message = misconfigured(
            base()
                .setting("usd_integration_id", "-3")
                .setting("usd_integration_key", "k"),
        );
        assert!(
            message.contains("is not a Paynow integration id"),
            "{message}"
        );
        let message = misconfigured(
            FakeHost::new()
                .setting("api_url", "https://www.paynow.co.zw/?x=1")
                .setting("usd_integration_id", "1")
                .setting("usd_integration_key", "k"),
        );
        assert!(message.contains("must not have a query"), "{message}");
    }

    #[test]
    fn auth_email_is_optional_and_trimmed() {
        let _host = FakeHost::new()
            .setting("api_url", "http://www.paynow.co.zw:8080")
            .setting("usd_integration_id", "1")
            .setting("usd_integration_key", "k")
            .setting("auth_email", " merchant@example.co.zw ")
            .install();
        let settings = Settings::load().unwrap();
        assert_eq!(
            settings.auth_email.as_deref(),
            Some("merchant@example.co.zw")
        );
        assert_eq!(settings.origin.to_string(), "http://www.paynow.co.zw:8080");
    }
}
