//! The module dependency rules of host/src that `cargo xtask deps` enforces. Edit them
//! here, and say why in docs/architecture.md.

/// The only cycles allowed between files (each exactly as listed). None today: the
/// dispatcher/worker pair that was allowed became one-way when `RouteRuntime` moved to
/// `delivery::route`. Keep it empty unless a cycle is truly by design.
pub const ALLOWED_CYCLES: &[&[&str]] = &[];

/// Which top-level modules each top-level module may use (`use crate::x`, `crate::x::f()`,
/// ...). Every top-level module must be listed, with its dependencies; an arrow between
/// two top-level modules that is not here fails the check. `crate` is lib.rs, `main`
/// main.rs (which uses the library by its name). docs/architecture.md explains the table.
pub const ALLOWED: &[(&str, &[&str])] = &[
    ("api", &["cams", "crypto", "field", "ingress", "operations", "plugin", "store", "time", "web"]),
    ("cams", &["field", "operations", "plugin", "store", "time"]),
    ("check", &["config", "plugin", "store"]),
    ("config", &["delivery", "field", "ingress", "operations", "plugin", "store"]),
    ("crate", &[]),
    ("crypto", &[]),
    ("delivery", &["cams", "crypto", "field", "outbound", "plugin", "store", "time"]),
    ("field", &[]),
    ("gateway", &["config", "delivery", "ingest", "operations", "plugin", "store"]),
    ("ingest", &["delivery", "operations", "plugin", "store", "time"]),
    ("ingress", &["cams", "crypto", "field", "gateway", "plugin", "store", "time", "web"]),
    ("main", &["check", "config", "gateway", "plugin", "plugin_run", "scaffold", "server"]),
    ("operations", &["delivery", "field", "plugin", "store", "time"]),
    ("outbound", &[]),
    ("plugin", &["field", "outbound", "store", "time"]),
    ("plugin_run", &["check", "plugin", "store", "time"]),
    ("scaffold", &["plugin"]),
    ("server", &["api", "config", "gateway", "ingress", "web"]),
    ("store", &["crypto", "field", "plugin", "time"]),
    ("time", &["plugin"]),
    ("web", &["cams", "field", "gateway", "operations", "store"]),
];
