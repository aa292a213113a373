//! The image service's settings: the kit's sections plus `[storage]` and `[images]`.

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
    pub storage: StorageSettings,
    pub images: ImageSettings,
}

/// Where the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A directory on the local filesystem (`storage.path`); the default.
    #[default]
    Local,
    /// An S3-compatible bucket (`[storage.s3]`), for clusters.
    S3,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: Backend,
    /// The directory of the local backend (created when missing).
    pub path: String,
    pub s3: S3Settings,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            path: "/var/lib/kommerce/images".into(),
            s3: S3Settings::default(),
        }
    }
}

/// `[storage.s3]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// For S3-compatible stores (MinIO, Ceph): their URL; empty for AWS itself.
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Plain-HTTP endpoints (a MinIO inside the cluster).
    pub allow_http: bool,
}

/// `[images]`: what an upload may be and how long unattached images live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageSettings {
    /// Largest accepted file; larger is 413.
    pub max_bytes: usize,
    /// Largest accepted width × height, read from the header before decoding (bombs).
    pub max_pixels: u64,
    /// Longest side of the thumbnail variant.
    pub thumb_side: u32,
    pub jpeg_quality: u8,
    /// Unattached images older than this are deleted by the sweeper.
    pub unattached_max_age_secs: u64,
    pub sweep_interval_secs: u64,
}

impl Default for ImageSettings {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024 * 1024,
            max_pixels: 40_000_000,
            thumb_side: 320,
            jpeg_quality: 85,
            unattached_max_age_secs: 24 * 3600,
            sweep_interval_secs: 600,
        }
    }
}

impl ImageSettings {
    /// How old an unattached image may get before the sweeper deletes it.
    pub fn unattached_max_age(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.unattached_max_age_secs)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn local_storage_by_default_and_s3_by_configuration() {
        let defaults = Settings::default();
        assert_eq!(defaults.storage.backend, Backend::Local);
        assert_eq!(defaults.images.max_bytes, 5 * 1024 * 1024);
        assert_eq!(defaults.images.thumb_side, 320);

        let path = std::env::temp_dir().join(format!("image-config-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[storage]\nbackend = \"s3\"\n[storage.s3]\nbucket = \"shop\"\nendpoint = \"http://minio:9000\"\nallow_http = true\n[images]\nmax_bytes = 1024\n",
        )
        .unwrap();
        let s: Settings = kommerce_kit::config::load_from(&path).unwrap();
        assert_eq!(s.storage.backend, Backend::S3);
        assert_eq!(s.storage.s3.bucket, "shop");
        assert!(s.storage.s3.allow_http);
        assert_eq!(s.images.max_bytes, 1024);
        assert_eq!(s.images.max_pixels, ImageSettings::default().max_pixels);

        std::fs::write(&path, "[storage]\nbackend = \"ftp\"\n").unwrap();
        assert!(kommerce_kit::config::load_from::<Settings>(&path).is_err());
        std::fs::write(&path, "[images]\nmax_byte = 1\n").unwrap();
        assert!(
            kommerce_kit::config::load_from::<Settings>(&path).is_err(),
            "typos are refused"
        );
        let _ = std::fs::remove_file(&path);
    }
}
