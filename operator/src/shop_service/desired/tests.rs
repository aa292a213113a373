use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
use kommerce_crds::{Autoscaling, IngressSpec, SecretKeyRef, ShopServiceSecrets, ShopServiceSpec};
use serde_json::json;

use super::*;

fn shop(replicas: i32) -> ShopService {
    let mut ss = ShopService::new(
        "item",
        ShopServiceSpec {
            component: Component::Item,
            image: "kommerce/item:1".into(),
            replicas,
            port: 8080,
            resources: None,
            config: BTreeMap::from([
                ("telemetry".into(), json!({"log_filter": "info"})),
                ("cache".into(), json!({"ttl_secs": 60})),
            ]),
            env: vec![],
            secrets: Some(ShopServiceSecrets {
                database_url: Some(SecretKeyRef {
                    name: "db".into(),
                    key: "url".into(),
                }),
                jwt_private_key: None,
                jwt_public_key: None,
            }),
            ingress: None,
            autoscaling: None,
        },
    );
    ss.metadata.namespace = Some("shop".into());
    ss.metadata.uid = Some("uid-1".into());
    ss
}

#[test]
fn the_config_renders_as_sections_and_its_hash_follows_the_content() {
    let ss = shop(1);
    let v = validate(&ss).expect("valid");
    assert_eq!(
        v.config_toml,
        "[cache]\nttl_secs = 60\n\n[telemetry]\nlog_filter = \"info\"\n"
    );
    assert_eq!(v.config_hash.len(), 16);
    let mut changed = ss.clone();
    changed
        .spec
        .config
        .insert("cache".into(), json!({"ttl_secs": 61}));
    assert_ne!(
        validate(&changed).expect("valid").config_hash,
        v.config_hash
    );
    assert_eq!(
        validate(&ss.clone()).expect("valid").config_hash,
        v.config_hash,
        "stable"
    );
}

#[test]
fn a_live_key_changes_the_config_hash_but_not_the_restart_hash() {
    let ss = shop(1);
    let v = validate(&ss).expect("valid");
    let mut live = ss.clone();
    live.spec
        .config
        .insert("cache".into(), json!({"ttl_secs": 5}));
    let lv = validate(&live).expect("valid");
    assert_ne!(lv.config_hash, v.config_hash);
    assert_eq!(
        lv.restart_hash, v.restart_hash,
        "cache.ttl_secs is live for item"
    );
    let mut rolled = ss.clone();
    rolled
        .spec
        .config
        .insert("database".into(), json!({"max_connections": 20}));
    let rv = validate(&rolled).expect("valid");
    assert_ne!(rv.restart_hash, v.restart_hash);

    let status = |c: &Validated, last: Option<&str>| kommerce_crds::ShopServiceStatus {
        config_hash: Some(c.config_hash.clone()),
        restart_hash: Some(c.restart_hash.clone()),
        last_config_change: last.map(str::to_owned),
        ..kommerce_crds::ShopServiceStatus::default()
    };
    assert_eq!(
        config_change(&kommerce_crds::ShopServiceStatus::default(), &v),
        None,
        "the first config"
    );
    assert_eq!(
        config_change(&status(&v, None), &lv).as_deref(),
        Some("live")
    );
    assert_eq!(
        config_change(&status(&v, None), &rv).as_deref(),
        Some("rolled")
    );
    assert_eq!(
        config_change(&status(&lv, Some("live")), &lv).as_deref(),
        Some("live"),
        "no change keeps what was said"
    );
    // The log filter is live for every service.
    let mut filter = ss.clone();
    filter
        .spec
        .config
        .insert("telemetry".into(), json!({"log_filter": "debug"}));
    assert_eq!(
        validate(&filter).expect("valid").restart_hash,
        v.restart_hash
    );
}

