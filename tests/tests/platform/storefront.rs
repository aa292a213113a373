//! The storefront as shoppers and admins meet it: a real browser (Debian's chromium, driven by
//! playwright-core from `web/e2e/journeys.mjs`) on the built app, served by the local router of
//! the platform running as separate processes, seeded by `kommerce seed`. The browser side
//! checks what a person sees (and axe-core on every page); this side checks what the clicks
//! did to the books: one payment per checkout however often the page reloads, refunds that
//! add up, the admin's item in the catalogue, and `kommerce audit` finding everything
//! consistent.
//!
//! Needs `web/dist` (`scripts/web.sh`), its packages and `/usr/bin/chromium`
//! (`scripts/deps.sh browser`); `make test` provides all three.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::scalar;
use crate::live::Live;
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn web_dir() -> PathBuf {
    repo().join("web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoppers_and_admins_use_the_shop_in_a_browser() {
    let web = web_dir();
    assert!(
        web.join("dist/index.html").is_file() && web.join("node_modules/playwright-core").is_dir(),
        "the storefront is not built: run scripts/web.sh (make test does)"
    );
    let (admin_email, admin_password) = kommerce::seed::DEMO_ADMIN;
    let live = Live::start_with_admin(admin_email, admin_password).await;
    let seeded = kommerce::seed::seed(&live.base, (admin_email, admin_password), false)
        .await
        .unwrap();
    assert_eq!((seeded.items, seeded.categories), (90, 13), "{seeded:?}");
    assert_eq!((seeded.orders, seeded.reviews), (5, 12), "{seeded:?}");
    let again = kommerce::seed::seed(&live.base, (admin_email, admin_password), false)
        .await
        .unwrap();
    assert!(again.skipped, "a second seeding leaves the shop as it is");

    let screenshots = repo().join("target/screenshots");
    let (shopper, shopper_password) = kommerce::seed::DEMO_SHOPPER;
    let run = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::process::Command::new("node")
            .arg(web.join("e2e/journeys.mjs"))
            .env("KOMMERCE_URL", &live.base)
            .env("KOMMERCE_ADMIN", format!("{admin_email}:{admin_password}"))
            .env("KOMMERCE_DEMO", format!("{shopper}:{shopper_password}"))
            .env("KOMMERCE_SCREENSHOTS", &screenshots)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the journeys end within 10 minutes")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "browser journeys failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stdout}");
    // The journeys' last line: what they did, for the books.
    let done: Value = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("a RESULT line");

    // Signup → … → cancel: one payment, refunded in full; the wallet holds the top-up again.
    let buyer = user_id(&live, &done["buyer"]).await;
    let (payments, refunded, balance): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(r.amount_minor), 0)::int8, \
                (SELECT balance_minor FROM wallets WHERE user_id = $1) \
         FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id WHERE p.user_id = $1",
    )
    .bind(buyer)
    .fetch_one(&live.pay_db)
    .await
    .unwrap();
    let top_up = done["top_up"].as_i64().unwrap();
    assert_eq!((payments, balance), (1, top_up), "refunded {refunded}");
    assert!(refunded > 0);
    let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE user_id = $1")
        .bind(buyer)
        .fetch_one(&live.order_db)
        .await
        .unwrap();
    assert_eq!(status, "cancelled");

    // A reload in the middle of the checkout paid once.
    let reloader = user_id(&live, &done["reloader"]).await;
    let paid = scalar(
        &live.pay_db,
        &format!("SELECT count(*) FROM payments WHERE user_id = '{reloader}'"),
    )
    .await;
    assert_eq!(paid, 1, "one payment however often the page reloads");
    let charged = scalar(
        &live.pay_db,
        &format!(
            "SELECT count(*) FROM wallet_entries WHERE user_id = '{reloader}' AND kind = 'charge'"
        ),
    )
    .await;
    assert_eq!(charged, 1);

    // The item whose stock went: no order, the payment cancelled and refunded in full, with
    // the reason the page showed.
    let late = user_id(&live, &done["late"]).await;
    let (status, reason, refunded, amount): (String, String, i64, i64) = sqlx::query_as(
        "SELECT p.status, r.reason, r.amount_minor, p.amount_minor \
         FROM payments p JOIN refunds r ON r.payment_id = p.id WHERE p.user_id = $1",
    )
    .bind(late)
    .fetch_one(&live.pay_db)
    .await
    .unwrap();
    assert_eq!((status.as_str(), refunded), ("cancelled", amount));
    assert_eq!(Some(reason.as_str()), done["late_reason"].as_str());
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE user_id = $1")
        .bind(late)
        .fetch_one(&live.order_db)
        .await
        .unwrap();
    assert_eq!(orders, 0);

    // The admin's item is in the catalogue with its picture.
    let images: i64 = sqlx::query_scalar(
        "SELECT cardinality(image_ids)::int8 FROM items WHERE name = $1 AND deleted_at IS NULL",
    )
    .bind(done["admin_item"].as_str().unwrap())
    .fetch_one(&live.item_db)
    .await
    .unwrap();
    assert_eq!(images, 1);

    let (code, report) = live.audit().await;
    assert_eq!(code, Some(0), "{report}");
    live.stop().await;
}

async fn user_id(live: &Live, email: &Value) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email.as_str().unwrap())
        .fetch_one(&live.user_db)
        .await
        .unwrap()
}
