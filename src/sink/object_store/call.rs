//! One call to the store: given up after a timeout, its failure told apart by kind.

use std::time::Duration;

use crate::delivery::{Cause, ErrorKind};

/// Why a call to the store failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// The store answered with an error.
    #[error(transparent)]
    Store(#[from] object_store::Error),
    /// The store did not answer in time.
    #[error("the store did not answer within {0:?}")]
    TimedOut(Duration),
}

impl CallError {
    /// Refused for where the output writes (no such bucket, no permission, a path or request
    /// the store does not take): the events follow the error policy. Anything else may pass
    /// (the store unreachable, overloaded, a timeout): try again.
    pub(super) fn kind(&self) -> ErrorKind {
        use object_store::Error as E;
        match self {
            CallError::Store(
                E::NotFound { .. }
                | E::PermissionDenied { .. }
                | E::Unauthenticated { .. }
                | E::InvalidPath { .. }
                | E::NotSupported { .. }
                | E::NotImplemented { .. }
                | E::UnknownConfigurationKey { .. },
            ) => ErrorKind::Refused(Cause::Output),
            _ => ErrorKind::Retriable,
        }
    }
}

/// `call`, failed as [`CallError::TimedOut`] when the store has not answered within `timeout`.
pub(super) async fn timed<T>(
    timeout: Duration,
    call: impl Future<Output = object_store::Result<T>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CallError::TimedOut(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;
    use object_store::path::Path;

    use super::*;

    #[tokio::test]
    async fn a_missing_object_is_refused_a_store_that_does_not_answer_retried() {
        let store = InMemory::new();
        let timeout = Duration::from_secs(10);
        let missing = timed(timeout, store.get(&Path::from("nowhere"))).await;
        let missing = missing.map(|_| ()).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::Refused(Cause::Output));

        let hung = timed(
            Duration::from_millis(10),
            std::future::pending::<object_store::Result<()>>(),
        );
        let hung = hung.await.unwrap_err();
        assert_eq!(hung.kind(), ErrorKind::Retriable);
        assert_eq!(hung.to_string(), "the store did not answer within 10ms");

        let failed = CallError::from(object_store::Error::Generic {
            store: "S3",
            source: "connection reset by peer".into(),
        });
        assert_eq!(failed.kind(), ErrorKind::Retriable);
    }
}
