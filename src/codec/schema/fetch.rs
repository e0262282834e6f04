//! Schemas fetched by id from a worker thread, with the schemas they reference.

use std::sync::Arc;

use crate::client::registry::{Registry, RegistryError, Schema};

/// Fetches a schema by id from a worker thread, blocking it (and so the input, by the bounded
/// channels) while the registry is unavailable.
#[derive(Clone)]
pub struct Fetcher {
    registry: Arc<Registry>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.registry.fmt(f)
    }
}

impl Fetcher {
    /// Fetches with `registry` on `runtime` (the pipeline's).
    pub fn new(registry: Arc<Registry>, runtime: tokio::runtime::Handle) -> Fetcher {
        Fetcher { registry, runtime }
    }

    /// Schema `id`: from the client's cache, else fetched (waiting while the registry is
    /// unavailable).
    pub(super) fn by_id(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(schema) = self.registry.cached(id) {
            return Ok(schema);
        }
        self.runtime.block_on(self.registry.by_id(id))
    }

    /// The texts of the schemas `schema` references, fetched by subject and version, each
    /// with the references of its own first.
    pub(super) fn references(
        &self,
        schema: &Schema,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), RegistryError> {
        for r in &schema.references {
            if out.iter().any(|(name, _)| *name == r.name) {
                continue;
            }
            let version = self
                .runtime
                .block_on(self.registry.version(&r.subject, Some(r.version)))?;
            self.references(&version.schema, out)?;
            out.push((r.name.clone(), version.schema.schema));
        }
        Ok(())
    }
}
