//! A plugin's `[plugins.<id>]` section checked against its manifest's settings schema.

use std::collections::{BTreeMap, BTreeSet};

use crate::grant::{Grant, HostPattern, Network};
use crate::manifest::{Manifest, RESERVED_KEYS, SettingType};

/// A plugin's settings as the plugin sees them: every value as text, with the secret ones
/// marked so they are never shown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
    secrets: BTreeSet<String>,
}

impl Settings {
    /// The value of `key` as the plugin's `config.get` returns it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every setting with secrets shown as `***`, for `keel plugin inspect` and logs.
    pub fn redacted(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .map(|(k, v)| {
                let shown = if self.secrets.contains(k) {
                    "***".to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

/// A validated section: the plugin's settings and its effective outbound grant.
#[derive(Debug, Clone)]
pub struct Enabled {
    pub settings: Settings,
    pub grant: Grant,
}

/// Checks `section` (the admin's `[plugins.<id>]` table) against `manifest`. Every
/// problem is reported, each naming its key; nothing is partly applied.
pub fn validate(manifest: &Manifest, section: &toml::Table) -> Result<Enabled, Vec<String>> {
    let mut errors = Vec::new();
    let id = &manifest.id;
    let mut values = BTreeMap::new();
    let mut secrets = BTreeSet::new();
    let mut present = BTreeSet::new();

    for (key, value) in section {
        if RESERVED_KEYS.contains(&key.as_str()) {
            continue;
        }
        let Some(spec) = manifest.settings.get(key) else {
            let known = manifest
                .settings
                .keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>();
            let known = if known.is_empty() {
                "it has no settings".to_owned()
            } else {
                format!("known: {}", known.join(", "))
            };
            errors.push(format!(
                "plugins.{id}.{key}: `{id}` has no setting `{key}` ({known})"
            ));
            continue;
        };
        present.insert(key.clone());
        match render(spec.ty, value) {
            Ok(text) => {
                values.insert(key.clone(), text);
            }
            Err(e) => errors.push(format!("plugins.{id}.{key}: {e}")),
        }
    }
    for (key, spec) in &manifest.settings {
        if spec.secret {
            secrets.insert(key.clone());
        }
        if present.contains(key) {
            continue;
        }
        match &spec.default {
            Some(default) => {
                if let Ok(text) = render(spec.ty, default) {
                    values.insert(key.clone(), text);
                }
            }
            None if spec.required => errors.push(format!(
                "plugins.{id}.{key}: the required setting `{key}` is missing ({}{})",
                spec.ty.as_str(),
                if spec.description.is_empty() {
                    String::new()
                } else {
                    format!(": {}", spec.description)
                }
            )),
            None => {}
        }
    }

    let admin_hosts = match section.get("allow_hosts") {
        None => None,
        Some(v) => match strings(v) {
            Some(list) => {
                let mut parsed = Vec::new();
                for entry in list {
                    match HostPattern::parse(entry) {
                        Ok(p) => parsed.push(p),
                        Err(e) => errors.push(format!("plugins.{id}.allow_hosts: {e}")),
                    }
                }
                Some(parsed)
            }
            None => {
                errors.push(format!(
                    "plugins.{id}.allow_hosts: expected a list of strings"
                ));
                None
            }
        },
    };
    let mut networks = Vec::new();
    if let Some(v) = section.get("allow_networks") {
        match strings(v) {
            Some(list) => {
                for entry in list {
                    match Network::parse(entry) {
                        Ok(n) => networks.push(n),
                        Err(e) => errors.push(format!("plugins.{id}.allow_networks: {e}")),
                    }
                }
            }
            None => errors.push(format!(
                "plugins.{id}.allow_networks: expected a list of strings"
            )),
        }
    }
    let grant = match Grant::resolve(&manifest.allow, admin_hosts, networks) {
        Ok(g) => Some(g),
        Err(e) => {
            errors.push(format!("plugins.{id}.allow_hosts: {e}"));
            None
        }
    };

    match grant {
        Some(grant) if errors.is_empty() => Ok(Enabled {
            settings: Settings { values, secrets },
            grant,
        }),
        _ => Err(errors),
    }
}

fn strings(v: &toml::Value) -> Option<Vec<&str>> {
    v.as_array()?.iter().map(toml::Value::as_str).collect()
}

/// A value of type `ty` as the text the plugin receives, or why it does not fit.
pub(crate) fn render(ty: SettingType, value: &toml::Value) -> Result<String, String> {
    use toml::Value as V;
    let found = value.type_str();
    match (ty, value) {
        (SettingType::String, V::String(s)) => Ok(s.clone()),
        (SettingType::Integer, V::Integer(i)) => Ok(i.to_string()),
        (SettingType::Boolean, V::Boolean(b)) => Ok(b.to_string()),
        (SettingType::Decimal, V::Integer(i)) => Ok(i.to_string()),
        (SettingType::Decimal, V::String(s)) if is_decimal(s) => Ok(s.clone()),
        (SettingType::Decimal, V::String(s)) => {
            Err(format!("`{s}` is not a decimal like \"0.15\""))
        }
        (SettingType::Decimal, V::Float(_)) => {
            Err("write decimals as strings (\"0.15\"): a float cannot hold them exactly".into())
        }
        (SettingType::Url, V::String(s)) => match reqwest::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(s.clone()),
            _ => Err(format!("`{s}` is not an absolute http or https URL")),
        },
        (ty, _) => Err(format!(
            "expected {} {}, found {found}",
            article(ty),
            ty.as_str()
        )),
    }
}

fn article(ty: SettingType) -> &'static str {
    if ty == SettingType::Integer {
        "an"
    } else {
        "a"
    }
}

fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
            id = "paynow"
            name = "Paynow"
            version = "1.0.0"
            kinds = ["gateway"]
            wit = "0.1.0"
            [network]
            allow = ["https://www.paynow.co.zw", "https://*.paynow.co.zw"]
            [settings.integration_id]
            type = "integer"
            required = true
            [settings.integration_key]
            type = "string"
            required = true
            secret = true
            [settings.fee]
            type = "decimal"
            default = "0.035"
            [settings.return_url]
            type = "url"
            [settings.sandbox]
            type = "boolean"
            default = false
            "#,
            "paynow/plugin.toml",
        )
        .unwrap()
    }

