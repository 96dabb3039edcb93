//! The URL guard: an allowlist of origins and a refusal of private and loopback ranges
//! (server-side request forgery protection).
use std::net::IpAddr;

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

/// Loopback, private, link-local, unique-local, unspecified, CGNAT and multicast ranges.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
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
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
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
