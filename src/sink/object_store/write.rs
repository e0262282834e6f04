//! Sorting events into open objects by folder and lane, and writing an object once it is full,
//! old, asked for, or needed to free the in-flight budget: the output holds events between
//! batches ([`Holding`]), and each object is a write of its own ([`Protocol`]), uploaded whole,
//! retried with the output's retry settings while the store fails for a passing reason, its
//! events confirmed only once stored.

use crate::sink::Batches;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use tokio::time::Instant;

use super::ObjectStoreOutput;
use super::batch::{Open, Place, lane_into};
use super::call::{CallError, upload};
use super::encode::Encoder;
use super::parquet::Encoded;
use super::stored::Stored;
use crate::context::{Control, Signal};
use crate::delivery::{Cause, ErrorKind, MustStop};
use crate::event::{Event, Failed, Position, now_millis};
use crate::observe::events::emit;
use crate::observe::events::output::{ObjectStored, ObjectsUnlisted};
use crate::sink::deliver::{Attempt, Delivery, Holding, Protocol, run_holding};
use crate::sink::retry::Held;
use crate::sink::{SinkContext, SinkError};

struct Writer {
    output: ObjectStoreOutput,
    open: HashMap<String, Open>,
    folder: String,
    stored: Stored,
    /// Where the input says that its partitions change, or that it is given no more messages
    /// until it acknowledges some.
    control: Control,
}

