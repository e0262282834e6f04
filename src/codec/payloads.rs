//! What a pipeline's workers decode its input's payloads with and encode its results as: the
//! input's `codec` and the output's `format`, checked and their schema files read when the file
//! loads, then connected to the Schema Registry when the pipeline starts.

use std::sync::Arc;

use bytes::Bytes;
use jaq_json::Val;
use prost_reflect::MessageDescriptor;
use tokio_util::sync::CancellationToken;

use super::avro::AvroSchema;
pub use super::plan::{AvroFormatConfig, FormatConfig, ProtobufFormatConfig};
use super::plan::{InputPlan, OutputPlan, Reach, input_plan, output_plan, pick_message};
use super::protobuf;
use super::resolve::{avro_encoder, proto_encoder};
use super::schema::{AvroDecoder, DecodeError, Fetcher, ProtobufDecoder};
use super::{Codec, CodecConfig, wire};
use crate::client::registry::Registry;
use crate::client::retry::RetryConfig;
use crate::config::Validator;

/// The payload settings of a pipeline, checked and with their schema files read.
#[derive(Debug, Clone)]
pub struct Payloads {
    input: InputPlan,
    output: OutputPlan,
}

impl Payloads {
    /// Checks the input's `codec` (at `codec_path`) and the output's `format` (at
    /// `format_path`; `destination` is the output's topic or subject, for the default
    /// subject). Every problem goes to `v`; None when there was one.
    pub fn build(
        codec: &CodecConfig,
        codec_path: &str,
        format: Option<&FormatConfig>,
        format_path: &str,
        destination: Option<&str>,
        v: &mut Validator<'_>,
    ) -> Option<Payloads> {
        let input = input_plan(codec, codec_path, v);
        let output = match format {
            None | Some(FormatConfig::Json) => Some(OutputPlan::Plain(codec.plain())),
            Some(f) => output_plan(f, format_path, destination, v),
        };
        Some(Payloads {
            input: input?,
            output: output?,
        })
    }

    /// JSON in and out: for pipelines built without a file.
    pub fn json() -> Payloads {
        Payloads {
            input: InputPlan::Plain(Codec::Json),
            output: OutputPlan::Plain(Codec::Json),
        }
    }

    /// Whether events must be decoded and encoded even with no transforms: the payload
    /// changes form between input and output.
    pub fn converts(&self) -> bool {
        !matches!(
            (&self.input, &self.output),
            (InputPlan::Plain(_), OutputPlan::Plain(_))
        )
    }

    /// The text of the Avro schema file results are encoded with, when they are bare Avro
    /// bodies (no registry).
    pub fn avro_output_schema(&self) -> Option<&str> {
        match &self.output {
            OutputPlan::Avro {
                file: Some((_, text)),
                registry: None,
                ..
            } => Some(text),
            _ => None,
        }
    }

    /// Whether a registry is needed (`sluice test` has none).
    pub fn uses_registry(&self) -> bool {
        let input = matches!(
            &self.input,
            InputPlan::Avro {
                registry: Some(_),
                ..
            } | InputPlan::Protobuf {
                registry: Some(_),
                ..
            }
        );
        let output = matches!(
            &self.output,
            OutputPlan::Avro {
                registry: Some(_),
                ..
            } | OutputPlan::Protobuf {
                registry: Some(_),
                ..
            }
        );
        input || output
    }

    /// Connects to the registries and resolves the output's schema: waits, retrying with
    /// `retry`, while a registry is unavailable; fails when a subject or schema is not there.
    pub async fn connect(
        &self,
        retry: &RetryConfig,
        stop: &CancellationToken,
    ) -> Result<Connected, String> {
        let client = |reach: &Reach| {
            Registry::new(
                &reach.config,
                reach.tls.clone(),
                retry.clone(),
                stop.clone(),
            )
            .map(Arc::new)
            .map_err(|e| e.to_string())
        };
        let runtime = tokio::runtime::Handle::current();
        let input = match &self.input {
            InputPlan::Plain(c) => InputSide::Plain(*c),
            InputPlan::Avro { file, registry } => InputSide::Avro {
                file: file.clone(),
                fetcher: match registry {
                    Some(r) => Some(Fetcher::new(client(r)?, runtime.clone())),
                    None => None,
                },
            },
            InputPlan::Protobuf { message, registry } => InputSide::Protobuf {
                message: message.clone(),
                fetcher: match registry {
                    Some(r) => Some(Fetcher::new(client(r)?, runtime.clone())),
                    None => None,
                },
            },
        };
        let encoder = match &self.output {
            OutputPlan::Plain(c) => Encoder::Plain(*c),
            OutputPlan::Avro {
                file,
                registry,
                auto_register,
            } => avro_encoder(file, registry, *auto_register, &client).await?,
            OutputPlan::Protobuf {
                file,
                message,
                registry,
                auto_register,
            } => proto_encoder(file, message, registry, *auto_register, &client).await?,
        };
        Ok(Connected {
            input: Arc::new(input),
            encoder,
        })
    }

