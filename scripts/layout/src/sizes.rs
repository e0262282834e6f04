//! Sizes and error types: no file over [`MAX_FILE_LINES`] lines, no function over
//! [`MAX_FN_LINES`] (tests included, functions written inside macros included), and
//! `Result<_, String>` only under `src/config/`, where YAML is turned into settings.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::visit::{self, Visit};

use crate::Problem;
use crate::read::SourceFile;

/// Most lines of a file, its tests included.
pub const MAX_FILE_LINES: usize = 500;
/// Most lines of a function, from the line of `fn` to its closing brace.
pub const MAX_FN_LINES: usize = 80;

/// Where string errors are allowed: the configuration boundary.
const STRING_ERRORS_ALLOWED: &str = "src/config/";

/// The size and error-type problems of `files`.
pub fn check(files: &[SourceFile]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for f in files {
        if f.lines > MAX_FILE_LINES {
            problems.push(Problem {
                key: format!("file {}", f.shown),
                message: format!(
                    "{}: {} lines (at most {MAX_FILE_LINES}, tests included)",
                    f.shown, f.lines
                ),
            });
        }
        let mut v = Visitor {
            file: f,
            string_errors: Vec::new(),
            problems: &mut problems,
        };
        v.visit_file(&f.ast);
        let lines = std::mem::take(&mut v.string_errors);
        if !lines.is_empty() && !f.shown.starts_with(STRING_ERRORS_ALLOWED) {
            let at: Vec<String> = lines.iter().map(usize::to_string).collect();
            problems.push(Problem {
                key: format!("string-error {}", f.shown),
                message: format!(
                    "{}:{}: Result<_, String> (an error type with a kind instead; strings only under {STRING_ERRORS_ALLOWED}); also lines {}",
                    f.shown,
                    lines[0],
                    at.join(", ")
                ),
            });
        }
    }
    problems
}

struct Visitor<'a> {
    file: &'a SourceFile,
    string_errors: Vec<usize>,
    problems: &'a mut Vec<Problem>,
}

impl Visitor<'_> {
    fn function(&mut self, name: &str, start: Span, end: Span) {
        let (first, last) = (start.start().line, end.end().line);
        let length = last + 1 - first;
        if length > MAX_FN_LINES {
            self.problems.push(Problem {
                key: format!("fn {} {name}", self.file.shown),
                message: format!(
                    "{}:{first}: fn {name} is {length} lines (at most {MAX_FN_LINES})",
                    self.file.shown
                ),
            });
        }
    }

    /// Functions written inside a macro's tokens (`proptest! { fn ... }`), which the parser
    /// leaves unparsed: `fn NAME` up to the first brace group, unless a `;` ends it first.
    fn scan(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tree) in trees.iter().enumerate() {
            match tree {
                TokenTree::Ident(kw) if kw == "fn" => {
                    let Some(TokenTree::Ident(name)) = trees.get(i + 1) else {
                        continue;
                    };
                    for next in &trees[i + 2..] {
                        match next {
                            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => {
                                self.function(&name.to_string(), kw.span(), g.span_close());
                                break;
                            }
                            TokenTree::Punct(p) if p.as_char() == ';' => break,
                            _ => {}
                        }
                    }
                }
                TokenTree::Group(g) => self.scan(g.stream()),
                _ => {}
            }
        }
    }
}

impl<'ast> Visit<'ast> for Visitor<'_> {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        let close = f.block.brace_token.span.close();
        self.function(&f.sig.ident.to_string(), fn_start(&f.vis, &f.sig), close);
        visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        let close = f.block.brace_token.span.close();
        self.function(&f.sig.ident.to_string(), fn_start(&f.vis, &f.sig), close);
        visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(body) = &f.default {
            let close = body.brace_token.span.close();
            self.function(&f.sig.ident.to_string(), f.sig.fn_token.span, close);
        }
        visit::visit_trait_item_fn(self, f);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.scan(m.tokens.clone());
        visit::visit_macro(self, m);
    }

    fn visit_type_path(&mut self, t: &'ast syn::TypePath) {
        if is_string_result(&t.path) {
            self.string_errors
                .push(t.path.segments[0].ident.span().start().line);
        }
        visit::visit_type_path(self, t);
    }
}

/// Where a function starts: its visibility or, without one, its signature (attributes and doc
/// comments are not counted).
fn fn_start(vis: &syn::Visibility, sig: &syn::Signature) -> Span {
    use syn::spanned::Spanned;
    match vis {
        syn::Visibility::Inherited => sig.span(),
        v => v.span(),
    }
}

/// `Result<T, String>` (however `Result` and `String` are spelled out).
fn is_string_result(path: &syn::Path) -> bool {
    let Some(last) = path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    let types: Vec<&syn::Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    last.ident == "Result"
        && types.len() == 2
        && matches!(types[1], syn::Type::Path(p)
            if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "String"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let file = SourceFile {
            shown: "src/x.rs".into(),
            module: vec!["x".into()],
            lines: text.lines().count(),
            ast: syn::parse_file(text).unwrap(),
        };
        check(&[file]).into_iter().map(|p| p.key).collect()
    }

    fn function(name: &str, lines: usize) -> String {
        let body = "    let _ = '{';\n".repeat(lines - 2);
        format!("fn {name}() {{\n{body}}}\n")
    }

    #[test]
    fn a_function_over_the_limit_is_found_wherever_it_is_written() {
        assert!(problems(&function("fits", MAX_FN_LINES)).is_empty());
        assert_eq!(
            problems(&function("long", MAX_FN_LINES + 1)),
            ["fn src/x.rs long"]
        );
        let in_tests = format!(
            "#[cfg(test)]\nmod tests {{\n{}}}\n",
            function("test_fn", MAX_FN_LINES + 1)
        );
        assert_eq!(problems(&in_tests), ["fn src/x.rs test_fn"]);
        let in_impl = format!(
            "impl X {{\n    pub {}}}\n",
            function("method", MAX_FN_LINES + 1)
        );
        assert_eq!(problems(&in_impl), ["fn src/x.rs method"]);
        let in_macro = format!(
            "proptest! {{\n#[test]\n{}}}\n",
            function("prop", MAX_FN_LINES + 1)
        );
        assert_eq!(problems(&in_macro), ["fn src/x.rs prop"]);
    }

    #[test]
    fn string_errors_are_found_outside_the_configuration() {
        assert_eq!(
            problems("fn f() -> Result<(), String> { Ok(()) }\n"),
            ["string-error src/x.rs"]
        );
        assert_eq!(
            problems("fn f() -> std::result::Result<u8, std::string::String> { Ok(1) }\n"),
            ["string-error src/x.rs"]
        );
        assert!(problems("fn f() -> Result<String, E> { todo!() }\n").is_empty());
    }
}
