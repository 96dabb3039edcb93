//! `cargo xtask deps`: the module dependency rules of the gateway crate (host/src).
//!
//! Rule 1: the file-level module graph ([`graph`]) has no cycle but those of
//! [`ALLOWED_CYCLES`]. Rule 2: every arrow between two top-level modules (`store::devices`
//! -> `config` is `store` -> `config`) is in [`ALLOWED`], which lists every top-level
//! module. Edges made under `#[cfg(test)]` are ignored: unit tests may reach anywhere.

mod allowed;
mod graph;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use anyhow::{Result, bail};

use allowed::{ALLOWED, ALLOWED_CYCLES};
use graph::Graph;

use crate::paths::Paths;

/// The checked crate's source folder, relative to the repository root.
const HOST_SRC: &str = "host/src";
/// The checked library's crate name (main.rs calls it by this name).
const HOST_LIB: &str = "biogate";
/// Where the rules are, for messages.
const RULES_FILE: &str = "xtask/src/deps/allowed.rs";

/// What `cargo xtask deps` prints instead of checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Print {
    /// Nothing: check the rules.
    Check,
    /// The top-level arrows, one line per module.
    TopLevel,
    /// The file-level arrows, with the first site of each.
    Files,
}

/// `cargo xtask deps`: checks host/src's module graph (or prints it).
pub fn run(paths: &Paths, print: Print) -> Result<()> {
    match print {
        Print::Check => check(paths),
        Print::TopLevel => {
            for (from, to) in top_level_arrows(&host_graph(paths)?) {
                let to =
                    if to.is_empty() { "(none)".to_owned() } else { to.into_iter().collect::<Vec<_>>().join(", ") };
                println!("{from} -> {to}");
            }
            Ok(())
        }
        Print::Files => {
            let graph = host_graph(paths)?;
            for (&(from, to), sites) in &graph.edges {
                let site = &sites[0];
                let at = format!("{HOST_SRC}/{}:{}", graph.files[from].display(), site.line);
                println!("{} -> {}  ({at} {})", graph.nodes[from], graph.nodes[to], site.text);
            }
            Ok(())
        }
    }
}

/// The check of `cargo xtask deps`, `test` and `lint`: prints a one-line summary, or fails
/// with every broken rule.
pub fn check(paths: &Paths) -> Result<()> {
    check_graph(&host_graph(paths)?)
}

fn host_graph(paths: &Paths) -> Result<Graph> {
    Graph::build(&paths.root().join(HOST_SRC), HOST_LIB)
}

fn check_graph(graph: &Graph) -> Result<()> {
    let findings = Findings::of(graph, ALLOWED, ALLOWED_CYCLES);
    if findings.is_clean() {
        println!("{}", findings.summary(graph));
        return Ok(());
    }
    eprint!("{}", findings.report(graph, Path::new(HOST_SRC)));
    bail!(
        "the module graph of {HOST_SRC} breaks its rules. Cut the arrow (move the code to the \
         module it belongs to, or pass what it needs in); if the arrow is intended, add it to \
         ALLOWED in {RULES_FILE} and to docs/architecture.md (cycles cannot be allowed that way: \
         ALLOWED_CYCLES is for the few that are by design)"
    )
}

/// The top-level module of a node: `store` for `store::journal`.
fn top(node: &str) -> &str {
    node.split("::").next().unwrap_or(node)
}

/// Each top-level module's arrows to other top-level modules.
fn top_level_arrows(graph: &Graph) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut arrows: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for node in &graph.nodes {
        arrows.entry(top(node)).or_default();
    }
    for &(from, to) in graph.edges.keys() {
        let (from, to) = (top(&graph.nodes[from]), top(&graph.nodes[to]));
        if from != to {
            arrows.entry(from).or_default().insert(to);
        }
    }
    arrows
}

/// What the rules say about a graph.
pub struct Findings {
    /// Cycles (strongly connected components, node indexes) that are not allowed.
    pub cycles: Vec<Vec<usize>>,
    /// Allowed cycles that are present.
    pub allowed_cycles: Vec<Vec<usize>>,
    /// Arrows between top-level modules that the table does not allow, with their edges.
    pub forbidden: BTreeMap<(String, String), Vec<(usize, usize)>>,
    /// Top-level modules missing from the table.
    pub missing: BTreeSet<String>,
}

