//! Pipeline files: schema, environment interpolation, loading and validation (all errors at once).

pub mod vars;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use marked_yaml::{LoaderOptions, Node, Spanned};
use serde::{Deserialize, Deserializer};

use crate::sink::OutputConfig;
use crate::source::InputConfig;
use crate::transform::TransformConfig;

/// One pipeline file: read from one input, transform, write to one output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Name used in logs, metrics and dead-letter headers. Defaults to the file name without
    /// its extension.
    #[serde(default)]
    pub name: Option<String>,
    /// Where events come from: exactly one input kind.
    pub input: InputConfig,
    /// Steps applied in order to every event. Empty means events pass through unchanged.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Where transformed events go: exactly one output kind.
    pub output: OutputConfig,
    /// What happens to an event that cannot be processed (malformed payload, failing transform,
    /// rejected by the output): `drop`, `stop`, or `output: {...}` for a dead-letter output.
    pub errors: ErrorPolicy,
    /// Batching, parallelism and shutdown settings; every field has a default.
    #[serde(default)]
    pub settings: Settings,
}

/// Where failed events go.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ErrorPolicy {
    /// Count and log the event, then acknowledge its input: the event is gone.
    Drop,
    /// Stop the pipeline at the first failed event, without acknowledging it; the process exits
    /// non-zero. With Kafka or JetStream the event is read again on the next start.
    Stop,
    /// Send the original event, with headers saying what failed, to this output (the dead-letter
    /// output). Its input is acknowledged only once the dead letter is delivered.
    Output(Box<OutputConfig>),
}

/// Runtime settings of one pipeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Most events moved between stages at once. Larger batches cost fewer hand-offs per event;
    /// smaller ones lower latency.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Threads that run transforms. Batches are processed in parallel and put back in input
    /// order, so order is kept whatever this is. Default: the number of CPUs.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Most batches between two stages (each edge is a bounded channel): bounds memory.
    #[serde(default = "default_channel_batches")]
    pub channel_batches: usize,
    /// How long a graceful shutdown may take to finish in-flight events, deliver and
    /// acknowledge them, before the process exits anyway.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// Most events one input may turn into (jq fan-out); an input over it fails and follows the
    /// error policy. Guards against programs like `repeat(.)`.
    #[serde(default = "default_max_fanout")]
    pub max_fanout: usize,
    /// Largest event accepted, read or written (`1MiB`, `512KiB`, or a number of bytes). A larger
    /// one fails and follows the error policy (step `limits` when read, `encode` when a
    /// transform makes it).
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: ByteSize,
    /// Most bytes of inputs read and not yet finished (each input's payload plus 256 bytes for
    /// its bookkeeping); reading pauses at this much until events are delivered. Bounds memory
    /// whatever the event sizes.
    #[serde(default = "default_max_in_flight_bytes")]
    pub max_in_flight_bytes: ByteSize,
    /// How the output and the dead-letter output retry deliveries that failed for a passing
    /// reason (broker down, timeout), and when the circuit opens.
    #[serde(default)]
    pub retry: crate::sink::retry::RetryConfig,
}

// Far above any sane fan-out, far below what exhausts memory.
fn default_max_fanout() -> usize {
    10_000
}

// The default largest message of Kafka (message.max.bytes) and NATS (max_payload).
fn default_max_event_bytes() -> ByteSize {
    ByteSize(1024 * 1024)
}

// Far above what the bounded channels hold of ordinary events (4 x 500 x 1 KiB per edge), so it
// only bites when events are large; well inside the Kubernetes manifests' memory limit.
fn default_max_in_flight_bytes() -> ByteSize {
    ByteSize(64 * 1024 * 1024)
}

// 500 events amortise a channel hand-off and a write call without adding noticeable latency.
fn default_batch_size() -> usize {
    500
}

// Four batches per edge keeps every stage busy while bounding memory to a few thousand events.
fn default_channel_batches() -> usize {
    4
}

// Kubernetes' default terminationGracePeriodSeconds is 30 s; stay below it.
fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(25))
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_size: default_batch_size(),
            workers: None,
            channel_batches: default_channel_batches(),
            shutdown_timeout: default_shutdown_timeout(),
            max_fanout: default_max_fanout(),
            max_event_bytes: default_max_event_bytes(),
            max_in_flight_bytes: default_max_in_flight_bytes(),
            retry: Default::default(),
        }
    }
}

impl Settings {
    /// Worker threads to run, resolving the default.
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}

