//! Uploads, variants, caching, replacement, deletion, attachment and the sweeper over HTTP,
//! against real PostgreSQL and Redis with bytes on the local filesystem.

use std::time::Instant;

use crate::helpers::{
    TestApp, encoded, fields, jpeg_app_segments, jpeg_with_gps, png_declaring, problem,
};
use image::{GenericImageView, ImageFormat};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn each_accepted_type_round_trips_with_a_thumbnail() {
    let app = TestApp::spawn().await;
    for (format, mime) in [
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Png, "image/png"),
        (ImageFormat::WebP, "image/webp"),
        (ImageFormat::Gif, "image/gif"),
    ] {
        let bytes = encoded(format, 640, 400);
        let started = Instant::now();
        let body = app.upload(bytes, "upload.bin").await;
        eprintln!("{mime}: 640x400 upload took {:?}", started.elapsed());
        assert_eq!(body["content_type"], mime);
        assert_eq!(
            (body["width"].as_i64(), body["height"].as_i64()),
            (Some(640), Some(400))
        );
        assert_eq!(
            (body["thumb_width"].as_i64(), body["thumb_height"].as_i64()),
            (Some(320), Some(200))
        );
        assert_eq!(body["version"], 1);
        assert!(body["attached_to"].is_null());

        for (url, dims) in [(&body["url"], (640, 400)), (&body["thumb_url"], (320, 200))] {
            let r = app.get(url.as_str().unwrap()).await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()["content-type"], mime);
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
            let got = r.bytes().await.unwrap();
            let decoded = image::load_from_memory_with_format(&got, format).unwrap();
            assert_eq!(decoded.dimensions(), dims, "{mime} {url}");
        }
    }
    let owners: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT owner_id FROM images")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(owners, vec![app.alice.id], "stored for the uploader");
    assert_eq!(app.files(), 8, "an original and a thumbnail each");
}

#[tokio::test]
async fn the_type_comes_from_the_bytes_never_the_name_or_header() {
    let app = TestApp::spawn().await;
    let png = encoded(ImageFormat::Png, 30, 20);
    let r = app
        .upload_as(&app.alice, png, "holiday.jpg", "image/jpeg")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["content_type"], "image/png");
    let r = app.get(body["url"].as_str().unwrap()).await;
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.bytes().await.unwrap().starts_with(b"\x89PNG"));

    let before = (app.images().await, app.files());
    for (bytes, name, mime) in [
        (
            b"just some text, honest".to_vec(),
            "picture.png",
            "image/png",
        ),
        (
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
            "x.gif",
            "image/gif",
        ),
        (b"BM\x36\0\0\0\0\0".to_vec(), "bitmap.bmp", "image/bmp"),
    ] {
        let (status, p) = problem(app.upload_as(&app.alice, bytes, name, mime).await).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}: {p}");
    }
    assert_eq!((app.images().await, app.files()), before, "nothing stored");
    // File names never reach the filesystem.
    let names: Vec<String> = walk_names(&app.dir.0);
    assert!(
        names.iter().all(|n| n == "original" || n == "thumb"),
        "{names:?}"
    );
}

