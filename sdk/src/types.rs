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
}

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
}

impl InboundReply {
    /// `200 OK` with no body.
    pub fn ok() -> Self {
        Self {
            status: 200,
            content_type: None,
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
            body,
        })
    }

    /// The same reply with HTTP status `code`.
    pub fn with_status(mut self, code: u16) -> Self {
        self.status = code;
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
