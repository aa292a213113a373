//! The service serves its OpenAPI document, and the document names every route.

use kommerce_kit::testing::assert_serves_document;
use reqwest::Method;

use crate::helpers::Stack;

#[tokio::test]
async fn the_document_is_served_and_names_every_route() {
    let s = Stack::spawn().await;
    assert_serves_document(
        s.api(Method::GET, "/openapi.json", None, None).await,
        &kommerce_review::openapi(),
        &[
            ("GET", "/api/v1/reviews"),
            ("POST", "/api/v1/reviews"),
            ("GET", "/api/v1/reviews/mine"),
            ("GET", "/api/v1/reviews/summary"),
            ("GET", "/api/v1/reviews/{id}"),
            ("PATCH", "/api/v1/reviews/{id}"),
            ("DELETE", "/api/v1/reviews/{id}"),
        ],
    )
    .await;
}
