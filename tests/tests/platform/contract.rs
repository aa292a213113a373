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

use crate::platform::Live;

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
        let out = tokio::process::Command::new(&st)
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args(["--url", &base])
            .args(&filter)
            .args(["--header", &format!("Authorization: Bearer {token}")])
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
