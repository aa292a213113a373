//! Building status conditions (pure). A controller says which conditions hold now; [`merge`]
//! turns that into the list to write, keeping `lastTransitionTime` from the previous status
//! when a condition's status did not flip, and stamping every entry with the generation it
//! describes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kommerce_crds::conditions::{DEGRADED, FALSE, PROGRESSING, READY, RESOURCE_CONFLICT, TRUE};
use kommerce_crds::reasons;

/// A condition as a controller decides it, before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// `ResourceConflict` false: nobody older claims what this resource names.
pub fn no_conflict() -> Desired {
    Desired::new(RESOURCE_CONFLICT, false, reasons::NO_CONFLICT, "")
}

/// The spec cannot be applied as written: not ready, not progressing until it is edited,
/// degraded.
pub fn invalid(error: &impl std::fmt::Display) -> Vec<Desired> {
    invalid_as(reasons::INVALID_SPEC, error)
}

/// [`invalid`] with a more precise reason (`InvalidConfig`).
pub fn invalid_as(reason: &'static str, error: &impl std::fmt::Display) -> Vec<Desired> {
    let msg = error.to_string();
    vec![
        Desired::new(READY, false, reason, msg.clone()),
        Desired::new(PROGRESSING, false, reason, "fix the spec"),
        Desired::new(DEGRADED, true, reason, msg),
        no_conflict(),
    ]
}

/// A backend refused or failed: degraded, retried with backoff.
pub fn failed(reason: &'static str, message: &str) -> Vec<Desired> {
    vec![
        Desired::new(READY, false, reason, message),
        Desired::new(PROGRESSING, false, reason, "retrying with backoff"),
        Desired::new(DEGRADED, true, reason, message),
        no_conflict(),
    ]
}

/// An older `kind` resource (`owner`) claims `what`: this one is not applied.
pub fn conflict(what: &str, kind: &str, owner: &str) -> Vec<Desired> {
    let msg = format!("{what} is managed by the older {kind} {owner}; this one is not applied");
    vec![
        Desired::new(READY, false, reasons::CLAIMED_BY_OTHER, msg.clone()),
        Desired::new(
            PROGRESSING,
            false,
            reasons::NOT_APPLIED,
            format!("waiting for the other {kind} to go away"),
        ),
        Desired::new(DEGRADED, false, reasons::HEALTHY, ""),
        Desired::new(RESOURCE_CONFLICT, true, reasons::CLAIMED_BY_OTHER, msg),
    ]
}

/// The conditions to write: one per desired type, in the given order.
pub fn merge(
    previous: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let status = if d.status { TRUE } else { FALSE };
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: d.type_.to_owned(),
                status: status.to_owned(),
                reason: d.reason.to_owned(),
                message: d.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// `previous` with one condition set (added, or replacing the one of its type), the others kept.
pub fn upsert(
    previous: &[Condition],
    desired: &Desired,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = previous
        .iter()
        .filter(|c| c.type_ != desired.type_)
        .cloned()
        .collect();
    out.extend(merge(
        previous,
        std::slice::from_ref(desired),
        generation,
        now,
    ));
    out
}

/// The condition of a type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of a type is present and `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == TRUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kommerce_crds::conditions::{DEGRADED, READY};
    use kommerce_crds::reasons;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).expect("valid timestamp"))
    }

    #[test]
    fn first_write_stamps_now_and_the_generation() {
        let out = merge(
            &[],
            &[Desired::new(READY, true, reasons::RECONCILED, "ok")],
            Some(3),
            &at(100),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].type_, "Ready");
        assert_eq!(out[0].status, "True");
        assert_eq!(out[0].reason, "Reconciled");
        assert_eq!(out[0].observed_generation, Some(3));
        assert_eq!(out[0].last_transition_time, at(100));
    }

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let first = merge(
            &[],
            &[Desired::new(READY, true, reasons::RECONCILED, "ok")],
            Some(1),
            &at(100),
        );
        // Same status, new reason, message and generation: the transition time stays.
        let same = merge(
            &first,
            &[Desired::new(READY, true, reasons::DRIFT_CORRECTED, "fixed")],
            Some(2),
            &at(200),
        );
        assert_eq!(same[0].last_transition_time, at(100));
        assert_eq!(same[0].reason, "DriftCorrected");
        assert_eq!(same[0].observed_generation, Some(2));
        // Flip: the transition time moves.
        let flipped = merge(
            &same,
            &[Desired::new(
                READY,
                false,
                reasons::BROKER_UNREACHABLE,
                "down",
            )],
            Some(2),
            &at(300),
        );
        assert_eq!(flipped[0].last_transition_time, at(300));
        assert_eq!(flipped[0].status, "False");
    }

    #[test]
    fn upsert_sets_one_condition_and_keeps_the_others() {
        let first = merge(
            &[],
            &[Desired::new(READY, true, reasons::RECONCILED, "ok")],
            Some(1),
            &at(10),
        );
        let blocked = Desired::new(
            "DeletionBlocked",
            true,
            reasons::DELETE_FAILED,
            "broker down",
        );
        let out = upsert(&first, &blocked, Some(2), &at(20));
        assert_eq!(out.len(), 2);
        assert_eq!(find(&out, READY), first.first());
        assert_eq!(
            find(&out, "DeletionBlocked")
                .map(|c| (c.status.as_str(), c.last_transition_time.clone())),
            Some(("True", at(20)))
        );
        // Again, same status: one entry, the transition time kept.
        let again = upsert(&out, &blocked, Some(2), &at(30));
        assert_eq!(again.len(), 2);
        assert_eq!(
            find(&again, "DeletionBlocked").map(|c| c.last_transition_time.clone()),
            Some(at(20))
        );
    }

    #[test]
    fn each_type_keeps_its_own_transition_time() {
        let first = merge(
            &[],
            &[
                Desired::new(READY, true, reasons::RECONCILED, ""),
                Desired::new(DEGRADED, false, reasons::HEALTHY, ""),
            ],
            Some(1),
            &at(10),
        );
        let next = merge(
            &first,
            &[
                Desired::new(READY, false, reasons::BROKER_UNREACHABLE, ""),
                Desired::new(DEGRADED, true, reasons::BROKER_UNREACHABLE, ""),
            ],
            Some(1),
            &at(20),
        );
        assert!(next.iter().all(|c| c.last_transition_time == at(20)));
        let again = merge(
            &next,
            &[
                Desired::new(READY, false, reasons::BROKER_UNREACHABLE, ""),
                Desired::new(DEGRADED, false, reasons::HEALTHY, ""),
            ],
            Some(1),
            &at(30),
        );
        assert_eq!(
            find(&again, READY).map(|c| c.last_transition_time.clone()),
            Some(at(20))
        );
        assert_eq!(
            find(&again, DEGRADED).map(|c| c.last_transition_time.clone()),
            Some(at(30))
        );
        assert!(!is_true(&again, READY));
    }
}
