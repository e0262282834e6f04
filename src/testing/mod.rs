//! `sluice test`: runs the test cases of pipeline files through the real decode, transforms,
//! routing, encode and error policy, with the input and the outputs replaced by the cases'
//! lists. Nothing is connected.

pub mod eval;
pub mod expect;
mod find;
pub mod junit;
mod outcome;
mod report;

pub use outcome::{CaseFailure, CaseResult, Outcome, Suite};
pub use report::render;

use std::path::{Path, PathBuf};

use crate::config::yaml::Step;
use crate::config::{Diagnostic, vars};
use crate::context::PipelineContext;
use crate::delivery::AckSender;
use crate::event::Event;
use crate::pipeline::cases::{Expected, TestEvent};
use crate::pipeline::worker::{Processed, Worker, WorkerError, pass_through};
use crate::pipeline::{ErrorPolicy, Pipeline, load_str};
use expect::{Mismatch, Seen};
use find::{Source, file_error, pipeline_files};

/// Whether `path` is a test file (`NAME.test.yaml`) rather than a pipeline file.
pub fn is_test_file(path: &Path) -> bool {
    find::is_test_file(path)
}

/// Checks a test file without running it: its cases are read and validated. Returns how many
/// there are.
pub fn check_test_file(path: &Path) -> Result<usize, Vec<Diagnostic>> {
    find::test_file_cases(path).map(|cases| cases.len())
}

/// Runs the test cases of the pipeline files in `paths` (files, or directories searched
/// recursively). A pipeline file's cases are its `tests:` and those of `NAME.test.yaml` beside
/// it.
pub fn run(paths: &[PathBuf]) -> Outcome {
    let mut outcome = Outcome::default();
    let files = match pipeline_files(paths) {
        Ok(files) => files,
        Err(errors) => {
            outcome.errors = errors;
            return outcome;
        }
    };
    for file in files {
        match run_file(&file) {
            Ok(Some(suite)) => outcome.suites.push(suite),
            Ok(None) => outcome.checked.push(file),
            Err(errors) => outcome.errors.extend(errors),
        }
    }
    outcome
}

/// The cases of one pipeline file; None when it has none, after loading it with the process's
/// environment, so that a broken file without cases is an error too.
fn run_file(file: &Path) -> Result<Option<Suite>, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(file).map_err(|e| vec![file_error(file, e.to_string())])?;
    let mut sources = match find::parse(file, &text) {
        Ok(tree) => find::in_file_cases(file, &tree)?,
        // Reported as loading reports it.
        Err(_) => {
            load_str(file, &text, &vars::ProcessEnv)?;
            Vec::new()
        }
    };
    if let Some(test_file) = find::test_file_of(file) {
        sources.extend(find::test_file_cases(&test_file)?);
    }
    if sources.is_empty() {
        load_str(file, &text, &vars::ProcessEnv)?;
        return Ok(None);
    }
    let mut suite = Suite {
        file: file.to_path_buf(),
        cases: Vec::new(),
    };
    for source in sources {
        suite.cases.push(run_case(file, &text, source)?);
    }
    Ok(Some(suite))
}

/// Loads the pipeline with the case's `env`, runs the case's events through it and checks what
/// came out.
fn run_case(file: &Path, text: &str, source: Source) -> Result<CaseResult, Vec<Diagnostic>> {
    let case = &source.case;
    let lookup = |name: &str| {
        case.env
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    };
    let pipeline = load_str(file, text, &lookup)?;
    let ran = process(&pipeline, &case.input).map_err(|e| vec![file_error(file, e.to_string())])?;
    let mut failures = Vec::new();
    let mut check = |list: &'static str, expected: &Option<Vec<Expected>>, seen: &[Seen<'_>]| {
        let Some(expected) = expected else { return };
        if expected.len() != seen.len() {
            let show = |n: usize| format!("{n} event{}", if n == 1 { "" } else { "s" });
            let actual: Vec<String> = seen
                .iter()
                .map(|s| expect::shown(&s.event.payload))
                .collect();
            failures.push(CaseFailure {
                at: source.at(&[Step::Key(list.into())]),
                what: list.to_string(),
                mismatch: Mismatch {
                    what: format!(
                        "{} expected, {} came out",
                        show(expected.len()),
                        show(seen.len())
                    ),
                    expected: String::new(),
                    actual: actual.join("\n"),
                },
            });
        }
        for (i, (want, have)) in expected.iter().zip(seen).enumerate() {
            for mismatch in expect::check(want, have) {
                failures.push(CaseFailure {
                    at: source.at(&[Step::Key(list.into()), Step::Index(i)]),
                    what: format!("{list}[{i}]"),
                    mismatch,
                });
            }
        }
    };
    check("output", &case.output, &ran.seen_outputs());
    check("dead_letters", &case.dead_letters, &ran.seen_dead_letters());
    if let Some(want) = case.filtered
        && want != ran.filtered as u64
    {
        failures.push(CaseFailure {
            at: source.at(&[Step::Key("filtered".into())]),
            what: "filtered".into(),
            mismatch: Mismatch {
                what: "filtered count differs".into(),
                expected: want.to_string(),
                actual: ran.filtered.to_string(),
            },
        });
    }
    Ok(CaseResult {
        name: case.name.clone(),
        at: source.at(&[]),
        failures,
    })
}

