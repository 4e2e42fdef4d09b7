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

    /// The body's form fields decoded strictly, in order, for a provider that answers with
    /// an `application/x-www-form-urlencoded` body and signs its fields (see
    /// [`form_decode_strict`]; [`form_decode`] of [`text`](Response::text) is the lenient
    /// reading).
    ///
    /// ```
    /// use keel_sdk::http::{FormError, Response};
    ///
    /// let reply = Response { status: 200, headers: vec![], body: b"status=Ok&pollurl=https%3a%2f%2fx.example%2f".to_vec() };
    /// assert_eq!(reply.form_strict()?[1].1, "https://x.example/");
    /// let broken = Response { status: 200, headers: vec![], body: b"status=%zz".to_vec() };
    /// assert_eq!(broken.form_strict(), Err(FormError::BadEscape { offset: 7 }));
    /// # Ok::<(), FormError>(())
    /// ```
    pub fn form_strict(&self) -> Result<Vec<(String, String)>, FormError> {
        form_decode_strict(&self.body)
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
/// get an empty value, and invalid escapes are kept as written. To check a signature over
/// the fields, use [`form_decode_strict`], which refuses what this function guesses at.
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes an `application/x-www-form-urlencoded` body strictly, for messages whose
/// signature covers the decoded fields: every field in order (unknown ones included), `+`
/// and `%XX` decoded exactly once, and an error rather than a guess when an escape is
/// malformed or a decoded name or value is not UTF-8 ([`form_decode`] keeps such text as
/// written, which a signature check must not hash).
///
/// Empty pieces (`a=1&&b=2`, a trailing `&`) are skipped and a piece without `=` is a name
/// with an empty value, as browsers do. Duplicate names are kept, in order.
///
/// ```
/// use keel_sdk::http::{form_decode_strict, FormError};
///
/// let fields = form_decode_strict(b"status=Ok&pollurl=https%3a%2f%2fx.example%2f%3fguid%3d1&note=Awaiting+Delivery")?;
/// assert_eq!(fields[1], ("pollurl".to_owned(), "https://x.example/?guid=1".to_owned()));
/// assert_eq!(fields[2].1, "Awaiting Delivery");
///
/// assert_eq!(form_decode_strict(b"a=1&b=%zz"), Err(FormError::BadEscape { offset: 6 }));
/// assert_eq!(form_decode_strict(b"a=%ff"), Err(FormError::NotUtf8 { field: 0 }));
/// # Ok::<(), FormError>(())
/// ```
pub fn form_decode_strict(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut fields = Vec::new();
    let mut start = 0;
    for piece in body.split(|&b| b == b'&') {
        let offset = start;
        start += piece.len() + 1;
        if piece.is_empty() {
            continue;
        }
        let (name, value, value_offset) = match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], &piece[eq + 1..], offset + eq + 1),
            None => (piece, &[][..], offset + piece.len()),
        };
        let field = fields.len();
        let text =
            |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| FormError::NotUtf8 { field });
        let name = text(percent_decode_strict(name, offset)?)?;
        let value = text(percent_decode_strict(value, value_offset)?)?;
        fields.push((name, value));
    }
    Ok(fields)
}

/// Why [`form_decode_strict`] refused a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// A `%` not followed by two hex digits, at this byte offset of the body.
    BadEscape {
        /// Where the `%` is, counted in bytes from the start of the body.
        offset: usize,
    },
    /// The name or value of a field (counted from 0, empty pieces not counted) is not
    /// UTF-8 once decoded.
    NotUtf8 {
        /// The field's position.
        field: usize,
    },
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadEscape { offset } => write!(
                f,
                "malformed percent-escape at byte {offset} (`%` must be followed by two hex digits)"
            ),
            Self::NotUtf8 { field } => write!(f, "field {field} is not UTF-8 once decoded"),
        }
    }
}

impl std::error::Error for FormError {}

