//! The kit against real PostgreSQL, Redis and Kafka: one test binary, a module per part.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod auth;
mod cache;
mod jwks;
mod messaging;
