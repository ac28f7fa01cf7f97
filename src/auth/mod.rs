//! Access control at the upgrade: JWT verification and forward auth.

pub mod forward;
