//! Protobuf bodies of one message type, decoded and encoded for the wiring.

use bytes::Bytes;
use jaq_json::Val;
use prost_reflect::MessageDescriptor;

use super::error::ProtobufError;
use super::value::{decode, encode};
use crate::codec::format::{Decode, Encode};

/// Reads bodies of one message type.
#[derive(Debug, Clone)]
pub struct ProtobufDecoder {
    /// The message type.
    pub message: MessageDescriptor,
}

impl Decode for ProtobufDecoder {
    type Error = ProtobufError;

    fn decode(&mut self, payload: &Bytes) -> Result<Val, ProtobufError> {
        decode(&self.message, payload)
    }
}

/// Writes values as bodies of one message type.
#[derive(Debug, Clone)]
pub struct ProtobufEncoder {
    /// The message type.
    pub message: MessageDescriptor,
}

impl ProtobufEncoder {
    /// A decoder of what this encoder writes.
    pub fn decoder(&self) -> ProtobufDecoder {
        ProtobufDecoder {
            message: self.message.clone(),
        }
    }
}

impl Encode for ProtobufEncoder {
    type Error = ProtobufError;

    fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), ProtobufError> {
        encode(&self.message, val, out)
    }
}
