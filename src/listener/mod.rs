//! One proxy listener: each accepted connection takes a slot (within `max_connections`), reads its
//! PROXY header when the listener wants one, completes TLS when configured, then is served as
//! HTTP/1.1 with upgrades or as HTTP/2 (ALPN `h2`, or prior knowledge where `http2: true`). The current proxy generation is loaded per request, so that a reload
//! applies to new requests at once.

mod accept;
mod h2;
mod http;
mod preface;
mod proxy_header;
mod slots;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::ListenerConfig;
use crate::proxy::Proxy;

pub(crate) use accept::accept_forever;
pub use slots::ConnectionSlot;

/// A listener's options and, for TLS, its acceptor (built when the config is loaded, not per
/// connection).
#[derive(Clone)]
pub struct ListenerSettings {
    pub config: ListenerConfig,
    pub tls: Option<TlsAcceptor>,
    /// The listener's name, shared by its connections' tunnels (for `/tunnels`).
    pub name: Arc<str>,
}

impl ListenerSettings {
    pub fn new(config: &ListenerConfig) -> Result<Self, crate::tls::TlsError> {
        let tls = match &config.tls {
            Some(tls) => Some(TlsAcceptor::from(crate::tls::server_config(
                tls,
                config.http2.is_some(),
            )?)),
            None => None,
        };
        Ok(ListenerSettings {
            config: config.clone(),
            tls,
            name: config.name.as_str().into(),
        })
    }
}

pub type SharedProxy = Arc<ArcSwap<Proxy>>;

/// Accepts until the task is aborted. `settings` follows reloads of this listener's options.
pub(crate) async fn accept_loop(
    socket: TcpListener,
    proxy: SharedProxy,
    settings: watch::Receiver<Arc<ListenerSettings>>,
) {
    let slots = slots::Slots::default();
    accept_forever(socket, "listener", |stream, peer| {
        // Shared, not copied, per accept.
        let settings = settings.borrow().clone();
        let tls = settings.tls.is_some();
        let Some(slot) = slots.admit(&stream, peer, &settings, &proxy.load(), tls) else {
            return;
        };
        // Boxed before it is spawned: the connection future is several KiB (hyper's dispatcher, the
        // upgrade, the relay), and tokio moves a spawned future by value several times.
        tokio::spawn(Box::pin(connection(
            stream,
            peer,
            proxy.clone(),
            settings,
            slot,
        )));
    })
    .await
}

/// One accepted connection, from its first byte to the end of its HTTP connection (a tunnel it
/// becomes holds `slot` on its own).
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    proxy: SharedProxy,
    settings: Arc<ListenerSettings>,
    slot: Arc<ConnectionSlot>,
) {
    let config = &settings.config;
    let peer = if config.proxy_protocol {
        match proxy_header::read(&mut stream, config.handshake_timeout).await {
            Ok(source) => source.unwrap_or(peer),
            Err(e) => {
                tracing::debug!(listener = %config.name, %peer, error = %e, "connection refused");
                return;
            }
        }
    } else {
        peer
    };
    let _ = stream.set_nodelay(true);
    match &settings.tls {
        None => {
            let version = match config.http2 {
                None => http::Version::Http1,
                Some(_) => match preface::sniff(&stream, config.handshake_timeout).await {
                    Ok(version) => version,
                    Err(e) => {
                        tracing::debug!(listener = %config.name, %peer, error = %e, "connection ended before a request");
                        return;
                    }
                },
            };
            http::serve(TokioIo::new(stream), peer, proxy, config, slot, version).await
        }
        // Boxed: a TLS stream and its handshake are several KiB, which a plain connection's
        // future (the storage of its tunnel) would otherwise reserve too.
        Some(acceptor) => Box::pin(tls(acceptor, stream, peer, proxy, config, slot)).await,
    }
}

async fn tls(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    proxy: SharedProxy,
    config: &ListenerConfig,
    slot: Arc<ConnectionSlot>,
) {
    let handshake = tokio::time::timeout(config.handshake_timeout, acceptor.accept(stream));
    match handshake.await {
        Ok(Ok(stream)) => {
            let version = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => http::Version::Http2,
                _ => http::Version::Http1,
            };
            http::serve(TokioIo::new(stream), peer, proxy, config, slot, version).await
        }
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The size of what `f` returns, without calling it (the proxy's task-size tests use it too).
    pub(crate) fn returned_size<A, B, C, D, F: std::future::Future>(
        _f: impl FnOnce(A, B, C, D) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// A tunnel runs in its client connection's task, so this future is most of an idle tunnel's
    /// memory: hyper's connection and the TLS path are boxed, and must stay out of it.
    #[test]
    fn a_connection_future_is_about_its_tunnel() {
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        let size = returned_size(
            |s: TcpStream, p: SharedProxy, l: Arc<ListenerSettings>, c: Arc<ConnectionSlot>| {
                connection(s, peer, p, l, c)
            },
        );
        let tunnel = returned_size(
            |t: Box<crate::proxy::PendingTunnel>, c: Arc<ConnectionSlot>, _: (), _: ()| {
                t.into_relay(c)
            },
        );
        println!("connection future: {size} bytes, tunnel: {tunnel} bytes");
        // Release builds measured 3,648 and 3,032 bytes (8,072 when hyper's connection and the TLS
        // handshake were inline).
        assert!(
            size <= tunnel + 1_024,
            "{size} bytes for a {tunnel}-byte tunnel"
        );
    }
}
