//! Which configuration keys each service applies while it runs (the operator rolls the
//! Deployment only when another key changes; the service watches its mounted file and applies
//! these). One table for both sides.

/// Live in every service: the log filter.
const COMMON: &[&str] = &["telemetry.log_filter"];
const USER: &[&str] = &[
    "telemetry.log_filter",
    "throttle.login_failures_per_account",
    "throttle.login_failures_per_address",
    "throttle.signups_per_address",
    "throttle.window_secs",
];
const ITEM: &[&str] = &["telemetry.log_filter", "cache.ttl_secs"];
const PAY: &[&str] = &[
    "telemetry.log_filter",
    "card.failure_rate",
    "card.latency_ms",
];

/// The keys (`section.key`) `component` applies without a restart.
pub fn live_keys(component: &str) -> &'static [&'static str] {
    match component {
        "user" => USER,
        "item" => ITEM,
        "pay" => PAY,
        _ => COMMON,
    }
}

/// Whether `key` (`section.key`, or a section) is live for `component`.
pub fn is_live(component: &str, key: &str) -> bool {
    live_keys(component).contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_changes_its_log_filter_live_and_some_more() {
        for c in ["user", "item", "order", "pay", "review", "image", "web"] {
            assert!(is_live(c, "telemetry.log_filter"), "{c}");
        }
        assert!(is_live("item", "cache.ttl_secs"));
        assert!(!is_live("order", "cache.ttl_secs"));
        assert!(is_live("pay", "card.failure_rate"));
        assert!(is_live("user", "throttle.login_failures_per_account"));
        assert!(!is_live("pay", "database.url"), "a pool is built once");
    }
}