    fn section(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_good_section_gives_text_values_defaults_and_the_declared_grant() {
        let enabled = validate(
            &manifest(),
            &section("integration_id = 1201\nintegration_key = \"k3y\""),
        )
        .unwrap();
        let s = &enabled.settings;
        assert_eq!(s.get("integration_id"), Some("1201"));
        assert_eq!(s.get("integration_key"), Some("k3y"));
        assert_eq!(s.get("fee"), Some("0.035"));
        assert_eq!(s.get("sandbox"), Some("false"));
        assert_eq!(s.get("return_url"), None);
        assert_eq!(s.redacted()["integration_key"], "***");
        assert!(!format!("{s:?}").contains("k3y"));
        assert_eq!(enabled.grant.hosts().len(), 2);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let errors = validate(
            &manifest(),
            &section(
                r#"
                integration_id = "1201"
                sandbox = "yes"
                fee = 0.035
                return_url = "/relative"
                colour = "blue"
                allow_hosts = ["https://evil.example.com"]
                allow_networks = ["10.0.0.0/99"]
                "#,
            ),
        )
        .unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "plugins.paynow.integration_id: expected an integer, found string",
            "plugins.paynow.sandbox: expected a boolean, found string",
            "plugins.paynow.fee: write decimals as strings",
            "plugins.paynow.return_url: `/relative` is not an absolute",
            "plugins.paynow.colour: `paynow` has no setting `colour`",
            "plugins.paynow.integration_key: the required setting `integration_key` is missing",
            "plugins.paynow.allow_networks: `10.0.0.0/99`",
            "plugins.paynow.allow_hosts: `https://evil.example.com` is wider",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn decimals() {
        for ok in ["0", "0.15", "-2.50", "10"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", ".5", "5.", "1e3", "0,15", "--1"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }
}
