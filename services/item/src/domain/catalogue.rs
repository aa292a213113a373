//! Categories and items as requests describe them.

use kommerce_kit::http::ApiError;
use kommerce_kit::validate::{Fields, text};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub const MAX_PRICE_MINOR: i64 = 1_000_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_IMAGES: usize = 10;

/// Whether an item is sold: `hidden` items leave the listing (their page still resolves); only
/// `on_sale` items can be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ItemStatus)]
pub enum Status {
    OnSale,
    SoldOut,
    Hidden,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnSale => "on_sale",
            Self::SoldOut => "sold_out",
            Self::Hidden => "hidden",
        }
    }
}

/// Absent → `None` (keep); `null` → `Some(None)`; a value → `Some(Some(v))`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn category_name(s: &str) -> Result<String, String> {
    text(s, 1, 100)
}

/// A new category: a root, or under `parent_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryBody {
    /// Trimmed; 1 to 100 characters, no control characters; unique among its siblings
    /// (case-insensitively).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// An existing category; absent or `null` makes a root.
    pub parent_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCategory {
    pub name: String,
    pub parent_id: Option<Uuid>,
}

impl TryFrom<CategoryBody> for NewCategory {
    type Error = ApiError;
    fn try_from(b: CategoryBody) -> Result<Self, ApiError> {
        let name = category_name(&b.name).map_err(|m| ApiError::field("name", m))?;
        Ok(Self {
            name,
            parent_id: b.parent_id,
        })
    }
}

/// A category change: at least one of `name` and `parent_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatchBody {
    /// The new name, as on creation; absent or `null` keeps it.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    /// The new parent (never the category itself or one of its descendants); `null` moves the
    /// category to the root, absent keeps it where it is.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryPatch {
    pub name: Option<String>,
    pub parent_id: Option<Option<Uuid>>,
}

impl TryFrom<CategoryPatchBody> for CategoryPatch {
    type Error = ApiError;
    fn try_from(b: CategoryPatchBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let name = f
            .check_opt("name", b.name.as_deref(), category_name)
            .flatten();
        if b.name.is_none() && b.parent_id.is_none() {
            f.add("body", "nothing to change: give name or parent_id");
        }
        f.finish()?;
        Ok(Self {
            name,
            parent_id: b.parent_id,
        })
    }
}

fn item_name(s: &str) -> Result<String, String> {
    text(s, 1, 200)
}

fn description(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.chars().count() > 5_000 {
        return Err("must be at most 5000 characters".into());
    }
    Ok(t.to_owned())
}

fn price(p: i64) -> Result<i64, String> {
    if p < 0 {
        Err("must not be negative".into())
    } else if p > MAX_PRICE_MINOR {
        Err(format!("must be at most {MAX_PRICE_MINOR}"))
    } else {
        Ok(p)
    }
}

fn initial_stock(s: i64) -> Result<i32, String> {
    if !(0..=MAX_STOCK).contains(&s) {
        return Err(format!("must be between 0 and {MAX_STOCK}"));
    }
    i32::try_from(s).map_err(|_| "out of range".to_owned())
}

fn images(ids: Vec<Uuid>) -> Result<Vec<Uuid>, String> {
    if ids.len() > MAX_IMAGES {
        return Err(format!("at most {MAX_IMAGES} images"));
    }
    let mut seen = ids.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != ids.len() {
        return Err("must not repeat an image".into());
    }
    Ok(ids)
}

/// A new item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    /// Trimmed; 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// Trimmed; at most 5000 characters (default empty).
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub price_minor: i64,
    /// An existing category.
    pub category_id: Uuid,
    /// Absent or `null`: `on_sale`.
    pub status: Option<Status>,
    /// The initial stock (default 0), recorded in the ledger as `initial`.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: i64,
    /// Images the caller uploaded to the image service and that belong to nothing yet, in
    /// display order (default none). An image that cannot be attached is a 422 naming
    /// `image_ids[i]`.
    #[serde(default)]
    #[schema(value_type = BTreeSet<Uuid>, max_items = 10)]
    pub image_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub name: String,
    pub description: String,
    pub price_minor: i64,
    pub category_id: Uuid,
    pub status: Status,
    pub stock: i32,
    pub image_ids: Vec<Uuid>,
}

