//! Per-client and per-tunnel limits (issue 14): integer token buckets with time passed in
//! (`bucket`).
//! No I/O, no clock reads, no async: the upgrade path and the relay pass `now_ms` in.

pub mod bucket;
