//! A value read from the filesystem and read again — at most once per interval, when what is
//! there changed: the access-token key file ([`crate::jwks`]) and the directory of callers'
//! public keys ([`crate::credential`]), both replaced in place by whoever rotates keys (a
//! mounted Secret or ConfigMap). What no longer reads or parses keeps the value in use, loudly.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Reread<R, T> {
    /// What it is, for the logs ("the access-token key file").
    what: &'static str,
    path: PathBuf,
    every: Duration,
    read: fn(&Path) -> std::io::Result<R>,
    parse: fn(&R) -> Result<T, String>,
    state: Mutex<State<R, T>>,
}

struct State<R, T> {
    checked: Option<Instant>,
    raw: Option<R>,
    value: Arc<T>,
}

impl<R: PartialEq, T: Default> Reread<R, T> {
    /// `first`: what was read and parsed at start-up (looked at again after `every`); without
    /// it the first [`Reread::current`] reads.
    pub(crate) fn new(
        what: &'static str,
        path: PathBuf,
        every: Duration,
        read: fn(&Path) -> std::io::Result<R>,
        parse: fn(&R) -> Result<T, String>,
        first: Option<(R, T)>,
    ) -> Self {
        let state = match first {
            Some((raw, value)) => State {
                checked: Some(Instant::now()),
                raw: Some(raw),
                value: Arc::new(value),
            },
            None => State {
                checked: None,
                raw: None,
                value: Arc::new(T::default()),
            },
        };
        Self {
            what,
            path,
            every,
            read,
            parse,
            state: Mutex::new(state),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The value now: read again if `every` has passed and what is there changed.
    pub(crate) fn current(&self) -> Arc<T> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.checked.is_some_and(|c| c.elapsed() < self.every) {
            return state.value.clone();
        }
        state.checked = Some(Instant::now());
        let path = self.path.display();
        match (self.read)(&self.path) {
            Ok(raw) if state.raw.as_ref() != Some(&raw) => match (self.parse)(&raw) {
                Ok(value) => {
                    tracing::info!(path = %path, "{} read", self.what);
                    state.value = Arc::new(value);
                    state.raw = Some(raw);
                }
                Err(e) => tracing::error!(
                    error = %e, path = %path,
                    "{} is invalid; keeping what is in use", self.what
                ),
            },
            Ok(_) => {}
            Err(e) => tracing::error!(
                error = %e, path = %path,
                "cannot read {}; keeping what is in use", self.what
            ),
        }
        state.value.clone()
    }
}