fn walk_names(p: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .flat_map(|e| {
                    if e.path().is_dir() {
                        walk_names(&e.path())
                    } else {
                        vec![e.file_name().to_string_lossy().into_owned()]
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn oversized_files_are_413_and_decompression_bombs_are_refused() {
    let app = TestApp::spawn().await;
    // 6 MB that begin like a PNG: the size is refused before anything looks at the content.
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    big.resize(6 * 1024 * 1024, 7);
    let (status, _) = problem(app.upload_as(&app.alice, big, "big.png", "image/png").await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let bomb = png_declaring(100_000, 100_000);
    assert!(bomb.len() < 100, "a tiny file");
    let (status, p) = problem(
        app.upload_as(&app.alice, bomb, "bomb.png", "image/png")
            .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["file".to_owned()])
    );
    assert!(p["detail"].as_str().unwrap().contains("pixels"), "{p}");

    // Not a bomb, but bigger than this deployment's pixel limit, read from the header.
    let limited = TestApp::spawn_with(|s| s.images.max_pixels = 10_000).await;
    let (status, p) = problem(
        limited
            .upload_as(
                &limited.alice,
                encoded(ImageFormat::Png, 101, 100),
                "a.png",
                "image/png",
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, fields(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["file".to_owned()])
    );
    let truncated = encoded(ImageFormat::Jpeg, 64, 64)[..200].to_vec();
    let (status, _) = problem(
        app.upload_as(&app.alice, truncated, "cut.jpg", "image/jpeg")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((app.images().await, app.files()), (0, 0), "nothing stored");
    assert_eq!((limited.images().await, limited.files()), (0, 0));
}

#[tokio::test]
async fn a_bad_request_names_its_problem_and_anonymous_uploads_are_refused() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .post(app.url("/api/v1/images"))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(encoded(ImageFormat::Png, 4, 4)),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .http
        .post(app.url("/api/v1/images"))
        .bearer_auth(&app.alice.token)
        .json(&json!({"file": "aGVsbG8="}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let two = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(encoded(ImageFormat::Png, 4, 4)),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(encoded(ImageFormat::Png, 4, 4)),
        );
    let r = app
        .http
        .post(app.url("/api/v1/images"))
        .bearer_auth(&app.alice.token)
        .multipart(two)
        .send()
        .await
        .unwrap();
    let (status, p) = problem(r).await;
    assert_eq!(
        (status, fields(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["file".to_owned()])
    );
    let r = app
        .get(&format!("/api/v1/images/{}?variant=huge", Uuid::new_v4()))
        .await;
    let (status, p) = problem(r).await;
    assert_eq!(
        (status, fields(&p)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["variant".to_owned()])
    );
    assert_eq!(app.images().await, 0);
}

#[tokio::test]
async fn exif_and_gps_are_stripped_by_re_encoding() {
    let app = TestApp::spawn().await;
    let original = jpeg_with_gps(200, 100);
    let before = jpeg_app_segments(&original);
    let exif = before
        .iter()
        .find(|(m, p)| *m == 0xE1 && p.starts_with(b"Exif\0\0"))
        .expect("the test image carries EXIF");
    assert!(
        exif.1.windows(2).any(|w| w == 0x8825u16.to_le_bytes()),
        "and a GPS IFD pointer"
    );
    let body = app.upload(original, "IMG_0001.jpg").await;
    for url in [&body["url"], &body["thumb_url"]] {
        let stored = app.get(url.as_str().unwrap()).await.bytes().await.unwrap();
        let after = jpeg_app_segments(&stored);
        assert!(
            after.iter().all(|(m, _)| *m != 0xE1),
            "no APP1 (EXIF/XMP) segment: {:?}",
            after.iter().map(|(m, _)| m).collect::<Vec<_>>()
        );
        assert!(!stored.windows(6).any(|w| w == b"Exif\0\0"));
        assert!(image::load_from_memory(&stored).is_ok());
    }
}

#[tokio::test]
async fn versioned_urls_are_immutable_with_strong_etags_and_304s() {
    let app = TestApp::spawn().await;
    let body = app
        .upload(encoded(ImageFormat::Png, 500, 500), "a.png")
        .await;
    let url = body["url"].as_str().unwrap();
    let r = app.get(url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );

    let again = app
        .http
        .get(app.url(url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = app
        .http
        .get(app.url(url))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);

    let thumb = app.get(body["thumb_url"].as_str().unwrap()).await;
    let thumb_etag = thumb.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(thumb_etag, etag, "each variant has its own ETag");
    let thumb_304 = app
        .http
        .get(app.url(body["thumb_url"].as_str().unwrap()))
        .header("if-none-match", &thumb_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(thumb_304.status(), StatusCode::NOT_MODIFIED);

    // The unversioned URL may change: it is revalidated, never cached for ever.
    let bare = app
        .get(&format!("/api/v1/images/{}", body["id"].as_str().unwrap()))
        .await;
    assert_eq!(bare.headers()["cache-control"], "public, no-cache");
    assert_eq!(bare.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn replacing_moves_the_image_to_a_new_versioned_url() {
    let app = TestApp::spawn().await;
    let body = app
        .upload(encoded(ImageFormat::Png, 100, 100), "a.png")
        .await;
    let id = body["id"].as_str().unwrap();
    let old_url = body["url"].as_str().unwrap().to_owned();
    let old_etag = app.get(&old_url).await.headers()["etag"].clone();

    let r = app
        .replace_as(&app.alice, id, encoded(ImageFormat::Jpeg, 90, 60))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let new: Value = r.json().await.unwrap();
    assert_eq!(new["version"], 2);
    assert_eq!(new["content_type"], "image/jpeg");
    let new_url = new["url"].as_str().unwrap();
    assert_ne!(new_url, old_url);
    assert!(new_url.ends_with("?v=2"), "{new_url}");

    let (status, _) = problem(app.get(&old_url).await).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an old version's URL shows nothing stale"
    );
    let r = app.get(new_url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(r.headers()["etag"], old_etag);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(app.files(), 2, "the old version's objects are gone");
}

#[tokio::test]
async fn only_the_uploader_replaces_and_the_uploader_or_an_admin_deletes() {
    let app = TestApp::spawn().await;
    let body = app.upload(encoded(ImageFormat::Png, 10, 10), "a.png").await;
    let id = body["id"].as_str().unwrap();
    let (status, _) = problem(
        app.replace_as(&app.bob, id, encoded(ImageFormat::Png, 5, 5))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = problem(
        app.replace_as(&app.admin, id, encoded(ImageFormat::Png, 5, 5))
            .await,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "replacing is the uploader's alone"
    );
    let (status, _) = problem(app.delete_as(&app.bob, id).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let r = app.get(body["url"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK, "unchanged");
    assert_eq!(
        sqlx::query_scalar::<_, i32>("SELECT version FROM images")
            .fetch_one(app.pool())
            .await
            .unwrap(),
        1
    );
    let unknown = Uuid::new_v4().to_string();
    let (status, _) = problem(app.delete_as(&app.alice, &unknown).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = problem(
        app.replace_as(&app.alice, &unknown, encoded(ImageFormat::Png, 5, 5))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_eq!(
        app.delete_as(&app.admin, id).await.status(),
        StatusCode::NO_CONTENT
    );
    let (status, _) = problem(app.get(body["url"].as_str().unwrap()).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mine = app.upload(encoded(ImageFormat::Png, 10, 10), "b.png").await;
    let mine = mine["id"].as_str().unwrap();
    assert_eq!(
        app.delete_as(&app.alice, mine).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!((app.images().await, app.files()), (0, 0));
}

async fn attach(app: &TestApp, id: &str, user: Uuid, kind: &str, owner: Uuid) -> StatusCode {
    app.internal(&Method::POST, &format!("/internal/v1/images/{id}/attach"))
        .json(&json!({"user_id": user, "kind": kind, "owner_id": owner}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn attaching_takes_the_uploaders_own_image_once_and_owners_delete_theirs() {
    let app = TestApp::spawn().await;
    let img = app.upload(encoded(ImageFormat::Png, 10, 10), "a.png").await;
    let id = img["id"].as_str().unwrap();
    let review = Uuid::new_v4();
    assert_eq!(
        attach(&app, id, app.bob.id, "review", review).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        attach(
            &app,
            &Uuid::new_v4().to_string(),
            app.alice.id,
            "review",
            review
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        attach(&app, id, app.alice.id, "shop", review).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        attach(&app, id, app.alice.id, "review", review).await,
        StatusCode::OK
    );
    assert_eq!(
        attach(&app, id, app.alice.id, "review", review).await,
        StatusCode::OK,
        "idempotent"
    );
    assert_eq!(
        attach(&app, id, app.alice.id, "review", Uuid::new_v4()).await,
        StatusCode::CONFLICT
    );
    let got: Value = sqlx::query_scalar::<_, String>("SELECT attached_kind FROM images")
        .fetch_one(app.pool())
        .await
        .map(Value::from)
        .unwrap();
    assert_eq!(got, "review");

    // A compensation detaches; deleting the review deletes its images, idempotently.
    let detach = app
        .internal(&Method::POST, &format!("/internal/v1/images/{id}/detach"))
        .json(&json!({"kind": "review", "owner_id": review}))
        .send()
        .await
        .unwrap();
    assert_eq!(detach.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        attach(&app, id, app.alice.id, "review", review).await,
        StatusCode::OK
    );
    let other = app.upload(encoded(ImageFormat::Png, 10, 10), "b.png").await;
    let path = format!("/internal/v1/images?kind=review&owner_id={review}");
    for expected in [1, 0] {
        let r = app.internal(&Method::DELETE, &path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["deleted"], expected);
    }
    assert_eq!(app.images().await, 1, "only the unattached one is left");
    let other_id = other["id"].as_str().unwrap();
    for _ in 0..2 {
        let r = app
            .internal(&Method::DELETE, &format!("/internal/v1/images/{other_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!((app.images().await, app.files()), (0, 0));
}

/// Found by schemathesis: the internal delete answered 204 to a path that names no image at
/// all (`null,null`), where every other route answers such a path with a 404 problem.
#[tokio::test]
async fn the_internal_delete_of_something_that_is_not_an_id_is_a_404() {
    let app = TestApp::spawn().await;
    let kept = app.upload(encoded(ImageFormat::Png, 10, 10), "a.png").await;
    for not_an_id in ["null%2Cnull", "1", "not-an-id"] {
        let r = app
            .internal(&Method::DELETE, &format!("/internal/v1/images/{not_an_id}"))
            .send()
            .await
            .unwrap();
        let (status, body) = problem(r).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{not_an_id}: {body}");
    }
    assert_eq!(app.images().await, 1, "{kept}");
}

#[tokio::test]
async fn the_sweeper_removes_old_unattached_images_and_nothing_else() {
    let app = TestApp::spawn_with(|s| s.images.unattached_max_age_secs = 3600).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let body = app.upload(encoded(ImageFormat::Png, 20, 20), "x.png").await;
        ids.push(body["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let [
        old_unattached,
        old_attached,
        fresh_unattached,
        old_unattached_2,
    ] = ids[..]
    else {
        unreachable!()
    };
    assert_eq!(
        attach(
            &app,
            &old_attached.to_string(),
            app.alice.id,
            "item",
            Uuid::new_v4()
        )
        .await,
        StatusCode::OK
    );
    sqlx::query("UPDATE images SET created_at = now() - interval '2 hours' WHERE id = ANY($1)")
        .bind([old_unattached, old_attached, old_unattached_2])
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(app.sweeper.sweep_once().await.unwrap(), 2);
    let mut left: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM images")
        .fetch_all(app.pool())
        .await
        .unwrap();
    left.sort();
    let mut want = vec![old_attached, fresh_unattached];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(app.files(), 4, "the swept images' objects are gone");
    let (status, _) = problem(app.get(&format!("/api/v1/images/{old_unattached}")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.sweeper.sweep_once().await.unwrap(),
        0,
        "nothing more to do"
    );
}
