//! What a component is: the world it implements, its imports and exports
//! (`biogate plugin inspect`).
use std::fmt;

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::config::PluginKind;

/// One import or export and the functions it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub functions: Vec<String>,
}

/// The shape of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// The biogate world the component implements, if any.
    pub world: Option<PluginKind>,
    pub imports: Vec<Item>,
    pub exports: Vec<Item>,
    /// The imports this gateway cannot satisfy for that world (or for any world when
    /// the component implements none), each with what to do.
    pub unsupported: Vec<Unsupported>,
}

/// An import the gateway cannot satisfy, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The import (`wasi:http/types@0.2.3`).
    pub name: String,
    /// Why the gateway cannot provide it, and the fix.
    pub fix: String,
}

/// The WASI 0.2 packages the gateway links (wasmtime-wasi's p2 set): files and sockets
/// are linked but deny everything (no preopened folder, no network).
const WASI_PACKAGES: [&str; 6] =
    ["wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:io/", "wasi:random/", "wasi:sockets/"];

/// The imports of `imports` that the gateway cannot satisfy for a plugin of `world`
/// (`None`: of any world).
pub fn unsupported_imports(imports: &[Item], world: Option<PluginKind>) -> Vec<Unsupported> {
    imports.iter().filter_map(|import| unsupported(&import.name, world)).collect()
}

fn unsupported(name: &str, world: Option<PluginKind>) -> Option<Unsupported> {
    let (interface, version) = name.split_once('@').unwrap_or((name, ""));
    let fix = if let Some(own) = interface.strip_prefix("biogate:plugin/") {
        if !(version.is_empty() || version.starts_with("0.")) {
            "this gateway speaks biogate:plugin 0.x: build the plugin against biogate-sdk 0.x (or the WIT in sdk/wit)"
                .into()
        } else {
            match (own, world) {
                ("outbound-http", Some(kind)) if kind != PluginKind::Delivery => {
                    "only delivery plugins may make HTTP requests: declare it with kind = \"delivery\", or build it without them".into()
                }
                ("commands", Some(kind)) if kind != PluginKind::Dialect => {
                    "only dialect plugins take device commands: declare it with kind = \"dialect\", or build it without them".into()
                }
                ("types" | "log" | "config" | "kv" | "clock" | "outbound-http" | "commands", _) => return None,
                _ => format!("biogate:plugin has no interface {own:?}: build the plugin against the WIT of this gateway (sdk/wit)"),
            }
        }
    } else if interface.starts_with("wasi:http/") {
        "biogate does not provide wasi:http (a delivery plugin sends requests through biogate:plugin/outbound-http). \
         JavaScript built with `jco componentize`: add `-d http fetch-event` (jco then leaves out its fetch support)"
            .into()
    } else if WASI_PACKAGES.iter().any(|p| interface.starts_with(p)) {
        if version.is_empty() || version.starts_with("0.2.") {
            return None;
        }
        format!("this gateway provides WASI 0.2 (wasip2), not {version}: build for the wasm32-wasip2 target")
    } else if interface.starts_with("wasi:") {
        "biogate provides WASI 0.2 cli, clocks, filesystem (no folder), io, random and sockets (no network) only: \
         use the biogate:plugin interfaces (config, kv, log, clock) instead"
            .into()
    } else {
        "neither the biogate:plugin contract nor WASI 0.2: remove the dependency that imports it".into()
    };
    Some(Unsupported { name: name.to_string(), fix })
}

/// Describes a compiled component.
pub fn describe(engine: &Engine, component: &Component) -> Description {
    let ty = component.component_type();
    let imports: Vec<Item> = ty.imports(engine).map(|(name, e)| item(engine, name, &e.ty)).collect();
    let exports: Vec<Item> = ty.exports(engine).map(|(name, e)| item(engine, name, &e.ty)).collect();
    let world = [PluginKind::Transform, PluginKind::Delivery, PluginKind::Dialect]
        .into_iter()
        .find(|kind| exports.iter().any(|e| exports_interface(&e.name, kind.export_interface())));
    let unsupported = unsupported_imports(&imports, world);
    Description { world, imports, exports, unsupported }
}

/// Whether an export name (`biogate:plugin/transformer@0.1.0`) is `interface` at a
/// version this host understands (0.x).
pub fn exports_interface(export: &str, interface: &str) -> bool {
    export.strip_prefix(interface).is_some_and(|rest| rest.is_empty() || rest.starts_with("@0."))
}

fn item(engine: &Engine, name: &str, ty: &ComponentItem) -> Item {
    let functions = match ty {
        ComponentItem::ComponentInstance(instance) => instance
            .exports(engine)
            .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
            .map(|(n, _)| n.to_string())
            .collect(),
        _ => Vec::new(),
    };
    Item { name: name.to_string(), functions }
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.world {
            Some(kind) => writeln!(f, "world: biogate:plugin/{} ({})", kind.world(), kind.export_interface())?,
            None => writeln!(f, "world: none of biogate:plugin/{{transform,delivery,dialect}}")?,
        }
        for (title, items) in [("imports", &self.imports), ("exports", &self.exports)] {
            writeln!(f, "{title}:")?;
            for item in items {
                match self.unsupported.iter().find(|u| u.name == item.name) {
                    Some(u) => writeln!(f, "  {}   NOT PROVIDED by this gateway: {}", item.name, u.fix)?,
                    None => writeln!(f, "  {}", item.name)?,
                }
                for func in &item.functions {
                    writeln!(f, "    {func}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(imports: &[&str], world: PluginKind) -> Vec<String> {
        let items: Vec<Item> = imports.iter().map(|n| Item { name: n.to_string(), functions: vec![] }).collect();
        unsupported_imports(&items, Some(world)).into_iter().map(|u| u.name).collect()
    }

    #[test]
    fn wasi_0_2_and_the_worlds_own_interfaces_are_provided_the_rest_is_named() {
        let rust_transform = [
            "wasi:cli/environment@0.2.6",
            "wasi:io/streams@0.2.6",
            "wasi:filesystem/preopens@0.2.6",
            "biogate:plugin/types@0.1.0",
            "biogate:plugin/kv@0.1.0",
        ];
        assert!(names(&rust_transform, PluginKind::Transform).is_empty());
        let js = ["wasi:http/types@0.2.3", "wasi:http/outgoing-handler@0.2.3", "wasi:cli/stdout@0.2.3"];
        assert_eq!(names(&js, PluginKind::Transform), ["wasi:http/types@0.2.3", "wasi:http/outgoing-handler@0.2.3"]);
        assert_eq!(names(&["biogate:plugin/outbound-http@0.1.0"], PluginKind::Transform).len(), 1);
        assert!(names(&["biogate:plugin/outbound-http@0.1.0"], PluginKind::Delivery).is_empty());
        assert_eq!(names(&["wasi:keyvalue/store@0.2.0-draft", "wasi:cli/stdout@0.3.0"], PluginKind::Delivery).len(), 2);
    }

    #[test]
    fn the_fix_for_wasi_http_names_the_jco_flags() {
        let fix = unsupported("wasi:http/types@0.2.3", Some(PluginKind::Transform)).map(|u| u.fix).unwrap_or_default();
        assert!(fix.contains("-d http fetch-event"), "{fix}");
    }
}
