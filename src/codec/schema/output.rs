//! The output's `format` as checked when a pipeline file loads: every problem at its key, the
//! schema's subject named, and the schema file read and compiled.

use super::plan::{OutputPlan, Reach, avro_file, reach, read};
use super::{AvroFormatConfig, FormatConfig, ProtobufFormatConfig};
use crate::client::registry::RegistryConfig;
use crate::codec::Codec;
use crate::codec::protobuf;
use crate::config::Validator;

/// The output's `format` (at `path`) checked; `destination` is the output's topic or subject,
/// which names the schema's subject by default.
pub(crate) fn output_plan(
    format: &FormatConfig,
    path: &str,
    destination: Option<&str>,
    v: &mut Validator<'_>,
) -> Option<OutputPlan> {
    match format {
        FormatConfig::Json => Some(OutputPlan::Plain(Codec::Json)),
        FormatConfig::Avro(c) => avro_output(c, &format!("{path}.avro"), destination, v),
        FormatConfig::Protobuf(c) => proto_output(c, &format!("{path}.protobuf"), destination, v),
    }
}

/// The registry block and the subject of a format at `at`, checked.
fn registry(
    config: &Option<RegistryConfig>,
    subject: &Option<String>,
    at: &str,
    destination: Option<&str>,
    v: &mut Validator<'_>,
) -> Option<Option<(Reach, String)>> {
    let Some(config) = config else {
        return Some(None);
    };
    let reach = reach(config, &format!("{at}.registry"), v)?;
    let subject = match (subject, destination) {
        (Some(s), _) => s.clone(),
        (None, Some(d)) => format!("{d}-value"),
        (None, None) => {
            v.error_at(at, "this output has no topic or subject to name the schema's subject by: set `subject`");
            return None;
        }
    };
    Some(Some((reach, subject)))
}

/// The `avro` format of an output, checked.
fn avro_output(
    c: &AvroFormatConfig,
    at: &str,
    destination: Option<&str>,
    v: &mut Validator<'_>,
) -> Option<OutputPlan> {
    let registry = registry(&c.registry, &c.subject, at, destination, v)?;
    let file = match &c.schema_file {
        Some(file) => Some(avro_file(file, &format!("{at}.schema_file"), v)?),
        None if registry.is_none() => {
            v.error_at(at, "avro needs a `registry`, a `schema_file`, or both");
            return None;
        }
        None => None,
    };
    Some(OutputPlan::Avro {
        file,
        registry,
        auto_register: c.auto_register,
    })
}

/// The `protobuf` format of an output, checked.
fn proto_output(
    c: &ProtobufFormatConfig,
    at: &str,
    destination: Option<&str>,
    v: &mut Validator<'_>,
) -> Option<OutputPlan> {
    let registry = registry(&c.registry, &c.subject, at, destination, v)?;
    let file = match &c.schema_file {
        Some(file) => {
            let file_at = format!("{at}.schema_file");
            let is_proto = file.extension().is_some_and(|e| e == "proto");
            if registry.is_some() && !is_proto {
                v.error_at(&file_at, "with `registry`, the schema is registered as `.proto` text: give a .proto file");
                return None;
            }
            let text = if is_proto {
                Some(read(file, &file_at, v)?)
            } else {
                None
            };
            let schema = protobuf::load(file, &c.include_paths)
                .map_err(|e| v.error_at(&file_at, e.to_string()))
                .ok()?;
            if let Err(e) = schema.pick(c.message.as_deref()) {
                v.error_at(&format!("{at}.message"), e.to_string());
                return None;
            }
            Some((schema, text))
        }
        None if registry.is_none() => {
            v.error_at(at, "protobuf needs a `registry`, a `schema_file`, or both");
            return None;
        }
        None => None,
    };
    if registry.is_none() && c.message.is_none() {
        v.error_at(
            at,
            "without `registry`, `message` names the message type written",
        );
        return None;
    }
    Some(OutputPlan::Protobuf {
        file,
        message: c.message.clone(),
        registry,
        auto_register: c.auto_register,
    })
}
