//! What an output is to the pipeline: its configuration ([`OutputSpec`]) says what it is and
//! builds it; the built output ([`BuiltOutput`]) runs. The registry in `sink/mod.rs` lists each
//! output once and dispatches to these two traits.

use super::Batches;
use std::borrow::Cow;

use super::{SinkContext, SinkError};
use crate::codec::schema::FormatConfig;
use crate::config::Build;

/// An output's configuration, as read from the pipeline file.
pub trait OutputSpec {
    /// Its key under `output:` (and under `errors:`).
    const KIND: &'static str;
    /// Whether it talks to a broker, and so reports a connection state for readiness.
    const REMOTE: bool = false;
    /// What it builds into.
    type Built: BuiltOutput;

    /// Builds the output without connecting: everything that can be known without connecting
    /// is checked and what it runs with is prepared. Problems are reported under `b.path`
    /// (`output.kafka`); None when it cannot be built.
    fn build(&self, b: Build<'_, '_>) -> Option<Self::Built>;

    /// The most payload bytes it gathers into one write before writing (an object store's
    /// objects); 0 for an output that writes as events come.
    fn gathers_bytes(&self) -> usize {
        0
    }

    /// What the workers encode results as for it (its `format`), unless JSON.
    fn format(&self) -> Option<Cow<'_, FormatConfig>> {
        None
    }

    /// The topic or subject of events with no destination of their own, where it has one.
    fn destination(&self) -> Option<&str> {
        None
    }
}

/// A built output.
pub trait BuiltOutput: std::fmt::Debug + Clone + Send + 'static {
    /// Delivers batches until the channel closes, completing each event's ack once delivered
    /// (see [`super::deliver`] for the loop most outputs run).
    fn run(
        self,
        rx: Batches,
        ctx: SinkContext,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Why it would refuse an event with this payload before sending it (a Parquet row that
    /// does not fit the schema); None when it would take it. For `sluice eval`.
    fn rejects(&self, _payload: &bytes::Bytes) -> Option<String> {
        None
    }
}