#[test]
fn a_key_the_service_does_not_know_is_refused_naming_it() {
    let mut ss = shop(1);
    ss.spec
        .config
        .insert("cache".into(), json!({"ttl_sec": 60}));
    assert!(
        matches!(validate(&ss), Err(Invalid::Config { key, .. }) if key == "cache.ttl_sec"),
        "{:?}",
        validate(&ss)
    );
    let mut ss = shop(1);
    ss.spec
        .config
        .insert("cache".into(), json!({"ttl_secs": "a minute"}));
    assert!(matches!(validate(&ss), Err(Invalid::Config { key, .. }) if key == "cache.ttl_secs"));
    // A key of another service's settings is unknown here.
    let mut ss = shop(1);
    ss.spec
        .config
        .insert("card".into(), json!({"failure_rate": 0.1}));
    assert!(matches!(validate(&ss), Err(Invalid::Config { key, .. }) if key.starts_with("card")));
}

#[test]
fn every_sample_validates_and_routes_like_the_local_router() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/samples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("samples") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("shopservice-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let ss: ShopService = serde_yaml::from_str(&text).expect("a ShopService");
        validate(&ss).unwrap_or_else(|e| panic!("{name}: {e}"));
        let component = component_name(ss.spec.component);
        let prefixes = ss
            .spec
            .ingress
            .as_ref()
            .expect("ingress")
            .path_prefixes
            .clone();
        match kommerce_kit::topology::COMPONENTS
            .iter()
            .find(|c| c.name == component)
        {
            Some(c) => assert_eq!(prefixes, c.prefixes, "{name}"),
            None => assert_eq!(component, "web"),
        }
        seen.push(component);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["image", "item", "order", "pay", "review", "user", "web"]
    );
}

#[test]
fn a_config_that_is_not_sections_or_holds_null_is_refused_naming_the_key() {
    let mut ss = shop(1);
    ss.spec.config.insert("ttl".into(), json!(5));
    assert_eq!(
        validate(&ss),
        Err(Invalid::Config {
            key: "ttl".into(),
            message: "must be a section (an object of keys)".into()
        })
    );
    let mut ss = shop(1);
    ss.spec
        .config
        .insert("card".into(), json!({"failure_rate": null}));
    assert!(
        matches!(validate(&ss), Err(Invalid::Config { key, .. }) if key == "card.failure_rate")
    );
}

#[test]
fn the_deployment_is_restricted_probed_owned_and_carries_the_config_hash() {
    let ss = shop(1);
    let v = validate(&ss).expect("valid");
    let d = deployment(&ss, &v, "cHVibGlj", Duration::from_secs(600));
    let owner = &d.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("ShopService", Some(true))
    );
    let spec = d.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(1));
    let template = &spec.template;
    assert_eq!(
        template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .expect("annotations")[RESTART_HASH_ANNOTATION],
        v.restart_hash
    );
    let pod = template.spec.as_ref().expect("pod");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.termination_grace_period_seconds, Some(GRACE_SECONDS));
    assert!(pod.topology_spread_constraints.is_none(), "one replica");
    let c = &pod.containers[0];
    let sc = c.security_context.as_ref().expect("restricted");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(
        pod.security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
            .map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|g| g.path.clone())
    };
    assert_eq!(path(&c.readiness_probe).as_deref(), Some("/readyz"));
    assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"));
    assert!(c.startup_probe.is_some());
    let env = c.env.as_ref().expect("env");
    assert!(
        env.iter().any(|e| e.name == "KOMMERCE_CONFIG"
            && e.value.as_deref() == Some("/etc/kommerce/config.toml"))
    );
    assert!(env.iter().any(|e| {
        e.name == "KOMMERCE_KAFKA__INSTANCE_ID"
            && e.value_from
                .as_ref()
                .and_then(|f| f.field_ref.as_ref())
                .map(|f| f.field_path.as_str())
                == Some("metadata.name")
    }));
    assert!(env.iter().any(|e| {
        e.name == "KOMMERCE_DATABASE__URL"
            && e.value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
                .map(|s| s.name.as_str())
                == Some("db")
    }));
    let mounts: Vec<_> = c
        .volume_mounts
        .as_ref()
        .expect("mounts")
        .iter()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["/etc/kommerce", "/etc/kommerce-service-keys", "/tmp"]
    );
    assert_eq!(
        d.metadata.labels.as_ref().expect("labels")["app.kubernetes.io/name"],
        "item"
    );
}

