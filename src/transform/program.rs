//! jq programs (run with jaq): compiled once per worker thread, with event metadata as variables.
//!
//! Every program can read `$key` (string or null), `$headers` (object of strings), `$timestamp`
//! (milliseconds since the epoch, or null) and `$source` (where the event was read, as an object).

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data::JustLut};
use jaq_json::Val;

mod fromjson;
mod meta;

pub use meta::Meta;

type Data = JustLut<Val>;
type JqFilter = jaq_core::Filter<Data>;

/// The variables every program may use, in the order their values are passed.
const GLOBALS: [&str; 4] = ["$key", "$headers", "$timestamp", "$source"];

/// A compile error at a char offset into the program text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Char offset into the program where the error is.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A compiled jq program.
pub struct Program {
    filter: JqFilter,
    /// The program's direct form, when it has one of the common shapes (see `fast`).
    fast: Option<super::fast::Fast>,
    /// Which of [`GLOBALS`] the program mentions: the others are passed as null, unbuilt.
    uses: [bool; 4],
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Program")
    }
}

fn char_offset(code: &str, part: &str) -> usize {
    let start = (part.as_ptr() as usize)
        .saturating_sub(code.as_ptr() as usize)
        .min(code.len());
    code[..start].chars().count()
}

/// Compiles a program; every lex, parse and compile error is returned at once.
pub fn compile(code: &str) -> Result<Program, Vec<CompileError>> {
    if let Some(offset) = super::nesting::too_deep(code, super::nesting::MAX_DEPTH) {
        return Err(vec![CompileError {
            offset,
            message: format!(
                "jq program nested too deeply: over {} levels of brackets, blocks and chained operators",
                super::nesting::MAX_DEPTH
            ),
        }]);
    }
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    // The first definition of a name wins: this `fromjson` replaces jaq's.
    let funs = [fromjson::fromjson()]
        .into_iter()
        .chain(jaq_core::funs())
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, File { code, path: () })
        .map_err(|errs| load_errors(code, errs))?;
    let filter = Compiler::default()
        .with_funs(funs)
        .with_global_vars(GLOBALS)
        .compile(modules)
        .map_err(|errs| {
            errs.into_iter()
                .flat_map(|(_, undefined)| undefined)
                .map(|(name, what)| CompileError {
                    offset: char_offset(code, name),
                    message: format!("jq: undefined {} `{name}`", undefined_kind(&what)),
                })
                .collect::<Vec<_>>()
        })?;
    let uses = GLOBALS.map(|g| mentions(code, g));
    Ok(Program {
        filter,
        uses,
        fast: super::fast::Fast::compile(code),
    })
}

/// The lex, parse and module errors of loading `code`, at their char offsets.
fn load_errors(code: &str, errs: jaq_core::load::Errors<&str, ()>) -> Vec<CompileError> {
    let mut out = Vec::new();
    for (_, err) in errs {
        match err {
            jaq_core::load::Error::Io(items) => {
                for (path, msg) in items {
                    out.push(CompileError {
                        offset: char_offset(code, path),
                        message: format!("cannot load module: {msg}"),
                    });
                }
            }
            jaq_core::load::Error::Lex(items) => {
                for (expect, at) in items {
                    out.push(CompileError {
                        offset: char_offset(code, at),
                        message: format!("jq syntax error: expected {}", expect.as_str()),
                    });
                }
            }
            jaq_core::load::Error::Parse(items) => {
                for (expect, at) in items {
                    let found = if at.is_empty() {
                        "end of program".to_string()
                    } else {
                        format!("`{}`", at.chars().take(20).collect::<String>())
                    };
                    out.push(CompileError {
                        offset: char_offset(code, at),
                        message: format!(
                            "jq syntax error: expected {}, found {found}",
                            expect.as_str()
                        ),
                    });
                }
            }
        }
    }
    // One mistake often yields several expectations at the same place: keep the first.
    out.dedup_by_key(|e| e.offset);
    out
}

fn undefined_kind(what: &jaq_core::compile::Undefined) -> &'static str {
    use jaq_core::compile::Undefined;
    match what {
        Undefined::Mod => "module",
        Undefined::Var => "variable",
        Undefined::Label => "label",
        Undefined::Filter(_) => "filter",
        _ => "name",
    }
}

/// Whether `code` mentions variable `var` as a whole word (`$key` but not `$keys`).
fn mentions(code: &str, var: &str) -> bool {
    code.match_indices(var).any(|(i, _)| {
        let next = code[i + var.len()..].chars().next();
        !matches!(next, Some(c) if c.is_alphanumeric() || c == '_')
    })
}

/// A runtime error of a program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

impl Program {
    /// Runs the program on `input`, calling `emit` for each output until it returns false.
    /// Returns the first error, which ends the run.
    pub fn run(
        &self,
        input: Val,
        meta: &Meta<'_>,
        mut emit: impl FnMut(Val) -> bool,
    ) -> Result<(), RunError> {
        if let Some(fast) = &self.fast
            && let Ok(out) = fast.run(&input)
        {
            if let Some(v) = out {
                emit(v);
            }
            return Ok(());
        }
        self.run_jaq(input, meta, emit)
    }

