//! The pay service's queries.

use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::status::Status;

/// A payment as its owner sees it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Payment {
    pub id: Uuid,
    #[serde(skip)]
    pub user_id: Uuid,
    #[serde(skip)]
    pub request_hash: String,
    #[schema(value_type = crate::domain::payment::Method)]
    pub method: String,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub amount_minor: i64,
    pub address_id: Uuid,
    /// The lines as charged.
    #[schema(value_type = Vec<kommerce_contracts::saga::PaidLine>)]
    pub lines: serde_json::Value,
    /// The order the saga made, once it exists.
    pub order_id: Option<Uuid>,
    pub reason: Option<String>,
    pub refunded_minor: Option<i64>,
    #[serde(skip)]
    pub response: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const PAYMENT: &str = "SELECT p.id, p.user_id, p.request_hash, p.method, p.status, p.amount_minor, \
     p.address_id, p.lines, p.order_id, p.reason, r.amount_minor AS refunded_minor, p.response, \
     p.created_at, p.updated_at FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id";

pub async fn payment(
    db: impl PgExecutor<'_>,
    user: Uuid,
    id: Uuid,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(&format!("{PAYMENT} WHERE p.id = $1 AND p.user_id = $2"))
        .bind(id)
        .bind(user)
        .fetch_optional(db)
        .await
}

pub async fn by_key(
    db: impl PgExecutor<'_>,
    user: Uuid,
    key: &str,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{PAYMENT} WHERE p.user_id = $1 AND p.idempotency_key = $2"
    ))
    .bind(user)
    .bind(key)
    .fetch_optional(db)
    .await
}

/// A payment locked for a saga step.
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(&format!("{PAYMENT} WHERE p.id = $1 FOR UPDATE OF p"))
        .bind(id)
        .fetch_optional(tx)
        .await
}

pub async fn payments(
    db: impl PgExecutor<'_>,
    user: Uuid,
    cursor: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Payment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{PAYMENT} WHERE p.user_id = $1 AND ($2::uuid IS NULL OR p.id < $2) \
         ORDER BY p.id DESC LIMIT $3"
    ))
    .bind(user)
    .bind(cursor)
    .bind(limit)
    .fetch_all(db)
    .await
}

#[derive(Debug)]
pub struct NewPayment<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub key: &'a str,
    pub request_hash: &'a str,
    pub method: &'a str,
    pub amount_minor: i64,
    pub address_id: Uuid,
    pub lines: &'a serde_json::Value,
    pub response: &'a serde_json::Value,
}

/// Inserts the payment unless its key was used already (then `false`).
pub async fn insert_payment(
    tx: &mut PgConnection,
    p: &NewPayment<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO payments (id, user_id, idempotency_key, request_hash, method, status, \
         amount_minor, address_id, lines, response) \
         VALUES ($1, $2, $3, $4, $5, 'pending_order', $6, $7, $8, $9) \
         ON CONFLICT ON CONSTRAINT payments_idempotency_unique DO NOTHING",
    )
    .bind(p.id)
    .bind(p.user_id)
    .bind(p.key)
    .bind(p.request_hash)
    .bind(p.method)
    .bind(p.amount_minor)
    .bind(p.address_id)
    .bind(p.lines)
    .bind(p.response)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_status(
    tx: &mut PgConnection,
    id: Uuid,
    status: Status,
    order_id: Option<Uuid>,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET status = $2, order_id = COALESCE($3, order_id), \
         reason = COALESCE($4, reason), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(order_id)
    .bind(reason)
    .execute(tx)
    .await?;
    Ok(())
}

/// Debits the wallet; `false` (and nothing changed) when the balance does not cover it.
pub async fn charge(
    tx: &mut PgConnection,
    user: Uuid,
    payment: Uuid,
    amount: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE wallets SET balance_minor = balance_minor - $2, updated_at = now() \
         WHERE user_id = $1 AND balance_minor >= $2",
    )
    .bind(user)
    .bind(amount)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    entry(tx, user, -amount, "charge", Some(payment), None).await?;
    Ok(true)
}

