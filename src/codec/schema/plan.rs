//! The input's `codec` and the output's `format` as checked when a pipeline file loads: every
//! problem at its key, and the schema files read and compiled. The output's are in
//! [`super::output`].

use std::sync::Arc;

use prost_reflect::MessageDescriptor;

use super::{AvroCodecConfig, ProtobufCodecConfig};
use crate::client::registry::RegistryConfig;
use crate::codec::avro::AvroSchema;
use crate::codec::protobuf::{self, ProtoSchema};
use crate::codec::{Codec, CodecConfig};
use crate::config::Validator;

/// A registry as checked at load: its settings and TLS.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    pub(crate) config: RegistryConfig,
    pub(crate) tls: rustls::ClientConfig,
}

/// The input side, checked.
#[derive(Debug, Clone)]
pub(crate) enum InputPlan {
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
pub(crate) enum OutputPlan {
    Plain(Codec),
    Avro {
        /// The schema file, parsed, and its text.
        file: Option<(Arc<AvroSchema>, String)>,
        /// The registry, and the subject.
        registry: Option<(Reach, String)>,
        auto_register: bool,
    },
    Protobuf {
        /// The schema file, compiled, and its text when it is a `.proto` file.
        file: Option<(ProtoSchema, Option<String>)>,
        message: Option<String>,
        /// The registry, and the subject.
        registry: Option<(Reach, String)>,
        auto_register: bool,
    },
}

/// The registry block at `path`, checked.
pub(super) fn reach(config: &RegistryConfig, path: &str, v: &mut Validator<'_>) -> Option<Reach> {
    config.validate(path, v).map(|tls| Reach {
        config: config.clone(),
        tls,
    })
}

/// The text of the file `path`, given at `at`.
pub(super) fn read(path: &std::path::Path, at: &str, v: &mut Validator<'_>) -> Option<String> {
    std::fs::read_to_string(path)
        .map_err(|e| v.error_at(at, format!("{}: {e}", path.display())))
        .ok()
}

/// The Avro schema file `path`, given at `at`, parsed; and its text.
pub(super) fn avro_file(
    path: &std::path::Path,
    at: &str,
    v: &mut Validator<'_>,
) -> Option<(Arc<AvroSchema>, String)> {
    let text = read(path, at, v)?;
    match AvroSchema::parse(&text, &[]) {
        Ok(s) => Some((Arc::new(s), text)),
        Err(e) => {
            v.error_at(at, format!("{}: {e}", path.display()));
            None
        }
    }
}

/// The input's `codec` (at `path`), checked.
pub(crate) fn input_plan(
    codec: &CodecConfig,
    path: &str,
    v: &mut Validator<'_>,
) -> Option<InputPlan> {
    match codec {
        CodecConfig::Json | CodecConfig::Raw => Some(InputPlan::Plain(codec.plain())),
        CodecConfig::Avro(c) => avro_input(c, &format!("{path}.avro"), v),
        CodecConfig::Protobuf(c) => proto_input(c, &format!("{path}.protobuf"), v),
    }
}

fn avro_input(c: &AvroCodecConfig, at: &str, v: &mut Validator<'_>) -> Option<InputPlan> {
    if c.registry.is_none() && c.schema_file.is_none() {
        v.error_at(at, "avro needs a `registry`, a `schema_file`, or both");
        return None;
    }
    let registry = match &c.registry {
        Some(r) => Some(reach(r, &format!("{at}.registry"), v)?),
        None => None,
    };
    let file = match &c.schema_file {
        Some(file) => Some(avro_file(file, &format!("{at}.schema_file"), v)?.0),
        None => None,
    };
    Some(InputPlan::Avro { file, registry })
}

fn proto_input(c: &ProtobufCodecConfig, at: &str, v: &mut Validator<'_>) -> Option<InputPlan> {
    let registry = match (&c.registry, &c.schema_file) {
        (Some(r), None) => Some(reach(r, &format!("{at}.registry"), v)?),
        (None, Some(_)) => None,
        _ => {
            v.error_at(at, "protobuf needs either a `registry` or a `schema_file`");
            return None;
        }
    };
    let message = match &c.schema_file {
        Some(file) => {
            let schema = protobuf::load(file, &c.include_paths)
                .map_err(|e| v.error_at(&format!("{at}.schema_file"), e.to_string()))
                .ok()?;
            let Some(name) = &c.message else {
                v.error_at(
                    at,
                    "with `schema_file`, `message` names the payloads' message type",
                );
                return None;
            };
            Some(
                schema
                    .pick(Some(name))
                    .map_err(|e| v.error_at(&format!("{at}.message"), e.to_string()))
                    .ok()?,
            )
        }
        None => None,
    };
    Some(InputPlan::Protobuf { message, registry })
}
