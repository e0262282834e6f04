//! sluice: a stream processor that moves and reshapes events between Kafka, NATS and local
//! inputs and outputs, acknowledging an input only once everything derived from it is delivered.
//!
//! # Layout
//! - [`config`]: configuration files: `${VAR}` interpolation, YAML with positions, value types.
//! - [`delivery`]: acknowledgements, the in-flight budget, ordered positions, what a failure is.
//! - [`context`]: what a running pipeline shares with its input and outputs: the in-flight
//!   budget, acknowledgement channels and the control channel (rebalances, flushes).
//! - [`event`]: the event (payload, key, headers, timestamp, source position, ack).
//! - [`pipeline`]: the pipeline file schema, loaded and validated with every error at once.
//! - [`policy`]: the error policy: failed events dropped, dead-lettered, or the pipeline stops.
//! - [`client`]: Kafka and NATS clients shared by inputs and outputs (settings, auth, readiness),
//!   and HTTP authentication.
//! - [`codec`]: payload bytes to jq values and back; the JSON envelope of local outputs.
//! - [`source`]: inputs (stdin, file, generate, Kafka, NATS, JetStream, HTTP server).
//! - [`transform`]: steps (jq, filter, route) and the chain that runs them.
//! - [`sink`]: outputs (stdout, file, Kafka, NATS, JetStream, HTTP, object stores).
//! - [`runtime`]: wiring and running pipelines, the transform stage.
//! - [`lambda`]: Lambda mode: a pipeline's events are an AWS Lambda function's invocations.
//! - [`observe`]: what happens, as typed events that log and count in one place; health and the
//!   metrics endpoint.
//! - [`testing`]: a pipeline's test cases (`sluice test`, `sluice eval`), with nothing connected.
//! - [`cli`]: the `sluice` command's arguments and subcommands, which the binary calls.
//! - `conformance` (tests only): the checks every output and every input runs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod codec;
pub mod config;
#[cfg(test)]
mod conformance;
pub mod context;
pub mod delivery;
pub mod event;
pub mod lambda;
pub mod observe;
pub mod pipeline;
pub mod policy;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod testing;
pub mod transform;
