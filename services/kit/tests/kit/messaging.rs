//! The messaging backbone against the real broker (Apache Kafka, started by scripts/deps.sh) and real
//! PostgreSQL. Each test has its own database, topic and consumer group, so they run in
//! parallel. Crash windows are made deterministic with failpoints; waiting for an eventual
//! state polls with a deadline.

use std::future::Future;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kommerce_kit::KafkaSettings;
use kommerce_kit::messaging::{
    self, Consumer, ConsumerError, Envelope, Event, Failpoint, Handler, HandlerError, Hooks, Relay,
    check_topics, dead_letter_topic, ensure_topics, publish_in_tx,
};
use kommerce_kit::testing::{ReservedPort, TestDatabase, reserve_port, scalar};
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::topic_partition_list::TopicPartitionList;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Generous: under a full parallel `make test` on two cores a consumer-group rebalance on the
/// local broker has taken tens of seconds.
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credited {
    account: String,
    amount: i64,
    poison: bool,
}

impl Event for Credited {
    const TYPE: &'static str = "test.credited";
    const VERSION: u16 = 1;
    fn key(&self) -> String {
        self.account.clone()
    }
}

/// Applies a credit: one `effects` row per event (no unique key, so a repeated effect would
/// show as a second row).
#[derive(Clone)]
struct Credit {
    instance: &'static str,
}