impl TryFrom<ItemBody> for NewItem {
    type Error = ApiError;
    fn try_from(b: ItemBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let name = f.check("name", item_name(&b.name));
        let description = f.check("description", description(&b.description));
        let price_minor = f.check("price_minor", price(b.price_minor));
        let stock = f.check("stock", initial_stock(b.stock));
        let image_ids = f.check("image_ids", images(b.image_ids));
        f.finish()?;
        let missing = || ApiError::internal("validation passed without values");
        Ok(Self {
            name: name.ok_or_else(missing)?,
            description: description.ok_or_else(missing)?,
            price_minor: price_minor.ok_or_else(missing)?,
            category_id: b.category_id,
            status: b.status.unwrap_or(Status::OnSale),
            stock: stock.ok_or_else(missing)?,
            image_ids: image_ids.ok_or_else(missing)?,
        })
    }
}

/// An item change: at least one field; absent or `null` keeps a field. Stock is not here: it
/// changes only through the stock endpoints, so the ledger explains every unit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemPatchBody {
    /// Trimmed; 1 to 200 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    /// Trimmed; at most 5000 characters.
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub price_minor: Option<i64>,
    /// An existing category.
    pub category_id: Option<Uuid>,
    pub status: Option<Status>,
    /// The item's images from now on, in display order: new ones are attached (as on
    /// creation), dropped ones are deleted.
    #[schema(value_type = Option<BTreeSet<Uuid>>, max_items = 10)]
    pub image_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub category_id: Option<Uuid>,
    pub status: Option<Status>,
    pub image_ids: Option<Vec<Uuid>>,
}

impl TryFrom<ItemPatchBody> for ItemPatch {
    type Error = ApiError;
    fn try_from(b: ItemPatchBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let empty = b.name.is_none()
            && b.description.is_none()
            && b.price_minor.is_none()
            && b.category_id.is_none()
            && b.status.is_none()
            && b.image_ids.is_none();
        if empty {
            f.add("body", "nothing to change");
        }
        let patch = Self {
            name: f.check_opt("name", b.name.as_deref(), item_name).flatten(),
            description: f
                .check_opt("description", b.description.as_deref(), description)
                .flatten(),
            price_minor: f.check_opt("price_minor", b.price_minor, price).flatten(),
            category_id: b.category_id,
            status: b.status,
            image_ids: f.check_opt("image_ids", b.image_ids, images).flatten(),
        };
        f.finish()?;
        Ok(patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> ItemBody {
        ItemBody {
            name: "Tea pot".into(),
            description: "Cast iron".into(),
            price_minor: 2599,
            category_id: Uuid::new_v4(),
            status: None,
            stock: 10,
            image_ids: vec![],
        }
    }

    #[test]
    fn items_parse_with_defaults() {
        let i = NewItem::try_from(body()).unwrap();
        assert_eq!(
            (i.status, i.stock, i.price_minor),
            (Status::OnSale, 10, 2599)
        );
    }

    #[test]
    fn bad_items_name_each_field() {
        let id = Uuid::new_v4();
        let b = ItemBody {
            name: " ".into(),
            price_minor: -1,
            stock: -5,
            image_ids: vec![id, id],
            ..body()
        };
        let Err(ApiError::Validation(e)) = NewItem::try_from(b) else {
            panic!("422 expected")
        };
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "price_minor", "stock", "image_ids"]);
    }

    #[test]
    fn empty_patches_are_refused() {
        let empty = ItemPatchBody {
            name: None,
            description: None,
            price_minor: None,
            category_id: None,
            status: None,
            image_ids: None,
        };
        assert!(ItemPatch::try_from(empty).is_err());
        let c: CategoryPatchBody = serde_json::from_str(r#"{"parent_id": null}"#).unwrap();
        assert_eq!(
            CategoryPatch::try_from(c).unwrap().parent_id,
            Some(None),
            "null moves to the root"
        );
    }
}
