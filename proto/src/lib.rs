//! wsgate's protocol core: RFC 6455 frames and handshakes as plain functions and state machines over
//! byte slices and `http` types. It owns the frame header codec, masking, the streaming UTF-8
//! validator, close rules, violations, the frame tracker the relay drives, the handshake rules of both
//! legs, permessage-deflate (RFC 7692), the PROXY protocol header parser, and the HTTP/1.1 heads
//! and chunked bodies of the backend leg (`head`).
//!
//! It does no I/O: no tokio, no hyper, no sockets, no clocks; its dependencies are `http`, `base64`,
//! `sha1`, `flate2`, `httparse` and `thiserror`. Everything here is unit-tested and fuzzed with bytes.
#![forbid(unsafe_code)]

pub mod close;
pub mod close_code;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod head;
pub mod mask;
pub mod proxy_protocol;
pub mod tracker;
pub mod utf8;
pub mod violation;
