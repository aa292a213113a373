//! Which service owns which URL prefix — the one table the local router uses, and that the
//! Ingress rules mirror (docs/adr/0001-workspace-layout.md, ARCHITECTURE "HTTP conventions").

/// A service `kommerce up` runs.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Short name: log tag, database suffix (`kommerce_<name>`).
    pub name: &'static str,
    /// The binary, built into the same target directory as `kommerce`.
    pub binary: &'static str,
    /// Public `/api/v1` prefixes it owns. `/internal/...` is never routed.
    pub prefixes: &'static [&'static str],
    /// Its port is the base port plus this offset.
    pub port_offset: u16,
    /// Whether it signs access tokens (gets the private key).
    pub signs_tokens: bool,
    /// Its migrations (the kit's messaging tables first where it sends or receives events),
    /// run by `kommerce migrate` and `kommerce up`.
    pub migrations: &'static [&'static sqlx::migrate::Migrator],
    /// The services whose internal APIs it calls (it gets their URLs as `[peers]`).
    pub calls: &'static [&'static str],
    /// Whether it talks to Kafka (gets the broker address and the platform's Kafka namespace).
    pub uses_kafka: bool,
    /// The largest request body it accepts with the settings `kommerce up` gives it (the
    /// defaults): the local router refuses a larger one itself, as the service would.
    pub body_limit_bytes: fn() -> usize,
}

/// The kit's body limit, which every service but image keeps.
fn kit_body_limit() -> usize {
    kommerce_kit::HttpSettings::default().body_limit_bytes
}

/// The image service's, raised for uploads.
fn image_body_limit() -> usize {
    let settings = kommerce_image::Settings::default();
    kommerce_image::body_limit(&settings.http, settings.images.max_bytes)
}

/// Every service. A new service adds its line here.
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "user",
        binary: "kommerce-user",
        prefixes: &["/api/v1/users", "/api/v1/auth"],
        port_offset: 1,
        signs_tokens: true,
        migrations: kommerce_user::MIGRATIONS,
        calls: &[],
        uses_kafka: false,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        name: "item",
        binary: "kommerce-item",
        prefixes: &["/api/v1/items", "/api/v1/categories"],
        port_offset: 2,
        signs_tokens: false,
        migrations: kommerce_item::MIGRATIONS,
        calls: &["image"],
        uses_kafka: true,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        name: "order",
        binary: "kommerce-order",
        prefixes: &["/api/v1/cart", "/api/v1/orders"],
        port_offset: 3,
        signs_tokens: false,
        migrations: kommerce_order::MIGRATIONS,
        calls: &["item", "pay"],
        uses_kafka: true,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        name: "pay",
        binary: "kommerce-pay",
        prefixes: &["/api/v1/payments", "/api/v1/wallet"],
        port_offset: 4,
        signs_tokens: false,
        migrations: kommerce_pay::MIGRATIONS,
        calls: &["user", "item", "order"],
        uses_kafka: true,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        name: "review",
        binary: "kommerce-review",
        prefixes: &["/api/v1/reviews"],
        port_offset: 5,
        signs_tokens: false,
        migrations: kommerce_review::MIGRATIONS,
        calls: &["order", "image"],
        uses_kafka: true,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        name: "image",
        binary: "kommerce-image",
        prefixes: &["/api/v1/images"],
        port_offset: 6,
        signs_tokens: false,
        migrations: kommerce_image::MIGRATIONS,
        calls: &[],
        uses_kafka: false,
        body_limit_bytes: image_body_limit,
    },
];

/// Whether `path` is `prefix` itself or below it (`/api/v1/users/me`, not `/api/v1/usersx`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The service that owns `path`, as the Ingress would route it.
pub fn route<'a>(services: &'a [ServiceSpec], path: &str) -> Option<&'a ServiceSpec> {
    services
        .iter()
        .find(|s| s.prefixes.iter().any(|p| under(path, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_prefix_like_the_ingress() {
        let name = |p: &str| route(SERVICES, p).map(|s| s.name);
        assert_eq!(name("/api/v1/users"), Some("user"));
        assert_eq!(name("/api/v1/users/me/addresses/1/default"), Some("user"));
        assert_eq!(name("/api/v1/auth/login"), Some("user"));
        assert_eq!(name("/api/v1/usersx"), None);
        assert_eq!(name("/api/v1/reviews/summary"), Some("review"));
        assert_eq!(name("/api/v1/images/1"), Some("image"));
        assert_eq!(name("/internal/v1/images/1/attach"), None);
        assert_eq!(
            name("/internal/v1/users/1/addresses/2"),
            None,
            "internal is never routed"
        );
        assert_eq!(name("/healthz"), None);
        assert_eq!(name("/api/v1/items/123"), Some("item"));
        assert_eq!(name("/api/v1/categories"), Some("item"));
        assert_eq!(name("/internal/v1/stock/reservations"), None);
        assert_eq!(name("/api/v1/cart/items/1"), Some("order"));
        assert_eq!(name("/api/v1/orders/1/cancel"), Some("order"));
        assert_eq!(name("/api/v1/payments"), Some("pay"));
        assert_eq!(name("/api/v1/wallet/top-up"), Some("pay"));
        assert_eq!(name("/internal/v1/saga/1"), None);
    }

    #[test]
    fn body_limits_are_the_services_own() {
        let limit = |name: &str| {
            let s = SERVICES.iter().find(|s| s.name == name).unwrap();
            (s.body_limit_bytes)()
        };
        assert_eq!(limit("user"), 64 * 1024);
        assert_eq!(limit("pay"), 64 * 1024);
        assert!(limit("image") > 5 * 1024 * 1024, "room for a 5 MB upload");
        assert!(
            limit("image") < 12 * 1024 * 1024,
            "a 12 MB upload is too large"
        );
    }

    #[test]
    fn prefixes_and_ports_are_unique() {
        let mut prefixes: Vec<_> = SERVICES.iter().flat_map(|s| s.prefixes.iter()).collect();
        let n = prefixes.len();
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), n);
        let mut ports: Vec<_> = SERVICES.iter().map(|s| s.port_offset).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), SERVICES.len());
        assert!(
            SERVICES.iter().all(|s| s.port_offset > 0),
            "offset 0 is the router's port"
        );
    }
}