/// A duration written with a unit: `250ms`, `5s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `<number><unit>` with unit one of `ms`, `s`, `m`, `h`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 = number.parse().map_err(|_| {
            format!("invalid duration `{text}`: expected a number then a unit, like `5s`")
        })?;
        let seconds = match unit.trim() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "" => return Err(format!("duration `{text}` needs a unit: ms, s, m or h")),
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}`: use ms, s, m or h"
                ));
            }
        };
        Duration::try_from_secs_f64(seconds)
            .map(HumanDuration)
            .map_err(|_| format!("duration `{text}` is out of range"))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

/// A size in bytes, written as a number of bytes or with a unit: `512KiB`, `1MiB`, `2GiB`, `1MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl ByteSize {
    /// Parses `<number>[unit]`, unit one of `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`,
    /// `MiB`, `GiB` (powers of 1024).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("invalid size `{text}`: expected a number, like `1MiB`"))?;
        let scale: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" => 1000,
            "MB" => 1000 * 1000,
            "GB" => 1000 * 1000 * 1000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` in `{text}`: use B, KB, MB, GB, KiB, MiB or GiB"
                ));
            }
        };
        value
            .checked_mul(scale)
            .and_then(|b| usize::try_from(b).ok())
            .map(ByteSize)
            .ok_or_else(|| format!("size `{text}` is out of range"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => usize::try_from(n)
                .map(ByteSize)
                .map_err(|_| serde::de::Error::custom(format!("size {n} is out of range"))),
            Raw::Text(t) => ByteSize::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Client properties passed through to the client library (librdkafka for Kafka). Values whose
/// name suggests a secret are never shown in logs or `Debug` output.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct ClientOptions(pub std::collections::BTreeMap<String, String>);

/// Whether a property name holds a secret (password, token, private key, client secret).
pub fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key.pem",
        "private",
        "sasl.jaas",
        "credential",
    ]
    .iter()
    .any(|s| name.contains(s))
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                (
                    k,
                    if is_secret(k) {
                        "<redacted>"
                    } else {
                        v.as_str()
                    },
                )
            }))
            .finish()
    }
}

/// A secret string (password, token): never shown in logs or `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A configuration error at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, in the file's terms.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// A validated pipeline, ready to build.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The file it came from.
    pub file: PathBuf,
    /// The pipeline's name (from the file, or the file stem).
    pub name: String,
    /// Where the file sets `name`, as a 1-based line and column, if it does.
    pub name_at: Option<(usize, usize)>,
    /// The parsed configuration.
    pub config: PipelineConfig,
}

/// Collects semantic errors with positions in the file while walking a parsed config.
pub struct Validator<'a> {
    root: &'a Node,
    text: &'a vars::Interpolated,
    file: &'a Path,
    /// Errors found so far.
    pub errors: Vec<Diagnostic>,
}

impl<'a> Validator<'a> {
    /// Records an error at the node found by a dotted path (`transforms.2.jq`), or as near to it
    /// as the tree allows.
    pub fn error_at(&mut self, path: &str, message: impl Into<String>) {
        let steps = Self::steps(path);
        self.error_at_steps(&steps, message.into());
    }

    /// Records an error at the value of `key` in the mapping at the dotted `path`: for keys
    /// that contain dots themselves, like librdkafka property names.
    pub fn error_at_key(&mut self, path: &str, key: &str, message: impl Into<String>) {
        let mut steps = Self::steps(path);
        steps.push(yaml::Step::Key(key.to_string()));
        self.error_at_steps(&steps, message.into());
    }

    fn steps(path: &str) -> Vec<yaml::Step> {
        path.split('.')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_or_else(|_| yaml::Step::Key(s.to_string()), yaml::Step::Index)
            })
            .collect()
    }

    fn error_at_steps(&mut self, steps: &[yaml::Step], message: String) {
        let node = yaml::find(self.root, steps);
        let (line, column) = yaml::node_start(node).unwrap_or((1, 1));
        self.push(line, column, message);
    }

    /// Records an error at a position inside a spanned string value: `offset` is a char offset
    /// into the value (for example where a jq parse error is).
    pub fn error_in(&mut self, value: &Spanned<String>, offset: usize, message: impl Into<String>) {
        let (line, column) = yaml::start(value.span()).unwrap_or((1, 1));
        let (line, column) =
            yaml::position_in_scalar(&self.text.text, line, column, value.as_str(), offset);
        self.push(line, column, message.into());
    }

    fn push(&mut self, line: usize, column: usize, message: String) {
        let (line, column) = self.text.original_position(line, column);
        self.errors.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
        });
    }
}

