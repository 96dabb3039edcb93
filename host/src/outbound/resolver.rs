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
