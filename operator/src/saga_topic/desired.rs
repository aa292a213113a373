//! SagaTopic, the pure half: validate the spec, derive the topics it wants, compare them with
//! what the broker reports, and decide the conditions. No client, no clock.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kommerce_crds::conditions::{DEGRADED, PROGRESSING, READY};
use kommerce_crds::{ConfigDrift, DeletionPolicy, SagaTopic, reasons};
use kube::ResourceExt as _;

use crate::claims::Claim;
use crate::conditions::{Desired, no_conflict};

/// Kafka's limit is 249 characters; `.dlq` needs four of them.
pub const MAX_TOPIC_NAME: usize = 245;
pub const DLQ_SUFFIX: &str = ".dlq";
/// Drift entries kept in the status.
pub const MAX_DRIFT_ENTRIES: usize = 20;

/// A spec that passed every check, with defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub topic: String,
    pub dead_letter: Option<String>,
    pub partitions: i32,
    pub replication_factor: i16,
    pub config: BTreeMap<String, String>,
    pub deletion_policy: DeletionPolicy,
    pub bootstrap: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("topic name '{name}' {why}")]
    TopicName { name: String, why: &'static str },
    #[error("partitions must be at least 1, got {0}")]
    Partitions(i32),
    #[error("replicationFactor must be between 1 and 32767, got {0}")]
    ReplicationFactor(i32),
    #[error("config key '{0}' is empty or has whitespace")]
    ConfigKey(String),
    #[error("bootstrap servers '{0}' are not host:port[,host:port...]")]
    Bootstrap(String),
}

/// Checks what the API server's schema cannot (the name derived from `metadata.name`) and
/// what it should have (in case the CRD in the cluster is older than the operator).
pub fn validate(st: &SagaTopic, default_bootstrap: &str) -> Result<Validated, Invalid> {
    let spec = &st.spec;
    let topic = spec.topic_name.clone().unwrap_or_else(|| st.name_any());
    let why = if topic.is_empty() {
        Some("is empty")
    } else if topic.len() > MAX_TOPIC_NAME {
        Some(
            "is longer than 245 characters (Kafka allows 249, and the dead-letter topic adds .dlq)",
        )
    } else if topic == "." || topic == ".." {
        Some("is not allowed by Kafka")
    } else if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some("may only contain ASCII letters, digits, '.', '_' and '-'")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(Invalid::TopicName { name: topic, why });
    }
    if spec.partitions < 1 {
        return Err(Invalid::Partitions(spec.partitions));
    }
    let replication_factor = i16::try_from(spec.replication_factor)
        .ok()
        .filter(|rf| *rf >= 1)
        .ok_or(Invalid::ReplicationFactor(spec.replication_factor))?;
    if let Some(key) = spec
        .config
        .keys()
        .find(|k| k.is_empty() || k.contains(char::is_whitespace))
    {
        return Err(Invalid::ConfigKey(key.clone()));
    }
    let bootstrap = normalise_bootstrap(
        spec.bootstrap_servers
            .as_deref()
            .unwrap_or(default_bootstrap),
    )?;
    Ok(Validated {
        dead_letter: spec.dead_letter.then(|| format!("{topic}{DLQ_SUFFIX}")),
        topic,
        partitions: spec.partitions,
        replication_factor,
        config: spec.config.clone(),
        deletion_policy: spec.deletion_policy,
        bootstrap,
    })
}

/// `host:port` entries, trimmed, sorted, deduplicated: two spellings of one cluster are one.
pub fn normalise_bootstrap(raw: &str) -> Result<String, Invalid> {
    let servers: BTreeSet<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let valid = !servers.is_empty()
        && servers.iter().all(|s| {
            s.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        });
    if valid {
        Ok(servers.into_iter().collect::<Vec<_>>().join(","))
    } else {
        Err(Invalid::Bootstrap(raw.to_owned()))
    }
}

/// One topic as the spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub config: BTreeMap<String, String>,
}

/// The topic, then its dead-letter topic (same partitions, replication and config, so a
/// message keeps its partition when it is dead-lettered).
pub fn desired_topics(v: &Validated) -> Vec<DesiredTopic> {
    std::iter::once(&v.topic)
        .chain(v.dead_letter.as_ref())
        .map(|name| DesiredTopic {
            name: name.clone(),
            partitions: v.partitions,
            replication_factor: v.replication_factor,
            config: v.config.clone(),
        })
        .collect()
}

