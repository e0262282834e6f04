//! The Confluent Schema Registry's REST API, as far as inputs and outputs use it: a schema by its
//! id, a subject's versions, looking up and registering a schema under a subject, and asking
//! whether a schema is compatible with a subject's latest. Every schema id is fetched once per
//! process; answers that may pass (the registry down, slow, overloaded) are retried with the
//! pipeline's retry settings, so an outage holds the pipeline back instead of failing events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::client::http::HttpAuth;
use crate::client::retry::{RetryConfig, jitter};
use crate::client::tls::{TlsConfig, trusting_nothing};
use crate::config::{HumanDuration, Validator};
use crate::observe::events::emit;
use crate::observe::events::registry::{RegistryAnswersAgain, RegistryUnavailable};

/// Where the Schema Registry is and how to reach it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL of the registry, `http://` or `https://` (`https://registry.example.com:8081`).
    pub url: String,
    /// `bearer: TOKEN`, or `basic: {user, password}` (Confluent Cloud: the API key and secret).
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// TLS for `https://`: `ca_file`, `cert_file` + `key_file` (mutual TLS), `server_name`,
    /// `insecure_skip_verify`; without it, the system's certificate authorities.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// How long one request may take before it is tried again.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

// Registry answers are small; a request this slow is a registry in trouble.
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

impl RegistryConfig {
    /// Checks the block at `path`; builds its TLS configuration, or None when there was a problem.
    pub fn validate(&self, path: &str, v: &mut Validator<'_>) -> Option<rustls::ClientConfig> {
        let https = self.url.starts_with("https://");
        let tls = match (&self.tls, https) {
            (Some(tls), _) => tls.build(&format!("{path}.tls"), v),
            (None, true) => TlsConfig::default().build(path, v),
            (None, false) => trusting_nothing()
                .map_err(|e| v.error_at(path, format!("TLS: {e}")))
                .ok(),
        };
        match reqwest::Url::parse(&self.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(_) => v.error_at(&format!("{path}.url"), "url must be http:// or https://"),
            Err(e) => v.error_at(&format!("{path}.url"), format!("url is not a URL: {e}")),
        }
        if self.timeout.0.is_zero() {
            v.error_at(&format!("{path}.timeout"), "timeout must be more than 0");
        }
        if let Some(auth) = &self.auth {
            auth.validate(&format!("{path}.auth"), v);
        }
        tls
    }
}

/// The kind of a schema, as the registry names it (absent means Avro).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    /// An Avro schema, as JSON text.
    #[default]
    Avro,
    /// A Protobuf schema, as `.proto` text.
    Protobuf,
    /// A JSON Schema.
    Json,
}

/// A schema another schema imports: the file name it is imported as, and where it is registered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Reference {
    /// The name it is imported by (a `.proto` file name, an Avro full name).
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// Its version in that subject.
    pub version: i32,
}

/// A schema as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// The schema's text.
    pub schema: String,
    /// Its kind.
    #[serde(default, skip_serializing_if = "is_avro")]
    pub schema_type: SchemaType,
    /// The schemas it imports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

fn is_avro(t: &SchemaType) -> bool {
    *t == SchemaType::Avro
}

/// A version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Version {
    /// The schema's id, which payloads carry.
    pub id: u32,
    /// The version's number in its subject.
    pub version: i32,
    /// The schema.
    #[serde(flatten)]
    pub schema: Schema,
}

/// Why a request to the registry failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not answer (down, slow, overloaded, refusing the credentials): it may
    /// pass, so the request is tried again.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    /// What was asked for does not exist (a schema id, a subject, a version).
    #[error("{0}")]
    NotFound(String),
    /// The registry refused the request (an invalid or incompatible schema).
    #[error("schema registry refused the request: {0}")]
    Refused(String),
    /// Shutdown came while the registry was unavailable.
    #[error("stopped while the schema registry was unavailable: {0}")]
    Stopped(String),
}

/// The body of an error answer.
#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<i64>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

#[derive(Deserialize)]
struct Compatibility {
    is_compatible: bool,
}

const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A client of one registry, shared by every worker of a pipeline.
pub struct Registry {
    client: reqwest::Client,
    base: String,
    auth: Option<HeaderValue>,
    retry: RetryConfig,
    stop: CancellationToken,
    /// Each id's schema, fetched once: concurrent askers wait for the one request.
    by_id: Mutex<HashMap<u32, Arc<OnceCell<Arc<Schema>>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("url", &self.base).finish()
    }
}