impl Handler for Credit {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        let c: Credited = event.decode()?;
        if c.poison {
            return Err(HandlerError::Transient("this credit always fails".into()));
        }
        sqlx::query(
            "INSERT INTO effects (event_id, account, amount, instance) VALUES ($1, $2, $3, $4)",
        )
        .bind(event.id)
        .bind(&c.account)
        .bind(c.amount)
        .bind(self.instance)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

struct Env {
    db: TestDatabase,
    kafka: KafkaSettings,
    topic: String,
    group: String,
}

fn bootstrap() -> String {
    std::env::var("KOMMERCE_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

async fn env_on(bootstrap: String, partitions: i32) -> Env {
    let db = TestDatabase::create(&[&messaging::MIGRATOR]).await;
    sqlx::query("CREATE TABLE effects (event_id uuid NOT NULL, account text NOT NULL, amount bigint NOT NULL, instance text NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let kafka = KafkaSettings {
        bootstrap_servers: bootstrap,
        partitions,
        max_attempts: 3,
        retry_backoff_ms: 10,
        session_timeout_ms: 6_000,
        send_timeout_ms: 5_000,
        relay_poll_ms: 200,
        ..KafkaSettings::default()
    };
    let id = Uuid::new_v4().simple().to_string();
    let topic = format!("test-{id}");
    ensure_topics(&kafka, &[&topic])
        .await
        .expect("broker reachable (run scripts/deps.sh)");
    Env {
        db,
        kafka,
        topic,
        group: format!("group-{id}"),
    }
}

async fn env(partitions: i32) -> Env {
    env_on(bootstrap(), partitions).await
}

/// Publishes credits in one committed transaction (or a rolled-back one); returns the event ids.
async fn publish(
    db: &PgPool,
    topic: &str,
    credits: &[(&str, i64, bool)],
    commit: bool,
) -> Vec<Uuid> {
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for (account, amount, poison) in credits {
        let e = Envelope::new(&Credited {
            account: (*account).into(),
            amount: *amount,
            poison: *poison,
        })
        .unwrap();
        ids.push(e.id);
        publish_in_tx(&mut tx, topic, &e).await.unwrap();
    }
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    ids
}

fn credits(n: usize, accounts: usize) -> Vec<(&'static str, i64, bool)> {
    const ACCOUNTS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];
    (0..n)
        .map(|i| (ACCOUNTS[i % accounts], i64::try_from(i).unwrap() + 1, false))
        .collect()
}

struct Running<T> {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<Result<(), T>>,
}

impl<T> Running<T> {
    async fn stop(self) -> Result<(), T> {
        let _ = self.stop.send(());
        self.handle.await.unwrap()
    }
}

fn start_relay(env: &Env, hooks: Hooks) -> Running<messaging::RelayError> {
    let relay = Relay::new(env.db.pool.clone(), &env.kafka)
        .unwrap()
        .with_hooks(hooks);
    let (stop, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(relay.run(async move { rx.await.ok().unwrap_or(()) }));
    Running { stop, handle }
}

fn start_consumer(env: &Env, instance: &'static str, hooks: Hooks) -> Running<ConsumerError> {
    let consumer = Consumer::new(
        env.db.pool.clone(),
        &env.kafka,
        &env.group,
        &[&env.topic],
        Credit { instance },
    )
    .unwrap()
    .with_hooks(hooks);
    let (stop, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(consumer.run(async move { rx.await.ok().unwrap_or(()) }));
    Running { stop, handle }
}

async fn eventually<F: Future<Output = bool>>(what: &str, check: impl FnMut() -> F) {
    kommerce_kit::testing::eventually(what, DEADLINE, check).await;
}

/// Every effect exactly once: one row per expected event id, no others.
async fn assert_exactly_once(db: &PgPool, ids: &[Uuid]) {
    let rows: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM effects ORDER BY event_id")
        .fetch_all(db)
        .await
        .unwrap();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(rows, want, "each event's effect exactly once");
}

/// Waits until the relay has sent every outbox row.
async fn outbox_drained(env: &Env, what: &str) {
    eventually(what, || async {
        scalar(
            &env.db.pool,
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL",
        )
        .await
            == 0
    })
    .await;
}

#[tokio::test]
async fn committed_events_arrive_once_and_rolled_back_ones_never_leave() {
    let env = env(3).await;
    let ids = publish(&env.db.pool, &env.topic, &credits(10, 4), true).await;
    let ghost = publish(&env.db.pool, &env.topic, &[("ghost", 1, false)], false).await;
    let relay = start_relay(&env, Hooks::default());
    let consumer = start_consumer(&env, "one", Hooks::default());
    eventually("10 effects", || async {
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await == 10
    })
    .await;
    consumer.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &ids).await;
    // Exactly the ten committed events were sent and consumed; the rolled-back one never
    // reached the outbox, so nothing could send it: exactly ten records on the topic, and the
    // group committed past all ten.
    assert_eq!(published(&env), 10);
    assert_eq!(committed(&env), 10);
    assert_eq!(
        scalar(
            &env.db.pool,
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
        )
        .await,
        0
    );
    let ghost_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE id = $1")
        .bind(ghost[0])
        .fetch_one(&env.db.pool)
        .await
        .unwrap();
    assert_eq!(ghost_rows, 0);
    // The envelope travelled whole, with its trace context.
    let (tp, key): (String, String) =
        sqlx::query_as("SELECT envelope->>'traceparent', key FROM outbox LIMIT 1")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
    assert!(tp.starts_with("00-") && tp.len() == 55, "{tp}");
    assert!(["a", "b", "c", "d"].contains(&key.as_str()));
}

#[tokio::test]
async fn relay_crash_after_send_before_mark_still_applies_each_effect_once() {
    let env = env(3).await;
    let ids = publish(&env.db.pool, &env.topic, &credits(6, 3), true).await;
    let crashed = start_relay(&env, Hooks::once(Failpoint::RelayAfterSend));
    let result = crashed.handle.await.unwrap();
    assert!(matches!(
        result,
        Err(messaging::RelayError::Crashed(Failpoint::RelayAfterSend))
    ));
    assert_eq!(
        scalar(
            &env.db.pool,
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
        )
        .await,
        6,
        "but not marked"
    );

    let relay = start_relay(&env, Hooks::default());
    outbox_drained(&env, "backlog resent").await;
    let consumer = start_consumer(&env, "one", Hooks::default());
    // Every event is on the topic twice: the group reads 12 messages and applies 6 effects.
    eventually("all 12 messages consumed", || async {
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await == 6 && committed(&env) == 12
    })
    .await;
    consumer.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &ids).await;
}

/// Records on the topic: its partitions' high watermarks summed.
fn published(env: &Env) -> i64 {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.bootstrap_servers)
        .create()
        .unwrap();
    (0..env.kafka.partitions)
        .map(|p| {
            c.fetch_watermarks(&env.topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .sum()
}

/// The group's committed offsets summed over the topic's partitions.
fn committed(env: &Env) -> i64 {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.bootstrap_servers)
        .set("group.id", &env.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..env.kafka.partitions {
        tpl.add_partition(&env.topic, p);
    }
    c.committed_offsets(tpl, Duration::from_secs(10))
        .map_or(0, |t| {
            t.elements()
                .iter()
                .map(|e| match e.offset() {
                    Offset::Offset(o) => o,
                    _ => 0,
                })
                .sum()
        })
}

#[tokio::test]
async fn consumer_crash_after_db_commit_before_offset_commit_applies_once() {
    let mut env = env(1).await;
    env.kafka.consume_batch = 1; // the window after one message's commit
    let ids = publish(&env.db.pool, &env.topic, &credits(5, 1), true).await;
    let relay = start_relay(&env, Hooks::default());
    let crashed = start_consumer(&env, "first", Hooks::once(Failpoint::ConsumerAfterCommit));
    let result = crashed.handle.await.unwrap();
    assert!(matches!(
        result,
        Err(ConsumerError::Crashed(Failpoint::ConsumerAfterCommit))
    ));
    assert_eq!(
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await,
        1,
        "the first effect committed"
    );
    assert_eq!(committed(&env), 0, "its offset did not");

    let consumer = start_consumer(&env, "second", Hooks::default());
    eventually("all consumed", || async { committed(&env) == 5 }).await;
    consumer.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &ids).await;
    let redelivered: i64 = scalar(
        &env.db.pool,
        "SELECT count(*) FROM effects WHERE instance = 'second'",
    )
    .await;
    assert_eq!(
        redelivered, 4,
        "the redelivered first event was skipped by the inbox"
    );
}

#[tokio::test]
async fn consumer_crash_before_db_commit_loses_nothing() {
    let mut env = env(1).await;
    env.kafka.consume_batch = 1;
    let ids = publish(&env.db.pool, &env.topic, &credits(5, 1), true).await;
    let relay = start_relay(&env, Hooks::default());
    let crashed = start_consumer(&env, "first", Hooks::once(Failpoint::ConsumerBeforeCommit));
    let result = crashed.handle.await.unwrap();
    assert!(matches!(
        result,
        Err(ConsumerError::Crashed(Failpoint::ConsumerBeforeCommit))
    ));
    assert_eq!(
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await,
        0,
        "rolled back"
    );
    assert_eq!(
        scalar(&env.db.pool, "SELECT count(*) FROM inbox").await,
        0,
        "inbox row rolled back too"
    );

    a_second_consumer_applies_the_rest(&env, relay, &ids).await;
}

/// After a crash: another member applies everything the first left, each effect exactly once.
async fn a_second_consumer_applies_the_rest(
    env: &Env,
    relay: Running<messaging::RelayError>,
    ids: &[Uuid],
) {
    let consumer = start_consumer(env, "second", Hooks::default());
    eventually("all applied", || async {
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await
            == i64::try_from(ids.len()).unwrap()
    })
    .await;
    consumer.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, ids).await;
}

/// Sends the outbox and waits until all of it is on the topic, so that a consumer started next
/// finds it fetched together.
async fn on_the_topic(env: &Env, n: i64) -> Running<messaging::RelayError> {
    let relay = start_relay(env, Hooks::default());
    outbox_drained(env, "sent").await;
    eventually("on the topic", || async { published(env) == n }).await;
    relay
}

/// The value of the group's counter `name` with `label`, from `/metrics`.
fn counted(env: &Env, name: &str, label: &str) -> Option<u64> {
    kommerce_kit::http::metrics::render_text()
        .lines()
        .find(|l| l.starts_with(name) && l.contains(&env.group) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn a_batch_commits_as_one_and_a_crash_after_its_commit_repeats_no_effect() {
    let env = env(1).await;
    let ids = publish(&env.db.pool, &env.topic, &credits(5, 2), true).await;
    let relay = on_the_topic(&env, 5).await;
    let crashed = start_consumer(&env, "first", Hooks::once(Failpoint::ConsumerAfterCommit));
    assert!(matches!(
        crashed.handle.await.unwrap(),
        Err(ConsumerError::Crashed(Failpoint::ConsumerAfterCommit))
    ));
    assert_eq!(
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await,
        5,
        "the five fetched together committed in one transaction"
    );
    assert_eq!(
        scalar(
            &env.db.pool,
            "SELECT count(*) FROM consumer_positions WHERE next_offset = 5"
        )
        .await,
        1,
        "with the position past all of them"
    );
    assert_eq!(committed(&env), 0, "the broker offset did not move");

    let consumer = start_consumer(&env, "second", Hooks::default());
    eventually("all consumed", || async { committed(&env) == 5 }).await;
    consumer.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &ids).await;
    assert_eq!(
        counted(&env, "messaging_events_total", "applied"),
        None,
        "the group went on from its stored position: nothing applied again"
    );
}

#[tokio::test]
async fn a_batch_crashing_before_its_commit_leaves_nothing_behind() {
    let env = env(1).await;
    let ids = publish(&env.db.pool, &env.topic, &credits(5, 2), true).await;
    let relay = on_the_topic(&env, 5).await;
    let crashed = start_consumer(&env, "first", Hooks::once(Failpoint::ConsumerBeforeCommit));
    assert!(matches!(
        crashed.handle.await.unwrap(),
        Err(ConsumerError::Crashed(Failpoint::ConsumerBeforeCommit))
    ));
    for table in ["effects", "inbox", "consumer_positions"] {
        assert_eq!(
            scalar(&env.db.pool, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}: the whole batch rolled back"
        );
    }
    a_second_consumer_applies_the_rest(&env, relay, &ids).await;
    assert_eq!(counted(&env, "messaging_events_total", "applied"), Some(5));
}

#[tokio::test]
async fn replaying_the_whole_topic_repeats_no_effect() {
    let env = env(3).await;
    let ids = publish(&env.db.pool, &env.topic, &credits(9, 3), true).await;
    let relay = start_relay(&env, Hooks::default());
    let consumer = start_consumer(&env, "one", Hooks::default());
    eventually("consumed", || async { committed(&env) == 9 }).await;
    consumer.stop().await.unwrap();

    // Reset the group to offset 0 on every partition, then consume again.
    let admin: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.bootstrap_servers)
        .set("group.id", &env.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..env.kafka.partitions {
        tpl.add_partition_offset(&env.topic, p, Offset::Offset(0))
            .unwrap();
    }
    admin.commit(&tpl, CommitMode::Sync).unwrap();
    drop(admin);
    assert_eq!(committed(&env), 0);
    let inbox_before = scalar(&env.db.pool, "SELECT count(*) FROM inbox").await;

    let second_pass = start_consumer(&env, "replay", Hooks::default());
    eventually("replayed to the end", || async { committed(&env) == 9 }).await;
    second_pass.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &ids).await;
    assert_eq!(
        scalar(&env.db.pool, "SELECT count(*) FROM inbox").await,
        inbox_before
    );
    assert_eq!(
        scalar(
            &env.db.pool,
            "SELECT count(*) FROM effects WHERE instance = 'replay'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dlq_and_the_partition_moves_on() {
    let env = env(1).await;
    let good1 = publish(&env.db.pool, &env.topic, &[("acct", 1, false)], true).await;
    let poison = publish(&env.db.pool, &env.topic, &[("acct", 2, true)], true).await;
    // An event of a version this consumer does not read: dead-lettered at once, not guessed.
    let mut tx = env.db.pool.begin().await.unwrap();
    let mut v2 = Envelope::new(&Credited {
        account: "acct".into(),
        amount: 3,
        poison: false,
    })
    .unwrap();
    v2.version = 2;
    publish_in_tx(&mut tx, &env.topic, &v2).await.unwrap();
    tx.commit().await.unwrap();
    let good2 = publish(&env.db.pool, &env.topic, &[("acct", 4, false)], true).await;

    let relay = start_relay(&env, Hooks::default());
    let consumer = start_consumer(&env, "one", Hooks::default());
    eventually("the partition moved past the poison", || async {
        committed(&env) == 4
    })
    .await;
    consumer.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &[good1[0], good2[0]]).await;

    // Read the DLQ.
    let dlq = dead_letter_topic(&env.topic);
    let reader: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.bootstrap_servers)
        .set("group.id", format!("{}-dlq-reader", env.group))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[&dlq]).unwrap();
    let mut dead = Vec::new();
    let started = Instant::now();
    while dead.len() < 2 && started.elapsed() < DEADLINE {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
            let headers: std::collections::HashMap<String, String> = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let env_in: Envelope = Envelope::from_bytes(m.payload().unwrap()).unwrap();
            dead.push((env_in.id, headers));
        }
    }
    assert_eq!(dead.len(), 2, "two dead letters");
    let (id, h) = &dead[0];
    assert_eq!(*id, poison[0]);
    assert_eq!(h["x-dlq-attempts"], "3");
    assert!(h["x-dlq-reason"].contains("always fails"), "{h:?}");
    assert_eq!(h["x-dlq-source-topic"], env.topic);
    assert_eq!(h["x-dlq-source-partition"], "0");
    assert_eq!(h["x-dlq-source-offset"], "1");
    assert_eq!(h["x-dlq-consumer"], env.group);
    assert_eq!(h["type"], "test.credited", "original headers kept");
    // Retries and dead letters are counted for /metrics.
    let metrics = kommerce_kit::http::metrics::render_text();
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&env.group))
            .map(str::to_owned)
    };
    assert!(
        line("messaging_dead_letters_total").is_some_and(|l| l.ends_with(" 2")),
        "{metrics}"
    );
    assert!(
        line("messaging_retries_total").is_some_and(|l| l.ends_with(" 2")),
        "{metrics}"
    );
    let (id, h) = &dead[1];
    assert_eq!(*id, v2.id);
    assert_eq!(
        h["x-dlq-attempts"], "1",
        "an unknown version is not retried"
    );
    assert!(h["x-dlq-reason"].contains("version 2"), "{h:?}");
}

