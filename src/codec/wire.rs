//! The Confluent wire format of Schema Registry payloads: a zero byte, the schema id (4 bytes,
//! big-endian), for Protobuf the path of the message type in its file (zigzag varints, the
//! count first; the first top-level message, `[0]`, as one zero byte), then the body.

use jaq_json::Val;
use prost::encoding::{decode_varint, encode_varint};

use crate::codec::format::Encode;

/// Why a payload is not in the wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the 5-byte header.
    #[error("payload of {0} bytes is too short for the 5-byte Schema Registry header")]
    Short(usize),
    /// The first byte is not the format's zero.
    #[error("payload starts with byte {0:#04x}, not the Schema Registry wire format's 0x00")]
    Magic(u8),
    /// The Protobuf message indexes are cut off or out of range.
    #[error("Protobuf message indexes are malformed: {0}")]
    Indexes(String),
}

/// The schema id and the rest of a payload.
pub fn split(payload: &[u8]) -> Result<(u32, &[u8]), WireError> {
    match payload {
        [0, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [magic, ..] if payload.len() >= 5 => Err(WireError::Magic(*magic)),
        _ => Err(WireError::Short(payload.len())),
    }
}

/// What an output's payloads start with: the schema's id, and for Protobuf the message type's
/// indexes in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The schema id.
    pub id: u32,
    /// The message type's indexes (Protobuf).
    pub indexes: Option<Vec<usize>>,
}

impl Header {
    /// Appends the header.
    pub fn write(&self, out: &mut Vec<u8>) {
        header(self.id, out);
        if let Some(path) = &self.indexes {
            write_indexes(path, out);
        }
    }
}

/// An encoder's bodies, after the wire format's header when there is one (the output writes to
/// the registry's subject), bare otherwise.
#[derive(Debug, Clone)]
pub struct Framed<E> {
    /// The header, with a registry.
    pub header: Option<Header>,
    /// The encoder of the bodies.
    pub body: E,
}

impl<E: Encode> Encode for Framed<E> {
    type Error = E::Error;

    fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), E::Error> {
        if let Some(header) = &self.header {
            header.write(out);
        }
        self.body.encode(val, out)
    }
}

/// Appends the header of a payload with schema `id`.
pub fn header(id: u32, out: &mut Vec<u8>) {
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
}

/// Most nesting a message type path may have: far beyond any real `.proto` file.
const MAX_INDEXES: u64 = 64;

/// The message type path at the start of a Protobuf body, and the body after it.
pub fn indexes(mut rest: &[u8]) -> Result<(Vec<usize>, &[u8]), WireError> {
    let bad = |e: prost::DecodeError| WireError::Indexes(e.to_string());
    let count = unzigzag(decode_varint(&mut rest).map_err(bad)?);
    if count == 0 {
        return Ok((vec![0], rest));
    }
    if !(1..=MAX_INDEXES as i64).contains(&count) {
        return Err(WireError::Indexes(format!(
            "a path of {count} message types"
        )));
    }
    let mut path = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let i = unzigzag(decode_varint(&mut rest).map_err(bad)?);
        let i = usize::try_from(i).map_err(|_| WireError::Indexes(format!("index {i}")))?;
        path.push(i);
    }
    Ok((path, rest))
}

/// Appends the message type path `path` (`[0]` as the one zero byte the format asks for).
pub fn write_indexes(path: &[usize], out: &mut Vec<u8>) {
    if path == [0] {
        out.push(0);
        return;
    }
    encode_varint(zigzag(path.len() as i64), out);
    for &i in path {
        encode_varint(zigzag(i as i64), out);
    }
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_back_into_id_and_body() {
        let mut out = Vec::new();
        header(0x0102_0304, &mut out);
        out.extend_from_slice(b"body");
        assert_eq!(out[..5], [0, 1, 2, 3, 4]);
        assert_eq!(split(&out), Ok((0x0102_0304, &b"body"[..])));
        assert_eq!(split(&[1, 0, 0, 0, 1]), Err(WireError::Magic(1)));
        assert_eq!(split(&[0, 0, 0]), Err(WireError::Short(3)));
    }

    #[test]
    fn message_paths_round_trip_and_the_first_is_one_zero_byte() {
        for path in [vec![0], vec![1], vec![0, 2], vec![3, 0, 70]] {
            let mut out = Vec::new();
            write_indexes(&path, &mut out);
            if path == [0] {
                assert_eq!(out, [0]);
            }
            out.push(0xaa);
            assert_eq!(indexes(&out), Ok((path.clone(), &[0xaa][..])));
        }
        // The Java serializer's [1, 2] path: count 2, then 1 and 2, each zigzag-encoded.
        assert_eq!(indexes(&[4, 2, 4]), Ok((vec![1, 2], &[][..])));
        assert!(indexes(&[4, 2]).is_err());
        assert!(indexes(&[3]).is_err());
    }
}
