//! The `http` output's settings, and checking them when the file is loaded.

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::HttpOutput;
use crate::client::http::HttpAuth;
use crate::client::tls::TlsConfig;
use crate::config::{Build, ByteSize, HumanDuration};
use crate::event::Event;
use crate::sink::OutputSpec;

/// Sends events to an HTTP endpoint, several per request. Answers 429, 408 and 5xx, and
/// connection errors, are retried with the output's retry settings (waiting at least what a
/// `Retry-After` asks); any other answer that is not 2xx refuses the request's events, which
/// follow the error policy with the status and the start of the answer as the reason.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpOutputConfig {
    /// `http://` or `https://` URL. `{destination}`, `{key}` and `{partition}` in it are replaced
    /// by the event's (set by a `route` step, or read with the event); events for different
    /// URLs go in different requests.
    pub url: String,
    /// `post`, `put` or `patch`.
    #[serde(default)]
    pub method: HttpMethod,
    /// Headers sent with every request; their values may name `{destination}`, `{key}` and
    /// `{partition}` as `url` does.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// `bearer: TOKEN`, or `basic: {user, password}`.
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// TLS for `https://`: `ca_file`, `cert_file` + `key_file` (mutual TLS), `server_name`,
    /// `insecure_skip_verify`; without it, the system's certificate authorities.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// How many events, and bytes of payload, one request carries at most.
    #[serde(default)]
    pub batch: HttpBatch,
    /// `ndjson` (a payload per line), `json_array` (the payloads as one JSON array) or `single`
    /// (one event per request, its payload as the body).
    #[serde(default)]
    pub encoding: HttpEncoding,
    /// How long a request may take, answer included, before it is retried.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

/// The request method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpMethod {
    /// POST.
    #[default]
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
}

/// The most one request carries.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpBatch {
    /// Events per request.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Bytes of payload per request (a larger single event goes alone).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// How long events may wait for more to fill a request; `0s` sends what is there.
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
}

/// How a request's body holds its events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HttpEncoding {
    /// Each payload on a line (`application/x-ndjson`).
    #[default]
    Ndjson,
    /// The payloads as the items of one JSON array (`application/json`); payloads must be JSON.
    JsonArray,
    /// One event per request, its payload the body (`application/json`).
    Single,
}

impl Default for HttpBatch {
    fn default() -> Self {
        HttpBatch {
            max_events: default_max_events(),
            max_bytes: default_max_bytes(),
            max_wait: default_max_wait(),
        }
    }
}

// A request per 500 events amortises its round trip like a batch of the other outputs.
fn default_max_events() -> usize {
    500
}

// Well under the body limits web servers and gateways set by default (often 1 MiB to 10 MiB).
fn default_max_bytes() -> ByteSize {
    ByteSize(1024 * 1024)
}

// Events are sent as soon as they are there: waiting to fill requests is a choice for the
// endpoint's sake.
fn default_max_wait() -> HumanDuration {
    HumanDuration(Duration::ZERO)
}

// Long enough for a slow endpoint, short enough that a hung one is retried.
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// The event fields `url` and header values may name, with a value standing for each when the
/// file is checked.
const FIELDS: [(&str, &str); 3] = [
    ("{destination}", "destination"),
    ("{key}", "key"),
    ("{partition}", "0"),
];

/// `template` with the fields it names taken from `event`; Err names a field the event lacks.
pub(super) fn fill(template: &str, event: &Event) -> Result<String, &'static str> {
    let mut out = template.to_string();
    if out.contains("{destination}") {
        let destination = event.destination.as_deref().ok_or("destination")?;
        out = out.replace("{destination}", destination);
    }
    if out.contains("{key}") {
        let key = event.key.as_deref().ok_or("key")?;
        out = out.replace("{key}", &String::from_utf8_lossy(key));
    }
    if out.contains("{partition}") {
        let partition = event.partition.ok_or("partition")?;
        out = out.replace("{partition}", &partition.to_string());
    }
    Ok(out)
}

/// Whether `template` names an event field.
pub(super) fn templated(template: &str) -> bool {
    FIELDS.iter().any(|(field, _)| template.contains(field))
}

/// `template` with a stand-in value for each field, to check it when the file is loaded.
pub(super) fn sample(template: &str) -> String {
    FIELDS
        .iter()
        .fold(template.to_string(), |t, (field, value)| {
            t.replace(field, value)
        })
}

impl OutputSpec for HttpOutputConfig {
    const KIND: &'static str = "http";
    type Built = HttpOutput;

    fn build(&self, b: Build<'_, '_>) -> Option<HttpOutput> {
        let Build { path, v, .. } = b;
        let before = v.errors.len();
        match reqwest::Url::parse(&sample(&self.url)) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => v.error_at(
                &format!("{path}.url"),
                "url must be an http:// or https:// URL with a host",
            ),
            Err(e) => v.error_at(&format!("{path}.url"), format!("invalid url: {e}")),
        }
        for (name, value) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(&sample(value)).is_err()
            {
                v.error_at_key(
                    &format!("{path}.headers"),
                    name,
                    format!("`{name}` is not a header HTTP can carry"),
                );
            }
        }
        if self.batch.max_events == 0 {
            v.error_at(
                &format!("{path}.batch.max_events"),
                "max_events must be at least 1",
            );
        }
        if self.timeout.0.is_zero() {
            v.error_at(&format!("{path}.timeout"), "timeout must be more than 0");
        }
        if let Some(auth) = &self.auth {
            auth.validate(&format!("{path}.auth"), v);
        }
        let https = self.url.starts_with("https://");
        let tls = match (&self.tls, https) {
            (Some(tls), _) => tls.build(&format!("{path}.tls"), v),
            (None, true) => TlsConfig::default().build(path, v),
            (None, false) => None,
        };
        if v.errors.len() > before {
            return None;
        }
        Some(HttpOutput::new(self.clone(), tls))
    }
}
