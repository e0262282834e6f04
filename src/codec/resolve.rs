//! The output's schema resolved against the Schema Registry when the pipeline starts: its id
//! under the subject (registered when allowed), or the subject's latest version.

use std::sync::Arc;

use super::avro::AvroSchema;
use super::payloads::Encoder;
use super::plan::{Reach, pick_message};
use super::protobuf::ProtoSchema;
use crate::client::registry::{Registry, Schema, SchemaType, Version};

/// The Avro encoder: the file's schema with its id under the subject (registered if allowed),
/// or the subject's latest version.
pub(super) async fn avro_encoder(
    file: &Option<(Arc<AvroSchema>, String)>,
    registry: &Option<(Reach, String)>,
    auto_register: bool,
    client: &impl Fn(&Reach) -> Result<Arc<Registry>, String>,
) -> Result<Encoder, String> {
    let Some((reach, subject)) = registry else {
        let (schema, _) = file.as_ref().ok_or("no schema")?;
        return Ok(Encoder::Avro {
            schema: schema.clone(),
            id: None,
        });
    };
    let registry = client(reach)?;
    if let Some((schema, text)) = file {
        let id = registered(&registry, subject, text, SchemaType::Avro, auto_register).await?;
        return Ok(Encoder::Avro {
            schema: schema.clone(),
            id: Some(id),
        });
    }
    let latest = latest(&registry, subject, SchemaType::Avro).await?;
    let schema = AvroSchema::parse(&latest.schema.schema, &[])
        .map_err(|e| format!("subject `{subject}`: {e}"))?;
    Ok(Encoder::Avro {
        schema: Arc::new(schema),
        id: Some(latest.id),
    })
}

/// The Protobuf encoder, as [`avro_encoder`] resolves Avro's.
pub(super) async fn proto_encoder(
    file: &Option<(ProtoSchema, Option<String>)>,
    message: &Option<String>,
    registry: &Option<(Reach, String)>,
    auto_register: bool,
    client: &impl Fn(&Reach) -> Result<Arc<Registry>, String>,
) -> Result<Encoder, String> {
    let Some((reach, subject)) = registry else {
        let (schema, _) = file.as_ref().ok_or("no schema")?;
        return Ok(Encoder::Protobuf {
            message: pick_message(schema, message.as_deref())?,
            header: None,
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
                return Err(format!(
                    "subject `{subject}`'s schema imports other subjects, which outputs do not support"
                ));
            }
            (
                latest.id,
                ProtoSchema::from_registry(&latest.schema.schema, &[])?,
            )
        }
    };
    let message = pick_message(&schema, message.as_deref())?;
    let path = schema.path_of(&message).ok_or_else(|| {
        format!(
            "{} is not defined in the subject's schema itself",
            message.full_name()
        )
    })?;
    Ok(Encoder::Protobuf {
        message,
        header: Some((id, path)),
    })
}

/// The latest version of `subject`, which must hold a schema of `kind`.
async fn latest(registry: &Registry, subject: &str, kind: SchemaType) -> Result<Version, String> {
    let latest = registry
        .version(subject, None)
        .await
        .map_err(|e| format!("subject `{subject}`: {e}"))?;
    if latest.schema.schema_type != kind {
        return Err(format!(
            "subject `{subject}` holds a {:?} schema, not {kind:?}",
            latest.schema.schema_type
        ));
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
) -> Result<u32, String> {
    let schema = Schema {
        schema: text.to_string(),
        schema_type,
        references: Vec::new(),
    };
    let at = |e: crate::client::registry::RegistryError| format!("subject `{subject}`: {e}");
    if let Some(id) = registry.lookup(subject, &schema).await.map_err(at)? {
        return Ok(id);
    }
    if !auto_register {
        return Err(format!(
            "schema_file is not registered under subject `{subject}`: register it, or set `auto_register: true`"
        ));
    }
    let id = registry.register(subject, &schema).await.map_err(at)?;
    tracing::info!(subject, id, "registered the output's schema");
    Ok(id)
}
