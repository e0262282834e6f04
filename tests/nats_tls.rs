//! NATS inputs and outputs over TLS and with authentication, against a real nats-server with
//! certificates made in the test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use testkit::nats::NatsServer;
use testkit::pki::Pki;
use testkit::{Worker, pipeline, sluice, unique, wait_exit, wait_for};

/// A nats-server requiring TLS, and client certificates too when `mutual`.
fn server(pki: &Pki, mutual: bool) -> NatsServer {
    let (cert, key, ca) = (
        pki.show("server.pem"),
        pki.show("server-key.pem"),
        pki.show("ca.pem"),
    );
    let mut args = vec!["--tls", "--tlscert", &cert, "--tlskey", &key];
    if mutual {
        args.extend(["--tlsverify", "--tlscacert", &ca]);
    }
    NatsServer::start_with(&args)
}

/// A client of the test's own, trusting the test authority, with the client certificate.
async fn client(pki: &Pki, server: &NatsServer) -> async_nats::Client {
    let tls = tls_config(pki);
    async_nats::ConnectOptions::new()
        .require_tls(true)
        .tls_client_config(tls)
        .connect(server.url())
        .await
        .unwrap()
}

fn tls_config(pki: &Pki) -> rustls::ClientConfig {
    // The same client configuration sluice builds from a `tls` block: the publishing side is
    // not what these tests check.
    sluice::client::tls::TlsConfig {
        ca_file: Some(pki.path("ca.pem")),
        cert_file: Some(pki.path("client.pem")),
        key_file: Some(pki.path("client-key.pem")),
        server_name: Some("nats.test".into()),
        ..Default::default()
    }
    .rustls()
    .unwrap()
}

