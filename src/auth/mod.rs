//! Client authentication on the upgrade path (issue 14): where a credential comes from and how it
//! is removed before the request goes upstream (`token`), JWT keys and verification (`jwt`), and
//! the forward-auth client (`forward`).

pub mod forward;
pub mod jwt;
mod keys;
pub mod token;
