//! The saga timeline each participating service keeps (`saga_steps`, part of
//! [`crate::messaging::MIGRATOR`]) and the internal endpoint that serves it:
//! `GET /internal/v1/saga/{id}` (a payment id or an order id), merged across services by
//! `kommerce saga trace`.

use axum::extract::{FromRef, Path, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::http::{ApiError, path_id};
use crate::openapi::OpenApiRouter;

/// One step, as recorded and as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Step {
    pub saga_id: Uuid,
    pub order_id: Option<Uuid>,
    pub service: String,
    pub step: String,
    pub outcome: String,
    pub detail: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
}

/// What a service records; `at` is the database clock at the insert.
#[derive(Debug, Clone, Copy)]
pub struct NewStep<'a> {
    pub saga_id: Uuid,
    pub order_id: Option<Uuid>,
    pub service: &'a str,
    pub step: &'a str,
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
}

/// Records a step in the caller's transaction: it exists if and only if the step's effects do.
pub async fn record(tx: &mut PgConnection, step: NewStep<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO saga_steps (saga_id, order_id, service, step, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(step.saga_id)
    .bind(step.order_id)
    .bind(step.service)
    .bind(step.step)
    .bind(step.outcome)
    .bind(step.detail)
    .execute(tx)
    .await?;
    Ok(())
}

/// Every step of the saga that `id` names (its payment id or its order id), oldest first.
pub async fn steps(db: &PgPool, id: Uuid) -> Result<Vec<Step>, sqlx::Error> {
    sqlx::query_as(
        "SELECT saga_id, order_id, service, step, outcome, detail, at FROM saga_steps \
         WHERE saga_id = $1 OR saga_id IN (SELECT saga_id FROM saga_steps WHERE order_id = $1) \
         ORDER BY at, id",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// `GET /internal/v1/saga/{id}`, documented, for `callers` (the services, or the
/// `kommerce` command, that may ask this service for its steps).
pub fn router<S>(callers: &[&str]) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    PgPool: FromRef<S>,
{
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(timeline))]
    struct Timeline;
    let mut doc = <Timeline as utoipa::OpenApi>::openapi();
    for item in doc.paths.paths.values_mut() {
        if let Some(op) = item.get.as_mut() {
            op.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                crate::credential::SCHEME,
                callers.to_vec(),
            )]);
        }
    }
    OpenApiRouter::with_openapi(doc).route("/internal/v1/saga/{id}", get(timeline::<S>))
}

/// The saga's steps as this service recorded them, oldest first (empty when it took no part).
#[utoipa::path(
    get,
    path = "/internal/v1/saga/{id}",
    operation_id = "saga_timeline",
    params(("id" = Uuid, Path, description = "A payment id or an order id.")),
    responses((status = 200, description = "The steps, oldest first.", body = [Step])),
)]
async fn timeline<S>(
    State(state): State<S>,
    Path(raw): Path<String>,
) -> Result<axum::Json<Vec<Step>>, ApiError>
where
    PgPool: FromRef<S>,
{
    let id = path_id(&raw, "saga")?;
    let db = PgPool::from_ref(&state);
    Ok(axum::Json(steps(&db, id).await?))
}
