//! Outbound HTTP safety: which URLs the gateway may call on behalf of routes and plugins.
mod guard;
mod resolver;

pub use guard::{GuardError, OriginPattern, UrlGuard, is_private};
pub use resolver::{GuardedResolver, guarded_client};
