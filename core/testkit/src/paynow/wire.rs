//! Paynow's wire format (PROVIDERS.md §1.1, §1.3): form bodies decoded once in order, replies
//! encoded the way Paynow's .NET encoder writes them, the SHA-512 hash, decimal amounts.
//!
//! Public so that tests which build Paynow messages by hand (a forged callback, a replayed
//! status update) can use the same rules; the fake's own tests check these functions against
//! an independent computation and Paynow's published vectors.

use std::fmt::Write;

use sha2::{Digest, Sha512};

/// A message's fields, in the order they appear on the wire.
pub type Fields = Vec<(String, String)>;

/// Decodes a form body once, keeping order: split on `&`, then on the first `=`; `+` is a
/// space and `%xx` a byte (either case); a malformed escape is kept as written; empty pairs
/// are skipped; bytes that are not UTF-8 become U+FFFD.
pub fn decode(body: &str) -> Fields {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (unescape(name), unescape(value))
        })
        .collect()
}

fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                match (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// Encodes fields as Paynow writes its replies: `k=v&k=v`, a space as `+`, every byte
/// outside `A–Z a–z 0–9 - _ . ! * ( )` as a LOWERCASE `%xx` escape (.NET's
/// `HttpUtility.UrlEncode`, as in PROVIDERS.md §1.3's reply example).
pub fn encode(fields: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&escape(name));
        out.push('=');
        out.push_str(&escape(value));
    }
    out
}

/// One value in Paynow's reply encoding (see [`encode`]).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'*'
            | b'('
            | b')' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02x}");
            }
        }
    }
    out
}

/// Paynow's hash (§1.3): the values concatenated, then the key, UTF-8, SHA-512, uppercase hex.
/// The key is appended exactly as given; Paynow's side holds it lower-cased.
pub fn hash<'a>(values: impl IntoIterator<Item = &'a str>, key: &str) -> String {
    let mut digest = Sha512::new();
    for value in values {
        digest.update(value.as_bytes());
    }
    digest.update(key.as_bytes());
    let mut out = String::with_capacity(128);
    for byte in digest.finalize() {
        let _ = write!(out, "{byte:02X}");
    }
    out
}

/// The hash a received message should carry: over every value except those of `hash`
/// fields, in received order.
pub fn expected_hash(fields: &[(String, String)], key: &str) -> String {
    hash(
        fields
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("hash"))
            .map(|(_, value)| value.as_str()),
        key,
    )
}

/// Appends `hash` over the values in order and `key`.
pub fn sign(mut fields: Fields, key: &str) -> Fields {
    let hash = hash(fields.iter().map(|(_, value)| value.as_str()), key);
    fields.push(("hash".to_owned(), hash));
    fields
}

/// True when `fields` carries a hash equal (in any case) to the one `key` gives.
pub fn verify(fields: &[(String, String)], key: &str) -> bool {
    field(fields, "hash").is_some_and(|sent| sent.eq_ignore_ascii_case(&expected_hash(fields, key)))
}

/// The first value of `name`, matched case-insensitively (as ASP.NET's `Request.Form`).
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// A positive decimal amount written with two places (`12.5` → `12.50`, `010` → `10.00`),
/// or `None` for anything else: a sign, a comma, spaces, more than two decimal places,
/// zero. Paynow documents "Decimal"; the two-place limit is the fake's choice (Keel never
/// sends fractions of a cent, and a plugin that did should hear about it).
pub fn two_places(amount: &str) -> Option<String> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 2
        || amount.ends_with('.')
    {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = format!("{fraction:0<2}");
    if whole == "0" && fraction == "00" {
        return None;
    }
    Some(format!("{whole}.{fraction}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_keeps_order_plus_is_space_and_bad_escapes_stay() {
        assert_eq!(
            decode("b=1+2&a=%3A%3a&&c&d=%zz%4"),
            vec![
                ("b".into(), "1 2".into()),
                ("a".into(), "::".into()),
                ("c".into(), "".into()),
                ("d".into(), "%zz%4".into()),
            ]
        );
    }

    #[test]
    fn encoding_is_lowercase_with_plus_for_space() {
        assert_eq!(
            encode(&[("error".into(), "Invalid Hash.  start with: A(b)*!~/".into())]),
            "error=Invalid+Hash.++start+with%3a+A(b)*!%7e%2f"
        );
    }

    const DOCS_KEY: &str = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977";
    const WORKED_KEY: &str = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31";

    #[test]
    fn paynow_documented_vectors() {
        // PROVIDERS.md §1.3, outbound.
        assert_eq!(
            hash(
                [
                    "1201",
                    "TEST REF",
                    "99.99",
                    "A test ticket transaction",
                    "http://www.google.com/search?q=returnurl",
                    "http://www.google.com/search?q=resulturl",
                    "Message",
                ],
                DOCS_KEY
            ),
            "2A033FC38798D913D42ECB786B9B19645ADEDBDE788862032F1BD82CF3B92DEF84F316385D5B40DBB35F1A4FD7D5BFE73835174136463CDD48C9366B0749C689"
        );
        // §1.3, an inbound reply, as encoded on the wire.
        let reply = decode(
            "status=Ok&browserurl=https%3a%2f%2fstaging.paynow.co.zw%2fPayment%2fConfirmPayment%2f9510&pollurl=https%3a%2f%2fstaging.paynow.co.zw%2fInterface%2fCheckPayment%2f%3fguid%3dc7ed41da-0159-46da-b428-69549f770413&paynowreference=9510&hash=750DD0B0DF374678707BB5AF915AF81C228B9058AD57BB7120569EC68BBB9C2EFC1B26C6375D2BC562AC909B3CD6B2AF1D42E1A5E479FFAC8F4FB3FDCE71DF4D",
        );
        assert!(verify(&reply, DOCS_KEY));
        assert!(!verify(&reply, &DOCS_KEY.to_uppercase()));
        // §1.8, a status update, and the same with the key upper-cased.
        let update = [
            "INV-2026-0042",
            "18452937",
            "25.00",
            "Paid",
            "https://www.paynow.co.zw/Interface/CheckPayment/?guid=5f0c6a4e-2b1d-4c8e-9f3a-7d6e5c4b3a21",
        ];
        assert_eq!(
            hash(update, WORKED_KEY),
            "149DE7E3BC94890DD2299A60F8C6C31062B70C31C861C52F9D0054341165D5E2900F7EA28D5405B149A0B72D133F1D9E411F1CFD8943FCF066D5356156CBA39B"
        );
        assert!(hash(update, &WORKED_KEY.to_uppercase()).starts_with("B8ECC70503FD4C1F"));
    }

    #[test]
    fn amounts() {
        for (sent, two) in [
            ("25.00", Some("25.00")),
            ("12.5", Some("12.50")),
            ("10", Some("10.00")),
            ("010.0", Some("10.00")),
            (".5", Some("0.50")),
            ("0", None),
            ("0.00", None),
            ("-1.00", None),
            ("1,000.00", None),
            ("1.005", None),
            ("12.", None),
            ("", None),
            (" 1.00", None),
        ] {
            assert_eq!(two_places(sent).as_deref(), two, "{sent:?}");
        }
    }
}
