//! Per-object exponential backoff for `error_policy`: the first failure retries after
//! [`BASE`], each further one doubles up to [`MAX`]; a successful reconcile resets it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;

pub const BASE: Duration = Duration::from_secs(1);
pub const MAX: Duration = Duration::from_secs(300);

/// Delay before retry number `failures` (1 = the first failure).
pub fn delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    BASE.saturating_mul(1 << exp).min(MAX)
}

/// Failure counts per object.
#[derive(Debug)]
pub struct Backoffs<K: kube::Resource<DynamicType = ()>> {
    failures: Mutex<HashMap<ObjectRef<K>, u32>>,
}

impl<K: kube::Resource<DynamicType = ()>> Default for Backoffs<K> {
    fn default() -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: kube::Resource<DynamicType = ()>> Backoffs<K> {
    /// Records a failure and returns how long to wait before the next try.
    pub fn failed(&self, obj: &K) -> Duration {
        let mut map = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(ObjectRef::from_obj(obj)).or_insert(0);
        *n = n.saturating_add(1);
        delay(*n)
    }

    /// Forgets the failures of an object (after a successful reconcile).
    pub fn succeeded(&self, obj: &K) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&ObjectRef::from_obj(obj));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_from_one_second_up_to_five_minutes() {
        assert_eq!(delay(1), Duration::from_secs(1));
        assert_eq!(delay(2), Duration::from_secs(2));
        assert_eq!(delay(3), Duration::from_secs(4));
        assert_eq!(delay(9), Duration::from_secs(256));
        assert_eq!(delay(10), MAX);
        assert_eq!(delay(u32::MAX), MAX);
    }
}