/// `+` → space and `%XX` → byte; `offset` is where `bytes` starts in the whole body.
fn percent_decode_strict(bytes: &[u8], offset: usize) -> Result<Vec<u8>, FormError> {
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
                _ => return Err(FormError::BadEscape { offset: offset + i }),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

/// The origin of an absolute `http` or `https` URL: scheme, host and port, for checking
/// that a URL a provider handed back (a poll URL, a "next page" link) points where the
/// plugin means to send requests, before sending anything there.
///
/// Parsing is deliberately narrow, so that it cannot disagree with the kernel's URL parser
/// about which host a URL names: the host must be a DNS name (ASCII letters, digits, `-`
/// and `.`), an IPv4 address or a bracketed IPv6 address, and a URL with user info
/// (`https://a@b`), a backslash, whitespace, a percent-escape in the host or an empty or
/// out-of-range port is refused. Scheme and host compare without case (they are stored in
/// lower case); the port defaults from the scheme.
///
/// ```
/// use keel_sdk::http::Origin;
///
/// let api = Origin::of("https://www.paynow.co.zw")?;
/// let poll = Origin::of("https://WWW.Paynow.co.zw:443/Interface/CheckPayment/?guid=1")?;
/// assert_eq!(api, poll);
/// assert_eq!(api.to_string(), "https://www.paynow.co.zw");
/// assert_ne!(api, Origin::of("http://www.paynow.co.zw/")?);
/// assert!(Origin::of("https://www.paynow.co.zw@evil.example/").is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of `url`, or why it is not an absolute `http`/`https` URL this parser
    /// accepts.
    pub fn of(url: &str) -> Result<Self, String> {
        let refuse = |why: &str| Err(format!("`{url}` {why}"));
        let Some((scheme, rest)) = url.split_once("://") else {
            return refuse("is not an absolute URL");
        };
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return refuse("is not an http or https URL"),
        };
        if url
            .bytes()
            .any(|b| b == b'\\' || b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return refuse("contains a backslash, whitespace or a control character");
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return refuse("carries user info (`user@`)");
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let Some((v6, after)) = bracketed.split_once(']') else {
                    return refuse("has an unclosed `[` in its host");
                };
                if v6.is_empty()
                    || !v6
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return refuse("has an invalid IPv6 host");
                }
                let port = match after {
                    "" => None,
                    _ => match after.strip_prefix(':') {
                        Some(port) => Some(port),
                        None => return refuse("has text after its IPv6 host"),
                    },
                };
                (format!("[{}]", v6.to_ascii_lowercase()), port)
            }
            None => {
                let (host, port) = match authority.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (authority, None),
                };
                let valid = |label: &str| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                };
                if !host.split('.').all(valid) {
                    return refuse("does not name a host by DNS name or IP address");
                }
                (host.to_ascii_lowercase(), port)
            }
        };
        let port = match port {
            None => default_port,
            Some(digits) => match digits.parse::<u16>() {
                Ok(port) if port > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => return refuse("has an invalid port"),
            },
        };
        Ok(Self { scheme, host, port })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host in lower case (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Display for Origin {
    /// `scheme://host`, with `:port` when it is not the scheme's default.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match (self.scheme.as_str(), self.port) {
            ("https", 443) | ("http", 80) => Ok(()),
            (_, port) => write!(f, ":{port}"),
        }
    }
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
    fn strict_decoding_keeps_order_and_decodes_once() {
        let fields = |body: &[u8]| form_decode_strict(body).unwrap();
        assert_eq!(
            fields(b"b=2&a=1&&Z=%2541+x&flag&=v&"),
            vec![
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "1".to_owned()),
                ("Z".to_owned(), "%41 x".to_owned()),
                ("flag".to_owned(), String::new()),
                (String::new(), "v".to_owned()),
            ]
        );
        // Lower- and upper-case escapes, raw UTF-8 and `=` inside a value.
        assert_eq!(
            fields("u=https%3a%2F%2Fx&n=Tend%C3%A1i&ü=a=b".as_bytes()),
            vec![
                ("u".to_owned(), "https://x".to_owned()),
                ("n".to_owned(), "Tendái".to_owned()),
                ("ü".to_owned(), "a=b".to_owned()),
            ]
        );
        assert_eq!(fields(b""), vec![]);
        let encoded = form_encode([("note", "a&b=c/ü +")]);
        assert_eq!(
            fields(encoded.as_bytes()),
            vec![("note".to_owned(), "a&b=c/ü +".to_owned())]
        );
    }

    #[test]
    fn strict_decoding_refuses_what_the_lenient_one_guesses() {
        for (body, err) in [
            (&b"a=%zz"[..], FormError::BadEscape { offset: 2 }),
            (b"a=1&b=x%4", FormError::BadEscape { offset: 7 }),
            (b"a=1&b=%", FormError::BadEscape { offset: 6 }),
            (b"a=1&%g1=x", FormError::BadEscape { offset: 4 }),
            (b"a=1&&b=%c3%28", FormError::NotUtf8 { field: 1 }),
            (b"%ff=1", FormError::NotUtf8 { field: 0 }),
            (b"a=\xff", FormError::NotUtf8 { field: 0 }),
        ] {
            assert_eq!(form_decode_strict(body), Err(err), "{body:?}");
        }
        assert_eq!(
            FormError::BadEscape { offset: 2 }.to_string(),
            "malformed percent-escape at byte 2 (`%` must be followed by two hex digits)"
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let origin = |url: &str| Origin::of(url).unwrap();
        let api = origin("https://www.paynow.co.zw");
        assert_eq!(
            (api.scheme(), api.host(), api.port()),
            ("https", "www.paynow.co.zw", 443)
        );
        for same in [
            "https://www.paynow.co.zw/",
            "HTTPS://WWW.PAYNOW.CO.ZW:443/Interface/CheckPayment/?guid=1",
            "https://www.paynow.co.zw?x=1",
            "https://www.paynow.co.zw#frag",
        ] {
            assert_eq!(origin(same), api, "{same}");
        }
        for different in [
            "http://www.paynow.co.zw",
            "https://www.paynow.co.zw:8443",
            "https://paynow.co.zw",
            "https://www.paynow.co.zw.evil.example",
        ] {
            assert_ne!(origin(different), api, "{different}");
        }
        let local = origin("http://www.paynow.co.zw:8080/interface");
        assert_eq!(local.to_string(), "http://www.paynow.co.zw:8080");
        assert_eq!(origin("http://[::1]:9/x").to_string(), "http://[::1]:9");
        assert_eq!(origin("http://127.0.0.1").port(), 80);
    }

    #[test]
    fn origins_refuse_urls_a_parser_could_read_two_ways() {
        for url in [
            "www.paynow.co.zw/x",
            "ftp://www.paynow.co.zw",
            "https://www.paynow.co.zw@evil.example/",
            "https://user:pw@www.paynow.co.zw/",
            "https://evil.example\\@www.paynow.co.zw/",
            "https://evil.example\\.www.paynow.co.zw/",
            "https://www.pay now.co.zw/",
            "https://www.paynow.co.zw\n/",
            " https://www.paynow.co.zw",
            "https://www.paynow%2eco.zw/",
            "https:///path",
            "https://www..paynow.co.zw",
            "https://www.paynow.co.zw:",
            "https://www.paynow.co.zw:0",
            "https://www.paynow.co.zw:+443",
            "https://www.paynow.co.zw:65536",
            "https://[::1",
            "https://[::1]x",
            "https://[]/",
        ] {
            assert!(Origin::of(url).is_err(), "{url}");
        }
    }

    #[test]
    fn responses_decode_their_form_body_strictly() {
        let reply = |body: &[u8]| Response {
            status: 200,
            headers: vec![],
            body: body.to_vec(),
        };
        assert_eq!(
            reply(b"Status=Ok&instructions=Dial+*151%23%0d%0aThen+approve").form_strict(),
            Ok(vec![
                ("Status".to_owned(), "Ok".to_owned()),
                (
                    "instructions".to_owned(),
                    "Dial *151#\r\nThen approve".to_owned()
                ),
            ])
        );
        assert_eq!(
            reply(b"a=\xff").form_strict(),
            Err(FormError::NotUtf8 { field: 0 })
        );
        assert_eq!(reply(b"").form_strict(), Ok(vec![]));
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
