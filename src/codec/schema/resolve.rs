//! The output's schema resolved against the Schema Registry when the pipeline starts: its id
//! under the subject (registered when allowed), or the subject's latest version.

use std::sync::Arc;

use super::error::SchemaError;
use super::plan::Reach;
use crate::client::registry::{Registry, RegistryError, Schema, SchemaType, Version};
use crate::codec::avro::{AvroEncoder, AvroSchema};
use crate::codec::protobuf::{ProtoSchema, ProtobufEncoder};
use crate::codec::wire::{Framed, Header};
use crate::observe::events::emit;
use crate::observe::events::registry::SchemaRegistered;

/// The Avro encoder: the file's schema with its id under the subject (registered if allowed),
/// or the subject's latest version.
pub async fn avro_encoder(
    file: &Option<(Arc<AvroSchema>, String)>,
    registry: &Option<(Reach, String)>,
    auto_register: bool,
    client: &impl Fn(&Reach) -> Result<Arc<Registry>, SchemaError>,
) -> Result<Framed<AvroEncoder>, SchemaError> {
    let Some((reach, subject)) = registry else {
        let (schema, _) = file.as_ref().ok_or(SchemaError::NoSchema)?;
        return Ok(Framed {
            header: None,
            body: AvroEncoder {
                schema: schema.clone(),
            },
        });
    };
    let registry = client(reach)?;
    let (id, schema) = match file {
        Some((schema, text)) => {
            let id = registered(&registry, subject, text, SchemaType::Avro, auto_register).await?;
            (id, schema.clone())
        }
        None => {
            let latest = latest(&registry, subject, SchemaType::Avro).await?;
            let schema = AvroSchema::parse(&latest.schema.schema, &[]).map_err(|source| {
                SchemaError::Avro {
                    subject: subject.clone(),
                    source,
                }
            })?;
            (latest.id, Arc::new(schema))
        }
    };
    Ok(Framed {
        header: Some(Header { id, indexes: None }),
        body: AvroEncoder { schema },
    })
}

/// The Protobuf encoder, as [`avro_encoder`] resolves Avro's.
pub async fn proto_encoder(
    file: &Option<(ProtoSchema, Option<String>)>,
    message: &Option<String>,
    registry: &Option<(Reach, String)>,
    auto_register: bool,
    client: &impl Fn(&Reach) -> Result<Arc<Registry>, SchemaError>,
) -> Result<Framed<ProtobufEncoder>, SchemaError> {
    let Some((reach, subject)) = registry else {
        let (schema, _) = file.as_ref().ok_or(SchemaError::NoSchema)?;
        return Ok(Framed {
            header: None,
            body: ProtobufEncoder {
                message: schema.pick(message.as_deref())?,
            },
        });
    };
    let registry = client(reach)?;
    let (id, schema) = match file {
        Some((_, Some(text))) => {
            let id = registered(
                &registry,
                subject,
                text,
                SchemaType::Protobuf,
                auto_register,
            )
            .await?;
            (id, ProtoSchema::from_registry(text, &[])?)
        }
        _ => {
            let latest = latest(&registry, subject, SchemaType::Protobuf).await?;
            if !latest.schema.references.is_empty() {
                return Err(SchemaError::Imports(subject.clone()));
            }
            (
                latest.id,
                ProtoSchema::from_registry(&latest.schema.schema, &[])?,
            )
        }
    };
    let message = schema.pick(message.as_deref())?;
    let Some(path) = schema.path_of(&message) else {
        return Err(SchemaError::NotInSubject(message.full_name().to_string()));
    };
    Ok(Framed {
        header: Some(Header {
            id,
            indexes: Some(path),
        }),
        body: ProtobufEncoder { message },
    })
}

/// The latest version of `subject`, which must hold a schema of `kind`.
async fn latest(
    registry: &Registry,
    subject: &str,
    kind: SchemaType,
) -> Result<Version, SchemaError> {
    let latest = registry.version(subject, None).await.map_err(at(subject))?;
    if latest.schema.schema_type != kind {
        return Err(SchemaError::WrongType {
            subject: subject.to_string(),
            found: latest.schema.schema_type,
            wanted: kind,
        });
    }
    Ok(latest)
}

/// The id of `text` under `subject`, registering it when it is not there and `auto_register`.
async fn registered(
    registry: &Registry,
    subject: &str,
    text: &str,
    schema_type: SchemaType,
    auto_register: bool,
) -> Result<u32, SchemaError> {
    let schema = Schema {
        schema: text.to_string(),
        schema_type,
        references: Vec::new(),
    };
    if let Some(id) = registry
        .lookup(subject, &schema)
        .await
        .map_err(at(subject))?
    {
        return Ok(id);
    }
    if !auto_register {
        return Err(SchemaError::NotRegistered(subject.to_string()));
    }
    let id = registry
        .register(subject, &schema)
        .await
        .map_err(at(subject))?;
    emit(SchemaRegistered { subject, id });
    Ok(id)
}

/// The registry's failure about `subject`.
fn at(subject: &str) -> impl Fn(RegistryError) -> SchemaError + '_ {
    move |source| SchemaError::Registry {
        subject: subject.to_string(),
        source,
    }
}