/// The external names a SagaTopic claims (per cluster).
pub fn claim(st: &SagaTopic, v: &Validated) -> Claim {
    Claim {
        namespace: st.namespace().unwrap_or_default(),
        name: st.name_any(),
        uid: st.uid().unwrap_or_default(),
        created: st.creation_timestamp(),
        names: desired_topics(v)
            .into_iter()
            .map(|t| format!("{}/{}", v.bootstrap, t.name))
            .collect(),
    }
}

/// A topic as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTopic {
    pub partitions: i32,
    pub config: BTreeMap<String, String>,
}

/// A config key whose broker value differs from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub key: String,
    pub desired: String,
    pub observed: Option<String>,
}

/// One thing to do on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create(DesiredTopic),
    AddPartitions {
        topic: String,
        from: i32,
        to: i32,
    },
    SetConfig {
        topic: String,
        changes: Vec<ConfigChange>,
    },
}

/// What to do, and what cannot be done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Topics with more partitions than the spec asks for: (topic, on the broker, in the spec).
    pub partitions_above_spec: Vec<(String, i32, i32)>,
}

/// Compares desired with observed topics (absent from `observed` = does not exist).
///
/// Only the keys in the spec are managed: a key set on the broker that the spec does not
/// mention is left alone (brokers report their defaults too, and cannot always tell them
/// from values set on the topic).
pub fn plan(desired: &[DesiredTopic], observed: &BTreeMap<String, ObservedTopic>) -> Plan {
    let mut plan = Plan::default();
    for want in desired {
        let Some(have) = observed.get(&want.name) else {
            plan.steps.push(Step::Create(want.clone()));
            continue;
        };
        if have.partitions < want.partitions {
            plan.steps.push(Step::AddPartitions {
                topic: want.name.clone(),
                from: have.partitions,
                to: want.partitions,
            });
        } else if have.partitions > want.partitions {
            plan.partitions_above_spec
                .push((want.name.clone(), have.partitions, want.partitions));
        }
        let changes: Vec<ConfigChange> = want
            .config
            .iter()
            .filter(|(key, value)| have.config.get(*key) != Some(*value))
            .map(|(key, value)| ConfigChange {
                key: key.clone(),
                desired: value.clone(),
                observed: have.config.get(key).cloned(),
            })
            .collect();
        if !changes.is_empty() {
            plan.steps.push(Step::SetConfig {
                topic: want.name.clone(),
                changes,
            });
        }
    }
    plan
}

/// Config differences on a spec the operator had already applied (same generation) are drift:
/// someone changed the broker behind the operator's back. Differences after a spec change are
/// just the change being applied.
pub fn is_drift(generation: Option<i64>, observed_generation: Option<i64>) -> bool {
    generation.is_some() && generation == observed_generation
}

/// The drift list after correcting `corrected`: appended, newest last, bounded.
pub fn record_drift(previous: &[ConfigDrift], plan: &Plan, now: &Time) -> Vec<ConfigDrift> {
    let mut drift = previous.to_vec();
    for step in &plan.steps {
        if let Step::SetConfig { topic, changes } = step {
            drift.extend(changes.iter().map(|c| ConfigDrift {
                topic: topic.clone(),
                key: c.key.clone(),
                desired: c.desired.clone(),
                observed: c.observed.clone(),
                corrected_at: now.clone(),
            }));
        }
    }
    let excess = drift.len().saturating_sub(MAX_DRIFT_ENTRIES);
    drift.drain(..excess);
    drift
}

/// Whether the broker shows every desired topic with at least the desired partitions.
pub fn converged(desired: &[DesiredTopic], observed: &BTreeMap<String, ObservedTopic>) -> bool {
    desired.iter().all(|want| {
        observed.get(&want.name).is_some_and(|have| {
            have.partitions >= want.partitions
                && want
                    .config
                    .iter()
                    .all(|(k, v)| have.config.get(k) == Some(v))
        })
    })
}

// ---- conditions for each outcome

pub fn conditions_invalid(err: &Invalid) -> Vec<Desired> {
    crate::conditions::invalid(err)
}

pub fn conditions_conflict(topic: &str, owner: &str) -> Vec<Desired> {
    crate::conditions::conflict(&format!("topic {topic}"), "SagaTopic", owner)
}

pub fn conditions_failed(reason: &'static str, message: &str) -> Vec<Desired> {
    crate::conditions::failed(reason, message)
}

pub fn conditions_waiting(message: &str) -> Vec<Desired> {
    vec![
        Desired::new(READY, false, reasons::WAITING_FOR_BROKER, message),
        Desired::new(PROGRESSING, true, reasons::WAITING_FOR_BROKER, message),
        Desired::new(DEGRADED, false, reasons::HEALTHY, ""),
        no_conflict(),
    ]
}