async fn entry(
    tx: &mut PgConnection,
    user: Uuid,
    delta: i64,
    kind: &str,
    payment: Option<Uuid>,
    key: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO wallet_entries (user_id, delta_minor, kind, payment_id, idempotency_key) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user)
    .bind(delta)
    .bind(kind)
    .bind(payment)
    .bind(key)
    .execute(tx)
    .await?;
    Ok(())
}

/// Refunds a payment at most once (the `refunds` primary key); a wallet payment's money goes
/// back to the wallet. Returns whether this call refunded.
pub async fn refund(tx: &mut PgConnection, p: &Payment, reason: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO refunds (payment_id, amount_minor, reason) VALUES ($1, $2, $3) \
         ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(p.id)
    .bind(p.amount_minor)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    if p.method == "wallet" {
        sqlx::query(
            "UPDATE wallets SET balance_minor = balance_minor + $2, updated_at = now() \
             WHERE user_id = $1",
        )
        .bind(p.user_id)
        .bind(p.amount_minor)
        .execute(&mut *tx)
        .await?;
        entry(tx, p.user_id, p.amount_minor, "refund", Some(p.id), None).await?;
    }
    Ok(true)
}

/// One wallet ledger entry: `top_up` and `refund` add, `charge` takes.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
#[schema(as = WalletEntry)]
pub struct Entry {
    pub delta_minor: i64,
    #[schema(pattern = "^(top_up|charge|refund)$")]
    pub kind: String,
    pub payment_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub async fn wallet(db: &mut PgConnection, user: Uuid) -> Result<(i64, Vec<Entry>), sqlx::Error> {
    let balance: Option<i64> =
        sqlx::query_scalar("SELECT balance_minor FROM wallets WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut *db)
            .await?;
    let entries = sqlx::query_as(
        "SELECT delta_minor, kind, payment_id, created_at FROM wallet_entries \
         WHERE user_id = $1 ORDER BY id DESC LIMIT 50",
    )
    .bind(user)
    .fetch_all(db)
    .await?;
    Ok((balance.unwrap_or(0), entries))
}

/// Adds to the wallet. With a key, a repeat of the same amount adds nothing, and the key used
/// for another amount is refused.
/// What a top-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopUp {
    Added {
        balance: i64,
    },
    /// The key was used before for the same amount: nothing added again.
    Repeated {
        balance: i64,
    },
    /// The key was used before for a different amount: refused, nothing added.
    KeyReused,
}

pub async fn top_up(
    tx: &mut PgConnection,
    user: Uuid,
    amount: i64,
    key: Option<&str>,
) -> Result<TopUp, sqlx::Error> {
    sqlx::query("INSERT INTO wallets (user_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let balance: i64 =
        sqlx::query_scalar("SELECT balance_minor FROM wallets WHERE user_id = $1 FOR UPDATE")
            .bind(user)
            .fetch_one(&mut *tx)
            .await?;
    if let Some(key) = key {
        let first: Option<i64> = sqlx::query_scalar(
            "SELECT delta_minor FROM wallet_entries WHERE user_id = $1 AND idempotency_key = $2",
        )
        .bind(user)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        match first {
            Some(first) if first == amount => return Ok(TopUp::Repeated { balance }),
            Some(_) => return Ok(TopUp::KeyReused),
            None => {}
        }
    }
    sqlx::query(
        "UPDATE wallets SET balance_minor = balance_minor + $2, updated_at = now() WHERE user_id = $1",
    )
    .bind(user)
    .bind(amount)
    .execute(&mut *tx)
    .await?;
    entry(tx, user, amount, "top_up", None, key).await?;
    Ok(TopUp::Added {
        balance: balance + amount,
    })
}
