//! Calls to the store, each given up after a timeout, its failure told apart by kind; and the
//! upload of an object, in parts when it is large.

use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

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

/// Objects larger than this are uploaded in parts (S3's smallest part is 5 MiB).
const MULTIPART_OVER: usize = 16 * 1024 * 1024;
/// The size of each part of a multipart upload.
const PART_SIZE: usize = 8 * 1024 * 1024;

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

/// Stores `body` at `path`: in one request, or in parts of [`PART_SIZE`] one after another,
/// each request given up after `timeout`.
pub(super) async fn upload(
    store: &dyn ObjectStore,
    path: &Path,
    body: Bytes,
    timeout: Duration,
) -> Result<(), CallError> {
    if body.len() <= MULTIPART_OVER {
        let put = store.put(path, PutPayload::from(body));
        return timed(timeout, put).await.map(|_| ());
    }
    let mut upload = timed(timeout, store.put_multipart(path)).await?;
    let mut parts = Ok(());
    for start in (0..body.len()).step_by(PART_SIZE) {
        let part = body.slice(start..body.len().min(start + PART_SIZE));
        parts = timed(timeout, upload.put_part(PutPayload::from(part))).await;
        if parts.is_err() {
            break;
        }
    }
    let done = match parts {
        Ok(()) => timed(timeout, upload.complete()).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if done.is_err() {
        // The parts stored so far would cost storage until removed.
        let _ = timed(timeout, upload.abort()).await;
    }
    done
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

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

    #[tokio::test]
    async fn a_large_object_is_uploaded_in_parts_and_stored_whole() {
        let store = InMemory::new();
        let path = Path::from("lake/large.ndjson");
        let body: Vec<u8> = (0..MULTIPART_OVER + PART_SIZE + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        let timeout = Duration::from_secs(10);
        let stored = upload(&store, &path, Bytes::from(body.clone()), timeout).await;
        assert!(stored.is_ok());
        let read = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert!(read == body, "the object differs from what was uploaded");
    }
}
