//! StockPool against the real API server, real Redis and a real item-service instance (the
//! `kommerce-item` App on port 0 with its own database), which applies the policy live and
//! acknowledges it per `docs/stockpool-contract.md`.

use std::time::Duration;

use crate::support::{REDIS, condition, eventually};
use futures::StreamExt as _;
use kommerce_contracts::stock_pool::{Strategy, parse_policy};
use kommerce_crds::conditions::{PROGRESSING, READY};
use kommerce_crds::{StockPool, reasons};
use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings, kafka_settings};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const INSTANCE: &str = "item-op-test-1";

/// A running item-service instance, asked over its internal API which policy it applies.
struct ItemInstance(String);

impl ItemInstance {
    async fn applied(&self) -> (Strategy, String) {
        // Asked as the `kommerce` tools ask it, with their service credential.
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/internal/v1/stock/policy", self.0))
            .header(
                kommerce_kit::credential::HEADER,
                kommerce_kit::testing::service_credential("kommerce", "item"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            serde_json::from_value(body["policy"]["strategy"].clone()).unwrap(),
            body["hash"].as_str().unwrap().to_owned(),
        )
    }
}

/// A real item-service instance following `pool` under the key prefix of `redis`, with a Kafka
/// namespace of its own (never the `item` group or the `reviews` topic of a real platform).
async fn item_service(db: &TestDatabase, redis: &RedisNamespace, pool: &str) -> ItemInstance {
    let mut settings = kommerce_item::Settings {
        http: kommerce_kit::testing::local_http(),
        database: db.settings(),
        redis: redis.settings(),
        auth: auth_settings(),
        kafka: kafka_settings(),
        ..Default::default()
    };
    settings.stock.pool = pool.into();
    settings.stock.instance_id = Some(INSTANCE.into());
    settings.stock.ack_interval_ms = 500;
    let app = kommerce_item::App::build(settings)
        .await
        .expect("item service builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    ItemInstance(base)
}

async fn redis_get(key: &str) -> Option<String> {
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn acknowledged_on(api: &Api<StockPool>, name: &str, hash: Option<&str>) -> StockPool {
    eventually(&format!("{name}: 1/1 acknowledged"), WAIT, || async {
        let sp = api.get(name).await.ok()?;
        let status = sp.status.clone()?;
        let current = status.hash.clone()?;
        let fresh = hash.is_none_or(|h| h != current);
        (fresh
            && status.acknowledged.as_deref() == Some(&format!("1/1 instances on {current}"))
            && condition(&status.conditions, READY)?
                == ("True".into(), reasons::ALL_ACKNOWLEDGED.into()))
            .then_some(sp)
    })
    .await
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one resource's life, step by step
async fn a_stock_pool_is_applied_live_by_the_item_service_and_removed_on_delete() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "pool").await;
    let _operator = crate::support::start_operator(&client, crate::support::settings(&ns)).await;
    let redis = RedisNamespace::new();
    let db = TestDatabase::create(kommerce_item::MIGRATIONS).await;
    let pool = crate::support::unique("flash-sale");
    let item = item_service(&db, &redis, &pool).await;
    let key = format!("{}stockpool:{pool}", redis.prefix);

    // Listen for announcements like an item service does.
    let mut pubsub = redis::Client::open(REDIS)
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    pubsub.subscribe(format!("{key}:changed")).await.unwrap();
    let mut announcements = pubsub.into_on_message();

    let api: Api<StockPool> = Api::namespaced(client.clone(), &ns);
    let ssa = PatchParams::apply("kommerce-tests");
    let doc = |strategy: &str| {
        json!({
            "apiVersion": "kommerce.dev/v1alpha1", "kind": "StockPool", "metadata": { "name": pool },
            "spec": { "strategy": strategy, "spinLock": { "leaseMs": 1500 }, "redis": { "keyPrefix": redis.prefix } },
        })
    };
    api.patch(&pool, &ssa, &Patch::Apply(doc("spinLock")))
        .await
        .unwrap();
    let sp = acknowledged_on(&api, &pool, None).await;
    let status = sp.status.clone().unwrap();
    let first = status.hash.clone().unwrap();
    assert_eq!(status.key.as_deref(), Some(key.as_str()));
    assert_eq!(
        (status.instances, status.acknowledged_instances),
        (Some(1), Some(1))
    );
    assert_eq!(
        condition(&status.conditions, PROGRESSING).map(|c| c.0),
        Some("False".into())
    );

    // The document in Redis is what the item service's own parser accepts, hash included.
    let raw = redis_get(&key).await.expect("config written");
    let (policy, hash) = parse_policy(&raw).expect("the item service accepts the document");
    assert_eq!(hash, first);
    assert_eq!(
        (policy.strategy, policy.lease_ms, policy.backoff_max_ms),
        (Strategy::SpinLock, 1500, 50)
    );
    let announced: String = tokio::time::timeout(WAIT, announcements.next())
        .await
        .unwrap()
        .unwrap()
        .get_payload()
        .unwrap();
    assert_eq!(announced, first);
    // The running instance applied it.
    assert_eq!(item.applied().await, (Strategy::SpinLock, first.clone()));

    let out = crate::support::kubectl(&[
        "wait",
        "-n",
        &ns,
        "--for=condition=Ready",
        &format!("stockpool/{pool}"),
        "--timeout=20s",
    ]);
    assert!(
        out.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::support::kubectl(&["get", "stockpools", "-n", &ns]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .eq(["NAME", "STRATEGY", "HASH", "ACKNOWLEDGED", "READY", "AGE"]),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "spinLock   {first}   1/1 instances on {first}   True"
        )),
        "{table}"
    );

    // Switch strategy: a new hash, announced, applied and acknowledged without a restart.
    api.patch(&pool, &ssa, &Patch::Apply(doc("reservation")))
        .await
        .unwrap();
    let sp = acknowledged_on(&api, &pool, Some(&first)).await;
    let second = sp.status.unwrap().hash.unwrap();
    assert_ne!(second, first);
    let announced: String = tokio::time::timeout(WAIT, announcements.next())
        .await
        .unwrap()
        .unwrap()
        .get_payload()
        .unwrap();
    assert_eq!(announced, second);
    assert_eq!(
        item.applied().await,
        (Strategy::Reservation, second.clone())
    );

    // Delete: the key goes, `default` is announced, and the instance falls back to its default.
    api.delete(&pool, &DeleteParams::default()).await.unwrap();
    eventually("StockPool gone", WAIT, || async {
        api.get_opt(&pool).await.ok()?.is_none().then_some(())
    })
    .await;
    assert_eq!(redis_get(&key).await, None);
    let announced: String = tokio::time::timeout(WAIT, announcements.next())
        .await
        .unwrap()
        .unwrap()
        .get_payload()
        .unwrap();
    assert_eq!(announced, "default");
    eventually("instance back on the default", WAIT, || async {
        (redis_get(&format!("{key}:ack:{INSTANCE}")).await.as_deref() == Some("default"))
            .then_some(())
    })
    .await;
    assert_eq!(
        item.applied().await,
        (Strategy::ConditionalUpdate, "default".to_owned())
    );
}

#[tokio::test]
async fn acknowledgements_are_counted_per_live_instance() {
    let client = crate::support::client().await;
    let ns = crate::support::namespace(&client, "pool").await;
    let _operator = crate::support::start_operator(&client, crate::support::settings(&ns)).await;
    let redis = RedisNamespace::new();
    let api: Api<StockPool> = Api::namespaced(client.clone(), &ns);
    let doc = json!({
        "apiVersion": "kommerce.dev/v1alpha1", "kind": "StockPool", "metadata": { "name": "default" },
        "spec": { "strategy": "conditionalUpdate", "redis": { "keyPrefix": redis.prefix } },
    });
    api.patch(
        "default",
        &PatchParams::apply("kommerce-tests"),
        &Patch::Apply(doc),
    )
    .await
    .unwrap();
    // No instance yet: written, but not Ready.
    let status = eventually("NoLiveInstances", WAIT, || async {
        let status = api.get("default").await.ok()?.status?;
        (condition(&status.conditions, READY)?
            == ("False".into(), reasons::NO_LIVE_INSTANCES.into()))
            .then_some(status)
    })
    .await;
    let hash = status.hash.unwrap();
    assert_eq!(
        status.acknowledged,
        Some(format!("0/0 instances on {hash}"))
    );

    // Two instances acknowledge through the contract's keys: one current, one stale.
    let mut conn = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ack = |instance: &str| format!("{}stockpool:default:ack:{instance}", redis.prefix);
    let (): () = redis::cmd("SET")
        .arg(ack("a"))
        .arg(&hash)
        .arg("EX")
        .arg(30)
        .query_async(&mut conn)
        .await
        .unwrap();
    let (): () = redis::cmd("SET")
        .arg(ack("b"))
        .arg("0123456789abcdef")
        .arg("EX")
        .arg(30)
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually("1/2 and waiting", WAIT, || async {
        let status = api.get("default").await.ok()?.status?;
        (status.acknowledged.as_deref() == Some(&format!("1/2 instances on {hash}"))
            && condition(&status.conditions, READY)?
                == ("False".into(), reasons::WAITING_FOR_ACKNOWLEDGEMENT.into()))
            .then_some(())
    })
    .await;
    // The stale instance catches up: Ready.
    let (): () = redis::cmd("SET")
        .arg(ack("b"))
        .arg(&hash)
        .arg("EX")
        .arg(30)
        .query_async(&mut conn)
        .await
        .unwrap();
    eventually("2/2 and Ready", WAIT, || async {
        let status = api.get("default").await.ok()?.status?;
        (status.acknowledged.as_deref() == Some(&format!("2/2 instances on {hash}"))
            && condition(&status.conditions, READY)?.0 == "True")
            .then_some(())
    })
    .await;
    api.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    eventually("gone", WAIT, || async {
        api.get_opt("default").await.ok()?.is_none().then_some(())
    })
    .await;
}
