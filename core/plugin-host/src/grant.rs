//! Outbound network grants: which URLs a plugin may request and which resolved addresses
//! it may reach.
//!
//! A plugin declares hosts in `plugin.toml` (`network.allow`); the admin may narrow them
//! in `[plugins.<id>] allow_hosts`, never widen; the effective grant is the admin's list
//! when given, else the declaration. Entries are `scheme://host[:port]`: the scheme is
//! required (`http` or `https`), `*.` is allowed only as the leading label
//! (`https://*.paynow.co.zw`), the port defaults from the scheme, and paths, queries and
//! user names are refused. After DNS every address is checked: loopback, private,
//! link-local (which holds the cloud metadata address 169.254.169.254), shared, multicast
//! and unspecified addresses (and the IPv6 forms that carry or tunnel to IPv4) are refused
//! unless inside a network the admin listed in `allow_networks`. The classification is
//! `keel_domain::network`, shared with outgoing webhooks.

use std::fmt;
use std::net::IpAddr;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// One allowed destination: `https://api.example.com`, `https://*.example.com:8443`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPattern {
    scheme: Scheme,
    /// Lower case; for a wildcard, the suffix after `*.`.
    host: String,
    wildcard: bool,
    port: u16,
}

impl HostPattern {
    /// Parses `scheme://host[:port]` (a trailing `/` is tolerated).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t == "*" || t.contains("://*") && !t.contains("://*.") {
            return Err(format!(
                "`{text}`: a bare `*` would allow every host; name the hosts (a leading `*.` label is allowed)"
            ));
        }
        let (scheme, rest) = t
            .split_once("://")
            .ok_or_else(|| format!("`{text}`: write the scheme, as in `https://{t}`"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(format!("`{text}`: scheme `{other}` is not http or https")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{text}`: only scheme, host and port; no path, query or user"
            ));
        }
        let (host, port) = split_host_port(rest).map_err(|e| format!("`{text}`: {e}"))?;
        let port = port.unwrap_or(scheme.default_port());
        let host = host.to_ascii_lowercase();
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix.to_owned()),
            None => (false, host),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!(
                "`{text}`: `*` is allowed only as the whole leading label"
            ));
        }
        let valid = host.parse::<IpAddr>().is_ok()
            || host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(format!(
                "`{text}`: `{host}` is not a host name or IP address"
            ));
        }
        Ok(Self {
            scheme,
            host,
            wildcard,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` fits.
    pub fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }

    /// Whether every destination `other` allows is also allowed by `self`.
    pub fn covers(&self, other: &HostPattern) -> bool {
        if other.wildcard {
            self.wildcard
                && self.scheme == other.scheme
                && self.port == other.port
                && (other.host == self.host || self.allows(self.scheme, &other.host, self.port))
        } else {
            self.allows(other.scheme, &other.host, other.port)
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.wildcard { "*." } else { "" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{}://{star}{host}", self.scheme.as_str())?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let parse_port = |p: &str| p.parse::<u16>().map_err(|_| format!("`{p}` is not a port"));
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[`")?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(parse_port(p)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(format!("unexpected `{after}`")),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host, Some(parse_port(port)?))),
        _ => Ok((s, None)),
    }
}

pub use keel_domain::network::{Network, special_range};

/// What one plugin may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    hosts: Vec<HostPattern>,
    networks: Vec<Network>,
}

impl Grant {
    /// The effective grant: `admin_hosts` when the admin narrowed, else `declared`; every
    /// admin entry must be covered by a declared one.
    pub fn resolve(
        declared: &[HostPattern],
        admin_hosts: Option<Vec<HostPattern>>,
        networks: Vec<Network>,
    ) -> Result<Self, String> {
        let hosts = match admin_hosts {
            None => declared.to_vec(),
            Some(admin) => {
                for entry in &admin {
                    if !declared.iter().any(|d| d.covers(entry)) {
                        let declared = if declared.is_empty() {
                            "none".to_owned()
                        } else {
                            declared
                                .iter()
                                .map(|d| format!("`{d}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        return Err(format!(
                            "`{entry}` is wider than the plugin's declaration (it declares {declared}); a grant can only narrow it"
                        ));
                    }
                }
                admin
            }
        };
        Ok(Self { hosts, networks })
    }

    /// A grant of exactly these hosts and networks (for tests and tools).
    pub fn new(hosts: Vec<HostPattern>, networks: Vec<Network>) -> Self {
        Self { hosts, networks }
    }

    pub fn hosts(&self) -> &[HostPattern] {
        &self.hosts
    }

    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// Checks a URL's scheme, host and port, and an IP-literal host's range.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(format!("scheme `{other}` is not allowed")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("user names in URLs are not allowed".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("the URL has no host".into()),
        };
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        if !self.hosts.iter().any(|h| h.allows(scheme, &host, port)) {
            let origin = url.origin().ascii_serialization();
            return Err(format!("`{origin}` is not granted to this plugin"));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.check_ip(ip)?;
        }
        Ok(())
    }

    /// Checks a resolved (or literal) address.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        keel_domain::network::check_ip(ip, &self.networks, "allow_networks")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn patterns_parse_and_match() {
        let exact = p("https://api.paynow.co.zw");
        assert!(exact.allows(Scheme::Https, "API.paynow.co.zw", 443));
        assert!(!exact.allows(Scheme::Http, "api.paynow.co.zw", 443));
        assert!(!exact.allows(Scheme::Https, "api.paynow.co.zw", 8443));
        assert!(!exact.allows(Scheme::Https, "evil.api.paynow.co.zw", 443));

        let wild = p("https://*.paynow.co.zw:8443/");
        assert!(wild.allows(Scheme::Https, "www.paynow.co.zw", 8443));
        assert!(wild.allows(Scheme::Https, "a.b.paynow.co.zw", 8443));
        assert!(!wild.allows(Scheme::Https, "paynow.co.zw", 8443));
        assert!(!wild.allows(Scheme::Https, "evilpaynow.co.zw", 8443));
        assert_eq!(wild.to_string(), "https://*.paynow.co.zw:8443");

        assert_eq!(p("http://[::1]:8080").to_string(), "http://[::1]:8080");
        assert!(p("http://127.0.0.1").allows(Scheme::Http, "127.0.0.1", 80));
    }

    #[test]
    fn bad_patterns_are_refused_with_reasons() {
        for (text, needle) in [
            ("*", "bare `*`"),
            ("https://*", "bare `*`"),
            ("api.example.com", "write the scheme"),
            ("ftp://example.com", "not http or https"),
            ("https://example.com/path", "no path"),
            ("https://user@example.com", "no path, query or user"),
            ("https://a.*.example.com", "leading label"),
            ("https://example.com:99999", "not a port"),
            ("https://exa mple.com", "not a host name"),
        ] {
            let err = HostPattern::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn admin_grants_narrow_never_widen() {
        let declared = vec![p("https://*.example.com"), p("https://api.other.com")];
        let narrowed =
            Grant::resolve(&declared, Some(vec![p("https://pay.example.com")]), vec![]).unwrap();
        assert_eq!(narrowed.hosts(), &[p("https://pay.example.com")]);
        let sub_wild =
            Grant::resolve(&declared, Some(vec![p("https://*.eu.example.com")]), vec![]).unwrap();
        assert_eq!(sub_wild.hosts().len(), 1);
        let wider =
            Grant::resolve(&declared, Some(vec![p("https://evil.com")]), vec![]).unwrap_err();
        assert!(wider.contains("`https://evil.com` is wider"), "{wider}");
        let other_port = Grant::resolve(
            &declared,
            Some(vec![p("https://api.other.com:444")]),
            vec![],
        );
        assert!(other_port.is_err());
        let default = Grant::resolve(&declared, None, vec![]).unwrap();
        assert_eq!(default.hosts(), declared.as_slice());
    }

    #[test]
    fn special_ranges_are_refused_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            // Carried or tunnelled IPv4 (finding 10 of issue 14).
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "::10.0.0.1",
            "fec0::1",
            "64:ff9b:1::a00:1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(special_range(ip).is_some(), "{ip} should be special");
        }
        for ip in ["8.8.8.8", "41.57.64.1", "2001:4860:4860::8888"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(special_range(ip), None, "{ip} is public");
        }
        let grant = Grant::new(vec![], vec![Network::parse("127.0.0.0/8").unwrap()]);
        assert!(grant.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        assert!(grant.check_ip("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(
            grant
                .check_ip("10.0.0.1".parse().unwrap())
                .unwrap_err()
                .contains("private")
        );
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(
            Network::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
    }

    #[test]
    fn urls_are_checked_on_scheme_host_port_and_literal_ip() {
        let grant = Grant::new(
            vec![p("https://api.example.com"), p("http://127.0.0.1:8080")],
            vec![],
        );
        let ok = |u: &str| grant.check_url(&reqwest::Url::parse(u).unwrap());
        assert!(ok("https://api.example.com/v1?x=1").is_ok());
        assert!(ok("https://api.example.com:443/").is_ok());
        assert!(
            ok("http://api.example.com/")
                .unwrap_err()
                .contains("not granted")
        );
        assert!(ok("https://api.example.com:8443/").is_err());
        assert!(
            ok("https://user:pw@api.example.com/")
                .unwrap_err()
                .contains("user names")
        );
        // Declared, but loopback without allow_networks.
        assert!(
            ok("http://127.0.0.1:8080/")
                .unwrap_err()
                .contains("loopback")
        );
    }
}
