//! The name of every metric sluice exports, in one place: what emits a metric and the `# HELP`
//! table of [`super::server::HELP`] both use these.

/// `sluice_events_received_total`.
pub const EVENTS_RECEIVED_TOTAL: &str = "sluice_events_received_total";
/// `sluice_events_sent_total`.
pub const EVENTS_SENT_TOTAL: &str = "sluice_events_sent_total";
/// `sluice_events_filtered_total`.
pub const EVENTS_FILTERED_TOTAL: &str = "sluice_events_filtered_total";
/// `sluice_events_failed_total`.
pub const EVENTS_FAILED_TOTAL: &str = "sluice_events_failed_total";
/// `sluice_events_dropped_total`.
pub const EVENTS_DROPPED_TOTAL: &str = "sluice_events_dropped_total";
/// `sluice_events_dead_lettered_total`.
pub const EVENTS_DEAD_LETTERED_TOTAL: &str = "sluice_events_dead_lettered_total";
/// `sluice_events_redelivery_requested_total`.
pub const EVENTS_REDELIVERY_REQUESTED_TOTAL: &str = "sluice_events_redelivery_requested_total";
/// `sluice_events_in_flight`.
pub const EVENTS_IN_FLIGHT: &str = "sluice_events_in_flight";
/// `sluice_bytes_in_flight`.
pub const BYTES_IN_FLIGHT: &str = "sluice_bytes_in_flight";
/// `sluice_event_latency_seconds`.
pub const EVENT_LATENCY_SECONDS: &str = "sluice_event_latency_seconds";
/// `sluice_batch_size`.
pub const BATCH_SIZE: &str = "sluice_batch_size";
/// `sluice_output_retries_total`.
pub const OUTPUT_RETRIES_TOTAL: &str = "sluice_output_retries_total";
/// `sluice_output_circuit_open`.
pub const OUTPUT_CIRCUIT_OPEN: &str = "sluice_output_circuit_open";
/// `sluice_connected`.
pub const CONNECTED: &str = "sluice_connected";
/// `sluice_kafka_consumer_lag`.
pub const KAFKA_CONSUMER_LAG: &str = "sluice_kafka_consumer_lag";
/// `sluice_kafka_fetch_paused`.
pub const KAFKA_FETCH_PAUSED: &str = "sluice_kafka_fetch_paused";
/// `sluice_kafka_commits_total`.
pub const KAFKA_COMMITS_TOTAL: &str = "sluice_kafka_commits_total";
/// `sluice_kafka_commit_errors_total`.
pub const KAFKA_COMMIT_ERRORS_TOTAL: &str = "sluice_kafka_commit_errors_total";
/// `sluice_kafka_connects_total`.
pub const KAFKA_CONNECTS_TOTAL: &str = "sluice_kafka_connects_total";
/// `sluice_kafka_disconnects_total`.
pub const KAFKA_DISCONNECTS_TOTAL: &str = "sluice_kafka_disconnects_total";
/// `sluice_jetstream_pending`.
pub const JETSTREAM_PENDING: &str = "sluice_jetstream_pending";
/// `sluice_jetstream_redelivered_total`.
pub const JETSTREAM_REDELIVERED_TOTAL: &str = "sluice_jetstream_redelivered_total";
/// `sluice_jetstream_acks_total`.
pub const JETSTREAM_ACKS_TOTAL: &str = "sluice_jetstream_acks_total";
/// `sluice_jetstream_lost_pulls_total`.
pub const JETSTREAM_LOST_PULLS_TOTAL: &str = "sluice_jetstream_lost_pulls_total";
/// `sluice_nats_connects_total`.
pub const NATS_CONNECTS_TOTAL: &str = "sluice_nats_connects_total";
/// `sluice_nats_disconnects_total`.
pub const NATS_DISCONNECTS_TOTAL: &str = "sluice_nats_disconnects_total";
/// `sluice_nats_slow_consumer_total`.
pub const NATS_SLOW_CONSUMER_TOTAL: &str = "sluice_nats_slow_consumer_total";
/// `sluice_http_requests_total`.
pub const HTTP_REQUESTS_TOTAL: &str = "sluice_http_requests_total";
/// `sluice_http_connections`.
pub const HTTP_CONNECTIONS: &str = "sluice_http_connections";
