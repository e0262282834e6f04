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
use crate::event::{Event, Position};
use crate::transform::{check_program, compile_or_describe};

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

fn fail(message: String) -> SourceError {
    SourceError::Read {
        input: "generate",
        message,
    }
}

fn generate(
    config: &GenerateConfig,
    ctx: &SourceContext,
    runtime: &tokio::runtime::Handle,
) -> Result<(), SourceError> {
    let program = compile_or_describe(&config.template).map_err(|e| fail(e.to_string()))?;
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
                .map_err(|e| fail(format!("template failed on event {seq}: {e}")))?
                .ok_or_else(|| fail(format!("template produced no value for event {seq}")))?;
            let mut payload = Vec::with_capacity(128);
            write_json(&value, &mut payload, 0)
                .map_err(|e| fail(format!("template result for event {seq}: {e}")))?;
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
            .map_err(|e| SourceError::Read {
                input: "generate",
                message: e.to_string(),
            })?
    }
}
