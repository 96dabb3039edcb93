//! A route's transform plugins, applied in order, with each plugin's failure policy.
use std::sync::Arc;

use crate::plugin::bindings::types::Event;
use crate::plugin::{FailurePolicy, TransformOutcome, TransformPlugin};

/// What became of an event after the chain.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainOutcome {
    /// Deliver these events (empty: every one was dropped by a plugin).
    Deliver(Vec<Event>),
    /// Never deliver: a plugin rejected the event, or failed on it under `fail-closed`.
    DeadLetter { plugin: String, reason: String },
    /// A plugin asked to retry the event later.
    Retry { plugin: String, reason: String },
}

/// Transform plugins in route order.
#[derive(Clone, Default)]
pub struct TransformChain {
    steps: Vec<Arc<TransformPlugin>>,
}

impl TransformChain {
    /// A chain of these plugins, applied in this order.
    pub fn new(steps: Vec<Arc<TransformPlugin>>) -> Self {
        TransformChain { steps }
    }

    /// Whether the chain has no plugin.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the event through every plugin. A plugin fault lets the event through
    /// unchanged under `fail-open`, and dead-letters it under `fail-closed`.
    pub fn apply(&self, event: Event) -> ChainOutcome {
        let mut current = vec![event];
        for step in &self.steps {
            let mut next = Vec::with_capacity(current.len());
            for event in current {
                match step.transform(&event) {
                    Ok(TransformOutcome::Events(out)) => next.extend(out),
                    Ok(TransformOutcome::Reject(reason)) => {
                        return ChainOutcome::DeadLetter { plugin: step.name().into(), reason };
                    }
                    Ok(TransformOutcome::Retry(reason)) => {
                        return ChainOutcome::Retry { plugin: step.name().into(), reason };
                    }
                    Err(fault) => match step.failure_policy() {
                        FailurePolicy::FailOpen => next.push(event),
                        FailurePolicy::FailClosed => {
                            return ChainOutcome::DeadLetter { plugin: step.name().into(), reason: fault.to_string() };
                        }
                    },
                }
            }
            current = next;
        }
        ChainOutcome::Deliver(current)
    }
}
