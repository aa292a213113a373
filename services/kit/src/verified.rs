//! Signatures already checked: a token verified once is not verified again for a short while.
//!
//! Every authenticated request carried an Ed25519 signature to check — a shopper's access
//! token, a service credential — and the same few tokens arrive again and again (a shopper's
//! token for its whole life, a caller's credential for half a minute). The checkout benchmark
//! found a twentieth of the machine's CPU in those checks (ADR 0027). A hit needs the exact
//! bytes of a token that verified before, which is what any replay of it presents anyway; what
//! a hit skips is only the signature and claim checks, never what must be asked each time (the
//! revocation list, whether the key that signed it is still held: the callers ask that). An
//! entry lives until its token expires, and never more than [`HOLD`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest an entry is trusted, seconds.
pub const HOLD: u64 = 30;

/// Entries held at most; when full, the expired ones go, and if none had, all of them.
const CAPACITY: usize = 16_384;

/// Verified tokens and what they said (`V`: the claims, the caller).
#[derive(Debug)]
pub struct Verified<V> {
    entries: Mutex<HashMap<Box<str>, (V, u64)>>,
}

impl<V> Default for Verified<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl<V: Clone> Verified<V> {
    /// What `token` said when it verified, if that was recently and it has not expired since.
    pub fn get(&self, token: &str) -> Option<V> {
        self.get_at(token, now_secs())
    }

    /// Remembers that `token` verified and said `value`; it expires at `expires` (Unix seconds,
    /// with the verifier's leeway).
    pub fn insert(&self, token: &str, value: V, expires: u64) {
        self.insert_at(token, value, expires, now_secs());
    }

    fn get_at(&self, token: &str, now: u64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(token)
            .filter(|(_, until)| now < *until)
            .map(|(v, _)| v.clone())
    }

    fn insert_at(&self, token: &str, value: V, expires: u64, now: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(token.into(), (value, expires.min(now + HOLD)));
    }
}

#[cfg(test)]
mod tests {
    use super::{CAPACITY, HOLD, Verified};

    #[test]
    fn an_entry_lives_until_its_token_expires_and_never_longer_than_the_hold() {
        let v = Verified::default();
        v.insert_at("a", 1, 1_010, 1_000);
        assert_eq!(v.get_at("a", 1_009), Some(1));
        assert_eq!(v.get_at("a", 1_010), None, "the token expired");
        v.insert_at("b", 2, 10_000, 1_000);
        assert_eq!(v.get_at("b", 1_000 + HOLD - 1), Some(2));
        assert_eq!(v.get_at("b", 1_000 + HOLD), None, "held at most HOLD");
        assert_eq!(v.get_at("c", 1_000), None, "never verified");
        assert_eq!(v.get_at("a ", 1_000), None, "only the exact bytes");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_everything() {
        let v = Verified::default();
        for i in 0..CAPACITY {
            let expires = if i % 2 == 0 { 1_001 } else { 1_100 };
            v.insert_at(&i.to_string(), i, expires, 1_000);
        }
        v.insert_at("new", 0, 1_100, 1_010);
        assert_eq!(v.entries.lock().unwrap().len(), CAPACITY / 2 + 1);
        assert_eq!(v.get_at("1", 1_010), Some(1), "a live entry stayed");
        let v = Verified::default();
        for i in 0..CAPACITY {
            v.insert_at(&i.to_string(), i, 1_100, 1_000);
        }
        v.insert_at("new", 0, 1_100, 1_000);
        assert_eq!(v.entries.lock().unwrap().len(), 1, "none expired: all went");
    }
}
