//! The platform as separate OS processes, as `kommerce up` runs it (see `platform.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/live.rs"]
mod live;

mod bench;
mod contract;
mod platform;
mod redis_loss;
mod rotation;
mod storefront;
