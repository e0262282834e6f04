//! The JetStream input's metrics: messages pending on the consumer, redeliveries, the
//! acknowledgements sent by kind, and pull requests lost.

use super::JetStreamInputConfig;

/// The consumer's series, labelled once.
pub(super) struct Metrics {
    pub(super) pending: metrics::Gauge,
    pub(super) redelivered: metrics::Counter,
    pub(super) acked: metrics::Counter,
    pub(super) naked: metrics::Counter,
    pub(super) in_progress: metrics::Counter,
    pub(super) lost_pulls: metrics::Counter,
}

impl Metrics {
    pub(super) fn new(pipeline: &str, config: &JetStreamInputConfig) -> Metrics {
        let labels = [
            ("pipeline", pipeline.to_string()),
            ("stream", config.stream.clone()),
            ("consumer", config.consumer.clone()),
        ];
        let acks = |kind: &'static str| {
            let mut l = labels.to_vec();
            l.push(("kind", kind.to_string()));
            metrics::counter!(crate::observe::names::JETSTREAM_ACKS_TOTAL, &l)
        };
        Metrics {
            pending: metrics::gauge!(crate::observe::names::JETSTREAM_PENDING, &labels),
            redelivered: metrics::counter!(
                crate::observe::names::JETSTREAM_REDELIVERED_TOTAL,
                &labels
            ),
            acked: acks("ack"),
            naked: acks("nak"),
            in_progress: acks("in_progress"),
            lost_pulls: metrics::counter!(
                crate::observe::names::JETSTREAM_LOST_PULLS_TOTAL,
                &labels
            ),
        }
    }
}
