//! One module per resource; `router()` is the whole API surface of the service, each route
//! registered by its handler's OpenAPI annotation.

mod cart;
mod internal;
mod orders;

use std::collections::HashMap;

use kommerce_kit::http::ApiError;
use kommerce_kit::openapi::{OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;
use kommerce_contracts::item::ItemView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cart::get))
        .routes(routes!(cart::add))
        .routes(routes!(cart::set, cart::remove))
        .routes(routes!(orders::list))
        .routes(routes!(orders::get))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::ship))
        .routes(routes!(orders::timeline))
        .routes(routes!(internal::cart))
        .routes(routes!(internal::purchases))
        // `kommerce saga trace` asks for the steps.
        .merge(kommerce_kit::saga::router(&["kommerce"]))
}

/// The item service's view of `ids` (absent ids are simply missing from the map).
pub(crate) async fn items(s: &AppState, ids: &[Uuid]) -> Result<HashMap<Uuid, ItemView>, ApiError> {
    Ok(s.item.items(ids).await?)
}
