use kommerce_kit::http::ApiError;
use kommerce_kit::validate::{Fields, optional_text, text};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::Phone;

/// A user may keep at most this many addresses.
pub const MAX_ADDRESSES: i64 = 20;

fn postal_code(input: &str) -> Result<String, String> {
    let t = text(input, 2, 12)?;
    // Checked before upper-casing: Unicode case mapping grows some letters into several
    // ASCII ones ("ß" → "SS", "ﬃ" → "FFI"), which let longer codes than allowed be stored.
    if t.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        Ok(t.to_ascii_uppercase())
    } else {
        Err("must contain only letters, digits, spaces and dashes".into())
    }
}

/// An ISO 3166-1 alpha-2 code, upper-cased.
fn country(input: &str) -> Result<String, String> {
    let t = input.trim().to_ascii_uppercase();
    if t.len() == 2 && t.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(t)
    } else {
        Err("must be a two-letter ISO 3166-1 country code".into())
    }
}

fn line(input: &str) -> Result<String, String> {
    text(input, 1, 200)
}

fn short(input: &str) -> Result<String, String> {
    text(input, 1, 100)
}

/// A new shipping address. Text is trimmed first; lengths count characters; no text may hold
/// control characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserAddressBody)]
pub struct AddressBody {
    /// At most 50 characters, e.g. "Home"; blank or `null` is none.
    #[schema(max_length = 50, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub label: Option<String>,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub recipient: String,
    /// An optional leading `+` and 7 to 15 digits; spaces, dashes, dots and parentheses are
    /// accepted as separators and removed.
    #[schema(pattern = r"^ *\+?[ .()-]*(?:[0-9][ .()-]*){7,15}$")]
    pub phone: String,
    /// 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub line1: String,
    /// At most 200 characters; blank or `null` is none.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub line2: Option<String>,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub city: String,
    /// At most 100 characters; blank or `null` is none.
    #[schema(max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub region: Option<String>,
    /// 2 to 12 letters, digits, spaces and dashes; stored upper-cased.
    #[schema(
        min_length = 2,
        max_length = 12,
        pattern = r"^[A-Za-z0-9-][A-Za-z0-9 -]*[A-Za-z0-9-]$"
    )]
    pub postal_code: String,
    /// A two-letter ISO 3166-1 code, stored upper-cased.
    #[schema(pattern = r"^[A-Za-z]{2}$")]
    pub country: String,
    /// Make this the default address (the first address always is; false when absent).
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAddress {
    pub label: Option<String>,
    pub recipient: String,
    pub phone: Phone,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    pub country: String,
    pub default: bool,
}

impl TryFrom<AddressBody> for NewAddress {
    type Error = ApiError;

    fn try_from(b: AddressBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let label = f.check("label", optional_text(b.label.as_deref(), 50));
        let recipient = f.check("recipient", short(&b.recipient));
        let phone = f.check("phone", Phone::parse(&b.phone));
        let line1 = f.check("line1", line(&b.line1));
        let line2 = f.check("line2", optional_text(b.line2.as_deref(), 200));
        let city = f.check("city", short(&b.city));
        let region = f.check("region", optional_text(b.region.as_deref(), 100));
        let postal = f.check("postal_code", postal_code(&b.postal_code));
        let country = f.check("country", country(&b.country));
        f.finish()?;
        let missing = || ApiError::internal("validation passed without values");
        Ok(Self {
            label: label.ok_or_else(missing)?,
            recipient: recipient.ok_or_else(missing)?,
            phone: phone.ok_or_else(missing)?,
            line1: line1.ok_or_else(missing)?,
            line2: line2.ok_or_else(missing)?,
            city: city.ok_or_else(missing)?,
            region: region.ok_or_else(missing)?,
            postal_code: postal.ok_or_else(missing)?,
            country: country.ok_or_else(missing)?,
            default: b.default,
        })
    }
}

/// Absent → `None` (keep); `null` → `Some(None)` (clear); a value → `Some(Some(v))`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A change to a shipping address: the fields given change (at least one must be), the same
/// rules as a new address's fields. An absent field stays as it is; `null` clears `label`,
/// `line2` and `region`, and leaves any other field as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserAddressPatchBody)]
pub struct AddressPatchBody {
    /// At most 50 characters; blank or `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 50, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub label: Option<Option<String>>,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub recipient: Option<String>,
    /// An optional leading `+` and 7 to 15 digits; spaces, dashes, dots and parentheses are
    /// accepted as separators and removed.
    #[schema(pattern = r"^ *\+?[ .()-]*(?:[0-9][ .()-]*){7,15}$")]
    pub phone: Option<String>,
    /// 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub line1: Option<String>,
    /// At most 200 characters; blank or `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub line2: Option<Option<String>>,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub city: Option<String>,
    /// At most 100 characters; blank or `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub region: Option<Option<String>>,
    /// 2 to 12 letters, digits, spaces and dashes; stored upper-cased.
    #[schema(
        min_length = 2,
        max_length = 12,
        pattern = r"^[A-Za-z0-9-][A-Za-z0-9 -]*[A-Za-z0-9-]$"
    )]
    pub postal_code: Option<String>,
    /// A two-letter ISO 3166-1 code, stored upper-cased.
    #[schema(pattern = r"^[A-Za-z]{2}$")]
    pub country: Option<String>,
}

