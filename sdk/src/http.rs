//! Outbound HTTP through the kernel's client.
//!
//! ```no_run
//! # fn main() -> Result<(), keel_sdk::PluginError> {
//! use keel_sdk::http::Request;
//!
//! let reply: serde_json::Value = Request::post("https://api.example.com/v1/messages")
//!     .bearer("token")
//!     .json(&serde_json::json!({"to": "+263771234567", "text": "Invoice paid"}))?
//!     .send()?
//!     .error_for_status()?
//!     .json()?;
//! # let _ = reply; Ok(()) }
//! ```
//!
//! The kernel only lets through requests to hosts the plugin's `plugin.toml` declares
//! and the admin grants; a refused destination is [`Error::Denied`]. A non-2xx status is a
//! [`Response`], not an error: [`Response::error_for_status`] maps the usual ones to the
//! [`PluginError`] the kernel acts on.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::PluginError;
use crate::bindings::host::keel::plugin::http as wit;

pub use wit::{Error, Method, Response};

/// A request being built. Nothing is sent until [`Request::send`].
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    inner: wit::Request,
}

impl Request {
    /// A request with `method` to the absolute `url`.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            inner: wit::Request {
                method,
                url: url.into(),
                headers: Vec::new(),
                body: Vec::new(),
                timeout_ms: None,
            },
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.headers.push((name.into(), value.into()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// `Authorization: Basic …` from a user name and password.
    pub fn basic(self, user: &str, password: &str) -> Self {
        let encoded = base64(format!("{user}:{password}").as_bytes());
        self.header("authorization", format!("Basic {encoded}"))
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = body.into();
        self
    }

    /// A JSON body, with its content type.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, PluginError> {
        let body = serde_json::to_vec(value)?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// An `application/x-www-form-urlencoded` body, fields in the order given.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(self, fields: &[(K, V)]) -> Self {
        let body = form_encode(fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// An XML body, with its content type.
    pub fn xml(self, document: impl Into<String>) -> Self {
        self.header("content-type", "application/xml; charset=utf-8")
            .body(document.into().into_bytes())
    }

    /// A time-out for this request; the kernel also bounds it by the call's own time.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.inner.timeout_ms = Some(ms);
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Sends the request and waits for the whole response.
    pub fn send(self) -> Result<Response, Error> {
        crate::backend::http_send(&self.inner)
    }
}

impl Response {
    /// The first header named `name`, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::types::header(&self.headers, name)
    }

    /// The body as UTF-8 text (invalid sequences replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            PluginError::internal(format!(
                "the provider's reply is not the JSON expected: {e}"
            ))
        })
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response if its status is 2xx, otherwise the error the kernel should act on:
    /// 429 and 5xx are [`PluginError::Unavailable`] (with `Retry-After` when given), 401
    /// and 403 [`PluginError::Misconfigured`] (credentials), other 4xx
    /// [`PluginError::Internal`] (the plugin sent something the provider rejects).
    pub fn error_for_status(self) -> Result<Self, PluginError> {
        if self.is_success() {
            return Ok(self);
        }
        let snippet: String = self.text().chars().take(200).collect();
        Err(match self.status {
            429 | 500..=599 => PluginError::unavailable(
                format!("the provider answered {}: {snippet}", self.status),
                self.header("retry-after")
                    .and_then(|v| v.trim().parse().ok()),
            ),
            401 | 403 => PluginError::misconfigured(format!(
                "the provider refused the credentials ({}): {snippet}",
                self.status
            )),
            status => PluginError::internal(format!("the provider answered {status}: {snippet}")),
        })
    }
}

/// Encodes fields as `application/x-www-form-urlencoded`.
pub fn form_encode<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(k, &mut out);
        out.push('=');
        percent_encode_into(v, &mut out);
    }
    out
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space); pairs without `=`
/// get an empty value, and invalid escapes are kept as written.
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_encode_into(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex_value(bytes.get(i + 1)), hex_value(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: Option<&u8>) -> Option<u8> {
    match *b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_round_trip_with_escapes() {
        let encoded = form_encode([("name", "Tendai Moyo"), ("note", "a&b=c/ü"), ("empty", "")]);
        assert_eq!(encoded, "name=Tendai+Moyo&note=a%26b%3Dc%2F%C3%BC&empty=");
        assert_eq!(
            form_decode(&encoded),
            vec![
                ("name".to_owned(), "Tendai Moyo".to_owned()),
                ("note".to_owned(), "a&b=c/ü".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            form_decode("a=%zz&b"),
            vec![
                ("a".to_owned(), "%zz".to_owned()),
                ("b".to_owned(), String::new())
            ]
        );
    }

    #[test]
    fn basic_auth_is_base64() {
        let req = Request::get("https://x.example").basic("Aladdin", "open sesame");
        assert_eq!(
            req.inner.headers,
            vec![(
                "authorization".to_owned(),
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_owned()
            )]
        );
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn statuses_map_to_what_the_kernel_does() {
        let response = |status: u16, headers: Vec<(String, String)>| Response {
            status,
            headers,
            body: b"nope".to_vec(),
        };
        assert!(response(204, vec![]).error_for_status().is_ok());
        let err = response(503, vec![("Retry-After".into(), "30".into())])
            .error_for_status()
            .unwrap_err();
        assert!(
            matches!(err, PluginError::Unavailable(ref h) if h.retry_after_seconds == Some(30)),
            "{err:?}"
        );
        assert!(matches!(
            response(429, vec![]).error_for_status(),
            Err(PluginError::Unavailable(_))
        ));
        assert!(matches!(
            response(401, vec![]).error_for_status(),
            Err(PluginError::Misconfigured(_))
        ));
        assert!(matches!(
            response(422, vec![]).error_for_status(),
            Err(PluginError::Internal(_))
        ));
    }
}
