//! `kommerce seed`: a shop to click through — a category tree, products with generated images
//! and stock, shoppers who bought and reviewed some of them, and a demo shopper with money in
//! the wallet. Everything goes through the public API as an admin and as shoppers would do it
//! (no database writes), so the data obeys every rule the services keep.
//!
//! Seeding a catalogue that already has items does nothing (unless forced): `kommerce up
//! --demo` runs it on every start and only the first fills the shop.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The demo shopper's login; printed by `kommerce up --demo`. Development data only.
pub const DEMO_SHOPPER: (&str, &str) = ("demo@kommerce.test", "kommerce-demo");
/// The admin `kommerce up --demo` bootstraps when none is named.
pub const DEMO_ADMIN: (&str, &str) = ("admin@kommerce.test", "kommerce-admin");
/// What the demo shopper's wallet holds after seeding (minor units).
pub const DEMO_BALANCE: i64 = 500_000;

/// One product of the demo catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub stock: i64,
    /// The leaf category it belongs to: `(root, leaf)`.
    pub category: (&'static str, &'static str),
    /// What its generated images are drawn from.
    pub seed: u64,
}

/// A leaf category and the nouns of its products.
type Leaf = (&'static str, &'static [&'static str]);

/// The category tree: roots and their leaves, with the nouns of their products.
const TREE: &[(&str, &[Leaf])] = &[
    (
        "Tea",
        &[
            (
                "Green tea",
                &["Sencha", "Matcha", "Jeju green tea", "Gyokuro"],
            ),
            (
                "Black tea",
                &["Assam", "Darjeeling", "Earl Grey", "Breakfast blend"],
            ),
            (
                "Herbal tea",
                &["Chamomile", "Peppermint", "Rooibos", "Barley tea"],
            ),
        ],
    ),
    (
        "Coffee",
        &[
            (
                "Beans",
                &["Ethiopia Yirgacheffe", "Colombia Huila", "House espresso"],
            ),
            (
                "Drip bags",
                &["Morning drip bags", "Decaf drip bags", "Cold brew bags"],
            ),
        ],
    ),
    (
        "Kitchen",
        &[
            (
                "Cups and mugs",
                &["Stoneware mug", "Celadon cup", "Glass tumbler"],
            ),
            (
                "Kettles",
                &["Gooseneck kettle", "Cast iron kettle", "Travel kettle"],
            ),
        ],
    ),
    (
        "Stationery",
        &[
            (
                "Notebooks",
                &["Dot grid notebook", "Pocket journal", "Hanji sketchbook"],
            ),
            ("Pens", &["Fountain pen", "Gel pen set", "Brush pen"]),
        ],
    ),
];

/// Qualities a product name starts with; every noun comes in each.
const QUALITIES: &[&str] = &["Classic", "Organic", "Limited"];

/// The demo catalogue: every noun of [`TREE`] in every quality — 90 products, a few sold out.
/// Pure and the same on every run.
pub fn catalogue() -> Vec<Product> {
    let mut products = Vec::new();
    for (root, leaves) in TREE {
        for (leaf, nouns) in *leaves {
            for noun in *nouns {
                for (quality, premium) in QUALITIES.iter().zip([0, 12_500, 25_000]) {
                    let n = i64::try_from(products.len()).unwrap_or(i64::MAX);
                    // Prices from 3,000 to about 90,000, in hundreds; "Limited" costs more.
                    let price_minor = 3_000 + n * 7_919 % 60 * 1_000 + premium + n % 10 * 100;
                    // Every eleventh product is sold out; the others have 5 to 124 units.
                    let stock = if n % 11 == 7 { 0 } else { 5 + n * 37 % 120 };
                    products.push(Product {
                        name: format!("{quality} {noun}"),
                        description: format!(
                            "{quality} {} from the Kommerce demo catalogue ({leaf}). \
                             Generated for trying the shop: search for it, review it, buy it.",
                            noun.to_lowercase()
                        ),
                        price_minor,
                        stock,
                        category: (root, leaf),
                        seed: n.unsigned_abs(),
                    });
                }
            }
        }
    }
    products
}

/// A generated product picture: a soft two-colour gradient with a shape, 480×480 PNG.
/// `variant` picks the shape (a disc, a square, a ring), so a product's pictures differ.
pub fn product_image(seed: u64, variant: u8) -> Vec<u8> {
    const SIDE: u32 = 480;
    const CENTRE: i64 = 240;
    let hue = |s: u64| u16::try_from(s.wrapping_mul(2_654_435_761) % 360).unwrap_or(0);
    let (from, to) = (
        hsl_to_rgb(hue(seed), 0.55, 0.62),
        hsl_to_rgb(hue(seed + 97), 0.55, 0.62),
    );
    let ink = hsl_to_rgb(hue(seed.wrapping_mul(31) + 7), 0.45, 0.30);
    let img = image::RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let (dx, dy) = (i64::from(x) - CENTRE, i64::from(y) - CENTRE);
        let r2 = dx * dx + dy * dy;
        let inside = match variant % 3 {
            0 => r2 < 130 * 130,
            1 => dx.abs() < 115 && dy.abs() < 115,
            _ => (95 * 95..140 * 140).contains(&r2),
        };
        if inside {
            return image::Rgb(ink);
        }
        // Along the diagonal, `from` blends into `to` (t in 0..=255).
        let t = (x + y) * 255 / (2 * SIDE);
        image::Rgb([0, 1, 2].map(|i| {
            let mixed = (u32::from(from[i]) * (255 - t) + u32::from(to[i]) * t) / 255;
            u8::try_from(mixed).unwrap_or(u8::MAX)
        }))
    });
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .expect("a PNG encodes into memory");
    png.into_inner()
}