#[tokio::test]
async fn two_consumers_split_the_partitions_and_a_leaver_hands_over_without_loss() {
    let env = env(4).await;
    let relay = start_relay(&env, Hooks::default());
    let a = start_consumer(&env, "a", Hooks::default());
    let b = start_consumer(&env, "b", Hooks::default());
    let mut ids = Vec::new();
    // Publish until both members have applied something: proof the partitions were split.
    let started = Instant::now();
    loop {
        ids.extend(publish(&env.db.pool, &env.topic, &credits(8, 8), true).await);
        let both: i64 = scalar(&env.db.pool, "SELECT count(DISTINCT instance) FROM effects").await;
        if both == 2 {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the group never split its partitions"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the group settle (everything so far applied) before a member leaves: a member leaving
    // in the middle of the join is a different scenario from a hand-over.
    let settled = i64::try_from(ids.len()).unwrap();
    eventually("the split group applied everything so far", || async {
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await >= settled
    })
    .await;
    a.stop().await.unwrap();
    let handed_over = publish(&env.db.pool, &env.topic, &credits(40, 8), true).await;
    ids.extend(&handed_over);
    let n = i64::try_from(ids.len()).unwrap();
    eventually("everything applied after the hand-over", || async {
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await >= n
    })
    .await;
    b.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &ids).await;
    let by_b: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM effects WHERE instance = 'b' AND event_id = ANY($1)",
    )
    .bind(&handed_over)
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(by_b, 40, "after a left, b took over all its partitions");
}

