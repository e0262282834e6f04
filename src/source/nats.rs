//! The `nats` input: core NATS subjects, optionally in a queue group. At-most-once.

use std::sync::Arc;

use futures_util::StreamExt;

use super::intake::Gathered;
use super::{BuiltInput, InputSpec};
use super::{SourceContext, SourceError};
use crate::client::nats::{
    Connector, NatsError, SubjectMemo, check_subject, nats_config, to_event_at,
};
use crate::codec::CodecConfig;
use crate::config::Build;
use crate::delivery::{Ack, Outcome};
use crate::event::Position;
use crate::observe::events::emit;
use crate::observe::events::nats::{NatsStoppedBeforeSubscribing, NatsSubscribed};

nats_config! {
    /// Subscribes to subjects (wildcards allowed). Core NATS is at-most-once: a message published
    /// while no replica is subscribed, or dropped because a replica fell behind (a slow consumer),
    /// is gone. Use `jetstream` where every event matters.
    pub struct NatsInputConfig {
        /// Subjects to subscribe to; `*` and `>` wildcards allowed.
        pub subjects: Vec<String>,
        /// Queue group: replicas in the same group share the messages, each handled by one.
        #[serde(default)]
        pub queue_group: Option<String>,
        /// `json`, `raw`, `avro: {...}` or `protobuf: {...}` (see "Avro and Protobuf").
        #[serde(default)]
        pub codec: CodecConfig,
    }
}

/// A `nats` input, built.
#[derive(Debug, Clone)]
pub struct NatsInput {
    config: NatsInputConfig,
    connector: Connector,
}

fn read_error(error: impl Into<NatsError>) -> SourceError {
    SourceError::Nats {
        input: "nats",
        source: Box::new(error.into()),
    }
}

/// The messages of several subscriptions as one stream, taken in turn. Unlike
/// `futures_util::stream::select_all`, it moves and allocates nothing per message: it polls the
/// subscriptions where they are.
struct Merged {
    subscriptions: Vec<async_nats::Subscriber>,
    /// Where the next poll starts, so that no subscription starves the others.
    next: usize,
}

impl Merged {
    fn new(subscriptions: Vec<async_nats::Subscriber>) -> Merged {
        Merged {
            subscriptions,
            next: 0,
        }
    }
}

impl futures_util::Stream for Merged {
    type Item = async_nats::Message;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        let n = this.subscriptions.len();
        let mut ended = 0;
        for i in 0..n {
            let at = (this.next + i) % n;
            match this.subscriptions[at].poll_next_unpin(cx) {
                Poll::Ready(Some(m)) => {
                    this.next = (at + 1) % n;
                    return Poll::Ready(Some(m));
                }
                Poll::Ready(None) => ended += 1,
                Poll::Pending => {}
            }
        }
        if ended == n {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl InputSpec for NatsInputConfig {
    const KIND: &'static str = "nats";
    const REMOTE: bool = true;
    type Built = NatsInput;

    fn codec(&self) -> CodecConfig {
        self.codec.clone()
    }

    fn build(&self, b: Build<'_, '_>) -> Option<NatsInput> {
        let Build { path, v, .. } = b;
        let connector = self.connection.build(path, v);
        if self.subjects.is_empty() {
            v.error_at(
                &format!("{path}.subjects"),
                "subjects must list at least one subject",
            );
        }
        for (i, s) in self.subjects.iter().enumerate() {
            check_subject(s, true, &format!("{path}.subjects.{i}"), v);
        }
        Some(NatsInput {
            config: self.clone(),
            connector: connector?,
        })
    }
}

impl BuiltInput for NatsInput {
    /// Subscribes and reads until shutdown. Messages already received are delivered; messages in
    /// flight on the server at shutdown are not (core NATS keeps nothing).
    async fn run(self, ctx: SourceContext) -> Result<(), SourceError> {
        let input = &self;
        let config = &input.config;
        let subscribe = async {
            let client = input
                .connector
                .connect(ctx.telemetry.pipeline(), ctx.link.clone())
                .await
                .map_err(read_error)?;
            let mut subscriptions = Vec::new();
            for subject in &config.subjects {
                let sub = match &config.queue_group {
                    Some(group) => client.queue_subscribe(subject.clone(), group.clone()).await,
                    None => client.subscribe(subject.clone()).await,
                }
                .map_err(read_error)?;
                subscriptions.push(sub);
            }
            // Make sure the server has the subscriptions before saying so. This waits for the first
            // connection, however long the server takes to be reachable.
            client.flush().await.map_err(read_error)?;
            Ok::<_, SourceError>((client, subscriptions))
        };
        let (client, subscriptions) = tokio::select! {
            biased;
            // Nothing was read: nothing to finish.
            _ = ctx.shutdown.cancelled() => {
                emit(NatsStoppedBeforeSubscribing {
                    pipeline: ctx.telemetry.pipeline(),
                });
                return Ok(());
            }
            subscribed = subscribe => subscribed?,
        };
        emit(NatsSubscribed {
            pipeline: ctx.telemetry.pipeline(),
            subjects: &config.subjects,
            queue_group: config.queue_group.as_deref(),
        });
        let mut messages = Merged::new(subscriptions);
        // One position per subject, shared by its messages.
        let mut positions: SubjectMemo<Arc<Position>> = SubjectMemo::default();
        loop {
            // The messages of a batch share one acknowledgement (nothing is acknowledged to core
            // NATS): it counts them in flight and times them.
            let mut shared: Option<Ack> = None;
            let gathered = ctx
                .intake
                .gather(&mut messages, |m| {
                    let ack = match &shared {
                        Some(first) => first.join(),
                        None => shared.insert(ctx.counted.ack(0, 0)).fork(),
                    };
                    let position = positions.get_with(&m.subject, |subject| {
                        Arc::new(Position::Nats {
                            subject: subject.clone(),
                            stream: None,
                        })
                    });
                    to_event_at(m, position, ack)
                })
                .await;
            if let Some(first) = shared {
                first.complete(Outcome::Delivered);
            }
            let Gathered::Batch(batch) = gathered else {
                break;
            };
            if !ctx.intake.send(batch).await {
                break;
            }
        }
        // Stop the server sending more; what it already sent is dropped with the subscriptions.
        drop(messages);
        let _ = client.flush().await;
        Ok(())
    }
}
