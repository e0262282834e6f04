//! A Schema Registry of the caller's own, in the test process: the REST endpoints of the
//! Confluent Schema Registry that clients use (register, look up, versions, schemas by id,
//! compatibility), kept in memory, with switches for an outage and for required credentials.
//! No registry server can be installed where the tests run, so this stands in for one; it
//! follows the documented API, and Python's confluent-kafka client talks to it as to the real
//! one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// One registered schema.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    schema: String,
    schema_type: String,
    references: Value,
}

#[derive(Default)]
struct Inner {
    schemas: Vec<Stored>,
    /// Each subject's versions: schema ids, oldest first.
    subjects: HashMap<String, Vec<u32>>,
    /// Answer 503 to everything.
    down: bool,
    /// The `Authorization` header every request must carry.
    authorization: Option<String>,
    /// Subjects whose compatibility check says no.
    incompatible: Vec<String>,
    /// Requests served, by method and path (`GET /schemas/ids/1`).
    requests: Vec<String>,
}

/// A running registry; stops when dropped.
pub struct Registry {
    /// Base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type Shared = Arc<Mutex<Inner>>;

impl Registry {
    /// Starts a registry on a free port of 127.0.0.1, served by a thread of its own (so that
    /// sync and async tests alike can start one).
    pub fn start() -> Registry {
        let inner: Shared = Arc::default();
        let app = Router::new()
            .route("/schemas/ids/{id}", get(schema_by_id))
            .route("/subjects", get(subjects))
            .route("/subjects/{subject}", post(lookup))
            .route("/subjects/{subject}/versions", get(versions).post(register))
            .route("/subjects/{subject}/versions/{version}", get(version))
            .route(
                "/compatibility/subjects/{subject}/versions/{version}",
                post(compatibility),
            )
            .with_state(inner.clone());
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind the registry's port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("registry runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Registry {
            url,
            inner,
            stop: Some(stop),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// While `down`, every request is answered 503, as a registry that is restarting.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Requires every request to carry `Authorization: <value>` (401 otherwise).
    pub fn require_authorization(&self, value: &str) {
        self.lock().authorization = Some(value.to_string());
    }

    /// Makes compatibility checks against `subject` answer that the schema is incompatible.
    pub fn refuse_compatibility(&self, subject: &str) {
        self.lock().incompatible.push(subject.to_string());
    }

    /// Registers `schema` (of `schema_type`: `AVRO`, `PROTOBUF` or `JSON`) under `subject`
    /// directly; its id.
    pub fn register(&self, subject: &str, schema_type: &str, schema: &str) -> u32 {
        let stored = Stored {
            schema: schema.to_string(),
            schema_type: schema_type.to_string(),
            references: json!([]),
        };
        self.lock().register(subject, stored)
    }

    /// The requests served so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// The ids registered under `subject`, oldest first.
    pub fn versions(&self, subject: &str) -> Vec<u32> {
        self.lock()
            .subjects
            .get(subject)
            .cloned()
            .unwrap_or_default()
    }

    /// The text of schema `id`.
    pub fn schema(&self, id: u32) -> Option<String> {
        let inner = self.lock();
        inner
            .schemas
            .get((id as usize).checked_sub(1)?)
            .map(|s| s.schema.clone())
    }
}

impl Inner {
    fn register(&mut self, subject: &str, stored: Stored) -> u32 {
        let id = match self.schemas.iter().position(|s| *s == stored) {
            Some(i) => i as u32 + 1,
            None => {
                self.schemas.push(stored);
                self.schemas.len() as u32
            }
        };
        let versions = self.subjects.entry(subject.to_string()).or_default();
        if !versions.contains(&id) {
            versions.push(id);
        }
        id
    }

    fn stored(&self, id: u32) -> Option<&Stored> {
        self.schemas.get((id as usize).checked_sub(1)?)
    }

    /// What every request goes through: the log, the outage switch, the credentials.
    fn admit(&mut self, request: String, headers: &HeaderMap) -> Result<(), Refusal> {
        self.requests.push(request);
        if self.down {
            return Err(Refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                50003,
                "registry is down",
            ));
        }
        if let Some(want) = &self.authorization {
            let given = headers.get("authorization").and_then(|v| v.to_str().ok());
            if given != Some(want.as_str()) {
                return Err(Refusal(StatusCode::UNAUTHORIZED, 40101, "Unauthorized"));
            }
        }
        Ok(())
    }

    fn version_body(&self, subject: &str, version: usize, id: u32) -> Value {
        let stored = self.stored(id).cloned().unwrap_or(Stored {
            schema: String::new(),
            schema_type: "AVRO".into(),
            references: json!([]),
        });
        let mut body = json!({
            "subject": subject,
            "version": version,
            "id": id,
            "schema": stored.schema,
            "references": stored.references,
        });
        if stored.schema_type != "AVRO" {
            body["schemaType"] = json!(stored.schema_type);
        }
        body
    }
}

/// An error answer: status, the registry's error code, and its message.
struct Refusal(StatusCode, u32, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({"error_code": code, "message": message});
    (status, axum::Json(body)).into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/vnd.schemaregistry.v1+json")],
        body.to_string(),
    )
        .into_response()
}

