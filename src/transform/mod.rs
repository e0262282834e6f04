//! Transforms: the step registry (`TransformConfig`), the record they work on, and the chain.
//!
//! Steps are synchronous and stateless: one record in, zero or more records out. They run on
//! worker threads, on values decoded once per event and encoded once at the end of the chain.

pub mod error;
pub mod fast;
pub mod filter;
pub mod jq;
pub mod nesting;
pub mod program;
pub mod route;
mod step;
pub mod validate;

use std::sync::Arc;

use jaq_json::Val;
use marked_yaml::Spanned;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::config::Validator;
use crate::delivery::{Failure, Step};
use crate::event::Position;
pub use error::{BuildError, ChainError, CompileErrors, TransformError};
#[cfg(test)]
pub(crate) use step::json_record;
pub use step::{Record, Transform};
pub(crate) use step::{check_program, compile_or_describe};

/// One step of a pipeline's `transforms` list.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransformConfig {
    /// Run a jq program on the payload: each output becomes an event (none drops the event,
    /// several fan out). Written as `jq: '<program>'` or `jq: {program: ..., name: ...}`.
    Jq(#[schemars(with = "ProgramSchema")] Spanned<ProgramConfig>),
    /// Keep only events for which a jq condition is true (neither `false` nor `null`).
    /// Written as `filter: '<condition>'` or `filter: {program: ..., name: ...}`.
    Filter(#[schemars(with = "ProgramSchema")] Spanned<ProgramConfig>),
    /// Set the output topic/subject, key, partition, timestamp and headers from jq expressions
    /// on the event.
    Route(#[schemars(with = "route::RouteConfig")] Box<Spanned<route::RouteConfig>>),
    /// Check the payload against a JSON Schema: an event it refuses fails (and follows the
    /// error policy) with its first violations as the reason.
    Validate(validate::ValidateConfig),
}

/// A jq program with an optional step name, as a string or a mapping.
#[derive(Debug, Clone)]
pub struct ProgramConfig {
    /// The jq program.
    pub program: Spanned<String>,
    /// A name for this step in errors, dead-letter headers and metrics.
    pub name: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ProgramConfigFull {
    /// The jq program.
    #[schemars(with = "String")]
    program: Spanned<String>,
    /// A name for this step.
    #[serde(default)]
    name: Option<String>,
}

impl<'de> Deserialize<'de> for ProgramConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ProgramConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a jq program, or a mapping with `program` and optional `name`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ProgramConfig, E> {
                // The span is filled in from the enclosing `Spanned` by `program()`.
                Ok(ProgramConfig {
                    program: Spanned::new(marked_yaml::Span::new_blank(), s.to_string()),
                    name: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ProgramConfig, A::Error> {
                let full =
                    ProgramConfigFull::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ProgramConfig {
                    program: full.program,
                    name: full.name,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// How a jq step is written: the program alone, or a mapping with a name.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ProgramSchema {
    /// The jq program.
    Program(String),
    /// The program and a name for the step.
    Named(ProgramConfigFull),
}

/// The program of a step, with the best span known for it.
fn program(step: &Spanned<ProgramConfig>) -> Spanned<String> {
    if step.program.span().start().is_some() {
        step.program.clone()
    } else {
        Spanned::new(*step.span(), step.program.to_string())
    }
}

impl TransformConfig {
    /// The kind of step, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            TransformConfig::Jq(_) => "jq",
            TransformConfig::Filter(_) => "filter",
            TransformConfig::Route(_) => "route",
            TransformConfig::Validate(_) => "validate",
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            TransformConfig::Jq(p) | TransformConfig::Filter(p) => p.name.as_deref(),
            TransformConfig::Route(r) => r.name.as_deref(),
            TransformConfig::Validate(c) => c.name.as_deref(),
        }
    }

    /// This step as the failing step of an event: shown as `transforms[1] (jq "reshape")`.
    pub fn step(&self, index: usize) -> Step {
        Step::Transform {
            index,
            kind: self.kind(),
            name: self.name().map(Arc::from),
        }
    }

    /// Checks the step, compiling every jq program it holds.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        match self {
            TransformConfig::Jq(p) | TransformConfig::Filter(p) => check_program(&program(p), v),
            TransformConfig::Route(r) => r.validate(&format!("{path}.route"), v),
            TransformConfig::Validate(c) => {
                if let Err(e) = c.compile() {
                    v.error_at(&format!("{path}.validate.schema_file"), e.to_string());
                }
            }
        }
    }

    /// Builds the runtime step (compiling its programs for the calling thread).
    pub fn build(&self, max_fanout: usize) -> Result<Box<dyn Transform>, BuildError> {
        Ok(match self {
            TransformConfig::Jq(p) => {
                Box::new(jq::Jq::new(compile_or_describe(&p.program)?, max_fanout))
            }
            TransformConfig::Filter(p) => {
                Box::new(filter::Filter::new(compile_or_describe(&p.program)?))
            }
            TransformConfig::Route(r) => Box::new(route::Route::new(r)?),
            TransformConfig::Validate(c) => Box::new(validate::Validate::new(c.compile()?)),
        })
    }
}

/// The top-level fields of a JSON payload that `steps` read, when they read no others and never
/// the payload as a whole: decoding may then build only those fields (see
/// [`crate::codec::decode_fields`]) and the chain's outputs and errors are the same. `None` when
/// a step needs the whole payload, or when the chain could pass it on unchanged.
pub fn projection(steps: &[TransformConfig]) -> Option<Vec<Val>> {
    let mut fields = Vec::new();
    for step in steps {
        match step {
            TransformConfig::Jq(p) => {
                // Past a step whose output is not its input, later steps see only derived values.
                if !fast::Fast::compile(&p.program)?.reads(&mut fields)? {
                    return Some(fields);
                }
            }
            TransformConfig::Filter(p) => {
                // The condition's value is used: if that is the payload, all of it matters.
                if fast::Fast::compile(&p.program)?.reads(&mut fields)? {
                    return None;
                }
            }
            TransformConfig::Route(_) | TransformConfig::Validate(_) => return None,
        }
    }
    None
}

/// The steps of one pipeline, built for one worker thread.
pub struct Chain {
    steps: Vec<(Step, Box<dyn Transform>)>,
    max_fanout: usize,
}

impl Chain {
    /// Builds every step.
    pub fn build(configs: &[TransformConfig], max_fanout: usize) -> Result<Chain, ChainError> {
        let steps = configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let step = c.step(i);
                match c.build(max_fanout) {
                    Ok(built) => Ok((step, built)),
                    Err(source) => Err(ChainError { step, source }),
                }
            })
            .collect::<Result<_, ChainError>>()?;
        Ok(Chain { steps, max_fanout })
    }

    /// Runs every step on `record`; the results are appended to `out` (cleared first).
    pub fn run(
        &self,
        record: Record,
        source: &Position,
        out: &mut Vec<Record>,
    ) -> Result<(), Failure> {
        self.run_observed(record, source, out, |_, _| {})
    }

    /// [`Chain::run`], showing `observe` what each step produced (a step after the one that
    /// filtered everything out is not run, nor shown).
    pub fn run_observed(
        &self,
        record: Record,
        source: &Position,
        out: &mut Vec<Record>,
        mut observe: impl FnMut(&Step, &[Record]),
    ) -> Result<(), Failure> {
        out.clear();
        out.push(record);
        let mut next = Vec::new();
        for (step, transform) in &self.steps {
            for r in out.drain(..) {
                transform
                    .apply(r, source, &mut next)
                    .map_err(|e| failed(step, e))?;
                if next.len() > self.max_fanout {
                    let max = self.max_fanout;
                    return Err(failed(step, TransformError::Fanout { max }));
                }
            }
            std::mem::swap(out, &mut next);
            observe(step, out);
            if out.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

/// The failure of an event at `step`: a transform error is always the event's fault.
fn failed(step: &Step, e: TransformError) -> Failure {
    Failure::of_event(step.clone(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(yaml: &str) -> Vec<TransformConfig> {
        let text = format!(
            "input:\n  stdin: {{}}\ntransforms:\n{yaml}output:\n  stdout: {{}}\nerrors: drop\n"
        );
        let no_env = |_: &str| None;
        crate::pipeline::load_str(std::path::Path::new("p.yaml"), &text, &no_env)
            .unwrap()
            .config
            .transforms
    }

    fn projected(yaml: &str) -> Option<Vec<String>> {
        projection(&steps(yaml)).map(|fields| {
            fields
                .iter()
                .map(|f| match f {
                    Val::TStr(s) => String::from_utf8_lossy(s).into_owned(),
                    other => other.to_string(),
                })
                .collect()
        })
    }

    #[test]
    fn the_chain_reads_only_the_fields_its_steps_read_of_the_input() {
        let expect = |fields: &[&str]| Some(fields.iter().map(|f| f.to_string()).collect());
        assert_eq!(projected("  - jq: '{a, b: .c}'\n"), expect(&["a", "c"]));
        // A filter passes the input on: the next step's fields count too.
        assert_eq!(
            projected("  - filter: '.s >= 500'\n  - jq: '{a}'\n  - jq: '.'\n"),
            expect(&["s", "a"])
        );
        assert_eq!(
            projected("  - jq: 'select(.s > 1)'\n  - jq: '.x | {y}'\n"),
            expect(&["s", "x"])
        );
        // Steps after a reshape see its results, not the input.
        assert_eq!(
            projected("  - jq: '{a}'\n  - jq: '.[0]'\n  - route: {destination: .t}\n"),
            expect(&["a"])
        );
        // The input passed on whole, used whole, or read by a program jaq runs.
        for whole in [
            "  - filter: '.a'\n",
            "  - jq: 'select(.a)'\n",
            "  - filter: '.a'\n  - jq: '{b: .}'\n",
            "  - jq: '.a // 1'\n",
            "  - filter: '.a'\n  - jq: '.[0]'\n",
            "  - route: {destination: .t}\n  - jq: '{a}'\n",
        ] {
            assert_eq!(projected(whole), None, "{whole}");
        }
    }
}
