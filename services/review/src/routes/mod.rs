//! One module per resource; `router()` is the whole API surface of the service, each route
//! registered by its handler's OpenAPI annotation.

mod reviews;

use kommerce_kit::openapi::{OpenApiRouter, at_least_one_property, routes};

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    let mut api = OpenApiRouter::new()
        .routes(routes!(reviews::list, reviews::create))
        .routes(routes!(reviews::mine))
        .routes(routes!(reviews::summary))
        .routes(routes!(reviews::one, reviews::update, reviews::delete));
    at_least_one_property(&mut api, &["ReviewPatchBody"]);
    api
}

/// Query parameters as a map, by the kit's one parser: 400 unreadable, 422 naming an unknown
/// parameter or one holding NUL.
pub(crate) use kommerce_kit::http::known_query_params as params;
pub(crate) use kommerce_kit::http::path_id;