impl Findings {
    /// Applies the rules: `allowed` is the top-level table, `allowed_cycles` the cycles
    /// allowed between files.
    pub fn of(graph: &Graph, allowed: &[(&str, &[&str])], allowed_cycles: &[&[&str]]) -> Self {
        let (mut cycles, mut allowed_present) = (Vec::new(), Vec::new());
        for scc in cycles_of(graph) {
            let names: BTreeSet<&str> = scc.iter().map(|&n| graph.nodes[n].as_str()).collect();
            let ok = allowed_cycles.iter().any(|c| c.iter().copied().collect::<BTreeSet<_>>() == names);
            if ok { &mut allowed_present } else { &mut cycles }.push(scc);
        }
        let table: BTreeMap<&str, &[&str]> = allowed.iter().copied().collect();
        let missing =
            graph.nodes.iter().map(|n| top(n)).filter(|t| !table.contains_key(t)).map(str::to_owned).collect();
        let mut forbidden: BTreeMap<(String, String), Vec<(usize, usize)>> = BTreeMap::new();
        for &(from, to) in graph.edges.keys() {
            let (a, b) = (top(&graph.nodes[from]), top(&graph.nodes[to]));
            if a != b && table.get(a).is_some_and(|deps| !deps.contains(&b)) {
                forbidden.entry((a.to_owned(), b.to_owned())).or_default().push((from, to));
            }
        }
        Self { cycles, allowed_cycles: allowed_present, forbidden, missing }
    }

    /// Whether every rule holds.
    pub fn is_clean(&self) -> bool {
        self.cycles.is_empty() && self.forbidden.is_empty() && self.missing.is_empty()
    }

    /// The one line printed when every rule holds.
    pub fn summary(&self, graph: &Graph) -> String {
        let cycles: Vec<String> = self
            .allowed_cycles
            .iter()
            .map(|c| c.iter().map(|&n| graph.nodes[n].as_str()).collect::<Vec<_>>().join(" <-> "))
            .collect();
        let cycles =
            if cycles.is_empty() { "no cycle".to_owned() } else { format!("no cycle but {}", cycles.join(", ")) };
        let edges = graph.edges.len();
        format!(
            "xtask: module graph: {} files, {edges} edges, {cycles}; top-level arrows as allowed",
            graph.nodes.len()
        )
    }

    /// Every broken rule, with the file:line and path of each arrow involved (`src` is the
    /// source folder as shown).
    pub fn report(&self, graph: &Graph, src: &Path) -> String {
        // One line per file-level arrow: `a -> b: src/a.rs:12 crate::b::X (and 2 more)`.
        let arrow = |out: &mut String, from: usize, to: usize| {
            let sites = &graph.edges[&(from, to)];
            let more = if sites.len() > 1 { format!(" (and {} more)", sites.len() - 1) } else { String::new() };
            let at = src.join(&graph.files[from]);
            let (a, b, site) = (&graph.nodes[from], &graph.nodes[to], &sites[0]);
            let _ = writeln!(out, "    {a} -> {b}: {}:{} {}{more}", at.display(), site.line, site.text);
        };
        let mut out = String::new();
        for scc in &self.cycles {
            let names: Vec<&str> = scc.iter().map(|&n| graph.nodes[n].as_str()).collect();
            let _ = writeln!(out, "\nxtask: module graph: a cycle of {} files: {}", scc.len(), names.join(", "));
            let _ = writeln!(out, "  made by these arrows:");
            for &(from, to) in graph.edges.keys().filter(|(f, t)| scc.contains(f) && scc.contains(t)) {
                arrow(&mut out, from, to);
            }
        }
        for ((a, b), edges) in &self.forbidden {
            let _ = writeln!(out, "\nxtask: module graph: `{a}` may not use `{b}` (not in ALLOWED, {RULES_FILE}):");
            for &(from, to) in edges {
                arrow(&mut out, from, to);
            }
        }
        for module in &self.missing {
            let _ = writeln!(
                out,
                "\nxtask: module graph: top-level module `{module}` is not in ALLOWED ({RULES_FILE}): \
                 add it with the top-level modules it may use"
            );
        }
        out
    }
}

/// The strongly connected components of more than one node (Tarjan's algorithm).
fn cycles_of(graph: &Graph) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        next: Vec<Vec<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on_stack: Vec<bool>,
        counter: usize,
        out: &'a mut Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.counter);
            self.low[v] = self.counter;
            self.counter += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for w in self.next[v].clone() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(index) if self.on_stack[w] => self.low[v] = self.low[v].min(index),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort_unstable();
                    self.out.push(scc);
                }
            }
        }
    }
    let n = graph.nodes.len();
    let mut next = vec![Vec::new(); n];
    for &(from, to) in graph.edges.keys() {
        next[from].push(to);
    }
    let mut out = Vec::new();
    let mut tarjan = Tarjan {
        next,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on_stack: vec![false; n],
        counter: 0,
        out: &mut out,
    };
    for v in 0..n {
        if tarjan.index[v].is_none() {
            tarjan.visit(v);
        }
    }
    out.sort();
    out
}
