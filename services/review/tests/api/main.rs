//! The review service with its real peers (order, item, image) over HTTP.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // test code: scenarios read top to bottom

mod helpers;
mod openapi;
mod reviews;
