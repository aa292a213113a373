//! A review's fields. The only way to build them is through their parsers.

use kommerce_kit::http::ApiError;
use kommerce_kit::validate::Fields;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 5_000;
pub const MAX_IMAGES: usize = 10;

/// 1 to 5 stars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rating(u8);

impl Rating {
    pub fn parse(n: i64) -> Result<Self, String> {
        u8::try_from(n)
            .ok()
            .filter(|n| (1..=5).contains(n))
            .map(Self)
            .ok_or_else(|| "must be a whole number from 1 to 5".into())
    }

    pub fn get(self) -> i16 {
        i16::from(self.0)
    }
}

/// Trimmed, at most `max` characters; line breaks and tabs allowed, other control characters
/// not; at least one character when `required`.
fn prose(input: &str, max: usize, required: bool) -> Result<String, String> {
    let t = input.trim();
    if required && t.is_empty() {
        return Err("must not be empty".into());
    }
    if t.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if t.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err("must not contain control characters".into());
    }
    Ok(t.to_owned())
}

pub fn title(input: &str) -> Result<String, String> {
    prose(input, MAX_TITLE, false).and_then(|t| {
        if t.contains(['\n', '\r']) {
            Err("must be a single line".into())
        } else {
            Ok(t)
        }
    })
}

pub fn body(input: &str) -> Result<String, String> {
    prose(input, MAX_BODY, true)
}

/// At most `MAX_IMAGES` distinct ids.
pub fn image_ids(ids: &[Uuid]) -> Result<Vec<Uuid>, String> {
    if ids.len() > MAX_IMAGES {
        return Err(format!("at most {MAX_IMAGES} images"));
    }
    let mut seen = Vec::with_capacity(ids.len());
    for id in ids {
        if seen.contains(id) {
            return Err("must not repeat an image".into());
        }
        seen.push(*id);
    }
    Ok(seen)
}

/// A review of an item the caller bought (`POST /api/v1/reviews` as sent). Text is trimmed
/// first; lengths count characters. A title is one line (tabs allowed), a body may hold line
/// breaks and tabs; no other control characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReviewBody {
    /// An item the caller has a paid, not-cancelled order for.
    pub item_id: Uuid,
    /// Stars, 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i64,
    /// One line of at most 200 characters; empty when absent.
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\x00-\x08\x0A-\x1F\x7F-\x9F]*$")]
    pub title: String,
    /// 1 to 5000 characters; line breaks allowed.
    #[schema(
        min_length = 1,
        max_length = 5000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
    )]
    pub body: String,
    /// At most 10 distinct images the caller uploaded and that belong to nothing else
    /// (`POST /api/v1/images`), in the order shown; none when absent.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeSet<Uuid>, max_items = 10)]
    pub image_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub item_id: Uuid,
    pub rating: Rating,
    pub title: String,
    pub body: String,
    pub image_ids: Vec<Uuid>,
}

impl TryFrom<NewReviewBody> for NewReview {
    type Error = ApiError;

    fn try_from(b: NewReviewBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        let rating = f.check("rating", Rating::parse(b.rating));
        let title = f.check("title", title(&b.title));
        let body = f.check("body", body(&b.body));
        let images = f.check("image_ids", image_ids(&b.image_ids));
        f.finish()?;
        match (rating, title, body, images) {
            (Some(rating), Some(title), Some(body), Some(image_ids)) => Ok(Self {
                item_id: b.item_id,
                rating,
                title,
                body,
                image_ids,
            }),
            _ => Err(ApiError::internal("fields passed but a value is missing")),
        }
    }
}

/// Changes to a review (`PATCH /api/v1/reviews/{id}` as sent): absent fields stay as they
/// are, and at least one must be given. The same rules as a new review's fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewPatchBody {
    /// Stars, 1 to 5.
    #[schema(minimum = 1, maximum = 5, nullable = false)]
    pub rating: Option<i64>,
    /// One line of at most 200 characters; empty clears it.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x08\x0A-\x1F\x7F-\x9F]*$",
        nullable = false
    )]
    pub title: Option<String>,
    /// 1 to 5000 characters; line breaks allowed.
    #[schema(
        min_length = 1,
        max_length = 5000,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$",
        nullable = false
    )]
    pub body: Option<String>,
    /// The review's images from now on (at most 10, distinct): new ones are attached as in a
    /// new review, those left out are deleted; `[]` removes them all.
    #[schema(value_type = Option<std::collections::BTreeSet<Uuid>>, max_items = 10, nullable = false)]
    pub image_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewPatch {
    pub rating: Option<Rating>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub image_ids: Option<Vec<Uuid>>,
}

impl TryFrom<ReviewPatchBody> for ReviewPatch {
    type Error = ApiError;

    fn try_from(b: ReviewPatchBody) -> Result<Self, ApiError> {
        let mut f = Fields::new();
        if b.rating.is_none() && b.title.is_none() && b.body.is_none() && b.image_ids.is_none() {
            f.add(
                "body",
                "nothing to change: give rating, title, body or image_ids",
            );
        }
        let rating = f.check_opt("rating", b.rating, Rating::parse);
        let title = f.check_opt("title", b.title.as_deref(), title);
        let body = f.check_opt("body", b.body.as_deref(), body);
        let images = f.check_opt("image_ids", b.image_ids.as_deref(), image_ids);
        f.finish()?;
        Ok(Self {
            rating: rating.flatten(),
            title: title.flatten(),
            body: body.flatten(),
            image_ids: images.flatten(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_one_to_five() {
        for n in 1..=5 {
            assert_eq!(Rating::parse(n).unwrap().get(), i16::try_from(n).unwrap());
        }
        for n in [0, 6, -1, 256, i64::MAX] {
            assert!(Rating::parse(n).is_err(), "{n}");
        }
    }

    #[test]
    fn titles_and_bodies() {
        assert_eq!(title("  Great pot "), Ok("Great pot".into()));
        assert_eq!(title(""), Ok(String::new()), "a title may be empty");
        assert!(title(&"x".repeat(201)).is_err());
        assert!(title(&"é".repeat(200)).is_ok(), "characters, not bytes");
        assert!(title("two\nlines").is_err());
        assert!(body("   ").is_err());
        assert_eq!(
            body("Line one.\nLine two."),
            Ok("Line one.\nLine two.".into())
        );
        assert!(body(&"x".repeat(5_000)).is_ok());
        assert!(body(&"x".repeat(5_001)).is_err());
        assert!(body("bell\u{7}").is_err());
    }

    #[test]
    fn a_patch_must_change_something() {
        let patch = |json: &str| {
            ReviewPatch::try_from(serde_json::from_str::<ReviewPatchBody>(json).unwrap())
        };
        match patch("{}") {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].field, "body"),
            other => panic!("expected 422, got {other:?}"),
        }
        assert_eq!(
            patch(r#"{"rating":4}"#).unwrap().rating.map(Rating::get),
            Some(4)
        );
    }

    #[test]
    fn image_ids_are_few_and_distinct() {
        let a = Uuid::new_v4();
        assert_eq!(image_ids(&[a]), Ok(vec![a]));
        assert!(image_ids(&[a, a]).is_err());
        let many: Vec<Uuid> = (0..11).map(|_| Uuid::new_v4()).collect();
        assert!(image_ids(&many).is_err());
    }

    #[test]
    fn a_new_review_names_every_bad_field() {
        let err = NewReview::try_from(NewReviewBody {
            item_id: Uuid::new_v4(),
            rating: 6,
            title: "t".repeat(201),
            body: String::new(),
            image_ids: vec![],
        })
        .unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected 422")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rating", "title", "body"]);
    }
}
