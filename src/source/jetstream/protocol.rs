//! What JetStream's pull protocol says in subjects and payloads: the reply subject of a
//! delivered message, and the negative acknowledgements sluice sends.

use std::time::Duration;

use bytes::Bytes;

use crate::config::HumanDuration;

/// How long the server keeps a pull request waiting for messages. Short, so that a request lost
/// with a server restart is replaced soon.
pub(super) const PULL_EXPIRES: Duration = Duration::from_secs(2);
/// How long after `PULL_EXPIRES` a request with no answer at all counts as lost.
pub(super) const PULL_GRACE: Duration = Duration::from_secs(1);

/// What a JetStream message's reply subject says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Delivery {
    /// Delivery attempt, from 1.
    pub(super) delivered: i64,
    /// Stream sequence.
    pub(super) stream_seq: u64,
    /// When the stream stored it, nanoseconds since the Unix epoch.
    pub(super) stored_ns: i64,
    /// Messages left for the consumer.
    pub(super) pending: u64,
}

/// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the form with
/// a domain and account hash before the stream name (and maybe a token after).
pub(super) fn parse_reply(reply: &str) -> Option<Delivery> {
    let rest = reply.strip_prefix("$JS.ACK.")?;
    let tokens: Vec<&str> = rest.split('.').collect();
    let numbers = match tokens.len() {
        7 => &tokens[2..],
        9.. => &tokens[4..9],
        _ => return None,
    };
    Some(Delivery {
        delivered: numbers[0].parse().ok()?,
        stream_seq: numbers[1].parse().ok()?,
        stored_ns: numbers[3].parse().ok()?,
        pending: numbers[4].parse().ok()?,
    })
}

/// `-NAK` for a message given back at shutdown, delayed until this process's pull requests have
/// expired so that it goes to another replica instead of back to this one.
pub(super) fn stop_nak() -> Bytes {
    Bytes::from(format!(
        "-NAK {{\"delay\":{}}}",
        (PULL_EXPIRES + PULL_GRACE).as_nanos()
    ))
}

/// `-NAK` with the backoff for the given delivery attempt.
pub(super) fn nak(backoff: &[HumanDuration], delivered: i64) -> Bytes {
    let attempt = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
    match backoff.get(attempt).or(backoff.last()) {
        Some(delay) => Bytes::from(format!("-NAK {{\"delay\":{}}}", delay.0.as_nanos())),
        None => Bytes::from_static(b"-NAK"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_in_both_formats() {
        let v1 = parse_reply("$JS.ACK.ORDERS.proc.3.1042.1040.1700000000123456789.17").unwrap();
        assert_eq!(
            v1,
            Delivery {
                delivered: 3,
                stream_seq: 1042,
                stored_ns: 1_700_000_000_123_456_789,
                pending: 17
            }
        );
        let v2 =
            parse_reply("$JS.ACK.hub.ACCHASH.ORDERS.proc.1.7.7.1700000000000000000.0.tok").unwrap();
        assert_eq!((v2.delivered, v2.stream_seq, v2.pending), (1, 7, 0));
        assert_eq!(parse_reply("$JS.ACK.ORDERS.proc.x.1.1.1.1"), None);
        assert_eq!(parse_reply("_INBOX.abc"), None);
    }

    #[test]
    fn nak_delay_follows_the_backoff_by_attempt() {
        let backoff: Vec<HumanDuration> = [1, 5]
            .map(|s| HumanDuration(Duration::from_secs(s)))
            .to_vec();
        assert_eq!(nak(&backoff, 1), "-NAK {\"delay\":1000000000}");
        assert_eq!(nak(&backoff, 2), "-NAK {\"delay\":5000000000}");
        assert_eq!(nak(&backoff, 9), "-NAK {\"delay\":5000000000}");
        assert_eq!(nak(&[], 1), "-NAK");
    }
}
