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
