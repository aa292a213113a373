//! `kommerce dlq` against the checkout saga: dead letters are listed with why and from where,
//! replayed to the topic they came from, and — the consumers being idempotent — replaying
//! events that were applied after all changes nothing; the replay mark empties the DLQ as
//! `kommerce audit` counts it.

use kommerce::dlq::{Broker, Which, list, replay, waiting};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

use crate::common::{Shop, WAIT, eventually, scalar};

/// Copies every message of `<ns>.<topic>` into `<ns>.<topic>.dlq` as `consumer` would have
/// dead-lettered it (its headers kept, the `x-dlq-*` ones added). Blocking.
fn dead_letter_all(shop: &Shop, topic: &str, consumer: &str, partitions: i32) -> usize {
    let source = shop.kafka.topic(topic);
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &shop.kafka.bootstrap_servers)
        .set("group.id", "dead-letter-copier")
        .create()
        .unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &shop.kafka.bootstrap_servers)
        .create()
        .unwrap();
    let mut copied = 0;
    for p in 0..partitions {
        let (low, high) = c
            .fetch_watermarks(&source, p, Duration::from_secs(10))
            .unwrap();
        if low == high {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&source, p, Offset::Offset(low))
            .unwrap();
        c.assign(&tpl).unwrap();
        let mut next = low;
        while next < high {
            let msg = loop {
                // `poll` also returns (with nothing) when it served another event.
                if let Some(m) = c.poll(Duration::from_millis(500)) {
                    break m.unwrap();
                }
            };
            next = msg.offset() + 1;
            let mut headers = OwnedHeaders::new();
            if let Some(h) = msg.headers() {
                for x in h.iter() {
                    headers = headers.insert(Header {
                        key: x.key,
                        value: x.value,
                    });
                }
            }
            let (partition, offset) = (p.to_string(), msg.offset().to_string());
            for (key, value) in [
                ("x-dlq-reason", "the item service is unavailable"),
                ("x-dlq-source-topic", source.as_str()),
                ("x-dlq-source-partition", partition.as_str()),
                ("x-dlq-source-offset", offset.as_str()),
                ("x-dlq-attempts", "5"),
                ("x-dlq-consumer", consumer),
            ] {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let dlq = format!("{source}.dlq");
            let mut record = BaseRecord::<[u8], [u8]>::to(&dlq).headers(headers);
            if let Some(k) = msg.key() {
                record = record.key(k);
            }
            if let Some(v) = msg.payload() {
                record = record.payload(v);
            }
            producer.send(record).map_err(|(e, _)| e).unwrap();
            copied += 1;
        }
        c.unassign().unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    copied
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_dead_letters_to_idempotent_consumers_changes_nothing_twice() {
    let shop = Shop::spawn().await;
    let item = shop.item(300, 5).await;
    let people = shop.shoppers(2, 1_000).await;
    for (i, p) in people.iter().enumerate() {
        let line = shop.add_to_cart(p, item, 1).await;
        let (_, paid) = shop.pay(p, &[line], 300, &format!("dlq-{i}")).await;
        shop.settled(p, paid["id"].as_str().unwrap()).await;
    }
    shop.outboxes_drained().await;
    let in_payments = shop.published("payments");
    eventually("every payment event consumed", WAIT, || async {
        shop.committed("order", "payments") == in_payments
    })
    .await;
    let (order_db, pay_db) = shop.pools();
    let books = async || {
        (
            scalar(order_db, "SELECT count(*) FROM orders").await,
            scalar(pay_db, "SELECT count(*) FROM wallet_entries").await,
            scalar(pay_db, "SELECT sum(balance_minor)::bigint FROM wallets").await,
            shop.stock(item).await,
        )
    };
    let before = books().await;
    assert_eq!(before.0, 2);

    // The order consumer's dead letters, as it writes them.
    let partitions = shop.kafka.partitions;
    let copied =
        tokio::task::block_in_place(|| dead_letter_all(&shop, "payments", "order", partitions));
    assert_eq!(copied as i64, in_payments);
    let broker = Broker {
        bootstrap: shop.kafka.bootstrap_servers.clone(),
        namespace: shop.kafka.namespace.clone(),
    };
    let b = broker.clone();
    let letters = tokio::task::spawn_blocking(move || list(&b, "payments", false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(letters.len() as i64, in_payments);
    for l in &letters {
        assert_eq!(l.reason, "the item service is unavailable");
        assert_eq!(l.consumer, "order");
        assert_eq!(l.source_topic, shop.kafka.topic("payments"));
        assert_eq!(l.event_type.as_deref(), Some("payment.completed"));
        assert!(!l.replayed);
    }

    // Replayed: back on `payments`, consumed again as duplicates — the books do not move.
    let b = broker.clone();
    let replayed = tokio::task::spawn_blocking(move || replay(&b, "payments", Which::Waiting))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed.len() as i64, in_payments);
    eventually("the replayed events consumed", WAIT, || async {
        shop.committed("order", "payments") == 2 * in_payments
    })
    .await;
    assert_eq!(books().await, before, "a replayed event applied twice");

    // Nothing waits any more (what `kommerce audit` counts); replaying again replays nothing.
    let b = broker.clone();
    let (left, again, all) = tokio::task::spawn_blocking(move || {
        (
            waiting(&b, "payments").unwrap(),
            replay(&b, "payments", Which::Waiting).unwrap().len(),
            list(&b, "payments", true).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!((left, again), (0, 0));
    assert!(all.iter().all(|l| l.replayed));
}
