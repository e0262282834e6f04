//! Local files: the file input finding its file replaced, and the file output repairing the end
//! of a file a stopped process left unfinished.

use std::path::Path;

use super::InternalEvent;

/// The file being read was rotated (another file at its path) or truncated: it is read from
/// the start.
pub struct FileReplaced<'a> {
    /// The path read.
    pub path: &'a Path,
    /// Another file is at the path.
    pub rotated: bool,
    /// The file is shorter than what was read of it.
    pub truncated: bool,
}

impl InternalEvent for FileReplaced<'_> {
    fn emit(self) {
        tracing::info!(path = %self.path.display(), rotated = self.rotated, truncated = self.truncated, "file replaced; reading it from the start");
    }
}

/// What of a file the output reopens was left unfinished by a process that stopped while
/// writing it, and is cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// Part of an Avro object file's header: the file is written again from the start.
    AvroHeader,
    /// An Avro object file's last block.
    AvroBlock,
    /// A length-delimited Protobuf file's last message.
    ProtobufMessage,
}

/// The file output cut off the unfinished end of a file it reopened.
pub struct UnfinishedCut<'a> {
    /// The file.
    pub path: &'a Path,
    /// Bytes cut off.
    pub bytes: u64,
    /// What was unfinished.
    pub what: Unfinished,
}

impl InternalEvent for UnfinishedCut<'_> {
    fn emit(self) {
        let (path, bytes) = (self.path.display(), self.bytes);
        match self.what {
            Unfinished::AvroHeader => {
                tracing::warn!(path = %path, bytes, "an Avro file's header was cut short: writing it again");
            }
            Unfinished::AvroBlock => {
                tracing::warn!(path = %path, bytes, "cutting off the unfinished last block of an Avro file");
            }
            Unfinished::ProtobufMessage => {
                tracing::warn!(path = %path, bytes, "cutting off the unfinished last message of a Protobuf file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn files_replaced_and_repaired_are_logged_with_their_path_and_not_counted() {
        let path = Path::new("/data/events.avro");
        let seen = captured(|| {
            emit(FileReplaced {
                path,
                rotated: true,
                truncated: false,
            });
            for what in [
                Unfinished::AvroHeader,
                Unfinished::AvroBlock,
                Unfinished::ProtobufMessage,
            ] {
                emit(UnfinishedCut {
                    path,
                    bytes: 12,
                    what,
                });
            }
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        assert_eq!(
            seen.logs,
            [
                "INFO file replaced; reading it from the start path=/data/events.avro rotated=true truncated=false",
                "WARN an Avro file's header was cut short: writing it again path=/data/events.avro bytes=12",
                "WARN cutting off the unfinished last block of an Avro file path=/data/events.avro bytes=12",
                "WARN cutting off the unfinished last message of a Protobuf file path=/data/events.avro bytes=12",
            ]
        );
    }
}