    /// Runs the program with jaq, whatever its shape.
    pub(crate) fn run_jaq(
        &self,
        input: Val,
        meta: &Meta<'_>,
        mut emit: impl FnMut(Val) -> bool,
    ) -> Result<(), RunError> {
        let vars = Vars::new(meta.values(&self.uses));
        let ctx = Ctx::<Data>::new(&self.filter.lut, vars);
        for out in self.filter.id.run((ctx, input)) {
            match out {
                Ok(v) => {
                    if !emit(v) {
                        break;
                    }
                }
                Err(exn) => {
                    return Err(match exn.get_err() {
                        Ok(err) => RunError(truncate(err.to_string())),
                        Err(exn) => match exn.get_halt() {
                            Ok(code) => RunError(format!("halt with exit code {code}")),
                            Err(_) => RunError("jq control flow escaped the program".into()),
                        },
                    });
                }
            }
        }
        Ok(())
    }

    /// Runs the program and returns its first output, or `None` when it has none.
    pub fn first(&self, input: Val, meta: &Meta<'_>) -> Result<Option<Val>, RunError> {
        let mut first = None;
        self.run(input, meta, |v| {
            first = Some(v);
            false
        })?;
        Ok(first)
    }
}

/// Error messages quote values; keep a huge value from becoming a huge header.
fn truncate(mut s: String) -> String {
    const MAX: usize = 512;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, decode, write_json};
    use crate::event::{Headers, Position};

    fn run_all(code: &str, input: &str, meta: &Meta<'_>) -> Result<Vec<String>, RunError> {
        let p = compile(code).unwrap();
        let mut outs = Vec::new();
        p.run(
            decode(
                Codec::Json,
                &bytes::Bytes::copy_from_slice(input.as_bytes()),
            )
            .unwrap(),
            meta,
            |v| {
                let mut b = Vec::new();
                write_json(&v, &mut b, 0).unwrap();
                outs.push(String::from_utf8(b).unwrap());
                true
            },
        )?;
        Ok(outs)
    }

    fn meta<'a>(headers: &'a Headers, source: &'a Position) -> Meta<'a> {
        Meta {
            key: Some(b"k1"),
            headers,
            timestamp: Some(1700000000000),
            source,
        }
    }

    #[test]
    fn runs_with_fanout_and_variables() {
        let headers = vec![("tenant".to_string(), bytes::Bytes::from_static(b"acme"))];
        let pos = Position::Kafka {
            topic: "orders".into(),
            partition: 2,
            offset: 99,
        };
        let m = meta(&headers, &pos);
        assert_eq!(
            run_all(".items[] | {id: .}", r#"{"items":[1,2]}"#, &m).unwrap(),
            vec![r#"{"id":1}"#, r#"{"id":2}"#]
        );
        assert_eq!(run_all("empty", "{}", &m).unwrap(), Vec::<String>::new());
        assert_eq!(
            run_all("{k: $key, t: $headers.tenant, ts: $timestamp, p: $source.partition, o: $source.offset}", "{}", &m).unwrap(),
            vec![r#"{"k":"k1","t":"acme","ts":1700000000000,"p":2,"o":99}"#]
        );
        // Standard library functions are there.
        assert_eq!(
            run_all("[.[] | ascii_upcase] | join(\",\")", r#"["a","b"]"#, &m).unwrap(),
            vec![r#""A,B""#]
        );
    }

    #[test]
    fn runtime_errors_are_errors_not_exits() {
        let headers = Headers::new();
        let pos = Position::Generated { seq: 0 };
        let m = meta(&headers, &pos);
        assert!(run_all(".a + 1", r#"{"a":"x"}"#, &m).is_err());
        assert!(
            run_all("error(\"boom\")", "{}", &m)
                .unwrap_err()
                .0
                .contains("boom")
        );
        assert!(run_all("halt", "{}", &m).unwrap_err().0.contains("halt"));
    }

    #[test]
    fn compile_errors_have_offsets() {
        let errs = compile(".a | {b: .c").unwrap_err();
        assert!(!errs.is_empty());
        assert!(errs[0].message.contains("syntax"), "{errs:?}");
        let errs = compile(".a | nosuchfn(1)").unwrap_err();
        assert_eq!(errs[0].offset, 5, "{errs:?}");
        assert!(
            errs[0].message.contains("undefined filter `nosuchfn`"),
            "{errs:?}"
        );
        let errs = compile("$nope").unwrap_err();
        assert!(errs[0].message.contains("undefined variable"), "{errs:?}");
    }

    #[test]
    fn fromjson_refuses_deep_nesting_instead_of_overflowing() {
        let headers = Headers::new();
        let pos = Position::Generated { seq: 0 };
        let m = meta(&headers, &pos);
        let deep = serde_json::to_string(&"[".repeat(100_000)).unwrap();
        for program in ["fromjson", "tonumber", "toboolean"] {
            let err = run_all(program, &deep, &m).unwrap_err();
            assert!(
                err.0.contains("nested deeper than 256"),
                "{program}: {err:?}"
            );
        }
        let at_limit = serde_json::to_string(&("[".repeat(256) + &"]".repeat(256))).unwrap();
        assert_eq!(
            run_all("fromjson | flatten", &at_limit, &m).unwrap(),
            ["[]"]
        );
        // Otherwise it is jaq's: several values, errors with the reason.
        assert_eq!(
            run_all("[fromjson]", r#""1 {\"a\": [2]}""#, &m).unwrap(),
            [r#"[1,{"a":[2]}]"#]
        );
        assert!(
            run_all("fromjson", r#""{""#, &m)
                .unwrap_err()
                .0
                .contains("cannot parse")
        );
        assert!(run_all("fromjson", "5", &m).is_err());
    }

    #[test]
    fn mentions_whole_words_only() {
        assert!(mentions("$key", "$key"));
        assert!(mentions("[$key]", "$key"));
        assert!(!mentions("$keys", "$key"));
    }
}
