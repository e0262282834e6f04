//! What a caller does about a codec error: refuse the event, wait for the registry, or stop.

/// What a caller does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The event's fault (a payload that does not read, a result that does not fit): the event
    /// is refused and follows the pipeline's error policy.
    Event,
    /// The Schema Registry was unavailable until shutdown came (its client retries meanwhile):
    /// the event is left unfinished, to be read again.
    Unavailable,
    /// The settings, or what the registry holds for them, are wrong: the pipeline cannot run.
    Fatal,
}
