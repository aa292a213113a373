//! One module per resource; `router()` is the whole API surface of the service, each route
//! registered by its handler's OpenAPI annotation.

mod payments;
mod wallet;

use kommerce_kit::openapi::{OpenApiRouter, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wallet::get))
        .routes(routes!(wallet::top_up))
        .routes(routes!(payments::list, payments::create))
        .routes(routes!(payments::get))
        .merge(kommerce_kit::saga::router())
}
