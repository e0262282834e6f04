//! The registry client against a registry served in the test: caching, retries, shutdown,
//! credentials, and the subject requests.

use super::*;
use crate::config::Secret;
use testkit::registry::Registry as Server;

const AVRO: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#;

fn client(server: &Server, auth: Option<HttpAuth>) -> (Registry, CancellationToken) {
    let config = RegistryConfig {
        url: format!("{}/", server.url),
        auth,
        tls: None,
        timeout: HumanDuration(Duration::from_secs(5)),
    };
    let retry = RetryConfig {
        initial_backoff: HumanDuration(Duration::from_millis(5)),
        max_backoff: HumanDuration(Duration::from_millis(20)),
        ..RetryConfig::default()
    };
    let stop = CancellationToken::new();
    let tls = trusting_nothing().unwrap();
    (
        Registry::new(&config, tls, retry, stop.clone()).unwrap(),
        stop,
    )
}

fn count(server: &Server, request: &str) -> usize {
    server.requests().iter().filter(|r| *r == request).count()
}

#[tokio::test]
async fn a_schema_id_is_fetched_once_however_many_ask() {
    let server = Server::start();
    let id = server.register("orders-value", "AVRO", AVRO);
    let (registry, _) = client(&server, None);
    let (a, b) = tokio::join!(registry.by_id(id), registry.by_id(id));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.schema, AVRO);
    assert_eq!(a.schema_type, SchemaType::Avro);
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(registry.by_id(id).await.unwrap().schema, AVRO);
    assert_eq!(count(&server, &format!("GET /schemas/ids/{id}")), 1);
    assert_eq!(
        registry.cached(id).map(|s| s.schema.clone()),
        Some(AVRO.to_string())
    );
    assert!(registry.cached(id + 1).is_none());
}

#[tokio::test]
async fn an_unknown_id_is_not_found_and_not_retried() {
    let server = Server::start();
    let (registry, _) = client(&server, None);
    let err = registry.by_id(77).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::NotFound(m) if m.contains("schema id 77 is not registered") && m.contains("40403")),
        "{err:?}"
    );
    assert_eq!(count(&server, "GET /schemas/ids/77"), 1);
}

#[tokio::test]
async fn an_outage_is_waited_out_and_shutdown_ends_the_wait() {
    let server = Arc::new(Server::start());
    let id = server.register("s", "PROTOBUF", "syntax = \"proto3\"; message M {}");
    let (registry, stop) = client(&server, None);
    let registry = Arc::new(registry);
    server.set_down(true);
    let fetch = tokio::spawn({
        let registry = registry.clone();
        async move { registry.by_id(id).await }
    });
    let path = format!("GET /schemas/ids/{id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&server, &path) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no retries");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.set_down(false);
    let schema = fetch.await.unwrap().unwrap();
    assert_eq!(schema.schema_type, SchemaType::Protobuf);

    server.set_down(true);
    let other = server.register("t", "AVRO", r#""string""#);
    let fetch = tokio::spawn({
        let registry = registry.clone();
        async move { registry.by_id(other).await }
    });
    let path = format!("GET /schemas/ids/{other}");
    while count(&server, &path) < 1 {
        assert!(tokio::time::Instant::now() < deadline, "never asked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    let err = fetch.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, RegistryError::Stopped(m) if m.contains("registry is down")),
        "{err:?}"
    );
}

#[tokio::test]
async fn credentials_go_with_every_request() {
    let server = Server::start();
    server.require_authorization("Basic dTpw");
    let id = server.register("s", "AVRO", AVRO);
    let auth = HttpAuth::Basic {
        user: "u".into(),
        password: Secret("p".into()),
    };
    let (registry, _) = client(&server, Some(auth));
    assert_eq!(registry.by_id(id).await.unwrap().schema, AVRO);
    let version = registry.version("s", None).await.unwrap();
    assert_eq!((version.id, version.version), (id, 1));
}

#[tokio::test]
async fn schemas_are_looked_up_registered_and_checked_by_subject() {
    let server = Server::start();
    let (registry, _) = client(&server, None);
    let schema = Schema {
        schema: AVRO.into(),
        schema_type: SchemaType::Avro,
        references: Vec::new(),
    };
    let subject = "team/orders-value";
    assert_eq!(registry.lookup(subject, &schema).await, Ok(None));
    assert_eq!(registry.compatible(subject, &schema).await, Ok(true));
    let id = registry.register(subject, &schema).await.unwrap();
    assert_eq!(server.versions(subject), [id]);
    assert_eq!(registry.register(subject, &schema).await, Ok(id));
    assert_eq!(registry.lookup(subject, &schema).await, Ok(Some(id)));
    let latest = registry.version(subject, None).await.unwrap();
    assert_eq!(
        (latest.id, latest.version, latest.schema),
        (id, 1, schema.clone())
    );
    assert_eq!(registry.compatible(subject, &schema).await, Ok(true));
    server.refuse_compatibility(subject);
    assert_eq!(registry.compatible(subject, &schema).await, Ok(false));
    let err = registry.version(subject, Some(9)).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::NotFound(m) if m.contains("40402")),
        "{err:?}"
    );
}
