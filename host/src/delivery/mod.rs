//! Delivery: routes (which devices, which transforms, which sink), one worker per route
//! and device that delivers the journal in order, the callback sink with Standard
//! Webhooks signatures, retries and dead letters.
mod callback;
pub mod cams_format;
mod dispatcher;
pub mod retention;
pub mod retry;
pub mod route;
pub mod signature;
mod sink;
mod transform_chain;
mod worker;

pub use callback::{CallbackSink, PostOutcome, PostReport};
pub use dispatcher::Dispatcher;
pub use dispatcher::RouteRuntime;
pub use retry::RetrySchedule;
pub use route::{CallbackFormat, RouteConfig, SinkConfig};
pub use sink::Sink;
pub use transform_chain::{ChainOutcome, TransformChain};
pub use worker::WorkerContext;
