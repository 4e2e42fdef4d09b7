//! Hashes, HMACs and their comparison: what a plugin needs to sign a request to a provider
//! and to check the signature on a provider's callback.
//!
//! Compare a signature a caller sent with [`eq_hex`] (hex text, any case) or [`eq`] (bytes):
//! both take the same time whatever the first differing byte, so a forger learns nothing
//! from how fast a wrong guess is refused.
//!
//! ```
//! use keel_sdk::digest;
//!
//! // Paynow signs a message with SHA-512 over its values and the integration key, in
//! // upper-case hex (PROVIDERS.md 1.3).
//! let fields = ["1201", "TEST REF", "99.99", "A test ticket transaction",
//!     "http://www.google.com/search?q=returnurl", "http://www.google.com/search?q=resulturl",
//!     "Message", "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977"];
//! let hash = digest::hex_upper(&digest::sha512(fields.concat()));
//! assert!(hash.starts_with("2A033FC38798D913"));
//!
//! // A webhook signed with HMAC-SHA256 over the raw body, sent as `sha256=<hex>`.
//! let body = br#"{"event":"paid"}"#;
//! let sent = format!("sha256={}", digest::hex(&digest::hmac_sha256(b"app-secret", body)));
//! let claimed = sent.strip_prefix("sha256=").unwrap();
//! assert!(digest::eq_hex(claimed, &digest::hex(&digest::hmac_sha256(b"app-secret", body))));
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// SHA-256 of `data`.
pub fn sha256(data: impl AsRef<[u8]>) -> [u8; 32] {
    Sha256::digest(data.as_ref()).into()
}

/// SHA-512 of `data`.
pub fn sha512(data: impl AsRef<[u8]>) -> [u8; 64] {
    Sha512::digest(data.as_ref()).into()
}

/// HMAC-SHA256 of `message` under `key` (any length).
pub fn hmac_sha256(key: impl AsRef<[u8]>, message: impl AsRef<[u8]>) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256>>::new_from_slice(key.as_ref()).expect("HMAC takes a key of any length");
    mac.update(message.as_ref());
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA512 of `message` under `key` (any length).
pub fn hmac_sha512(key: impl AsRef<[u8]>, message: impl AsRef<[u8]>) -> [u8; 64] {
    let mut mac =
        <Hmac<Sha512>>::new_from_slice(key.as_ref()).expect("HMAC takes a key of any length");
    mac.update(message.as_ref());
    mac.finalize().into_bytes().into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    encode(bytes, b"0123456789abcdef")
}

/// Upper-case hex of `bytes`.
pub fn hex_upper(bytes: &[u8]) -> String {
    encode(bytes, b"0123456789ABCDEF")
}

fn encode(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(digits[usize::from(b >> 4)] as char);
        out.push(digits[usize::from(b & 15)] as char);
    }
    out
}

/// Whether `a` and `b` are the same bytes, in time that depends only on their lengths.
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether two hex texts are the same, ignoring the case of the letters, in time that
/// depends only on their lengths. Other characters must match exactly.
pub fn eq_hex(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter()
        .zip(b)
        .fold(0u8, |acc, (&x, &y)| acc | (lower(x) ^ lower(y)))
        == 0
}

/// ASCII lower case without a branch on the byte: upper-case letters get bit 0x20.
fn lower(x: u8) -> u8 {
    x | (u8::from(x.wrapping_sub(b'A') < 26) << 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PROVIDERS.md 1.3: Paynow's documented outbound test vector.
    #[test]
    fn paynow_outbound_vector() {
        let s = "1201TEST REF99.99A test ticket transactionhttp://www.google.com/search?q=returnurlhttp://www.google.com/search?q=resulturlMessage3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977";
        assert_eq!(
            hex_upper(&sha512(s)),
            "2A033FC38798D913D42ECB786B9B19645ADEDBDE788862032F1BD82CF3B92DEF84F316385D5B40DBB35F1A4FD7D5BFE73835174136463CDD48C9366B0749C689"
        );
    }

    /// PROVIDERS.md 1.8: the status update's hashed string, with the key lower-case and in
    /// upper case (which must not match).
    #[test]
    fn paynow_status_update_vector_and_the_key_case() {
        let fields = "INV-2026-00421845293725.00Paidhttps://www.paynow.co.zw/Interface/CheckPayment/?guid=5f0c6a4e-2b1d-4c8e-9f3a-7d6e5c4b3a21";
        let key = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31";
        assert_eq!(
            hex_upper(&sha512(format!("{fields}{key}"))),
            "149DE7E3BC94890DD2299A60F8C6C31062B70C31C861C52F9D0054341165D5E2900F7EA28D5405B149A0B72D133F1D9E411F1CFD8943FCF066D5356156CBA39B"
        );
        assert!(
            hex_upper(&sha512(format!("{fields}{}", key.to_uppercase())))
                .starts_with("B8ECC70503FD4C1F")
        );
    }

    /// RFC 4231 test case 2 (key "Jefe").
    #[test]
    fn hmac_matches_rfc_4231() {
        let data = "what do ya want for nothing?";
        assert_eq!(
            hex(&hmac_sha256("Jefe", data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha512("Jefe", data)),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn sha256_of_the_empty_input() {
        assert_eq!(
            hex(&sha256([])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn comparisons_ignore_only_hex_case() {
        assert!(eq_hex("ABCDEF0123", "abcdef0123"));
        assert!(!eq_hex("ABCDEF0123", "abcdef0124"));
        assert!(!eq_hex("abc", "abcd"), "lengths differ");
        assert!(!eq_hex("", "a"));
        assert!(!eq_hex("0", "\x10"), "only letters fold");
        assert!(!eq_hex("@", "`"));
        assert!(eq_hex("", ""));
        assert!(eq(b"same", b"same"));
        assert!(!eq(b"same", b"Same"), "bytes compare exactly");
        assert!(!eq(b"same", b"sam"));
    }
}
