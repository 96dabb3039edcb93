//! The module graph checks on small source trees written to a temporary folder.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::{Findings, Graph};

/// Builds the graph of a source tree given as (path, text) pairs; the library is `demo`.
fn graph(files: &[(&str, &str)]) -> Graph {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    Graph::build(dir.path(), "demo").unwrap()
}

/// The arrows as `from -> to`.
fn arrows(graph: &Graph) -> BTreeSet<String> {
    graph.edges.keys().map(|&(from, to)| format!("{} -> {}", graph.nodes[from], graph.nodes[to])).collect()
}

/// The cycles as sorted node names, with a table allowing every arrow.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let everything: Vec<&str> = graph.nodes.iter().map(|n| super::top(n)).collect();
    let table: Vec<(&str, &[&str])> = everything.iter().map(|&m| (m, everything.as_slice())).collect();
    let findings = Findings::of(graph, &table, &[]);
    assert!(findings.forbidden.is_empty() && findings.missing.is_empty());
    findings.cycles.iter().map(|c| c.iter().map(|&n| graph.nodes[n].clone()).collect()).collect()
}

#[test]
fn finds_a_cycle_through_use_declarations() {
    let g = graph(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use crate::b::{Other, more::{Deep}};\npub struct A;\n"),
        ("b.rs", "use crate::a::A as Renamed;\npub struct Other;\npub mod more { pub struct Deep; }\n"),
    ]);
    assert_eq!(cycles(&g), vec![vec!["a", "b"]]);
    let findings = Findings::of(&g, &[("crate", &[]), ("a", &["b"]), ("b", &["a"])], &[]);
    let report = findings.report(&g, Path::new("src"));
    assert!(report.contains("a -> b: src/a.rs:1 crate::b::Other"), "{report}");
    assert!(report.contains("b -> a: src/b.rs:1 crate::a::A"), "{report}");
}

#[test]
fn finds_a_cycle_through_a_path_in_a_function_body() {
    let g = graph(&[
        ("lib.rs", "pub mod a;\npub mod time;\n"),
        ("a.rs", "pub fn stamp() -> u64 {\n    crate::time::now_ms() + 1\n}\n"),
        ("time.rs", "pub fn now_ms() -> u64 { let _ = format!(\"{}\", crate::a::stamp); 0 }\n"),
    ]);
    assert_eq!(cycles(&g), vec![vec!["a", "time"]]);
    assert_eq!(g.edges[&(0, 2)][0].line, 2, "the line of crate::time::now_ms");
}

#[test]
fn follows_re_exports_to_the_file_that_defines_the_item() {
    let g = graph(&[
        ("lib.rs", "pub mod other;\npub mod store;\npub mod user;\npub use store::Store;\n"),
        // store/mod.rs re-exports its children and uses `user`: no cycle, as long as
        // `crate::store::Journal` (below) is resolved to store::journal.
        (
            "store/mod.rs",
            "mod journal;\nmod kv;\nmod tables;\npub use journal::{Journal, Cursor as PunchCursor};\npub use kv::*;\n\
             pub use crate::user::Name as UserName;\npub struct Store;\npub fn check() { crate::user::check(); }\n",
        ),
        ("store/journal.rs", "pub struct Journal;\npub struct Cursor;\n"),
        ("store/kv.rs", "pub use super::tables::Table;\npub struct Kv;\n"),
        ("store/tables.rs", "pub struct Table;\n"),
        ("user.rs", "use crate::store::{Journal, PunchCursor, Kv, Table};\npub struct Name;\npub fn check() {}\n"),
        ("other.rs", "pub fn f() {\n    crate::store::Unknown::new();\n    let _ = crate::store::UserName;\n}\n"),
    ]);
    assert_eq!(cycles(&g), Vec::<Vec<String>>::new());
    let expected = [
        "other -> store",             // Unknown: neither defined nor re-exported there: the module
        "other -> user",              // UserName, re-exported from user by `pub use crate::user::Name`
        "store -> user",              // check(), and that re-export of another module's item
        "store::kv -> store::tables", // a re-export of a sibling's item is an arrow
        "user -> store::journal",     // Journal, and PunchCursor through its rename
        "user -> store::kv",          // Kv through `pub use kv::*`
        "user -> store::tables",      // Table: the glob, then kv's `pub use super::tables::Table`
    ];
    assert_eq!(arrows(&g), expected.iter().map(|s| s.to_string()).collect());
}

#[test]
fn a_facade_of_a_childs_re_export_makes_no_arrow() {
    let g = graph(&[
        ("lib.rs", "pub mod cams;\npub mod web;\n"),
        ("cams.rs", "pub struct Status;\n"),
        ("web/mod.rs", "mod error;\npub use error::{Status, ApiError};\n"),
        ("web/error.rs", "pub use crate::cams::Status;\npub struct ApiError;\n"),
    ]);
    assert_eq!(arrows(&g), ["web::error -> cams".to_owned()].into());
}

