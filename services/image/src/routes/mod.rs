//! One module per resource; `router()` is the whole API surface of the service, each route
//! registered by its handler's OpenAPI annotation.

mod images;
mod internal;

use kommerce_kit::openapi::{OpenApiRouter, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(images::upload))
        .routes(routes!(images::get, images::replace, images::delete))
        .routes(routes!(internal::delete_attached))
        .routes(routes!(internal::delete))
        .routes(routes!(internal::attach))
        .routes(routes!(internal::detach))
}

/// Query parameters as a map, by the kit's one parser: 400 unreadable, 422 naming an unknown
/// parameter or one holding NUL.
pub(crate) use kommerce_kit::http::known_query_params as params;
pub(crate) use kommerce_kit::http::path_id;
