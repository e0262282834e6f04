//! Imports between files, seen at every folder level: a file of `codec/` using one of
//! `client/` is an arrow `codec -> client` at the top, one of `codec/json.rs` using
//! `codec/schema/` an arrow `json.rs -> schema/` inside `codec/`. No level may hold a circle;
//! inside `source/` and `sink/` no component may point at another (shared parts are listed in
//! [`KITS`]); only the binary and the command layer use the runtime. Test modules are left out:
//! tests may reach across to build what they check.

use std::collections::{BTreeMap, BTreeSet};

use syn::visit::{self, Visit};

use crate::Problem;
use crate::read::{SourceFile, is_test};

/// Folders of components, and the modules in each that every component shares (the kit), which
/// components may import.
const KITS: &[(&str, &[&str])] = &[
    (
        "source",
        &["component", "context", "intake", "lines", "submit"],
    ),
    (
        "sink",
        &["component", "context", "deliver", "lines", "retry"],
    ),
];

/// Top-level modules that stand beside the components (a mode in place of an input): they may
/// use a component folder's registry and kit, not a component's own parts.
const MODES: &[&str] = &["lambda"];

/// Top-level modules that may use the runtime (which wires and runs pipelines).
const RUNTIME_USERS: &[&str] = &["main", "runtime", "cli"];

/// An arrow at one level: from the child `from` of the folder to its child `to`, seen first in
/// `file` at `line` (pointing at `target`).
struct Arrow {
    file: String,
    line: usize,
    target: String,
}

/// The import problems of `files`.
pub fn check(files: &[SourceFile]) -> Vec<Problem> {
    let modules: BTreeMap<&[String], &SourceFile> =
        files.iter().map(|f| (f.module.as_slice(), f)).collect();
    let mut levels: BTreeMap<Vec<String>, BTreeMap<(String, String), Arrow>> = BTreeMap::new();
    let tests = test_modules(files);
    let mut problems = Vec::new();
    for f in files {
        if tests.iter().any(|t| f.module.starts_with(t)) {
            continue;
        }
        for (path, line) in references(f) {
            let Some(target) = resolve(&modules, &path) else {
                continue;
            };
            if target.module.first().is_some_and(|m| m == "runtime")
                && !f
                    .module
                    .first()
                    .is_some_and(|m| RUNTIME_USERS.contains(&m.as_str()))
            {
                problems.push(Problem {
                    key: format!("runtime {}", f.shown),
                    message: format!(
                        "{}:{line}: uses the runtime (only {} may)",
                        f.shown,
                        RUNTIME_USERS.join(", ")
                    ),
                });
            }
            if let Some(p) = mode_into_component(f, target, line) {
                problems.push(p);
            }
            let (a, b) = (&f.module, &target.module);
            if a.starts_with(b) || b.starts_with(a) {
                continue; // a module and its own folder
            }
            let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            let arrow = (a[common].clone(), b[common].clone());
            levels
                .entry(a[..common].to_vec())
                .or_default()
                .entry(arrow)
                .or_insert(Arrow {
                    file: f.shown.clone(),
                    line,
                    target: target.shown.clone(),
                });
        }
    }
    problems.dedup_by(|x, y| x.key == y.key);
    for (level, arrows) in &levels {
        problems.extend(circles(&modules, level, arrows));
        problems.extend(sideways(&modules, level, arrows));
    }
    problems
}

/// Modules declared `#[cfg(test)] mod name;`: files of tests only.
fn test_modules(files: &[SourceFile]) -> Vec<Vec<String>> {
    let mut tests = Vec::new();
    for f in files {
        for item in &f.ast.items {
            if let syn::Item::Mod(m) = item
                && m.content.is_none()
                && is_test(&m.attrs)
            {
                let mut module = f.module.clone();
                module.push(m.ident.to_string());
                tests.push(module);
            }
        }
    }
    tests
}

