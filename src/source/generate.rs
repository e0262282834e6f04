//! The `generate` input: synthetic events from a jq template, at a rate, for a count.

use std::time::{Duration, Instant};

use bytes::Bytes;
use jaq_json::{Num, Val};
use marked_yaml::Spanned;
use serde::Deserialize;

use super::{BuiltInput, InputSpec};
use super::{SourceContext, SourceError};
use crate::codec::CodecConfig;
use crate::codec::write_json;
use crate::config::Build;
use crate::config::Validator;
use crate::delivery::{Cause, ErrorKind};
use crate::event::{Event, Position};
use crate::transform::{CompileErrors, check_program, compile_or_describe};

/// Generates events from a jq template evaluated with the sequence number (0, 1, 2, ...) as
/// input: `template: '{id: ., msg: "event \(.)"}'`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// jq program producing each event's payload from its sequence number.
    #[schemars(with = "String")]
    pub template: Spanned<String>,
    /// How many events to generate; without it, generate until shutdown.
    #[serde(default)]
    pub count: Option<u64>,
    /// Events per second; without it, as fast as the pipeline takes them.
    #[serde(default)]
    pub rate: Option<f64>,
}

impl GenerateConfig {
    /// Checks values serde cannot.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) {
        check_program(&self.template, v);
        if let Some(rate) = self.rate
            && !(rate > 0.0 && rate.is_finite())
        {
            v.error_at(
                &format!("{path}.rate"),
                "rate must be a positive number of events per second",
            );
        }
    }
}

/// Why the template made no event.
#[derive(Debug, thiserror::Error)]
enum GenerateError {
    /// The template does not compile (checked when the file was loaded).
    #[error(transparent)]
    Compile(#[from] CompileErrors),
    /// The template failed on an event's sequence number.
    #[error("template failed on event {seq}: {source}")]
    Failed {
        /// The sequence number.
        seq: u64,
        /// The template's error.
        source: crate::transform::program::RunError,
    },
    /// The template gave no value.
    #[error("template produced no value for event {seq}")]
    NoValue {
        /// The sequence number.
        seq: u64,
    },
    /// The template's value is not JSON.
    #[error("template result for event {seq}: {source}")]
    NotJson {
        /// The sequence number.
        seq: u64,
        /// Why.
        source: crate::codec::json::JsonError,
    },
    /// The thread running the template failed.
    #[error(transparent)]
    Thread(#[from] tokio::task::JoinError),
}

impl From<GenerateError> for SourceError {
    fn from(error: GenerateError) -> SourceError {
        let kind = match &error {
            // The template gives the same answer for the same number every time.
            GenerateError::Failed { .. }
            | GenerateError::NoValue { .. }
            | GenerateError::NotJson { .. } => ErrorKind::Refused(Cause::Event),
            GenerateError::Compile(_) | GenerateError::Thread(_) => ErrorKind::Fatal,
        };
        SourceError::Input {
            input: "generate",
            kind,
            source: Box::new(error),
        }
    }
}

fn generate(
    config: &GenerateConfig,
    ctx: &SourceContext,
    runtime: &tokio::runtime::Handle,
) -> Result<(), SourceError> {
    let program = compile_or_describe(&config.template).map_err(GenerateError::from)?;
    let headers = Vec::new();
    let start = Instant::now();
    let mut seq: u64 = 0;
    let done = |seq: u64| config.count.is_some_and(|c| seq >= c);
    while !done(seq) && !ctx.shutdown.is_cancelled() {
        let mut batch = ctx.intake.batch();
        while !ctx.intake.is_full(&batch) && !done(seq) {
            if let Some(rate) = config.rate {
                let due = start + Duration::from_secs_f64(seq as f64 / rate);
                let now = Instant::now();
                if due > now {
                    if !batch.is_empty() {
                        break;
                    }
                    std::thread::sleep((due - now).min(Duration::from_millis(100)));
                    if ctx.shutdown.is_cancelled() {
                        return Ok(());
                    }
                    continue;
                }
            }
            let position = Position::Generated { seq };
            let meta = crate::transform::program::Meta {
                key: None,
                headers: &headers,
                timestamp: None,
                source: &position,
            };
            let input = Val::Num(Num::from_integral(seq as i64));
            let value = program
                .first(input, &meta)
                .map_err(|source| GenerateError::Failed { seq, source })?
                .ok_or(GenerateError::NoValue { seq })?;
            let mut payload = Vec::with_capacity(128);
            write_json(&value, &mut payload, 0)
                .map_err(|source| GenerateError::NotJson { seq, source })?;
            let mut event = Event::new(Bytes::from(payload), position, ctx.counted.ack(0, 0));
            event.timestamp = Some(crate::event::now_millis());
            batch.push(event);
            seq += 1;
        }
        if !ctx.intake.send_blocking(batch, runtime) {
            return Ok(());
        }
    }
    Ok(())
}

impl InputSpec for GenerateConfig {
    const KIND: &'static str = "generate";
    type Built = GenerateConfig;

    fn codec(&self) -> CodecConfig {
        CodecConfig::Json
    }

    fn build(&self, b: Build<'_, '_>) -> Option<GenerateConfig> {
        let Build { path, v, .. } = b;
        self.validate(path, v);
        Some(self.clone())
    }
}

impl BuiltInput for GenerateConfig {
    /// Generates until the count is reached or shutdown. Runs the template on its own thread.
    async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        let config = &self;
        let config = config.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || generate(&config, &ctx, &runtime))
            .await
            .map_err(GenerateError::from)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_failing_on_an_event_is_that_event_refused() {
        let program = compile_or_describe("if . == 2 then error(\"two\") else . end").unwrap();
        let (headers, position) = (Vec::new(), Position::Generated { seq: 2 });
        let meta = crate::transform::program::Meta {
            key: None,
            headers: &headers,
            timestamp: None,
            source: &position,
        };
        let input = Val::Num(Num::from_integral(2));
        let failed = program.first(input, &meta).unwrap_err();
        let error = SourceError::from(GenerateError::Failed {
            seq: 2,
            source: failed,
        });
        assert_eq!(error.kind(), ErrorKind::Refused(Cause::Event));
        assert!(
            error
                .to_string()
                .starts_with("generate input: template failed on event 2: "),
            "{error}"
        );
        let broken = compile_or_describe("{").map_err(GenerateError::from);
        let error = SourceError::from(broken.map(|_| ()).unwrap_err());
        assert_eq!(error.kind(), ErrorKind::Fatal);
    }
}
