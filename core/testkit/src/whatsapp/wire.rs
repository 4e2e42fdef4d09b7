//! The WhatsApp Cloud API's wire format (PROVIDERS.md §3.2, §3.4, §3.5): the JSON Meta writes
//! (compact, fields in Meta's order, every non-ASCII character escaped as a lowercase
//! `\uXXXX`), the webhook notification bodies, Graph error bodies, the `X-Hub-Signature-256`
//! HMAC, and the shape of message ids.
//!
//! Public so that tests which build Meta's messages by hand (a forged webhook, a body posted by
//! the test itself) can use the same rules; the fake's own tests check the signature against
//! an independent HMAC and PROVIDERS.md §3.5's worked example.

use std::fmt::Write;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;
use sha2::Sha256;

/// `object` of every notification body.
pub const OBJECT: &str = "whatsapp_business_account";
/// `messaging_product` everywhere.
pub const MESSAGING_PRODUCT: &str = "whatsapp";
/// `href` of the `errors[]` items in webhooks (Meta's error-code page).
pub const ERROR_CODES_HREF: &str =
    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/";

/// Compact JSON as Meta writes it: fields in the order the type declares them, no spaces, and
/// every character outside ASCII escaped as `\uXXXX` with lowercase hex (UTF-16 surrogate
/// pairs beyond the Basic Multilingual Plane), so `ü` is `\u00fc` and `😀` is
/// `\ud83d\ude00`. Control characters use serde_json's escapes (`\n`, `\u001f`).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    escape_non_ascii(&serde_json::to_string(value).expect("the fake's JSON types serialize"))
}

/// Escapes every non-ASCII character of `json` as `\uXXXX` (lowercase hex). Non-ASCII can
/// only stand inside JSON strings, so the result is the same JSON value, all ASCII.
pub fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The `X-Hub-Signature-256` value for `body`: `sha256=` and the lowercase hex
/// HMAC-SHA256 of the exact bytes with the app secret as key (§3.5).
pub fn signature_256(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// The older `X-Hub-Signature` value: `sha1=` and the lowercase hex HMAC-SHA1.
pub fn signature_sha1(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(app_secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha1={}", hex(&mac.finalize().into_bytes()))
}

/// Whether `header` (an `X-Hub-Signature-256` value) is the signature of `body`: `sha256=`
/// and 64 hex digits (either case), compared in constant time. A missing header is `false`.
pub fn verify_signature_256(app_secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digits) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Some(expected) = unhex(hex_digits) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Standard base64 with padding (for message ids).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn random_upper_hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(rand::random::<u32>() % 16, 16).expect("a hex digit"))
        .collect::<String>()
        .to_uppercase()
}

/// A message id in the shape Meta's have: `wamid.` and base64 of a small record holding the
/// user's number and a random id (`wamid.HBgMMjYzNzcxMjM0NTY3FQIAERgS…AA==` for
/// `263771234567`). `outbound` picks the marker Meta uses for business-sent messages
/// (`ERgS`, 18 hex digits) or user-sent ones (`EhgU`, 20 hex digits). Always under Meta's
/// 128-character limit for numbers of up to 15 digits.
pub fn wamid(wa_id: &str, outbound: bool) -> String {
    let number = wa_id.as_bytes();
    let mut record = vec![0x1c, 0x18, u8::try_from(number.len()).unwrap_or(u8::MAX)];
    record.extend_from_slice(number);
    let (marker, digits) = if outbound {
        ([0x15, 0x02, 0x00, 0x11, 0x18, 0x12], 18)
    } else {
        ([0x15, 0x02, 0x00, 0x12, 0x18, 0x14], 20)
    };
    record.extend_from_slice(&marker);
    record.extend_from_slice(random_upper_hex(digits).as_bytes());
    record.push(0x00);
    format!("wamid.{}", base64(&record))
}

/// A Graph `fbtrace_id`-like token: 27 random letters and digits.
pub fn fbtrace_id() -> String {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..27)
        .map(|_| ALPHANUMERIC[rand::random::<usize>() % ALPHANUMERIC.len()] as char)
        .collect()
}

// ---- Graph API replies ----

