//! `kommerce dlq list|show|replay <topic>` (ADR 0016): what waits in `<topic>.dlq` and why (the headers
//! the consumer wrote when it gave up), and putting it back on the topic it came from.
//!
//! Replaying is safe because every consumer is idempotent (its inbox): a message applied once
//! is a duplicate the second time. What has been replayed is marked by the offsets of the
//! [`REPLAY_GROUP`] consumer group on the dead-letter topic, so `list` and `kommerce audit`
//! count only what still waits, and the messages themselves stay in the topic as a record.

use std::time::Duration;

use anyhow::bail;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

/// The consumer group whose committed offsets mark what has been replayed.
pub const REPLAY_GROUP: &str = "kommerce-dlq-replay";

const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the broker is and which topic namespace the platform uses.
#[derive(Debug, Clone)]
pub struct Broker {
    pub bootstrap: String,
    pub namespace: String,
}

impl Broker {
    /// `topic` (`payments`) as the platform names it.
    pub fn topic(&self, topic: &str) -> String {
        kommerce_kit::config::qualified(&self.namespace, topic)
    }

    fn consumer(&self) -> anyhow::Result<BaseConsumer> {
        Ok(rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", REPLAY_GROUP)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()?)
    }
}

/// One dead-lettered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// Why the consumer gave up (`x-dlq-reason`).
    pub reason: String,
    /// Where it came from (`x-dlq-source-topic`, `-partition`, `-offset`).
    pub source_topic: String,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    pub attempts: Option<u32>,
    /// The consumer group that gave up.
    pub consumer: String,
    /// The envelope's event type (`type`), when the payload is an envelope.
    pub event_type: Option<String>,
    /// Replayed already (before the replay mark).
    pub replayed: bool,
    #[serde(skip)]
    pub payload: Option<Vec<u8>>,
    #[serde(skip)]
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DeadLetter {
    fn header(&self, key: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The payload as JSON (or as text when it is not JSON).
    pub fn payload_json(&self) -> serde_json::Value {
        let bytes = self.payload.as_deref().unwrap_or_default();
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into()))
    }
}

/// The partitions of `topic` with their low and high watermarks and the replay mark (the
/// first offset not replayed yet).
fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<(i32, i64, i64, i64)>> {
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let Some(t) = metadata.topics().first().filter(|t| t.error().is_none()) else {
        return Ok(Vec::new());
    };
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        tpl.add_partition(topic, p.id());
    }
    let committed = consumer.committed_offsets(tpl, TIMEOUT)?;
    let mut out = Vec::new();
    for p in t.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), TIMEOUT)?;
        let mark = match committed.find_partition(topic, p.id()).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.max(low),
            _ => low,
        };
        out.push((p.id(), low, high, mark));
    }
    Ok(out)
}

/// How many messages of `<topic>.dlq` wait (not replayed).
pub fn waiting(broker: &Broker, topic: &str) -> anyhow::Result<i64> {
    let consumer = broker.consumer()?;
    let dlq = broker.topic(&format!("{topic}.dlq"));
    Ok(partitions(&consumer, &dlq)?
        .iter()
        .map(|(_, _, high, mark)| high - mark)
        .sum())
}

/// Every message of `<topic>.dlq`, oldest first per partition (`all`: replayed ones too).
pub fn list(broker: &Broker, topic: &str, all: bool) -> anyhow::Result<Vec<DeadLetter>> {
    let consumer = broker.consumer()?;
    let dlq = broker.topic(&format!("{topic}.dlq"));
    let mut out = Vec::new();
    for (partition, low, high, mark) in partitions(&consumer, &dlq)? {
        let from = if all { low } else { mark };
        if from >= high {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&dlq, partition, Offset::Offset(from))?;
        consumer.assign(&tpl)?;
        let mut next = from;
        while next < high {
            let msg = next_message(&consumer)?;
            if msg.partition() != partition {
                continue;
            }
            next = msg.offset() + 1;
            let headers: Vec<(String, Option<Vec<u8>>)> = msg
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_owned(), x.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            let payload = msg.payload().map(<[u8]>::to_vec);
            let mut letter = DeadLetter {
                partition,
                offset: msg.offset(),
                key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                reason: String::new(),
                source_topic: String::new(),
                source_partition: None,
                source_offset: None,
                attempts: None,
                consumer: String::new(),
                event_type: None,
                replayed: msg.offset() < mark,
                payload,
                headers,
            };
            letter.reason = letter.header("x-dlq-reason").unwrap_or_default();
            letter.source_topic = letter
                .header("x-dlq-source-topic")
                .unwrap_or_else(|| broker.topic(topic));
            letter.source_partition = letter
                .header("x-dlq-source-partition")
                .and_then(|v| v.parse().ok());
            letter.source_offset = letter
                .header("x-dlq-source-offset")
                .and_then(|v| v.parse().ok());
            letter.attempts = letter.header("x-dlq-attempts").and_then(|v| v.parse().ok());
            letter.consumer = letter.header("x-dlq-consumer").unwrap_or_default();
            letter.event_type = letter.payload_json()["type"].as_str().map(str::to_owned);
            out.push(letter);
        }
        consumer.unassign()?;
    }
    Ok(out)
}

