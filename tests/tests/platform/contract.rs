//! The API contract against the running platform: schemathesis (installed into a project
//! venv by `scripts/schemathesis.sh`) fuzzes every operation of every service — its public
//! and its internal routes — from the document the service itself serves at `/openapi.json`,
//! with positive and negative data and a bounded number of examples per operation, a real
//! shopper's (or, for the catalogue, an admin's) token supplied. Required: no 5xx, every
//! status documented, every body and content type as documented.
//!
//! `KOMMERCE_FUZZ_EXAMPLES` (default 25) bounds the examples per operation and phase;
//! `KOMMERCE_FUZZ_SEED` (default 1) makes a run repeatable — the seed is printed.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::json;

use crate::live::Live;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `st` command, installed (once) by the project's script.
async fn schemathesis() -> PathBuf {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/schemathesis.sh");
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "scripts/schemathesis.sh failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_every_service_holds_to_its_document_under_fuzzing() {
    let st = schemathesis().await;
    let mut live = Live::start().await;
    // Something to find: an item on sale, a shopper with a wallet and that item in the cart.
    let item = live.item(100).await;
    let (shopper, _line) = live.shoppers(1, item).await.remove(0);
    let seed = env_or("KOMMERCE_FUZZ_SEED", 1);
    let examples = env_or("KOMMERCE_FUZZ_EXAMPLES", 25);
    println!("schemathesis: seed {seed}, {examples} examples per operation and phase");
    let report_dir = std::env::temp_dir().join(format!("kommerce-fuzz-{}", uuid::Uuid::new_v4()));
    let mut failed = Vec::new();
    let keys = kommerce::supervisor::service_keys(&live.opts.state_dir).unwrap();
    let ports = live.platform().ports();
    let port = |name: &str| ports.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
    // Logging out revokes the token every other run uses: it runs last, on its own.
    let mut runs: Vec<(&str, u16, Vec<&str>)> = ports
        .iter()
        .map(|(name, port)| {
            let filter = if *name == "user" {
                vec!["--exclude-operation-id", "log_out"]
            } else {
                vec![]
            };
            (*name, *port, filter)
        })
        .collect();
    runs.push((
        "user (log_out)",
        port("user").unwrap(),
        vec!["--include-operation-id", "log_out"],
    ));
    for (service, port, filter) in runs {
        // The catalogue's writes are an admin's; everything else is a shopper's.
        let token = if service == "item" {
            live.admin.clone()
        } else {
            shopper.token.clone()
        };
        let base = format!("http://127.0.0.1:{port}");
        // Internal routes are fuzzed as their most frequent caller calls them (routes that
        // name other callers answer it 403, as documented).
        let caller = match service {
            "item" | "pay" => "order",
            "order" | "user" | "user (log_out)" => "pay",
            _ => "item",
        };
        let audience = service.split(' ').next().unwrap_or(service);
        let credential = kommerce_kit::credential::credential(
            &keys[caller].0,
            caller,
            audience,
            std::time::Duration::from_secs(600),
        )
        .unwrap();
        let out = tokio::process::Command::new(&st)
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args(["--url", &base])
            .args(&filter)
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--header",
                &format!("{}: {credential}", kommerce_kit::credential::HEADER),
            ])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance",
            ])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--mode", "all"])
            .args(["--max-examples", &examples.to_string()])
            .args(["--seed", &seed.to_string()])
            .args(["--workers", "2"])
            .args(["--request-timeout", "30"])
            .arg("--no-color")
            .args(["--report", "junit"])
            .arg("--report-dir")
            .arg(report_dir.join(service.replace(' ', "_")))
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("passed") || l.contains("failed") || l.contains("error"))
            .collect();
        println!("{service}: {}", summary.last().unwrap_or(&""));
        if !out.status.success() {
            failed.push(json!({
                "service": service,
                "output": text.lines().rev().take(200).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"),
                "stderr": String::from_utf8_lossy(&out.stderr),
            }));
        }
    }
    live.stop().await;
    let _ = std::fs::remove_dir_all(&report_dir);
    assert!(
        failed.is_empty(),
        "schemathesis found defects (seed {seed}):\n{}",
        failed
            .iter()
            .map(|f| format!(
                "== {}\n{}\n{}",
                f["service"],
                f["output"].as_str().unwrap_or(""),
                f["stderr"].as_str().unwrap_or("")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every internal route of every service, as `kommerce up` provisions the keys: refused
/// without a credential (401), with a credential of a service the route does not name (403),
/// with an expired one or one addressed to another service (401); served to a caller it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_internal_route_answers_only_the_services_it_names() {
    use kommerce_kit::credential::{COMMAND, HEADER, ServiceClaims, sign_with};
    use reqwest::{Method, StatusCode};

    let live = Live::start().await;
    let keys = kommerce::supervisor::service_keys(&live.opts.state_dir).unwrap();
    let ports = live.platform.as_ref().unwrap().ports();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let names: Vec<&str> = ports.iter().map(|(n, _)| *n).chain([COMMAND]).collect();
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (service, doc) in kommerce::openapi::documents() {
        let port = ports.iter().find(|(n, _)| *n == service).unwrap().1;
        let doc = serde_json::to_value(&doc).unwrap();
        for (template, item) in doc["paths"].as_object().unwrap() {
            if !template.starts_with("/internal/") {
                continue;
            }
            let path: String = template
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        uuid::Uuid::new_v4().to_string()
                    } else {
                        seg.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for (method, op) in item.as_object().unwrap() {
                let callers: Vec<&str> = op["security"][0]["service"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{service} {method} {template} names no callers"))
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                assert!(!callers.is_empty(), "{service} {method} {template}");
                let caller = callers[0];
                let stranger = names
                    .iter()
                    .find(|n| !callers.contains(n))
                    .copied()
                    .unwrap();
                let token = |who: &str, aud: &str, exp: u64| {
                    sign_with(
                        &keys[who].0,
                        &ServiceClaims {
                            iss: who.into(),
                            aud: aud.into(),
                            iat: now.saturating_sub(7200),
                            exp,
                        },
                    )
                    .unwrap()
                };
                let other = if service == "user" { "item" } else { "user" };
                let cases = [
                    ("no credential", None, StatusCode::UNAUTHORIZED),
                    (
                        "another service's",
                        Some(token(stranger, service, now + 60)),
                        StatusCode::FORBIDDEN,
                    ),
                    (
                        "an expired one",
                        Some(token(caller, service, now - 600)),
                        StatusCode::UNAUTHORIZED,
                    ),
                    (
                        "one for another service",
                        Some(token(caller, other, now + 60)),
                        StatusCode::UNAUTHORIZED,
                    ),
                ];
                let url = format!("http://127.0.0.1:{port}{path}");
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                for (what, credential, expected) in cases {
                    let mut r = http.request(method.clone(), &url);
                    if let Some(c) = credential {
                        r = r.header(HEADER, c);
                    }
                    let r = r.send().await.unwrap();
                    let status = r.status();
                    let body: serde_json::Value = r.json().await.unwrap();
                    assert_eq!(
                        status, expected,
                        "{service} {method} {template}, {what}: {body}"
                    );
                    assert!(
                        kommerce_kit::credential::refused(status.as_u16(), &body),
                        "{service} {method} {template}, {what}: {body}"
                    );
                }
                // The caller it names, with the key `kommerce up` gave it, gets past the guard.
                let r = http
                    .request(method.clone(), &url)
                    .header(HEADER, token(caller, service, now + 60))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                assert!(
                    !kommerce_kit::credential::refused(status.as_u16(), &body),
                    "{service} {method} {template} refused {caller}: {status} {body}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 13, "every internal operation of the platform");
    live.stop().await;
}
