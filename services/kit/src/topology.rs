//! Where each Kommerce service lives: its URL prefixes (the local router and the Ingress route
//! by them), its port next to the local router, whom it calls. The one table that the local
//! router, `kommerce up` and the services' default `[peers]` URLs read.

/// One service of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    /// Short name: log tag, database suffix (`kommerce_<name>`), `[peers]` key.
    pub name: &'static str,
    /// Public `/api/v1` prefixes it owns. `/internal/...` is never routed.
    pub prefixes: &'static [&'static str],
    /// Its port is the router's port plus this offset (`kommerce up`, the default peers).
    pub port_offset: u16,
    /// Whether it signs access tokens (gets the private key).
    pub signs_tokens: bool,
    /// The services whose internal APIs it calls (it gets their URLs as `[peers]`).
    pub calls: &'static [&'static str],
    /// Whether it talks to Kafka.
    pub uses_kafka: bool,
}

/// The local router's port (`kommerce up`); each service sits at an offset from it.
pub const ROUTER_PORT: u16 = 8080;

pub const USER: Component = Component {
    name: "user",
    prefixes: &["/api/v1/users", "/api/v1/auth"],
    port_offset: 1,
    signs_tokens: true,
    calls: &[],
    uses_kafka: false,
};

pub const ITEM: Component = Component {
    name: "item",
    prefixes: &["/api/v1/items", "/api/v1/categories"],
    port_offset: 2,
    signs_tokens: false,
    calls: &["image"],
    uses_kafka: true,
};

pub const ORDER: Component = Component {
    name: "order",
    prefixes: &["/api/v1/cart", "/api/v1/orders"],
    port_offset: 3,
    signs_tokens: false,
    calls: &["item", "pay"],
    uses_kafka: true,
};

pub const PAY: Component = Component {
    name: "pay",
    prefixes: &["/api/v1/payments", "/api/v1/wallet"],
    port_offset: 4,
    signs_tokens: false,
    calls: &["user", "item", "order"],
    uses_kafka: true,
};

pub const REVIEW: Component = Component {
    name: "review",
    prefixes: &["/api/v1/reviews"],
    port_offset: 5,
    signs_tokens: false,
    calls: &["order", "image"],
    uses_kafka: true,
};

pub const IMAGE: Component = Component {
    name: "image",
    prefixes: &["/api/v1/images"],
    port_offset: 6,
    signs_tokens: false,
    calls: &[],
    uses_kafka: false,
};

/// Every service. A new service adds its line here.
pub const COMPONENTS: &[Component] = &[USER, ITEM, ORDER, PAY, REVIEW, IMAGE];

impl Component {
    /// Its URL on this machine when the router listens on [`ROUTER_PORT`] (the default peers).
    pub fn local_url(&self) -> String {
        format!("http://127.0.0.1:{}", ROUTER_PORT + self.port_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_ports_and_callees_are_consistent() {
        let mut prefixes: Vec<_> = COMPONENTS.iter().flat_map(|c| c.prefixes).collect();
        let n = prefixes.len();
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), n, "a prefix has one owner");
        let mut ports: Vec<_> = COMPONENTS.iter().map(|c| c.port_offset).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), COMPONENTS.len());
        assert!(
            COMPONENTS.iter().all(|c| c.port_offset > 0),
            "offset 0 is the router's port"
        );
        for c in COMPONENTS {
            for callee in c.calls {
                assert!(
                    COMPONENTS
                        .iter()
                        .any(|o| o.name == *callee && o.name != c.name),
                    "{} calls an unknown service {callee}",
                    c.name
                );
            }
        }
        assert_eq!(ITEM.local_url(), "http://127.0.0.1:8082");
    }
}
