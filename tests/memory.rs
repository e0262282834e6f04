//! Memory stays bounded when a fast input feeds a slow output: reading waits for the output
//! (bounded channels, the in-flight byte budget) instead of buffering.

use std::io::Read;
use std::time::{Duration, Instant};

use testkit::{pipeline, signal, wait_exit};

/// Resident set size of a process, in bytes.
fn rss(pid: u32) -> Option<u64> {
    testkit::measure::memory_kib(pid, "VmRSS").map(|kb| kb * 1024)
}

#[test]
fn a_fast_input_into_a_slow_output_for_a_minute_keeps_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Events of about 10 KB, generated as fast as the pipeline takes them.
    let budget = 4 * 1024 * 1024;
    let batch = 100;
    let file = pipeline(
        dir.path(),
        "mem",
        &format!(
            "\
input:
  generate:
    template: '{{id: ., pad: (\"x\" * 10000)}}'
output:
  file:
    path: {fifo}
errors: stop
settings:
  batch_size: {batch}
  max_in_flight_bytes: {budget}
",
            fifo = fifo.display()
        ),
    );
    let port = testkit::free_port();
    let mut w = testkit::Process(
        testkit::sluice!()
            .args(["run", "--metrics-addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(&file)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = w.id();

    // The slow output: the pipe is read at about 2 MB/s (some 200 events/s), in order.
    let reader = std::thread::spawn(move || {
        let mut pipe = std::fs::File::open(&fifo).unwrap();
        let mut chunk = vec![0u8; 20_000];
        let mut text = Vec::new();
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        text
    });

    let start = Instant::now();
    let mut samples = Vec::new();
    let mut most_in_flight = 0.0f64;
    while start.elapsed() < Duration::from_secs(60) {
        if let Some(r) = rss(pid) {
            samples.push((start.elapsed(), r));
        }
        if let Some((_, body)) = testkit::http_get(port, "/metrics")
            && let Some((_, v)) = testkit::metric_values(&body, "sluice_bytes_in_flight", &[])
                .first()
                .cloned()
        {
            most_in_flight = most_in_flight.max(v);
        }
        // A sampling interval, not a synchronisation.
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(w.try_wait().unwrap().is_none(), "still running");
    signal(&w, "TERM");
    let text = reader.join().unwrap();
    assert!(wait_exit(&mut w, Duration::from_secs(30)).success());

    // The output got every generated event up to the shutdown, once each, in order.
    let ids: Vec<u64> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(ids.len() > 1000, "only {} events came out", ids.len());
    assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>());

    // Reading waited for the output: at most the budget plus the batch being handed on.
    let event_bytes = (10_020 + sluice::event::EVENT_OVERHEAD) as f64;
    assert!(
        most_in_flight <= budget as f64 + batch as f64 * event_bytes,
        "{most_in_flight} bytes in flight"
    );
    let peak = samples.iter().map(|s| s.1).max().unwrap();
    let first_half = samples
        .iter()
        .filter(|s| s.0 < Duration::from_secs(30))
        .map(|s| s.1)
        .max()
        .unwrap();
    let second_half = samples
        .iter()
        .filter(|s| s.0 >= Duration::from_secs(30))
        .map(|s| s.1)
        .max()
        .unwrap();
    println!(
        "peak RSS {:.1} MiB (first 30 s {:.1} MiB, last 30 s {:.1} MiB), most bytes in flight {:.1} MiB, {} events out",
        peak as f64 / 1048576.0,
        first_half as f64 / 1048576.0,
        second_half as f64 / 1048576.0,
        most_in_flight / 1048576.0,
        ids.len()
    );
    assert!(peak < 150 * 1024 * 1024, "peak RSS {peak} bytes");
    assert!(
        second_half <= first_half + first_half / 5,
        "RSS grew from {first_half} to {second_half} bytes"
    );
}

/// The peak resident set size of a process so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A line of 400 MB on stdin is never held whole: it is skipped past `max_event_bytes` and
/// dead-lettered as its first 64 KiB with its real size, and the lines around it go through.
#[test]
fn a_huge_line_is_dead_lettered_as_a_prefix_without_reading_it_into_memory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.jsonl");
    let out = dir.path().join("out.jsonl");
    let file = pipeline(
        dir.path(),
        "huge",
        &format!(
            "input:\n  stdin: {{}}\ntransforms:\n  - jq: .\noutput:\n  file:\n    path: {}\nerrors:\n  output:\n    file:\n      path: {}\n",
            out.display(),
            dead.display()
        ),
    );
    let mut child = testkit::sluice!()
        .arg("run")
        .arg(&file)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let size: usize = 400 * 1024 * 1024;
    let writer = std::thread::spawn(move || {
        // `{"big":"` (8 bytes), x to make up the size, `"}`.
        stdin.write_all(b"{\"n\":1}\n{\"big\":\"").unwrap();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut left = size - 10;
        while left > 0 {
            let n = left.min(chunk.len());
            stdin.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        stdin.write_all(b"\"}\n{\"n\":2}\n").unwrap();
        // Kept open until the test has read the peak, so the process is still there.
        stdin
    });
    testkit::wait_for(
        "the dead letter and both small lines",
        Duration::from_secs(120),
        || (testkit::lines(&dead).len() == 1 && testkit::lines(&out).len() == 2).then_some(()),
    );
    let peak = peak_rss(pid).expect("the process is running");
    drop(writer.join().unwrap());
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
    println!(
        "peak RSS {:.1} MiB for a line of {size} bytes",
        peak as f64 / 1048576.0
    );
    assert!(peak < 150 * 1024 * 1024, "peak RSS {peak} bytes");

    assert_eq!(testkit::lines(&out), ["{\"n\":1}", "{\"n\":2}"]);
    let letter: serde_json::Value = serde_json::from_str(&testkit::lines(&dead)[0]).unwrap();
    let headers = &letter["headers"];
    assert_eq!(headers["sluice-error-step"], "limits");
    assert_eq!(headers["sluice-error-source"], "stdin:2");
    assert_eq!(headers["sluice-error-truncated"], "true");
    assert_eq!(headers["sluice-error-original-size"], size.to_string());
    let prefix = letter["payload_text"].as_str().unwrap();
    assert_eq!(prefix.len(), 64 * 1024);
    assert!(prefix.starts_with("{\"big\":\"xxx"));
}

/// `curl` POSTing the file `body` as NDJSON to `port`: the status and the answer's body.
fn post_ndjson(port: u16, body: &std::path::Path) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "120",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
        ])
        .args(["-H", "Content-Type: application/x-ndjson", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (answer, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), answer.to_string())
}

