//! Bus clients shared by inputs and outputs: connection settings, authentication, building the
//! client, readiness, and how each bus's errors are classified.

pub mod kafka;
pub mod nats;
pub mod tls;