/// Loads and validates one pipeline file, with `${VAR}` taken from the process environment.
pub fn load_file(path: &Path) -> Result<Pipeline, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("cannot read file: {e}"),
        }]
    })?;
    load_str(path, &text, &vars::ProcessEnv)
}

/// Loads and validates every file, returning every error of every file.
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<Pipeline>, Vec<Diagnostic>> {
    let mut pipelines = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load_file(path) {
            Ok(p) => pipelines.push(p),
            Err(e) => errors.extend(e),
        }
    }
    let mut seen = std::collections::HashMap::new();
    for p in &pipelines {
        if let Some(first) = seen.insert(p.name.clone(), p.file.clone()) {
            let (line, column) = p.name_at.unwrap_or((1, 1));
            errors.push(Diagnostic {
                file: p.file.clone(),
                line,
                column,
                message: format!(
                    "pipeline name `{}` is also used by {}",
                    p.name,
                    first.display()
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(pipelines)
    } else {
        Err(errors)
    }
}

/// Loads and validates pipeline text; `path` names it in errors and gives the default name.
pub fn load_str(
    path: &Path,
    text: &str,
    env: &dyn vars::Lookup,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let file = path.to_path_buf();
    let at = |line, column, message| Diagnostic {
        file: file.clone(),
        line,
        column,
        message,
    };
    // A byte order mark is not shown by editors, and the YAML parser takes it for content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let interpolated = vars::interpolate(text, env).map_err(|errs| {
        errs.into_iter()
            .map(|e| at(e.line, e.column, e.message))
            .collect::<Vec<_>>()
    })?;

    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = match yaml::parse(&interpolated.text, options) {
        Ok(root) => root,
        Err(e) => {
            let (line, column, message) = match e {
                yaml::ParseError::Load(e) => load_error(&e),
                yaml::ParseError::At(line, column, message) => (line, column, message),
            };
            let (line, column) = interpolated.original_position(line, column);
            return Err(vec![at(line, column, message)]);
        }
    };

    let yaml::Deserialized {
        value: config,
        errors: tree_errors,
        tree,
    } = yaml::deserialize::<PipelineConfig>(root.clone());
    let mut errors: Vec<Diagnostic> = tree_errors
        .into_iter()
        .map(|e| {
            let (line, column) = interpolated.original_position(e.line, e.column);
            let message = if e.path.is_empty() {
                e.message
            } else {
                format!("{}: {}", e.path, e.message)
            };
            at(line, column, message)
        })
        .collect();

    let name = config
        .as_ref()
        .and_then(|c| c.name.clone())
        .unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "pipeline".into(), |s| s.to_string_lossy().into_owned())
        });

    if config.is_none() {
        // serde stops at the first missing field, and nothing can be removed to get past it:
        // the others are reported where it reported that one.
        let (line, column) = match errors
            .iter()
            .find(|e| e.message.starts_with("missing field `"))
        {
            Some(e) => (e.line, e.column),
            None => yaml::node_start(&root)
                .map_or((1, 1), |(l, c)| interpolated.original_position(l, c)),
        };
        for key in ["input", "output", "errors"] {
            let absent = root.as_mapping().is_some_and(|m| m.get(key).is_none());
            let missing = format!("missing field `{key}`");
            if absent && !errors.iter().any(|e| e.message.contains(&missing)) {
                errors.push(at(line, column, missing));
            }
        }
    }
    let name_at = tree
        .as_mapping()
        .and_then(|m| m.get("name"))
        .and_then(yaml::node_start)
        .map(|(line, column)| interpolated.original_position(line, column));
    if let Some(config) = &config {
        let mut v = Validator {
            root: &tree,
            text: &interpolated,
            file: path,
            errors: Vec::new(),
        };
        // Validating compiles every jq program, which recurses as deeply as the program nests
        // (up to `nesting::MAX_DEPTH`): on a thread with a stack known to be enough, whatever
        // the caller's.
        let validated = yaml::on_stack("validate", crate::transform::nesting::STACK, || {
            config.validate(&mut v);
            v.errors
        });
        match validated {
            Ok(Ok(found)) => errors.extend(found),
            Ok(Err(_panic)) => errors.push(at(1, 1, "validating the file failed".into())),
            Err(e) => errors.push(at(1, 1, format!("cannot start validating: {e}"))),
        }
    }
    errors.sort_by_key(|d| (d.line, d.column));
    match config {
        Some(config) if errors.is_empty() => Ok(Pipeline {
            file,
            name,
            name_at,
            config,
        }),
        _ => Err(errors),
    }
}

