//! A direct evaluator for the common shapes of jq program: field paths, literals, arithmetic,
//! comparisons, `and`/`or`, `select` and object construction, joined by pipes, each with one
//! output. jaq evaluates every program through generic, boxed value streams; for these shapes
//! that is most of the cost of an event. Anything else, and any case whose result is not plainly
//! a value (an operation jq would fail, a path into a non-object), is left to jaq, which runs
//! the same program on the same input: results and errors are jaq's either way.

use jaq_core::ValT;
use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Term};
use jaq_core::ops::{Cmp, Math};
use jaq_core::path::{Opt, Part};
use jaq_json::Val;

/// A program in the subset; built only when the whole program is in it.
#[derive(Debug, Clone)]
pub struct Fast(Expr);

#[derive(Debug, Clone)]
enum Expr {
    /// `.`
    Id,
    /// `.a.b`: object keys, as values to look up without building them per event.
    Path(Vec<Val>),
    /// A number or a plain string.
    Lit(Val),
    Math(Box<Expr>, Math, Box<Expr>),
    Cmp(Box<Expr>, Cmp, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `{a, "b": e, c: e}`, in order: the object's keys, each once, in the order they first
    /// appear (with null values), and the value of each entry with the place of its key. A copy
    /// of the keys is filled in per event, so no key is hashed per event.
    Obj(jaq_json::Map, Vec<(usize, Expr)>),
    /// `select(e)`: the input if `e` is true, else nothing.
    Select(Box<Expr>),
    /// `l | r`.
    Pipe(Box<Expr>, Box<Expr>),
}

/// The program needs jaq for this input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback;

impl Fast {
    /// The program's direct form, when the whole program is in the subset.
    pub fn compile(code: &str) -> Option<Fast> {
        let term = jaq_core::load::parse(code, |p| p.term())?;
        Some(Fast(expr(&term)?))
    }

    /// The program's output for `input`: one value or none; `Fallback` when jaq must decide.
    pub fn run(&self, input: &Val) -> Result<Option<Val>, Fallback> {
        eval(&self.0, input)
    }