/// Which dead letters to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Every one still waiting.
    Waiting,
    /// The one at `partition`/`offset` (even if replayed before).
    One { partition: i32, offset: i64 },
}

/// Sends the chosen dead letters back to the topic each came from — key, payload and original
/// headers, without the `x-dlq-*` ones — and moves the replay mark past what was replayed.
/// Returns what was replayed.
pub fn replay(broker: &Broker, topic: &str, which: Which) -> anyhow::Result<Vec<DeadLetter>> {
    let letters = list(broker, topic, matches!(which, Which::One { .. }))?;
    let chosen: Vec<DeadLetter> = match which {
        Which::Waiting => letters.into_iter().filter(|l| !l.replayed).collect(),
        Which::One { partition, offset } => {
            let one: Vec<DeadLetter> = letters
                .into_iter()
                .filter(|l| l.partition == partition && l.offset == offset)
                .collect();
            if one.is_empty() {
                bail!("no dead letter at partition {partition}, offset {offset}");
            }
            one
        }
    };
    if chosen.is_empty() {
        return Ok(chosen);
    }
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("enable.idempotence", "true")
        .create()?;
    for l in &chosen {
        let mut headers = OwnedHeaders::new();
        for (key, value) in l.headers.iter().filter(|(k, _)| !k.starts_with("x-dlq-")) {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(&l.source_topic).headers(headers);
        if let Some(k) = &l.key {
            record = record.key(k.as_bytes());
        }
        if let Some(p) = &l.payload {
            record = record.payload(p);
        }
        producer
            .send(record)
            .map_err(|(e, _)| anyhow::anyhow!("cannot replay: {e}"))?;
    }
    producer.flush(TIMEOUT)?;
    // The mark moves past a partition's replayed prefix only (a single replay out of order
    // leaves the mark where it is: that letter still counts as waiting until it is reached).
    let consumer = broker.consumer()?;
    let dlq = broker.topic(&format!("{topic}.dlq"));
    let mut tpl = TopicPartitionList::new();
    for (partition, _, _, mark) in partitions(&consumer, &dlq)? {
        let mut next = mark;
        while chosen
            .iter()
            .any(|l| l.partition == partition && l.offset == next)
        {
            next += 1;
        }
        if next > mark {
            tpl.add_partition_offset(&dlq, partition, Offset::Offset(next))?;
        }
    }
    if tpl.count() > 0 {
        consumer.commit(&tpl, CommitMode::Sync)?;
    }
    Ok(chosen)
}

/// The next message of the assignment (`poll` also returns when it served another event).
fn next_message(consumer: &BaseConsumer) -> anyhow::Result<rdkafka::message::BorrowedMessage<'_>> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(msg) = consumer.poll(Duration::from_millis(500)) {
            return Ok(msg?);
        }
        if std::time::Instant::now() > deadline {
            bail!("the broker did not deliver the dead letters in time");
        }
    }
}

/// `list` as a table.
pub fn render(letters: &[DeadLetter]) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<12} {:<24} {:<22} {:<9} {}\n",
        "PART:OFFSET", "EVENT", "CONSUMER", "ATTEMPTS", "REASON"
    );
    for l in letters {
        let _ = writeln!(
            out,
            "{:<12} {:<24} {:<22} {:<9} {}{}",
            format!("{}:{}", l.partition, l.offset),
            l.event_type.as_deref().unwrap_or("-"),
            l.consumer,
            l.attempts.map_or("-".into(), |a| a.to_string()),
            l.reason,
            if l.replayed { " (replayed)" } else { "" }
        );
    }
    out
}
