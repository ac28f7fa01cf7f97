//! Fresh connections to an endpoint: TCP with a deadline, then TLS when the upstream has `tls:`
//! (its CA, client certificate and `server_name`). Shared by tunnels and the active health check so
//! that a probe reaches the backend exactly as traffic does.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::ConnectError;

/// A fresh connection to an endpoint, TLS when the upstream says so.
pub enum UpstreamStream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Read and written through only for the upgrade request and a refusal's body; a tunnel takes the
/// stream out of the enum first.
impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(io) => Pin::new(io).poll_read(cx, buf),
            UpstreamStream::Tls(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Tcp(io) => Pin::new(io).poll_write(cx, buf),
            UpstreamStream::Tls(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(io) => Pin::new(io).poll_flush(cx),
            UpstreamStream::Tls(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Tcp(io) => Pin::new(io).poll_shutdown(cx),
            UpstreamStream::Tls(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

pub struct Dialer {
    tls: Option<(TlsConnector, Option<ServerName<'static>>)>,
    /// `tls.server_name` as written, the Host of health probes when set.
    server_name: Option<String>,
}

impl Dialer {
    pub fn plain() -> Dialer {
        Dialer {
            tls: None,
            server_name: None,
        }
    }

    pub fn tls(
        connector: TlsConnector,
        server_name: Option<ServerName<'static>>,
        configured: Option<String>,
    ) -> Dialer {
        Dialer {
            tls: Some((connector, server_name)),
            server_name: configured,
        }
    }

    /// The Host a request of wsgate's own (a health probe) carries: `server_name` when set, the
    /// name the certificate is verified for, else the endpoint's `host:port`.
    pub fn host<'a>(&'a self, endpoint: &'a str) -> &'a str {
        self.server_name.as_deref().unwrap_or(endpoint)
    }

    /// Connects (and handshakes) within `timeout`, which TCP and TLS share.
    pub async fn connect(
        &self,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<UpstreamStream, ConnectError> {
        let timed_out = || ConnectError::Timeout {
            endpoint: endpoint.to_owned(),
            timeout,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(endpoint)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(ConnectError::Failed {
                    endpoint: endpoint.to_owned(),
                    source,
                })
            }
            Err(_) => return Err(timed_out()),
        };
        let _ = stream.set_nodelay(true);
        let Some((connector, server_name)) = &self.tls else {
            return Ok(UpstreamStream::Tcp(stream));
        };
        let name = match server_name {
            Some(name) => name.clone(),
            None => ServerName::try_from(host_of(endpoint).to_owned()).map_err(|source| {
                ConnectError::ServerName {
                    endpoint: endpoint.to_owned(),
                    source,
                }
            })?,
        };
        match tokio::time::timeout_at(deadline, connector.connect(name, stream)).await {
            Ok(Ok(tls)) => Ok(UpstreamStream::Tls(Box::new(tls))),
            Ok(Err(e)) => Err(ConnectError::tls(endpoint, e)),
            Err(_) => Err(timed_out()),
        }
    }
}

/// The host of `host:port` (`[v6]:port` gives the bare address), the TLS name by default.
fn host_of(endpoint: &str) -> &str {
    let host = wsgate_proto::handshake::grammar::split_host_port(endpoint)
        .map_or(endpoint, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_endpoints_and_probe_host() {
        assert_eq!(host_of("backend.internal:8443"), "backend.internal");
        assert_eq!(host_of("[::1]:443"), "::1");
        let plain = Dialer::plain();
        assert_eq!(plain.host("[::1]:443"), "[::1]:443");
        let config = crate::tls::plain_client_config().unwrap();
        let named = Dialer::tls(
            TlsConnector::from(config),
            Some(ServerName::try_from("api.test").unwrap()),
            Some("api.test".into()),
        );
        assert_eq!(named.host("10.0.0.1:443"), "api.test");
    }
}
