//! The shared WIT types under plain names, with helpers.

use crate::bindings::host::keel::plugin::types as wit;

pub use wit::{
    Address, Contact, Features, Headers, InboundReply, InboundRequest, Money, PluginError,
    PluginInfo, RetryHint,
};

impl Money {
    /// `minor` units of `currency` (`Money::new(1050, "USD")` is 10.50 USD).
    pub fn new(minor: i64, currency: impl Into<String>) -> Self {
        Self {
            minor,
            currency: currency.into(),
        }
    }

    /// The amount in major units with exactly `exponent` decimal places, for a provider
    /// that takes `"10.50"`: no currency, no thousands separator, `-` when negative. The
    /// exponent is the currency's (2 for USD and ZWG, 0 for JPY, 3 for KWD); the kernel
    /// does not send it, so the plugin knows the currencies it serves.
    ///
    /// ```
    /// use keel_sdk::Money;
    ///
    /// assert_eq!(Money::new(2500, "USD").to_decimal(2), "25.00");
    /// assert_eq!(Money::new(-1, "USD").to_decimal(2), "-0.01");
    /// assert_eq!(Money::new(1050, "JPY").to_decimal(0), "1050");
    /// ```
    pub fn to_decimal(&self, exponent: u32) -> String {
        // Digits, not arithmetic: exact for every i64 and every exponent.
        let exponent = exponent as usize;
        let digits = self.minor.unsigned_abs().to_string();
        let digits = format!("{digits:0>width$}", width = exponent + 1);
        let (whole, fraction) = digits.split_at(digits.len() - exponent);
        let sign = if self.minor < 0 { "-" } else { "" };
        if fraction.is_empty() {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{fraction}")
        }
    }

    /// Reads an amount a provider wrote in major units (`"25.00"`, `"12.5"`, `"-3"`), exactly:
    /// digits with an optional `-` and at most `exponent` decimal places. Anything else
    /// (a float's exponent, a `+`, spaces, separators, a bare `.5` or `5.`, more places than
    /// the currency has, a number too large for `i64` minor units) is an error, never a
    /// rounded guess.
    ///
    /// ```
    /// use keel_sdk::Money;
    ///
    /// assert_eq!(Money::parse_decimal("12.5", 2, "USD"), Ok(Money::new(1250, "USD")));
    /// assert_eq!(Money::parse_decimal("25.00", 2, "ZWG"), Ok(Money::new(2500, "ZWG")));
    /// assert!(Money::parse_decimal("25.001", 2, "USD").is_err());
    /// assert!(Money::parse_decimal("1e3", 2, "USD").is_err());
    /// ```
    pub fn parse_decimal(
        text: &str,
        exponent: u32,
        currency: impl Into<String>,
    ) -> Result<Self, AmountError> {
        let err = |why: &'static str| AmountError {
            text: text.to_owned(),
            why,
        };
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (unsigned.contains('.') && !digits(fraction)) {
            return Err(err("is not a decimal number"));
        }
        let exponent = exponent as usize;
        if fraction.len() > exponent {
            return Err(err("has more decimal places than the currency"));
        }
        let sign = if negative { "-" } else { "" };
        let minor: i64 = format!("{sign}{whole}{fraction:0<exponent$}")
            .parse()
            .map_err(|_| err("is too large"))?;
        Ok(Self::new(minor, currency))
    }
}

/// Why [`Money::parse_decimal`] refused a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountError {
    text: String,
    why: &'static str,
}

impl std::fmt::Display for AmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the amount {:?} {}", self.text, self.why)
    }
}

impl std::error::Error for AmountError {}

impl PluginInfo {
    /// A description; pass `env!("CARGO_PKG_VERSION")` as the version so it always matches
    /// the crate (the kernel checks it against `plugin.toml`).
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
        features: Features,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            features,
        }
    }
}

impl InboundRequest {
    /// The first header named `name`, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The query string's parameters, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        crate::http::form_decode(&self.query)
    }

    /// An `application/x-www-form-urlencoded` body's fields, decoded, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        crate::http::form_decode(self.text().unwrap_or_default())
    }

    /// The body's form fields decoded strictly, in order, for checking a signature over
    /// them: see [`form_decode_strict`](crate::http::form_decode_strict).
    pub fn form_strict(&self) -> Result<Vec<(String, String)>, crate::http::FormError> {
        crate::http::form_decode_strict(&self.body)
    }
}

