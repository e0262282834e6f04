//! An object's bytes from its events' payloads: NDJSON, compressed, or Parquet.

use std::io::Write;

use bytes::Bytes;

use super::Compression;
use super::parquet::{Encoded, Parquet, ParquetEncodeError};

/// Why no object can be made of a batch: the output's encoding fails, whatever the events, so
/// every event of it is refused.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Compressing the lines failed.
    #[error("encoding the object: {0}")]
    Ndjson(std::io::Error),
    /// The encoding stopped before it finished.
    #[error("encoding the object: {0}")]
    Stopped(#[from] tokio::task::JoinError),
    /// The Parquet object cannot be made.
    #[error(transparent)]
    Parquet(#[from] ParquetEncodeError),
}

/// How the output makes an object of events.
#[derive(Debug)]
pub enum Encoder {
    /// One payload per line, the whole compressed.
    Ndjson(Compression),
    /// Parquet columns, compressed inside.
    Parquet(Box<Parquet>),
}

/// The file name endings of objects, for reading names back.
pub const EXTENSIONS: &[&str] = &["ndjson", "ndjson.gz", "ndjson.zst", "parquet"];

impl Encoder {
    /// The ending of the objects' names.
    pub fn extension(&self) -> &'static str {
        match self {
            Encoder::Ndjson(Compression::None) => "ndjson",
            Encoder::Ndjson(Compression::Gzip) => "ndjson.gz",
            Encoder::Ndjson(Compression::Zstd) => "ndjson.zst",
            // Not offered for NDJSON (see the output's checks); named as if it were.
            Encoder::Ndjson(Compression::Snappy) => "ndjson.sz",
            Encoder::Parquet(_) => "parquet",
        }
    }

    /// The object holding `payloads`, but for those left out (events that do not fit a Parquet
    /// schema); an error when no object can be made.
    pub fn encode(&self, payloads: &[Bytes]) -> Result<Encoded, EncodeError> {
        match self {
            Encoder::Ndjson(compression) => match ndjson(payloads, *compression) {
                Ok(body) => Ok(Encoded {
                    body: Some(body),
                    rejected: Vec::new(),
                }),
                Err(e) => Err(EncodeError::Ndjson(e)),
            },
            Encoder::Parquet(parquet) => Ok(parquet.encode(payloads)?),
        }
    }

    /// Why an event would be left out of an object; None when it would not be.
    pub fn rejects(&self, payload: &Bytes) -> Option<String> {
        match self {
            Encoder::Ndjson(_) => None,
            Encoder::Parquet(parquet) => parquet.rejects(payload),
        }
    }
}

/// Each payload on a line, compressed.
fn ndjson(payloads: &[Bytes], compression: Compression) -> std::io::Result<Vec<u8>> {
    let size: usize = payloads.iter().map(|p| p.len() + 1).sum();
    let mut lines = Vec::with_capacity(size);
    for p in payloads {
        lines.extend_from_slice(p);
        lines.push(b'\n');
    }
    match compression {
        Compression::None => Ok(lines),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(size / 4),
                flate2::Compression::default(),
            );
            gz.write_all(&lines)?;
            gz.finish()
        }
        // Level 3: zstd's default, several times gzip's speed at a similar ratio.
        Compression::Zstd => zstd::bulk::compress(&lines, 3),
        Compression::Snappy => Err(std::io::Error::other(
            "NDJSON objects are not snappy-compressed",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_decode_back_to_the_payloads_in_order() {
        let payloads = [
            Bytes::from_static(b"{\"a\":1}"),
            Bytes::from_static(b"{\"b\":2}"),
        ];
        let plain = ndjson(&payloads, Compression::None).unwrap();
        assert_eq!(plain, b"{\"a\":1}\n{\"b\":2}\n");
        let gz = ndjson(&payloads, Compression::Gzip).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
        assert_eq!(back, plain);
        let zst = ndjson(&payloads, Compression::Zstd).unwrap();
        assert_eq!(zstd::decode_all(&zst[..]).unwrap(), plain);
    }
}
