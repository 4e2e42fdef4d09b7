//! `plugin.toml`: what a plugin is and what it asks for.
//!
//! ```toml
//! id = "paynow"                  # lower case, digits and dashes; the [plugins.<id>] key
//! name = "Paynow"
//! version = "1.0.0"              # semver; must match what the component's describe says
//! description = "Paynow Zimbabwe: EcoCash, OneMoney, cards"
//! kinds = ["gateway"]            # registrar, gateway, notifier, provisioner, assistant
//! wit = "0.2.0"                  # the keel:plugin version it was built against
//!
//! [network]
//! allow = ["https://www.paynow.co.zw"]
//!
//! [settings.integration_key]
//! type = "string"                # string, integer, boolean, decimal, url
//! required = true
//! secret = true                  # redacted wherever settings are shown
//! description = "From the Paynow merchant dashboard"
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::grant::HostPattern;

/// Keys of a `[plugins.<id>]` section that belong to the kernel, not to the plugin.
pub const RESERVED_KEYS: [&str; 2] = ["allow_hosts", "allow_networks"];

/// A plugin kind: one exported interface and world of `keel:plugin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Registrar,
    Gateway,
    Notifier,
    Provisioner,
    Assistant,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Registrar,
        Kind::Gateway,
        Kind::Notifier,
        Kind::Provisioner,
        Kind::Assistant,
    ];

    /// The WIT interface name (`gateway`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Registrar => "registrar",
            Kind::Gateway => "gateway",
            Kind::Notifier => "notifier",
            Kind::Provisioner => "provisioner",
            Kind::Assistant => "assistant",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `major.minor.patch` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| {
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) {
                None
            } else {
                p.parse().ok()
            }
        });
        let v = Self {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The type of a setting, which decides what the admin may write and how the plugin
/// receives it (always as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingType {
    /// Any text.
    String,
    /// A TOML integer.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A decimal written as a string (`"0.15"`) or an integer; floats are refused.
    Decimal,
    /// An absolute `http` or `https` URL.
    Url,
}

impl SettingType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Url => "url",
        }
    }
}

/// One setting of the schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingSpec {
    #[serde(rename = "type")]
    pub ty: SettingType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    id: String,
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    kinds: Vec<Kind>,
    wit: String,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    settings: BTreeMap<String, SettingSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    allow: Vec<String>,
}

/// A validated `plugin.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub version: Version,
    pub description: String,
    pub kinds: Vec<Kind>,
    pub wit: Version,
    pub allow: Vec<HostPattern>,
    pub settings: BTreeMap<String, SettingSpec>,
}

impl Manifest {
    /// Parses and validates a manifest; `source` names it in errors (a path).
    pub fn parse(text: &str, source: &str) -> Result<Self, String> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
        let err = |msg: String| format!("{source}: {msg}");
        if !valid_id(&raw.id) {
            return Err(err(format!(
                "id `{}` must be 1 to 63 lower-case letters, digits and dashes, starting with a letter",
                raw.id
            )));
        }
        let version = Version::parse(&raw.version)
            .ok_or_else(|| err(format!("version `{}` is not semver (1.2.3)", raw.version)))?;
        let wit = Version::parse(&raw.wit)
            .ok_or_else(|| err(format!("wit `{}` is not a version (0.1.0)", raw.wit)))?;
        if raw.kinds.is_empty() {
            return Err(err("kinds is empty; name at least one kind".into()));
        }
        let mut kinds = raw.kinds.clone();
        kinds.sort();
        kinds.dedup();
        if kinds.len() != raw.kinds.len() {
            return Err(err("kinds lists a kind twice".into()));
        }
        let allow = raw
            .network
            .allow
            .iter()
            .map(|a| HostPattern::parse(a).map_err(|e| err(format!("network.allow: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        for (key, spec) in &raw.settings {
            if !valid_setting_name(key) {
                return Err(err(format!(
                    "setting `{key}`: names are lower-case letters, digits and underscores, starting with a letter"
                )));
            }
            if RESERVED_KEYS.contains(&key.as_str()) {
                return Err(err(format!(
                    "setting `{key}` is reserved for the kernel's grants"
                )));
            }
            if spec.required && spec.default.is_some() {
                return Err(err(format!(
                    "setting `{key}` is required and has a default; choose one"
                )));
            }
            if let Some(default) = &spec.default {
                crate::settings::render(spec.ty, default)
                    .map_err(|e| err(format!("setting `{key}`: default: {e}")))?;
            }
        }
        Ok(Self {
            id: raw.id,
            name: raw.name,
            version,
            description: raw.description,
            kinds,
            wit,
            allow,
            settings: raw.settings,
        })
    }
}

fn valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_setting_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        id = "paynow"
        name = "Paynow"
        version = "1.2.0"
        kinds = ["gateway"]
        wit = "0.1.0"
        [network]
        allow = ["https://www.paynow.co.zw"]
        [settings.integration_key]
        type = "string"
        required = true
        secret = true
        [settings.sandbox]
        type = "boolean"
        default = false
    "#;

    #[test]
    fn a_good_manifest_parses() {
        let m = Manifest::parse(GOOD, "plugin.toml").unwrap();
        assert_eq!(m.id, "paynow");
        assert_eq!(
            m.version,
            Version {
                major: 1,
                minor: 2,
                patch: 0
            }
        );
        assert_eq!(m.kinds, vec![Kind::Gateway]);
        assert_eq!(m.allow[0].to_string(), "https://www.paynow.co.zw");
        assert!(m.settings["integration_key"].secret);
    }

    #[test]
    fn bad_manifests_name_the_problem() {
        for (from, to, needle) in [
            (r#"id = "paynow""#, r#"id = "Pay Now""#, "id `Pay Now`"),
            (r#"version = "1.2.0""#, r#"version = "1.2""#, "not semver"),
            (r#"wit = "0.1.0""#, r#"wit = "x""#, "wit `x`"),
            (r#"kinds = ["gateway"]"#, r#"kinds = []"#, "kinds is empty"),
            (
                r#"kinds = ["gateway"]"#,
                r#"kinds = ["gateway", "gateway"]"#,
                "twice",
            ),
            (
                r#"kinds = ["gateway"]"#,
                r#"kinds = ["bank"]"#,
                "unknown variant `bank`",
            ),
            (
                "https://www.paynow.co.zw",
                "www.paynow.co.zw",
                "write the scheme",
            ),
            ("[settings.sandbox]", "[settings.allow_hosts]", "reserved"),
            (
                "[settings.sandbox]",
                "[settings.Sandbox]",
                "names are lower-case",
            ),
            (
                "default = false",
                "default = 3",
                "default: expected a boolean",
            ),
            (
                "secret = true",
                "secret = true\nrequired_ = 1",
                "unknown field `required_`",
            ),
            (
                "required = true",
                "required = true\ndefault = \"x\"",
                "required and has a default",
            ),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let err = Manifest::parse(&text, "plugin.toml").unwrap_err();
            assert!(err.starts_with("plugin.toml: "), "{err}");
            assert!(err.contains(needle), "{to}: {err}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(
            Version::parse("0.1.0"),
            Some(Version {
                major: 0,
                minor: 1,
                patch: 0
            })
        );
        assert_eq!(Version::parse("1.2.3-rc.1").map(|v| v.patch), Some(3));
        for bad in ["", "1", "1.2", "1.2.3.4", "01.2.3", "a.b.c"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }
}
