//! Finding (or creating) the durable consumer, retried while the server cannot answer.

use async_nats::jetstream::consumer::{self, pull};

use super::{DeliverPolicy, JetStreamInputConfig, read_error};
use crate::client::nats::ConsumerError;
use crate::delivery::ErrorKind;
use crate::observe::events::emit;
use crate::observe::events::jetstream::ConsumerNotReady;
use crate::source::{SourceContext, SourceError};
use std::time::Duration;

/// The first pause before setting up the consumer again, doubled after each failure up to
/// [`SETUP_RETRY_MAX`].
const SETUP_RETRY: Duration = Duration::from_millis(250);
const SETUP_RETRY_MAX: Duration = Duration::from_secs(5);

impl JetStreamInputConfig {
    fn pull_config(&self) -> pull::Config {
        let (filter_subject, filter_subjects) = match self.filter_subjects.as_slice() {
            [one] => (one.clone(), Vec::new()),
            many => (String::new(), many.to_vec()),
        };
        pull::Config {
            durable_name: Some(self.consumer.clone()),
            filter_subject,
            filter_subjects,
            deliver_policy: match self.deliver_policy {
                DeliverPolicy::All => consumer::DeliverPolicy::All,
                DeliverPolicy::New => consumer::DeliverPolicy::New,
                DeliverPolicy::Last => consumer::DeliverPolicy::Last,
                DeliverPolicy::LastPerSubject => consumer::DeliverPolicy::LastPerSubject,
            },
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self.ack_wait.0,
            max_deliver: self.max_deliver,
            max_ack_pending: self.max_ack_pending(),
            ..Default::default()
        }
    }

    /// Makes sure the durable consumer exists: looked up when bound, else created or updated to
    /// match this configuration. Returns its `max_ack_pending` (None: unlimited).
    pub(super) async fn set_up(
        &self,
        js: &async_nats::jetstream::Context,
    ) -> Result<Option<usize>, ConsumerError> {
        let stream = js
            .get_stream(&self.stream)
            .await
            .map_err(|source| ConsumerError::Stream {
                stream: self.stream.clone(),
                source,
            })?;
        let info = if self.bind {
            let found = stream.consumer_info(&self.consumer).await;
            found.map_err(|source| ConsumerError::Lookup {
                stream: self.stream.clone(),
                consumer: self.consumer.clone(),
                source,
            })?
        } else {
            let created = stream.create_consumer(self.pull_config()).await;
            let created = created.map_err(|source| ConsumerError::Create {
                stream: self.stream.clone(),
                consumer: self.consumer.clone(),
                source,
            })?;
            created.cached_info().clone()
        };
        // -1 (or 0, left to the server's own limit) is no limit of the consumer's own.
        Ok(usize::try_from(info.config.max_ack_pending)
            .ok()
            .filter(|n| *n > 0))
    }

    /// Sets up the consumer, retrying while the server is unreachable; returns its
    /// `max_ack_pending` (see [`JetStreamInputConfig::set_up`]). `Ok(None)` when shutdown came
    /// first.
    pub(super) async fn set_up_until_ready(
        &self,
        js: &async_nats::jetstream::Context,
        ctx: &SourceContext,
    ) -> Result<Option<Option<usize>>, SourceError> {
        let mut pause = SETUP_RETRY;
        loop {
            // A request to a server that does not answer waits for its timeout: shutdown may
            // not.
            let set_up = tokio::select! {
                biased;
                _ = ctx.shutdown.cancelled() => return Ok(None),
                set_up = self.set_up(js) => set_up,
            };
            match set_up {
                Ok(limit) => return Ok(Some(limit)),
                Err(m) if m.kind() == ErrorKind::Retriable => {
                    emit(ConsumerNotReady {
                        pipeline: ctx.telemetry.pipeline(),
                        error: &m,
                    });
                }
                Err(m) => return Err(read_error(m)),
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(SETUP_RETRY_MAX);
        }
    }
}
