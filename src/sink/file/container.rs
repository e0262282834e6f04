//! The Avro object container file of `format: avro`: a header with the schema, the compression
//! and a sync marker, then blocks of records, each ending with the marker. A file that is there
//! already is appended to, with its own marker, when it holds the same schema and compression.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek};
use std::path::Path;

use apache_avro::types::Value;
use integer_encoding::VarIntReader;
use serde_avro_fast::Schema;
use serde_avro_fast::object_container_file_encoding::{
    Compression, CompressionLevel, Writer, WriterBuilder,
};
use serde_avro_fast::ser::SerializerConfig;

use super::{AvroCompression, Counted, FileError, open_to_append};
use crate::observe::events::emit;
use crate::observe::events::file::{Unfinished, UnfinishedCut};

/// The first bytes of every object container file.
const MAGIC: &[u8; 4] = b"Obj\x01";

/// The header's schema, as the Avro specification gives it.
const HEADER_SCHEMA: &str = r#"{"type": "record", "name": "org.apache.avro.file.Header",
 "fields": [
   {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
   {"name": "meta", "type": {"type": "map", "values": "bytes"}},
   {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}}]}"#;

type Sync = [u8; 16];

impl AvroCompression {
    /// The codec's name in the header (`avro.codec`).
    fn name(self) -> &'static str {
        match self {
            AvroCompression::Null => "null",
            AvroCompression::Deflate => "deflate",
            AvroCompression::Snappy => "snappy",
            AvroCompression::Zstandard => "zstandard",
        }
    }

    fn codec(self) -> Compression {
        match self {
            AvroCompression::Null => Compression::Null,
            AvroCompression::Deflate => Compression::Deflate {
                level: CompressionLevel::default(),
            },
            AvroCompression::Snappy => Compression::Snappy,
            AvroCompression::Zstandard => Compression::Zstandard {
                level: CompressionLevel::default(),
            },
        }
    }
}

/// The file at `path`, opened for appending (created if missing). For a file with records
/// already, the sync marker its blocks end with: its header must name `schema` (by its
/// canonical form) and `compression`, and a last block that a crash left unfinished (never
/// confirmed, so read again from the input) is cut off. None for a new or empty file, which
/// needs its header written.
pub(super) fn open(
    path: &Path,
    schema: &Schema,
    compression: AvroCompression,
) -> Result<(File, Option<Sync>), FileError> {
    let (file, len) = open_to_append(path)?;
    if len == 0 {
        return Ok((file, None));
    }
    let mut reader = BufReader::new(&file);
    let Some(header) = read_header(&mut reader, len)? else {
        // Only part of a header: the file was being created when the process stopped.
        emit(UnfinishedCut {
            path,
            bytes: len,
            what: Unfinished::AvroHeader,
        });
        file.set_len(0)?;
        return Ok((file, None));
    };
    if header.fingerprint != *schema.rabin_fingerprint() {
        return Err(FileError::OtherSchema(header.schema));
    }
    if header.codec != compression.name() {
        return Err(FileError::OtherCodec {
            found: header.codec,
            wanted: compression.name(),
        });
    }
    let end = whole_blocks(&mut reader, len, &header.sync)?;
    drop(reader);
    if end < len {
        emit(UnfinishedCut {
            path,
            bytes: len - end,
            what: Unfinished::AvroBlock,
        });
        file.set_len(end)?;
    }
    Ok((file, Some(header.sync)))
}

/// What an existing file's header says.
struct Header {
    schema: String,
    fingerprint: [u8; 8],
    codec: String,
    sync: Sync,
}

