//! The input's `codec` and the output's `format` as checked when a pipeline file loads: the
//! settings, every problem at its key, and the schema files read and compiled.

use std::path::PathBuf;
use std::sync::Arc;

use prost_reflect::MessageDescriptor;
use serde::Deserialize;

use super::avro::AvroSchema;
use super::protobuf::{self, ProtoSchema};
use super::{Codec, CodecConfig};
use crate::client::registry::RegistryConfig;
use crate::config::Validator;

/// `format` of an output: how results are written.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FormatConfig {
    /// JSON (or, after a `raw` input, strings as they are).
    #[default]
    Json,
    /// Avro, with the schema from a file or the Schema Registry.
    Avro(AvroFormatConfig),
    /// Protobuf, with the schema from a file or the Schema Registry.
    Protobuf(ProtobufFormatConfig),
}

/// `format: {avro: ...}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvroFormatConfig {
    /// The Schema Registry: payloads are written in its wire format, with the id of the
    /// schema under `subject`.
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// The subject whose schema is used. Default: the output's topic or subject with `-value`
    /// (the topic-name strategy).
    #[serde(default)]
    pub subject: Option<String>,
    /// An Avro schema file (`.avsc`). Without `registry`, bare Avro bodies are written with it;
    /// with `registry` it must be registered under `subject` (or `auto_register` set). Without
    /// it, the subject's latest version is used.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
    /// Register `schema_file` under `subject` when it is not there yet.
    #[serde(default)]
    pub auto_register: bool,
}

/// `format: {protobuf: ...}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtobufFormatConfig {
    /// The Schema Registry: payloads are written in its wire format, with the id of the
    /// schema under `subject` and the message type's indexes.
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// The subject whose schema is used. Default: the output's topic or subject with `-value`.
    #[serde(default)]
    pub subject: Option<String>,
    /// A `.proto` file (with `registry`, it must import nothing but the well-known types), or
    /// without `registry` also a compiled descriptor set. Without it, the subject's latest
    /// version is used.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
    /// Where a `.proto` file's imports are looked up, besides its own directory.
    #[serde(default)]
    pub include_paths: Vec<PathBuf>,
    /// The message type written (`package.Message`). Default with `registry`: the schema's
    /// first message type; required without it.
    #[serde(default)]
    pub message: Option<String>,
    /// Register `schema_file` under `subject` when it is not there yet.
    #[serde(default)]
    pub auto_register: bool,
}

/// A registry as checked at load: its settings and TLS.
#[derive(Debug, Clone)]
pub(super) struct Reach {
    pub(super) config: RegistryConfig,
    pub(super) tls: rustls::ClientConfig,
}

/// The input side, checked.
#[derive(Debug, Clone)]
pub(super) enum InputPlan {
    Plain(Codec),
    Avro {
        file: Option<Arc<AvroSchema>>,
        registry: Option<Reach>,
    },
    Protobuf {
        message: Option<MessageDescriptor>,
        registry: Option<Reach>,
    },
}

/// The output side, checked.
#[derive(Debug, Clone)]
pub(super) enum OutputPlan {
    Plain(Codec),
    Avro {
        file: Option<(Arc<AvroSchema>, String)>,
        registry: Option<(Reach, String)>,
        auto_register: bool,
    },
    Protobuf {
        file: Option<(ProtoSchema, Option<String>)>,
        message: Option<String>,
        registry: Option<(Reach, String)>,
        auto_register: bool,
    },
}

pub(super) fn reach(config: &RegistryConfig, path: &str, v: &mut Validator<'_>) -> Option<Reach> {
    config.validate(path, v).map(|tls| Reach {
        config: config.clone(),
        tls,
    })
}

pub(super) fn read(path: &std::path::Path, at: &str, v: &mut Validator<'_>) -> Option<String> {
    std::fs::read_to_string(path)
        .map_err(|e| v.error_at(at, format!("{}: {e}", path.display())))
        .ok()
}

