//! Paynow's messages and their hash (PROVIDERS.md 1.3): form fields in order, signed with
//! the upper-case hex SHA-512 of every value except `hash`, in the order the fields appear,
//! followed by the integration key in lower case.
//!
//! Both directions use the same rule, so one function computes the hash: [`Outbound`]
//! appends it to what the plugin sends, [`Message::verify`] recomputes it over what Paynow
//! sent, unknown fields included, and compares in constant time.

use keel_sdk::digest;
use keel_sdk::http::{FormError, form_decode_strict};

use crate::settings::IntegrationKey;

/// The hash of a message whose values, `hash` left out, are `values` in order.
pub fn hash<'a>(values: impl IntoIterator<Item = &'a str>, key: &IntegrationKey) -> String {
    let mut text = String::new();
    for value in values {
        text.push_str(value);
    }
    text.push_str(key.expose());
    digest::hex_upper(&digest::sha512(text))
}

/// A message to send: fields in order, then `hash`.
#[derive(Debug, Default)]
pub struct Outbound {
    fields: Vec<(&'static str, String)>,
}

impl Outbound {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field Paynow requires, sent even when empty.
    pub fn field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// Adds an optional field, left out when empty: an empty value adds nothing to the hash
    /// either way, but Paynow's own SDKs send no empty optional fields, so neither do we.
    pub fn optional(self, name: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(value) if !value.is_empty() => self.field(name, value),
            _ => self,
        }
    }

    /// The fields with `hash` appended, ready for [`Request::form`](keel_sdk::http::Request::form).
    pub fn signed(mut self, key: &IntegrationKey) -> Vec<(&'static str, String)> {
        let hash = hash(self.fields.iter().map(|(_, value)| value.as_str()), key);
        self.fields.push(("hash", hash));
        self.fields
    }
}

/// A message from Paynow (an initiate, poll or trace reply, a status update): every field
/// in the order received, decoded exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    fields: Vec<(String, String)>,
}

/// Why a message did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverified {
    /// It has no `hash` field.
    MissingHash,
    /// It has more than one.
    SeveralHashes,
    /// The hash is not the one the key gives.
    Mismatch,
}

impl Message {
    /// Decodes a form body strictly: see [`form_decode_strict`].
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        form_decode_strict(body).map(Self::from_fields)
    }

    pub fn from_fields(fields: Vec<(String, String)>) -> Self {
        Self { fields }
    }

    /// The first field named `name`, without regard to case: current replies use
    /// lower-case names, older ones `Status`, `BrowserUrl` (PROVIDERS.md 1.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A field that must be there and not empty.
    pub fn require(&self, name: &str) -> Result<&str, String> {
        match self.get(name) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(format!("it has no `{name}`")),
        }
    }

    /// Checks the `hash` against every other value, in order, and `key`.
    pub fn verify(&self, key: &IntegrationKey) -> Result<(), Unverified> {
        let is_hash = |name: &str| name.eq_ignore_ascii_case("hash");
        let mut claimed = self.fields.iter().filter(|(name, _)| is_hash(name));
        let (Some((_, claimed)), None) = (claimed.next(), claimed.next()) else {
            return Err(match self.get("hash") {
                None => Unverified::MissingHash,
                Some(_) => Unverified::SeveralHashes,
            });
        };
        let values = self
            .fields
            .iter()
            .filter(|(name, _)| !is_hash(name))
            .map(|(_, value)| value.as_str());
        if digest::eq_hex(claimed, &hash(values, key)) {
            Ok(())
        } else {
            Err(Unverified::Mismatch)
        }
    }
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MissingHash => "missing hash",
            Self::SeveralHashes => "more than one hash",
            Self::Mismatch => "hash mismatch",
        })
    }
}

#[cfg(test)]
mod tests {
    use keel_sdk::http::form_encode;

    use super::*;

    /// Paynow's documented key for the vectors of PROVIDERS.md 1.3.
    const DOC_KEY: &str = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977";