#[test]
fn the_deployment_carries_its_credential_and_its_callers_keys() {
    let ss = shop(1);
    let v = validate(&ss).expect("valid");
    let d = deployment(&ss, &v, "cHVibGlj", Duration::from_secs(600));
    let pod = d.spec.as_ref().expect("spec").template.clone();
    let c = &pod.spec.as_ref().expect("pod").containers[0];
    let env = c.env.as_ref().expect("env");
    // Its credential from its own Secret, its callers' keys from the namespace's ConfigMap,
    // and a new key rolls the pods.
    assert!(env.iter().any(|e| {
        e.name == "KOMMERCE_AUTH__SERVICE_KEY"
            && e.value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
                .map(|s| (s.name.as_str(), s.key.as_str()))
                == Some(("item-credential", "private"))
    }));
    assert!(
        env.iter()
            .any(|e| e.name == "KOMMERCE_AUTH__SERVICE_KEYS_DIR"
                && e.value.as_deref() == Some("/etc/kommerce-service-keys"))
    );
    let keys = pod
        .spec
        .as_ref()
        .and_then(|p| p.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == "service-keys"))
        .and_then(|v| v.config_map.clone())
        .expect("the service keys volume");
    assert_eq!(
        (keys.name.as_str(), keys.optional),
        ("kommerce-service-keys", Some(true))
    );
    assert_eq!(
        pod.metadata
            .expect("meta")
            .annotations
            .expect("annotations")["kommerce.dev/credential"],
        "cHVibGlj"
    );
}

#[test]
fn optional_children_follow_the_spec() {
    let mut ss = shop(1);
    assert_eq!(
        wanted(&ss),
        Wanted {
            ingress: false,
            hpa: false,
            pdb: false
        }
    );
    ss.spec.replicas = 3;
    ss.spec.ingress = Some(IngressSpec {
        host: "shop.test".into(),
        path_prefixes: vec!["/api/v1/items".into(), "/api/v1/categories".into()],
    });
    assert_eq!(
        wanted(&ss),
        Wanted {
            ingress: true,
            hpa: false,
            pdb: true
        }
    );
    let i = ingress(&ss, Some("nginx")).expect("an ingress");
    let spec = i.spec.expect("spec");
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let rules = spec.rules.expect("rules");
    let paths = &rules[0].http.as_ref().expect("http").paths;
    assert_eq!(paths.len(), 2);
    assert_eq!(paths[0].path_type, "Prefix");
    assert_eq!(url(&ss).as_deref(), Some("http://shop.test/api/v1/items"));
    let v = validate(&ss).expect("valid");
    assert!(
        deployment(&ss, &v, "cHVibGlj", Duration::from_secs(600))
            .spec
            .and_then(|s| s.template.spec)
            .and_then(|p| p.topology_spread_constraints)
            .is_some(),
        "spread when replicas ≥ 2"
    );

    ss.spec.autoscaling = Some(Autoscaling {
        min_replicas: 1,
        max_replicas: 5,
        target_cpu_utilization_percentage: 70,
    });
    assert_eq!(
        wanted(&ss),
        Wanted {
            ingress: true,
            hpa: true,
            pdb: false
        },
        "the PDB follows the HPA's minimum"
    );
    let v = validate(&ss).expect("valid");
    assert_eq!(
        deployment(&ss, &v, "cHVibGlj", Duration::from_secs(600))
            .spec
            .and_then(|s| s.replicas),
        None,
        "the HPA owns the count"
    );
    assert_eq!(hpa(&ss).map(|h| h.spec.max_replicas), Some(5));
}

