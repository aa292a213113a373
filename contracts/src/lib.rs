//! `kommerce-contracts`: what two Kommerce programs share, written once so that both sides
//! compile against the same types and a change breaks the build instead of production.
//!
//! - Events: [`saga`] (pay ↔ order), [`reviews`] (review → item).
//! - Internal APIs, one module and one client per serving service: [`item`] (catalogue view,
//!   stock reservations), [`image`] (attach, detach, delete), [`order`] (cart, purchases),
//!   [`user`] (addresses), [`pay`] (saga timeline).
//! - [`config`]: which configuration keys each service applies live (the operator rolls for
//!   the others).
//! - [`money`]: `Money` and `Quantity`, checked arithmetic, plain integers on the wire.
//! - [`stock_pool`]: the StockPool document the operator writes and the item service applies.
//!
//! Infrastructure (HTTP, the peer transport, messaging) is the kit's; this crate holds only
//! the shapes and the calls.

pub mod config;
pub mod image;
pub mod item;
pub mod money;
pub mod order;
pub mod pay;
pub mod reviews;
pub mod saga;
pub mod stock_pool;
pub mod user;
