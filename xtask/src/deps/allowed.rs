//! The module dependency rules of host/src that `cargo xtask deps` enforces. Edit them
//! here, and say why in docs/architecture.md.

/// The only cycles allowed between files (each exactly as listed): a dispatcher starts
/// its workers, and a worker reports back to its dispatcher.
pub const ALLOWED_CYCLES: &[&[&str]] = &[&["delivery::dispatcher", "delivery::worker"]];

/// Which top-level modules each top-level module may use (`use crate::x`, `crate::x::f()`,
/// ...). Every top-level module must be listed, with its dependencies; an arrow between
/// two top-level modules that is not here fails the check. `crate` is lib.rs, `main`
/// main.rs (which uses the library by its name).
pub const ALLOWED: &[(&str, &[&str])] = &[
    ("api", &["crypto", "delivery", "gateway", "ingress", "operations", "plugin", "store"]),
    ("config", &["delivery", "ingress", "operations", "plugin", "store"]),
    ("crate", &[]),
    ("crypto", &[]),
    ("delivery", &["crypto", "plugin", "store", "time"]),
    ("gateway", &["config", "delivery", "ingress", "operations", "outbound", "plugin", "store"]),
    ("ingress", &["api", "crypto", "delivery", "gateway", "operations", "plugin", "store", "time"]),
    ("main", &["config", "gateway", "plugin", "server"]),
    ("operations", &["delivery", "plugin", "store", "time"]),
    ("outbound", &[]),
    ("plugin", &["outbound", "store", "time"]),
    ("server", &["api", "config", "gateway", "ingress"]),
    ("store", &["config", "crypto", "plugin", "time"]),
    ("time", &[]),
];