/// Writes the events of `rx` as objects until the channel closes, then writes what is open.
pub async fn run(
    output: ObjectStoreOutput,
    rx: Batches,
    ctx: SinkContext,
) -> Result<(), SinkError> {
    let control = ctx.pipeline.control();
    let writer = Writer {
        output,
        open: HashMap::new(),
        folder: String::new(),
        stored: Stored::default(),
        control,
    };
    run_holding(writer, rx, ctx).await
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Holding for Writer {
    fn holds(&self) -> bool {
        !self.open.is_empty()
    }

    /// Sorts `batch` into open objects, writing those that become full, then the largest ones
    /// while the in-flight budget is used up (their events would otherwise hold the input back
    /// until `max_age`).
    async fn take(&mut self, batch: Vec<Event>, delivery: &mut Delivery) -> Result<(), SinkError> {
        // Events of partitions taken on come after the change is announced: seen here first.
        if let Some(signal) = self.control.pending() {
            self.signalled(signal, delivery).await?;
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
                delivery.refuse(failed).await?;
                continue;
            }
            key.clear();
            key.push_str(&self.folder);
            key.push('\n');
            let place = lane_into(&event.position, event.derived, &mut key);
            let lane = &key[self.folder.len() + 1..];
            let asked = self.stored_before(event, &key, lane, place, delivery);
            let Some((event, stored)) = asked.await? else {
                continue;
            };
            if stored {
                // Left out of the object that holds its place (it does not fit the format):
                // it follows the error policy again, as its dead letter may not have been
                // delivered before the object was.
                match self.output.encoder.rejects(&event.payload) {
                    Some(reason) => {
                        let failed = Failed::at_output(event, reason, Cause::Event);
                        delivery.refuse(failed).await?;
                    }
                    None => delivery.ctx().confirm([event]),
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
                self.write(&key, delivery).await?;
            }
        }
        while delivery.ctx().pipeline.budget().is_full() {
            let largest = self.open.iter().max_by_key(|(_, o)| o.bytes);
            let Some(key) = largest.map(|(k, _)| k.clone()) else {
                break;
            };
            self.write(&key, delivery).await?;
        }
        Ok(())
    }

    /// Waits for the oldest object to reach `max_age`, or for a signal from the input.
    async fn ready(&mut self) {
        let max_age = self.output.config.batch.max_age.0;
        let oldest = self.open.values().map(|o| o.since).min();
        let deadline = oldest.map(|since| since + max_age);
        tokio::select! {
            () = sleep_until(deadline) => {}
            // The input's partitions change, or it waits for acknowledgements (a JetStream
            // consumer at its max_ack_pending): what is held is written now, not at max_age.
            () = self.control.wait() => {}
        }
    }

    async fn work(&mut self, delivery: &mut Delivery) -> Result<(), SinkError> {
        if let Some(signal) = self.control.pending() {
            return self.signalled(signal, delivery).await;
        }
        let max_age = self.output.config.batch.max_age.0;
        self.write_older_than(Instant::now() - max_age, delivery)
            .await
    }

    /// Everything still open.
    async fn close(&mut self, delivery: &mut Delivery) -> Result<(), SinkError> {
        self.write_older_than(Instant::now(), delivery).await
    }
}

impl Writer {
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
    ) -> Result<bool, CallError> {
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
        delivery: &mut Delivery,
    ) -> Result<Option<(Event, bool)>, MustStop> {
        let mut held = Held::new(event);
        let mut failed = false;
        loop {
            match self.already_stored(&held.event, key, lane, place).await {
                Ok(stored) => {
                    if failed {
                        // An attempt with nothing left to retry is a success: the circuit closes.
                        delivery.back_off(&mut Attempt::default()).await?;
                    }
                    return Ok(Some((held.event, stored)));
                }
                Err(e) if e.kind() == ErrorKind::Retriable => {
                    failed = true;
                    let mut attempt = Attempt::default();
                    let reason = format!("listing folder {:?}: {e}", self.folder);
                    attempt.retry(held, reason);
                    match delivery.back_off(&mut attempt).await?.pop() {
                        Some(again) => held = again,
                        None => return Ok(None),
                    }
                }
                Err(reason) => {
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
    /// written now; at a rebalance, also forgets what it knew of stored events (another member
    /// may have written to the partitions since).
    async fn signalled(
        &mut self,
        signal: Signal,
        delivery: &mut Delivery,
    ) -> Result<(), SinkError> {
        if signal == Signal::Rebalance {
            self.stored.forget();
        }
        self.write_older_than(Instant::now(), delivery).await
    }

    async fn write_older_than(
        &mut self,
        cutoff: Instant,
        delivery: &mut Delivery,
    ) -> Result<(), SinkError> {
        let old: Vec<String> = (self.open.iter())
            .filter(|(_, o)| o.since <= cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for key in old {
            self.write(&key, delivery).await?;
        }
        Ok(())
    }

    /// Writes the open object `key` until it is stored, or its events have followed the error
    /// policy.
    async fn write(&mut self, key: &str, delivery: &mut Delivery) -> Result<(), SinkError> {
        let Some(open) = self.open.remove(key) else {
            return Ok(());
        };
        let ext = self.output.encoder.extension();
        // Named after every event it was opened with, those left out too: written again after a
        // crash, the same events make the same name.
        let name = open.name(&self.output.pipeline, ext);
        let mut held: Vec<Held> = open.events.into_iter().map(Held::new).collect();
        // Events that do not fit the format follow the error policy before the object is stored.
        let mut left_out = Attempt::default();
        let body = encode(&self.output.encoder, &mut held, &mut left_out).await;
        delivery.settle(&mut left_out).await?;
        let Some(body) = body else {
            return Ok(());
        };
        let mut object = Object {
            output: &self.output,
            folder: open.folder,
            lane: open.lane,
            name,
            events: held.len(),
            body,
        };
        delivery.deliver(&mut object, held).await
    }
}

/// An object being written: where, under which name, and its bytes, kept across retries.
struct Object<'a> {
    output: &'a ObjectStoreOutput,
    folder: String,
    lane: String,
    name: String,
    /// How many events `body` holds.
    events: usize,
    body: Bytes,
}

impl Protocol for Object<'_> {
    /// One upload of the object; when events ran out of attempts since the last one, the object
    /// holds the rest, named after them, and is made again.
    async fn attempt(
        &mut self,
        mut held: Vec<Held>,
        attempt: &mut Attempt,
        _ctx: &SinkContext,
    ) -> Result<(), SinkError> {
        let output = self.output;
        if held.len() != self.events {
            let ext = output.encoder.extension();
            self.name = held_name(&output.pipeline, &self.lane, &held, ext);
            let Some(body) = encode(&output.encoder, &mut held, attempt).await else {
                return Ok(());
            };
            (self.body, self.events) = (body, held.len());
        }
        let path = location(&output.prefix, &self.folder, &self.name);
        let timeout = output.config.timeout.0;
        match upload(&*output.store, &path, self.body.clone(), timeout).await {
            Ok(()) => {
                emit(ObjectStored {
                    object: &path,
                    events: held.len(),
                });
                attempt.delivered_all(held);
            }
            Err(e) => match e.kind() {
                ErrorKind::Refused(cause) => {
                    for h in held {
                        let reason = format!("{path}: {e}");
                        attempt.refused(Failed::at_output(h.event, reason, cause));
                    }
                }
                ErrorKind::Retriable | ErrorKind::Fatal => {
                    let reason = e.to_string();
                    held.into_iter()
                        .for_each(|h| attempt.retry(h, reason.clone()));
                }
            },
        }
        Ok(())
    }
}

/// The bytes of an object holding `held`, made off the runtime's threads; events that do not fit
/// the format leave `held` and are refused in `attempt`. None: no event is left.
async fn encode(
    encoder: &Arc<Encoder>,
    held: &mut Vec<Held>,
    attempt: &mut Attempt,
) -> Option<Bytes> {
    let payloads: Vec<Bytes> = held.iter().map(|h| h.event.payload.clone()).collect();
    let encoder = encoder.clone();
    let encoded = tokio::task::spawn_blocking(move || encoder.encode(&payloads)).await;
    let encoded = encoded.unwrap_or_else(|e| Err(e.into()));
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
    body.filter(|_| !held.is_empty()).map(Bytes::from)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;
    use object_store::memory::InMemory;
    use object_store::throttle::{ThrottleConfig, ThrottledStore};
    use object_store::{ObjectStore, ObjectStoreExt};

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
        let telemetry = Telemetry::new("hang");
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