/// What a case's events came to.
struct Ran {
    outputs: Vec<Event>,
    /// Each failed input as the error policy got it (a dead letter carries the headers saying
    /// what failed), with the step and reason.
    dead_letters: Vec<(Event, String, String)>,
    filtered: usize,
}

impl Ran {
    fn seen_outputs(&self) -> Vec<Seen<'_>> {
        self.outputs
            .iter()
            .map(|event| Seen {
                event,
                step: None,
                reason: None,
            })
            .collect()
    }

    fn seen_dead_letters(&self) -> Vec<Seen<'_>> {
        self.dead_letters
            .iter()
            .map(|(event, step, reason)| Seen {
                event,
                step: Some(step.clone()),
                reason: Some(reason.clone()),
            })
            .collect()
    }
}

/// Why a case's events could not be run: an error of its pipeline file, not a failed case.
#[derive(Debug, thiserror::Error)]
enum CaseError {
    /// The transform stage could not be made.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// A `payload` could not be written as JSON.
    #[error(transparent)]
    Payload(#[from] serde_json::Error),
    /// A `payload_base64` is not base64.
    #[error("input[{index}].payload_base64: {source}")]
    Base64 {
        /// The event's place in the case's `input`.
        index: usize,
        /// What is wrong.
        source: base64::DecodeError,
    },
}

/// Runs `input` through the pipeline's transform stage, as the runtime does.
fn process(pipeline: &Pipeline, input: &[TestEvent]) -> Result<Ran, CaseError> {
    let config = &pipeline.config;
    let acks = PipelineContext::new(&pipeline.name, usize::MAX).ack_counter();
    let events = input
        .iter()
        .enumerate()
        .map(|(i, e)| event(e, i, &acks))
        .collect::<Result<Vec<_>, _>>()?;
    let stops = matches!(config.errors, ErrorPolicy::Stop);
    let payloads = &pipeline.components.payloads;
    let done: Processed = if config.transforms.is_empty() && !payloads.converts() {
        let codec = config.input.codec().plain();
        pass_through(events, config.settings.max_event_bytes.0, stops, codec)
    } else {
        Worker::new(config, payloads)?.process(events)
    };
    let dead_letters = done
        .failures
        .into_iter()
        .map(|failed| {
            let (step, reason) = (
                failed.failure.step.to_string(),
                failed.failure.reason.clone(),
            );
            let event = match config.errors {
                ErrorPolicy::Output(_) => crate::policy::dead_letter_of(failed, &pipeline.name),
                _ => failed.event,
            };
            (event, step, reason)
        })
        .collect();
    Ok(Ran {
        outputs: done.outputs,
        dead_letters,
        filtered: done.filtered.len(),
    })
}

/// A test event as the input would have read it.
fn event(e: &TestEvent, index: usize, acks: &AckSender) -> Result<Event, CaseError> {
    use base64::Engine;
    let payload = match (&e.payload, &e.payload_text, &e.payload_base64) {
        (Some(json), _, _) => serde_json::to_vec(json)?,
        (_, Some(text), _) => text.clone().into_bytes(),
        (_, _, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|source| CaseError::Base64 { index, source })?,
        _ => Vec::new(),
    };
    let position = expect::position(e.source.as_ref(), index);
    let mut event = Event::new(payload.into(), position, acks.ack(0, index as u64));
    event.key = e.key.clone().map(bytes::Bytes::from);
    event.headers = e
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), bytes::Bytes::from(v.clone())))
        .collect();
    event.timestamp = e.timestamp;
    Ok(event)
}