fn load_error(e: &marked_yaml::LoadError) -> (usize, usize, String) {
    use marked_yaml::LoadError::*;
    let mark = match e {
        TopLevelMustBeMapping(m)
        | TopLevelMustBeSequence(m)
        | UnexpectedAnchor(m)
        | MappingKeyMustBeScalar(m)
        | UnexpectedTag(m)
        | ScanError(m, _) => Some(*m),
        DuplicateKey(inner) => inner.key.span().start().copied(),
    };
    let message = match e {
        TopLevelMustBeMapping(_) => {
            "a pipeline file must be a mapping (input:, transforms:, output:, errors:)".into()
        }
        UnexpectedAnchor(_) => {
            "YAML anchors and aliases are not supported in pipeline files".into()
        }
        UnexpectedTag(_) => "YAML tags are not supported in pipeline files".into(),
        MappingKeyMustBeScalar(_) => "mapping keys must be plain strings".into(),
        DuplicateKey(inner) => format!("duplicate key `{}`", inner.key.as_str()),
        // `info()`: the full message repeats the position, in the interpolated text.
        ScanError(_, s) => format!("invalid YAML: {}", s.info()),
        other => other.to_string(),
    };
    let (line, column) = mark.map_or((1, 1), |m| (m.line().max(1), m.column().max(1)));
    (line, column, message)
}

