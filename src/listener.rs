//! One listener: accept connections (within `max_connections`) and serve HTTP/1.1 on each with
//! upgrades enabled, loading the current proxy generation per request so that a reload applies to
//! new requests at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::ListenerConfig;
use crate::drain::{Live, LiveGuard};
use crate::proxy::Proxy;
use wsgate_proto::proxy_protocol;

/// Holds a connection's places in the live counts (all connections, and its listener's) for as long as
/// the HTTP connection or the tunnel it became lives.
pub struct ConnectionSlot {
    _all: LiveGuard,
    _listener: LiveGuard,
    /// `https` on a TLS listener, else `http` (for X-Forwarded-Proto).
    pub proto: &'static str,
}

/// A listener's options and, for TLS, its acceptor (built when the config is loaded, not per
/// connection).
#[derive(Clone)]
pub struct ListenerSettings {
    pub config: ListenerConfig,
    pub tls: Option<TlsAcceptor>,
}

impl ListenerSettings {
    pub fn new(config: &ListenerConfig) -> Result<Self, crate::tls::TlsError> {
        let tls = match &config.tls {
            Some(tls) => Some(TlsAcceptor::from(crate::tls::server_config(tls)?)),
            None => None,
        };
        Ok(ListenerSettings {
            config: config.clone(),
            tls,
        })
    }
}

/// Past `max_connections` a new connection gets this and is closed (as Envoy does; clients retry).
const OVER_CAPACITY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n";

pub type SharedProxy = Arc<ArcSwap<Proxy>>;

/// Accepts until the task is aborted. `settings` follows reloads of this listener's options.
pub(crate) async fn accept_loop(
    socket: TcpListener,
    proxy: SharedProxy,
    settings: watch::Receiver<ListenerSettings>,
) {
    let open = Arc::new(Live::default());
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors or a connection reset before accept: back off briefly
                // instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ListenerSettings { config, tls } = settings.borrow().clone();
        let current = proxy.load();
        let listener_slot = match config.max_connections {
            Some(max) => open.try_enter(max),
            None => Some(open.enter()),
        };
        let Some(listener_slot) = listener_slot else {
            current.metrics.connection_rejected(&config.name);
            tracing::debug!(listener = %config.name, %peer, "max_connections reached: 503");
            let _ = stream.try_write(OVER_CAPACITY);
            continue;
        };
        let slot = Arc::new(ConnectionSlot {
            _all: current.live.enter(),
            _listener: listener_slot,
            proto: if tls.is_some() { "https" } else { "http" },
        });
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let peer = if config.proxy_protocol {
                match read_proxy_header(&stream, config.handshake_timeout).await {
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
            match tls {
                None => serve(TokioIo::new(stream), peer, proxy, config, slot).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(config.handshake_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            serve(TokioIo::new(stream), peer, proxy, config, slot).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Reads the PROXY protocol header and nothing more: bytes are peeked until the header is whole, then
/// exactly its length is consumed, so HTTP parsing starts on the client's first byte.
async fn read_proxy_header(
    stream: &TcpStream,
    timeout: Duration,
) -> Result<Option<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let read = async {
        let mut buf = [0u8; 536];
        loop {
            stream.readable().await?;
            let seen = stream.peek(&mut buf).await?;
            if seen == 0 {
                return Err("closed before a PROXY protocol header".into());
            }
            if let Some((header, len)) = proxy_protocol::parse(&buf[..seen])? {
                let mut consumed = vec![0u8; len];
                let mut done = 0;
                while done < len {
                    stream.readable().await?;
                    match stream.try_read(&mut consumed[done..]) {
                        Ok(0) => return Err("closed inside the PROXY protocol header".into()),
                        Ok(n) => done += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                return Ok(header.source);
            }
            if seen == buf.len() {
                return Err("PROXY protocol header too long".into());
            }
            // Wait for more bytes than the ones already peeked.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| "no PROXY protocol header within handshake_timeout")?
}

async fn serve<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    proxy: SharedProxy,
    config: ListenerConfig,
    slot: Arc<ConnectionSlot>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut drain = proxy.load().drain.clone();
    let service = service_fn(move |req| proxy.load_full().handle(req, peer, slot.clone()));
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