#[test]
fn the_network_policy_admits_the_ingress_controller_and_kommerce_pods_only() {
    let np = network_policy(&shop(1), "ingress-nginx");
    let spec = np.spec.expect("spec");
    assert_eq!(spec.policy_types, Some(vec!["Ingress".to_owned()]));
    let from = spec.ingress.expect("rules")[0].from.clone().expect("peers");
    assert_eq!(from.len(), 2);
    assert_eq!(
        from[0]
            .namespace_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .expect("ns")["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    assert_eq!(
        from[1]
            .pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .expect("pods")["app.kubernetes.io/part-of"],
        "kommerce"
    );
}

fn rolled(
    generation: i64,
    observed: i64,
    (replicas, updated, available): (i32, i32, i32),
    progressing: (&str, &str),
) -> Deployment {
    let mut d = deployment(
        &shop(replicas),
        &validate(&shop(replicas)).expect("valid"),
        "cHVibGlj",
        Duration::from_secs(600),
    );
    d.metadata.generation = Some(generation);
    d.status = Some(DeploymentStatus {
        observed_generation: Some(observed),
        replicas: Some(replicas.max(updated)),
        updated_replicas: Some(updated),
        available_replicas: Some(available),
        ready_replicas: Some(available),
        conditions: Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: progressing.0.into(),
            reason: Some(progressing.1.into()),
            message: Some(format!("deployment {}", progressing.1)),
            ..DeploymentCondition::default()
        }]),
        ..DeploymentStatus::default()
    });
    d
}

fn status_of<'a>(o: &'a Observed, type_: &str) -> (bool, &'a str) {
    let c = o
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .expect("condition");
    (c.status, c.reason)
}

#[test]
fn conditions_are_read_off_the_deployment() {
    let none = observe(None);
    assert_eq!(status_of(&none, READY), (false, reasons::ROLLING_OUT));
    assert!(!none.settled);

    let done = observe(Some(&rolled(
        2,
        2,
        (2, 2, 2),
        ("True", "NewReplicaSetAvailable"),
    )));
    assert_eq!(status_of(&done, READY), (true, reasons::AVAILABLE));
    assert_eq!(status_of(&done, PROGRESSING), (false, reasons::AVAILABLE));
    assert_eq!(
        (done.replicas, done.ready_replicas, done.settled),
        (Some(2), Some(2), true)
    );

    let stale = observe(Some(&rolled(
        3,
        2,
        (2, 2, 2),
        ("True", "NewReplicaSetAvailable"),
    )));
    assert_eq!(
        status_of(&stale, READY),
        (false, reasons::ROLLING_OUT),
        "a template the Deployment controller has not seen yet is not ready"
    );

    let rolling = observe(Some(&rolled(
        3,
        3,
        (2, 1, 2),
        ("True", "ReplicaSetUpdated"),
    )));
    assert_eq!(
        status_of(&rolling, PROGRESSING),
        (true, reasons::ROLLING_OUT)
    );
    assert!(!status_of(&rolling, READY).0);

    let failed = observe(Some(&rolled(
        3,
        3,
        (2, 1, 1),
        ("False", "ProgressDeadlineExceeded"),
    )));
    assert_eq!(
        status_of(&failed, DEGRADED),
        (true, reasons::DEPLOYMENT_FAILED)
    );
    let message = &failed
        .conditions
        .iter()
        .find(|c| c.type_ == DEGRADED)
        .expect("degraded")
        .message;
    assert!(message.starts_with("ProgressDeadlineExceeded"), "{message}");
}

#[test]
fn paused_is_an_annotation() {
    let mut ss = shop(1);
    assert!(!is_paused(&ss));
    ss.metadata.annotations = Some(BTreeMap::from([(PAUSED_ANNOTATION.into(), "true".into())]));
    assert!(is_paused(&ss));
    assert_eq!(
        conditions_paused()[0].type_,
        kommerce_crds::conditions::RECONCILIATION_PAUSED
    );
}