impl PipelineConfig {
    fn validate(&self, v: &mut Validator<'_>) {
        if let Some(name) = &self.name {
            if name.trim().is_empty() {
                v.error_at("name", "name must not be empty");
            } else if name.chars().any(char::is_control) {
                v.error_at(
                    "name",
                    "name must not contain line breaks or other control characters",
                );
            }
        }
        self.input.validate("input", v);
        for (i, t) in self.transforms.iter().enumerate() {
            t.validate(&format!("transforms.{i}"), v);
        }
        self.output.validate("output", v);
        if let ErrorPolicy::Output(out) = &self.errors {
            out.validate("errors.output", v);
        }
        let s = &self.settings;
        if s.batch_size == 0 {
            v.error_at("settings.batch_size", "batch_size must be at least 1");
        }
        if s.channel_batches == 0 {
            v.error_at(
                "settings.channel_batches",
                "channel_batches must be at least 1",
            );
        }
        if s.max_fanout == 0 {
            v.error_at("settings.max_fanout", "max_fanout must be at least 1");
        }
        if s.workers == Some(0) {
            v.error_at("settings.workers", "workers must be at least 1");
        }
        if s.max_event_bytes.0 == 0 {
            v.error_at(
                "settings.max_event_bytes",
                "max_event_bytes must be more than 0",
            );
        }
        if s.max_in_flight_bytes.0 < s.max_event_bytes.0 {
            v.error_at(
                "settings.max_in_flight_bytes",
                "max_in_flight_bytes must be at least max_event_bytes",
            );
        }
        s.retry.validate("settings.retry", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Pipeline, Vec<Diagnostic>> {
        let env = |name: &str| (name == "TOPIC").then(|| "orders".to_string());
        load_str(Path::new("p.yaml"), text, &env)
    }

    fn messages(errs: &[Diagnostic]) -> Vec<String> {
        errs.iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn minimal_pipeline_loads_with_defaults() {
        let p = load("input:\n  stdin: {}\noutput:\n  stdout: {}\nerrors: drop\n").unwrap();
        assert_eq!(p.name, "p");
        assert!(p.config.transforms.is_empty());
        assert!(matches!(p.config.errors, ErrorPolicy::Drop));
        assert_eq!(p.config.settings.batch_size, 500);
    }

    #[test]
    fn unknown_key_and_bad_jq_are_both_reported() {
        let text = "\
name: two-mistakes
input:
  stdin:
    codec: json
    colour: blue
transforms:
  - jq: '.a | {b: .c'
output:
  stdout: {}
errors: drop
";
        let errs = load(text).unwrap_err();
        let got = messages(&errs);
        assert_eq!(errs.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("5:5: input.stdin.colour: unknown field `colour`"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("7:21: jq syntax error: expected closing brace"),
            "{got:?}"
        );
        assert!(got[1].contains("jq"), "{got:?}");
    }

    #[test]
    fn several_errors_in_one_component_and_across_components() {
        let text = "\
input:
  generate:
    count: many
    templat: '{}'
transforms:
  - jq: .
  - nosuch: .
  - filter:
      condition: 'true'
      extra: 1
output:
  stdout:
    format: fancy
errors: sideways
settings:
  batch_size: 0
";
        let errs = load(text).unwrap_err();
        let got = messages(&errs);
        let expect = [
            "3:12: input.generate.count",
            "4:5: input.generate.templat: unknown field",
            "7:5: transforms[1]: unknown kind `nosuch`",
            "10:7: transforms[2].filter.extra: unknown field",
            "13:13: output.stdout.format: unknown kind `fancy`",
            "14:9: errors: unknown kind `sideways`",
        ];
        for e in expect {
            assert!(
                got.iter().any(|g| g.starts_with(e)),
                "missing {e:?} in {got:#?}"
            );
        }
    }

    #[test]
    fn env_errors_point_at_the_variable() {
        let text = "input:\n  kafka:\n    brokers: ${BROKERS}\n    topics: [\"${TOPIC}\"]\n    group_id: ${GROUP:?set GROUP}\noutput:\n  stdout: {}\nerrors: drop\n";
        let errs = load(text).unwrap_err();
        let got = messages(&errs);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("3:14: environment variable `BROKERS` is not set"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("5:15: environment variable `GROUP` is required: set GROUP"),
            "{got:?}"
        );
    }

    #[test]
    fn positions_after_substitution_are_original() {
        let text = "input:\n  kafka: {brokers: \"${TOPIC}-very-long-value:9092\", topics: [a], group_id: g, nope: 1}\noutput:\n  stdout: {}\nerrors: drop\n";
        let errs = load(text).unwrap_err();
        let got = messages(&errs);
        assert_eq!(got.len(), 1, "{got:?}");
        // `nope` is at column 75 of the original line, whatever ${TOPIC} expanded to.
        let col = text.lines().nth(1).unwrap().find("nope").unwrap() + 1;
        assert!(
            got[0].starts_with(&format!("2:{col}: input.kafka.nope")),
            "{got:?}"
        );
    }

    #[test]
    fn jq_errors_in_block_scalars_point_into_the_block() {
        let text = "input:\n  stdin: {}\ntransforms:\n  - jq: |\n      {a: .a,\n       b: (.b | ]}\noutput:\n  stdout: {}\nerrors: drop\n";
        let errs = load(text).unwrap_err();
        let got = messages(&errs);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("6:"), "{got:?}");
    }

    #[test]
    fn yaml_syntax_error_has_position() {
        let errs = load("input:\n  stdin: {\noutput: x\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.starts_with("invalid YAML"), "{:?}", errs);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut o = ClientOptions::default();
        o.0.insert("sasl.password".into(), "hunter2".into());
        o.0.insert("sasl.username".into(), "app".into());
        let shown = format!("{o:?} {:?}", Secret("tok".into()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok\""),
            "{shown}"
        );
        assert!(shown.contains("app"));
    }

    #[test]
    fn durations() {
        assert_eq!(
            HumanDuration::parse("250ms").unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!(
            HumanDuration::parse("1.5s").unwrap().0,
            Duration::from_millis(1500)
        );
        assert_eq!(
            HumanDuration::parse("2m").unwrap().0,
            Duration::from_secs(120)
        );
        assert!(
            HumanDuration::parse("5")
                .unwrap_err()
                .contains("needs a unit")
        );
        assert!(
            HumanDuration::parse("5 parsecs")
                .unwrap_err()
                .contains("unknown duration unit")
        );
    }

    #[test]
    fn sizes() {
        let bytes = |t: &str| ByteSize::parse(t).map(|b| b.0);
        assert_eq!(bytes("1024"), Ok(1024));
        assert_eq!(bytes("512KiB"), Ok(512 * 1024));
        assert_eq!(bytes("1MiB"), Ok(1 << 20));
        assert_eq!(bytes("2 MB"), Ok(2_000_000));
        assert!(bytes("1.5MiB").unwrap_err().contains("unknown size unit"));
        assert!(bytes("MiB").unwrap_err().contains("invalid size"));
        assert!(
            bytes("99999999999GiB")
                .unwrap_err()
                .contains("out of range")
        );
        let p = load_str(
            Path::new("s.yaml"),
            "input: {stdin: {}}\noutput: {stdout: {}}\nerrors: drop\nsettings: {max_event_bytes: 100, max_in_flight_bytes: 10}\n",
            &|_: &str| None,
        )
        .unwrap_err();
        assert!(
            p.iter()
                .any(|d| d.message.contains("max_in_flight_bytes must be at least")),
            "{p:?}"
        );
    }
}
