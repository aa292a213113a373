//! The service serves its OpenAPI document, and the document names every route.

use kommerce_kit::testing::assert_serves_document;

use super::TestApp;

#[tokio::test]
async fn the_document_is_served_and_names_every_route() {
    let app = TestApp::spawn().await;
    assert_serves_document(
        app.get("/openapi.json", None).await,
        &kommerce_user::openapi(),
        &[
            ("POST", "/api/v1/users"),
            ("GET", "/api/v1/users/me"),
            ("PATCH", "/api/v1/users/me"),
            ("GET", "/api/v1/users/me/addresses"),
            ("POST", "/api/v1/users/me/addresses"),
            ("GET", "/api/v1/users/me/addresses/{id}"),
            ("PATCH", "/api/v1/users/me/addresses/{id}"),
            ("DELETE", "/api/v1/users/me/addresses/{id}"),
            ("POST", "/api/v1/users/me/addresses/{id}/default"),
            ("POST", "/api/v1/auth/login"),
            ("POST", "/api/v1/auth/refresh"),
            ("POST", "/api/v1/auth/logout"),
            ("GET", "/api/v1/auth/jwks.json"),
            ("GET", "/internal/v1/users/{id}/addresses/{address_id}"),
        ],
    )
    .await;
}
