//! `kommerce-operator crdgen`: the CRD YAML committed in `crds/` (and the same files in the Helm
//! chart's `charts/kommerce/crds/`), generated from the Rust types (`kommerce_crds::all`), and
//! the operator's ClusterRole (`manifests/operator/`, and its rules for the chart, from
//! [`crate::rbac`]). `crds/tests/generated_yaml.rs`, the rbac tests and the chart test fail when
//! the committed files are stale.

use std::io::Write as _;

use anyhow::Context as _;

use crate::cli::CrdgenArgs;

pub fn write(args: &CrdgenArgs) -> anyhow::Result<()> {
    let crds = kommerce_crds::all();
    if args.stdout {
        let mut out = std::io::stdout().lock();
        for crd in &crds {
            writeln!(out, "---\n{}", kommerce_crds::to_yaml(crd)?)?;
        }
        return Ok(());
    }
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let chart = args.out_dir.join("../charts/kommerce");
    std::fs::create_dir_all(chart.join("crds"))
        .with_context(|| format!("cannot create {}", chart.display()))?;
    for crd in &crds {
        for dir in [args.out_dir.clone(), chart.join("crds")] {
            let path = dir.join(kommerce_crds::file_name(crd));
            std::fs::write(&path, kommerce_crds::to_yaml(crd)?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    // The chart's ClusterRole takes its rules from here.
    std::fs::create_dir_all(chart.join("files"))?;
    let rules = chart.join("files/operator-rules.yaml");
    std::fs::write(&rules, crate::rbac::rules_yaml()?)
        .with_context(|| format!("cannot write {}", rules.display()))?;
    println!("wrote {}", rules.display());
    // The operator's ClusterRole, next to the other operator manifests.
    let role = args.out_dir.join("../manifests/operator/cluster-role.yaml");
    if let Some(dir) = role.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&role, crate::rbac::to_yaml()?)
        .with_context(|| format!("cannot write {}", role.display()))?;
    println!("wrote {}", role.display());
    Ok(())
}
