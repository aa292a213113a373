//! `kommerce openapi`: every service's OpenAPI document and the merged public one, as
//! committed under `docs/openapi/` (a test fails when they differ from the code) and as the
//! local router serves them (`/api/openapi.json`).

use std::path::Path;

use kommerce_kit::openapi::{public, to_json};
use utoipa::openapi::OpenApi;

/// The file of the merged public document.
pub const PUBLIC: &str = "kommerce.json";

/// Each service's own document (public and internal routes), by service name.
pub fn documents() -> Vec<(&'static str, OpenApi)> {
    vec![
        ("user", kommerce_user::openapi()),
        ("item", kommerce_item::openapi()),
        ("order", kommerce_order::openapi()),
        ("pay", kommerce_pay::openapi()),
        ("review", kommerce_review::openapi()),
        ("image", kommerce_image::openapi()),
    ]
}

/// The public document: every service's `/api/` routes.
pub fn public_document() -> OpenApi {
    let docs: Vec<OpenApi> = documents().into_iter().map(|(_, d)| d).collect();
    public(&docs)
}

/// `(file name, contents)` of everything `kommerce openapi` writes.
pub fn files() -> Vec<(String, String)> {
    let (names, docs): (Vec<&str>, Vec<OpenApi>) = documents().into_iter().unzip();
    let mut out: Vec<(String, String)> = names
        .iter()
        .zip(&docs)
        .map(|(name, doc)| (format!("{name}.json"), to_json(doc)))
        .collect();
    out.push((PUBLIC.to_owned(), to_json(&public(&docs))));
    out
}

/// Writes [`files`] into `dir`, creating it, and names each file written.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, body) in files() {
        let path = dir.join(&name);
        std::fs::write(&path, body)?;
        println!("{}", path.display());
    }
    Ok(())
}
