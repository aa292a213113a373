//! The Helm chart (`charts/kommerce`): linted strictly, rendered for in-cluster and for
//! external infrastructure, every object validated by the control plane with unknown fields
//! refused, the house rules checked on what it renders, and installed for real until every
//! ShopService is Ready, upgraded, and uninstalled without a trace.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kommerce_crds::{ShopService, StockPool};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::support::{self, eventually, helm};

const WAIT: Duration = Duration::from_secs(120);

fn chart() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/kommerce")
}

fn app_version() -> String {
    let text = std::fs::read_to_string(chart().join("Chart.yaml")).unwrap();
    let doc: Value = serde_yaml::from_str(&text).unwrap();
    doc["appVersion"].as_str().unwrap().to_owned()
}

/// `--set` flags pointing the chart at external infrastructure (the host's, here).
fn external(namespace: &str) -> Vec<String> {
    [
        "infrastructure.enabled=false",
        "external.databaseUrlsSecret=shop-databases",
        "external.redisUrl=redis://127.0.0.1:6379",
        "external.kafkaBootstrapServers=127.0.0.1:9092",
        &format!("sagaTopics.namespace={namespace}"),
    ]
    .iter()
    .flat_map(|s| ["--set".to_owned(), (*s).to_owned()])
    .collect()
}

