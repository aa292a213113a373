//! The pay service's rules, pure and unit-tested: what a payment request may say, what it
//! must cost, and a payment's life.

pub mod payment;
pub mod status;
