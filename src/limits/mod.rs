//! Per-client and per-tunnel limits (issue 14): integer token buckets with time passed in
//! (`bucket`) and the bounded per-client-IP table of tunnel counts and handshake rates (`clients`).
//! No I/O, no clock reads, no async: the upgrade path and the relay pass `now_ms` in.

pub mod bucket;
pub mod clients;
