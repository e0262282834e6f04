//! Keeping a consumer going: telling the server which messages are still being worked on, and
//! looking the consumer up again after pull requests went unanswered.

use bytes::Bytes;
use tokio::time::Instant;

use super::{Reader, UNAVAILABLE_PAUSE};
use crate::delivery::ErrorKind;
use crate::observe::events::emit;
use crate::observe::events::jetstream::{AckKind, AckSent, ConsumerUnreachable, PullsUnanswered};
use crate::source::SourceError;
use crate::source::jetstream::read_error;

impl Reader<'_> {
    /// Tells the server that messages held longer than half the ack wait are still being worked
    /// on, so it does not redeliver them meanwhile.
    pub(super) async fn keep_alive(&mut self) {
        let now = Instant::now();
        let half = self.config.ack_wait.0 / 2;
        let mut due = Vec::new();
        for u in self.unsettled.values_mut() {
            if now.duration_since(u.touched) >= half {
                u.touched = now;
                due.push(u.reply.clone());
            }
        }
        for reply in due {
            self.series.emit(AckSent(AckKind::InProgress));
            self.publish(reply, Bytes::from_static(b"+WPI")).await;
        }
    }

    /// Looks the consumer up again after pull requests went unanswered.
    pub(super) async fn rebind(&mut self) -> Result<(), SourceError> {
        emit(PullsUnanswered {
            pipeline: self.ctx.telemetry.pipeline(),
            stream: &self.config.stream,
            consumer: &self.config.consumer,
        });
        self.unanswered = 0;
        match self.config.set_up(&self.js).await {
            Ok(limit) => {
                self.ack_limit = limit;
                Ok(())
            }
            Err(m) if m.kind() == ErrorKind::Retriable => {
                emit(ConsumerUnreachable {
                    pipeline: self.ctx.telemetry.pipeline(),
                    error: &m,
                });
                self.paused_until = Some(Instant::now() + UNAVAILABLE_PAUSE);
                Ok(())
            }
            Err(m) => Err(read_error(m)),
        }
    }
}
