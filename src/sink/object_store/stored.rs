//! What is already stored, for inputs that read again what was not acknowledged (a Kafka
//! partition after a crash or a rebalance): the place ranges of the objects of a folder and lane,
//! read from their names, so that an event read again that one of them holds is acknowledged
//! instead of being written a second time.

use std::collections::HashMap;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::path::Path;

use super::batch::Place;
use super::call::{CallError, timed};

/// The stored ranges of each folder and lane listed so far, and the last place seen per lane.
#[derive(Default)]
pub struct Stored {
    ranges: HashMap<String, Vec<(Place, Place)>>,
    last: HashMap<String, Place>,
}

impl Stored {
    /// Whether the event at `place` of `lane`, in the folder and lane `key`, is held by a stored
    /// object. The first event of a key, and any event after its lane went back (read again),
    /// list the folder first, giving up after `timeout`.
    /// `folder` gives the folder's path, when it is listed.
    pub async fn holds(
        &mut self,
        store: &dyn ObjectStore,
        folder: impl FnOnce() -> Path,
        pipeline: &str,
        (key, lane): (&str, &str),
        place: Place,
        timeout: Duration,
    ) -> Result<bool, CallError> {
        let went_back = self.last.get(lane).is_some_and(|last| *last >= place);
        if went_back {
            // Read again: what was stored meanwhile (by this process or another) counts.
            let stale = format!("\n{lane}");
            self.ranges.retain(|k, _| !k.ends_with(&stale));
        }
        if !self.ranges.contains_key(key) {
            let start = format!("{pipeline}-{lane}-");
            let ranges = timed(timeout, list(store, &folder(), &start)).await?;
            self.ranges.insert(key.to_string(), ranges);
        }
        // Only once listed: asked again after a failed listing, the event is not "read again".
        match self.last.get_mut(lane) {
            Some(last) => *last = place,
            None => {
                self.last.insert(lane.to_string(), place);
            }
        }
        let ranges = self.ranges.get(key).map_or(&[][..], Vec::as_slice);
        Ok(ranges
            .iter()
            .any(|(first, last)| *first <= place && place <= *last))
    }
}

impl Stored {
    /// Forgets every listing: the next event of each folder and lane lists it again.
    pub fn forget(&mut self) {
        self.ranges.clear();
        self.last.clear();
    }
}

/// The place ranges of the objects directly in `folder` whose names start with `start`.
async fn list(
    store: &dyn ObjectStore,
    folder: &Path,
    start: &str,
) -> Result<Vec<(Place, Place)>, object_store::Error> {
    let listed = store.list_with_delimiter(Some(folder)).await;
    let objects = match listed {
        Ok(listed) => listed.objects,
        // A folder nothing was written to yet.
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(objects
        .iter()
        .filter_map(|o| range(o.location.filename()?.strip_prefix(start)?))
        .collect())
}

/// `<first>.<index>-<last>.<index>.<ext>` read back into places; None for any other name (a
/// local store's unfinished staging file, say, which holds nothing yet).
fn range(rest: &str) -> Option<(Place, Place)> {
    let (first, rest) = rest.split_once('-')?;
    let mut last = rest.splitn(3, '.');
    let place = |n: &str, d: &str| Some((n.parse().ok()?, d.parse().ok()?));
    let (fo, fd) = first.split_once('.')?;
    let (lo, ld, ext) = (last.next()?, last.next()?, last.next()?);
    if !super::encode::EXTENSIONS.contains(&ext) {
        return None;
    }
    Some((place(fo, fd)?, place(lo, ld)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    #[test]
    fn names_are_read_back_into_ranges() {
        let rest = "00000000000000001042.0-00000000000000001979.3.ndjson.zst";
        assert_eq!(range(rest), Some(((1042, 0), (1979, 3))));
        assert_eq!(range("nonsense.ndjson"), None);
        let staging = "00000000000000001042.0-00000000000000001979.3.ndjson#1";
        assert_eq!(
            range(staging),
            None,
            "an unfinished local write holds nothing"
        );
    }

    #[tokio::test]
    async fn an_event_read_again_is_held_by_the_object_that_stored_it() {
        let store = InMemory::new();
        let folder = Path::from("lake/dt=2026-11-29");
        for name in [
            "p-orders-3-00000000000000000100.0-00000000000000000199.0.ndjson",
            "p-orders-3-00000000000000000300.0-00000000000000000349.2.ndjson",
            "p-orders-4-00000000000000000000.0-00000000000000000999.0.ndjson",
            "other-orders-3-00000000000000000000.0-00000000000000000999.0.ndjson",
        ] {
            store
                .put(&folder.clone().join(name), PutPayload::from_static(b"{}\n"))
                .await
                .unwrap();
        }
        let mut stored = Stored::default();
        let key = "dt=2026-11-29\norders-3";
        let mut holds = async |place| {
            let folder = || folder.clone();
            let lane = (key, "orders-3");
            let timeout = Duration::from_secs(1);
            let held = stored.holds(&store, folder, "p", lane, place, timeout);
            held.await.ok().unwrap()
        };
        assert!(!holds((99, 0)).await);
        assert!(holds((100, 0)).await);
        assert!(holds((199, 0)).await);
        assert!(!holds((250, 0)).await, "between two objects");
        assert!(holds((349, 2)).await);
        assert!(!holds((349, 3)).await, "after the last event of the object");
        // Another lane, another pipeline: not this lane's objects.
        assert!(!holds((500, 0)).await);
    }
}
