//! The service serves its OpenAPI document, and the document names every route.

use kommerce_kit::testing::assert_serves_document;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_document_is_served_and_names_every_route() {
    let app = TestApp::spawn().await;
    assert_serves_document(
        app.get("/openapi.json", None).await,
        &kommerce_pay::openapi(),
        &[
            ("GET", "/api/v1/wallet"),
            ("POST", "/api/v1/wallet/top-up"),
            ("GET", "/api/v1/payments"),
            ("POST", "/api/v1/payments"),
            ("GET", "/api/v1/payments/{id}"),
            ("GET", "/internal/v1/saga/{id}"),
        ],
    )
    .await;
}
