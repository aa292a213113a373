//! Rotating the access-token signing key of a running platform while shoppers' requests flow
//! (ADR 0015, the runbook's three steps): the user service's key file is edited, every other
//! service learns the keys from its published JWKS — no restart, no valid token refused, and a
//! retired key's tokens refused everywhere afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use kommerce_kit::auth::generate_key_pair;
use kommerce_kit::testing::eventually;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::live::Live;

/// Reads of a shopper's own data, from the services that verify access tokens.
const READS: [&str; 5] = [
    "/api/v1/users/me",
    "/api/v1/wallet",
    "/api/v1/cart",
    "/api/v1/orders",
    "/api/v1/reviews/mine",
];

const LIMIT: Duration = Duration::from_secs(20);

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .unwrap()
        .kid
        .expect("tokens name their key")
}

async fn published(live: &Live) -> Vec<String> {
    let doc: Value = live
        .http
        .get(format!("{}/api/v1/auth/jwks.json", live.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn login(live: &Live) -> String {
    live.login("rotation@example.com", "rotate-me-please").await
}

/// The key file as the kubelet updates a mounted Secret: a new file moved into place.
fn write_keys(dir: &std::path::Path, keys: &[&str]) {
    let tmp = dir.join("signing-keys.next");
    std::fs::write(&tmp, keys.join("\n")).unwrap();
    std::fs::rename(&tmp, dir.join("signing-keys")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_key_is_rotated_while_requests_flow_without_a_refused_valid_token() {
    // Caches refresh every second, so that retiring takes seconds here, not a minute.
    let live = Live::start_with(&[("KOMMERCE_AUTH__JWKS_REFRESH_SECS", "1")]).await;
    let dir = live.opts.state_dir.clone();
    let a = std::fs::read_to_string(dir.join("signing-keys"))
        .unwrap()
        .trim()
        .to_owned();
    let r = live
        .http
        .post(format!("{}/api/v1/users", live.base))
        .json(
            &json!({"email": "rotation@example.com", "password": "rotate-me-please",
                      "name": "Rota", "phone": "+15550100"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let old = login(&live).await;
    let old_kid = kid(&old);
    assert_eq!(published(&live).await, std::slice::from_ref(&old_kid));

    // Shoppers' requests flow throughout, each with the newest token the shopper holds.
    let live = Arc::new(live);
    let current = Arc::new(RwLock::new(old.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let (served, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let flow = tokio::spawn({
        let (live, current, stop) = (live.clone(), current.clone(), stop.clone());
        let (served, refused) = (served.clone(), refused.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                let token = current.read().await.clone();
                for status in live.statuses(&token, &READS).await {
                    if status == StatusCode::OK {
                        served.fetch_add(1, Ordering::SeqCst);
                    } else {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
    });

    // 1. Introduce B: published beside A; A still signs.
    let (b, _) = generate_key_pair().unwrap();
    write_keys(&dir, &[&a, &b]);
    eventually("B is published", LIMIT, || async {
        published(&live).await.len() == 2
    })
    .await;
    assert_eq!(kid(&login(&live).await), old_kid, "A still signs");

    // 2. Activate B: new logins get B tokens, which every service accepts at once; A tokens
    //    stay valid.
    write_keys(&dir, &[&b, &a]);
    eventually("B signs", LIMIT, || async {
        kid(&login(&live).await) != old_kid
    })
    .await;
    let new = login(&live).await;
    *current.write().await = new.clone();
    assert!(
        live.statuses(&new, &READS)
            .await
            .iter()
            .all(|s| *s == StatusCode::OK)
    );
    assert!(
        live.statuses(&old, &READS)
            .await
            .iter()
            .all(|s| *s == StatusCode::OK)
    );

    // 3. Retire A: once every service's cache has refreshed, A's tokens are refused
    //    everywhere; B's never were.
    write_keys(&dir, &[&b]);
    eventually("A is no longer published", LIMIT, || async {
        published(&live).await == [kid(&new)]
    })
    .await;
    eventually("every service refuses A's tokens", LIMIT, || async {
        live.statuses(&old, &READS)
            .await
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    flow.await.unwrap();
    let (served, refused) = (
        served.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    println!("during the rotation: {served} requests served, {refused} refused");
    assert_eq!(refused, 0, "a valid token was refused during the rotation");
    assert!(served >= 50, "requests flowed throughout ({served})");
    if let Ok(live) = Arc::try_unwrap(live) {
        live.stop().await;
    }
}
