//! Bad input of every kind, mixed into good events: each bad event ends as a dead letter with
//! its reason, every good one is delivered, and the process keeps running.

use std::collections::BTreeMap;
use std::time::Duration;

use testkit::nats::{NatsServer, create_stream, publish_all, read_stream, stored};
use testkit::{Worker, eventually, log_records, pipeline, signal, sluice, unique, wait_exit};

/// A kind of bad input: its payload for event `i`, and the step and a part of the reason its
/// dead letter must carry.
struct Kind {
    name: &'static str,
    payload: fn(u64) -> Vec<u8>,
    step: &'static str,
    reason: &'static str,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "truncated JSON",
        payload: |i| format!("{{\"id\":{i},\"n\":").into_bytes(),
        step: "decode",
        reason: "EOF while parsing",
    },
    Kind {
        name: "invalid UTF-8",
        payload: |i| {
            let mut p = format!("{{\"id\":{i},\"s\":\"").into_bytes();
            p.extend_from_slice(&[0xff, 0xfe]);
            p.extend_from_slice(b"\"}");
            p
        },
        step: "decode",
        reason: "invalid unicode",
    },
    Kind {
        name: "empty",
        payload: |_| Vec::new(),
        step: "decode",
        reason: "EOF while parsing a value",
    },
    Kind {
        name: "deeply nested",
        payload: |_| "[".repeat(10_000).into_bytes(),
        step: "decode",
        reason: "recursion limit exceeded",
    },
    Kind {
        name: "oversized",
        payload: |i| format!("{{\"id\":{i},\"pad\":\"{}\"}}", "x".repeat(100_000)).into_bytes(),
        step: "limits",
        reason: "over max_event_bytes (65536)",
    },
    Kind {
        name: "not an object",
        payload: |i| format!("\"event {i}\"").into_bytes(),
        step: "transforms[0] (jq)",
        reason: "with \"fail\"",
    },
    Kind {
        name: "jq error()",
        payload: |i| format!("{{\"id\":{i},\"fail\":true}}").into_bytes(),
        step: "transforms[0] (jq)",
        reason: "refused",
    },
    Kind {
        name: "NaN",
        payload: |i| format!("{{\"id\":{i},\"n\":NaN}}").into_bytes(),
        step: "decode",
        reason: "expected value",
    },
    Kind {
        name: "trailing data",
        payload: |i| format!("{{\"id\":{i},\"n\":1}} and more").into_bytes(),
        step: "decode",
        reason: "trailing characters",
    },
    Kind {
        name: "fan-out over the limit",
        payload: |i| format!("{{\"id\":{i},\"explode\":true}}").into_bytes(),
        step: "transforms[0] (jq)",
        reason: "max_fanout",
    },
    Kind {
        name: "a number where an object is required",
        payload: |i| format!("{{\"id\":{i},\"as_number\":true}}").into_bytes(),
        step: "transforms[1] (jq)",
        reason: "cannot index 42",
    },
    Kind {
        name: "byte order mark",
        payload: |i| format!("\u{feff}{{\"id\":{i},\"n\":1}}").into_bytes(),
        step: "decode",
        reason: "expected value",
    },
];

