//! wsgate: a transparent, WebSocket-aware reverse proxy.
//!
//! The pure protocol core is the `wsgate-proto` crate (frames, masking, UTF-8, close codes, handshake
//! rules: no I/O); `relay`, `proxy`, `server` and `admin` are the async layer over it; `config`,
//! `routing`, `upstream` and `metrics` stand on their own. This library exports what the binary and
//! the integration tests use, and nothing else (README "Code map").
#![forbid(unsafe_code)]

mod admin;
mod auth;
mod config;
mod demo;
mod drain;
mod limits;
mod listener;
mod metrics;
mod proxy;
mod relay;
mod routing;
mod server;
mod sessions;
mod tls;
mod upstream;

pub use config::{Config, ConfigError};
pub use demo::{spawn_echo_backend, EXAMPLE_CONFIG};
pub use server::{start, ReloadError, Running, StartError};
/// The opaque value of a `sticky_cookie` naming an endpoint (tests check that it is stable).
pub use upstream::sticky::cookie_value as sticky_cookie_value;
