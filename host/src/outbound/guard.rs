//! The URL guard: an allowlist of origins and a refusal of private and loopback ranges
//! (server-side request forgery protection).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("not an http(s) URL: {0}")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("{0} is not on the allowlist")]
    NotAllowed(String),
    #[error("{0} is a private, loopback or link-local address (set allow_private_networks to permit it)")]
    PrivateAddress(String),
}

/// One allowlist entry: `https://api.example.com`, `http://127.0.0.1:9000`,
/// `https://*.example.com` (any subdomain), or `*` (any origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

impl OriginPattern {
    /// Parses an allowlist entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(OriginPattern { scheme: None, host: "*".into(), port: None });
        }
        let (scheme, rest) = match text.split_once("://") {
            Some((s, r)) if s == "http" || s == "https" => (Some(s.to_string()), r),
            Some((s, _)) => return Err(format!("scheme {s:?} is not http or https")),
            None => (None, text),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err("an origin has no path".into());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
                let port = p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?;
                (h, Some(port))
            }
            _ => (rest, None),
        };
        if host.is_empty() {
            return Err("empty host".into());
        }
        Ok(OriginPattern {
            scheme,
            host: host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(),
            port,
        })
    }

    fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if self.scheme.as_deref().is_some_and(|s| s != url.scheme()) {
            return false;
        }
        if self.port.is_some() && self.port != url.port_or_known_default() {
            return false;
        }
        match self.host.strip_prefix("*.") {
            _ if self.host == "*" => true,
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == self.host,
        }
    }
}

/// Decides whether an outbound URL may be called.
#[derive(Debug, Clone, Default)]
pub struct UrlGuard {
    /// Empty means any public origin.
    allowlist: Vec<OriginPattern>,
    allow_private: bool,
}

impl UrlGuard {
    /// A guard with an allowlist (empty: any public origin) and the private-range switch.
    pub fn new(allowlist: Vec<OriginPattern>, allow_private: bool) -> Self {
        UrlGuard { allowlist, allow_private }
    }

    /// Checks a URL against the allowlist and, for IP literals, the private ranges.
    /// Host names are checked again after resolution by [`UrlGuard::check_resolved`].
    pub fn check(&self, url: &Url) -> Result<(), GuardError> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(GuardError::Scheme(url.scheme().to_string()));
        }
        let host = url.host_str().ok_or(GuardError::NoHost)?;
        if !self.allowlist.is_empty() && !self.allowlist.iter().any(|p| p.matches(url)) {
            return Err(GuardError::NotAllowed(origin(url)));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_resolved(ip)?;
        } else if !self.allow_private && (bare.eq_ignore_ascii_case("localhost") || bare.ends_with(".localhost")) {
            return Err(GuardError::PrivateAddress(bare.to_string()));
        }
        Ok(())
    }

    /// Checks an address a host name resolved to.
    pub fn check_resolved(&self, ip: IpAddr) -> Result<(), GuardError> {
        if !self.allow_private && is_private(ip) {
            return Err(GuardError::PrivateAddress(ip.to_string()));
        }
        Ok(())
    }

    /// Whether private and loopback addresses are allowed.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Loopback, private, link-local, unique-local, unspecified, CGNAT and multicast ranges,
/// and IPv6 addresses that carry an IPv4 address that is one of them (see [`embedded_v4`]).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if embedded_v4(v6).iter().any(|v4| is_private_v4(*v4)) {
                return true;
            }
            let [first, second, third, ..] = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                // 64:ff9b:1::/48, NAT64 for local use (RFC 8215): its translator reaches
                // whatever the operator routes it to.
                || (first == 0x64 && second == 0xff9b && third == 1)
        }
    }
}

fn is_private_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || (a == 100 && (64..128).contains(&b))
        || a == 0
}