/// A Kafka broker of the test's own (`scripts/kafka.sh` with its own ports and directory), so
/// that it can be stopped and started again with its data.
struct DurableBroker {
    dir: std::path::PathBuf,
    port: u16,
    controller_port: u16,
    /// The broker is a child JVM that binds its ports itself (it cannot be handed a socket)
    /// and binds them again after a restart, so the test cannot pass it a listener. Instead
    /// both ports stay reserved for the broker's whole life (see `ReservedPort`): no other
    /// bind, port-0 pick or outgoing connection of the parallel tests can take them before
    /// the broker binds them or while it is stopped, and the JVM's SO_REUSEADDR server
    /// sockets bind them all the same.
    _reserved: [ReservedPort; 2],
}

impl DurableBroker {
    fn script(&self, command: &str) -> bool {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka.sh");
        let status = Command::new("bash")
            .arg(script)
            .arg(command)
            .args(["--port", &self.port.to_string()])
            .args(["--controller-port", &self.controller_port.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status()
            .expect("bash runs scripts/kafka.sh");
        status.success()
    }

    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("kommerce-kafka-{}", Uuid::new_v4().simple()));
        let reserved = [reserve_port(), reserve_port()];
        let broker = Self {
            dir,
            port: reserved[0].port(),
            controller_port: reserved[1].port(),
            _reserved: reserved,
        };
        assert!(broker.script("start"), "scripts/kafka.sh start failed");
        broker
    }

