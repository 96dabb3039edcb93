//! A DNS resolver for outbound HTTP that drops private addresses after resolution, so a
//! public name that points at an internal address is refused too.
use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::guard::is_private;

/// Resolves with the system resolver and keeps only public addresses (unless private
/// networks are allowed).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                let message = format!("{host} resolves only to private addresses");
                return Err(Box::<dyn std::error::Error + Send + Sync>::from(message));
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for outbound calls: no redirects, guarded resolution, rustls.
pub fn guarded_client(allow_private: bool, timeout: std::time::Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_private }))
        .timeout(timeout)
        .user_agent(concat!("biogate/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn resolve(resolver: GuardedResolver, host: &str) -> Result<Vec<SocketAddr>, String> {
        let name: Name = host.parse().map_err(|_| format!("{host} is not a name"))?;
        resolver.resolve(name).await.map(|addrs| addrs.collect()).map_err(|e| e.to_string())
    }

    /// Addresses resolved from a name are filtered like literals, IPv6 embeddings of
    /// private IPv4 addresses included (the system resolver answers literals itself).
    #[tokio::test]
    async fn resolved_ipv6_embeddings_of_private_ipv4_are_dropped() {
        let guarded = GuardedResolver { allow_private: false };
        for private in
            ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "::127.0.0.1"]
        {
            let refused = resolve(guarded, private).await;
            assert!(refused.as_ref().is_err_and(|e| e.contains("only to private")), "{private}: {refused:?}");
            let open = resolve(GuardedResolver { allow_private: true }, private).await;
            assert_eq!(open.map(|a| a.len()), Ok(1), "{private} with allow_private_networks");
        }
        for public in ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"] {
            assert_eq!(resolve(guarded, public).await.map(|a| a.len()), Ok(1), "{public}");
        }
    }
}
