//! The shared Redis connection across a lost connection (a Redis restart, a proxy cutting it).

use kommerce_kit::cache::Redis;
use kommerce_kit::testing::RedisNamespace;

#[tokio::test]
async fn a_readiness_ping_survives_redis_dropping_the_connection() {
    let ns = RedisNamespace::new();
    let redis = Redis::connect(&ns.settings()).await.unwrap();
    redis.ping().await.unwrap();
    // Redis drops the service's connection, as a restart does.
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut redis.conn())
        .await
        .unwrap();
    let mut other = redis::Client::open(ns.settings().url.expose())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut other)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // The first probe after it is already an honest answer: Redis is up.
    redis.ping().await.unwrap();
}