/// The schema a register or look-up request carries.
fn requested(body: &[u8]) -> Result<Stored, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal(StatusCode::UNPROCESSABLE_ENTITY, 42201, "Invalid JSON"))?;
    let schema = value["schema"].as_str().ok_or(Refusal(
        StatusCode::UNPROCESSABLE_ENTITY,
        42201,
        "Invalid schema",
    ))?;
    Ok(Stored {
        schema: schema.to_string(),
        schema_type: value["schemaType"].as_str().unwrap_or("AVRO").to_string(),
        references: match &value["references"] {
            Value::Null => json!([]),
            r => r.clone(),
        },
    })
}

/// What a handler answers: the answer to a request, or the registry's refusal of it.
type Answer = Result<Response, Refusal>;

/// The registry's state, once it admits `request` (recorded as asked): it is up, and the
/// credentials it wants came with `headers`.
fn admitted<'a>(
    s: &'a Shared,
    request: String,
    headers: &HeaderMap,
) -> Result<MutexGuard<'a, Inner>, Refusal> {
    let mut inner = s.lock().unwrap_or_else(|p| p.into_inner());
    inner.admit(request, headers)?;
    Ok(inner)
}

async fn schema_by_id(State(s): State<Shared>, Path(id): Path<u32>, headers: HeaderMap) -> Answer {
    let inner = admitted(&s, format!("GET /schemas/ids/{id}"), &headers)?;
    let Some(stored) = inner.stored(id) else {
        return Err(Refusal(StatusCode::NOT_FOUND, 40403, "Schema not found"));
    };
    let mut body = json!({"schema": stored.schema, "references": stored.references});
    if stored.schema_type != "AVRO" {
        body["schemaType"] = json!(stored.schema_type);
    }
    Ok(ok(body))
}

async fn subjects(State(s): State<Shared>, headers: HeaderMap) -> Answer {
    let inner = admitted(&s, "GET /subjects".into(), &headers)?;
    let mut names: Vec<&String> = inner.subjects.keys().collect();
    names.sort();
    Ok(ok(json!(names)))
}

async fn versions(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let inner = admitted(&s, format!("GET /subjects/{subject}/versions"), &headers)?;
    match inner.subjects.get(&subject) {
        Some(ids) => Ok(ok(json!((1..=ids.len()).collect::<Vec<_>>()))),
        None => Err(Refusal(StatusCode::NOT_FOUND, 40401, "Subject not found")),
    }
}

async fn version(
    State(s): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let request = format!("GET /subjects/{subject}/versions/{version}");
    let inner = admitted(&s, request, &headers)?;
    let Some(ids) = inner.subjects.get(&subject) else {
        return Err(Refusal(StatusCode::NOT_FOUND, 40401, "Subject not found"));
    };
    let n = match version.as_str() {
        "latest" | "-1" => ids.len(),
        v => v.parse().unwrap_or(0),
    };
    match ids.get(n.wrapping_sub(1)) {
        Some(&id) => Ok(ok(inner.version_body(&subject, n, id))),
        None => Err(Refusal(StatusCode::NOT_FOUND, 40402, "Version not found")),
    }
}

async fn register(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let mut inner = admitted(&s, format!("POST /subjects/{subject}/versions"), &headers)?;
    let stored = requested(&body)?;
    Ok(ok(json!({"id": inner.register(&subject, stored)})))
}

async fn lookup(
    State(s): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let inner = admitted(&s, format!("POST /subjects/{subject}"), &headers)?;
    let stored = requested(&body)?;
    let Some(ids) = inner.subjects.get(&subject) else {
        return Err(Refusal(StatusCode::NOT_FOUND, 40401, "Subject not found"));
    };
    let found = ids
        .iter()
        .enumerate()
        .find(|(_, id)| inner.stored(**id) == Some(&stored));
    match found {
        Some((i, &id)) => Ok(ok(inner.version_body(&subject, i + 1, id))),
        None => Err(Refusal(StatusCode::NOT_FOUND, 40403, "Schema not found")),
    }
}

async fn compatibility(
    State(s): State<Shared>,
    Path((subject, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request = format!("POST /compatibility/subjects/{subject}/versions/{version}");
    let inner = admitted(&s, request, &headers)?;
    requested(&body)?;
    if !inner.subjects.contains_key(&subject) {
        return Err(Refusal(StatusCode::NOT_FOUND, 40401, "Subject not found"));
    }
    Ok(ok(
        json!({"is_compatible": !inner.incompatible.contains(&subject)}),
    ))
}