pub(super) fn input_plan(
    codec: &CodecConfig,
    path: &str,
    v: &mut Validator<'_>,
) -> Option<InputPlan> {
    match codec {
        CodecConfig::Json | CodecConfig::Raw => Some(InputPlan::Plain(codec.plain())),
        CodecConfig::Avro(c) => {
            let at = format!("{path}.avro");
            if c.registry.is_none() && c.schema_file.is_none() {
                v.error_at(&at, "avro needs a `registry`, a `schema_file`, or both");
                return None;
            }
            let registry = match &c.registry {
                Some(r) => Some(reach(r, &format!("{at}.registry"), v)?),
                None => None,
            };
            let file = match &c.schema_file {
                Some(file) => {
                    let at = format!("{at}.schema_file");
                    let text = read(file, &at, v)?;
                    match AvroSchema::parse(&text, &[]) {
                        Ok(s) => Some(Arc::new(s)),
                        Err(e) => {
                            v.error_at(&at, format!("{}: {e}", file.display()));
                            return None;
                        }
                    }
                }
                None => None,
            };
            Some(InputPlan::Avro { file, registry })
        }
        CodecConfig::Protobuf(c) => {
            let at = format!("{path}.protobuf");
            let registry = match (&c.registry, &c.schema_file) {
                (Some(r), None) => Some(reach(r, &format!("{at}.registry"), v)?),
                (None, Some(_)) => None,
                _ => {
                    v.error_at(&at, "protobuf needs either a `registry` or a `schema_file`");
                    return None;
                }
            };
            let message = match &c.schema_file {
                Some(file) => {
                    let schema = protobuf::load(file, &c.include_paths)
                        .map_err(|e| v.error_at(&format!("{at}.schema_file"), e))
                        .ok()?;
                    let Some(name) = &c.message else {
                        v.error_at(
                            &at,
                            "with `schema_file`, `message` names the payloads' message type",
                        );
                        return None;
                    };
                    Some(
                        pick_message(&schema, Some(name))
                            .map_err(|e| v.error_at(&format!("{at}.message"), e))
                            .ok()?,
                    )
                }
                None => None,
            };
            Some(InputPlan::Protobuf { message, registry })
        }
    }
}

pub(super) fn output_plan(
    format: &FormatConfig,
    path: &str,
    destination: Option<&str>,
    v: &mut Validator<'_>,
) -> Option<OutputPlan> {
    let subject = |given: &Option<String>, at: &str, v: &mut Validator<'_>| match (
        given,
        destination,
    ) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(d)) => Some(format!("{d}-value")),
        (None, None) => {
            v.error_at(at, "this output has no topic or subject to name the schema's subject by: set `subject`");
            None
        }
    };
    match format {
        FormatConfig::Json => Some(OutputPlan::Plain(Codec::Json)),
        FormatConfig::Avro(c) => {
            let at = format!("{path}.avro");
            let registry = match &c.registry {
                Some(r) => Some((
                    reach(r, &format!("{at}.registry"), v)?,
                    subject(&c.subject, &at, v)?,
                )),
                None => None,
            };
            let file = match &c.schema_file {
                Some(file) => {
                    let at = format!("{at}.schema_file");
                    let text = read(file, &at, v)?;
                    match AvroSchema::parse(&text, &[]) {
                        Ok(s) => Some((Arc::new(s), text)),
                        Err(e) => {
                            v.error_at(&at, format!("{}: {e}", file.display()));
                            return None;
                        }
                    }
                }
                None if registry.is_none() => {
                    v.error_at(&at, "avro needs a `registry`, a `schema_file`, or both");
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
        FormatConfig::Protobuf(c) => proto_output_plan(c, path, subject, v),
    }
}

/// The message type `name` of `schema`, or its file's first one when `name` is None (a
/// descriptor set has no file of its own: it needs `name`).
pub(super) fn pick_message(
    schema: &ProtoSchema,
    name: Option<&str>,
) -> Result<MessageDescriptor, String> {
    let found = match name {
        Some(name) => schema.message(name),
        None => schema.message_at(&[0]),
    };
    found.ok_or_else(|| match name {
        Some(name) => format!(
            "no message type `{name}` in the schema (it has {})",
            schema.message_names().join(", ")
        ),
        None if schema.message_names().is_empty() => "the schema has no message type".into(),
        None => format!(
            "name the message type with `message` (the schema has {})",
            schema.message_names().join(", ")
        ),
    })
}

/// The `protobuf` format of an output, checked.
fn proto_output_plan(
    c: &ProtobufFormatConfig,
    path: &str,
    subject: impl Fn(&Option<String>, &str, &mut Validator<'_>) -> Option<String>,
    v: &mut Validator<'_>,
) -> Option<OutputPlan> {
    let at = format!("{path}.protobuf");
    let registry = match &c.registry {
        Some(r) => Some((
            reach(r, &format!("{at}.registry"), v)?,
            subject(&c.subject, &at, v)?,
        )),
        None => None,
    };
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
                .map_err(|e| v.error_at(&file_at, e))
                .ok()?;
            if let Err(e) = pick_message(&schema, c.message.as_deref()) {
                v.error_at(&format!("{at}.message"), e);
                return None;
            }
            Some((schema, text))
        }
        None if registry.is_none() => {
            v.error_at(&at, "protobuf needs a `registry`, a `schema_file`, or both");
            return None;
        }
        None => None,
    };
    if registry.is_none() && c.message.is_none() {
        v.error_at(
            &at,
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