/// A Graph error reply (§3.2): `{"error":{message,type,code,error_data?,error_subcode?,fbtrace_id}}`.
#[derive(Debug, Clone, Serialize)]
pub struct GraphError {
    pub error: GraphErrorBody,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphErrorBody {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_data: Option<GraphErrorData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<u32>,
    pub fbtrace_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphErrorData {
    pub messaging_product: String,
    pub details: String,
}

/// The success reply to a send (§3.1).
#[derive(Debug, Clone, Serialize)]
pub struct SendReply {
    pub messaging_product: String,
    pub contacts: Vec<ReplyContact>,
    pub messages: Vec<ReplyMessage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplyContact {
    pub input: String,
    pub wa_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplyMessage {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
}

// ---- Webhook notifications (§3.4) ----

/// A notification body: `{"object":"whatsapp_business_account","entry":[…]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub object: String,
    pub entry: Vec<Entry>,
}

/// One entry: the WhatsApp Business Account id and its changes.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    pub changes: Vec<Change>,
}

/// One change; `value` comes before `field`, as in Meta's bodies (§3.5's example).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub value: ChangeValue,
    pub field: String,
}

/// A change's value: `messaging_product`, `metadata`, then the events.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeValue {
    pub messaging_product: String,
    pub metadata: Metadata,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<InboundMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<StatusItem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub display_phone_number: String,
    pub phone_number_id: String,
}

/// The sender of inbound messages: `{"profile":{"name":…},"wa_id":…}`.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub profile: Profile,
    pub wa_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub name: String,
}

/// A message from a user: `context` (a reply) first, then `from`, `id`, `timestamp`, `type`
/// and the object named after the type.
#[derive(Debug, Clone, Serialize)]
pub struct InboundMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
    pub from: String,
    pub id: String,
    pub timestamp: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button: Option<ButtonBody>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageContext {
    pub from: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TextBody {
    pub body: String,
}

/// A template's quick-reply button pressed: `{"payload":…,"text":…}`.
#[derive(Debug, Clone, Serialize)]
pub struct ButtonBody {
    pub payload: String,
    pub text: String,
}

/// A status of a message the business sent.
#[derive(Debug, Clone, Serialize)]
pub struct StatusItem {
    pub id: String,
    pub status: String,
    pub timestamp: String,
    pub recipient_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Conversation {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_timestamp: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, Serialize)]
pub struct Origin {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pricing {
    pub billable: bool,
    pub pricing_model: String,
    pub category: String,
}

/// An error item of a `failed` status or of `value.errors[]`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorItem {
    pub code: u32,
    pub title: String,
    pub message: String,
    pub error_data: ErrorDetails,
    pub href: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetails {
    pub details: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_is_escaped_with_lowercase_hex_and_surrogate_pairs() {
        assert_eq!(
            to_json(&TextBody {
                body: "Müller ☕ 😀 \"q\"\n".into()
            }),
            r#"{"body":"M\u00fcller \u2615 \ud83d\ude00 \"q\"\n"}"#
        );
    }

    #[test]
    fn base64_pads_like_the_standard() {
        for (input, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("263771234567", "MjYzNzcxMjM0NTY3"),
        ] {
            assert_eq!(base64(input.as_bytes()), encoded, "{input:?}");
        }
    }

    #[test]
    fn message_ids_look_like_metas() {
        let outbound = wamid("263771234567", true);
        assert!(
            outbound.starts_with("wamid.HBgMMjYzNzcxMjM0NTY3FQIAERgS"),
            "{outbound}"
        );
        assert!(outbound.ends_with("AA=="), "{outbound}");
        let inbound = wamid("263771234567", false);
        assert!(
            inbound.starts_with("wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhgU"),
            "{inbound}"
        );
        assert!(wamid("123456789012345", true).len() <= 128);
        assert_ne!(wamid("263771234567", true), outbound);
    }

    #[test]
    fn signatures_verify_and_refuse_other_bytes() {
        let body = br#"{"a":"b"}"#;
        let header = signature_256("s", body);
        assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
        assert!(verify_signature_256("s", body, Some(&header)));
        assert!(verify_signature_256(
            "s",
            body,
            Some(&header.to_uppercase().replace("SHA256=", "sha256="))
        ));
        assert!(!verify_signature_256("t", body, Some(&header)));
        assert!(!verify_signature_256("s", b"{\"a\":\"c\"}", Some(&header)));
        assert!(!verify_signature_256("s", body, None));
        assert!(!verify_signature_256("s", body, Some("sha256=zz")));
        assert!(signature_sha1("s", body).len() == 5 + 40);
    }
}