/// A mode's file naming a component's own part (not its folder's registry or kit).
fn mode_into_component(f: &SourceFile, target: &SourceFile, line: usize) -> Option<Problem> {
    let mode = f.module.first().filter(|m| MODES.contains(&m.as_str()))?;
    let [kind, component, ..] = target.module.as_slice() else {
        return None;
    };
    let (_, kit) = KITS.iter().find(|(k, _)| k == kind)?;
    if kit.contains(&component.as_str()) {
        return None;
    }
    Some(Problem {
        key: format!("sideways src/{mode}/ -> src/{kind}/{component}"),
        message: format!(
            "{}:{line}: src/{mode}/ imports a part of the component src/{kind}/{component} ({}); move what both need below src/{kind}/",
            f.shown, target.shown
        ),
    })
}

/// The deepest module file that `path` (absolute, from the crate root) is in; None for the crate
/// root itself.
fn resolve<'a>(
    modules: &BTreeMap<&[String], &'a SourceFile>,
    path: &[String],
) -> Option<&'a SourceFile> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).copied())
}

/// How a child of a folder is shown: `name/` for a folder, `name.rs` for a file.
fn shown(modules: &BTreeMap<&[String], &SourceFile>, level: &[String], child: &str) -> String {
    let mut m = level.to_vec();
    m.push(child.to_string());
    match modules.get(m.as_slice()) {
        Some(f) if f.shown.ends_with("/mod.rs") => format!("{child}/"),
        _ => format!("{child}.rs"),
    }
}

fn folder(level: &[String]) -> String {
    level.iter().map(|s| format!("{s}/")).collect::<String>()
}

fn circles(
    modules: &BTreeMap<&[String], &SourceFile>,
    level: &[String],
    arrows: &BTreeMap<(String, String), Arrow>,
) -> Vec<Problem> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in arrows.keys() {
        next.entry(from).or_default().push(to);
    }
    let reach = |start: &str| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![start]);
        while let Some(n) = todo.pop() {
            for &m in next.get(n).into_iter().flatten() {
                if seen.insert(m) {
                    todo.push(m);
                }
            }
        }
        seen
    };
    let mut circles: BTreeSet<Vec<&str>> = BTreeSet::new();
    for &n in next.keys() {
        let from_n = reach(n);
        if from_n.contains(n) {
            let circle = from_n
                .into_iter()
                .filter(|m| reach(m).contains(n))
                .collect();
            circles.insert(circle);
        }
    }
    circles
        .into_iter()
        .map(|members| {
            let names: Vec<String> = members.iter().map(|m| shown(modules, level, m)).collect();
            let ties: Vec<String> = arrows
                .iter()
                .filter(|((a, b), _)| {
                    members.contains(&a.as_str()) && members.contains(&b.as_str())
                })
                .map(|(_, w)| format!("{}:{} -> {}", w.file, w.line, w.target))
                .collect();
            Problem {
                key: format!("circle src/{}: {}", folder(level), names.join(" ")),
                message: format!(
                    "src/{}: import circle of {}: {}",
                    folder(level),
                    names.join(", "),
                    ties.join("; ")
                ),
            }
        })
        .collect()
}

fn sideways(
    modules: &BTreeMap<&[String], &SourceFile>,
    level: &[String],
    arrows: &BTreeMap<(String, String), Arrow>,
) -> Vec<Problem> {
    let [kind] = level else {
        return Vec::new();
    };
    let Some((_, kit)) = KITS.iter().find(|(k, _)| k == kind) else {
        return Vec::new();
    };
    arrows
        .iter()
        .filter(|((a, b), _)| !kit.contains(&a.as_str()) && !kit.contains(&b.as_str()))
        .map(|((a, b), w)| {
            let (a, b) = (shown(modules, level, a), shown(modules, level, b));
            Problem {
                key: format!("sideways src/{kind}/{a} -> src/{kind}/{b}"),
                message: format!(
                    "{}:{}: component src/{kind}/{a} imports component src/{kind}/{b} ({}); move what both need below src/{kind}/",
                    w.file, w.line, w.target
                ),
            }
        })
        .collect()
}

/// The paths a file names, made absolute (from the crate root), with their lines; test modules
/// and `#[cfg(test)]` imports left out.
fn references(f: &SourceFile) -> Vec<(Vec<String>, usize)> {
    let mut r = References {
        binary: f.is_binary(),
        here: f.module.clone(),
        found: Vec::new(),
    };
    r.visit_file(&f.ast);
    r.found
}

