//! Gauges of Kafka partitions, which come and go with the partitions a consumer owns: the
//! Prometheus recorder cannot remove a series, so these are kept here and written after its text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use super::names::KAFKA_CONSUMER_LAG;

/// The lag of each partition whose lag is known, by pipeline, topic and partition.
static LAG: Mutex<BTreeMap<(String, String, i32), u64>> = Mutex::new(BTreeMap::new());

fn lags() -> std::sync::MutexGuard<'static, BTreeMap<(String, String, i32), u64>> {
    // The map is consistent after any panic: every change is one insert or remove.
    LAG.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets `sluice_kafka_consumer_lag` of a partition.
pub fn set_lag(pipeline: &str, topic: &str, partition: i32, lag: u64) {
    lags().insert((pipeline.to_string(), topic.to_string(), partition), lag);
}

/// Removes the `sluice_kafka_consumer_lag` series of a partition.
pub fn remove_lag(pipeline: &str, topic: &str, partition: i32) {
    lags().remove(&(pipeline.to_string(), topic.to_string(), partition));
}

/// Appends the series to a Prometheus text exposition (nothing when there is none), with `help`
/// as their `# HELP` text.
pub fn render(out: &mut String, help: &str) {
    let lags = lags();
    if lags.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {KAFKA_CONSUMER_LAG} {help}");
    let _ = writeln!(out, "# TYPE {KAFKA_CONSUMER_LAG} gauge");
    for ((pipeline, topic, partition), lag) in lags.iter() {
        let _ = writeln!(
            out,
            "{KAFKA_CONSUMER_LAG}{{pipeline=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {lag}",
            escaped(pipeline),
            escaped(topic),
        );
    }
    out.push('\n');
}

/// A label value as the text format writes it.
fn escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_has_a_series_from_its_first_value_until_it_is_removed() {
        let mut text = String::new();
        render(&mut text, "lag");
        assert!(!text.contains("{pipeline=\"partitions-test\""));
        set_lag("partitions-test", "t", 2, 7);
        set_lag("partitions-test", "t", 2, 5);
        let mut text = String::new();
        render(&mut text, "lag");
        assert!(text.contains("# TYPE sluice_kafka_consumer_lag gauge\n"));
        assert!(text.contains(
            "sluice_kafka_consumer_lag{pipeline=\"partitions-test\",topic=\"t\",partition=\"2\"} 5\n"
        ));
        remove_lag("partitions-test", "t", 2);
        let mut text = String::new();
        render(&mut text, "lag");
        assert!(!text.contains("{pipeline=\"partitions-test\""));
    }
}
