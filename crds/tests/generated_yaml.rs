//! The CRD YAML committed in `crds/` is what the Rust types generate. When this fails, run
//! `cargo run -p kommerce-operator -- crdgen` and commit the result.

use std::path::Path;

#[test]
fn committed_crd_yaml_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for crd in kommerce_crds::all() {
        let file = dir.join(kommerce_crds::file_name(&crd));
        let generated = kommerce_crds::to_yaml(&crd).expect("CRD serialises to YAML");
        // The same file in crds/ and in the Helm chart's crds/.
        let in_chart = dir
            .join("../charts/kommerce/crds")
            .join(kommerce_crds::file_name(&crd));
        for file in [file, in_chart] {
            let committed = std::fs::read_to_string(&file).unwrap_or_default();
            if committed != generated {
                stale.push(file.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale CRD YAML: {stale:?}; run `cargo run -p kommerce-operator -- crdgen` and commit"
    );
}

#[test]
fn every_kind_has_a_short_name_printer_columns_and_a_status_subresource() {
    for crd in kommerce_crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert!(name.ends_with(".kommerce.dev"), "{name}");
        assert_eq!(crd.spec.scope, "Namespaced", "{name}");
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{name}"
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}"
        );
        let columns = version
            .additional_printer_columns
            .as_ref()
            .expect("printer columns");
        assert!(
            columns.iter().any(|c| c.name == "Ready"),
            "{name} has a Ready column"
        );
    }
}
