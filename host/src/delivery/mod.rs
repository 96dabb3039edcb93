//! Delivery: routes (which devices, which transforms, which sink, where they start), one
//! worker per route and device that delivers the journal in order, the callback sink with
//! Standard Webhooks signatures, retries that resume within seconds once a receiver
//! answers again, and dead letters.
mod backoff;
mod cursor_commit;
mod dispatcher;
pub mod receiver_health;
pub mod retention;
pub mod retry;
pub mod route;
pub mod signature;
pub mod sinks;
mod start;
mod transform_chain;
mod worker;

pub use dispatcher::Dispatcher;
pub use retry::RetrySchedule;
pub use route::{RouteConfig, RouteRuntime, StartAt};
pub use sinks::{PostOutcome, PostReport, Sink, SinkConfig};
pub use transform_chain::{ChainOutcome, TransformChain};
pub use worker::WorkerContext;
