//! The service serves its OpenAPI document, and the document names every route.

use kommerce_kit::testing::assert_serves_document;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_document_is_served_and_names_every_route() {
    let app = TestApp::spawn().await;
    assert_serves_document(
        app.get("/openapi.json").await,
        &kommerce_item::openapi(),
        &[
            ("GET", "/api/v1/categories"),
            ("POST", "/api/v1/categories"),
            ("PATCH", "/api/v1/categories/{id}"),
            ("DELETE", "/api/v1/categories/{id}"),
            ("GET", "/api/v1/items"),
            ("POST", "/api/v1/items"),
            ("GET", "/api/v1/items/{id}"),
            ("PATCH", "/api/v1/items/{id}"),
            ("DELETE", "/api/v1/items/{id}"),
            ("POST", "/api/v1/items/{id}/stock"),
            ("GET", "/api/v1/items/{id}/stock/ledger"),
            ("GET", "/internal/v1/items"),
            ("POST", "/internal/v1/stock/reservations"),
            ("DELETE", "/internal/v1/stock/reservations/{id}"),
            ("GET", "/internal/v1/stock/policy"),
        ],
    )
    .await;
}