    #[test]
    fn documented_outbound_vector() {
        let fields = Outbound::new()
            .field("id", "1201")
            .field("reference", "TEST REF")
            .field("amount", "99.99")
            .optional("additionalinfo", Some("A test ticket transaction"))
            .field("returnurl", "http://www.google.com/search?q=returnurl")
            .field("resulturl", "http://www.google.com/search?q=resulturl")
            .optional("authemail", None)
            .optional("merchanttrace", Some(""))
            .field("status", "Message")
            .signed(&IntegrationKey::new(DOC_KEY));
        let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "id",
                "reference",
                "amount",
                "additionalinfo",
                "returnurl",
                "resulturl",
                "status",
                "hash"
            ],
            "empty and absent optional fields are not sent"
        );
        assert_eq!(
            fields.last().unwrap().1,
            "2A033FC38798D913D42ECB786B9B19645ADEDBDE788862032F1BD82CF3B92DEF84F316385D5B40DBB35F1A4FD7D5BFE73835174136463CDD48C9366B0749C689"
        );
    }

    #[test]
    fn documented_reply_vector_verifies_decoded_and_in_order() {
        let body = "status=Ok&browserurl=https%3a%2f%2fstaging.paynow.co.zw%2fPayment%2fConfirmPayment%2f9510&pollurl=https%3a%2f%2fstaging.paynow.co.zw%2fInterface%2fCheckPayment%2f%3fguid%3dc7ed41da-0159-46da-b428-69549f770413&paynowreference=9510&hash=750DD0B0DF374678707BB5AF915AF81C228B9058AD57BB7120569EC68BBB9C2EFC1B26C6375D2BC562AC909B3CD6B2AF1D42E1A5E479FFAC8F4FB3FDCE71DF4D";
        let key = IntegrationKey::new(DOC_KEY);
        let message = Message::parse(body.as_bytes()).unwrap();
        assert_eq!(message.verify(&key), Ok(()));
        assert_eq!(
            message.get("PollUrl"),
            Some(
                "https://staging.paynow.co.zw/Interface/CheckPayment/?guid=c7ed41da-0159-46da-b428-69549f770413"
            )
        );
        // The same hash in lower case still verifies (compared without case).
        let lower = Message::parse(body.replace("750DD0B0", "750dd0b0").as_bytes()).unwrap();
        assert_eq!(lower.verify(&key), Ok(()));
        // One value changed, or two fields swapped: the hash no longer matches.
        let tampered = Message::parse(body.replace("9510&hash", "9511&hash").as_bytes()).unwrap();
        assert_eq!(tampered.verify(&key), Err(Unverified::Mismatch));
        let mut fields = message.fields.clone();
        fields.swap(1, 2);
        assert_eq!(
            Message::from_fields(fields).verify(&key),
            Err(Unverified::Mismatch)
        );
    }

    #[test]
    fn unknown_fields_are_hashed_where_they_stand() {
        let key = IntegrationKey::new("k");
        let values = ["INV-1", "99", "5.00", "Paid", "card", "https://p.example/x"];
        let signed = hash(values, &key);
        let body = form_encode([
            ("reference", "INV-1"),
            ("paynowreference", "99"),
            ("amount", "5.00"),
            ("status", "Paid"),
            ("paymentchannel", "card"),
            ("pollurl", "https://p.example/x"),
            ("HASH", signed.as_str()),
        ]);
        let message = Message::parse(body.as_bytes()).unwrap();
        assert_eq!(message.verify(&key), Ok(()));
        // Dropping the unknown field before hashing (the classic mistake) breaks it.
        let without: Vec<_> = message
            .fields
            .iter()
            .filter(|(name, _)| name != "paymentchannel")
            .cloned()
            .collect();
        assert_eq!(
            Message::from_fields(without).verify(&key),
            Err(Unverified::Mismatch)
        );
    }

    #[test]
    fn a_message_needs_exactly_one_hash() {
        let key = IntegrationKey::new("k");
        let message = Message::parse(b"status=Error&error=Invalid+id.").unwrap();
        assert_eq!(message.verify(&key), Err(Unverified::MissingHash));
        let signed = hash(["Paid"], &key);
        let twice = format!("status=Paid&hash={signed}&Hash={signed}");
        let message = Message::parse(twice.as_bytes()).unwrap();
        assert_eq!(message.verify(&key), Err(Unverified::SeveralHashes));
        assert_eq!(Unverified::Mismatch.to_string(), "hash mismatch");
        assert_eq!(message.require("status"), Ok("Paid"));
        assert_eq!(
            message.require("pollurl"),
            Err("it has no `pollurl`".to_owned())
        );
    }
}