struct References {
    binary: bool,
    /// The module the visitor stands in (inline modules included).
    here: Vec<String>,
    found: Vec<(Vec<String>, usize)>,
}

impl References {
    fn add(&mut self, segments: Vec<String>, line: usize) {
        if let Some(path) = absolute(&self.here, &segments, self.binary) {
            self.found.push((path, line));
        }
    }
}

impl<'ast> Visit<'ast> for References {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_test(&m.attrs) || m.content.is_none() {
            return;
        }
        self.here.push(m.ident.to_string());
        visit::visit_item_mod(self, m);
        self.here.pop();
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if is_test(&u.attrs) {
            return;
        }
        let mut paths = Vec::new();
        expand(&u.tree, &mut Vec::new(), &mut paths);
        let line = u.use_token.span.start().line;
        for p in paths {
            self.add(p, line);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments = p.segments.iter().map(|s| s.ident.to_string()).collect();
        let line = p.segments[0].ident.span().start().line;
        self.add(segments, line);
        visit::visit_path(self, p);
    }
}

/// The paths a `use` tree names, one per leaf.
fn expand(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            expand(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => leaf(prefix, &n.ident, out),
        syn::UseTree::Rename(r) => leaf(prefix, &r.ident, out),
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| expand(t, prefix, out)),
    }
}

fn leaf(prefix: &[String], name: &syn::Ident, out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    if name != "self" {
        path.push(name.to_string());
    }
    out.push(path);
}

/// `segments` from the crate root, for a path written in module `here`; None for paths into
/// other crates and for names local to the module.
fn absolute(here: &[String], segments: &[String], binary: bool) -> Option<Vec<String>> {
    let (first, rest) = segments.split_first()?;
    let mut path = match first.as_str() {
        "crate" if !binary => Vec::new(),
        "sluice" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here[..here.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    let mut rest = rest;
    while let Some(("super", more)) = rest.split_first().map(|(s, m)| (s.as_str(), m)) {
        path.pop();
        rest = more;
    }
    path.extend(rest.iter().cloned());
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            shown: format!("src/{path}"),
            module: crate::read::module_of(std::path::Path::new(path)),
            lines: text.lines().count(),
            ast: syn::parse_file(text).unwrap(),
        }
    }

    fn keys(files: &[SourceFile]) -> Vec<String> {
        check(files).into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn a_circle_between_files_is_found_and_a_folder_and_its_files_are_not_one() {
        let files = [
            file("codec/mod.rs", "mod a; mod b; use a::X;"),
            file("codec/a.rs", "use super::b::Y; pub struct X; use super::Z;"),
            file("codec/b.rs", "pub struct Y(crate::codec::a::X);"),
        ];
        assert_eq!(keys(&files), ["circle src/codec/: a.rs b.rs"]);
    }

    #[test]
    fn a_component_importing_another_is_sideways_and_the_kit_is_not() {
        let files = [
            file("source/mod.rs", ""),
            file("source/nats.rs", "use super::intake::Intake;"),
            file("source/intake.rs", ""),
            file("source/jetstream/mod.rs", "mod reader;"),
            file(
                "source/jetstream/reader.rs",
                "use crate::source::nats::to_event;",
            ),
            file("source/http/mod.rs", "pub mod body;"),
            file("source/http/body.rs", ""),
            file(
                "lambda/mod.rs",
                "use crate::source::{submit::Item, http::body};",
            ),
        ];
        assert_eq!(
            keys(&files),
            [
                "sideways src/lambda/ -> src/source/http",
                "sideways src/source/jetstream/ -> src/source/nats.rs"
            ]
        );
    }

    #[test]
    fn tests_may_reach_anywhere_and_only_the_top_uses_the_runtime() {
        let files = [
            file("runtime/mod.rs", ""),
            file(
                "sink/mod.rs",
                "#[cfg(test)] mod tests { use crate::runtime::X; }",
            ),
            file("source/mod.rs", "fn f() { crate::runtime::run(); }"),
            file("main.rs", "use sluice::runtime::run;"),
        ];
        assert_eq!(keys(&files), ["runtime src/source/mod.rs"]);
    }
}