    fn stop(&mut self) {
        assert!(self.script("stop"), "scripts/kafka.sh stop failed");
    }

    fn restart(&mut self) {
        self.stop();
        assert!(self.script("start"), "scripts/kafka.sh start failed");
    }
}

impl Drop for DurableBroker {
    fn drop(&mut self) {
        self.script("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_durable_broker_restart_loses_nothing_and_the_relay_drains_its_backlog() {
    let mut broker = DurableBroker::new();
    let env = env_on(format!("127.0.0.1:{}", broker.port), 2).await;
    let relay = start_relay(&env, Hooks::default());
    let before = publish(&env.db.pool, &env.topic, &credits(6, 2), true).await;
    outbox_drained(&env, "sent before the restart").await;

    relay.stop().await.unwrap();

    broker.stop();
    let during = publish(&env.db.pool, &env.topic, &credits(4, 2), true).await;
    // With the broker down a send attempt fails: the rows stay pending, with the error.
    let attempt = Relay::new(env.db.pool.clone(), &env.kafka).unwrap();
    assert_eq!(attempt.drain_once().await.unwrap(), 0);
    let failed: i64 = scalar(&env.db.pool, "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND attempts = 1 AND last_error IS NOT NULL").await;
    assert_eq!(failed, 4);

    broker.restart();
    let relay = start_relay(&env, Hooks::default());
    outbox_drained(&env, "backlog drained after the restart").await;
    let consumer = start_consumer(&env, "one", Hooks::default());
    eventually("all consumed", || async {
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await == 10
    })
    .await;
    consumer.stop().await.unwrap();
    relay.stop().await.unwrap();
    let all: Vec<Uuid> = before.into_iter().chain(during).collect();
    assert_exactly_once(&env.db.pool, &all).await;
}

#[tokio::test]
async fn in_a_cluster_services_only_check_their_topics() {
    let env = env(1).await;
    assert!(
        check_topics(&env.kafka, &[&env.topic]).await.is_ok(),
        "created by ensure_topics"
    );
    let missing = format!("absent-{}", Uuid::new_v4().simple());
    let err = check_topics(&env.kafka, &[&missing]).await.unwrap_err();
    assert!(
        err.to_string().contains(&missing) && err.to_string().contains(".dlq"),
        "{err}"
    );
}

/// A credit whose handler announces that it started and then waits to be let go: the test
/// stops the consumer while the message is in hand, deterministically.
struct HeldCredit {
    started: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Notify>,
}

impl Handler for HeldCredit {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), HandlerError> {
        self.started.notify_one();
        self.go.notified().await;
        Credit { instance: "held" }.handle(tx, event).await
    }
}

#[tokio::test]
async fn a_graceful_stop_finishes_the_message_in_hand() {
    let env = env(1).await;
    let ids = publish(&env.db.pool, &env.topic, &credits(1, 1), true).await;
    let relay = start_relay(&env, Hooks::default());
    let (started, go) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let handler = HeldCredit {
        started: started.clone(),
        go: go.clone(),
    };
    let consumer = Consumer::new(
        env.db.pool.clone(),
        &env.kafka,
        &env.group,
        &[&env.topic],
        handler,
    )
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(consumer.run(async move { stopped.await.ok().unwrap_or(()) }));
    // The message is in the handler's hands; now stop, then let the handler finish.
    started.notified().await;
    stop.send(()).unwrap();
    go.notify_one();
    running.await.unwrap().unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &ids).await;
    assert_eq!(
        committed(&env),
        1,
        "its offset was committed before the consumer stopped"
    );
}

