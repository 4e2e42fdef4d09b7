//! Newtypes for the ids a plugin handles, so a reference is not passed where a domain
//! belongs. The WIT carries them as strings; wrap them at the edge of your code.

use std::fmt;

use crate::PluginError;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id the kernel or the provider gave.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The kernel's reference for one operation (a payment, a message, an order), stable
    /// across retries: the idempotency key to hand the provider.
    Reference
);
string_id!(
    /// A Keel invoice id.
    InvoiceId
);
string_id!(
    /// A Keel service id.
    ServiceId
);
string_id!(
    /// The provider's id for something (a payment, a message, an account).
    ProviderId
);

/// A domain name as registrars take it: ASCII (punycode for internationalized names),
/// lower case, no trailing dot, at least two labels of 1 to 63 letters, digits and
/// hyphens (not at either end), 253 characters at most.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainName(String);

impl DomainName {
    /// Checks and normalizes (lower case, trailing dot removed); a bad name is
    /// [`PluginError::InvalidInput`] saying why.
    pub fn parse(text: &str) -> Result<Self, PluginError> {
        let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let bad =
            |why: &str| PluginError::invalid_input(format!("`{text}` is not a domain name: {why}"));
        if name.len() > 253 {
            return Err(bad("longer than 253 characters"));
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err(bad("it needs a name and a top-level domain"));
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("each label is 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(bad(
                    "only letters, digits and hyphens (use punycode for other scripts)",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(bad("a label cannot start or end with a hyphen"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("the top-level domain cannot be all digits"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last label (`"zw"` of `"example.co.zw"`).
    pub fn tld(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or_default()
    }

    /// The first label (`"example"` of `"example.co.zw"`).
    pub fn first_label(&self) -> &str {
        self.0.split('.').next().unwrap_or_default()
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_checked_and_normalized() {
        let d = DomainName::parse(" Example.CO.zw. ").unwrap();
        assert_eq!(d.as_str(), "example.co.zw");
        assert_eq!(d.tld(), "zw");
        assert_eq!(d.first_label(), "example");
        assert_eq!(
            DomainName::parse("xn--bcher-kva.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "localhost",
            "-a.com",
            "a-.com",
            "a..com",
            "bücher.de",
            "a.123",
            &format!("{}.com", "a".repeat(64)),
        ] {
            let err = DomainName::parse(bad).unwrap_err();
            assert!(
                matches!(err, PluginError::InvalidInput(ref m) if m.contains("is not a domain name")),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn string_ids_wrap_and_show_their_value() {
        let r = Reference::from("pay_1".to_owned());
        assert_eq!(r.as_str(), "pay_1");
        assert_eq!(r.to_string(), "pay_1");
        assert_ne!(InvoiceId::new("1").as_str(), ServiceId::new("2").as_str());
    }
}