fn header(m: &async_nats::jetstream::Message, name: &str) -> String {
    m.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
        .unwrap_or_else(|| panic!("dead letter without {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_is_dead_lettered_with_its_reason_among_100k_good_events() {
    let server = NatsServer::start();
    let js = server.jetstream().await;
    let name = |p: &str| unique(p).replace('-', "_");
    let (input, output, dead) = (name("IN"), name("OUT"), name("DEAD"));
    create_stream(&js, &input, &[format!("{input}.>")]).await;
    create_stream(&js, &output, &[format!("{output}.>")]).await;
    create_stream(&js, &dead, &[format!("{dead}.>")]).await;

    // Every 97th event is bad, the kinds taking turns; the stream sequence is i + 1.
    let good_n = 100_000u64;
    let mut bad: BTreeMap<u64, (usize, Vec<u8>)> = BTreeMap::new();
    let mut messages = Vec::new();
    let (mut i, mut good) = (0u64, 0u64);
    while good < good_n {
        let payload = if i % 97 == 50 {
            let kind = bad.len() % KINDS.len();
            let p = (KINDS[kind].payload)(i);
            bad.insert(i + 1, (kind, p.clone()));
            p
        } else {
            good += 1;
            format!("{{\"id\":{i},\"n\":{i}}}").into_bytes()
        };
        messages.push((format!("{input}.e"), bytes::Bytes::from(payload)));
        i += 1;
    }
    let total = i;
    publish_all(&js, messages).await;

    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(
        dir.path(),
        "mix",
        &format!(
            "\
input:
  jetstream:
    url: {url}
    stream: {input}
    consumer: proc
transforms:
  - jq: 'if .fail then error(\"refused \\(.id)\") elif .as_number then 42 elif .explode then range(0; 100) | {{id: .}} else . end'
  - jq: '{{id, n: (.n + 1)}}'
output:
  jetstream:
    url: {url}
    subject: {output}.e
errors:
  output:
    jetstream:
      url: {url}
      subject: {dead}.e
settings:
  max_event_bytes: 64KiB
  max_fanout: 10
",
            url = server.url()
        ),
    );
    let log = dir.path().join("w.log");
    let mut w = Worker::start(sluice!(), &file, &log, &[]);
    let expected_dead = bad.len() as u64;
    eventually("every event out", Duration::from_secs(300), || async {
        let out = stored(&js, &output).await?;
        let dl = stored(&js, &dead).await?;
        (out == good_n && dl == expected_dead).then_some(())
    })
    .await;
    assert!(w.try_wait().unwrap().is_none(), "the process kept running");

    // Good events: all of them, once each, in input order, transformed.
    let ids: Vec<u64> = read_stream(&js, &output)
        .await
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            assert_eq!(v["n"], v["id"].as_u64().unwrap() + 1);
            v["id"].as_u64().unwrap()
        })
        .collect();
    let want: Vec<u64> = (0..total).filter(|i| !bad.contains_key(&(i + 1))).collect();
    assert_eq!(ids, want, "every good event once, in order");

    // Bad events: each one dead-lettered once, untouched, with its step and reason.
    let mut per_kind = vec![0usize; KINDS.len()];
    let letters = read_stream(&js, &dead).await;
    let mut seen = std::collections::HashSet::new();
    for m in &letters {
        let source = header(m, "sluice-error-source");
        let seq: u64 = source
            .strip_prefix(&format!("jetstream:{input}/"))
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("source {source}"));
        let (kind, payload) = &bad[&seq];
        let k = &KINDS[*kind];
        assert!(seen.insert(seq), "{source} dead-lettered twice");
        assert_eq!(&m.payload[..], &payload[..], "{}: original payload", k.name);
        assert_eq!(header(m, "sluice-error-step"), k.step, "{}", k.name);
        let reason = header(m, "sluice-error-reason");
        assert!(
            reason.contains(k.reason),
            "{}: reason {reason:?} should mention {:?}",
            k.name,
            k.reason
        );
        assert_eq!(header(m, "sluice-error-pipeline"), "mix");
        per_kind[*kind] += 1;
    }
    assert_eq!(letters.len() as u64, expected_dead);
    assert!(per_kind.iter().all(|n| *n > 0), "{per_kind:?}");

    signal(&w, "TERM");
    assert!(wait_exit(&mut w, Duration::from_secs(30)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    let summary = &log_records(&text, "pipeline stopped")[0];
    assert_eq!(summary["received"], total, "{summary}");
    assert_eq!(summary["sent"], good_n, "{summary}");
    assert_eq!(summary["failed"], expected_dead, "{summary}");
    assert_eq!(summary["dead_lettered"], expected_dead, "{summary}");
    println!(
        "{total} events, {expected_dead} bad of {} kinds: {per_kind:?}",
        KINDS.len()
    );
}
