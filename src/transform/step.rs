//! What every step shares: the record it works on, the step trait, and compiling its programs.

use std::sync::Arc;

use bytes::Bytes;
use jaq_json::Val;
use marked_yaml::Spanned;

use super::error::{CompileErrors, TransformError};
use super::program;
use crate::config::Validator;
use crate::event::{Headers, Position};

/// Compiles a program at load time, reporting each error at its place in the file.
pub(crate) fn check_program(code: &Spanned<String>, v: &mut Validator<'_>) {
    if let Err(errors) = program::compile(code) {
        for e in errors {
            v.error_in(code, e.offset, e.message);
        }
    }
}

/// Compiles a program where no file position can be given: its errors name char offsets.
pub(crate) fn compile_or_describe(code: &str) -> Result<program::Program, CompileErrors> {
    program::compile(code).map_err(CompileErrors)
}

/// What a step works on: the decoded payload and the metadata a step may change.
#[derive(Debug, Clone)]
pub struct Record {
    /// The payload as a jq value.
    pub value: Val,
    /// Message key.
    pub key: Option<Bytes>,
    /// Headers.
    pub headers: Headers,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Output topic/subject.
    pub destination: Option<Arc<str>>,
    /// Output partition.
    pub partition: Option<i32>,
}

impl Record {
    /// The metadata variables of jq programs for this record.
    pub fn meta<'a>(&'a self, source: &'a Position) -> program::Meta<'a> {
        program::Meta {
            key: self.key.as_deref(),
            headers: &self.headers,
            timestamp: self.timestamp,
            source,
        }
    }

    /// A record with a new value and this record's metadata.
    pub fn with_value(&self, value: Val) -> Record {
        Record {
            value,
            key: self.key.clone(),
            headers: self.headers.clone(),
            timestamp: self.timestamp,
            destination: self.destination.clone(),
            partition: self.partition,
        }
    }
}

/// One stateless step.
pub trait Transform {
    /// Applies the step to one record, pushing its results to `out`.
    fn apply(
        &self,
        record: Record,
        source: &Position,
        out: &mut Vec<Record>,
    ) -> Result<(), TransformError>;
}

/// A record of the JSON payload `json`, without metadata: for the steps' tests.
#[cfg(test)]
pub(crate) fn json_record(json: &str) -> Record {
    Record {
        value: crate::codec::decode(
            crate::codec::Codec::Json,
            &Bytes::copy_from_slice(json.as_bytes()),
        )
        .unwrap(),
        key: None,
        headers: vec![],
        timestamp: None,
        destination: None,
        partition: None,
    }
}
