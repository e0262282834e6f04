//! Protobuf messages one after another, each after its length as a varint: the stream Java's
//! `writeDelimitedTo` and `parseDelimitedFrom` write and read.

use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::Path;

use integer_encoding::VarIntReader;

use super::{Counted, FileError, open_to_append};
use crate::observe::events::emit;
use crate::observe::events::file::{Unfinished, UnfinishedCut};

/// The file at `path`, opened for appending (created if missing), with a last message that a
/// crash left unfinished (never confirmed, so read again from the input) cut off.
pub(super) fn open(path: &Path) -> Result<File, FileError> {
    let (file, len) = open_to_append(path)?;
    // The position is counted, not asked of the file: that would be a system call a message.
    let mut reader = BufReader::with_capacity(1 << 16, &file);
    let mut at = 0u64;
    let end = loop {
        let mut length = Counted(&mut reader, 0);
        let size = match length.read_varint::<u64>() {
            Ok(size) => size,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break at,
            Err(_) => return Err(FileError::MessageLength(at)),
        };
        let next = (at + length.1).saturating_add(size);
        if next > len {
            break at;
        }
        reader.seek_relative(size as i64)?;
        at = next;
    };
    drop(reader);
    if end < len {
        emit(UnfinishedCut {
            path,
            bytes: len - end,
            what: Unfinished::ProtobufMessage,
        });
        file.set_len(end)?;
    }
    Ok(file)
}

/// Appends `records` (each one message's encoding) to `out`, each after its length.
pub(super) fn encode<'a>(records: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for record in records {
        prost::encoding::encode_varint(record.len() as u64, out);
        out.extend_from_slice(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(path: &Path, messages: &[&[u8]]) {
        use std::io::Write;
        let mut file = open(path).unwrap();
        let mut buf = Vec::new();
        encode(messages.iter().copied(), &mut buf);
        file.write_all(&buf).unwrap();
    }

    /// The messages of the file, read back by prost's length-delimited decoding.
    fn messages(path: &Path) -> Vec<Vec<u8>> {
        let bytes = std::fs::read(path).unwrap();
        let mut rest = &bytes[..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let len = prost::decode_length_delimiter(&mut rest).unwrap();
            out.push(rest[..len].to_vec());
            rest = &rest[len..];
        }
        out
    }

    #[test]
    fn messages_follow_their_lengths_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pb");
        let big = vec![7u8; 300];
        append(&path, &[b"a", b"", &big]);
        append(&path, &[b"bc"]);
        assert_eq!(
            messages(&path),
            [b"a".to_vec(), vec![], big, b"bc".to_vec()]
        );
    }

    #[test]
    fn lengths_written_long_are_followed_and_a_runaway_length_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pb");
        // "ab" after its length 2 written in two bytes, then a message cut short.
        std::fs::write(&path, [0x82, 0x00, b'a', b'b', 0x05, b'x']).unwrap();
        append(&path, &[b"c"]);
        assert_eq!(messages(&path), [b"ab".to_vec(), b"c".to_vec()]);

        std::fs::write(&path, [0xff; 11]).unwrap();
        let err = open(&path).unwrap_err().to_string();
        assert!(err.starts_with("is damaged at byte 0"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), [0xff; 11]);
    }

    #[test]
    fn an_unfinished_last_message_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pb");
        let big = vec![7u8; 300];
        append(&path, &[b"a"]);
        let whole = std::fs::read(&path).unwrap();
        append(&path, &[&big]);
        let grown = std::fs::read(&path).unwrap();
        for cut in whole.len() + 1..grown.len() {
            std::fs::write(&path, &grown[..cut]).unwrap();
            append(&path, &[b"z"]);
            assert_eq!(
                messages(&path),
                [b"a".to_vec(), b"z".to_vec()],
                "cut at {cut}"
            );
        }
    }
}
