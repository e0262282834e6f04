//! A compiled Protobuf schema: from a descriptor set, `.proto` files, or the Schema Registry's
//! text (with the schemas it references); its message types by name or by the registry's
//! message indexes.

use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_reflect::{DescriptorPool, FileDescriptor, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::error::ProtobufError;

/// A compiled set of `.proto` files.
#[derive(Debug, Clone)]
pub struct ProtoSchema {
    pub(super) pool: DescriptorPool,
    /// The file whose messages the Schema Registry's message indexes count in.
    main: Option<FileDescriptor>,
}

impl ProtoSchema {
    /// A compiled descriptor set (`protoc --include_imports --descriptor_set_out`).
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<ProtoSchema, ProtobufError> {
        let pool = DescriptorPool::decode(bytes)
            .map_err(|e| ProtobufError::DescriptorSet(e.to_string()))?;
        Ok(ProtoSchema { pool, main: None })
    }

    /// `.proto` files compiled now, imports looked up in `includes` (and the well-known types).
    pub fn compile(files: &[PathBuf], includes: &[PathBuf]) -> Result<ProtoSchema, ProtobufError> {
        let cannot = |e: protox::Error| ProtobufError::Compile(e.to_string());
        let mut compiler = protox::Compiler::new(includes).map_err(cannot)?;
        compiler.include_imports(true);
        compiler.open_files(files).map_err(cannot)?;
        let pool = compiler.descriptor_pool();
        // One file opened: its messages are the ones a registry's message indexes count in, and
        // its first is the type written when none is named.
        let mut opened = compiler.files().filter(|f| !f.is_import());
        let main = match (opened.next(), opened.next()) {
            (Some(file), None) => pool.get_file_by_name(file.name()),
            _ => None,
        };
        Ok(ProtoSchema { pool, main })
    }

    /// A schema from the Schema Registry: `.proto` text, importing `references` (`(import name,
    /// .proto text)`). Each may also be in the registry's serialized form, a base64
    /// `FileDescriptorProto` (what Confluent's serializers for Python and Go register).
    pub fn from_registry(
        text: &str,
        references: &[(String, String)],
    ) -> Result<ProtoSchema, ProtobufError> {
        const MAIN: &str = "sluice-registry-schema.proto";
        let mut resolver = ChainFileResolver::new();
        resolver.add(InMemory(
            std::iter::once((MAIN.to_string(), text.to_string()))
                .chain(references.iter().cloned())
                .collect(),
        ));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler
            .open_file(MAIN)
            .map_err(|e| ProtobufError::RegistryCompile(e.to_string()))?;
        let pool = compiler.descriptor_pool();
        let main = pool.get_file_by_name(MAIN);
        Ok(ProtoSchema { pool, main })
    }

    /// The message type named `name` (`package.Message`).
    pub fn message(&self, name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(name.trim_start_matches('.'))
    }

    /// The message type `name`, or the main file's first one when `name` is None (a
    /// descriptor set has no file of its own: it needs `name`).
    pub fn pick(&self, name: Option<&str>) -> Result<MessageDescriptor, ProtobufError> {
        let found = match name {
            Some(name) => self.message(name),
            None => self.message_at(&[0]),
        };
        found.ok_or_else(|| match name {
            Some(name) => ProtobufError::NoSuchMessage {
                name: name.to_string(),
                names: self.message_names(),
            },
            None if self.message_names().is_empty() => ProtobufError::NoMessages,
            None => ProtobufError::Unnamed {
                names: self.message_names(),
            },
        })
    }

    /// The names of every message type, for errors.
    pub fn message_names(&self) -> Vec<String> {
        self.pool
            .all_messages()
            .filter(|m| !m.full_name().starts_with("google.protobuf."))
            .map(|m| m.full_name().to_string())
            .collect()
    }

    /// The message type at `path` in the registry schema's file (the wire format's message
    /// indexes: the top-level message, then nested ones).
    pub fn message_at(&self, path: &[usize]) -> Option<MessageDescriptor> {
        let file = self.main.as_ref()?;
        let (first, rest) = path.split_first()?;
        let mut message = file.messages().nth(*first)?;
        for &i in rest {
            let child = message.child_messages().nth(i)?;
            message = child;
        }
        Some(message)
    }

    /// The message indexes of `message` in the registry schema's file.
    pub fn path_of(&self, message: &MessageDescriptor) -> Option<Vec<usize>> {
        let file = self.main.as_ref()?;
        let mut path = Vec::new();
        let mut current = message.clone();
        while let Some(parent) = current.parent_message() {
            path.push(parent.child_messages().position(|m| m == current)?);
            current = parent;
        }
        if current.parent_file() != *file {
            return None;
        }
        path.push(file.messages().position(|m| m == current)?);
        path.reverse();
        Some(path)
    }
}

/// `.proto` texts by name, for compiling a registry schema and its references.
struct InMemory(Vec<(String, String)>);

impl FileResolver for InMemory {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((n, text)) => match serialized(text) {
                Some(mut file) => {
                    file.name = Some(n.clone());
                    Ok(File::from_file_descriptor_proto(file))
                }
                None => File::from_source(n, text),
            },
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// A schema in the registry's serialized form: a base64 `FileDescriptorProto`. `.proto` text is
/// never base64 (it has spaces, `;` and `=` inside).
fn serialized(text: &str) -> Option<prost_reflect::prost_types::FileDescriptorProto> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// Reads a compiled descriptor set, or compiles `.proto` files, for `path`: a `.proto` file is
/// compiled with its directory and `includes` as import paths.
pub fn load(path: &Path, includes: &[PathBuf]) -> Result<ProtoSchema, ProtobufError> {
    if path.extension().is_some_and(|e| e == "proto") {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut all = vec![if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        }];
        all.extend(includes.iter().cloned());
        return ProtoSchema::compile(&[path.to_path_buf()], &all);
    }
    let bytes = std::fs::read(path).map_err(|e| ProtobufError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    ProtoSchema::from_descriptor_set(&bytes)
}
