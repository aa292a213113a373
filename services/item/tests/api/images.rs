//! An item's images: an admin's own uploads are attached when the item references them, the
//! ones it drops are deleted, and deleting the item deletes the rest — against the real image
//! service.

use std::io::Cursor;

use crate::helpers::{TestApp, fields, problem};
use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::testing::{RedisNamespace, TestDatabase};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

struct ImageService {
    base: String,
    db: TestDatabase,
    _redis: RedisNamespace,
    dir: std::path::PathBuf,
}

impl Drop for ImageService {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn image_service(auth: &kommerce_kit::AuthSettings) -> ImageService {
    let db = TestDatabase::create(kommerce_image::MIGRATIONS).await;
    let redis = RedisNamespace::new();
    let dir = std::env::temp_dir().join(format!("kommerce-item-images-{}", Uuid::new_v4()));
    let mut settings = kommerce_image::Settings {
        http: kommerce_kit::testing::local_http(),
        database: db.settings(),
        redis: redis.settings(),
        auth: auth.clone(),
        ..kommerce_image::Settings::default()
    };
    settings.storage.path = dir.to_string_lossy().into_owned();
    let app = kommerce_image::App::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    ImageService {
        base,
        db,
        _redis: redis,
        dir,
    }
}

async fn upload(images: &ImageService, token: &str) -> Uuid {
    let mut png = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/images", images.base))
        .bearer_auth(token)
        .multipart(
            reqwest::multipart::Form::new()
                .part("file", reqwest::multipart::Part::bytes(png.into_inner())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn attachment(db: &PgPool, image: Uuid) -> Option<(Option<String>, Option<Uuid>)> {
    sqlx::query_as("SELECT attached_kind, attached_id FROM images WHERE id = $1")
        .bind(image)
        .fetch_optional(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_item_attaches_its_admins_images_and_deletes_them_when_dropped_or_deleted() {
    let auth = kommerce_kit::testing::auth_settings();
    let images = image_service(&auth).await;
    let base = images.base.clone();
    let auth2 = auth.clone();
    let app = TestApp::spawn_with(move |s| {
        s.auth = auth2;
        s.peers.image = base;
    })
    .await;
    let signer = TokenSigner::new(&auth).unwrap();
    let admin_id = Uuid::new_v4();
    let admin = signer
        .sign(admin_id, Role::Admin, Uuid::new_v4())
        .unwrap()
        .0;
    let customer = signer
        .sign(Uuid::new_v4(), Role::Customer, Uuid::new_v4())
        .unwrap()
        .0;
    let (a, b) = (upload(&images, &admin).await, upload(&images, &admin).await);
    let theirs = upload(&images, &customer).await;
    let category = {
        let r = app
            .send(
                Method::POST,
                "/api/v1/categories",
                Some(&admin),
                Some(&json!({"name": "Pots"})),
            )
            .await;
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let item = |ids: Vec<Uuid>| json!({"name": "Pot", "description": "", "price_minor": 100, "category_id": category, "stock": 1, "image_ids": ids});

    let (status, p) = problem(
        app.send(
            Method::POST,
            "/api/v1/items",
            Some(&admin),
            Some(&item(vec![a, theirs])),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["image_ids[1]".to_owned()]
        )
    );
    assert_eq!(app.scalar("SELECT count(*) FROM items").await, 0);
    assert_eq!(
        attachment(&images.db.pool, a).await,
        Some((None, None)),
        "a was detached again"
    );

    let r = app
        .send(
            Method::POST,
            "/api/v1/items",
            Some(&admin),
            Some(&item(vec![a, b])),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: Uuid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        attachment(&images.db.pool, a).await,
        Some((Some("item".into()), Some(id)))
    );

    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/items/{id}"),
            Some(&admin),
            Some(&json!({"image_ids": [b]})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        attachment(&images.db.pool, a).await,
        None,
        "dropped: deleted"
    );

    let r = app
        .send(
            Method::DELETE,
            &format!("/api/v1/items/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        attachment(&images.db.pool, b).await,
        None,
        "deleted with the item"
    );
    assert_eq!(
        attachment(&images.db.pool, theirs).await,
        Some((None, None)),
        "someone else's image untouched"
    );
}
