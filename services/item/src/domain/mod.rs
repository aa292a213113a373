//! The item service's domain values and pure rules, each built only through its parser.

pub mod catalogue;
pub mod listing;
pub mod stock;
