//! One module per resource; `router()` is the whole API surface of the service, each route
//! registered by its handler's OpenAPI annotation.

mod addresses;
mod auth;
mod cookie;
mod internal;
mod users;

use kommerce_kit::openapi::{OpenApiRouter, at_least_one_property, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    let mut api = OpenApiRouter::new()
        .routes(routes!(users::signup))
        .routes(routes!(users::me, users::update_me))
        .routes(routes!(addresses::list, addresses::create))
        .routes(routes!(
            addresses::get,
            addresses::update,
            addresses::delete
        ))
        .routes(routes!(addresses::make_default))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::jwks))
        .routes(routes!(internal::address));
    at_least_one_property(&mut api, &["ProfileBody", "UserAddressPatchBody"]);
    api
}
