//! The size of the tunnel's future for each pair of stream types the proxy spawns: it is most of
//! an idle tunnel's memory, so a change that grows it shows here.

use std::future::Future;

use bytes::Bytes;
use tokio::net::TcpStream;

use super::super::{run, TunnelParams};

type ServerTls = Box<tokio_rustls::server::TlsStream<TcpStream>>;
type ClientTls = Box<tokio_rustls::client::TlsStream<TcpStream>>;

/// A bound with a little headroom over what was measured, to catch a change that grows it.
const MAX_FUTURE: usize = 2_432;

/// The size of what `f` returns, without calling it.
fn returned_size<A, B, F: Future>(_f: impl FnOnce(A, B, TunnelParams) -> F) -> usize {
    std::mem::size_of::<F>()
}

#[test]
fn relay_futures_stay_small() {
    let sizes = [
        (
            "tcp-tcp",
            returned_size(|c: TcpStream, u: TcpStream, p| run(c, Bytes::new(), u, Bytes::new(), p)),
        ),
        (
            "tcp-tls",
            returned_size(|c: TcpStream, u: ClientTls, p| run(c, Bytes::new(), u, Bytes::new(), p)),
        ),
        (
            "tls-tcp",
            returned_size(|c: ServerTls, u: TcpStream, p| run(c, Bytes::new(), u, Bytes::new(), p)),
        ),
        (
            "tls-tls",
            returned_size(|c: ServerTls, u: ClientTls, p| run(c, Bytes::new(), u, Bytes::new(), p)),
        ),
    ];
    for (pair, size) in sizes {
        println!("relay future {pair}: {size} bytes");
        // Debug builds measured 2,280-2,392 bytes (72 more with the rate gates and the policy box).
        assert!(size <= MAX_FUTURE, "{pair}: {size} bytes");
    }
}
