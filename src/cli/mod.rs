//! The binary's client commands over the admin API (API.md "CLI"): `wsgate tunnels` and its
//! subcommands. They live in the binary, not the library: they only speak HTTP to a running wsgate.

mod client;
mod defaults;
mod error;
mod format;
mod list;
mod table;
mod tap;
pub mod tunnels;
