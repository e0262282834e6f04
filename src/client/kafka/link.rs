//! Readiness of a Kafka client from librdkafka's statistics and errors, and librdkafka's logs as
//! tracing records.

use std::sync::Arc;

use rdkafka::Statistics;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::Level;

use crate::observe::events::emit;
use crate::observe::events::kafka::{
    BrokersReachable, BrokersUnreachable, ClientError, LibrdkafkaLog,
};
use crate::observe::health::Link;

/// Whether a Kafka client can reach the cluster, for readiness: up while librdkafka's
/// statistics show a broker connection `UP`, down from "all brokers down" until they do again.
pub struct BrokerLink {
    link: Option<Arc<Link>>,
    pipeline: Arc<str>,
    client: &'static str,
}

impl BrokerLink {
    /// Reports the connection state of `client` (`consumer`, `producer`) to `link`.
    pub fn new(link: Option<Arc<Link>>, pipeline: &str, client: &'static str) -> Self {
        BrokerLink {
            link,
            pipeline: Arc::from(pipeline),
            client,
        }
    }

    /// Reads the broker connection states from statistics.
    pub fn stats(&self, statistics: &Statistics) {
        self.set(statistics.brokers.values().any(|b| b.state == "UP"));
    }

    /// A client-wide error from librdkafka: logged, and "all brokers down" marks it disconnected.
    pub fn error(&self, error: &KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.set(false);
        }
        emit(ClientError {
            pipeline: &self.pipeline,
            client: self.client,
            error,
            reason,
        });
    }

    /// A log line of librdkafka's, as tracing records of target `librdkafka`. A `FAIL` line
    /// (a broker connection failed) is only logged at debug level: the same failure reaches
    /// [`BrokerLink::error`], which logs it with the pipeline and client.
    pub fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        let level = match level {
            _ if fac == "FAIL" => Level::DEBUG,
            L::Emerg | L::Alert | L::Critical | L::Error => Level::ERROR,
            L::Warning => Level::WARN,
            L::Notice | L::Info => Level::INFO,
            L::Debug => Level::DEBUG,
        };
        emit(LibrdkafkaLog {
            pipeline: &self.pipeline,
            client: self.client,
            level,
            fac,
            message,
        });
    }

    fn set(&self, up: bool) {
        if let Some(link) = &self.link
            && link.set(up)
        {
            let (pipeline, client) = (&*self.pipeline, self.client);
            if up {
                emit(BrokersReachable { pipeline, client });
            } else {
                emit(BrokersUnreachable { pipeline, client });
            }
        }
    }
}
