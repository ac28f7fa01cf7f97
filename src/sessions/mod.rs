//! The live tunnels of the process, for the admin API: a registry each tunnel enters when its
//! handshake succeeds and leaves when its relay ends, the filters of `/tunnels`, and each tunnel's
//! JSON. The registry is locked only as a tunnel enters or leaves and while a listing copies its
//! handles; what a listing shows is read from each tunnel's own atomics.

mod filter;
mod registry;
mod view;

pub use filter::{Filter, Pair};
pub use registry::{Registration, Registry};
pub use view::{tap_line, view, TapLine};
