//! Parse, don't validate: a review's fields, and the listing's sort and cursor.

pub mod listing;
pub mod review;
