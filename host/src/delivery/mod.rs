//! Delivery: routes (which devices, which transforms, which sink) and the transform
//! chain that runs before a sink.
pub mod route;
mod transform_chain;

pub use route::{CallbackFormat, RouteConfig, SinkConfig};
pub use transform_chain::{ChainOutcome, TransformChain};
