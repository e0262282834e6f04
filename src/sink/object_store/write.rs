//! Sorting events into open objects by folder and lane, and writing an object once it is full,
//! old, or needed to free the in-flight budget: uploaded whole, retried with the output's retry
//! settings while the store fails for a passing reason, its events confirmed only once stored.

use crate::sink::Batches;
use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::time::Instant;

use super::ObjectStoreOutput;
use super::batch::{Open, Place, lane_into};
use super::call::{Failure, timed};
use super::parquet::Encoded;
use super::stored::Stored;
use crate::delivery::{Cause, MustStop};
use crate::event::{Event, Failed, Position, now_millis};
use crate::observe::events::emit;
use crate::observe::events::output::{ObjectStored, ObjectsUnlisted};
use crate::sink::deliver::{Attempt, Delivery};
use crate::sink::retry::Held;
use crate::sink::{SinkContext, SinkError};

/// Objects larger than this are uploaded in parts (S3's smallest part is 5 MiB).
const MULTIPART_OVER: usize = 16 * 1024 * 1024;
/// The size of each part of a multipart upload.
const PART_SIZE: usize = 8 * 1024 * 1024;

struct Writer {
    output: ObjectStoreOutput,
    delivery: Delivery,
    open: HashMap<String, Open>,
    folder: String,
    stored: Stored,
    /// Changes when the input's partitions change, or when it is given no more messages until
    /// it acknowledges some (see `Telemetry::request_flush`).
    flushes: tokio::sync::watch::Receiver<u64>,
}