impl Registry {
    /// A client for `config` (its TLS as [`RegistryConfig::validate`] built it) that retries
    /// with `retry` until `stop` is cancelled.
    pub fn new(
        config: &RegistryConfig,
        mut tls: rustls::ClientConfig,
        retry: RetryConfig,
        stop: CancellationToken,
    ) -> Result<Registry, RegistryError> {
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .timeout(config.timeout.0)
            .use_preconfigured_tls(tls)
            .build()
            .map_err(|e| RegistryError::Refused(format!("building the HTTP client: {e}")))?;
        let auth = match &config.auth {
            Some(auth) => {
                let mut value = HeaderValue::from_str(&auth.header_value().0).map_err(|_| {
                    RegistryError::Refused("auth holds characters a header cannot".into())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Registry {
            client,
            base: config.url.trim_end_matches('/').to_string(),
            auth,
            retry,
            stop,
            by_id: Mutex::new(HashMap::new()),
        })
    }

    /// The schema with `id` (`GET /schemas/ids/{id}`), from the process's cache after the first
    /// time.
    pub async fn by_id(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        let cell = {
            let mut ids = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
            ids.entry(id).or_default().clone()
        };
        let schema = cell
            .get_or_try_init(|| async {
                let path = format!("/schemas/ids/{id}");
                let schema: Schema =
                    self.retrying(|| self.get(&path))
                        .await
                        .map_err(|e| match e {
                            RegistryError::NotFound(m) => RegistryError::NotFound(format!(
                                "schema id {id} is not registered: {m}"
                            )),
                            e => e,
                        })?;
                Ok::<_, RegistryError>(Arc::new(schema))
            })
            .await?;
        Ok(schema.clone())
    }

    /// The schema with `id` if it was fetched before, without asking the registry.
    pub fn cached(&self, id: u32) -> Option<Arc<Schema>> {
        let ids = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        ids.get(&id).and_then(|cell| cell.get().cloned())
    }

    /// A version of `subject` (`GET /subjects/{subject}/versions/{version}`); `None` is the latest.
    pub async fn version(
        &self,
        subject: &str,
        version: Option<i32>,
    ) -> Result<Version, RegistryError> {
        let version = version.map_or_else(|| "latest".to_string(), |v| v.to_string());
        let path = format!("/subjects/{}/versions/{version}", encoded(subject));
        self.retrying(|| self.get(&path)).await
    }

    /// The id of `schema` if it is registered under `subject` (`POST /subjects/{subject}`).
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &Schema,
    ) -> Result<Option<u32>, RegistryError> {
        let path = format!("/subjects/{}", encoded(subject));
        match self
            .retrying(|| self.post::<Registered>(&path, schema))
            .await
        {
            Ok(found) => Ok(Some(found.id)),
            Err(RegistryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers `schema` under `subject` (`POST /subjects/{subject}/versions`): its id, new or
    /// the one it already had.
    pub async fn register(&self, subject: &str, schema: &Schema) -> Result<u32, RegistryError> {
        let path = format!("/subjects/{}/versions", encoded(subject));
        let registered: Registered = self.retrying(|| self.post(&path, schema)).await?;
        Ok(registered.id)
    }

    /// Whether `schema` is compatible with the latest version of `subject`, by the subject's
    /// compatibility level (`POST /compatibility/subjects/{subject}/versions/latest`). A subject
    /// with no versions yet accepts anything.
    pub async fn compatible(&self, subject: &str, schema: &Schema) -> Result<bool, RegistryError> {
        let path = format!(
            "/compatibility/subjects/{}/versions/latest",
            encoded(subject)
        );
        match self
            .retrying(|| self.post::<Compatibility>(&path, schema))
            .await
        {
            Ok(answer) => Ok(answer.is_compatible),
            Err(RegistryError::NotFound(_)) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Runs `request` until it gets an answer that will not pass by itself, backing off between
    /// attempts as outputs do; gives up only at shutdown.
    async fn retrying<T, F, Fut>(&self, request: F) -> Result<T, RegistryError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let mut failures = 0u32;
        loop {
            match request().await {
                Err(RegistryError::Unavailable(reason)) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        emit(RegistryUnavailable {
                            url: &self.base,
                            failures,
                            reason: &reason,
                        });
                    }
                    let wait = jitter(self.retry.backoff(failures));
                    tokio::select! {
                        _ = self.stop.cancelled() => return Err(RegistryError::Stopped(reason)),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                answer => {
                    if failures > 0 {
                        emit(RegistryAnswersAgain {
                            url: &self.base,
                            failures,
                        });
                    }
                    return answer;
                }
            }
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, RegistryError> {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        schema: &Schema,
    ) -> Result<T, RegistryError> {
        let body = serde_json::to_vec(schema)
            .map_err(|e| RegistryError::Refused(format!("encoding the request: {e}")))?;
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, MEDIA_TYPE)
            .body(body);
        self.send(request).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<T, RegistryError> {
        request = request.header(ACCEPT, format!("{MEDIA_TYPE}, application/json"));
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::Unavailable(without_url(e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| RegistryError::Unavailable(without_url(e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                RegistryError::Unavailable(format!("an answer that is not the registry's: {e}"))
            });
        }
        Err(classify(status, &body))
    }
}

/// What an error answer means: retried when it may pass, else refused or not found.
fn classify(status: StatusCode, body: &[u8]) -> RegistryError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let message = match &parsed {
        Some(ErrorBody {
            error_code: Some(code),
            message: Some(m),
        }) => format!("{m} (error {code}, HTTP {})", status.as_u16()),
        Some(ErrorBody {
            message: Some(m), ..
        }) => format!("{m} (HTTP {})", status.as_u16()),
        _ => format!(
            "HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    };
    match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound(message),
        // Credentials and rate limits are the registry's or the operator's to fix, not the
        // event's: hold back until they are.
        StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::REQUEST_TIMEOUT
        | StatusCode::TOO_MANY_REQUESTS => RegistryError::Unavailable(message),
        s if s.is_server_error() => RegistryError::Unavailable(message),
        _ => RegistryError::Refused(message),
    }
}

/// A subject as one path segment.
fn encoded(subject: &str) -> String {
    utf8_percent_encode(subject, NON_ALPHANUMERIC).to_string()
}

/// reqwest's error without the URL (which may carry credentials), with its causes.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
