//! What a pipeline's workers decode its input's payloads with and encode its results as: the
//! input's `codec` and the output's `format`, checked and their schema files read when the file
//! loads, then connected to the Schema Registry when the pipeline starts. Each format's decoder
//! and encoder is a variant of [`Decoder`] and [`Encoder`], called through [`Decode`] and
//! [`Encode`].

use std::sync::Arc;

use bytes::Bytes;
use jaq_json::Val;
use prost_reflect::MessageDescriptor;
use tokio_util::sync::CancellationToken;

use super::avro::{AvroDecoder, AvroEncoder, AvroSchema};
use super::error::{DecodeError, EncodeError};
use super::format::{Decode, Encode};
use super::json::JsonDecoder;
use super::protobuf::{ProtobufDecoder, ProtobufEncoder};
use super::raw::RawDecoder;
use super::schema::FormatConfig;
use super::schema::error::SchemaError;
use super::schema::fetch::Fetcher;
use super::schema::output::output_plan;
use super::schema::plan::{InputPlan, OutputPlan, Reach, input_plan};
use super::schema::registry::{RegisteredAvro, RegisteredProtobuf, RegistryDecoder};
use super::schema::resolve::{avro_encoder, proto_encoder};
use super::wire::Framed;
use super::{Codec, CodecConfig};
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
    ) -> Result<Connected, SchemaError> {
        let client = |reach: &Reach| {
            Registry::new(
                &reach.config,
                reach.tls.clone(),
                retry.clone(),
                stop.clone(),
            )
            .map(Arc::new)
            .map_err(SchemaError::Client)
        };
        let runtime = tokio::runtime::Handle::current();
        let fetcher = |registry: &Option<Reach>| match registry {
            Some(r) => Ok(Some(Fetcher::new(client(r)?, runtime.clone()))),
            None => Ok::<_, SchemaError>(None),
        };
        let input = match &self.input {
            InputPlan::Plain(c) => InputSide::Plain(*c),
            InputPlan::Avro { file, registry } => InputSide::Avro {
                file: file.clone(),
                fetcher: fetcher(registry)?,
            },
            InputPlan::Protobuf { message, registry } => InputSide::Protobuf {
                message: message.clone(),
                fetcher: fetcher(registry)?,
            },
        };
        let encoder = match &self.output {
            OutputPlan::Plain(c) => Encoder::Plain(*c),
            OutputPlan::Avro {
                file,
                registry,
                auto_register,
            } => Encoder::Avro(avro_encoder(file, registry, *auto_register, &client).await?),
            OutputPlan::Protobuf {
                file,
                message,
                registry,
                auto_register,
            } => Encoder::Protobuf(
                proto_encoder(file, message, registry, *auto_register, &client).await?,
            ),
        };
        Ok(Connected {
            input: Arc::new(input),
            encoder,
        })
    }

    /// What workers use without a registry (`sluice test`, benchmarks): an error when the
    /// pipeline needs one.
    pub fn offline(&self) -> Result<Connected, SchemaError> {
        if self.uses_registry() {
            return Err(SchemaError::NeedsRegistry);
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
            } => Encoder::Avro(Framed {
                header: None,
                body: AvroEncoder {
                    schema: schema.clone(),
                },
            }),
            OutputPlan::Protobuf {
                file: Some((schema, _)),
                message,
                ..
            } => Encoder::Protobuf(Framed {
                header: None,
                body: ProtobufEncoder {
                    message: schema.pick(message.as_deref())?,
                },
            }),
            _ => return Err(SchemaError::NoOutputSchema),
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
            InputSide::Plain(Codec::Json) => Decoder::Json(JsonDecoder { fields }),
            InputSide::Plain(Codec::Raw) => Decoder::Raw(RawDecoder),
            InputSide::Avro {
                fetcher: Some(f),
                file,
            } => Decoder::AvroRegistry(RegistryDecoder::new(
                f.clone(),
                RegisteredAvro {
                    reader: file.clone(),
                    fields,
                },
            )),
            InputSide::Avro { file: Some(s), .. } => {
                Decoder::Avro(AvroDecoder::new(s.clone(), None, fields.as_deref()))
            }
            InputSide::Protobuf {
                fetcher: Some(f), ..
            } => Decoder::ProtobufRegistry(RegistryDecoder::new(f.clone(), RegisteredProtobuf)),
            InputSide::Protobuf {
                message: Some(m), ..
            } => Decoder::Protobuf(ProtobufDecoder { message: m.clone() }),
            // Loading refuses a schema codec with neither a file nor a registry.
            _ => Decoder::Raw(RawDecoder),
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
            Encoder::Avro(Framed { header: None, body }) => {
                Some(("avro", Decoder::Avro(body.decoder())))
            }
            Encoder::Protobuf(Framed { header: None, body }) => {
                Some(("protobuf", Decoder::Protobuf(body.decoder())))
            }
            _ => None,
        }
    }
}

/// Decodes payloads for transforms: one per worker thread. A format adds its decoders here.
#[derive(Debug)]
pub enum Decoder {
    /// JSON payloads.
    Json(JsonDecoder),
    /// Opaque payloads.
    Raw(RawDecoder),
    /// Bare Avro bodies of one schema.
    Avro(AvroDecoder),
    /// Avro payloads in the registry's wire format.
    AvroRegistry(RegistryDecoder<RegisteredAvro>),
    /// Bare Protobuf bodies of one message type.
    Protobuf(ProtobufDecoder),
    /// Protobuf payloads in the registry's wire format.
    ProtobufRegistry(RegistryDecoder<RegisteredProtobuf>),
}

impl Decode for Decoder {
    type Error = DecodeError;

    fn decode(&mut self, payload: &Bytes) -> Result<Val, DecodeError> {
        Ok(match self {
            Decoder::Json(d) => d.decode(payload)?,
            Decoder::Raw(d) => d.decode(payload)?,
            Decoder::Avro(d) => d.decode(payload)?,
            Decoder::AvroRegistry(d) => d.decode(payload)?,
            Decoder::Protobuf(d) => d.decode(payload)?,
            Decoder::ProtobufRegistry(d) => d.decode(payload)?,
        })
    }
}

/// Encodes results as the output's payloads. A format adds its encoder here.
#[derive(Debug, Clone)]
pub enum Encoder {
    /// JSON, or strings as they are after a `raw` input.
    Plain(Codec),
    /// Avro, after the wire format's header with a registry.
    Avro(Framed<AvroEncoder>),
    /// Protobuf, after the wire format's header with a registry.
    Protobuf(Framed<ProtobufEncoder>),
}

impl Encode for Encoder {
    type Error = EncodeError;

    /// Encodes `val`, appending to `out`; the reason names the field that does not fit.
    fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Encoder::Plain(c) => c.encode(val, out)?,
            Encoder::Avro(e) => e.encode(val, out)?,
            Encoder::Protobuf(e) => e.encode(val, out)?,
        }
        Ok(())
    }
}
