//! Bus clients shared by inputs and outputs: connection settings, authentication, building the
//! client, readiness, and how each bus's errors are classified; and what HTTP input and output
//! share.

mod declare;
pub mod http;
pub mod kafka;
pub mod nats;
pub mod registry;
pub mod retry;
pub mod tls;

pub(crate) use declare::connected_config;

use crate::delivery::Cause;

/// What an error from a bus means for the event being delivered, decided once per bus
/// ([`kafka::classify`], [`nats::classify_publish`]) for every output of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// It may pass by itself (a broker down or restarting, a timeout, no leader): try again.
    Retriable,
    /// Refused; trying again would get the same answer. [`Cause::Event`] when it is about the
    /// event (too large, invalid), [`Cause::Output`] when about where it goes (not authorised,
    /// nothing stores the subject).
    Refused(Cause),
    /// The client can deliver nothing more (a fatal idempotence error): the output stops.
    Fatal,
}