/// A NATS-to-NATS pipeline whose input and output both use `tls` (a YAML flow mapping, or no
/// TLS) and `auth`.
fn tls_pipeline(
    dir: &Path,
    url: &str,
    tls: Option<&str>,
    auth: &str,
    input: &str,
    output: &str,
) -> PathBuf {
    let tls = tls.map_or(String::new(), |tls| format!("\n    tls: {tls}"));
    pipeline(
        dir,
        "tls",
        &format!(
            "\
input:
  nats:
    url: {url}
    subjects: [\"{input}\"]{tls}
    auth: {auth}
output:
  nats:
    url: {url}
    subject: {output}{tls}
    auth: {auth}
errors: stop
"
        ),
    )
}

fn ready(port: u16) -> Option<(u16, String)> {
    testkit::http_get(port, "/health/ready")
}

/// Publishes numbered events until `count` have come out in order (the input subscribes a
/// moment after readiness), and returns the ids that came out.
async fn flow(client: &async_nats::Client, input: &str, output: &str, count: u64) -> Vec<u64> {
    let mut out = client.subscribe(output.to_string()).await.unwrap();
    client.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Probe until the pipeline carries an event.
    let first = loop {
        client
            .publish(input.to_string(), "{\"probe\":true}".into())
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_millis(200), out.next()).await {
            Ok(Some(_)) => break true,
            _ => assert!(tokio::time::Instant::now() < deadline, "nothing came out"),
        }
    };
    assert!(first);
    for i in 0..count {
        client
            .publish(input.to_string(), format!("{{\"id\":{i}}}").into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let mut ids = Vec::new();
    while (ids.len() as u64) < count {
        let msg = tokio::time::timeout_at(deadline, out.next())
            .await
            .expect("events came out before the deadline")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        if let Some(id) = v["id"].as_u64() {
            ids.push(id);
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_over_tls_and_mutual_tls() {
    let pki = Pki::generate();
    for (mutual, tls) in [
        (
            false,
            format!(
                "{{ca_file: \"{}\", server_name: nats.test}}",
                pki.show("ca.pem")
            ),
        ),
        (
            true,
            format!(
                "{{ca_file: \"{}\", cert_file: \"{}\", key_file: \"{}\", server_name: nats.test}}",
                pki.show("ca.pem"),
                pki.show("client.pem"),
                pki.show("client-key.pem")
            ),
        ),
    ] {
        let server = server(&pki, mutual);
        let (input, output) = (unique("in"), unique("out"));
        let dir = tempfile::tempdir().unwrap();
        let file = tls_pipeline(dir.path(), &server.url(), Some(&tls), "{}", &input, &output);
        let port = testkit::free_port();
        let log = dir.path().join("w.log");
        let mut w = Worker::with_metrics(sluice!(), &file, &log, port);
        wait_for("ready over TLS", Duration::from_secs(60), || {
            ready(port).filter(|r| r.0 == 200)
        });
        let client = client(&pki, &server).await;
        let ids = flow(&client, &input, &output, 100).await;
        assert_eq!(ids, (0..100).collect::<Vec<_>>(), "mutual: {mutual}");
        testkit::signal(&w, "TERM");
        assert!(wait_exit(&mut w, Duration::from_secs(30)).success());
    }
}

/// A worker that cannot connect stays alive and unready, and its log says why.
fn refused(server: &NatsServer, tls: Option<&str>, auth: &str, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = tls_pipeline(
        dir.path(),
        &server.url(),
        tls,
        auth,
        &unique("in"),
        &unique("out"),
    );
    let port = testkit::free_port();
    let log = dir.path().join("w.log");
    let mut w = Worker::with_metrics(sluice!(), &file, &log, port);
    let records = wait_for(
        &format!("a connection error naming {why}"),
        Duration::from_secs(60),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let found: Vec<_> =
                testkit::log_records(&text, "nats connection attempt failed; retrying")
                    .into_iter()
                    .filter(|r| r["error"].as_str().is_some_and(|e| e.contains(why)))
                    .collect();
            (!found.is_empty()).then_some(found)
        },
    );
    assert!(!records.is_empty());
    let (status, body) = wait_for("the health endpoint", Duration::from_secs(30), || {
        ready(port)
    });
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not connected"), "{body}");
    assert!(w.try_wait().unwrap().is_none(), "the worker keeps running");
    testkit::signal(&w, "TERM");
    let status = wait_exit(&mut w, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_wrong_authority_or_a_missing_client_certificate_is_a_clear_error() {
    let pki = Pki::generate();
    let server = server(&pki, true);
    refused(
        &server,
        Some(&format!(
            "{{ca_file: \"{}\", server_name: nats.test}}",
            pki.show("other-ca.pem")
        )),
        "{}",
        "UnknownIssuer",
    );
    refused(
        &server,
        Some(&format!(
            "{{ca_file: \"{}\", server_name: nats.test}}",
            pki.show("ca.pem")
        )),
        "{}",
        "the server may require a client certificate",
    );
}

#[test]
fn wrong_credentials_are_a_clear_error() {
    let server = NatsServer::start_with(&["--user", "app", "--pass", "right"]);
    refused(
        &server,
        None,
        "{user: app, password: wrong}",
        "authorization violation",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_seed_file_authenticates() {
    let user = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("user.nk");
    std::fs::write(&seed, format!("{}\n", user.seed().unwrap())).unwrap();
    let conf = dir.path().join("server.conf");
    std::fs::write(
        &conf,
        format!(
            "authorization {{ users = [ {{ nkey: {} }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let server = NatsServer::start_with(&["-c", &conf.display().to_string()]);
    let (input, output) = (unique("in"), unique("out"));
    let auth = format!("{{nkey_file: \"{}\"}}", seed.display());
    let file = tls_pipeline(dir.path(), &server.url(), None, &auth, &input, &output);
    let port = testkit::free_port();
    let log = dir.path().join("w.log");
    let mut w = Worker::with_metrics(sluice!(), &file, &log, port);
    wait_for("ready with an nkey", Duration::from_secs(60), || {
        ready(port).filter(|r| r.0 == 200)
    });
    let client = async_nats::ConnectOptions::with_nkey(user.seed().unwrap())
        .connect(server.url())
        .await
        .unwrap();
    let ids = flow(&client, &input, &output, 50).await;
    assert_eq!(ids, (0..50).collect::<Vec<_>>());
    testkit::signal(&w, "TERM");
    assert!(wait_exit(&mut w, Duration::from_secs(30)).success());
}

#[test]
fn a_tls_block_against_a_plaintext_server_says_the_server_did_not_answer_tls_and_exits() {
    let pki = Pki::generate();
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let tls = format!(
        "{{ca_file: \"{}\", server_name: nats.test}}",
        pki.show("ca.pem")
    );
    let file = tls_pipeline(
        dir.path(),
        &server.url(),
        Some(&tls),
        "{}",
        &unique("in"),
        &unique("out"),
    );
    let log = dir.path().join("run.log");
    let mut run = sluice!()
        .arg("run")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Retrying would not help: the run ends with the reason.
    let status = wait_exit(&mut run, Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{status:?}\n{text}");
    let expected = format!("the server did not answer TLS at {}", server.url());
    assert!(text.contains(&expected), "{text}");
    assert!(
        text.contains("InvalidContentType"),
        "the underlying cause is kept: {text}"
    );
}
