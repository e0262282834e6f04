//! Logs and metrics only through typed events: outside [`EVENTS_ALLOWED`], no file calls a
//! `tracing` or `metrics` macro (`tracing::warn!`, `metrics::counter!`) or imports one to call
//! it bare. What happens is a type in `src/observe/events/` that logs and counts it in one place.

use syn::visit::{self, Visit};

use crate::Problem;
use crate::read::SourceFile;

/// Where logs are written and metrics registered: the typed events and the telemetry they count
/// on.
const EVENTS_ALLOWED: &str = "src/observe/";

/// The crates whose macros log or count.
const CRATES: &[&str] = &["tracing", "metrics"];

/// Their macros, as they would be imported to be called bare.
const MACROS: &[&str] = &[
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "event",
    "span",
    "trace_span",
    "debug_span",
    "info_span",
    "warn_span",
    "error_span",
    "counter",
    "gauge",
    "histogram",
    "absolute_counter",
    "increment_counter",
    "increment_gauge",
    "decrement_gauge",
    "describe_counter",
    "describe_gauge",
    "describe_histogram",
];

/// The files that log or count outside the typed events.
pub fn check(files: &[SourceFile]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.shown.starts_with(EVENTS_ALLOWED))
    {
        let mut v = Visitor { found: Vec::new() };
        v.visit_file(&f.ast);
        let Some((line, first)) = v.found.first() else {
            continue;
        };
        let lines: Vec<String> = v.found.iter().map(|(l, _)| l.to_string()).collect();
        problems.push(Problem {
            key: format!("events {}", f.shown),
            message: format!(
                "{}:{line}: {first} outside {EVENTS_ALLOWED} (define an event in src/observe/events/ and emit it); also lines {}",
                f.shown,
                lines.join(", ")
            ),
        });
    }
    problems
}

struct Visitor {
    /// Line, and what is there.
    found: Vec<(usize, String)>,
}

impl<'ast> Visit<'ast> for Visitor {
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let first = &m.path.segments[0].ident;
        if m.path.segments.len() > 1 && CRATES.iter().any(|c| first == c) {
            let path: Vec<String> = m
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            self.found
                .push((first.span().start().line, format!("`{}!`", path.join("::"))));
        }
        visit::visit_macro(self, m);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if let syn::UseTree::Path(p) = &u.tree
            && CRATES.iter().any(|c| p.ident == c)
            && imports_macro(&p.tree)
        {
            let line = u.use_token.span.start().line;
            self.found
                .push((line, format!("an import of `{}`'s macros", p.ident)));
        }
        visit::visit_item_use(self, u);
    }
}

/// Whether a `use` tree below a crate's name brings in one of its logging or counting macros
/// (or everything, with a glob).
fn imports_macro(tree: &syn::UseTree) -> bool {
    match tree {
        syn::UseTree::Name(n) => MACROS.iter().any(|m| n.ident == m),
        syn::UseTree::Rename(r) => MACROS.iter().any(|m| r.ident == m),
        syn::UseTree::Glob(_) => true,
        syn::UseTree::Path(p) => imports_macro(&p.tree),
        syn::UseTree::Group(g) => g.items.iter().any(imports_macro),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(path: &str, text: &str) -> Vec<String> {
        let file = SourceFile {
            shown: format!("src/{path}"),
            module: crate::read::module_of(std::path::Path::new(path)),
            lines: text.lines().count(),
            ast: syn::parse_file(text).unwrap(),
        };
        check(&[file]).into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn logging_or_counting_outside_the_events_is_found() {
        let ad_hoc = "fn f() {\n    tracing::warn!(error = %e, \"failed\");\n}\n";
        assert_eq!(problems("sink/x.rs", ad_hoc), ["events src/sink/x.rs"]);
        let counted = "fn f() { metrics::counter!(\"n\").increment(1); }\n";
        assert_eq!(problems("source/y.rs", counted), ["events src/source/y.rs"]);
        let imported = "use tracing::{Level, info};\nfn f() { info!(\"x\"); }\n";
        assert_eq!(problems("cli/z.rs", imported), ["events src/cli/z.rs"]);
        let in_tests = "#[cfg(test)]\nmod tests {\n    fn t() { tracing::info!(\"x\"); }\n}\n";
        assert_eq!(problems("codec/t.rs", in_tests), ["events src/codec/t.rs"]);
    }

    #[test]
    fn events_handles_and_types_are_not() {
        assert!(problems("observe/events/x.rs", "fn f() { tracing::warn!(\"x\"); }").is_empty());
        let typed = "use crate::observe::events::emit;\nuse metrics::Gauge;\nuse tracing::Level;\n\
                     fn f(g: &Gauge) { emit(X { level: Level::INFO }); g.set(1.0); }\n";
        assert!(problems("sink/x.rs", typed).is_empty());
    }
}
