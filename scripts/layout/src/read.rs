//! Reading `src/`: every `.rs` file parsed, with the module path it defines.

use std::path::{Path, PathBuf};

/// A parsed source file.
pub struct SourceFile {
    /// The path as printed: `src/...`.
    pub shown: String,
    /// The module the file defines: `["codec", "json"]` for `codec/json.rs` and for
    /// `codec/json/mod.rs`; `[]` for `lib.rs`; `["main"]` for the binary's `main.rs`.
    pub module: Vec<String>,
    /// Lines in the file.
    pub lines: usize,
    /// The file as Rust.
    pub ast: syn::File,
}

impl SourceFile {
    /// Whether this is the binary's root (its `crate::` is not the library's).
    pub fn is_binary(&self) -> bool {
        self.module == ["main"]
    }
}

/// Every `.rs` file below `src`, parsed; a file that does not parse is an error, so nothing
/// escapes the gate.
pub fn files(src: &Path) -> Result<Vec<SourceFile>, String> {
    let mut paths = Vec::new();
    walk(src, &mut paths).map_err(|e| format!("{}: {e}", src.display()))?;
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let ast = syn::parse_file(&text).map_err(|e| {
                let at = e.span().start();
                format!("{}:{}:{}: {e}", path.display(), at.line, at.column + 1)
            })?;
            let rel = path.strip_prefix(src).unwrap_or(&path);
            Ok(SourceFile {
                shown: format!("src/{}", rel.display()),
                module: module_of(rel),
                lines: text.lines().count(),
                ast,
            })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The module path a file defines, from its place below `src`.
pub fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.trim_end_matches(".rs");
    let root = parts.is_empty() && stem == "lib";
    if stem != "mod" && !root {
        parts.push(stem.to_string());
    }
    parts
}

/// Whether the attributes hold `#[cfg(test)]`.
pub fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_defines_the_module_its_place_names() {
        let m = |p: &str| module_of(Path::new(p));
        assert_eq!(m("lib.rs"), Vec::<String>::new());
        assert_eq!(m("main.rs"), ["main"]);
        assert_eq!(m("codec/mod.rs"), ["codec"]);
        assert_eq!(m("codec/json.rs"), ["codec", "json"]);
        assert_eq!(m("source/kafka/mod.rs"), ["source", "kafka"]);
    }
}
