//! What a component's harness tells the checks: how to point it at a place of its own, how to
//! put messages there or read them back, and what the component cannot be made to do.

use bytes::Bytes;

/// Events per batch an input under check hands on.
pub const BATCH: usize = 2;

/// How the output checks drive one output.
pub trait OutputHarness {
    /// The output's configuration (the YAML under `output:`), writing to a place of its own.
    fn output(&self) -> String;
    /// The payloads the place holds, in the order they arrived.
    async fn delivered(&self) -> Vec<Bytes>;
    /// The output configured so that each event's first `attempts` attempts fail for a passing
    /// reason; None for an output none of whose failures can be made to pass.
    async fn flaky(&self, _attempts: u32) -> Option<String> {
        None
    }
    /// The output configured to refuse a payload for what it is, and that payload; None for an
    /// output that refuses nothing.
    async fn refusing(&self) -> Option<(String, Bytes)> {
        None
    }
}

/// How the input checks drive one input.
pub trait InputHarness {
    /// The input's configuration (the YAML under `input:`), reading from a place of its own;
    /// `messages` are as many as the check will put there (for an input that makes its own).
    fn input(&self, messages: usize) -> String;
    /// Waits until what is put from now on reaches the input (core NATS keeps nothing for a
    /// subscriber that is not there yet).
    async fn ready(&self) {}
    /// Puts `payloads` where the input reads them, in order (an HTTP client sends them in one
    /// request, again and again until it is answered 200).
    async fn put(&self, payloads: &[Bytes]);
    /// How many of the payloads put so far the bus counts as acknowledged (a committed offset,
    /// stream acknowledgements, requests answered 200); None for an input that acknowledges
    /// nothing.
    async fn acknowledged(&self) -> Option<usize> {
        None
    }
    /// Whether an input started again reads what the last one left unacknowledged (from a
    /// committed offset, redelivered, sent again, or read again from the start); false where the
    /// bus keeps nothing for it (core NATS).
    fn reads_again(&self) -> bool {
        true
    }
    /// The most events the input asks its bus for at once: it may read that many past a budget
    /// that had room for one more.
    fn reads_ahead(&self) -> usize {
        BATCH
    }
}
