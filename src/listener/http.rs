//! HTTP/1.1 on one client connection (plain or TLS): hyper with upgrades, the listener's head size
//! and head timeout, each request handed to the proxy generation current at that moment, and a
//! graceful close when a drain starts. A connection that chose HTTP/2 (ALPN `h2`, or the preface on
//! a plain listener with `http2: true`) is served by `h2.rs` instead.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

use super::{ConnectionSlot, SharedProxy};
use crate::config::ListenerConfig;
use crate::metrics::Transport;

/// A client's byte stream, plain or TLS.
pub(super) trait ClientStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> ClientStream for T {}

/// Which HTTP a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    Http1,
    Http2,
}

pub(super) async fn serve<I: ClientStream>(
    io: TokioIo<I>,
    peer: SocketAddr,
    proxy: SharedProxy,
    config: &ListenerConfig,
    slot: Arc<ConnectionSlot>,
    version: Version,
) {
    if let (Version::Http2, Some(settings)) = (version, config.http2) {
        // Boxed: hyper's HTTP/2 connection is large, and plain connections must not reserve it.
        return Box::pin(super::h2::serve(io, peer, proxy, config, settings, slot)).await;
    }
    // Boxed, and gone before the tunnel starts: hyper's connection state is needed only until the
    // 101, and an idle tunnel's memory is mostly the size of this task's future.
    Box::pin(http1(io, peer, proxy, config, slot.clone())).await;
    // An upgrade ends hyper's connection once the 101 is out; the tunnel continues in this task.
    if let Some(tunnel) = slot.take_tunnel() {
        tunnel.into_relay(slot).await;
    }
}

/// hyper's HTTP/1 connection, until it ends or hands its stream to an upgrade.
async fn http1<I: ClientStream>(
    io: TokioIo<I>,
    peer: SocketAddr,
    proxy: SharedProxy,
    config: &ListenerConfig,
    slot: Arc<ConnectionSlot>,
) {
    let mut drain = proxy.load().drain.clone();
    let service = service_fn(move |req| {
        proxy
            .load_full()
            .handle(req, peer, slot.clone(), Transport::H1)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(config.handshake_timeout)
        .max_header_size(config.max_request_head_size)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = drain.started() => {
            // The request in flight (if any) finishes; then the connection closes.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "client connection ended with an error");
    }
}
