//! The pure protocol core: RFC 6455 frames and handshakes as plain functions and state machines over
//! byte slices and `http` types. No I/O, no tokio, no hyper: everything here is unit-tested with bytes.

pub mod close;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod proxy_protocol;
pub mod tracker;
pub mod utf8;
pub mod violation;
