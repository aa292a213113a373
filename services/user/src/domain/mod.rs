//! The user service's domain values. Each is built only through its parser, so a value that
//! exists is a valid one; the parsers are pure and table-tested here.

mod address;
mod user;

/// The request bodies the parsers take, for the routes.
pub mod address_bodies {
    pub use super::address::{AddressBody, AddressPatchBody};
}

pub use address::{AddressPatch, MAX_ADDRESSES, NewAddress};
pub use user::{
    Email, NewUser, Password, PasswordChange, Phone, ProfileBody, ProfilePatch, SignupBody,
};
