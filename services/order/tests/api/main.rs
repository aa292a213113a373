//! The order service over HTTP and Kafka, against real PostgreSQL, Redis and Kafka, with stub
//! peers: one test binary (zero2prod's layout), one module per resource.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod cart;
mod helpers;
mod internal;
mod openapi;
mod orders;
mod saga;