    /// Adds to `fields` the top-level fields of the input that the program reads, when it reads
    /// the input only through `.name...` paths: its outputs and errors (jaq's too) are then the
    /// same for any two objects that agree on those fields. Returns whether the output is the
    /// input itself (`select(...)`), or `None` when the program uses the input as a whole.
    pub fn reads(&self, fields: &mut Vec<Val>) -> Option<bool> {
        reads(&self.0, true, fields)
    }
}

/// [`Fast::reads`] of `e`; `root` says whether `e`'s input is the program's input.
fn reads(e: &Expr, root: bool, fields: &mut Vec<Val>) -> Option<bool> {
    // An operand's value is used, not passed on: if it is the input, all of it matters.
    let value = |e: &Expr, fields: &mut Vec<Val>| match reads(e, root, fields)? {
        true if root => None,
        _ => Some(()),
    };
    Some(match e {
        Expr::Id => true,
        Expr::Path(keys) => {
            if root && !fields.contains(&keys[0]) {
                fields.push(keys[0].clone());
            }
            false
        }
        Expr::Lit(_) => false,
        Expr::Math(l, _, r) | Expr::Cmp(l, _, r) | Expr::And(l, r) | Expr::Or(l, r) => {
            value(l, fields)?;
            value(r, fields)?;
            false
        }
        Expr::Obj(_, entries) => {
            for (_, v) in entries {
                value(v, fields)?;
            }
            false
        }
        Expr::Select(cond) => {
            value(cond, fields)?;
            true
        }
        // The right side sees the input only if the left side passes it on.
        Expr::Pipe(l, r) => {
            let through = reads(l, root, fields)?;
            let r_through = reads(r, root && through, fields)?;
            through && r_through
        }
    })
}

fn plain_str(parts: &[StrPart<&str, Term<&str>>]) -> Option<String> {
    let mut s = String::new();
    for part in parts {
        match part {
            StrPart::Str(text) => s.push_str(text),
            StrPart::Char(c) => s.push(*c),
            StrPart::Term(_) => return None,
        }
    }
    Some(s)
}

fn key(term: &Term<&str>) -> Option<Val> {
    match term {
        Term::Str(None, parts) => Some(Val::utf8_str(plain_str(parts)?.into_bytes())),
        _ => None,
    }
}

fn expr(term: &Term<&str>) -> Option<Expr> {
    Some(match term {
        Term::Id => Expr::Id,
        Term::Num(n) => Expr::Lit(Val::from_num(n).ok()?),
        Term::Str(None, parts) => Expr::Lit(Val::utf8_str(plain_str(parts)?.into_bytes())),
        Term::Path(base, path) if matches!(**base, Term::Id) => {
            let keys = path
                .0
                .iter()
                .map(|(part, opt)| match (part, opt) {
                    (Part::Index(k), Opt::Essential) => key(k),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            if keys.is_empty() {
                return None;
            }
            Expr::Path(keys)
        }
        Term::BinOp(l, op, r) => {
            let (l, r) = (Box::new(expr(l)?), Box::new(expr(r)?));
            match op {
                BinaryOp::Pipe(None) => Expr::Pipe(l, r),
                BinaryOp::Math(m) => Expr::Math(l, *m, r),
                BinaryOp::Cmp(c) => Expr::Cmp(l, *c, r),
                BinaryOp::And => Expr::And(l, r),
                BinaryOp::Or => Expr::Or(l, r),
                _ => return None,
            }
        }
        // Built-in constants (a program here has no definitions of its own to shadow them).
        Term::Call("null", args) if args.is_empty() => Expr::Lit(Val::Null),
        Term::Call("true", args) if args.is_empty() => Expr::Lit(Val::Bool(true)),
        Term::Call("false", args) if args.is_empty() => Expr::Lit(Val::Bool(false)),
        Term::Call(name, args) if *name == "select" && args.len() == 1 => {
            Expr::Select(Box::new(expr(&args[0])?))
        }
        Term::Obj(entries) => {
            let mut keys = jaq_json::Map::default();
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let name = key(k)?;
                let value = match v {
                    Some(v) => expr(v)?,
                    // `{a}` is `{a: .a}`.
                    None => Expr::Path(vec![name.clone()]),
                };
                // A key given twice keeps its first place and takes its last value.
                let (at, _) = keys.insert_full(name, Val::Null);
                out.push((at, value));
            }
            Expr::Obj(keys, out)
        }
        _ => return None,
    })
}

/// One value (`Some`) or none, for the subset's single-output expressions.
fn eval(e: &Expr, input: &Val) -> Result<Option<Val>, Fallback> {
    let one = |e: &Expr, v: &Val| eval(e, v)?.ok_or(Fallback);
    Ok(Some(match e {
        Expr::Id => input.clone(),
        Expr::Path(keys) => {
            let mut v = input;
            for k in keys {
                v = match v {
                    Val::Obj(map) => map.get(k).unwrap_or(&Val::Null),
                    Val::Null => &Val::Null,
                    // jq fails here: let jaq say how.
                    _ => return Err(Fallback),
                };
            }
            v.clone()
        }
        Expr::Lit(v) => v.clone(),
        Expr::Math(l, op, r) => {
            let (l, r) = (one(l, input)?, one(r, input)?);
            // Numbers only: jaq's own operation, so the same result; anything else, and any
            // error, is jaq's to report.
            if !matches!((&l, &r), (Val::Num(_), Val::Num(_))) {
                return Err(Fallback);
            }
            let out: Result<Val, _> = op.run(l, r);
            out.map_err(|_| Fallback)?
        }
        Expr::Cmp(l, op, r) => Val::Bool(op.run(&one(l, input)?, &one(r, input)?)),
        Expr::And(l, r) => Val::Bool(one(l, input)?.as_bool() && one(r, input)?.as_bool()),
        Expr::Or(l, r) => Val::Bool(one(l, input)?.as_bool() || one(r, input)?.as_bool()),
        Expr::Obj(keys, entries) => {
            let mut map = keys.clone();
            for (at, v) in entries {
                if let Some((_, slot)) = map.get_index_mut(*at) {
                    *slot = one(v, input)?;
                }
            }
            Val::obj(map)
        }
        Expr::Select(cond) => {
            if one(cond, input)?.as_bool() {
                input.clone()
            } else {
                return Ok(None);
            }
        }
        Expr::Pipe(l, r) => match eval(l, input)? {
            Some(v) => return eval(r, &v),
            None => return Ok(None),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, decode, write_json};
    use crate::transform::program::{Meta, RunError, compile};
    use proptest::prelude::*;

    /// Programs in the subset (the suite's W2, W3 and others).
    const IN: &[&str] = &[
        ".",
        ".a",
        ".a.b",
        ".\"a\"",
        "{a, b}",
        "{id, ts, service, status, latency_ms: (.latency * 1000)}",
        "select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}",
        "select(.a == \"x\" and .b != null or .c < 2.5)",
        "{x: .a + .b, y: (.a - 1), z: (.b / 2), w: (.a % 3), s: \"t\\n\"}",
        "{a: {b: .a.b, c: 1}, a: 2}",
        ".a | .b",
        "select(.a) | select(.b) | .c",
        "{\"k y\": .a}",
        "1e1000",
        ".a > .b",
        "select(.a == null or .b == true) | {c: false}",
    ];

    /// Programs outside it.
    const OUT: &[&str] = &[
        ".a?",
        ".[0]",
        ".[]",
        "{(.a): 1}",
        "{$key}",
        ".a // 1",
        "-(.a)",
        "def select(f): f; select(1)",
        ".a, .b",
        "\"\\(.a)\"",
        "@base64",
        "map(.)",
        ".a as $x | $x",
    ];

    #[test]
    fn the_subset_is_recognised() {
        for p in IN {
            assert!(Fast::compile(p).is_some(), "{p} should be fast");
        }
        for p in OUT {
            assert!(Fast::compile(p).is_none(), "{p} should be left to jaq");
        }
    }

    fn jaq(program: &str, input: &Val) -> Result<Vec<String>, RunError> {
        let headers = Vec::new();
        let source = crate::event::Position::Generated { seq: 0 };
        let meta = Meta {
            key: None,
            headers: &headers,
            timestamp: None,
            source: &source,
        };
        let mut outs = Vec::new();
        compile(program)
            .unwrap()
            .run_jaq(input.clone(), &meta, |v| {
                outs.push(text(&v));
                true
            })?;
        Ok(outs)
    }

    fn text(v: &Val) -> String {
        let mut out = Vec::new();
        match write_json(v, &mut out, 0) {
            Ok(()) => String::from_utf8(out).unwrap(),
            Err(e) => format!("not JSON: {e} ({v})"),
        }
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            (-1e6f64..1e6).prop_map(|f| f.to_string()),
            Just("123456789012345678901234567890".to_string()),
            Just("1.50".to_string()),
            Just("0".to_string()),
            "[a-z\\n\"é]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("[1,2]".to_string()),
        ]
    }

    fn object() -> impl Strategy<Value = String> {
        let field = prop_oneof![
            Just("a"),
            Just("b"),
            Just("c"),
            Just("id"),
            Just("ts"),
            Just("status"),
            Just("latency"),
            Just("msg")
        ];
        let value = prop_oneof![
            4 => scalar(),
            1 => prop::collection::vec(("[abc]", scalar()), 0..3).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ];
        prop_oneof![
            9 => prop::collection::vec((field, value), 0..8).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
            1 => scalar(),
        ]
    }

    #[test]
    fn the_suite_programs_run_directly_as_jaq_runs_them() {
        let w2 = "select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}";
        let w3 = "{id, ts, service, status, latency_ms: (.latency * 1000)}";
        for (status, program, outputs) in [(500, w2, 1), (200, w2, 0), (200, w3, 1)] {
            let json = format!(
                r#"{{"id":7,"ts":1700000000007,"service":"svc-7","status":{status},"latency":0.0070,"msg":"request \"handled\"","pad":"xx"}}"#
            );
            let input = decode(Codec::Json, &bytes::Bytes::from(json)).unwrap();
            let out = Fast::compile(program)
                .unwrap()
                .run(&input)
                .expect("answered directly");
            let direct: Vec<String> = out.iter().map(text).collect();
            assert_eq!(direct.len(), outputs);
            assert_eq!(Ok(direct), jaq(program, &input));
        }
        // A path into a string is jq's error: the direct form leaves it to jaq.
        let input = decode(Codec::Json, &bytes::Bytes::from_static(br#"{"a":"s"}"#)).unwrap();
        assert_eq!(Fast::compile(".a.b").unwrap().run(&input), Err(Fallback));
        assert!(jaq(".a.b", &input).is_err());
    }

    fn names(fields: &[Val]) -> Vec<String> {
        fields.iter().map(text).collect()
    }

    #[test]
    fn the_fields_a_program_reads_are_known() {
        let w2 = "select(.status >= 500) | {ts, service, msg, latency_ms: (.latency * 1000)}";
        for (program, expected) in [
            (".a", Some((false, vec!["a"]))),
            (".a.b | .c", Some((false, vec!["a"]))),
            (
                "{id, ts, service, status, latency_ms: (.latency * 1000)}",
                Some((false, vec!["id", "ts", "service", "status", "latency"])),
            ),
            (
                w2,
                Some((false, vec!["status", "ts", "service", "msg", "latency"])),
            ),
            (
                "select(.a) | select(.b) | .a",
                Some((false, vec!["a", "b"])),
            ),
            ("select(.a == 1)", Some((true, vec!["a"]))),
            ("select(.a) | .", Some((true, vec!["a"]))),
            ("1e1000", Some((false, vec![]))),
            (".a | {b: ., c: .x}", Some((false, vec!["a"]))),
            // The input itself is used as a value.
            (".", Some((true, vec![]))),
            ("{a: .}", None),
            (". == 1", None),
            ("select(.)", None),
            ("select(.a) | {b: .}", None),
            (".a + .", None),
        ] {
            let mut fields = Vec::new();
            let through = Fast::compile(program).unwrap().reads(&mut fields);
            let got = through.map(|t| (t, names(&fields)));
            let expected = expected
                .map(|(t, f)| (t, f.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>()));
            assert_eq!(got, expected, "{program}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// A program that reads only some fields gives the same outputs and errors, in jaq and
        /// directly, on a payload decoded with only those fields.
        #[test]
        fn programs_agree_on_the_fields_they_read(json in object(), which in 0..IN.len()) {
            let program = IN[which];
            let mut fields = Vec::new();
            let Some(false) = Fast::compile(program).unwrap().reads(&mut fields) else {
                return Ok(());
            };
            let payload = bytes::Bytes::from(json.clone());
            let full = decode(Codec::Json, &payload).unwrap();
            let some = crate::codec::decode_fields(&payload, &fields).unwrap();
            prop_assert_eq!(jaq(program, &some), jaq(program, &full), "{} on {}", program, json);
            let fast = Fast::compile(program).unwrap();
            let direct = |v: &Val| fast.run(v).map(|out| out.iter().map(text).collect::<Vec<_>>());
            prop_assert_eq!(direct(&some), direct(&full), "{} on {}", program, json);
        }

        /// Wherever the direct form answers, it answers as jaq does: the same outputs, written
        /// the same way.
        #[test]
        fn the_direct_form_agrees_with_jaq(json in object(), which in 0..IN.len()) {
            let program = IN[which];
            let input = decode(Codec::Json, &bytes::Bytes::from(json.clone())).unwrap();
            let fast = Fast::compile(program).unwrap();
            if let Ok(out) = fast.run(&input) {
                let direct: Vec<String> = out.iter().map(text).collect();
                prop_assert_eq!(Ok(direct), jaq(program, &input), "{} on {}", program, json);
            }
        }
    }
}
