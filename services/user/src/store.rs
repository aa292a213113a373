//! PostgreSQL queries of the user service. Every multi-statement change is one transaction;
//! address changes lock the owning user's row first, so concurrent requests of one user are
//! serialised and the "at most 20" and "exactly one default" rules cannot race.

use kommerce_kit::auth::Role;
use kommerce_kit::db::StoreError;
use kommerce_kit::db::is_constraint;
use serde::Serialize;
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{AddressPatch, Email, MAX_ADDRESSES, NewAddress, NewUser, Phone};

/// An account as its owner sees it (never its password).
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    /// Lower-cased.
    pub email: String,
    pub name: String,
    /// Normalised: an optional leading `+` and 7 to 15 digits.
    #[schema(pattern = r"^\+?[0-9]{7,15}$")]
    pub phone: String,
    /// `customer` for an account made by signup; `admin` for an administrator.
    #[schema(pattern = "^(customer|admin)$")]
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl User {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Customer)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct Credentials {
    pub id: Uuid,
    pub password_hash: String,
}

/// A shipping address of a user.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
#[schema(as = UserAddress)]
pub struct Address {
    pub id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    pub label: Option<String>,
    pub recipient: String,
    /// Normalised: an optional leading `+` and 7 to 15 digits.
    #[schema(pattern = r"^\+?[0-9]{7,15}$")]
    pub phone: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    /// Upper-cased.
    #[schema(pattern = "^[A-Z0-9 -]+$")]
    pub postal_code: String,
    /// A two-letter ISO 3166-1 code, upper-cased.
    #[schema(pattern = "^[A-Z]{2}$")]
    pub country: String,
    /// Exactly one of a user's addresses is the default (none when the user has none).
    pub is_default: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Last changed or made the default: the list's order after the default.
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
}

impl Address {
    /// The address after `patch` (pure: the store writes what this returns).
    #[must_use]
    pub fn patched(mut self, patch: AddressPatch) -> Self {
        if let Some(v) = patch.label {
            self.label = v;
        }
        if let Some(v) = patch.recipient {
            self.recipient = v;
        }
        if let Some(v) = patch.phone {
            v.as_str().clone_into(&mut self.phone);
        }
        if let Some(v) = patch.line1 {
            self.line1 = v;
        }
        if let Some(v) = patch.line2 {
            self.line2 = v;
        }
        if let Some(v) = patch.city {
            self.city = v;
        }
        if let Some(v) = patch.region {
            self.region = v;
        }
        if let Some(v) = patch.postal_code {
            self.postal_code = v;
        }
        if let Some(v) = patch.country {
            self.country = v;
        }
        self
    }
}

const USER_COLUMNS: &str = "id, email, name, phone, role, created_at";
const ADDRESS_COLUMNS: &str = "id, user_id, label, recipient, phone, line1, line2, city, region, \
     postal_code, country, is_default, created_at, updated_at, last_used_at";