pub fn conditions_partitions_above_spec(above: &[(String, i32, i32)]) -> Vec<Desired> {
    let msg = above
        .iter()
        .map(|(t, have, want)| format!("{t} has {have} partitions, the spec asks for {want} (Kafka cannot remove partitions; raise spec.partitions)"))
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        Desired::new(READY, false, reasons::PARTITIONS_ABOVE_SPEC, msg.clone()),
        Desired::new(
            PROGRESSING,
            false,
            reasons::PARTITIONS_ABOVE_SPEC,
            "needs a spec change",
        ),
        Desired::new(DEGRADED, true, reasons::PARTITIONS_ABOVE_SPEC, msg),
        no_conflict(),
    ]
}

pub fn conditions_ready(v: &Validated) -> Vec<Desired> {
    let topics = match &v.dead_letter {
        Some(dlq) => format!("{} and {dlq}", v.topic),
        None => v.topic.clone(),
    };
    let msg = format!("{topics}: {} partitions, config as specified", v.partitions);
    vec![
        Desired::new(READY, true, reasons::RECONCILED, msg),
        Desired::new(PROGRESSING, false, reasons::RECONCILED, ""),
        Desired::new(DEGRADED, false, reasons::HEALTHY, ""),
        no_conflict(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kommerce_crds::SagaTopicSpec;

    fn topic(name: &str, spec: SagaTopicSpec) -> SagaTopic {
        SagaTopic::new(name, spec)
    }

    fn spec(partitions: i32) -> SagaTopicSpec {
        SagaTopicSpec {
            topic_name: None,
            partitions,
            replication_factor: 1,
            config: BTreeMap::from([("retention.ms".to_owned(), "60000".to_owned())]),
            dead_letter: true,
            deletion_policy: DeletionPolicy::Orphan,
            bootstrap_servers: None,
        }
    }

    fn observed(partitions: i32, config: &[(&str, &str)]) -> ObservedTopic {
        ObservedTopic {
            partitions,
            config: config
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_topic_name_defaults_to_the_resource_name_and_gets_a_dlq() {
        let v = validate(&topic("payments", spec(3)), "b:9092").expect("valid");
        assert_eq!(v.topic, "payments");
        assert_eq!(v.dead_letter.as_deref(), Some("payments.dlq"));
        assert_eq!(v.bootstrap, "b:9092");
        assert_eq!(v.deletion_policy, DeletionPolicy::Orphan);
    }

    #[test]
    fn an_explicit_topic_name_and_bootstrap_win() {
        let mut s = spec(1);
        s.topic_name = Some("payment.completed".into());
        s.bootstrap_servers = Some(" k2:9092, k1:9092 ,k2:9092".into());
        s.dead_letter = false;
        let v = validate(&topic("x", s), "b:9092").expect("valid");
        assert_eq!(v.topic, "payment.completed");
        assert_eq!(v.dead_letter, None);
        assert_eq!(v.bootstrap, "k1:9092,k2:9092");
    }

    #[test]
    fn invalid_specs_are_named() {
        let long = "a".repeat(246);
        assert!(matches!(
            validate(&topic(&long, spec(1)), "b:1"),
            Err(Invalid::TopicName { .. })
        ));
        let mut s = spec(1);
        s.topic_name = Some("has space".into());
        assert!(matches!(
            validate(&topic("x", s), "b:1"),
            Err(Invalid::TopicName { .. })
        ));
        assert_eq!(
            validate(&topic("x", spec(0)), "b:1"),
            Err(Invalid::Partitions(0))
        );
        let mut s = spec(1);
        s.replication_factor = 40_000;
        assert_eq!(
            validate(&topic("x", s), "b:1"),
            Err(Invalid::ReplicationFactor(40_000))
        );
        assert!(matches!(
            validate(&topic("x", spec(1)), "nohostport"),
            Err(Invalid::Bootstrap(_))
        ));
        let mut s = spec(1);
        s.config.insert(" ".into(), "1".into());
        assert!(matches!(
            validate(&topic("x", s), "b:1"),
            Err(Invalid::ConfigKey(_))
        ));
    }

    #[test]
    fn missing_topics_are_created_with_partitions_and_config() {
        let v = validate(&topic("t", spec(3)), "b:1").expect("valid");
        let p = plan(&desired_topics(&v), &BTreeMap::new());
        assert_eq!(p.steps.len(), 2);
        let Step::Create(main) = &p.steps[0] else {
            panic!("create first")
        };
        assert_eq!(
            (main.name.as_str(), main.partitions, main.replication_factor),
            ("t", 3, 1)
        );
        assert_eq!(
            main.config.get("retention.ms").map(String::as_str),
            Some("60000")
        );
        assert!(matches!(&p.steps[1], Step::Create(d) if d.name == "t.dlq" && d.partitions == 3));
    }

    #[test]
    fn an_in_sync_topic_needs_nothing() {
        let v = validate(&topic("t", spec(3)), "b:1").expect("valid");
        let obs = BTreeMap::from([
            (
                "t".to_owned(),
                observed(3, &[("retention.ms", "60000"), ("other", "x")]),
            ),
            (
                "t.dlq".to_owned(),
                observed(3, &[("retention.ms", "60000")]),
            ),
        ]);
        let desired = desired_topics(&v);
        assert_eq!(plan(&desired, &obs), Plan::default());
        assert!(converged(&desired, &obs));
    }

    #[test]
    fn fewer_partitions_are_raised_and_changed_config_is_set_back() {
        let v = validate(&topic("t", spec(6)), "b:1").expect("valid");
        let obs = BTreeMap::from([
            ("t".to_owned(), observed(3, &[("retention.ms", "1000")])),
            ("t.dlq".to_owned(), observed(6, &[])),
        ]);
        let p = plan(&desired_topics(&v), &obs);
        assert_eq!(
            p.steps,
            vec![
                Step::AddPartitions {
                    topic: "t".into(),
                    from: 3,
                    to: 6
                },
                Step::SetConfig {
                    topic: "t".into(),
                    changes: vec![ConfigChange {
                        key: "retention.ms".into(),
                        desired: "60000".into(),
                        observed: Some("1000".into())
                    }]
                },
                Step::SetConfig {
                    topic: "t.dlq".into(),
                    changes: vec![ConfigChange {
                        key: "retention.ms".into(),
                        desired: "60000".into(),
                        observed: None
                    }]
                },
            ]
        );
        assert!(!converged(&desired_topics(&v), &obs));
    }

    #[test]
    fn more_partitions_than_the_spec_are_reported_not_touched() {
        let mut s = spec(2);
        s.dead_letter = false;
        let v = validate(&topic("t", s), "b:1").expect("valid");
        let obs = BTreeMap::from([("t".to_owned(), observed(4, &[("retention.ms", "60000")]))]);
        let p = plan(&desired_topics(&v), &obs);
        assert!(p.steps.is_empty());
        assert_eq!(p.partitions_above_spec, vec![("t".into(), 4, 2)]);
    }

    #[test]
    fn drift_is_only_a_difference_on_an_already_applied_generation() {
        assert!(is_drift(Some(3), Some(3)));
        assert!(!is_drift(Some(4), Some(3)));
        assert!(!is_drift(Some(1), None));
    }

    #[test]
    fn drift_history_is_appended_and_bounded() {
        let at = |s: i64| Time(jiff::Timestamp::from_second(s).expect("valid"));
        let step = |i: usize| Plan {
            steps: vec![Step::SetConfig {
                topic: "t".into(),
                changes: vec![ConfigChange {
                    key: format!("k{i}"),
                    desired: "1".into(),
                    observed: Some("2".into()),
                }],
            }],
            partitions_above_spec: vec![],
        };
        let mut drift = vec![];
        for i in 0..25 {
            drift = record_drift(&drift, &step(i), &at(i64::try_from(i).expect("small")));
        }
        assert_eq!(drift.len(), MAX_DRIFT_ENTRIES);
        assert_eq!(drift.first().map(|d| d.key.as_str()), Some("k5"));
        assert_eq!(
            drift
                .last()
                .map(|d| (d.key.as_str(), d.observed.as_deref())),
            Some(("k24", Some("2")))
        );
    }

    #[test]
    fn claims_name_the_topics_per_cluster() {
        let v = validate(&topic("t", spec(1)), "b:1").expect("valid");
        let c = claim(&topic("t", spec(1)), &v);
        assert_eq!(
            c.names,
            BTreeSet::from(["b:1/t".to_owned(), "b:1/t.dlq".to_owned()])
        );
    }

    #[test]
    fn ready_conditions_say_what_was_done() {
        let v = validate(&topic("t", spec(2)), "b:1").expect("valid");
        let c = conditions_ready(&v);
        assert_eq!(c[0].type_, READY);
        assert!(c[0].status);
        assert_eq!(
            c[0].message,
            "t and t.dlq: 2 partitions, config as specified"
        );
        let c = conditions_conflict("t", "ns/older");
        assert!(
            c.iter()
                .any(|d| d.type_ == kommerce_crds::conditions::RESOURCE_CONFLICT && d.status)
        );
        assert!(c.iter().any(|d| d.type_ == READY && !d.status));
    }
}