/// An HSL colour (hue in degrees) as 8-bit RGB.
fn hsl_to_rgb(hue: u16, saturation: f32, lightness: f32) -> [u8; 3] {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = f32::from(hue % 360) / 60.0;
    let second = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let rgb = match hue % 360 / 60 {
        0 => [chroma, second, 0.0],
        1 => [second, chroma, 0.0],
        2 => [0.0, chroma, second],
        3 => [0.0, second, chroma],
        4 => [second, 0.0, chroma],
        _ => [chroma, 0.0, second],
    };
    // In 0..=1 by construction: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    rgb.map(|c| {
        ((c + lightness - chroma / 2.0) * 255.0)
            .round()
            .clamp(0.0, 255.0) as u8
    })
}

/// What a seeding did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    /// The catalogue already had items: nothing was done.
    pub skipped: bool,
    pub categories: usize,
    pub items: usize,
    pub orders: usize,
    pub reviews: usize,
}

/// A client of the public API at `base` (`http://127.0.0.1:8080`).
struct Api {
    http: Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        extra: &[(&str, String)],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        for (k, v) in extra {
            r = r.header(*k, v);
        }
        let resp = r.send().await.with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    /// `method path`, which must answer `want`.
    async fn expect(
        &self,
        want: StatusCode,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.call(method.clone(), path, token, body, &[]).await?;
        if status != want {
            bail!("{method} {path}: {status} {value}");
        }
        Ok(value)
    }

    async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let v = self
            .expect(
                StatusCode::OK,
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await
            .with_context(|| format!("logging in as {email}"))?;
        Ok(v["access_token"].as_str().unwrap_or_default().to_owned())
    }

