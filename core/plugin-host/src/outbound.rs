//! The `http` import: one reqwest client per plugin, checked against the plugin's grant
//! before the request, on every redirect hop and on every resolved address.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use crate::bindings::v0_2::host::keel::plugin::http::{Error, Method, Request, Response};
use crate::grant::Grant;

/// Caps on a plugin's outbound HTTP.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Requests one call may make.
    pub max_requests_per_call: u32,
    /// Largest request body.
    pub max_request_bytes: usize,
    /// Largest response body; reading stops as soon as it is passed.
    pub max_response_bytes: usize,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Redirects followed per request.
    pub max_redirects: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_requests_per_call: 20,
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 8 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
        }
    }
}

/// Host names pointed at fixed addresses, for tests that put a provider's name on a
/// loopback fake. The addresses are still checked against the grant: a test must allow
/// the loopback network like an admin would.
pub type ResolverOverrides = BTreeMap<String, Vec<IpAddr>>;

/// Origins whose connections go to a loopback fake instead (`https://www.paynow.co.zw` →
/// `http://127.0.0.1:8089`), for running a real `keel serve` against a fake provider. The
/// plugin and its grant still see the original URL (the grant is checked against it, the
/// plugin's poll-URL checks pass); only the connection is made to the mapped origin, which
/// must be loopback. Build it with [`OriginOverrides::insert`], which checks both sides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginOverrides {
    /// `scheme://host[:port]` as [`reqwest::Url::origin`] writes it → the target origin.
    map: BTreeMap<String, reqwest::Url>,
}

impl OriginOverrides {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `from` (an http or https origin) to `to` (an http or https origin on a loopback
    /// address: `127.0.0.1`, `[::1]` or `localhost`). Paths, queries and user names are
    /// refused on both sides.
    pub fn insert(&mut self, from: &str, to: &str) -> Result<(), String> {
        let from_url = origin_url(from)?;
        let to_url = origin_url(to)?;
        let loopback = match to_url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if !loopback {
            return Err(format!(
                "`{to}`: a fake origin must be on loopback (127.0.0.1, [::1] or localhost)"
            ));
        }
        self.map
            .insert(from_url.origin().ascii_serialization(), to_url);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `(from, to)` pairs, for logging.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map
            .iter()
            .map(|(from, to)| (from.as_str(), to.as_str().trim_end_matches('/')))
    }

    /// `url` with its origin replaced when it is mapped.
    fn apply(&self, url: &reqwest::Url) -> Option<reqwest::Url> {
        let to = self.map.get(&url.origin().ascii_serialization())?;
        let mut moved = url.clone();
        // Scheme, host and port of an http(s) URL always accept these values.
        moved.set_scheme(to.scheme()).ok()?;
        moved.set_host(to.host_str()).ok()?;
        moved.set_port(to.port()).ok()?;
        Some(moved)
    }
}

fn origin_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| format!("`{text}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("`{text}`: an origin is http(s)://host[:port]"));
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(format!(
            "`{text}`: only scheme, host and port; no path, query or user"
        ));
    }
    Ok(url)
}

/// A denial, carried through reqwest's error chain so the host can tell it from a
/// connection failure.
#[derive(Debug)]
struct Denied(String);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Denied {}

/// Resolves through the system (or the overrides) and drops addresses the grant refuses;
/// a name left with none is denied. Checking after resolution also defeats DNS rebinding:
/// the address connected to is the one checked.
struct GuardedResolver {
    grant: Grant,
    overrides: Arc<ResolverOverrides>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let grant = self.grant.clone();
        let overrides = Arc::clone(&self.overrides);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<IpAddr> = match overrides.get(&host) {
                Some(fixed) => fixed.clone(),
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await?
                    .map(|a| a.ip())
                    .collect(),
            };
            let mut refused = Vec::new();
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter_map(|ip| match grant.check_ip(ip) {
                    Ok(()) => Some(SocketAddr::new(ip, 0)),
                    Err(e) => {
                        refused.push(e);
                        None
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "no addresses".into());
                return Err(Box::new(Denied(format!("`{host}` resolves to {why}")))
                    as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// One plugin's outbound client.
pub struct Outbound {
    client: reqwest::Client,
    grant: Grant,
    limits: HttpLimits,
    origins: Arc<OriginOverrides>,
}

impl Outbound {
    pub fn new(
        grant: Grant,
        limits: HttpLimits,
        overrides: Arc<ResolverOverrides>,
        origins: Arc<OriginOverrides>,
    ) -> Result<Self, String> {
        let policy_grant = grant.clone();
        let max_redirects = limits.max_redirects;
        let policy = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max_redirects {
                return attempt.error(Denied(format!("more than {max_redirects} redirects")));
            }
            match policy_grant.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(Denied(format!("redirect to {e}"))),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(policy)
            .connect_timeout(limits.connect_timeout)
            .dns_resolver(Arc::new(GuardedResolver {
                grant: grant.clone(),
                overrides,
            }))
            .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            grant,
            limits,
            origins,
        })
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// Sends `req`, bounded by `deadline`. Denials are returned as `Error::Denied` and
    /// counted by the caller.
    pub async fn send(&self, req: Request, deadline: Instant) -> Result<Response, Error> {
        let url = reqwest::Url::parse(&req.url).map_err(|e| {
            Error::InvalidRequest(format!("`{}` is not an absolute URL: {e}", req.url))
        })?;
        self.grant.check_url(&url).map_err(Error::Denied)?;
        // Checked against the grant as the plugin wrote it; a fake origin only moves the
        // connection (to loopback, which `OriginOverrides::insert` insists on).
        let url = match self.origins.apply(&url) {
            Some(moved) => {
                tracing::debug!(from = %url, to = %moved, "outbound request sent to a fake origin");
                moved
            }
            None => url,
        };
        if req.body.len() > self.limits.max_request_bytes {
            return Err(Error::TooLarge(format!(
                "request bodies are at most {} bytes",
                self.limits.max_request_bytes
            )));
        }
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, url);
        for (name, value) in &req.headers {
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "host" | "connection" | "transfer-encoding" | "content-length"
            ) {
                return Err(Error::InvalidRequest(format!(
                    "the `{name}` header is set by the kernel"
                )));
            }
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::InvalidRequest(format!("`{name}` is not a header name")))?;
            let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                Error::InvalidRequest(format!("the value of `{name}` is not a valid header value"))
            })?;
            builder = builder.header(name, value);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timeout = match req.timeout_ms {
            Some(ms) => remaining.min(Duration::from_millis(u64::from(ms))),
            None => remaining,
        };
        if timeout.is_zero() {
            return Err(Error::Timeout);
        }
        let work = async {
            let mut response = builder.body(req.body).send().await.map_err(classify)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let cap = self.limits.max_response_bytes;
            if response
                .content_length()
                .is_some_and(|len| len > cap as u64)
            {
                return Err(too_large(cap));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > cap {
                    return Err(too_large(cap));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Response {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or(Err(Error::Timeout))
    }
}

fn too_large(cap: usize) -> Error {
    Error::TooLarge(format!("response bodies are at most {cap} bytes"))
}

fn classify(err: reqwest::Error) -> Error {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(denied) = e.downcast_ref::<Denied>() {
            return Error::Denied(denied.0.clone());
        }
        source = e.source();
    }
    if err.is_timeout() {
        Error::Timeout
    } else if err.is_redirect() {
        Error::Connection(format!("redirect failed: {err}"))
    } else {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(e) = source {
            message.push_str(": ");
            message.push_str(&e.to_string());
            source = e.source();
        }
        Error::Connection(message)
    }
}
