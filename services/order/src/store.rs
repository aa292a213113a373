//! The order service's queries.

use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::status::Status;

/// A line of the caller's cart: one per item.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct CartLine {
    /// The line (what a checkout names in `cart_line_ids`).
    pub id: Uuid,
    pub item_id: Uuid,
    #[schema(minimum = 1, maximum = 99)]
    pub qty: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

/// An order as its owner sees it, with its lines.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    #[serde(skip)]
    pub user_id: Uuid,
    /// The payment whose saga made the order (also the saga's id).
    pub payment_id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: Status,
    /// What was charged: the lines' total.
    #[schema(minimum = 0)]
    pub total_minor: i64,
    /// The shipping address as the user service served it at payment (a snapshot, not a
    /// reference).
    #[schema(value_type = Object)]
    pub address: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the refund completed the cancellation; null until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
    /// Ordered by item id.
    #[sqlx(skip)]
    pub lines: Vec<OrderLine>,
}

/// One bought line, with the item's name and the price that was charged.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct OrderLine {
    #[serde(skip)]
    pub order_id: Uuid,
    pub item_id: Uuid,
    pub name: String,
    #[schema(minimum = 0)]
    pub unit_price_minor: i64,
    #[schema(minimum = 1)]
    pub qty: i32,
}

const ORDER_COLUMNS: &str =
    "id, user_id, payment_id, status, total_minor, address, created_at, updated_at, cancelled_at";

pub async fn cart(db: impl PgExecutor<'_>, user: Uuid) -> Result<Vec<CartLine>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, item_id, qty, added_at FROM cart_lines WHERE user_id = $1 ORDER BY added_at, id",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

/// Locks the user's cart (creating it), so line-count checks hold under concurrent adds.
pub async fn lock_cart(tx: &mut PgConnection, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO carts (user_id) VALUES ($1) \
         ON CONFLICT (user_id) DO UPDATE SET updated_at = now()",
    )
    .bind(user)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn cart_line(
    tx: &mut PgConnection,
    user: Uuid,
    item: Uuid,
) -> Result<Option<CartLine>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, item_id, qty, added_at FROM cart_lines WHERE user_id = $1 AND item_id = $2",
    )
    .bind(user)
    .bind(item)
    .fetch_optional(tx)
    .await
}

pub async fn count_lines(tx: &mut PgConnection, user: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM cart_lines WHERE user_id = $1")
        .bind(user)
        .fetch_one(tx)
        .await
}

pub async fn insert_line(
    tx: &mut PgConnection,
    user: Uuid,
    item: Uuid,
    qty: i32,
) -> Result<CartLine, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO cart_lines (id, user_id, item_id, qty) VALUES ($1, $2, $3, $4) \
         RETURNING id, item_id, qty, added_at",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(item)
    .bind(qty)
    .fetch_one(tx)
    .await
}

/// Sets a line's quantity; `None` when the user has no line for the item.
pub async fn set_qty(
    db: impl PgExecutor<'_>,
    user: Uuid,
    item: Uuid,
    qty: i32,
) -> Result<Option<CartLine>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE cart_lines SET qty = $3 WHERE user_id = $1 AND item_id = $2 \
         RETURNING id, item_id, qty, added_at",
    )
    .bind(user)
    .bind(item)
    .bind(qty)
    .fetch_optional(db)
    .await
}

pub async fn remove_line(
    db: impl PgExecutor<'_>,
    user: Uuid,
    item: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM cart_lines WHERE user_id = $1 AND item_id = $2")
        .bind(user)
        .bind(item)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn remove_items(
    tx: &mut PgConnection,
    user: Uuid,
    items: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cart_lines WHERE user_id = $1 AND item_id = ANY($2)")
        .bind(user)
        .bind(items)
        .execute(tx)
        .await?;
    Ok(())
}

async fn with_lines(
    db: &mut PgConnection,
    mut orders: Vec<Order>,
) -> Result<Vec<Order>, sqlx::Error> {
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let lines: Vec<OrderLine> = sqlx::query_as(
        "SELECT order_id, item_id, name, unit_price_minor, qty FROM order_lines \
         WHERE order_id = ANY($1) ORDER BY order_id, item_id",
    )
    .bind(&ids)
    .fetch_all(&mut *db)
    .await?;
    for o in &mut orders {
        o.lines = lines
            .iter()
            .filter(|l| l.order_id == o.id)
            .cloned()
            .collect();
    }
    Ok(orders)
}

/// The user's order `id` (someone else's is `None`), locked when `for_update`.
pub async fn order(
    db: &mut PgConnection,
    user: Uuid,
    id: Uuid,
    for_update: bool,
) -> Result<Option<Order>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let found: Option<Order> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND user_id = $2{lock}"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(&mut *db)
    .await?;
    match found {
        Some(o) => Ok(with_lines(db, vec![o]).await?.pop()),
        None => Ok(None),
    }
}

