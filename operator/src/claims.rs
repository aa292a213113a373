//! Who owns an external object when two custom resources name the same one (a Kafka topic, a
//! Redis key)? The oldest resource does; younger ones get `ResourceConflict` and are not
//! applied, so two teams cannot fight over one topic's config. Pure: the controller passes the
//! resources from its cache.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What every object in a controller's cache claims (`claim` is `None` for an invalid one).
pub fn of_cache<K>(
    cache: &kube::runtime::reflector::Store<K>,
    claim: impl Fn(&K) -> Option<Claim>,
) -> Vec<Claim>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    cache.state().iter().filter_map(|o| claim(o)).collect()
}

/// A resource and the external names it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub created: Option<Time>,
    pub names: BTreeSet<String>,
}

impl Claim {
    /// Age order: older creation time first; ties (same second) by namespace, name, uid, so
    /// every replica and every reconcile decides the same way.
    fn precedes(&self, other: &Self) -> bool {
        let key = |c: &Self| {
            (
                c.created.as_ref().map(|t| t.0),
                c.namespace.clone(),
                c.name.clone(),
                c.uid.clone(),
            )
        };
        // A resource without a creation time (not yet persisted) is the youngest.
        match (&self.created, &other.created) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            _ => key(self) < key(other),
        }
    }

    pub fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The oldest other resource that claims one of `me`'s names, if it is older than `me`.
pub fn older_claimant<'a>(
    me: &Claim,
    others: impl IntoIterator<Item = &'a Claim>,
) -> Option<&'a Claim> {
    others
        .into_iter()
        .filter(|o| o.uid != me.uid && !o.names.is_disjoint(&me.names))
        .filter(|o| o.precedes(me))
        .reduce(|a, b| if b.precedes(a) { b } else { a })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(ns: &str, name: &str, created: Option<i64>, names: &[&str]) -> Claim {
        Claim {
            namespace: ns.into(),
            name: name.into(),
            uid: format!("uid-{ns}-{name}"),
            created: created.map(|s| Time(jiff::Timestamp::from_second(s).expect("valid"))),
            names: names.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn the_younger_of_two_claimants_conflicts_and_the_older_does_not() {
        let old = claim("a", "orders", Some(100), &["orders", "orders.dlq"]);
        let young = claim("b", "orders-too", Some(200), &["orders"]);
        let all = [old.clone(), young.clone()];
        assert_eq!(older_claimant(&young, &all), Some(&old));
        assert_eq!(older_claimant(&old, &all), None);
    }

    #[test]
    fn a_topic_named_like_another_ones_dead_letter_topic_conflicts() {
        let old = claim("a", "orders", Some(100), &["orders", "orders.dlq"]);
        let young = claim("a", "dlq", Some(200), &["orders.dlq"]);
        assert_eq!(older_claimant(&young, [&old]), Some(&old));
    }

    #[test]
    fn disjoint_names_never_conflict() {
        let a = claim("a", "x", Some(100), &["x"]);
        let b = claim("a", "y", Some(50), &["y"]);
        assert_eq!(older_claimant(&a, [&b]), None);
    }

    #[test]
    fn ties_are_broken_the_same_way_every_time() {
        let a = claim("a", "one", Some(100), &["t"]);
        let b = claim("a", "two", Some(100), &["t"]);
        assert_eq!(older_claimant(&b, [&a, &b]), Some(&a));
        assert_eq!(older_claimant(&a, [&a, &b]), None);
    }

    #[test]
    fn the_oldest_of_several_is_reported() {
        let me = claim("a", "me", Some(300), &["t"]);
        let mid = claim("a", "mid", Some(200), &["t"]);
        let first = claim("a", "first", Some(100), &["t"]);
        assert_eq!(older_claimant(&me, [&mid, &first, &me]), Some(&first));
    }

    #[test]
    fn an_unpersisted_resource_is_youngest() {
        let fresh = claim("a", "fresh", None, &["t"]);
        let old = claim("a", "old", Some(100), &["t"]);
        assert_eq!(older_claimant(&fresh, [&old]), Some(&old));
        assert_eq!(older_claimant(&old, [&fresh]), None);
    }
}
