//! The operator against a real Kubernetes control plane (scripts/control-plane.sh), real
//! Kafka and Redis: one test binary, a module per controller or concern.

#![allow(clippy::unwrap_used)] // helpers of tests: a failed unwrap is a failed test

mod binary;
mod chart;
mod control_plane;
mod crds;
mod leader;
mod saga_topic;
mod shop_service;
mod stock_pool;
mod support;
