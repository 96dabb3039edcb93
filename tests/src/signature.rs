//! The independent check of webhook signatures: Python's `standardwebhooks` package (an
//! implementation that is not ours, installed by `cargo xtask test`), run through
//! tests/verify_signature.py over what a [`crate::receiver::Receiver`] got.
use std::path::Path;
use std::process::Command;

use crate::receiver::Delivery;

/// Asserts that every delivery's `webhook-signature` verifies with `secret` under
/// `standardwebhooks`.
pub fn verify_independently(deliveries: &[Delivery], secret: &str) {
    let records: Vec<_> = deliveries
        .iter()
        .map(|d| {
            let headers: std::collections::BTreeMap<_, _> = d.headers.iter().cloned().collect();
            serde_json::json!({ "headers": headers, "body": d.body })
        })
        .collect();
    let file = tempfile::NamedTempFile::new().expect("a temp file");
    std::fs::write(file.path(), serde_json::to_vec(&records).expect("JSON")).expect("writing the deliveries");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("verify_signature.py");
    let out = Command::new("python3").arg(&script).arg(file.path()).arg(secret).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "independent verification failed (is the standardwebhooks package installed? `cargo xtask test` installs it):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