    /// Signs `email` up unless it exists, then logs in.
    async fn shopper(&self, email: &str, password: &str, name: &str) -> anyhow::Result<String> {
        let (status, v) = self
            .call(
                Method::POST,
                "/api/v1/users",
                None,
                Some(&json!({"email": email, "password": password, "name": name,
                             "phone": "+82 10 1234 5678"})),
                &[],
            )
            .await?;
        if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
            bail!("signing up {email}: {status} {v}");
        }
        self.login(email, password).await
    }

    /// The shopper's default address, added when there is none.
    async fn address(&self, token: &str, recipient: &str) -> anyhow::Result<String> {
        let list = self
            .expect(
                StatusCode::OK,
                Method::GET,
                "/api/v1/users/me/addresses",
                Some(token),
                None,
            )
            .await?;
        if let Some(a) = list.as_array().and_then(|a| a.first()) {
            return Ok(a["id"].as_str().unwrap_or_default().to_owned());
        }
        let a = self
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/users/me/addresses",
                Some(token),
                Some(
                    &json!({"label": "Home", "recipient": recipient, "phone": "+82 10 1234 5678",
                             "line1": "123 Sejong-daero", "city": "Seoul",
                             "postal_code": "04524", "country": "KR"}),
                ),
            )
            .await?;
        Ok(a["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Tops the wallet up to at least `balance`.
    async fn fund(&self, token: &str, balance: i64) -> anyhow::Result<()> {
        let w = self
            .expect(
                StatusCode::OK,
                Method::GET,
                "/api/v1/wallet",
                Some(token),
                None,
            )
            .await?;
        let mut missing = balance - w["balance_minor"].as_i64().unwrap_or(0);
        while missing > 0 {
            let step = missing.min(1_000_000);
            self.expect(
                StatusCode::OK,
                Method::POST,
                "/api/v1/wallet/top-up",
                Some(token),
                Some(&json!({"amount_minor": step})),
            )
            .await?;
            missing -= step;
        }
        Ok(())
    }

    async fn upload(&self, token: &str, png: Vec<u8>) -> anyhow::Result<String> {
        let boundary = format!("kommerce-{}", Uuid::new_v4().simple());
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"demo.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&png);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let resp = self
            .http
            .post(format!("{}/api/v1/images", self.base))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status != StatusCode::CREATED {
            bail!("uploading an image: {status} {v}");
        }
        Ok(v["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Buys one unit of each of `items` with the wallet and waits for the saga's answer:
    /// the order id when it completed.
    async fn buy(
        &self,
        token: &str,
        address: &str,
        items: &[String],
    ) -> anyhow::Result<Option<String>> {
        let mut lines = Vec::new();
        for item in items {
            let line = self
                .expect(
                    StatusCode::CREATED,
                    Method::POST,
                    "/api/v1/cart/items",
                    Some(token),
                    Some(&json!({"item_id": item, "qty": 1})),
                )
                .await?;
            lines.push(line["id"].as_str().unwrap_or_default().to_owned());
        }
        let cart = self
            .expect(
                StatusCode::OK,
                Method::GET,
                "/api/v1/cart",
                Some(token),
                None,
            )
            .await?;
        let amount: i64 = cart["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| lines.iter().any(|id| l["id"] == id.as_str()))
            .map(|l| l["unit_price_minor"].as_i64().unwrap_or(0) * l["qty"].as_i64().unwrap_or(0))
            .sum();
        let (status, paid) = self
            .call(
                Method::POST,
                "/api/v1/payments",
                Some(token),
                Some(&json!({"cart_line_ids": lines, "address_id": address,
                             "amount_minor": amount, "method": "wallet"})),
                &[("Idempotency-Key", Uuid::new_v4().to_string())],
            )
            .await?;
        if status != StatusCode::CREATED {
            bail!("paying: {status} {paid}");
        }
        let id = paid["id"].as_str().unwrap_or_default().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let p = self
                .expect(
                    StatusCode::OK,
                    Method::GET,
                    &format!("/api/v1/payments/{id}"),
                    Some(token),
                    None,
                )
                .await?;
            match p["status"].as_str() {
                Some("completed") => return Ok(p["order_id"].as_str().map(str::to_owned)),
                Some("pending_order") if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some("pending_order") => bail!("payment {id} did not settle in 60 s"),
                _ => return Ok(None),
            }
        }
    }
}

/// What reviewers say, by the stars they give.
const OPINIONS: &[(i64, &str, &str)] = &[
    (
        5,
        "Excellent",
        "Exactly as described, arrived quickly. Would buy again.",
    ),
    (
        4,
        "Very good",
        "Good quality for the price; the packaging could be better.",
    ),
    (
        5,
        "Love it",
        "My new favourite. The whole family enjoys it.",
    ),
    (3, "It's fine", "Does the job, nothing special."),
    (
        2,
        "Not for me",
        "Smaller than I expected from the pictures.",
    ),
];

/// Seeds the shop at `base` as the admin `admin` = (e-mail, password).
pub async fn seed(base: &str, admin: (&str, &str), force: bool) -> anyhow::Result<Seeded> {
    let api = Api {
        http: Client::builder().timeout(Duration::from_secs(30)).build()?,
        base: base.trim_end_matches('/').to_owned(),
    };
    let existing = api
        .expect(
            StatusCode::OK,
            Method::GET,
            "/api/v1/items?limit=1",
            None,
            None,
        )
        .await?;
    if !force && existing["items"].as_array().is_some_and(|a| !a.is_empty()) {
        return Ok(Seeded {
            skipped: true,
            ..Seeded::default()
        });
    }
    let mut seeded = Seeded::default();
    let admin_token = api.login(admin.0, admin.1).await?;
    let admin_token = admin_token.as_str();

    // Categories: made where missing, found by name where present.
    let mut leaf_ids = std::collections::HashMap::new();
    for (root, leaves) in TREE {
        let root_id = category(&api, admin_token, root, None, &mut seeded).await?;
        for (leaf, _) in *leaves {
            let id = category(&api, admin_token, leaf, Some(&root_id), &mut seeded).await?;
            leaf_ids.insert(*leaf, id);
        }
    }

    // Products, two pictures each.
    let mut in_stock = Vec::new();
    for p in catalogue() {
        let mut images = Vec::new();
        for variant in 0..2 {
            images.push(
                api.upload(admin_token, product_image(p.seed, variant))
                    .await?,
            );
        }
        let item = api
            .expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/items",
                Some(admin_token),
                Some(&json!({"name": p.name, "description": p.description,
                             "price_minor": p.price_minor, "category_id": leaf_ids[p.category.1],
                             "stock": p.stock, "image_ids": images})),
            )
            .await?;
        seeded.items += 1;
        if p.stock >= 3 {
            in_stock.push(item["id"].as_str().unwrap_or_default().to_owned());
        }
    }

    reviewers(&api, &in_stock, &mut seeded).await?;

    // The demo shopper: an address, a full wallet and one earlier order to look at.
    let token = api
        .shopper(DEMO_SHOPPER.0, DEMO_SHOPPER.1, "Demo Shopper")
        .await?;
    let address = api.address(&token, "Demo Shopper").await?;
    api.fund(&token, DEMO_BALANCE).await?;
    if api.buy(&token, &address, &in_stock[..1]).await?.is_some() {
        seeded.orders += 1;
    }
    api.fund(&token, DEMO_BALANCE).await?;
    Ok(seeded)
}

/// Four reviewers buy three products each and review them (each one review with a photo).
async fn reviewers(api: &Api, in_stock: &[String], seeded: &mut Seeded) -> anyhow::Result<()> {
    for r in 0..4u64 {
        let email = format!("reviewer{}@kommerce.test", r + 1);
        let token = api
            .shopper(&email, DEMO_SHOPPER.1, &format!("Reviewer {}", r + 1))
            .await?;
        let address = api.address(&token, &format!("Reviewer {}", r + 1)).await?;
        api.fund(&token, 300_000).await?;
        let picks: Vec<String> = (0..3)
            .map(|k| in_stock[usize::try_from(r * 5 + k * 3).unwrap_or(0) % in_stock.len()].clone())
            .collect();
        if api.buy(&token, &address, &picks).await?.is_none() {
            continue;
        }
        seeded.orders += 1;
        for (k, item) in picks.iter().enumerate() {
            let (rating, title, body) =
                OPINIONS[(usize::try_from(r).unwrap_or(0) + k) % OPINIONS.len()];
            let photos = if k == 0 {
                vec![api.upload(&token, product_image(1_000 + r, 2)).await?]
            } else {
                Vec::new()
            };
            api.expect(
                StatusCode::CREATED,
                Method::POST,
                "/api/v1/reviews",
                Some(&token),
                Some(&json!({"item_id": item, "rating": rating, "title": title,
                             "body": body, "image_ids": photos})),
            )
            .await?;
            seeded.reviews += 1;
        }
    }
    Ok(())
}

/// The id of the category `name` under `parent`, made when missing.
async fn category(
    api: &Api,
    token: &str,
    name: &str,
    parent: Option<&str>,
    seeded: &mut Seeded,
) -> anyhow::Result<String> {
    let (status, v) = api
        .call(
            Method::POST,
            "/api/v1/categories",
            Some(token),
            Some(&json!({"name": name, "parent_id": parent})),
            &[],
        )
        .await?;
    if status == StatusCode::CREATED {
        seeded.categories += 1;
        return Ok(v["id"].as_str().unwrap_or_default().to_owned());
    }
    if status != StatusCode::CONFLICT {
        bail!("creating category {name}: {status} {v}");
    }
    let tree = api
        .expect(
            StatusCode::OK,
            Method::GET,
            "/api/v1/categories",
            None,
            None,
        )
        .await?;
    let siblings = match parent {
        None => tree.as_array().cloned().unwrap_or_default(),
        Some(p) => tree
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["id"] == p)
            .and_then(|n| n["children"].as_array().cloned())
            .unwrap_or_default(),
    };
    siblings
        .iter()
        .find(|n| {
            n["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|n| n["id"].as_str().map(str::to_owned))
        .with_context(|| format!("category {name} exists but was not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_big_varied_and_the_same_every_time() {
        let c = catalogue();
        assert!(c.len() >= 50, "{}", c.len());
        assert_eq!(c, catalogue());
        let names: std::collections::HashSet<_> = c.iter().map(|p| &p.name).collect();
        assert_eq!(names.len(), c.len(), "names are unique");
        assert!(c.iter().all(|p| (3_000..=120_000).contains(&p.price_minor)));
        assert!(c.iter().all(|p| p.price_minor % 100 == 0));
        let sold_out = c.iter().filter(|p| p.stock == 0).count();
        assert!((3..=10).contains(&sold_out), "{sold_out} sold out");
        assert!(c.iter().filter(|p| p.stock >= 3).count() >= 50);
        let leaves: std::collections::HashSet<_> = c.iter().map(|p| p.category).collect();
        assert_eq!(leaves.len(), 9, "every leaf category has products");
        assert_eq!(c.len(), 90);
    }

    #[test]
    fn product_images_are_pngs_that_differ_by_product_and_variant() {
        let a = product_image(1, 0);
        let decoded = image::load_from_memory_with_format(&a, image::ImageFormat::Png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (480, 480));
        assert!(a.len() < 200_000, "{} bytes", a.len());
        assert_ne!(a, product_image(2, 0));
        assert_ne!(a, product_image(1, 1));
    }
}
