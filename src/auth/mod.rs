//! Client authentication on the upgrade path (issue 14): where a credential comes from and how it
//! is removed before the request goes upstream (`token`), and JWT keys and verification (`jwt`).
//! No I/O beyond reading the key file.

pub mod jwt;
mod keys;
pub mod token;
