//! One module per resource; `router()` is the whole API surface of the service, each route
//! registered by its handler's OpenAPI annotation.

mod categories;
mod internal;
mod items;

use kommerce_kit::openapi::{OpenApiRouter, at_least_one_property, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new()
        .routes(routes!(categories::list, categories::create))
        .routes(routes!(categories::update, categories::delete))
        .routes(routes!(items::list, items::create))
        .routes(routes!(items::get, items::update, items::delete))
        .routes(routes!(items::adjust_stock))
        .routes(routes!(items::ledger))
        .routes(routes!(internal::items))
        .routes(routes!(internal::reserve))
        .routes(routes!(internal::release))
        .routes(routes!(internal::policy));
    at_least_one_property(&mut router, &["CategoryPatchBody", "ItemPatchBody"]);
    router
}

pub(crate) use kommerce_kit::http::path_id;
/// Query parameters as a map, by the kit's one parser (400 unreadable, 422 naming a NUL).
pub(crate) use kommerce_kit::http::query_params as params;
