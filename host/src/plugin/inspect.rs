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
}

/// Describes a compiled component.
pub fn describe(engine: &Engine, component: &Component) -> Description {
    let ty = component.component_type();
    let imports: Vec<Item> = ty.imports(engine).map(|(name, e)| item(engine, name, &e.ty)).collect();
    let exports: Vec<Item> = ty.exports(engine).map(|(name, e)| item(engine, name, &e.ty)).collect();
    let world = [PluginKind::Transform, PluginKind::Delivery, PluginKind::Dialect]
        .into_iter()
        .find(|kind| exports.iter().any(|e| exports_interface(&e.name, kind.export_interface())));
    Description { world, imports, exports }
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
                writeln!(f, "  {}", item.name)?;
                for func in &item.functions {
                    writeln!(f, "    {func}")?;
                }
            }
        }
        Ok(())
    }
}