pub async fn insert_user(
    db: &PgPool,
    new: &NewUser,
    password_hash: &str,
    role: Role,
) -> Result<User, StoreError> {
    sqlx::query_as::<_, User>(&format!(
        "INSERT INTO users (id, email, password_hash, name, phone, role) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(new.email.as_str())
    .bind(password_hash)
    .bind(&new.name)
    .bind(new.phone.as_str())
    .bind(role.as_str())
    .fetch_one(db)
    .await
    .map_err(|e| {
        if is_constraint(&e, "users_email_key") {
            StoreError::conflict("email-taken", "an account with this e-mail already exists")
        } else {
            e.into()
        }
    })
}

pub async fn credentials_by_email(
    db: &PgPool,
    email: &Email,
) -> Result<Option<Credentials>, StoreError> {
    Ok(
        sqlx::query_as::<_, Credentials>("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(db)
            .await?,
    )
}

pub async fn password_hash(db: &PgPool, user: Uuid) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn user(db: &PgPool, id: Uuid) -> Result<Option<User>, StoreError> {
    Ok(
        sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

pub async fn update_profile(
    db: &PgPool,
    id: Uuid,
    name: Option<&str>,
    phone: Option<&Phone>,
    password_hash: Option<&str>,
) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as::<_, User>(&format!(
        "UPDATE users SET name = COALESCE($2, name), phone = COALESCE($3, phone), \
         password_hash = COALESCE($4, password_hash), updated_at = now() \
         WHERE id = $1 RETURNING {USER_COLUMNS}"
    ))
    .bind(id)
    .bind(name)
    .bind(phone.map(Phone::as_str))
    .bind(password_hash)
    .fetch_optional(db)
    .await?)
}

/// Creates an admin account, or promotes an existing account to admin (its password is kept).
/// Returns whether a new account was created.
pub async fn ensure_admin(
    db: &PgPool,
    new: &NewUser,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let created: bool = sqlx::query_scalar(
        "INSERT INTO users (id, email, password_hash, name, phone, role) \
         VALUES ($1, $2, $3, $4, $5, 'admin') \
         ON CONFLICT (email) DO UPDATE SET role = 'admin', updated_at = now() \
         RETURNING (xmax = 0)",
    )
    .bind(Uuid::now_v7())
    .bind(new.email.as_str())
    .bind(password_hash)
    .bind(&new.name)
    .bind(new.phone.as_str())
    .fetch_one(db)
    .await?;
    Ok(created)
}

/// Locks the user's row for the rest of the transaction; `NotFound` if the user is gone.
async fn lock_user(tx: &mut Transaction<'_, Postgres>, user: Uuid) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user)
        .fetch_optional(&mut **tx)
        .await?
        .map(drop)
        .ok_or(StoreError::NotFound("user"))
}

pub async fn addresses(db: &PgPool, user: Uuid) -> Result<Vec<Address>, StoreError> {
    Ok(sqlx::query_as::<_, Address>(&format!(
        "SELECT {ADDRESS_COLUMNS} FROM addresses WHERE user_id = $1 \
         ORDER BY is_default DESC, last_used_at DESC, id"
    ))
    .bind(user)
    .fetch_all(db)
    .await?)
}

pub async fn address(db: &PgPool, user: Uuid, id: Uuid) -> Result<Option<Address>, StoreError> {
    Ok(sqlx::query_as::<_, Address>(&format!(
        "SELECT {ADDRESS_COLUMNS} FROM addresses WHERE user_id = $1 AND id = $2"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Adds an address. The first one becomes the default; a later one does when asked to.
pub async fn create_address(
    db: &PgPool,
    user: Uuid,
    a: &NewAddress,
) -> Result<Address, StoreError> {
    let mut tx = db.begin().await?;
    lock_user(&mut tx, user).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM addresses WHERE user_id = $1")
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
    if count >= MAX_ADDRESSES {
        return Err(StoreError::conflict(
            "address-limit",
            format!("a user can keep at most {MAX_ADDRESSES} addresses"),
        ));
    }
    let default = count == 0 || a.default;
    if default {
        clear_default(&mut tx, user).await?;
    }
    let created = sqlx::query_as::<_, Address>(&format!(
        "INSERT INTO addresses (id, user_id, label, recipient, phone, line1, line2, city, region, \
         postal_code, country, is_default) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         RETURNING {ADDRESS_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(&a.label)
    .bind(&a.recipient)
    .bind(a.phone.as_str())
    .bind(&a.line1)
    .bind(&a.line2)
    .bind(&a.city)
    .bind(&a.region)
    .bind(&a.postal_code)
    .bind(&a.country)
    .bind(default)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(created)
}

async fn clear_default(tx: &mut Transaction<'_, Postgres>, user: Uuid) -> Result<(), StoreError> {
    sqlx::query("UPDATE addresses SET is_default = false WHERE user_id = $1 AND is_default")
        .bind(user)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn update_address(
    db: &PgPool,
    user: Uuid,
    id: Uuid,
    patch: AddressPatch,
) -> Result<Address, StoreError> {
    let mut tx = db.begin().await?;
    lock_user(&mut tx, user).await?;
    let current = sqlx::query_as::<_, Address>(&format!(
        "SELECT {ADDRESS_COLUMNS} FROM addresses WHERE user_id = $1 AND id = $2"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound("address"))?;
    let a = current.patched(patch);
    let updated = sqlx::query_as::<_, Address>(&format!(
        "UPDATE addresses SET label = $3, recipient = $4, phone = $5, line1 = $6, line2 = $7, \
         city = $8, region = $9, postal_code = $10, country = $11, updated_at = now(), \
         last_used_at = now() WHERE user_id = $1 AND id = $2 RETURNING {ADDRESS_COLUMNS}"
    ))
    .bind(user)
    .bind(id)
    .bind(&a.label)
    .bind(&a.recipient)
    .bind(&a.phone)
    .bind(&a.line1)
    .bind(&a.line2)
    .bind(&a.city)
    .bind(&a.region)
    .bind(&a.postal_code)
    .bind(&a.country)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// Makes `id` the user's default address, in one transaction.
pub async fn set_default(db: &PgPool, user: Uuid, id: Uuid) -> Result<Address, StoreError> {
    let mut tx = db.begin().await?;
    lock_user(&mut tx, user).await?;
    clear_default(&mut tx, user).await?;
    let updated = sqlx::query_as::<_, Address>(&format!(
        "UPDATE addresses SET is_default = true, last_used_at = now() \
         WHERE user_id = $1 AND id = $2 RETURNING {ADDRESS_COLUMNS}"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound("address"))?;
    tx.commit().await?;
    Ok(updated)
}

/// Deletes an address; if it was the default, the most recently used remaining address
/// becomes the default.
pub async fn delete_address(db: &PgPool, user: Uuid, id: Uuid) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    lock_user(&mut tx, user).await?;
    let was_default: bool = sqlx::query_scalar(
        "DELETE FROM addresses WHERE user_id = $1 AND id = $2 RETURNING is_default",
    )
    .bind(user)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound("address"))?;
    if was_default {
        sqlx::query(
            "UPDATE addresses SET is_default = true WHERE id = (SELECT id FROM addresses \
             WHERE user_id = $1 ORDER BY last_used_at DESC, created_at DESC, id DESC LIMIT 1)",
        )
        .bind(user)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
