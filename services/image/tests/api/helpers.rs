//! The image service spawned on port 0 against real PostgreSQL and Redis, storing bytes in a
//! throwaway directory; images are generated here, never read from fixtures.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Cursor;
use std::path::PathBuf;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use kommerce_image::storage::Blobs;
use kommerce_image::{App, MIGRATIONS, Settings, Sweeper};
use kommerce_kit::auth::{Role, TokenSigner};
use kommerce_kit::testing::{RedisNamespace, TestDatabase, auth_settings};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

pub struct User {
    pub id: Uuid,
    pub token: String,
}

/// Who calls the service's internal routes, from its document: tests call them as those do.
static CALLERS: kommerce_kit::testing::InternalCallers =
    kommerce_kit::testing::InternalCallers::new("image", kommerce_image::openapi);

pub struct TestApp {
    pub base: String,
    pub http: Client,
    pub db: TestDatabase,
    pub redis: RedisNamespace,
    pub dir: TempDir,
    pub sweeper: Sweeper,
    pub signer: TokenSigner,
    pub alice: User,
    pub bob: User,
    pub admin: User,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        kommerce_kit::telemetry::init(
            "image",
            &kommerce_kit::TelemetrySettings {
                log_filter: "warn".into(),
                json: false,
            },
        );
        let db = TestDatabase::create(MIGRATIONS).await;
        let redis = RedisNamespace::new();
        let auth = auth_settings();
        let dir = TempDir(std::env::temp_dir().join(format!("kommerce-images-{}", Uuid::new_v4())));
        let mut settings = Settings {
            http: kommerce_kit::testing::local_http(),
            database: db.settings(),
            redis: redis.settings(),
            auth: auth.clone(),
            ..Settings::default()
        };
        settings.storage.path = dir.0.to_string_lossy().into_owned();
        settings.images.sweep_interval_secs = 3600;
        tweak(&mut settings);
        // The service's own sweeper runs hourly; tests run passes of an equal one on demand.
        let sweeper = Sweeper::new(
            db.pool.clone(),
            Blobs::open(&settings.storage).expect("storage opens"),
            settings.images.unattached_max_age(),
        );
        let app = App::build(settings).await.expect("image service builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        let signer = TokenSigner::new(&auth).unwrap();
        let user = |role| {
            let id = Uuid::new_v4();
            User {
                id,
                token: signer.sign(id, role, Uuid::new_v4()).unwrap().0,
            }
        };
        let (alice, bob, admin) = (
            user(Role::Customer),
            user(Role::Customer),
            user(Role::Admin),
        );
        Self {
            base,
            http: Client::new(),
            db,
            redis,
            dir,
            sweeper,
            signer,
            alice,
            bob,
            admin,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to an internal route, with the credential of the first service its document
    /// names as a caller (item).
    pub fn internal(&self, method: &reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method.clone(), self.url(path));
        CALLERS.attach(r, method, path)
    }

    fn form(bytes: Vec<u8>, file_name: &str, mime: &str) -> Form {
        Form::new().part(
            "file",
            Part::bytes(bytes)
                .file_name(file_name.to_owned())
                .mime_str(mime)
                .unwrap(),
        )
    }

    pub async fn upload_as(
        &self,
        user: &User,
        bytes: Vec<u8>,
        file_name: &str,
        mime: &str,
    ) -> Response {
        self.http
            .post(self.url("/api/v1/images"))
            .bearer_auth(&user.token)
            .multipart(Self::form(bytes, file_name, mime))
            .send()
            .await
            .expect("request")
    }

    /// Uploads as alice; asserts 201 and returns the body.
    pub async fn upload(&self, bytes: Vec<u8>, file_name: &str) -> Value {
        let r = self
            .upload_as(&self.alice, bytes, file_name, "application/octet-stream")
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.json().await.unwrap()
    }

    pub async fn replace_as(&self, user: &User, id: &str, bytes: Vec<u8>) -> Response {
        self.http
            .put(self.url(&format!("/api/v1/images/{id}")))
            .bearer_auth(&user.token)
            .multipart(Self::form(bytes, "new.png", "image/png"))
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_as(&self, user: &User, id: &str) -> Response {
        self.http
            .delete(self.url(&format!("/api/v1/images/{id}")))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    pub async fn images(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM images")
            .fetch_one(self.pool())
            .await
            .unwrap()
    }

    /// Files under the storage directory.
    pub fn files(&self) -> usize {
        fn walk(p: &std::path::Path) -> usize {
            std::fs::read_dir(p).map_or(0, |d| {
                d.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
        }
        walk(&self.dir.0)
    }
}

/// A colourful `w`×`h` image encoded as `format`.
pub fn encoded(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let rgb = RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            u8::try_from(x % 256).unwrap(),
            u8::try_from(y % 256).unwrap(),
            128,
        ])
    });
    let img = match format {
        ImageFormat::Gif | ImageFormat::WebP => {
            DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
                let p = rgb.get_pixel(x, y);
                Rgba([p[0], p[1], p[2], 255])
            }))
        }
        _ => DynamicImage::ImageRgb8(rgb),
    };
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A JPEG carrying an EXIF APP1 segment with a GPS IFD (latitude 48° N).
pub fn jpeg_with_gps(w: u32, h: u32) -> Vec<u8> {
    let jpeg = encoded(ImageFormat::Jpeg, w, h);
    // TIFF, little endian: IFD0 at 8 with one entry (GPSInfo → 26), then the GPS IFD with
    // GPSLatitudeRef "N" and GPSLatitude 48/1, 0/1, 0/1 (rationals at 56).
    let mut tiff: Vec<u8> = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    tiff.extend(0x8825u16.to_le_bytes());
    tiff.extend(4u16.to_le_bytes()); // LONG
    tiff.extend(1u32.to_le_bytes());
    tiff.extend(26u32.to_le_bytes());
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    assert_eq!(tiff.len(), 26);
    tiff.extend(2u16.to_le_bytes());
    tiff.extend(1u16.to_le_bytes()); // GPSLatitudeRef
    tiff.extend(2u16.to_le_bytes()); // ASCII
    tiff.extend(2u32.to_le_bytes());
    tiff.extend(*b"N\0\0\0");
    tiff.extend(2u16.to_le_bytes()); // GPSLatitude
    tiff.extend(5u16.to_le_bytes()); // RATIONAL
    tiff.extend(3u32.to_le_bytes());
    tiff.extend(56u32.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    assert_eq!(tiff.len(), 56);
    for (n, d) in [(48u32, 1u32), (0, 1), (0, 1)] {
        tiff.extend(n.to_le_bytes());
        tiff.extend(d.to_le_bytes());
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1]);
    out.extend(u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

/// The JPEG's APPn segments (marker, payload), in order.
pub fn jpeg_app_segments(jpeg: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        if marker == 0xDA {
            break; // start of scan: no more headers
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if (0xE0..=0xEF).contains(&marker) {
            out.push((marker, jpeg[i + 4..i + 2 + len].to_vec()));
        }
        i += 2 + len;
    }
    out
}

/// A tiny PNG whose header declares `w`×`h` pixels (a decompression bomb's header).
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    fn chunk(kind: [u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
        c.extend(kind);
        c.extend(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend(data);
        c.extend(crc32(&crc_input).to_be_bytes());
        c
    }
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(*b"IHDR", &ihdr));
    // A zlib stream of a few zero bytes: what would inflate to the declared image.
    png.extend(chunk(
        *b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    png.extend(chunk(*b"IEND", &[]));
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub use kommerce_kit::testing::{fields, problem};
