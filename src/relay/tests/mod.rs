//! Tunnel tests over in-memory legs under tokio's paused clock: exact bytes and close codes at both
//! ends, and when the tunnel ends. None touches a socket or waits on real time.

mod close;
mod idle;
mod limits;
mod live;
mod sizes;
mod timers;
mod tls;
mod violations;
mod writes;
