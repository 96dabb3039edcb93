//! Counters of one plugin: calls, fresh instances, retired instances, faults by kind, peak
//! memory. Faults and retirements are mirrored to the `metrics` facade
//! (`biogate_plugin_*`) for the Prometheus endpoint.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::fault::FaultKind;

/// Counters of one plugin.
#[derive(Debug, Default)]
pub struct PluginStats {
    calls: AtomicU64,
    instances: AtomicU64,
    retired: AtomicU64,
    faults: [AtomicU64; FaultKind::ALL.len()],
    peak_memory: AtomicUsize,
}

impl PluginStats {
    pub(super) fn record_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_instance(&self) {
        self.instances.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_retired(&self, plugin: &str) {
        self.retired.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("biogate_plugin_instances_retired_total", "plugin" => plugin.to_string()).increment(1);
    }

    pub(super) fn record_memory(&self, bytes: usize) {
        self.peak_memory.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(super) fn record_fault(&self, plugin: &str, kind: FaultKind) {
        self.faults[kind as usize].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("biogate_plugin_faults_total", "plugin" => plugin.to_string(), "fault" => kind.as_str())
            .increment(1);
    }

    /// Calls made (faulted ones included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Instances created since start-up.
    pub fn instances_created(&self) -> u64 {
        self.instances.load(Ordering::Relaxed)
    }

    /// The largest linear memory an instance reached after a call, in bytes.
    pub fn peak_memory_bytes(&self) -> usize {
        self.peak_memory.load(Ordering::Relaxed)
    }

    /// Instances retired after a call because their memory grew near the cap.
    pub fn instances_retired(&self) -> u64 {
        self.retired.load(Ordering::Relaxed)
    }

    /// Faults of one kind.
    pub fn faults(&self, kind: FaultKind) -> u64 {
        self.faults[kind as usize].load(Ordering::Relaxed)
    }

    /// Faults of every kind.
    pub fn total_faults(&self) -> u64 {
        self.faults.iter().map(|f| f.load(Ordering::Relaxed)).sum()
    }
}
