//! Service credentials (ADR 0021). Every ShopService gets an Ed25519 key pair: the private key
//! in the Secret `<name>-credential` — made once, owned by the ShopService, never rewritten
//! (deleting it rotates the key) — and the public key in the namespace's
//! `kommerce-service-keys` ConfigMap under the component's name. Each ShopService applies only
//! its own entry, with a field manager of its own, so entries of different ShopServices never
//! overwrite each other; every service mounts the ConfigMap as its callers' keys and reads it
//! again when it changes (`auth.service_keys_dir`), so a new component's key needs no restart.
//! Helm cannot derive a public key; the operator can.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kommerce_crds::ShopService;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource as _, ResourceExt as _};

use super::desired::{component_name, labels};
use super::{Context, Error, child_api};
use crate::MANAGER;

/// The namespace's ConfigMap of every component's public key.
pub const KEYS_CONFIG_MAP: &str = "kommerce-service-keys";
/// Where the services mount it.
pub const KEYS_DIR: &str = "/etc/kommerce-service-keys";
/// The Secret's key holding the private key (PKCS#8, base64url).
pub const PRIVATE_KEY: &str = "private";

pub fn secret_name(ss: &ShopService) -> String {
    format!("{}-credential", ss.name_any())
}

/// The Secret holding a fresh private key.
pub fn secret(ss: &ShopService, private: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(ss)),
            namespace: ss.namespace(),
            labels: Some(labels(ss)),
            owner_references: ss.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            PRIVATE_KEY.to_owned(),
            ByteString(private.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// This ShopService's entry of the keys ConfigMap: its public key under its component's name,
/// and it among the owners (the ConfigMap goes when the last ShopService does).
pub fn keys_entry(ss: &ShopService, public: &str) -> ConfigMap {
    let mut owner = ss.controller_owner_ref(&());
    if let Some(o) = owner.as_mut() {
        // Many owners, none the controller.
        o.controller = None;
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(KEYS_CONFIG_MAP.into()),
            namespace: ss.namespace(),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/part-of".to_owned(),
                super::desired::PART_OF.to_owned(),
            )])),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            component_name(ss.spec.component).to_owned(),
            public.to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

/// The public key of the Secret's private key; `None` when it holds none that reads.
pub fn public_of(secret: &Secret) -> Option<String> {
    let private = secret.data.as_ref()?.get(PRIVATE_KEY)?;
    kommerce_kit::auth::ed25519_public_key(std::str::from_utf8(&private.0).ok()?)
}

/// Makes sure the ShopService has its key pair and its public key is published; returns the
/// public key.
pub async fn ensure(ctx: &Context, ss: &ShopService) -> Result<String, Error> {
    let secrets: Api<Secret> = child_api(ctx, ss);
    let name = secret_name(ss);
    let existing = secrets
        .get_opt(&name)
        .await
        .map_err(|source| Error::Apply {
            kind: "credential Secret",
            source,
        })?;
    let public = if let Some(s) = existing {
        public_of(&s).ok_or(Error::Credential(name))?
    } else {
        let (private, public) =
            kommerce_kit::auth::generate_key_pair().map_err(|_| Error::Credential(name.clone()))?;
        match secrets
            .create(&PostParams::default(), &secret(ss, &private))
            .await
        {
            Ok(_) => public,
            // Made meanwhile (a previous reconcile whose answer was lost): use that one.
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let made = secrets.get(&name).await.map_err(|source| Error::Apply {
                    kind: "credential Secret",
                    source,
                })?;
                public_of(&made).ok_or(Error::Credential(name))?
            }
            Err(source) => {
                return Err(Error::Apply {
                    kind: "credential Secret",
                    source,
                });
            }
        }
    };
    let manager = format!("{MANAGER}.{}", component_name(ss.spec.component));
    child_api::<ConfigMap>(ctx, ss)
        .patch(
            KEYS_CONFIG_MAP,
            &PatchParams::apply(&manager).force(),
            &Patch::Apply(&keys_entry(ss, &public)),
        )
        .await
        .map_err(|source| Error::Apply {
            kind: "service keys ConfigMap",
            source,
        })?;
    Ok(public)
}
