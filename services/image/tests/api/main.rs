//! The image service over HTTP against real PostgreSQL and a local object store.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: scenarios read top to bottom

mod helpers;
mod images;
mod openapi;
