//! wsgate: a transparent, WebSocket-aware reverse proxy.
//!
//! `proto` is the pure protocol core (frames, masking, UTF-8, close codes, handshake rules: no I/O);
//! `relay`, `proxy`, `server` and `admin` are the async layer over it; `config`, `routing` and `metrics`
//! stand on their own.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod demo;
pub mod drain;
pub mod listener;
pub mod metrics;
pub mod proto;
pub mod proxy;
pub mod relay;
pub mod routing;
pub mod server;
pub mod tls;
pub mod upstream;

pub use config::Config;
pub use server::{start, ReloadError, Running, StartError};
