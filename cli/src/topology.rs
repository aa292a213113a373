//! The services `kommerce up` runs: the kit's topology table (which service owns which URL
//! prefix, its port; the Ingress rules mirror it) plus what this command needs to run each.

use kommerce_kit::topology::{self, Component};

/// A service `kommerce up` runs: where it lives (the kit's [`topology`] table, which the
/// services' default peers read too) and what this command needs to run it.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Name, prefixes, port offset, callees.
    pub component: &'static Component,
    /// The binary, built into the same target directory as `kommerce`.
    pub binary: &'static str,
    /// Its migrations (the kit's messaging tables first where it sends or receives events),
    /// run by `kommerce migrate` and `kommerce up`.
    pub migrations: &'static [&'static sqlx::migrate::Migrator],
    /// The largest request body it accepts with the settings `kommerce up` gives it (the
    /// defaults): the local router refuses a larger one itself, as the service would.
    pub body_limit_bytes: fn() -> usize,
}

/// `spec.name`, `spec.prefixes`, ...: a spec reads as its component.
impl std::ops::Deref for ServiceSpec {
    type Target = Component;
    fn deref(&self) -> &Component {
        self.component
    }
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

/// Every service, in the order of [`topology::COMPONENTS`].
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        component: &topology::USER,
        binary: "kommerce-user",
        migrations: kommerce_user::MIGRATIONS,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        component: &topology::ITEM,
        binary: "kommerce-item",
        migrations: kommerce_item::MIGRATIONS,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        component: &topology::ORDER,
        binary: "kommerce-order",
        migrations: kommerce_order::MIGRATIONS,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        component: &topology::PAY,
        binary: "kommerce-pay",
        migrations: kommerce_pay::MIGRATIONS,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        component: &topology::REVIEW,
        binary: "kommerce-review",
        migrations: kommerce_review::MIGRATIONS,
        body_limit_bytes: kit_body_limit,
    },
    ServiceSpec {
        component: &topology::IMAGE,
        binary: "kommerce-image",
        migrations: kommerce_image::MIGRATIONS,
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
    fn every_component_is_run_once() {
        let run: Vec<_> = SERVICES.iter().map(|s| *s.component).collect();
        assert_eq!(run, topology::COMPONENTS);
    }
}