/// Writes the events of `rx` as objects until the channel closes, then writes what is open.
pub async fn run(
    output: ObjectStoreOutput,
    mut rx: Batches,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let flushes = ctx.telemetry.flush_requests();
    let mut w = Writer {
        output,
        delivery: Delivery::new(ctx),
        open: HashMap::new(),
        folder: String::new(),
        stored: Stored::default(),
        flushes,
    };
    let max_age = w.output.config.batch.max_age.0;
    loop {
        let oldest = w.open.values().map(|o| o.since).min();
        let deadline = oldest.map(|since| since + max_age);
        tokio::select! {
            batch = rx.recv() => match batch {
                Some(batch) => w.take(batch).await?,
                None => break,
            },
            () = sleep_until(deadline) => w.write_older_than(Instant::now() - max_age).await?,
            // The input's partitions change, or it waits for acknowledgements (a JetStream
            // consumer at its max_ack_pending): what is held is written now, not at max_age.
            Ok(()) = w.flushes.changed() => w.flush_requested().await?,
        }
    }
    // Everything still open.
    Ok(w.write_older_than(Instant::now()).await?)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Writer {
    /// Sorts `batch` into open objects, writing those that become full, then the largest ones
    /// while the in-flight budget is used up (their events would otherwise hold the input back
    /// until `max_age`).
    async fn take(&mut self, batch: Vec<Event>) -> Result<(), MustStop> {
        // Events of partitions taken on come after the change is announced: seen here first.
        if self.flushes.has_changed().unwrap_or(false) {
            self.flush_requested().await?;
        }
        let now = now_millis();
        let limits = &self.output.config.batch;
        let (max_events, max_bytes) = (limits.max_events, limits.max_bytes.0);
        // `folder\nlane`, made again for each event in the same buffer.
        let mut key = String::new();
        for event in batch {
            let template = &self.output.config.path;
            if let Err(reason) = super::template::render(template, &event, now, &mut self.folder) {
                let failed = Failed::at_output(event, reason.to_string(), Cause::Event);
                self.delivery.refuse(failed).await?;
                continue;
            }
            key.clear();
            key.push_str(&self.folder);
            key.push('\n');
            let place = lane_into(&event.position, event.derived, &mut key);
            let lane = &key[self.folder.len() + 1..];
            let Some((event, stored)) = self.stored_before(event, &key, lane, place).await? else {
                continue;
            };
            if stored {
                // Left out of the object that holds its place (it does not fit the format):
                // it follows the error policy again, as its dead letter may not have been
                // delivered before the object was.
                match self.output.encoder.rejects(&event.payload) {
                    Some(reason) => {
                        let failed = Failed::at_output(event, reason, Cause::Event);
                        self.delivery.refuse(failed).await?;
                    }
                    None => self.delivery.ctx().confirm([event]),
                }
                continue;
            }
            let open = match self.open.get_mut(key.as_str()) {
                Some(open) => open,
                None => {
                    let open = Open::new(self.folder.clone(), lane.to_string());
                    self.open.entry(key.clone()).or_insert(open)
                }
            };
            open.push(event, place);
            if open.events.len() >= max_events || open.bytes >= max_bytes {
                self.write(&key).await?;
            }
        }
        while self.delivery.ctx().telemetry.budget().is_full() {
            let largest = self.open.iter().max_by_key(|(_, o)| o.bytes);
            let Some(key) = largest.map(|(k, _)| k.clone()) else {
                break;
            };
            self.write(&key).await?;
        }
        Ok(())
    }

    /// Whether an event read again (a Kafka record after a crash or a rebalance) is held by an
    /// object stored before: then it is acknowledged, not written twice. Only Kafka partitions
    /// are read again in order from a committed offset, which is what makes a stored object's
    /// range of places hold every event of its folder and lane in that range.
    async fn already_stored(
        &mut self,
        event: &Event,
        key: &str,
        lane: &str,
        place: Option<Place>,
    ) -> Result<bool, Failure> {
        let (Position::Kafka { .. }, Some(place)) = (&*event.position, place) else {
            return Ok(false);
        };
        let folder = || location(&self.output.prefix, &self.folder, "");
        let store = &*self.output.store;
        let pipeline = &self.output.pipeline;
        let timeout = self.output.config.timeout.0;
        (self.stored)
            .holds(store, folder, pipeline, (key, lane), place, timeout)
            .await
    }

    /// [`Writer::already_stored`], asked again after the output's backoff while the store does
    /// not answer: a listing that fails for a passing reason (a timeout) counts as a failed
    /// attempt toward the circuit and readiness, as an upload does. None: the event ran out of
    /// attempts and followed the error policy.
    async fn stored_before(
        &mut self,
        event: Event,
        key: &str,
        lane: &str,
        place: Option<Place>,
    ) -> Result<Option<(Event, bool)>, MustStop> {
        let mut held = Held::new(event);
        let mut failed = false;
        loop {
            match self.already_stored(&held.event, key, lane, place).await {
                Ok(stored) => {
                    if failed {
                        // An attempt with nothing left to retry is a success: the circuit closes.
                        self.delivery.back_off(&mut Attempt::default()).await?;
                    }
                    return Ok(Some((held.event, stored)));
                }
                Err(Failure::Retry(reason)) => {
                    failed = true;
                    let mut attempt = Attempt::default();
                    let reason = format!("listing folder {:?}: {reason}", self.folder);
                    attempt.retry(held, reason);
                    match self.delivery.back_off(&mut attempt).await?.pop() {
                        Some(again) => held = again,
                        None => return Ok(None),
                    }
                }
                Err(Failure::Refused(reason)) => {
                    // Not knowing, write it: at least once rather than lost.
                    emit(ObjectsUnlisted {
                        pipeline: &self.output.pipeline,
                        folder: &self.folder,
                        error: &reason,
                    });
                    return Ok(Some((held.event, false)));
                }
            }
        }
    }

    /// The input gives up or takes on partitions, or waits for acknowledgements: what is held is
    /// written, and what was listed is listed again when needed.
    async fn flush_requested(&mut self) -> Result<(), MustStop> {
        self.flushes.mark_unchanged();
        self.stored.forget();
        self.write_older_than(Instant::now()).await
    }

    async fn write_older_than(&mut self, cutoff: Instant) -> Result<(), MustStop> {
        let old: Vec<String> = (self.open.iter())
            .filter(|(_, o)| o.since <= cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for key in old {
            self.write(&key).await?;
        }
        Ok(())
    }

    /// Writes the open object `key` until it is stored, or its events have followed the error
    /// policy.
    async fn write(&mut self, key: &str) -> Result<(), MustStop> {
        let Some(open) = self.open.remove(key) else {
            return Ok(());
        };
        let ext = self.output.encoder.extension();
        // Named after every event it was opened with, those left out too: written again after a
        // crash, the same events make the same name.
        let mut name = open.name(&self.output.pipeline, ext);
        let (folder, lane) = (open.folder, open.lane);
        let mut held: Vec<Held> = open.events.into_iter().map(Held::new).collect();
        // The object's bytes, kept across retries; made again only when events leave it.
        let mut body: Option<Bytes> = None;
        loop {
            let bytes = match &body {
                Some(bytes) => bytes.clone(),
                None => match self.encode(&mut held).await? {
                    Some(bytes) => body.insert(bytes).clone(),
                    None => return Ok(()),
                },
            };
            let path = location(&self.output.prefix, &folder, &name);
            let mut attempt = Attempt::default();
            let timeout = self.output.config.timeout.0;
            match upload(&*self.output.store, &path, bytes, timeout).await {
                Ok(()) => {
                    emit(ObjectStored {
                        object: &path,
                        events: held.len(),
                    });
                    attempt.delivered_all(held);
                }
                Err(Failure::Retry(reason)) => {
                    held.into_iter()
                        .for_each(|h| attempt.retry(h, reason.clone()));
                }
                Err(Failure::Refused(reason)) => {
                    for h in held {
                        let reason = format!("{path}: {reason}");
                        attempt.refused(Failed::at_output(h.event, reason, Cause::Output));
                    }
                }
            }
            self.delivery.settle(&mut attempt).await?;
            if !attempt.has_retries() {
                return Ok(());
            }
            let before = attempt.retries();
            held = self.delivery.back_off(&mut attempt).await?;
            if held.is_empty() {
                return Ok(());
            }
            if held.len() != before {
                // Events out of attempts left: the object holds the rest, named after them.
                name = held_name(&self.output.pipeline, &lane, &held, ext);
                body = None;
            }
        }
    }

    /// The bytes of an object holding `held`, made off the runtime's threads; events that do
    /// not fit the format leave `held` and follow the error policy. None: no event is left.
    async fn encode(&mut self, held: &mut Vec<Held>) -> Result<Option<Bytes>, MustStop> {
        let payloads: Vec<Bytes> = held.iter().map(|h| h.event.payload.clone()).collect();
        let encoder = self.output.encoder.clone();
        let encoded = tokio::task::spawn_blocking(move || encoder.encode(&payloads)).await;
        let encoded = encoded.unwrap_or_else(|e| Err(e.into()));
        let mut attempt = Attempt::default();
        let body = match encoded {
            Ok(Encoded { body, rejected }) => {
                // Indexes in order: each taken out from the back first keeps the others' places.
                for (index, reason) in rejected.into_iter().rev() {
                    let event = held.remove(index).event;
                    attempt.refused(Failed::at_output(event, reason, Cause::Event));
                }
                body
            }
            Err(e) => {
                let reason = e.to_string();
                for h in held.drain(..) {
                    attempt.refused(Failed::at_output(h.event, reason.clone(), Cause::Output));
                }
                None
            }
        };
        self.delivery.settle(&mut attempt).await?;
        Ok(body.filter(|_| !held.is_empty()).map(Bytes::from))
    }
}

/// The name of an object holding `held`, of `lane`.
fn held_name(pipeline: &str, lane: &str, held: &[Held], ext: &str) -> String {
    let place = |h: &Held| super::batch::lane(&h.event.position, h.event.derived).1;
    let places: Option<Vec<_>> = held.iter().map(place).collect();
    let ends = places.and_then(|p| Some((*p.first()?, *p.last()?)));
    super::batch::name(pipeline, lane, ends, ext)
}

/// `prefix/folder/name`, each folder level one path segment (no name: the folder).
fn location(prefix: &Path, folder: &str, name: &str) -> Path {
    let mut path = prefix.clone();
    for part in folder.split('/').filter(|p| !p.is_empty()) {
        path = path.join(part);
    }
    match name {
        "" => path,
        name => path.join(name),
    }
}

/// Stores `body` at `path`: in one request, or in parts of [`PART_SIZE`] one after another,
/// each request given up after `timeout`.
async fn upload(
    store: &dyn ObjectStore,
    path: &Path,
    body: Bytes,
    timeout: Duration,
) -> Result<(), Failure> {
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
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::StreamExt;
    use object_store::memory::InMemory;
    use object_store::throttle::{ThrottleConfig, ThrottledStore};

    use super::*;
    use crate::config::HumanDuration;
    use crate::delivery::Ack;
    use crate::observe::Telemetry;
    use crate::observe::health::Health;
    use crate::sink::retry::{RetryConfig, test_context};

    fn output(store: Arc<dyn ObjectStore>) -> ObjectStoreOutput {
        let config: super::super::ObjectStoreOutputConfig =
            serde_json::from_str(r#"{"url": "memory:///", "path": "p"}"#).unwrap();
        ObjectStoreOutput {
            store,
            prefix: Path::from("lake"),
            encoder: Arc::new(super::super::encode::Encoder::Ndjson(Default::default())),
            pipeline: Arc::from("hang"),
            config,
        }
    }

    fn kafka(offset: i64) -> Event {
        let position = Position::Kafka {
            topic: Arc::from("orders"),
            partition: 0,
            offset,
        };
        Event::new(Bytes::from(format!("{offset}")), position, Ack::untracked())
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

    #[tokio::test(start_paused = true)]
    async fn a_listing_that_hangs_counts_as_failing_and_turns_readiness() {
        let memory = Arc::new(InMemory::new());
        let hung = ThrottleConfig {
            wait_list_with_delimiter_per_call: Duration::from_secs(3600),
            ..ThrottleConfig::default()
        };
        let throttled = Arc::new(ThrottledStore::new(memory.clone(), hung));
        let health = Health::new(1);
        health.pipeline_started();
        let telemetry = Telemetry::new("hang", usize::MAX);
        let retry = RetryConfig {
            unready_after: HumanDuration(Duration::from_secs(5)),
            ..RetryConfig::default()
        };
        let ctx = test_context(telemetry, &health, retry);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let writer = tokio::spawn(run(output(throttled.clone()), rx, ctx));
        tx.send((0..10).map(kafka).collect()).await.unwrap();

        // Each listing times out after 10 s; three in a row open the circuit, and 5 s later the
        // output is unready (by the paused clock, about 35 s).
        let start = Instant::now();
        while health.is_ready() {
            assert!(start.elapsed() < Duration::from_secs(120), "still ready");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(health.problems(), ["hang: output failing"]);

        throttled.config_mut(|c| *c = ThrottleConfig::default());
        while !health.is_ready() {
            assert!(
                start.elapsed() < Duration::from_secs(240),
                "never ready again"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        drop(tx);
        writer.await.unwrap().unwrap();
        let stored: Vec<_> = memory
            .list(None)
            .map(|o| o.unwrap().location)
            .collect()
            .await;
        assert_eq!(stored.len(), 1, "{stored:?}");
        let body = memory.get(&stored[0]).await.unwrap().bytes().await.unwrap();
        let lines: Vec<&str> = std::str::from_utf8(&body).unwrap().lines().collect();
        assert_eq!(lines, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    }
}
