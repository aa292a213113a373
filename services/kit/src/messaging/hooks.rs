//! Failpoints that make crash windows deterministic in tests: at a named point the relay or
//! consumer stops dead, as if the process had been killed there (nothing after the point runs,
//! no offset is committed, the open transaction is dropped) — or, for `ConsumerPanic`, its task
//! panics as a bug would make it.

use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failpoint {
    /// The relay has sent a batch but not yet marked it sent.
    RelayAfterSend,
    /// The consumer's handler ran; its transaction is not committed yet.
    ConsumerBeforeCommit,
    /// The consumer's transaction committed; the offset is not committed yet.
    ConsumerAfterCommit,
    /// The consumer's handler ran, its transaction is open, and the task panics (a bug, not a
    /// killed process): the service's supervisor must bring the consumer back.
    ConsumerPanic,
}

/// Which failpoints fire. Empty (never fires) unless a test sets it.
#[derive(Clone, Default)]
pub struct Hooks(Option<Arc<dyn Fn(Failpoint) -> bool + Send + Sync>>);

impl Hooks {
    pub fn new(fire: impl Fn(Failpoint) -> bool + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(fire)))
    }

    /// Fires exactly once, at the first time `point` is reached.
    pub fn once(point: Failpoint) -> Self {
        let fired = std::sync::atomic::AtomicBool::new(false);
        Self::new(move |p| p == point && !fired.swap(true, std::sync::atomic::Ordering::SeqCst))
    }

    pub(crate) fn fires(&self, point: Failpoint) -> bool {
        self.0.as_ref().is_some_and(|f| f(point))
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hooks(set)"
        } else {
            "Hooks(none)"
        })
    }
}
