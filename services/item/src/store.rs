//! Catalogue queries: categories and items.

use kommerce_kit::db::StoreError;
use kommerce_kit::db::is_constraint;
use serde::Serialize;
use sqlx::{FromRow, PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::catalogue::{CategoryPatch, ItemPatch, NewCategory, NewItem};
use crate::domain::listing::{Cursor, ListQuery, Sort};
use crate::stock::AVAILABLE;

/// A category.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Category {
    pub id: Uuid,
    /// `null` for a root.
    #[schema(required = true)]
    pub parent_id: Option<Uuid>,
    pub name: String,
}

/// A category with its sub-categories, for `GET /api/v1/categories`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CategoryNode {
    pub id: Uuid,
    pub name: String,
    /// Its sub-categories, by name (case-insensitively).
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

/// Builds the forest from flat rows (pure), children sorted by name.
pub fn tree(rows: &[Category]) -> Vec<CategoryNode> {
    fn children(rows: &[Category], parent: Option<Uuid>) -> Vec<CategoryNode> {
        let mut nodes: Vec<CategoryNode> = rows
            .iter()
            .filter(|c| c.parent_id == parent)
            .map(|c| CategoryNode {
                id: c.id,
                name: c.name.clone(),
                children: children(rows, Some(c.id)),
            })
            .collect();
        nodes.sort_by_key(|n| n.name.to_lowercase());
        nodes
    }
    children(rows, None)
}

pub async fn categories(db: &PgPool) -> Result<Vec<Category>, StoreError> {
    Ok(
        sqlx::query_as::<_, Category>("SELECT id, parent_id, name FROM categories")
            .fetch_all(db)
            .await?,
    )
}

fn category_error(e: sqlx::Error) -> StoreError {
    if is_constraint(&e, "categories_sibling_name_key") {
        StoreError::conflict(
            "category-exists",
            "a sibling category already has this name",
        )
    } else if is_constraint(&e, "categories_parent_id_fkey") {
        StoreError::invalid("parent_id", "no such category")
    } else {
        e.into()
    }
}

pub async fn create_category(db: &PgPool, c: &NewCategory) -> Result<Category, StoreError> {
    sqlx::query_as::<_, Category>("INSERT INTO categories (id, parent_id, name) VALUES ($1, $2, $3) RETURNING id, parent_id, name")
        .bind(Uuid::now_v7())
        .bind(c.parent_id)
        .bind(&c.name)
        .fetch_one(db)
        .await
        .map_err(category_error)
}

