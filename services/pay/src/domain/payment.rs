//! A payment request, parsed: the selected cart lines, the address, the amount the client
//! expects to pay and the method.

use std::collections::HashSet;

use kommerce_kit::http::ApiError;
use kommerce_kit::validate::Fields;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_LINES: usize = 50;

/// A checkout: which of the caller's cart lines, where to, the total the caller expects and
/// how to pay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// Distinct lines of the caller's cart.
    #[schema(min_items = 1, max_items = 50)]
    pub cart_line_ids: Vec<Uuid>,
    /// One of the caller's addresses.
    pub address_id: Uuid,
    /// The total of the lines at current prices: a stale total is refused, naming it.
    #[schema(minimum = 1)]
    pub amount_minor: i64,
    #[schema(value_type = Method)]
    pub method: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PaymentMethod)]
pub enum Method {
    Wallet,
    Card,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wallet => "wallet",
            Self::Card => "card",
        }
    }
}

/// A request that passed every check that needs no other service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentRequest {
    pub cart_line_ids: Vec<Uuid>,
    pub address_id: Uuid,
    pub amount_minor: i64,
    pub method: Method,
}

impl TryFrom<PaymentBody> for PaymentRequest {
    type Error = ApiError;
    fn try_from(b: PaymentBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        if b.cart_line_ids.is_empty() || b.cart_line_ids.len() > MAX_LINES {
            f.add(
                "cart_line_ids",
                format!("must name 1 to {MAX_LINES} cart lines"),
            );
        }
        let distinct: HashSet<_> = b.cart_line_ids.iter().collect();
        if distinct.len() != b.cart_line_ids.len() {
            f.add("cart_line_ids", "must not name a line twice");
        }
        if b.amount_minor <= 0 {
            f.add("amount_minor", "must be positive");
        }
        let method = match b.method.as_str() {
            "wallet" => Some(Method::Wallet),
            "card" => Some(Method::Card),
            _ => {
                f.add("method", "must be wallet or card");
                None
            }
        };
        f.finish()?;
        Ok(Self {
            cart_line_ids: b.cart_line_ids,
            address_id: b.address_id,
            amount_minor: b.amount_minor,
            method: method.unwrap_or(Method::Wallet),
        })
    }
}

impl PaymentRequest {
    /// The request's fingerprint for idempotency: the same request in any line order or
    /// spacing has the same hash.
    pub fn fingerprint(&self) -> String {
        let mut ids = self.cart_line_ids.clone();
        ids.sort();
        let canonical = format!(
            "{}|{}|{}|{}",
            ids.iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(","),
            self.address_id,
            self.amount_minor,
            self.method.as_str()
        );
        kommerce_kit::digest::sha256_hex(canonical.as_bytes(), 32)
    }
}

/// A top-up amount within `1..=max`.
pub fn top_up(amount: i64, max: i64) -> Result<i64, String> {
    if (1..=max).contains(&amount) {
        Ok(amount)
    } else {
        Err(format!("must be from 1 to {max}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(ids: Vec<Uuid>, amount: i64, method: &str) -> PaymentBody {
        PaymentBody {
            cart_line_ids: ids,
            address_id: Uuid::nil(),
            amount_minor: amount,
            method: method.into(),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let a = Uuid::now_v7();
        let Err(ApiError::Validation(errors)) =
            PaymentRequest::try_from(body(vec![a, a], 0, "cash"))
        else {
            panic!("must fail")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["cart_line_ids", "amount_minor", "method"]);
        let Err(ApiError::Validation(errors)) = PaymentRequest::try_from(body(vec![], 10, "card"))
        else {
            panic!("an empty line list must be refused")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["cart_line_ids"]);
    }

    #[test]
    fn the_fingerprint_ignores_line_order_but_not_content() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let p = |ids, amount| PaymentRequest::try_from(body(ids, amount, "wallet")).unwrap();
        assert_eq!(
            p(vec![a, b], 5).fingerprint(),
            p(vec![b, a], 5).fingerprint()
        );
        assert_ne!(
            p(vec![a, b], 5).fingerprint(),
            p(vec![a, b], 6).fingerprint()
        );
        assert_ne!(p(vec![a], 5).fingerprint(), p(vec![a, b], 5).fingerprint());
    }

    #[test]
    fn totals_and_top_ups() {
        assert_eq!(top_up(500, 1000), Ok(500));
        assert_eq!(top_up(1000, 1000), Ok(1000));
        let refused = Err("must be from 1 to 1000".to_owned());
        assert_eq!(top_up(0, 1000), refused);
        assert_eq!(top_up(1001, 1000), refused);
    }
}
