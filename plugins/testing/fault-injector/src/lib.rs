//! `fault-injector`: a transform that misbehaves on purpose, for the gateway's own tests
//! of plugin isolation (CPU deadline, memory cap, traps, output limits, instance reuse).
//! It is not meant for production. See this plugin's README.md.
//!
//! Ordinary events pass unchanged; a punch whose user id names a fault triggers it.

use std::sync::atomic::{AtomicU64, Ordering};

use biogate_sdk::prelude::*;

/// The transform.
pub struct FaultInjector;

/// Calls counted by this instance (`count`): a fresh instance starts at 0.
static INSTANCE_COUNT: AtomicU64 = AtomicU64::new(0);

impl Transform for FaultInjector {
    fn transform(event: Event) -> Result<Vec<Event>, TransformError> {
        let fault = event.punch().map(|p| p.user_id.clone()).unwrap_or_default();
        match fault.as_str() {
            "loop" => spin_forever(),
            "memory" => exhaust_memory(),
            "trap" => panic!("injected trap"),
            "oversize" => Ok(vec![with_work_code(event, "x".repeat(4 << 20))]),
            "many" => Ok(vec![event; 10_000]),
            "reject" => Err(TransformError::reject("injected reject")),
            "retry" => Err(TransformError::retry("injected retry")),
            "stdout" => {
                println!("fault-injector: a line on stdout");
                eprintln!("fault-injector: a line on stderr");
                Ok(vec![event])
            }
            "count" => {
                let stored: u64 = kv::get_string("count")?.and_then(|s| s.parse().ok()).unwrap_or(0);
                kv::set("count", (stored + 1).to_string())?;
                let in_memory = INSTANCE_COUNT.fetch_add(1, Ordering::Relaxed) + 1;
                Ok(vec![with_work_code(event, format!("{}/{in_memory}", stored + 1))])
            }
            _ => Ok(vec![event]),
        }
    }
}

fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Non-zero fill: every page is written, not just reserved.
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&mut hoard);
    }
}

fn with_work_code(mut event: Event, code: String) -> Event {
    if let Some(punch) = event.punch_mut() {
        punch.work_code = Some(code);
    }
    event
}

export_transform!(FaultInjector);