/// The class of issue 10: the group's committed offset on the broker ran past messages whose
/// effects were never committed (a member died mid-message, a stale member's late commit, a
/// coordinator that accepted it). The consumer starts at the position stored with the effects,
/// so nothing is skipped, and the broker's offset is put right.
#[tokio::test]
async fn a_broker_offset_committed_past_unapplied_messages_skips_nothing() {
    let env = env(1).await;
    let relay = start_relay(&env, Hooks::default());
    let mut ids = publish(&env.db.pool, &env.topic, &credits(5, 1), true).await;
    let first = start_consumer(&env, "first", Hooks::default());
    eventually("the first five applied", || async { committed(&env) == 5 }).await;
    first.stop().await.unwrap();

    ids.extend(publish(&env.db.pool, &env.topic, &credits(5, 1), true).await);
    outbox_drained(&env, "the next five sent").await;
    // The broker now says the group is past all ten; the database says five were applied.
    let group: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.bootstrap_servers)
        .set("group.id", &env.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut ahead = TopicPartitionList::new();
    ahead
        .add_partition_offset(&env.topic, 0, Offset::Offset(10))
        .unwrap();
    group.commit(&ahead, CommitMode::Sync).unwrap();
    drop(group);
    assert_eq!(committed(&env), 10);

    let second = start_consumer(&env, "second", Hooks::default());
    eventually("the five never applied are applied", || async {
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await == 10
    })
    .await;
    eventually("the broker's offset agrees again", || async {
        committed(&env) == 10
    })
    .await;
    second.stop().await.unwrap();
    relay.stop().await.unwrap();
    assert_exactly_once(&env.db.pool, &ids).await;
    assert_eq!(
        scalar(
            &env.db.pool,
            "SELECT count(*) FROM effects WHERE instance = 'second'"
        )
        .await,
        5
    );
    assert_eq!(
        scalar(&env.db.pool, "SELECT next_offset FROM consumer_positions").await,
        10
    );
}

