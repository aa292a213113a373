//! The whole shop end to end in one process: the checkout saga on the real engines, and a
//! user's journey through the router. (`tests/platform` runs the platform as separate OS
//! processes: a binary of its own, since it needs the services' binaries built first.)

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

mod checkout;
mod dead_letters;
mod deadline;
mod journey;