pub async fn order_for_payment(
    tx: &mut PgConnection,
    payment: Uuid,
) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE payment_id = $1 FOR UPDATE"
    ))
    .bind(payment)
    .fetch_optional(tx)
    .await
}

/// The user's orders, newest first, after `cursor` (an order id).
pub async fn orders(
    db: &mut PgConnection,
    user: Uuid,
    cursor: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Order>, sqlx::Error> {
    let found: Vec<Order> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(user)
    .bind(cursor)
    .bind(limit)
    .fetch_all(&mut *db)
    .await?;
    with_lines(db, found).await
}

#[derive(Debug)]
pub struct NewOrder<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub payment_id: Uuid,
    pub total_minor: kommerce_contracts::money::Money,
    pub address: &'a serde_json::Value,
    pub lines: &'a [kommerce_contracts::saga::PaidLine],
}

pub async fn insert_order(tx: &mut PgConnection, o: &NewOrder<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders (id, user_id, payment_id, status, total_minor, address) \
         VALUES ($1, $2, $3, 'created', $4, $5)",
    )
    .bind(o.id)
    .bind(o.user_id)
    .bind(o.payment_id)
    .bind(o.total_minor.as_minor())
    .bind(o.address)
    .execute(&mut *tx)
    .await?;
    let items: Vec<Uuid> = o.lines.iter().map(|l| l.item_id).collect();
    let names: Vec<&str> = o.lines.iter().map(|l| l.name.as_str()).collect();
    let prices: Vec<i64> = o
        .lines
        .iter()
        .map(|l| l.unit_price_minor.as_minor())
        .collect();
    let qtys: Vec<i32> = o.lines.iter().map(|l| l.qty.get()).collect();
    sqlx::query(
        "INSERT INTO order_lines (order_id, item_id, name, unit_price_minor, qty) \
         SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::int[])",
    )
    .bind(o.id)
    .bind(&items)
    .bind(&names)
    .bind(&prices)
    .bind(&qtys)
    .execute(tx)
    .await?;
    Ok(())
}

pub async fn set_status(
    tx: &mut PgConnection,
    id: Uuid,
    status: Status,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET status = $2, updated_at = now(), \
         cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE cancelled_at END WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .execute(tx)
    .await?;
    Ok(())
}

/// Whether the user has a purchase (not cancelled) containing the item.
pub async fn purchased(
    db: impl PgExecutor<'_>,
    user: Uuid,
    item: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM orders o JOIN order_lines l ON l.order_id = o.id \
         WHERE o.user_id = $1 AND l.item_id = $2 \
         AND o.status IN ('created', 'shipped', 'delivered'))",
    )
    .bind(user)
    .bind(item)
    .fetch_one(db)
    .await
}

/// What became of a payment, decided once (`payment_outcomes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An order was made for it.
    Order,
    /// Its deadline passed without an order: it never gets one.
    Expired,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Expired => "expired",
        }
    }
}

/// The payment's outcome, if decided.
pub async fn outcome(tx: &mut PgConnection, payment: Uuid) -> Result<Option<Outcome>, sqlx::Error> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM payment_outcomes WHERE payment_id = $1")
            .bind(payment)
            .fetch_optional(tx)
            .await?;
    Ok(found.map(|o| {
        if o == "order" {
            Outcome::Order
        } else {
            Outcome::Expired
        }
    }))
}

/// Decides the payment's outcome as `wanted` unless it is decided already; returns the
/// outcome that stands and whether this call decided it. A concurrent decision on the same
/// payment waits for the other transaction, then loses to it.
pub async fn decide(
    tx: &mut PgConnection,
    payment: Uuid,
    wanted: Outcome,
) -> Result<(Outcome, bool), sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO payment_outcomes (payment_id, outcome) VALUES ($1, $2) \
         ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(payment)
    .bind(wanted.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok((wanted, true));
    }
    Ok((outcome(tx, payment).await?.unwrap_or(wanted), false))
}
