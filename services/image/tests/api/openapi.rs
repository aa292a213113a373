//! The service serves its OpenAPI document, and the document names every route.

use kommerce_kit::testing::assert_serves_document;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_document_is_served_and_names_every_route() {
    let app = TestApp::spawn().await;
    assert_serves_document(
        app.get("/openapi.json").await,
        &kommerce_image::openapi(),
        &[
            ("POST", "/api/v1/images"),
            ("GET", "/api/v1/images/{id}"),
            ("PUT", "/api/v1/images/{id}"),
            ("DELETE", "/api/v1/images/{id}"),
            ("DELETE", "/internal/v1/images"),
            ("DELETE", "/internal/v1/images/{id}"),
            ("POST", "/internal/v1/images/{id}/attach"),
            ("POST", "/internal/v1/images/{id}/detach"),
        ],
    )
    .await;
}