/// A consumer task that panics mid-message (handler ran, transaction open) is restarted by the
/// service's supervisor, counted, reported, and every message is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_panics_is_restarted_and_its_messages_are_applied() {
    let env = env(1).await;
    let mut workers = kommerce_kit::workers::Workers::new();
    let mut bus = workers.messaging(&env.db.pool, &env.kafka);
    bus.relay().unwrap();
    bus.consumers(
        &env.group,
        &[&env.topic],
        &Arc::new(Credit { instance: "w" }),
        1,
        &Hooks::once(Failpoint::ConsumerPanic),
    )
    .unwrap();
    let health = workers.health();
    let ids = publish(&env.db.pool, &env.topic, &credits(6, 1), true).await;
    eventually("every message applied after the restart", || async {
        scalar(&env.db.pool, "SELECT count(*) FROM effects").await == 6
    })
    .await;
    let name = format!("consumer:{}#0", env.group);
    let (ready, report) = health.report();
    assert!(ready, "{report}");
    assert_eq!(report[&name]["state"], "running", "{report}");
    assert_eq!(report[&name]["restarts"], 1, "{report}");
    assert!(
        report[&name]["last_error"]
            .as_str()
            .unwrap()
            .contains("failpoint ConsumerPanic"),
        "{report}"
    );
    assert_eq!(report["relay"]["restarts"], 0, "{report}");
    let metrics = kommerce_kit::http::metrics::render_text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("worker_restarts_total") && l.contains(&name)),
        "{metrics}"
    );
    workers.stop().await;
    assert_exactly_once(&env.db.pool, &ids).await;
}

/// The cause of issue 10's lost payments: a consumer that starts where its group stands — after
/// a rebalance or a restart — usually starts inside a batch the producer sent. The broker must
/// deliver from that offset, not from the next batch. (tansu's object-store engine, the broker of
/// the first waves, answered with the batches after it, so the rest of the batch was never
/// delivered to anyone; the consumer's position check now also guards against such a broker.)
#[tokio::test]
async fn the_broker_delivers_from_an_offset_inside_a_batch() {
    let env = env(1).await;
    // Ten records enqueued at once with a long linger: one produce request, one stored batch.
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.bootstrap_servers)
        .set("linger.ms", "200")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let sends: Vec<_> = (0..10)
        .map(|i| {
            let payload = format!("record {i}");
            let producer = producer.clone();
            let topic = env.topic.clone();
            async move {
                producer
                    .send(
                        rdkafka::producer::FutureRecord::<str, str>::to(&topic)
                            .partition(0)
                            .payload(&payload),
                        Duration::from_secs(10),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap()
            }
        })
        .collect();
    let delivered = futures::future::join_all(sends).await;
    let offsets: Vec<i64> = delivered.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());

    let reader: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &env.kafka.bootstrap_servers)
        .set("group.id", &env.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut from = TopicPartitionList::new();
    from.add_partition_offset(&env.topic, 0, Offset::Offset(4))
        .unwrap();
    reader.assign(&from).unwrap();
    let started = Instant::now();
    let first = loop {
        if let Some(m) = reader.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            break (m.offset(), m.payload().map(<[u8]>::to_vec));
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing delivered from offset 4 of a ten-record batch"
        );
    };
    assert_eq!(first, (4, Some(b"record 4".to_vec())));
}