#[test]
fn resolves_super_inside_an_inline_module_relative_to_it() {
    let g = graph(&[
        ("lib.rs", "pub mod plugin;\npub mod other;\n"),
        ("other.rs", "pub struct Thing;\n"),
        ("plugin/mod.rs", "pub mod bindings;\nmod engine;\npub use bindings::types;\n"),
        // As in host/src/plugin/bindings.rs: `super::transform` inside `mod delivery {}`
        // is this file's `transform`, in macro tokens as well as in code.
        (
            "plugin/bindings.rs",
            "pub mod transform { pub mod types { pub struct Event; } }\n\
             pub mod delivery {\n    bindgen!({ with: { \"types\": super::transform::types } });\n\
             pub fn f(_: super::transform::types::Event) {}\n    mod deeper { use super::super::super::super::other::Thing; }\n}\n\
             pub use transform::types;\n",
        ),
        ("plugin/engine.rs", "use super::types::Event;\nuse super::bindings::delivery::f;\n"),
    ]);
    assert_eq!(
        arrows(&g),
        ["plugin::bindings -> other", "plugin::engine -> plugin::bindings"].iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn ignores_what_is_under_cfg_test() {
    let g = graph(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        (
            "a/mod.rs",
            "pub struct A;\n#[cfg(test)]\nmod tests { use crate::b::B; }\n#[cfg(test)]\nfn helper() { crate::b::B; }\n\
             #[cfg(test)]\nmod file_tests;\n",
        ),
        ("a/file_tests.rs", "use crate::b::B;\n"),
        ("b.rs", "pub struct B(crate::a::A);\n"),
    ]);
    assert_eq!(arrows(&g), ["b -> a".to_owned()].into());
}

#[test]
fn reports_forbidden_top_level_arrows_and_modules_missing_from_the_table() {
    let g = graph(&[
        ("lib.rs", "pub mod api;\npub mod store;\npub mod web;\n"),
        ("api/mod.rs", "mod admin;\n"),
        ("api/admin.rs", "use crate::store::Store;\n\nfn f() { crate::web::serve(); }\n"),
        ("store.rs", "pub struct Store;\n"),
        ("web.rs", "pub fn serve() {}\n"),
    ]);
    let table: &[(&str, &[&str])] = &[("crate", &[]), ("api", &["web"]), ("store", &[])];
    let findings = Findings::of(&g, table, &[]);
    assert!(findings.cycles.is_empty());
    assert_eq!(findings.forbidden.keys().collect::<Vec<_>>(), [&("api".to_owned(), "store".to_owned())]);
    assert_eq!(findings.missing, ["web".to_owned()].into());
    let report = findings.report(&g, Path::new("src"));
    assert!(report.contains("`api` may not use `store`"), "{report}");
    assert!(report.contains("api::admin -> store: src/api/admin.rs:1 crate::store::Store"), "{report}");
    assert!(report.contains("`web` is not in ALLOWED"), "{report}");

    let table: &[(&str, &[&str])] = &[("crate", &[]), ("api", &["store", "web"]), ("store", &[]), ("web", &[])];
    assert!(Findings::of(&g, table, &[]).is_clean());
}

#[test]
fn allows_exactly_the_listed_cycles() {
    let files = [
        ("lib.rs", "pub mod delivery;\n"),
        ("delivery/mod.rs", "mod dispatcher;\nmod worker;\nmod route;\n"),
        ("delivery/dispatcher.rs", "use super::worker::Worker;\npub struct Dispatcher;\n"),
        ("delivery/worker.rs", "use super::dispatcher::Dispatcher;\npub struct Worker;\n"),
        ("delivery/route.rs", "pub struct Route;\n"),
    ];
    let table: &[(&str, &[&str])] = &[("crate", &[]), ("delivery", &[])];
    let allowed: &[&[&str]] = &[&["delivery::worker", "delivery::dispatcher"]];
    let g = graph(&files);
    let findings = Findings::of(&g, table, allowed);
    assert!(findings.is_clean());
    assert_eq!(
        findings.summary(&g),
        "xtask: module graph: 5 files, 2 edges, no cycle but delivery::dispatcher <-> delivery::worker; top-level arrows as allowed"
    );

    // A third file joins the cycle: it is not the allowed one any more.
    let mut files = files.to_vec();
    files[3].1 = "use super::dispatcher::Dispatcher;\nuse super::route::Route;\npub struct Worker;\n";
    files[4].1 = "pub struct Route(super::Dispatcher);\n";
    files[1].1 = "mod dispatcher;\nmod worker;\nmod route;\npub use dispatcher::Dispatcher;\n";
    let findings = Findings::of(&graph(&files), table, allowed);
    assert_eq!(findings.cycles.len(), 1);
    assert_eq!(findings.cycles[0].len(), 3);
}
