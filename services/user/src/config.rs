//! The user service's settings: the kit's sections plus `[user]`.

use kommerce_kit::{
    AuthSettings, DatabaseSettings, HttpSettings, RedisSettings, Secret, TelemetrySettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub user: UserSettings,
    pub throttle: ThrottleSettings,
}

/// `[throttle]`: attempts allowed per window (0 turns a limit off). Live: a change applies
/// without a restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
    pub signups_per_address: u32,
    pub window_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            login_failures_per_account: 5,
            login_failures_per_address: 50,
            signups_per_address: 20,
            window_secs: 900,
        }
    }
}

/// `[user]`: the admin account created (or promoted) at start-up when both email and password
/// are set — `KOMMERCE_USER__BOOTSTRAP_ADMIN_EMAIL`, `KOMMERCE_USER__BOOTSTRAP_ADMIN_PASSWORD`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserSettings {
    pub bootstrap_admin_email: Option<String>,
    pub bootstrap_admin_password: Option<Secret>,
    pub bootstrap_admin_name: String,
    pub bootstrap_admin_phone: String,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            bootstrap_admin_email: None,
            bootstrap_admin_password: None,
            bootstrap_admin_name: "Administrator".into(),
            bootstrap_admin_phone: "+10000000000".into(),
        }
    }
}
