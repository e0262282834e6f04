//! One call to the store: given up after a timeout, its failure classified as passing or not.

use std::time::Duration;

/// Why a call to the store failed.
pub(super) enum Failure {
    /// It may pass (the store unreachable, overloaded, a timeout): try again.
    Retry(String),
    /// It will not (no such bucket, no permission): the events follow the error policy.
    Refused(String),
}

/// `call`, failed as a passing failure when the store has not answered within `timeout`.
pub(super) async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = object_store::Result<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(classify),
        Err(_) => Err(Failure::Retry(format!(
            "the store did not answer within {timeout:?}"
        ))),
    }
}

pub(super) fn classify(error: object_store::Error) -> Failure {
    use object_store::Error as E;
    let reason = error.to_string();
    match error {
        E::NotFound { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => Failure::Refused(reason),
        _ => Failure::Retry(reason),
    }
}
