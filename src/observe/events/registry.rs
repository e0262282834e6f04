//! The Schema Registry: requests failing and answering again, schemas registered.

use std::fmt::Display;

use super::InternalEvent;

/// An output registered its schema with the Schema Registry.
pub struct SchemaRegistered<'a> {
    /// The subject.
    pub subject: &'a str,
    /// The id the registry gave it.
    pub id: u32,
}

impl InternalEvent for SchemaRegistered<'_> {
    fn emit(self) {
        tracing::info!(
            subject = self.subject,
            id = self.id,
            "registered the output's schema"
        );
    }
}

/// The Schema Registry did not answer (`failures` times in a row); the request is tried again.
pub struct RegistryUnavailable<'a> {
    /// The registry.
    pub url: &'a dyn Display,
    /// Failed requests in a row.
    pub failures: u32,
    /// Why the last one failed.
    pub reason: &'a dyn Display,
}

impl InternalEvent for RegistryUnavailable<'_> {
    fn emit(self) {
        tracing::warn!(url = %self.url, failures = self.failures, reason = %self.reason, "schema registry unavailable; retrying");
    }
}

/// The Schema Registry answers again after failed requests.
pub struct RegistryAnswersAgain<'a> {
    /// The registry.
    pub url: &'a dyn Display,
    /// Failed requests before.
    pub failures: u32,
}

impl InternalEvent for RegistryAnswersAgain<'_> {
    fn emit(self) {
        tracing::info!(url = %self.url, failures = self.failures, "schema registry answers again");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{captured, emit};
    use super::*;

    #[test]
    fn the_registry_failing_and_answering_again_is_logged_and_not_counted() {
        let seen = captured(|| {
            emit(RegistryUnavailable {
                url: &"http://registry:8081",
                failures: 1,
                reason: &"connection refused",
            });
            emit(RegistryAnswersAgain {
                url: &"http://registry:8081",
                failures: 1,
            });
            emit(SchemaRegistered {
                subject: "orders-value",
                id: 7,
            });
        });
        assert!(seen.metrics.is_empty(), "{:?}", seen.metrics);
        assert_eq!(
            seen.logs,
            [
                "WARN schema registry unavailable; retrying url=http://registry:8081 failures=1 reason=connection refused",
                "INFO schema registry answers again url=http://registry:8081 failures=1",
                "INFO registered the output's schema subject=\"orders-value\" id=7",
            ]
        );
    }
}