impl InboundReply {
    /// `200 OK` with no body.
    pub fn ok() -> Self {
        Self {
            status: 200,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `200 OK` with a plain-text body.
    pub fn text(body: impl Into<String>) -> Self {
        Self::status(200, body)
    }

    /// A plain-text reply with HTTP status `code`: `InboundReply::status(400, "bad hash")`
    /// tells a provider that retries on errors to try again later, or a caller what it got
    /// wrong.
    pub fn status(code: u16, body: impl Into<String>) -> Self {
        Self {
            status: code,
            content_type: Some("text/plain; charset=utf-8".into()),
            headers: Vec::new(),
            body: body.into().into_bytes(),
        }
    }

    /// `200 OK` with `value` as a JSON body.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, PluginError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| PluginError::internal(format!("the reply is not JSON: {e}")))?;
        Ok(Self {
            status: 200,
            content_type: Some("application/json".into()),
            headers: Vec::new(),
            body,
        })
    }

    /// The same reply with HTTP status `code`.
    pub fn with_status(mut self, code: u16) -> Self {
        self.status = code;
        self
    }

    /// The same reply with one more header (`Retry-After`, `Cache-Control`). The kernel
    /// drops the headers that are its own to set (`Content-Length`, `Content-Type`: the
    /// constructors set that one, `Transfer-Encoding`, `Connection`, `Set-Cookie`).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_start_without_headers_and_add_them_in_order() {
        assert!(InboundReply::ok().headers.is_empty());
        let reply = InboundReply::status(503, "busy")
            .with_header("Retry-After", "30")
            .with_header("Cache-Control", "no-store");
        assert_eq!(
            reply.headers,
            vec![
                ("Retry-After".to_owned(), "30".to_owned()),
                ("Cache-Control".to_owned(), "no-store".to_owned()),
            ]
        );
        assert_eq!(reply.status, 503);
        assert_eq!(
            reply.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
    }

    #[test]
    fn minor_units_format_as_decimals() {
        for (minor, exponent, text) in [
            (1, 2, "0.01"),
            (10, 2, "0.10"),
            (2500, 2, "25.00"),
            (123_456, 2, "1234.56"),
            (0, 2, "0.00"),
            (-5, 2, "-0.05"),
            (-123_456, 2, "-1234.56"),
            (7, 0, "7"),
            (1, 3, "0.001"),
            (i64::MAX, 2, "92233720368547758.07"),
            (i64::MIN, 2, "-92233720368547758.08"),
        ] {
            assert_eq!(
                Money::new(minor, "USD").to_decimal(exponent),
                text,
                "{minor}"
            );
            assert_eq!(
                Money::parse_decimal(text, exponent, "USD"),
                Ok(Money::new(minor, "USD")),
                "{text} reads back"
            );
        }
    }

    #[test]
    fn decimals_parse_exactly_or_not_at_all() {
        for (text, minor) in [("12.5", 1250), ("12", 1200), ("007.50", 750), ("-0.1", -10)] {
            assert_eq!(
                Money::parse_decimal(text, 2, "ZWG"),
                Ok(Money::new(minor, "ZWG"))
            );
        }
        for (text, why) in [
            ("25.001", "has more decimal places than the currency"),
            ("1.5", "has more decimal places than the currency"),
            ("", "is not a decimal number"),
            ("-", "is not a decimal number"),
            (".5", "is not a decimal number"),
            ("5.", "is not a decimal number"),
            ("+5", "is not a decimal number"),
            (" 5", "is not a decimal number"),
            ("5 ", "is not a decimal number"),
            ("1,000.00", "is not a decimal number"),
            ("1e3", "is not a decimal number"),
            ("1.2.3", "is not a decimal number"),
            ("--1", "is not a decimal number"),
            ("NaN", "is not a decimal number"),
            ("٣", "is not a decimal number"),
            ("92233720368547758.08", "is too large"),
        ] {
            let exponent = if text == "1.5" { 0 } else { 2 };
            let err = Money::parse_decimal(text, exponent, "USD").unwrap_err();
            assert_eq!(err.to_string(), format!("the amount {text:?} {why}"));
        }
    }

    #[test]
    fn reply_constructors_set_status_type_and_body() {
        let r = InboundReply::status(400, "bad hash");
        assert_eq!(
            (r.status, r.content_type.as_deref(), r.body.as_slice()),
            (400, Some("text/plain; charset=utf-8"), &b"bad hash"[..])
        );
        let r = InboundReply::json(&serde_json::json!({"ok": true}))
            .unwrap()
            .with_status(202);
        assert_eq!(
            (r.status, r.content_type.as_deref(), r.body.as_slice()),
            (202, Some("application/json"), &br#"{"ok":true}"#[..])
        );
        assert_eq!(InboundReply::text("hi").status, 200);
        assert!(InboundReply::ok().body.is_empty());
    }
}