/// The header of a file of `len` bytes: None when the file ends within it.
fn read_header(reader: &mut BufReader<&File>, len: u64) -> Result<Option<Header>, FileError> {
    let mut start = [0u8; 4];
    let n = read_up_to(reader, &mut start)?;
    if start[..n] != MAGIC[..n] {
        return Err(FileError::NotAvro);
    }
    let header_schema = apache_avro::Schema::parse_str(HEADER_SCHEMA)?;
    reader.rewind()?;
    let value = match apache_avro::from_avro_datum(&header_schema, reader, None) {
        Ok(v) => v,
        Err(_) if reader.stream_position().is_ok_and(|at| at >= len) => return Ok(None),
        Err(e) => return Err(FileError::NotAvroHeader(e)),
    };
    let Value::Record(fields) = value else {
        return Err(FileError::NotAvro);
    };
    let (mut meta, mut sync) = (None, None);
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("meta", Value::Map(m)) => meta = Some(m),
            ("sync", Value::Fixed(16, bytes)) => sync = bytes.try_into().ok(),
            _ => {}
        }
    }
    let (Some(meta), Some(sync)) = (meta, sync) else {
        return Err(FileError::NotAvro);
    };
    let text = |key: &str| match meta.get(key) {
        Some(Value::Bytes(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    let schema = text("avro.schema").ok_or(FileError::NotAvro)?;
    let parsed: Schema = schema.parse().map_err(FileError::HeaderSchema)?;
    Ok(Some(Header {
        fingerprint: *parsed.rabin_fingerprint(),
        schema,
        codec: text("avro.codec").unwrap_or_else(|| "null".into()),
        sync,
    }))
}

/// Reads into `buf` until it is full or the reader ends; how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Where the last whole block ends (each block: a record count, a byte count, the bytes and
/// the marker `sync`), reading on from the end of the header. What follows it is a block the
/// file ends within; a whole block with another marker is damage, which is an error. The
/// position is counted, not asked of the file (a system call a block).
fn whole_blocks(reader: &mut BufReader<&File>, len: u64, sync: &Sync) -> Result<u64, FileError> {
    let mut at = reader.stream_position()?;
    loop {
        let mut counts = Counted(&mut *reader, 0);
        let (count, size) = match (counts.read_varint::<i64>(), counts.read_varint::<i64>()) {
            (Ok(count), Ok(size)) => (count, size),
            (Err(e), _) | (Ok(_), Err(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                return Ok(at);
            }
            _ => return Err(FileError::BlockCounts(at)),
        };
        let body = at + counts.1;
        let (Ok(_), Ok(size)) = (u64::try_from(count), u64::try_from(size)) else {
            return Err(FileError::BlockSize { at, count, size });
        };
        let next = body.saturating_add(size).saturating_add(16);
        if next > len {
            return Ok(at);
        }
        reader.seek_relative(size as i64)?;
        let mut marker = [0u8; 16];
        reader.read_exact(&mut marker)?;
        if marker != *sync {
            return Err(FileError::SyncMarker(at));
        }
        at = next;
    }
}

/// Turns batches of encoded records into blocks, one a batch (or more, for a batch larger than
/// a block's usual 64 KiB), each compressed and ended with the file's marker.
pub(super) struct Blocks<'c, 's> {
    writer: Writer<'c, 's, Vec<u8>>,
}

impl<'c, 's> Blocks<'c, 's> {
    /// Blocks for a file of `config`'s schema that end with `sync`, or for a new file (None), a
    /// new marker: then also the file's header, to write first.
    pub fn new(
        config: &'c mut SerializerConfig<'s>,
        compression: AvroCompression,
        sync: Option<Sync>,
    ) -> Result<(Self, Option<Vec<u8>>), FileError> {
        let mut builder = WriterBuilder::new(config).compression(compression.codec());
        if let Some(sync) = sync {
            builder = builder.sync_marker(sync);
        }
        let mut writer = builder.build(Vec::new())?;
        let header = std::mem::take(writer.inner_mut());
        Ok((Blocks { writer }, sync.is_none().then_some(header)))
    }

    /// The blocks of `records` (each one record's encoding), to append to the file.
    pub fn encode<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<&[u8], FileError> {
        self.writer.inner_mut().clear();
        for record in records {
            self.writer.push_serialized(record, 1)?;
        }
        self.writer.finish_block()?;
        Ok(self.writer.inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type": "record", "name": "R", "fields": [
        {"name": "n", "type": "long"}, {"name": "s", "type": "string"}]}"#;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct R {
        n: i64,
        s: String,
    }

    fn schema(text: &str) -> Schema {
        text.parse().unwrap()
    }

    fn record(schema: &Schema, n: i64) -> Vec<u8> {
        let r = R {
            n,
            s: format!("r{n}"),
        };
        serde_avro_fast::to_datum_vec(&r, &mut SerializerConfig::new(schema)).unwrap()
    }

    /// Opens `path` as the output does and appends a batch of records `from..to` for each
    /// `(from, to)` of `batches`.
    fn append(path: &Path, compression: AvroCompression, batches: &[(i64, i64)]) {
        use std::io::Write;
        let schema = schema(SCHEMA);
        let (mut file, sync) = open(path, &schema, compression).unwrap();
        let mut config = SerializerConfig::new(&schema);
        let (mut blocks, header) = Blocks::new(&mut config, compression, sync).unwrap();
        if let Some(header) = header {
            file.write_all(&header).unwrap();
        }
        for &(from, to) in batches {
            let records: Vec<Vec<u8>> = (from..to).map(|n| record(&schema, n)).collect();
            let bytes = blocks.encode(records.iter().map(Vec::as_slice)).unwrap();
            file.write_all(bytes).unwrap();
        }
    }

    /// The records of the file at `path`, read by serde_avro_fast's reader.
    fn records(path: &Path) -> Vec<i64> {
        let bytes = std::fs::read(path).unwrap();
        let mut reader =
            serde_avro_fast::object_container_file_encoding::Reader::from_slice(&bytes).unwrap();
        reader
            .deserialize::<R>()
            .map(|r| {
                let r = r.unwrap();
                assert_eq!(r.s, format!("r{}", r.n));
                r.n
            })
            .collect()
    }

    #[test]
    fn appending_across_reopens_makes_one_file_for_each_codec() {
        for compression in [
            AvroCompression::Null,
            AvroCompression::Deflate,
            AvroCompression::Snappy,
            AvroCompression::Zstandard,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out.avro");
            append(&path, compression, &[(0, 3), (3, 1000)]);
            append(&path, compression, &[]);
            append(&path, compression, &[(1000, 1001), (1001, 1500)]);
            assert_eq!(
                records(&path),
                (0..1500).collect::<Vec<_>>(),
                "{compression:?}"
            );
        }
    }

    #[test]
    fn apache_avro_reads_the_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.avro");
        append(&path, AvroCompression::Deflate, &[(0, 10)]);
        append(&path, AvroCompression::Deflate, &[(10, 20)]);
        let bytes = std::fs::read(&path).unwrap();
        let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
        let ns: Vec<i64> = reader
            .map(|v| match v.unwrap() {
                Value::Record(fields) => match &fields[0].1 {
                    Value::Long(n) => *n,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ns, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn an_unfinished_last_block_is_cut_off_and_a_cut_header_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.avro");
        append(&path, AvroCompression::Null, &[(0, 5)]);
        let whole = std::fs::read(&path).unwrap();
        append(&path, AvroCompression::Null, &[(5, 9)]);
        let grown = std::fs::read(&path).unwrap();
        // Every length a crash could leave of the second block.
        for cut in whole.len() + 1..grown.len() {
            std::fs::write(&path, &grown[..cut]).unwrap();
            append(&path, AvroCompression::Null, &[(100, 102)]);
            assert_eq!(records(&path), [0, 1, 2, 3, 4, 100, 101], "cut at {cut}");
        }
        // And of the header of a new file.
        let header_len = header_end(&whole) + 16;
        for cut in 1..header_len {
            std::fs::write(&path, &whole[..cut]).unwrap();
            append(&path, AvroCompression::Null, &[(7, 8)]);
            assert_eq!(records(&path), [7], "header cut at {cut}");
        }
    }

    /// Where the header of `file` ends, less its marker.
    fn header_end(file: &[u8]) -> usize {
        let sync = &file[file.len() - 16..];
        file.windows(16).position(|w| w == sync).unwrap()
    }

    #[test]
    fn another_schema_another_codec_damage_and_other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.avro");
        append(&path, AvroCompression::Null, &[(0, 3), (3, 6)]);

        let other =
            schema(r#"{"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}"#);
        let refused = |schema: &Schema, compression| match open(&path, schema, compression) {
            Ok(_) => panic!("{} was taken", path.display()),
            Err(e) => e.to_string(),
        };
        let err = refused(&other, AvroCompression::Null);
        assert!(err.starts_with("holds records of another schema"), "{err}");
        // The same schema written differently is the same schema.
        let spaced = schema(&SCHEMA.replace(' ', "  "));
        assert!(open(&path, &spaced, AvroCompression::Null).is_ok());

        let err = refused(&schema(SCHEMA), AvroCompression::Deflate);
        assert!(
            err.starts_with("its blocks are compressed with `null`, not `deflate`"),
            "{err}"
        );

        // The first block's marker damaged: nothing is cut, the file is refused.
        let mut bytes = std::fs::read(&path).unwrap();
        let sync = bytes[bytes.len() - 16..].to_vec();
        let first_block_end = header_end(&bytes) + 16;
        let marker = first_block_end
            + bytes[first_block_end..]
                .windows(16)
                .position(|w| w == sync)
                .unwrap();
        bytes[marker] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = refused(&schema(SCHEMA), AvroCompression::Null);
        assert!(err.contains("is damaged at byte"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);

        std::fs::write(&path, "{\"n\": 1}\n").unwrap();
        let err = refused(&schema(SCHEMA), AvroCompression::Null);
        assert!(
            err.starts_with("is not an Avro object container file"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"n\": 1}\n");
    }
}