    /// What workers use without a registry (`sluice test`, benchmarks): an error when the
    /// pipeline needs one.
    pub fn offline(&self) -> Result<Connected, String> {
        if self.uses_registry() {
            return Err("this pipeline's codec or format needs a Schema Registry".into());
        }
        let input = match &self.input {
            InputPlan::Plain(c) => InputSide::Plain(*c),
            InputPlan::Avro { file, .. } => InputSide::Avro {
                file: file.clone(),
                fetcher: None,
            },
            InputPlan::Protobuf { message, .. } => InputSide::Protobuf {
                message: message.clone(),
                fetcher: None,
            },
        };
        let encoder = match &self.output {
            OutputPlan::Plain(c) => Encoder::Plain(*c),
            OutputPlan::Avro {
                file: Some((schema, _)),
                ..
            } => Encoder::Avro {
                schema: schema.clone(),
                id: None,
            },
            OutputPlan::Protobuf {
                file: Some((schema, _)),
                message,
                ..
            } => Encoder::Protobuf {
                message: pick_message(schema, message.as_deref())?,
                header: None,
            },
            _ => return Err("the output's format has no schema".into()),
        };
        Ok(Connected {
            input: Arc::new(input),
            encoder,
        })
    }
}

/// The input side with its registry client.
#[derive(Debug)]
enum InputSide {
    Plain(Codec),
    Avro {
        file: Option<Arc<AvroSchema>>,
        fetcher: Option<Fetcher>,
    },
    Protobuf {
        message: Option<MessageDescriptor>,
        fetcher: Option<Fetcher>,
    },
}

/// Payload settings ready to run: a decoder and the encoder for each worker.
#[derive(Debug, Clone)]
pub struct Connected {
    input: Arc<InputSide>,
    encoder: Encoder,
}

impl Connected {
    /// A decoder for one worker thread, whose transforms read only the top-level `fields` of
    /// each payload when given (JSON and Avro decoders then build only those).
    pub fn decoder(&self, fields: Option<Vec<Val>>) -> Decoder {
        match &*self.input {
            InputSide::Plain(Codec::Json) => Decoder::Json(fields),
            InputSide::Plain(Codec::Raw) => Decoder::Raw,
            InputSide::Avro {
                fetcher: Some(f),
                file,
            } => Decoder::Avro(AvroDecoder::registry(f.clone(), file.clone(), fields)),
            InputSide::Avro { file: Some(s), .. } => {
                Decoder::Avro(AvroDecoder::file(s.clone(), fields))
            }
            InputSide::Protobuf {
                fetcher: Some(f), ..
            } => Decoder::Protobuf(ProtobufDecoder::registry(f.clone())),
            InputSide::Protobuf {
                message: Some(m), ..
            } => Decoder::Protobuf(ProtobufDecoder::file(m.clone())),
            // Loading refuses a schema codec with neither a file nor a registry.
            _ => Decoder::Raw,
        }
    }

    /// The encoder of results.
    pub fn encoder(&self) -> Encoder {
        self.encoder.clone()
    }

    /// A decoder of what the encoder writes when it writes Avro or Protobuf bodies (no registry
    /// header), with the format's name: to show results as JSON (`sluice eval`).
    pub fn output_decoder(&self) -> Option<(&'static str, Decoder)> {
        match &self.encoder {
            Encoder::Avro { schema, id: None } => Some((
                "avro",
                Decoder::Avro(AvroDecoder::file(schema.clone(), None)),
            )),
            Encoder::Protobuf {
                message,
                header: None,
            } => Some((
                "protobuf",
                Decoder::Protobuf(ProtobufDecoder::file(message.clone())),
            )),
            _ => None,
        }
    }
}

/// Decodes payloads for transforms: one per worker thread.
#[derive(Debug)]
pub enum Decoder {
    /// JSON payloads, of which only these top-level fields are built when given.
    Json(Option<Vec<Val>>),
    /// Opaque payloads.
    Raw,
    /// Avro payloads.
    Avro(AvroDecoder),
    /// Protobuf payloads.
    Protobuf(ProtobufDecoder),
}

impl Decoder {
    /// Decodes one payload.
    pub fn decode(&mut self, payload: &Bytes) -> Result<Val, DecodeError> {
        match self {
            Decoder::Json(Some(fields)) => super::decode_fields(payload, fields),
            Decoder::Json(None) => super::decode(Codec::Json, payload),
            Decoder::Raw => super::decode(Codec::Raw, payload),
            Decoder::Avro(d) => return d.decode(payload),
            Decoder::Protobuf(d) => return d.decode(payload),
        }
        .map_err(|e| DecodeError::Event(e.to_string()))
    }
}

/// Encodes results as the output's payloads.
#[derive(Debug, Clone)]
pub enum Encoder {
    /// JSON, or strings as they are after a `raw` input.
    Plain(Codec),
    /// Avro, after the wire format's header when there is a schema id.
    Avro {
        /// The schema.
        schema: Arc<AvroSchema>,
        /// Its id in the registry.
        id: Option<u32>,
    },
    /// Protobuf, after the wire format's header when there is a schema id.
    Protobuf {
        /// The message type.
        message: MessageDescriptor,
        /// The schema id and the message type's indexes in it.
        header: Option<(u32, Vec<usize>)>,
    },
}

impl Encoder {
    /// Encodes `val`, appending to `out`; the reason names the field that does not fit.
    pub fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), String> {
        match self {
            Encoder::Plain(c) => super::encode(*c, val, out).map_err(|e| e.to_string()),
            Encoder::Avro { schema, id } => {
                if let Some(id) = id {
                    wire::header(*id, out);
                }
                schema.encode(val, out)
            }
            Encoder::Protobuf { message, header } => {
                if let Some((id, path)) = header {
                    wire::header(*id, out);
                    wire::write_indexes(path, out);
                }
                protobuf::encode(message, val, out)
            }
        }
    }
}
