//! Where the schemas of Avro and Protobuf payloads come from: the settings of an input's
//! `codec` and an output's `format` (here), checked with their schema files read when the
//! pipeline file loads (`plan`, `output`); the Schema Registry's wire format ([`wire`]), its
//! schemas fetched by the ids payloads carry ([`fetch`], [`registry`]), and the output's schema
//! resolved when the pipeline starts (`resolve`). This depends on the formats, never
//! the other way round.

use std::path::PathBuf;

use serde::Deserialize;

use crate::client::registry::RegistryConfig;

pub mod error;
pub mod fetch;
pub(crate) mod output;
pub(crate) mod plan;
pub mod registry;
pub(crate) mod resolve;
#[cfg(test)]
mod tests;

/// `codec: {avro: ...}`: Avro payloads.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AvroCodecConfig {
    /// The Schema Registry. Each payload is in its wire format (a zero byte and the schema's
    /// id before the body), and the id selects the schema it was written with.
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// An Avro schema file (`.avsc`). Without `registry` every payload is a bare Avro body
    /// written with it; with `registry`, payloads are read as this schema (the reader's schema:
    /// fields it adds take their defaults, fields it lacks are left out).
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
}

/// `codec: {protobuf: ...}`: Protobuf payloads.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProtobufCodecConfig {
    /// The Schema Registry. Each payload is in its wire format (a zero byte, the schema's id
    /// and the message type's indexes before the body), which selects the message type.
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// A compiled descriptor set (`protoc --include_imports --descriptor_set_out=FILE`), or a
    /// `.proto` file, compiled when the pipeline loads. Not with `registry`.
    #[serde(default)]
    pub schema_file: Option<PathBuf>,
    /// Where a `.proto` `schema_file`'s imports are looked up, besides its own directory (the
    /// well-known types need none).
    #[serde(default)]
    pub include_paths: Vec<PathBuf>,
    /// The message type of every payload (`package.Message`), with `schema_file`.
    #[serde(default)]
    pub message: Option<String>,
}

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
