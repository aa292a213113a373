//! The item service over HTTP against real PostgreSQL, Redis and Kafka (and, for an item's
//! images, the real image service): one test binary (zero2prod's layout), one module per
//! concern.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: scenarios read top to bottom

mod catalogue;
mod helpers;
mod images;
mod openapi;
mod stock;
