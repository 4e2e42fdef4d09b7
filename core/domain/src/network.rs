//! Which IP addresses are public, and the networks an admin may open anyway.
//!
//! Keel makes outbound requests to URLs that someone else chose: plugins (through the
//! `http` import, in keel-plugin-host) and webhook endpoints (staff, in keel-app). Either
//! could be pointed at the host's own network (SSRF): a loopback admin port, a database, the
//! cloud metadata address. Both guards ask [`special_range`] about every address they are
//! about to connect to and refuse a special one unless it lies inside a [`Network`] the admin
//! listed (`allow_networks`). The rule lives here, pure, so the two guards cannot drift apart
//! and keel-app need not depend on wasmtime's crate to share it.
//!
//! Besides the plain ranges (loopback, private, link-local, shared, multicast, reserved),
//! IPv6 has ways to carry an IPv4 address: IPv4-mapped (`::ffff:a.b.c.d`) is judged as the
//! address it carries; 6to4 (`2002::/16`) is refused when its embedded IPv4 is special;
//! IPv4-compatible (`::/96`), Teredo (`2001::/32`) and NAT64 (`64:ff9b::/96` and the
//! local-use `64:ff9b:1::/48`) are refused whole, since a relay or translator on the path
//! may deliver them to a private IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A network the admin allows although it is special (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `addr/prefix` or a bare address (a /32 or /128).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an IP network like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: the prefix must be 0 to {max}"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` lies inside; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why an address is not public (`"loopback"`, `"private"`, …), or `None` when it is.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

/// `Ok` when `ip` is public or inside one of `allowed`; else why not, naming the setting
/// (`setting`, such as `allow_networks`) that would open it.
pub fn check_ip(ip: IpAddr, allowed: &[Network], setting: &str) -> Result<(), String> {
    match special_range(ip) {
        Some(range) if !allowed.iter().any(|n| n.contains(ip)) => Err(format!(
            "{ip} is a {range} address; allow its network in `{setting}` to reach it"
        )),
        _ => Ok(()),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local or cloud metadata")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared address space")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("multicast, broadcast or reserved")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignments")
    } else {
        None
    }
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if s[..6] == [0; 6] {
        // `::a.b.c.d`: deprecated, and some stacks still route it as IPv4.
        Some("IPv4-compatible")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("unique local (private)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Some("site-local (private)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // 64:ff9b::/96 (well-known) and 64:ff9b:1::/48 (local use): a translator on the
        // path turns them into IPv4, private ones included.
        Some("NAT64 (may reach private IPv4)")
    } else if s[0] == 0x2001 && s[1] == 0 {
        Some("Teredo (tunnels to an IPv4 address)")
    } else if s[0] == 0x2002 {
        let embedded = Ipv4Addr::new(
            (s[1] >> 8) as u8,
            (s[1] & 0xff) as u8,
            (s[2] >> 8) as u8,
            (s[2] & 0xff) as u8,
        );
        special_v4(embedded).map(|_| "6to4 of a special IPv4")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_special_range_is_named_and_public_addresses_pass() {
        for (addr, range) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local or cloud metadata")),
            ("100.64.0.1", Some("shared address space")),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("224.0.0.1", Some("multicast, broadcast or reserved")),
            ("255.255.255.255", Some("multicast, broadcast or reserved")),
            ("240.0.0.1", Some("multicast, broadcast or reserved")),
            ("192.0.0.8", Some("IETF protocol assignments")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::10.0.0.1", Some("IPv4-compatible")),
            ("::127.0.0.1", Some("IPv4-compatible")),
            ("::8.8.8.8", Some("IPv4-compatible")),
            ("fd00:ec2::254", Some("unique local (private)")),
            ("fc00::1", Some("unique local (private)")),
            ("fe80::1", Some("link-local")),
            ("febf::1", Some("link-local")),
            ("fec0::1", Some("site-local (private)")),
            ("feff::1", Some("site-local (private)")),
            ("ff02::1", Some("multicast")),
            ("64:ff9b::a00:1", Some("NAT64 (may reach private IPv4)")),
            ("64:ff9b::808:808", Some("NAT64 (may reach private IPv4)")),
            ("64:ff9b:1::a00:1", Some("NAT64 (may reach private IPv4)")),
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                Some("Teredo (tunnels to an IPv4 address)"),
            ),
            ("2002:7f00:1::", Some("6to4 of a special IPv4")),
            ("2002:a00:1::1", Some("6to4 of a special IPv4")),
            ("2002:c0a8:101::", Some("6to4 of a special IPv4")),
            ("2002:a9fe:a9fe::", Some("6to4 of a special IPv4")),
            // Public.
            ("8.8.8.8", None),
            ("41.57.64.1", None),
            ("100.128.0.1", None),
            ("2001:4860:4860::8888", None),
            ("2001:db9::1", None),
            ("2002:808:808::", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(special_range(ip(addr)), range, "{addr}");
        }
    }

    #[test]
    fn an_allowed_network_opens_only_itself() {
        let loopback = [Network::parse("127.0.0.0/8").unwrap()];
        assert!(check_ip(ip("127.0.0.1"), &loopback, "allow_networks").is_ok());
        assert!(check_ip(ip("::ffff:127.0.0.1"), &loopback, "allow_networks").is_ok());
        assert!(check_ip(ip("8.8.8.8"), &[], "allow_networks").is_ok());
        let refused = check_ip(ip("10.0.0.1"), &loopback, "webhooks.allow_networks").unwrap_err();
        assert_eq!(
            refused,
            "10.0.0.1 is a private address; allow its network in `webhooks.allow_networks` to reach it"
        );
        // The 6to4 form of an allowed IPv4 is another address: its network must be listed.
        assert!(check_ip(ip("2002:7f00:1::"), &loopback, "allow_networks").is_err());
        let six_to_four = [Network::parse("2002:7f00::/24").unwrap()];
        assert!(check_ip(ip("2002:7f00:1::"), &six_to_four, "allow_networks").is_ok());
        assert!(check_ip(ip("::1"), &loopback, "allow_networks").is_err());
    }

    #[test]
    fn networks_parse_with_their_prefix() {
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("10.0.0/8").is_err());
        assert!(Network::parse("fd00::/129").is_err());
        assert!(Network::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        let one = Network::parse("192.168.1.7").unwrap();
        assert_eq!(one.to_string(), "192.168.1.7/32");
        assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("10.0.0.1"))
        );
        assert!(!Network::parse("0.0.0.0/0").unwrap().contains(ip("fd00::1")));
    }
}
