//! A logout stays a logout when Redis loses every key (a restart without persistence, a
//! flush): the user service keeps the deny-list in PostgreSQL too and restores it; until it
//! has, every service answers 503 rather than accept a revoked token (issue 18).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::live::Live;

/// Reads that verify the caller's token, one per service that has any.
const READS: [&str; 3] = ["/api/v1/users/me", "/api/v1/wallet", "/api/v1/cart"];

async fn login(live: &Live) -> String {
    live.login("redis@example.com", "forget-me-not-1").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_stays_a_logout_when_redis_loses_every_key() {
    let live = Live::start().await;
    let r = live
        .http
        .post(format!("{}/api/v1/users", live.base))
        .json(
            &json!({"email": "redis@example.com", "password": "forget-me-not-1",
                      "name": "Red", "phone": "+15550100"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (gone, kept) = (login(&live).await, login(&live).await);
    let r = live
        .http
        .post(format!("{}/api/v1/auth/logout", live.base))
        .bearer_auth(&gone)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        live.statuses(&gone, &READS)
            .await
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    );
    assert!(
        live.statuses(&kept, &READS)
            .await
            .iter()
            .all(|s| *s == StatusCode::OK)
    );

    let lost = live.lose_every_redis_key();
    assert!(lost > 0, "the platform had keys in Redis");
    // From the loss on, the logged-out token is never accepted anywhere: refused (401) or,
    // while the list is being restored, not judged (503) — until the kept token works again.
    let started = Instant::now();
    let mut not_judged = 0;
    loop {
        for status in live.statuses(&gone, &READS).await {
            assert!(
                status == StatusCode::UNAUTHORIZED || status == StatusCode::SERVICE_UNAVAILABLE,
                "a logged-out token was answered {status} after Redis lost its keys"
            );
            not_judged += usize::from(status == StatusCode::SERVICE_UNAVAILABLE);
        }
        if live
            .statuses(&kept, &READS)
            .await
            .iter()
            .all(|s| *s == StatusCode::OK)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the deny-list was not restored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "deny-list restored {:.2} s after Redis lost {lost} keys ({not_judged} answers of 503 meanwhile)",
        started.elapsed().as_secs_f64()
    );
    assert!(
        live.statuses(&gone, &READS)
            .await
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    );
    live.stop().await;
}
