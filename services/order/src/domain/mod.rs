//! The order service's rules, pure and unit-tested: cart limits and the order state machine.

pub mod cart;
pub mod status;