/// A request is taken only within the in-flight budget, whatever its body: a body of 10 MiB of
/// one-byte events (over five million of them), alone or three at once, is answered 413 (too
/// many events for one request, or for the whole budget) and the worker stays within the
/// budget plus a bounded overhead; a request the budget has room for is taken whole and every
/// event of it delivered.
#[test]
fn an_http_request_is_taken_only_within_the_in_flight_budget() {
    let dir = tempfile::tempdir().unwrap();
    let attack = dir.path().join("attack.ndjson");
    // max_body_bytes (10 MiB) of `1\n` lines.
    std::fs::write(&attack, b"1\n".repeat(10 * 1024 * 1024 / 2 - 8)).unwrap();
    let fine = dir.path().join("fine.ndjson");
    let lines: String = (0..10_000).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    std::fs::write(&fine, lines).unwrap();
    // With the default per-request limit, then with a limit so high only the budget refuses.
    for (round, limit) in ["", "\n    max_events_per_request: 100000000"]
        .into_iter()
        .enumerate()
    {
        let out = dir.path().join(format!("out-{round}.jsonl"));
        let port = testkit::free_port();
        let file = pipeline(
            dir.path(),
            &format!("budget-{round}"),
            &format!(
                "input:\n  http_server:\n    address: 127.0.0.1:{port}{limit}\noutput:\n  file:\n    path: {}\nerrors: stop\n",
                out.display()
            ),
        );
        let log = dir.path().join(format!("budget-{round}.log"));
        let mut w = testkit::Worker::start(testkit::sluice!(), &file, &log, &[]);
        testkit::wait_for("the server listening", Duration::from_secs(30), || {
            testkit::logged(&log, "http_server: listening").then_some(())
        });
        let pid = w.id();
        let idle = peak_rss(pid).expect("the worker is running");

        let (status, answer) = post_ndjson(port, &attack);
        assert_eq!(status, 413, "round {round}: {answer}");
        let alone = peak_rss(pid).expect("the worker is running");
        let at_once: Vec<_> = (0..3)
            .map(|_| {
                let attack = attack.clone();
                std::thread::spawn(move || post_ndjson(port, &attack))
            })
            .collect();
        for (status, answer) in at_once.into_iter().map(|t| t.join().unwrap()) {
            assert!(
                matches!(status, 413 | 429),
                "round {round}: {status} {answer}"
            );
        }
        let three = peak_rss(pid).expect("the worker is running");

        // What the budget has room for is taken whole, and every event of it delivered.
        let (status, answer) = post_ndjson(port, &fine);
        assert_eq!(status, 200, "round {round}: {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"accepted": 10_000, "dead_lettered": 0})
        );
        let got: Vec<i64> = testkit::lines(&out)
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["i"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(got, (0..10_000).collect::<Vec<_>>(), "round {round}");
        w.stop(Duration::from_secs(30));

        println!(
            "round {round}: peak RSS {:.1} MiB idle, {:.1} MiB after one 10 MiB request, {:.1} MiB after three at once",
            idle as f64 / 1048576.0,
            alone as f64 / 1048576.0,
            three as f64 / 1048576.0
        );
        // The default budget (32 MiB), the bodies being read and the process itself.
        let bound = 120 * 1024 * 1024;
        assert!(alone < bound, "round {round}: peak RSS {alone} bytes");
        assert!(three < bound, "round {round}: peak RSS {three} bytes");
    }
}