fn run(what: &str, out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template` with `flags`, as objects.
fn render(namespace: &str, flags: &[String]) -> (String, Vec<Value>) {
    let chart = chart();
    let mut args = vec![
        "template",
        "kommerce",
        chart.to_str().unwrap(),
        "-n",
        namespace,
    ];
    args.extend(flags.iter().map(String::as_str));
    let text = run("helm template", &helm(&args));
    let docs = objects(&text);
    (text, docs)
}

/// The objects of a multi-document YAML text.
fn objects(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|d| Value::deserialize(d).ok())
        .filter(Value::is_object)
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// What every workload of the chart must have: resources, probes, the restricted profile.
fn assert_house_rules(docs: &[Value]) {
    let workloads: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
        .collect();
    assert!(!workloads.is_empty());
    for w in workloads {
        let name = &w["metadata"]["name"];
        let pod = &w["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{name}"
        );
        for c in pod["containers"].as_array().unwrap() {
            assert!(c["resources"]["requests"].is_object(), "{name}: requests");
            assert!(
                c["resources"]["limits"]["memory"].is_string(),
                "{name}: limit"
            );
            assert!(c["readinessProbe"].is_object(), "{name}: readiness");
            assert!(c["livenessProbe"].is_object(), "{name}: liveness");
            assert_eq!(
                c["securityContext"]["allowPrivilegeEscalation"], false,
                "{name}"
            );
            assert_eq!(
                c["securityContext"]["capabilities"]["drop"],
                json!(["ALL"]),
                "{name}"
            );
        }
    }
}

/// The ShopServices agree with the one topology table: prefixes, peers, who uses Kafka.
fn assert_topology(docs: &[Value], tag: &str) {
    let shops = of_kind(docs, "ShopService");
    assert_eq!(
        shops.len(),
        kommerce_kit::topology::COMPONENTS.len() + 1,
        "the six services and the storefront"
    );
    // The storefront: every path the APIs do not own, its own image, no secrets, no peers.
    let web = shops
        .iter()
        .find(|s| s["metadata"]["name"] == "web")
        .expect("a ShopService web");
    assert_eq!(web["spec"]["image"], format!("kommerce/web:{tag}"));
    assert_eq!(web["spec"]["ingress"]["pathPrefixes"], json!(["/"]));
    assert!(
        web["spec"]["secrets"].is_null() && web["spec"]["config"].is_null(),
        "{web}"
    );
    for c in kommerce_kit::topology::COMPONENTS {
        let ss = shops
            .iter()
            .find(|s| s["metadata"]["name"] == c.name)
            .unwrap_or_else(|| panic!("no ShopService {}", c.name));
        let spec = &ss["spec"];
        assert_eq!(spec["image"], format!("kommerce/{}:{tag}", c.name));
        assert_eq!(
            spec["ingress"]["pathPrefixes"],
            json!(c.prefixes),
            "{}",
            c.name
        );
        let peers: Vec<String> = spec["config"]["peers"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let mut calls: Vec<String> = c.calls.iter().map(|&s| s.to_owned()).collect();
        calls.sort();
        assert_eq!(peers, calls, "{}", c.name);
        assert_eq!(
            spec["config"]["kafka"].is_object(),
            c.uses_kafka,
            "{}",
            c.name
        );
    }
}

#[tokio::test]
async fn the_chart_lints_renders_objects_the_cluster_accepts_and_keeps_the_house_rules() {
    let client = support::client().await;
    let chart = chart();
    let chart_path = chart.to_str().unwrap();
    let tag = app_version();
    for flags in [vec![], external("lint")] {
        let mut args = vec!["lint", "--strict", chart_path];
        args.extend(flags.iter().map(String::as_str));
        run("helm lint", &helm(&args));
    }
    // A value the schema refuses, named.
    let out = helm(&[
        "lint",
        "--strict",
        chart_path,
        "--set",
        "stockPool.strategy=fast",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("/stockPool/strategy"));

    for (variant, flags) in [("in-cluster", vec![]), ("external", external("ext"))] {
        let ns = support::namespace(&client, "chart").await;
        let (text, docs) = render(&ns, &flags);
        let file = std::env::temp_dir().join(support::unique("chart-render"));
        std::fs::write(&file, &text).unwrap();
        run(
            &format!("{variant}: kubectl apply --dry-run=server --validate=strict"),
            &support::kubectl(&[
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "-n",
                &ns,
                "-f",
                file.to_str().unwrap(),
            ]),
        );
        let _ = std::fs::remove_file(&file);
        assert_house_rules(&docs);
        assert_topology(&docs, &tag);
        let operator = of_kind(&docs, "Deployment")
            .into_iter()
            .find(|d| d["metadata"]["name"] == "kommerce-operator")
            .unwrap();
        assert_eq!(
            operator["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("kommerce/operator:{tag}")
        );
        let engines = of_kind(&docs, "StatefulSet").len();
        if variant == "external" {
            assert_eq!(engines, 0, "no in-cluster engines");
            let user = of_kind(&docs, "ShopService")
                .into_iter()
                .find(|s| s["metadata"]["name"] == "user")
                .unwrap();
            assert_eq!(
                user["spec"]["secrets"]["databaseUrl"]["name"],
                "shop-databases"
            );
        } else {
            assert_eq!(engines, 2, "PostgreSQL and Kafka");
        }
    }
    // One tag for every image of a release.
    let (_, docs) = render("tags", &["--set".into(), "image.tag=9.9.9".into()]);
    assert_topology(&docs, "9.9.9");
    // The chart's CRDs are the generated ones (crds/tests/generated_yaml.rs compares the files).
    let crds = std::fs::read_dir(chart.join("crds")).unwrap().count();
    assert_eq!(crds, kommerce_crds::all().len());
}

/// Each ShopService's config hash and its Deployment's generation, by name.
async fn states(
    shops: &Api<ShopService>,
    deployments: &Api<Deployment>,
) -> BTreeMap<String, (Option<String>, Option<i64>)> {
    let mut out = BTreeMap::new();
    for ss in shops.list(&ListParams::default()).await.unwrap().items {
        let name = ss.metadata.name.clone().unwrap();
        let generation = deployments
            .get(&name)
            .await
            .ok()
            .and_then(|d| d.metadata.generation);
        out.insert(name, (ss.status.and_then(|s| s.config_hash), generation));
    }
    out
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one release's life, step by step
async fn helm_installs_the_shop_until_ready_upgrades_one_component_and_uninstalls_clean() {
    let client = support::client().await;
    let ns = support::namespace(&client, "release").await;
    let _operator = support::start_operator(&client, support::settings(&ns)).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut databases = Secret::default();
    databases.metadata.name = Some("shop-databases".into());
    databases.string_data = Some(
        kommerce_kit::topology::COMPONENTS
            .iter()
            .map(|c| {
                (
                    c.name.to_owned(),
                    format!("postgres://postgres@127.0.0.1:5432/kommerce_{}", c.name),
                )
            })
            .collect(),
    );
    secrets
        .create(&PostParams::default(), &databases)
        .await
        .unwrap();
    // The release is named after the namespace: its ClusterRole is cluster-wide.
    let release = ns.clone();
    let chart = chart();
    let helm_blocking = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            helm(&args)
        })
        .await
        .unwrap()
    };
    let mut install: Vec<String> = ["install", &release, chart.to_str().unwrap(), "-n", &ns]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    install.extend(external(&ns));
    install.extend(["--wait", "--timeout", "120s"].map(str::to_owned));
    // `--wait` waits for the custom resources too, the StockPool until every item instance
    // has acknowledged its policy. The simulated nodes run no item service, so this task does
    // what one would: it acknowledges the hash the pool publishes.
    let pools: Api<StockPool> = Api::namespaced(client.clone(), &ns);
    let acknowledging = tokio::spawn(async move {
        let mut redis = redis::Client::open(support::REDIS)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        loop {
            let status = pools
                .get_opt("default")
                .await
                .ok()
                .flatten()
                .and_then(|p| p.status);
            if let Some((key, hash)) = status.and_then(|s| Some((s.key?, s.hash?))) {
                let _: Result<(), _> = redis::cmd("SET")
                    .arg(format!("{key}:ack:item-chart-test"))
                    .arg(&hash)
                    .arg("EX")
                    .arg(60)
                    .query_async(&mut redis)
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    run("helm install", &helm_blocking(install).await);

    let shops: Api<ShopService> = Api::namespaced(client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let n = kommerce_kit::topology::COMPONENTS.len() + 1; // and the storefront
    support::all_shop_services_ready(&shops, n, WAIT).await;
    run(
        "kubectl wait",
        &support::kubectl(&[
            "wait",
            "-n",
            &ns,
            "--for=condition=Ready",
            "shopsvc",
            "--all",
            "--timeout=60s",
        ]),
    );
    // The operator made every component's credential and published the keys.
    let keys: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let published = keys
        .get("kommerce-service-keys")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(published.len(), n);

    // An upgrade that changes one component's config changes that component only.
    let before = states(&shops, &deployments).await;
    let upgrade: Vec<String> = [
        "upgrade",
        &release,
        chart.to_str().unwrap(),
        "-n",
        &ns,
        "--reuse-values",
        "--set",
        "shop.components.pay.config.card.latency_ms=7",
        "--wait",
        "--timeout",
        "120s",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    run("helm upgrade", &helm_blocking(upgrade).await);
    eventually("pay's new config applied", WAIT, || async {
        let ss = shops.get("pay").await.ok()?;
        (ss.status?.config_hash != before["pay"].0).then_some(())
    })
    .await;
    support::all_shop_services_ready(&shops, n, WAIT).await;
    let after = states(&shops, &deployments).await;
    for (name, state) in &before {
        if name != "pay" {
            assert_eq!(&after[name], state, "{name} was left alone");
        }
    }
    let pay_config: ConfigMap = Api::namespaced(client.clone(), &ns)
        .get("pay")
        .await
        .unwrap();
    assert!(pay_config.data.unwrap()["config.toml"].contains("latency_ms = 7"));

    // Uninstalled: nothing of the release is left but the CRDs (as Helm does).
    let uninstall: Vec<String> = ["uninstall", &release, "-n", &ns, "--wait"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    run("helm uninstall", &helm_blocking(uninstall).await);
    acknowledging.abort();
    eventually("the release's objects gone", WAIT, || async {
        let shops_left = shops.list(&ListParams::default()).await.ok()?.items.len();
        let deployments_left = deployments
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .len();
        let credentials = secrets
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .iter()
            .filter(|s| {
                s.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n != "shop-databases")
            })
            .count();
        let keys_left = keys.get_opt("kommerce-service-keys").await.ok()?.is_some();
        (shops_left == 0 && deployments_left == 0 && credentials == 0 && !keys_left).then_some(())
    })
    .await;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(
        roles
            .get_opt(&format!("{release}-operator"))
            .await
            .unwrap()
            .is_none()
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(
        crds.get_opt("shopservices.kommerce.dev")
            .await
            .unwrap()
            .is_some()
    );
}

/// An object's identity and the parts a comparison looks at: Helm's own labels dropped, a
/// Secret by its keys only (its values are generated on each side).
fn comparable(mut doc: Value) -> ((String, String), Value) {
    whole_numbers(&mut doc);
    // Helm's own labels; for a Secret also the ones the overlay's generator and the chart
    // each put on it, and its values (generated on each side).
    let mut dropped = vec!["helm.sh/chart", "app.kubernetes.io/managed-by"];
    if doc["kind"] == "Secret" {
        dropped.extend(["app.kubernetes.io/instance", "app.kubernetes.io/part-of"]);
        let keys: Vec<String> = doc["data"]
            .as_object()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        doc["data"] = json!(keys);
    }
    if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut)
    {
        for label in dropped {
            labels.remove(label);
        }
        if labels.is_empty() {
            meta.remove("labels");
        }
    }
    let key = (
        doc["kind"].as_str().unwrap_or_default().to_owned(),
        doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    (key, doc)
}

/// `10000.0` and `10000` are one number (kustomize writes floats that are whole as integers).
fn whole_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && n.is_f64()) {
                #[allow(clippy::cast_possible_truncation)]
                let whole = f as i64;
                *v = json!(whole);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

#[test]
fn the_kustomize_overlay_for_kind_gives_the_charts_objects() {
    // A copy of what the overlay reads, with the Secrets' files it takes (made by
    // scripts/kind-secrets.sh in a checkout).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = std::env::temp_dir().join(support::unique("kustomize"));
    for dir in ["manifests/base", "manifests/overlays/kind", "crds"] {
        std::fs::create_dir_all(work.join(dir)).unwrap();
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&path, work.join(dir).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    let secrets = work.join("manifests/overlays/kind/secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("signing-keys.pem"), "a key").unwrap();
    std::fs::write(secrets.join("postgres.env"), "password=p\n").unwrap();
    let urls = kommerce_kit::topology::COMPONENTS
        .iter()
        .fold(String::new(), |mut out, c| {
            use std::fmt::Write as _;
            let _ = writeln!(out, "{}=postgres://db/{}", c.name, c.name);
            out
        });
    std::fs::write(secrets.join("database-urls.env"), urls).unwrap();
    let overlay = work.join("manifests/overlays/kind");
    let text = run(
        "kubectl kustomize",
        &support::kubectl(&["kustomize", overlay.to_str().unwrap()]),
    );
    let _ = std::fs::remove_dir_all(&work);
    let kustomized: BTreeMap<_, _> = objects(&text)
        .into_iter()
        // The chart's namespace is Helm's (--create-namespace).
        .filter(|d| d["kind"] != "Namespace")
        .map(comparable)
        .collect();
    let (_, rendered) = render("kommerce", &["--include-crds".to_owned()]);
    let charted: BTreeMap<_, _> = rendered.into_iter().map(comparable).collect();
    assert_eq!(
        kustomized.keys().collect::<Vec<_>>(),
        charted.keys().collect::<Vec<_>>(),
        "the same objects (run scripts/manifests.sh after a chart change)"
    );
    for (key, doc) in &charted {
        assert_eq!(
            &kustomized[key], doc,
            "{key:?} differs: run scripts/manifests.sh after a chart change"
        );
    }
}

#[test]
fn the_kind_config_has_an_ingress_node_and_kind_up_names_every_missing_tool() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("kind-config.yaml")).unwrap();
    let config: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(config["kind"], "Cluster");
    let nodes = config["nodes"].as_array().unwrap();
    let roles: Vec<&str> = nodes.iter().filter_map(|n| n["role"].as_str()).collect();
    assert_eq!(roles, ["control-plane", "worker", "worker"]);
    let ports: Vec<i64> = nodes[0]["extraPortMappings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["hostPort"].as_i64())
        .collect();
    assert_eq!(ports, [80, 443]);
    assert!(
        nodes[0]["kubeadmConfigPatches"][0]
            .as_str()
            .unwrap()
            .contains("node-labels: \"ingress-ready=true\"")
    );
    // With none of its tools on the PATH, kind-up says which are missing and stops.
    let empty = std::env::temp_dir().join(support::unique("no-tools"));
    std::fs::create_dir_all(&empty).unwrap();
    let bash = which("bash");
    let out = std::process::Command::new(&bash)
        .arg(root.join("scripts/kind.sh"))
        .arg("up")
        .env("PATH", &empty)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    for tool in ["kind", "docker or podman", "kubectl", "helm"] {
        assert!(said.contains(&format!("missing: {tool}")), "{said}");
    }
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap()
}