/// A partial address change; `Some(None)` on an optional line clears it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AddressPatch {
    pub label: Option<Option<String>>,
    pub recipient: Option<String>,
    pub phone: Option<Phone>,
    pub line1: Option<String>,
    pub line2: Option<Option<String>>,
    pub city: Option<String>,
    pub region: Option<Option<String>>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

impl TryFrom<AddressPatchBody> for AddressPatch {
    type Error = ApiError;

    fn try_from(b: AddressPatchBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let empty = b.label.is_none()
            && b.recipient.is_none()
            && b.phone.is_none()
            && b.line1.is_none()
            && b.line2.is_none()
            && b.city.is_none()
            && b.region.is_none()
            && b.postal_code.is_none()
            && b.country.is_none();
        if empty {
            f.add("body", "nothing to change");
        }
        let clearable = |v: Option<String>, max| optional_text(v.as_deref(), max);
        let patch = Self {
            label: f
                .check_opt("label", b.label, |v| clearable(v, 50))
                .flatten(),
            recipient: f
                .check_opt("recipient", b.recipient.as_deref(), short)
                .flatten(),
            phone: f
                .check_opt("phone", b.phone.as_deref(), Phone::parse)
                .flatten(),
            line1: f.check_opt("line1", b.line1.as_deref(), line).flatten(),
            line2: f
                .check_opt("line2", b.line2, |v| clearable(v, 200))
                .flatten(),
            city: f.check_opt("city", b.city.as_deref(), short).flatten(),
            region: f
                .check_opt("region", b.region, |v| clearable(v, 100))
                .flatten(),
            postal_code: f
                .check_opt("postal_code", b.postal_code.as_deref(), postal_code)
                .flatten(),
            country: f
                .check_opt("country", b.country.as_deref(), country)
                .flatten(),
        };
        f.finish()?;
        Ok(patch)
    }
}

#[cfg(test)]
mod tests {
    /// Found while documenting the API: such codes were stored longer than the documented 12
    /// characters (a response the schema refuses). A postal code is checked as given, before
    /// it is upper-cased.
    #[test]
    fn a_postal_code_that_upper_cases_into_more_letters_is_refused() {
        for grows in ["ßßßßßßß", "ﬃﬃﬃﬃﬃ", "ßb"] {
            assert!(super::postal_code(grows).is_err(), "{grows}");
        }
        assert_eq!(super::postal_code(" sw1y 4jh ").unwrap(), "SW1Y 4JH");
    }

    use super::*;

    fn body() -> AddressBody {
        AddressBody {
            label: Some("Home".into()),
            recipient: "Ada Lovelace".into(),
            phone: "+44 20 7946 0000".into(),
            line1: "12 St James's Square".into(),
            line2: Some("  ".into()),
            city: "London".into(),
            region: None,
            postal_code: "sw1y 4jh".into(),
            country: "gb".into(),
            default: false,
        }
    }

    #[test]
    fn a_valid_address_is_normalised() {
        let a = NewAddress::try_from(body()).unwrap();
        assert_eq!(a.country, "GB");
        assert_eq!(a.postal_code, "SW1Y 4JH");
        assert_eq!(a.line2, None, "blank optional line is absent");
        assert_eq!(a.phone.as_str(), "+442079460000");
    }

    #[test]
    fn bad_fields_are_all_named() {
        let b = AddressBody {
            country: "GBR".into(),
            postal_code: "#".into(),
            line1: String::new(),
            ..body()
        };
        let Err(ApiError::Validation(e)) = NewAddress::try_from(b) else {
            panic!("expected 422");
        };
        let fields: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["line1", "postal_code", "country"]);
    }

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let p: AddressPatchBody =
            serde_json::from_str(r#"{"line2": null, "city": "Paris"}"#).unwrap();
        let p = AddressPatch::try_from(p).unwrap();
        assert_eq!(p.line2, Some(None), "null clears");
        assert_eq!(p.label, None, "absent keeps");
        assert_eq!(p.city.as_deref(), Some("Paris"));
        let empty: AddressPatchBody = serde_json::from_str("{}").unwrap();
        assert!(AddressPatch::try_from(empty).is_err(), "empty patch is 422");
    }
}
