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
        // The order service asks pay for its steps (an order's timeline); `kommerce saga trace`
        // asks both.
        .merge(kommerce_kit::saga::router(&["order", "kommerce"]))
}
