//! Ports, and the HTTP endpoints a worker serves (`/metrics`, `/health/...`).

use std::io::{Read, Write};
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (bound, read, released: someone else may take it before the
/// caller binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// GET a path on 127.0.0.1:`port`; returns (status, body), or None when nothing listens yet.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_at("127.0.0.1", port, path)
}

/// GET a path on `host`:`port` (an IP address); returns (status, body), or None when nothing
/// answers yet.
pub fn http_get_at(host: &str, port: u16, path: &str) -> Option<(u16, String)> {
    let ip: std::net::IpAddr = host.parse().ok()?;
    let mut s =
        std::net::TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Values of a metric in a Prometheus text `body`, each with its series, whose labels contain
/// every `(name, value)` in `labels`.
pub fn metric_values(body: &str, metric: &str, labels: &[(&str, &str)]) -> Vec<(String, f64)> {
    body.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with('{'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}