pub async fn update_category(
    db: &PgPool,
    id: Uuid,
    p: &CategoryPatch,
) -> Result<Category, StoreError> {
    let mut tx = db.begin().await?;
    // Serialise tree changes, so two concurrent moves cannot build a cycle together.
    sqlx::query("LOCK TABLE categories IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    if let Some(Some(parent)) = p.parent_id {
        let cycle: bool = sqlx::query_scalar(
            "WITH RECURSIVE up AS (SELECT id, parent_id FROM categories WHERE id = $1 \
             UNION ALL SELECT c.id, c.parent_id FROM categories c JOIN up ON c.id = up.parent_id) \
             SELECT EXISTS (SELECT 1 FROM up WHERE id = $2)",
        )
        .bind(parent)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if cycle {
            return Err(StoreError::invalid(
                "parent_id",
                "would put the category inside itself",
            ));
        }
    }
    let updated = sqlx::query_as::<_, Category>(
        "UPDATE categories SET name = COALESCE($2, name), \
         parent_id = CASE WHEN $3 THEN $4 ELSE parent_id END, updated_at = now() \
         WHERE id = $1 RETURNING id, parent_id, name",
    )
    .bind(id)
    .bind(&p.name)
    .bind(p.parent_id.is_some())
    .bind(p.parent_id.flatten())
    .fetch_optional(&mut *tx)
    .await
    .map_err(category_error)?
    .ok_or(StoreError::NotFound("category"))?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes an empty category: no sub-categories, no items (deleted items keep their category).
pub async fn delete_category(db: &PgPool, id: Uuid) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let found: Option<(bool, bool)> = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM categories WHERE parent_id = $1), \
         EXISTS (SELECT 1 FROM items WHERE category_id = $1) FROM categories WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    match found {
        None => Err(StoreError::NotFound("category")),
        Some((true, _)) => Err(StoreError::conflict(
            "category-not-empty",
            "the category has sub-categories",
        )),
        Some((_, true)) => Err(StoreError::conflict(
            "category-not-empty",
            "the category has items",
        )),
        Some((false, false)) => {
            sqlx::query("DELETE FROM categories WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

/// An item of the catalogue.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Item {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub category_id: Uuid,
    #[schema(value_type = crate::domain::catalogue::Status)]
    pub status: String,
    /// Available stock: `items.stock` plus ledger rows not yet folded in.
    pub stock: i64,
    /// In display order.
    pub image_ids: Vec<Uuid>,
    /// The average rating of its reviews (0 without any).
    pub rating_avg: f64,
    pub rating_count: i32,
    /// Units sold (reserved and not released).
    pub sold_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the item was deleted; `null` while it exists.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub deleted_at: Option<OffsetDateTime>,
}

/// The item columns but `stock`, which every query adds as [`AVAILABLE`] (`{AVAILABLE} AS stock`).
const ITEM_COLUMNS: &str = "items.id, items.name, items.description, items.price_minor, items.category_id, \
     items.status, items.image_ids, items.rating_avg, items.rating_count, items.sold_count, \
     items.created_at, items.updated_at, items.deleted_at";

fn item_error(e: sqlx::Error) -> StoreError {
    if is_constraint(&e, "items_category_id_fkey") {
        StoreError::invalid("category_id", "no such category")
    } else {
        e.into()
    }
}

pub async fn create_item(db: &PgPool, id: Uuid, i: &NewItem) -> Result<Item, StoreError> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO items (id, name, description, price_minor, category_id, status, stock, image_ids) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(&i.name)
    .bind(&i.description)
    .bind(i.price_minor)
    .bind(i.category_id)
    .bind(i.status.as_str())
    .bind(i.stock)
    .bind(&i.image_ids)
    .execute(&mut *tx)
    .await
    .map_err(item_error)?;
    if i.stock > 0 {
        sqlx::query("INSERT INTO stock_ledger (item_id, delta, reason, applied) VALUES ($1, $2, 'initial', true)")
            .bind(id)
            .bind(i.stock)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    item(db, id).await?.ok_or(StoreError::NotFound("item"))
}

pub async fn item(db: &PgPool, id: Uuid) -> Result<Option<Item>, StoreError> {
    Ok(sqlx::query_as::<_, Item>(&format!(
        "SELECT {ITEM_COLUMNS}, {AVAILABLE} AS stock FROM items WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?)
}

pub async fn update_item(db: &PgPool, id: Uuid, p: &ItemPatch) -> Result<Item, StoreError> {
    let updated = sqlx::query(
        "UPDATE items SET name = COALESCE($2, name), description = COALESCE($3, description), \
         price_minor = COALESCE($4, price_minor), category_id = COALESCE($5, category_id), \
         status = COALESCE($6, status), image_ids = COALESCE($7, image_ids), updated_at = now() \
         WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.price_minor)
    .bind(p.category_id)
    .bind(p.status.map(crate::domain::catalogue::Status::as_str))
    .bind(&p.image_ids)
    .execute(db)
    .await
    .map_err(item_error)?
    .rows_affected();
    if updated == 0 {
        return Err(StoreError::NotFound("item"));
    }
    item(db, id).await?.ok_or(StoreError::NotFound("item"))
}

/// Soft delete: the item leaves every listing; its id still resolves (old orders show it).
pub async fn delete_item(db: &PgPool, id: Uuid) -> Result<(), StoreError> {
    let deleted = sqlx::query("UPDATE items SET deleted_at = now(), updated_at = now() WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected();
    if deleted == 0 {
        Err(StoreError::NotFound("item"))
    } else {
        Ok(())
    }
}

pub async fn items_by_ids(db: &PgPool, ids: &[Uuid]) -> Result<Vec<Item>, StoreError> {
    Ok(sqlx::query_as::<_, Item>(&format!(
        "SELECT {ITEM_COLUMNS}, {AVAILABLE} AS stock FROM items WHERE id = ANY($1) ORDER BY id"
    ))
    .bind(ids)
    .fetch_all(db)
    .await?)
}

/// The sort key of `item` under `sort`, as a cursor value.
pub fn cursor_of(sort: Sort, item: &Item) -> Cursor {
    let k = match sort {
        Sort::Newest => serde_json::Value::String(
            item.created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        ),
        Sort::PriceAsc | Sort::PriceDesc => item.price_minor.into(),
        Sort::Rating => serde_json::Number::from_f64(item.rating_avg)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Sort::BestSelling => item.sold_count.into(),
    };
    Cursor { k, id: item.id }
}

fn bind_cursor(
    b: &mut QueryBuilder<'_, Postgres>,
    sort: Sort,
    c: &Cursor,
) -> Result<(), StoreError> {
    let bad = || StoreError::invalid("cursor", "does not belong to this sort order");
    let op = if sort.ascending() { ">" } else { "<" };
    b.push(format!(" AND ({}, items.id) {op} (", sort.column()));
    match sort {
        Sort::Newest => {
            let t = c
                .k
                .as_str()
                .and_then(|s| {
                    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
                })
                .ok_or_else(bad)?;
            b.push_bind(t);
        }
        Sort::PriceAsc | Sort::PriceDesc | Sort::BestSelling => {
            b.push_bind(c.k.as_i64().ok_or_else(bad)?);
        }
        Sort::Rating => {
            b.push_bind(c.k.as_f64().ok_or_else(bad)?);
        }
    }
    b.push(", ").push_bind(c.id).push(")");
    Ok(())
}

/// One page of the public listing and the cursor of the next page.
pub async fn list(db: &PgPool, q: &ListQuery) -> Result<(Vec<Item>, Option<String>), StoreError> {
    let mut b = QueryBuilder::<Postgres>::new(format!(
        "SELECT {ITEM_COLUMNS}, {AVAILABLE} AS stock FROM items WHERE items.deleted_at IS NULL AND items.status <> 'hidden'"
    ));
    if let Some(category) = q.category {
        b.push(
            " AND items.category_id IN (WITH RECURSIVE sub AS (SELECT id FROM categories WHERE id = ",
        )
        .push_bind(category)
        .push(" UNION ALL SELECT c.id FROM categories c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub)");
    }
    if let Some((tsquery, raw)) = &q.keyword {
        b.push(" AND (items.search @@ to_tsquery('simple', ")
            .push_bind(tsquery.clone())
            .push(") OR ")
            .push_bind(raw.clone())
            .push(" <% items.name)");
    }
    if let Some(min) = q.min_price {
        b.push(" AND items.price_minor >= ").push_bind(min);
    }
    if let Some(max) = q.max_price {
        b.push(" AND items.price_minor <= ").push_bind(max);
    }
    if q.in_stock {
        b.push(format!(" AND {AVAILABLE} > 0"));
    }
    if let Some(c) = &q.cursor {
        bind_cursor(&mut b, q.sort, c)?;
    }
    let dir = if q.sort.ascending() { "ASC" } else { "DESC" };
    b.push(format!(
        " ORDER BY {} {dir}, items.id {dir} LIMIT ",
        q.sort.column()
    ))
    .push_bind(q.limit + 1);
    let mut rows = b.build_query_as::<Item>().fetch_all(db).await?;
    let more = rows.len() > usize::try_from(q.limit).unwrap_or(usize::MAX);
    if more {
        rows.pop();
    }
    let next = if more {
        rows.last().map(|last| cursor_of(q.sort, last).encode())
    } else {
        None
    };
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_category_forest() {
        let root = Uuid::from_u128(1);
        let tea = Uuid::from_u128(2);
        let pots = Uuid::from_u128(3);
        let rows = vec![
            Category {
                id: pots,
                parent_id: Some(tea),
                name: "Pots".into(),
            },
            Category {
                id: root,
                parent_id: None,
                name: "kitchen".into(),
            },
            Category {
                id: tea,
                parent_id: Some(root),
                name: "Tea".into(),
            },
            Category {
                id: Uuid::from_u128(4),
                parent_id: None,
                name: "Garden".into(),
            },
        ];
        let forest = tree(&rows);
        assert_eq!(
            forest.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["Garden", "kitchen"]
        );
        assert_eq!(forest[1].children[0].children[0].id, pots);
    }
}
