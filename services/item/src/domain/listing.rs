//! `GET /api/v1/items` query parameters, parsed into a [`ListQuery`]: every bad value is a 422
//! naming the parameter. Paging is keyset: the cursor carries the last row's sort key and id.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kommerce_kit::http::ApiError;
use kommerce_kit::validate::Fields;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// The orders of the listing: `newest` first (the default), `price_asc`, `price_desc`,
/// `rating` (best rated first), `best_selling` (most sold first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[schema(as = ItemSort, rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
    Rating,
    BestSelling,
}

impl Sort {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "newest" => Self::Newest,
            "price_asc" => Self::PriceAsc,
            "price_desc" => Self::PriceDesc,
            "rating" => Self::Rating,
            "best_selling" => Self::BestSelling,
            _ => {
                return Err(
                    "must be one of newest, price_asc, price_desc, rating, best_selling".into(),
                );
            }
        })
    }

    /// The SQL expression the rows are ordered by (then by id, in the same direction).
    pub fn column(self) -> &'static str {
        match self {
            Self::Newest => "items.created_at",
            Self::PriceAsc | Self::PriceDesc => "items.price_minor",
            Self::Rating => "items.rating_avg",
            Self::BestSelling => "items.sold_count",
        }
    }

    pub fn ascending(self) -> bool {
        matches!(self, Self::PriceAsc)
    }
}

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The last row's sort key: a number, or RFC 3339 time for `newest`.
    pub k: serde_json::Value,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(s: &str) -> Result<Self, String> {
        let bad = || "is not a cursor this API issued".to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    pub category: Option<Uuid>,
    /// Prefix full-text query (`word:* & word:*`) and the raw text for word-similarity (trigram)
    /// matching, which forgives typos.
    pub keyword: Option<(String, String)>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: bool,
    pub sort: Sort,
    pub cursor: Option<Cursor>,
    pub limit: i64,
}

/// `"Blue tea-pot"` → `blue:* & tea:* & pot:*`: every word matches as a prefix.
pub fn prefix_tsquery(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(10)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

fn non_negative(v: &str) -> Result<i64, String> {
    let n: i64 = v
        .parse()
        .map_err(|_| "must be a whole number of minor units".to_owned())?;
    if n < 0 {
        Err("must not be negative".into())
    } else {
        Ok(n)
    }
}

impl ListQuery {
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        const KNOWN: [&str; 8] = [
            "category",
            "q",
            "min_price",
            "max_price",
            "in_stock",
            "sort",
            "cursor",
            "limit",
        ];
        let mut f = Fields::new();
        let mut unknown: Vec<&String> = params
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()))
            .collect();
        unknown.sort();
        for k in unknown {
            f.add(k, "is not a known parameter");
        }
        let get = |k: &str| params.get(k).map(String::as_str);
        let category = f
            .check_opt("category", get("category"), |v| {
                v.parse::<Uuid>()
                    .map_err(|_| "must be a category id".into())
            })
            .flatten();
        let keyword = f
            .check_opt("q", get("q"), |v| {
                let v = v.trim();
                if v.chars().count() > 100 {
                    return Err("must be at most 100 characters".into());
                }
                prefix_tsquery(v)
                    .map(|ts| (ts, v.to_owned()))
                    .ok_or_else(|| "must contain a letter or digit".into())
            })
            .flatten();
        let min_price = f
            .check_opt("min_price", get("min_price"), non_negative)
            .flatten();
        let max_price = f
            .check_opt("max_price", get("max_price"), non_negative)
            .flatten();
        if let (Some(lo), Some(hi)) = (min_price, max_price) {
            if lo > hi {
                f.add("max_price", "must not be below min_price");
            }
        }
        let in_stock = f
            .check_opt("in_stock", get("in_stock"), |v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err("must be true or false".into()),
            })
            .flatten()
            .unwrap_or(false);
        let sort = f
            .check_opt("sort", get("sort"), Sort::parse)
            .flatten()
            .unwrap_or_default();
        let cursor = f
            .check_opt("cursor", get("cursor"), Cursor::decode)
            .flatten();
        let limit = f
            .check_opt("limit", get("limit"), |v| match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(format!("must be a number from 1 to {MAX_LIMIT}")),
            })
            .flatten()
            .unwrap_or(DEFAULT_LIMIT);
        f.finish()?;
        Ok(Self {
            category,
            keyword,
            min_price,
            max_price,
            in_stock,
            sort,
            cursor,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, Vec<String>> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ListQuery::parse(&map).map_err(|e| match e {
            ApiError::Validation(errs) => errs.into_iter().map(|e| e.field).collect(),
            other => vec![other.to_string()],
        })
    }

    #[test]
    fn defaults() {
        let q = parse(&[]).unwrap();
        assert_eq!((q.limit, q.sort, q.in_stock), (20, Sort::Newest, false));
    }

    #[test]
    fn each_bad_parameter_is_named() {
        let cases: [(&[(&str, &str)], &str); 10] = [
            (&[("limit", "0")], "limit"),
            (&[("limit", "101")], "limit"),
            (&[("sort", "cheapest")], "sort"),
            (&[("min_price", "-1")], "min_price"),
            (&[("max_price", "abc")], "max_price"),
            (&[("min_price", "10"), ("max_price", "5")], "max_price"),
            (&[("category", "shoes")], "category"),
            (&[("cursor", "!!!")], "cursor"),
            (&[("q", "  -- ")], "q"),
            (&[("colour", "red")], "colour"),
        ];
        for (pairs, field) in cases {
            assert_eq!(parse(pairs).unwrap_err(), [field], "{pairs:?}");
        }
    }

    #[test]
    fn the_documented_sorts_are_the_parsed_ones() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(Sort::schema()).unwrap();
        let names: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 5);
        for name in names {
            assert!(Sort::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn cursors_round_trip_and_keywords_become_prefix_queries() {
        let c = Cursor {
            k: serde_json::json!(1999),
            id: Uuid::new_v4(),
        };
        let q = parse(&[("cursor", &c.encode()), ("q", "Blue tea-Pot")]).unwrap();
        assert_eq!(q.cursor, Some(c));
        assert_eq!(q.keyword.unwrap().0, "blue:* & tea:* & pot:*");
    }
}
