//! The service serves its OpenAPI document, and the document names every route.

use kommerce_kit::testing::assert_serves_document;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_document_is_served_and_names_every_route() {
    let app = TestApp::spawn().await;
    assert_serves_document(
        app.get("/openapi.json", None).await,
        &kommerce_order::openapi(),
        &[
            ("GET", "/api/v1/cart"),
            ("POST", "/api/v1/cart/items"),
            ("PATCH", "/api/v1/cart/items/{item_id}"),
            ("DELETE", "/api/v1/cart/items/{item_id}"),
            ("GET", "/api/v1/orders"),
            ("GET", "/api/v1/orders/{id}"),
            ("POST", "/api/v1/orders/{id}/cancel"),
            ("POST", "/api/v1/orders/{id}/ship"),
            ("GET", "/api/v1/orders/{id}/timeline"),
            ("GET", "/internal/v1/carts/{user_id}"),
            ("GET", "/internal/v1/purchases"),
            ("GET", "/internal/v1/saga/{id}"),
        ],
    )
    .await;
}