/// The IPv4 addresses an IPv6 address carries, which a translator or tunnel reaches
/// instead of the IPv6 address itself: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::/96` (RFC 6052), 6to4 `2002::/16` (bits 16..48) and
/// Teredo `2001::/32` (the server in bits 32..64, the client in the last 32 bits
/// inverted).
pub fn embedded_v4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = v6.segments();
    let v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return vec![mapped];
    }
    match s {
        [0, 0, 0, 0, 0, 0, high, low] => vec![v4(high, low)],
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => vec![v4(high, low)],
        [0x2002, high, low, ..] => vec![v4(high, low)],
        [0x2001, 0, server_high, server_low, _, _, client_high, client_low] => {
            vec![v4(server_high, server_low), v4(!client_high, !client_low)]
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn private_ranges_are_refused_by_default() {
        let guard = UrlGuard::default();
        for u in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://[::1]:80/",
            "http://192.168.0.9/",
            "http://169.254.169.254/latest",
            "http://localhost:8080/",
            "http://[::ffff:10.0.0.1]/",
            "http://100.64.0.1/",
            "http://[fd00::1]/",
        ] {
            assert!(matches!(guard.check(&url(u)), Err(GuardError::PrivateAddress(_))), "{u}");
        }
        assert_eq!(guard.check(&url("https://hr.example.com/hook")), Ok(()));
    }

    /// Each IPv6 form that embeds an IPv4 address: a private example (refused, on a
    /// literal URL and as a resolved address) and a public one (allowed).
    const EMBEDDED: [(&str, &str, &str); 5] = [
        // (form, private example, public example)
        ("NAT64", "64:ff9b::a9fe:a9fe", "64:ff9b::808:808"),
        ("6to4", "2002:a9fe:a9fe::1", "2002:808:808::1"),
        // Teredo: server 65.54.227.120, client 127.0.0.1 (inverted: 80ff:fffe) / 8.8.8.8.
        ("Teredo client", "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"),
        ("IPv4-compatible", "::127.0.0.1", "::8.8.8.8"),
        ("IPv4-mapped", "::ffff:a9fe:a9fe", "::ffff:8.8.8.8"),
    ];

    #[test]
    fn ipv6_forms_embedding_a_private_ipv4_are_refused() {
        let guard = UrlGuard::default();
        for (form, private, public) in EMBEDDED {
            let refused = guard.check(&url(&format!("http://[{private}]/cb")));
            assert!(matches!(refused, Err(GuardError::PrivateAddress(_))), "{form} {private}: {refused:?}");
            assert!(guard.check_resolved(private.parse().unwrap()).is_err(), "{form} {private} resolved");
            assert_eq!(guard.check(&url(&format!("http://[{public}]/cb"))), Ok(()), "{form} {public}");
            assert_eq!(guard.check_resolved(public.parse().unwrap()), Ok(()), "{form} {public} resolved");
        }
        // Teredo's server address counts too: 169.254.169.254 serving the public 8.8.8.8.
        assert!(guard.check(&url("http://[2001:0:a9fe:a9fe::f7f7:f7f7]/")).is_err());
        // NAT64 for local use has no public meaning.
        assert!(guard.check(&url("http://[64:ff9b:1::808:808]/")).is_err());
        // With allow_private_networks, every form is allowed.
        let open = UrlGuard::new(vec![], true);
        for (form, private, _) in EMBEDDED {
            assert_eq!(open.check(&url(&format!("http://[{private}]/cb"))), Ok(()), "{form}");
        }
    }

    #[test]
    fn embedded_ipv4_addresses_are_read_from_each_form() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let embedded = |s: &str| embedded_v4(s.parse().unwrap());
        assert_eq!(embedded("64:ff9b::a9fe:a9fe"), [v4("169.254.169.254")]);
        assert_eq!(embedded("2002:a9fe:a9fe::1"), [v4("169.254.169.254")]);
        assert_eq!(embedded("2001:0:4136:e378:8000:63bf:80ff:fffe"), [v4("65.54.227.120"), v4("127.0.0.1")]);
        assert_eq!(embedded("::127.0.0.1"), [v4("127.0.0.1")]);
        assert_eq!(embedded("::ffff:10.0.0.1"), [v4("10.0.0.1")]);
        assert_eq!(embedded("2606:4700::1111"), Vec::<Ipv4Addr>::new());
    }

    #[test]
    fn allow_private_permits_loopback() {
        let guard = UrlGuard::new(vec![], true);
        assert_eq!(guard.check(&url("http://127.0.0.1:9000/cb")), Ok(()));
    }

    #[test]
    fn allowlist_matches_scheme_host_port_and_wildcards() {
        let guard = UrlGuard::new(
            vec![
                OriginPattern::parse("https://*.example.com").unwrap(),
                OriginPattern::parse("http://127.0.0.1:9000").unwrap(),
            ],
            true,
        );
        assert_eq!(guard.check(&url("https://api.example.com/x")), Ok(()));
        assert!(guard.check(&url("http://api.example.com/x")).is_err());
        assert!(guard.check(&url("https://example.com.evil.org/")).is_err());
        assert_eq!(guard.check(&url("http://127.0.0.1:9000/")), Ok(()));
        assert!(guard.check(&url("http://127.0.0.1:9001/")).is_err());
        assert!(guard.check(&url("ftp://api.example.com/")).is_err());
    }

    #[test]
    fn bad_patterns_are_reported() {
        assert!(OriginPattern::parse("ftp://x").is_err());
        assert!(OriginPattern::parse("https://x/path").is_err());
        assert!(OriginPattern::parse("https://x:notaport").is_err());
    }
}
