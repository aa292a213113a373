//! The API contract: the committed documents under `docs/openapi/` are what the code says
//! (regenerate with `kommerce openapi --out docs/openapi`), and the documents hold together as
//! one platform: unique operation ids, one meaning per schema name, problem+json errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

fn committed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi")
}

fn json(doc: &utoipa::openapi::OpenApi) -> Value {
    serde_json::to_value(doc).expect("a document serializes")
}

/// `(service, method, path, operation)` of every operation of every service.
fn operations() -> Vec<(&'static str, String, String, Value)> {
    let mut out = Vec::new();
    for (service, doc) in kommerce::openapi::documents() {
        let doc = json(&doc);
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                out.push((service, method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[test]
fn the_committed_documents_are_what_the_code_says() {
    let dir = committed_dir();
    let mut stale = Vec::new();
    let mut expected = BTreeSet::new();
    for (name, body) in kommerce::openapi::files() {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        if committed != body {
            stale.push(name.clone());
        }
        expected.insert(name);
    }
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let extra: Vec<&String> = present.difference(&expected).collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "docs/openapi/ differs from the code: stale {stale:?}, not generated {extra:?}; run \
         `cargo run -p kommerce -- openapi --out docs/openapi` and commit"
    );
}

#[test]
fn operation_ids_are_unique_across_the_platform() {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (service, method, path, op) in operations() {
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(
            !id.is_empty(),
            "{service} {method} {path} has no operationId"
        );
        let here = format!("{service} {method} {path}");
        if let Some(first) = seen.insert(id.clone(), here.clone()) {
            // The kit's saga timeline is the same operation in every service that serves it.
            assert!(
                id == "saga_timeline",
                "operationId {id} is used by {first} and by {here}"
            );
        }
    }
}

#[test]
fn a_schema_name_means_one_schema_across_the_services() {
    let mut seen: BTreeMap<String, (&str, Value)> = BTreeMap::new();
    for (service, doc) in kommerce::openapi::documents() {
        let doc = json(&doc);
        for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
            if let Some((first, earlier)) = seen.get(name) {
                assert_eq!(
                    earlier, schema,
                    "schema {name} means one thing in {first} and another in {service}"
                );
            } else {
                seen.insert(name.clone(), (service, schema.clone()));
            }
        }
    }
}

#[test]
fn every_operation_has_a_success_and_problem_errors() {
    for (service, method, path, op) in operations() {
        let responses = op["responses"].as_object().expect("responses");
        let here = format!("{service} {method} {path}");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{here} documents no success"
        );
        for status in ["400", "422", "500", "503"] {
            assert!(responses.contains_key(status), "{here} lacks {status}");
        }
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{here} {status} is not problem+json"
                );
            }
        }
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert!(
            !secured || responses.contains_key("401"),
            "{here}: a secured operation documents its 401"
        );
        assert!(
            !op["summary"].as_str().unwrap_or_default().is_empty(),
            "{here} has no summary"
        );
    }
}

#[test]
fn the_public_document_has_every_public_route_and_no_internal_one() {
    let public = json(&kommerce::openapi::public_document());
    let paths: BTreeSet<&str> = public["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<String> = operations()
        .into_iter()
        .map(|(_, _, path, _)| path)
        .filter(|p| p.starts_with("/api/"))
        .collect();
    assert_eq!(
        paths,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(paths.iter().all(|p| p.starts_with("/api/v1/")));
    let tags: Vec<&str> = public["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let services: Vec<&str> = kommerce::openapi::documents()
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(tags, services);
    assert_eq!(public["openapi"], "3.1.0");
}

#[test]
fn every_internal_route_names_its_callers_and_no_public_one_takes_a_service_credential() {
    let services: BTreeSet<&str> = kommerce::openapi::documents()
        .iter()
        .map(|(s, _)| *s)
        .chain([kommerce_kit::credential::COMMAND])
        .collect();
    for (service, method, path, op) in operations() {
        let here = format!("{service} {method} {path}");
        let callers: Vec<&str> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r[kommerce_kit::credential::SCHEME].as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if path.starts_with("/internal/") {
            assert!(!callers.is_empty(), "{here} names no caller");
            for c in &callers {
                assert!(services.contains(c), "{here}: {c} is no service");
                assert_ne!(*c, service, "{here}: a service does not call itself");
            }
            assert!(
                op["responses"]["403"].is_object(),
                "{here} documents its 403"
            );
        } else {
            assert!(callers.is_empty(), "{here} is public");
        }
    }
}
