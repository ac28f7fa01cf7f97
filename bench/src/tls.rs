//! wss:// for the load tool: TLS 1.3 only, rustls's default cipher suites (ring), the CA from
//! `--ca`, SNI and verification against the URL's host, and no session resumption, so that every
//! connection (every handshakes-mode session) pays for a full handshake.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::stream::{resolve, Connect, Progress, Stream};
use crate::ws::Url;

/// The client config: trusts exactly the PEM certificates in `ca_pem`.
pub fn client_config(ca_pem: &[u8]) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| format!("CA: {e}"))?;
        roots.add(cert).map_err(|e| format!("CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err("CA: no PEM certificate".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// The client config for `url` from the `--ca` file: an error without one.
pub fn ca_config(url: &Url, ca: Option<&Path>) -> Result<ClientConfig, String> {
    let ca = ca.ok_or_else(|| format!("{}: wss:// needs --ca FILE", url.authority))?;
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    client_config(&pem)
}

/// TLS over TCP to one target. Remembers what the first handshake negotiated, for the JSON line.
#[derive(Clone)]
pub struct Tls(Arc<Inner>);

struct Inner {
    addr: SocketAddr,
    name: ServerName<'static>,
    connector: TlsConnector,
    negotiated: OnceLock<Negotiated>,
}

/// What a handshake settled on, as rustls names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLSv1_3/TLS13_AES_256_GCM_SHA384`: protocol version and cipher suite.
    pub suite: String,
    /// `X25519`: the key exchange group.
    pub kx: String,
}

impl Tls {
    pub async fn new(url: &Url, ca: Option<&Path>) -> Result<Self, String> {
        Self::with_config(url, ca_config(url, ca)?).await
    }

    pub async fn with_config(url: &Url, config: ClientConfig) -> Result<Self, String> {
        let name =
            ServerName::try_from(url.host.clone()).map_err(|e| format!("{}: {e}", url.host))?;
        Ok(Tls(Arc::new(Inner {
            addr: resolve(&url.authority).await?,
            name,
            connector: TlsConnector::from(Arc::new(config)),
            negotiated: OnceLock::new(),
        })))
    }

    /// What the first completed handshake negotiated.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.0.negotiated.get()
    }
}

impl Connect for Tls {
    type Stream = TlsStream<TcpStream>;

    async fn connect(&self) -> io::Result<Self::Stream> {
        let tcp = TcpStream::connect(self.0.addr).await?;
        tcp.set_nodelay(true)?;
        let stream = self.0.connector.connect(self.0.name.clone(), tcp).await?;
        if self.0.negotiated.get().is_none() {
            let _ = self.0.negotiated.set(describe(stream.get_ref().1));
        }
        Ok(stream)
    }

    fn json_fields(&self) -> String {
        match self.negotiated() {
            Some(n) => format!(r#","tls":"{}","tls_kx":"{}""#, n.suite, n.kx),
            None => r#","tls":null"#.to_string(),
        }
    }
}

fn describe(conn: &rustls::ClientConnection) -> Negotiated {
    let version = conn
        .protocol_version()
        .map_or("?".to_string(), |v| format!("{v:?}"));
    let suite = conn
        .negotiated_cipher_suite()
        .map_or("?".to_string(), |s| format!("{:?}", s.suite()));
    let kx = conn
        .negotiated_key_exchange_group()
        .map_or("?".to_string(), |g| format!("{:?}", g.name()));
    Negotiated {
        suite: format!("{version}/{suite}"),
        kx,
    }
}

impl Stream for TlsStream<TcpStream> {
    /// TLS has no readiness of its own: poll the write side (or the flush of records a write left
    /// buffered) and the read side in one go, under the one task's waker.
    fn exchange(
        &mut self,
        out: &[u8],
        buf: &mut [u8],
    ) -> impl std::future::Future<Output = io::Result<Progress>> + Send {
        poll_fn(move |cx| {
            let mut progress = Progress::default();
            let wrote = if out.is_empty() {
                Pin::new(&mut *self).poll_flush(cx).map_ok(|()| 0)
            } else {
                Pin::new(&mut *self).poll_write(cx, out)
            };
            match wrote {
                Poll::Ready(Ok(n)) => progress.wrote = n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            let mut read = ReadBuf::new(buf);
            match Pin::new(&mut *self).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => progress.read = Some(read.filled().len()),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            if progress.wrote > 0 || progress.read.is_some() {
                Poll::Ready(Ok(progress))
            } else {
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::{HandshakeKind, ServerConfig};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::stream::Plain;
    use crate::ws::{self, put_client_frame, Reader, Rng};

    /// A self-signed server config for `localhost` with `alpn`, and its certificate's PEM (the CA
    /// a client must trust); the TLS test servers of this crate share it.
    pub(crate) fn localhost_server(alpn: Vec<Vec<u8>>) -> (ServerConfig, String) {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key_pair.serialize_der().into()),
            )
            .unwrap();
        config.alpn_protocols = alpn;
        (config, cert.pem())
    }

    /// A TLS echo backend for `localhost` on 127.0.0.1:0, with rustls's defaults (which offer
    /// session tickets, so a client that resumed would show it); returns its URL and CA PEM.
    async fn tls_echo() -> (Url, String) {
        let (config, ca) = localhost_server(Vec::new());
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = crate::echo::echo(stream).await;
                    }
                });
            }
        });
        let url = ws::parse_url(&format!("wss://localhost:{port}/")).unwrap();
        (url, ca)
    }

    async fn plain_echo() -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(crate::echo::echo(tcp));
            }
        });
        ws::parse_url(&format!("ws://127.0.0.1:{port}/")).unwrap()
    }

    /// Keeps 16 messages of 1 KiB in flight with `exchange`, as throughput does, until 200 are
    /// echoed; bounded, so a lost wake-up fails instead of hanging.
    async fn echoes_through_exchange<C: Connect>(target: &C, url: &Url) {
        let mut rng = Rng::new(3);
        let stream = target.connect().await.unwrap();
        let (mut stream, prefix) = ws::connect(stream, url, &mut rng).await.unwrap();
        let payload = vec![b'x'; 1024];
        let mut out = Vec::new();
        for _ in 0..16 {
            put_client_frame(&mut out, ws::OP_BINARY, &payload, &mut rng);
        }
        let (mut written, mut buf) = (0, vec![0u8; 4096]);
        let mut reader = Reader::new(Vec::new());
        let (mut echoed, mut sent) = (reader.feed(&prefix), 16);
        for _ in 0..100_000 {
            if echoed >= 200 {
                return;
            }
            let step = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                stream.exchange(&out[written..], &mut buf),
            )
            .await
            .expect("exchange stalled")
            .unwrap();
            written += step.wrote;
            if written == out.len() {
                out.clear();
                written = 0;
            }
            if let Some(n) = step.read {
                assert!(n > 0, "server closed");
                let got = reader.feed(&buf[..n]);
                echoed += got;
                for _ in 0..got.min(200u64.saturating_sub(sent)) {
                    put_client_frame(&mut out, ws::OP_BINARY, &payload, &mut rng);
                    sent += 1;
                }
            }
        }
        panic!("only {echoed} of 200 echoes");
    }

    #[tokio::test]
    async fn wss_sessions_echo_over_full_tls13_handshakes() {
        let (url, ca) = tls_echo().await;
        let target = Tls::with_config(&url, client_config(ca.as_bytes()).unwrap())
            .await
            .unwrap();
        let mut rng = Rng::new(1);
        for _ in 0..3 {
            crate::handshakes::session(&target, &url, &ws::Headers::default(), &mut rng)
                .await
                .unwrap();
        }
        // The server sent tickets after each handshake; none is used.
        let stream = target.connect().await.unwrap();
        assert_eq!(
            stream.get_ref().1.handshake_kind(),
            Some(HandshakeKind::Full)
        );
        let negotiated = target.negotiated().unwrap();
        assert!(
            negotiated.suite.starts_with("TLSv1_3/TLS13_"),
            "{negotiated:?}"
        );
        assert!(target
            .json_fields()
            .starts_with(r#","tls":"TLSv1_3/TLS13_"#));
    }

    #[tokio::test]
    async fn exchange_keeps_messages_in_flight_over_tls_and_tcp() {
        let (url, ca) = tls_echo().await;
        let tls = Tls::with_config(&url, client_config(ca.as_bytes()).unwrap())
            .await
            .unwrap();
        echoes_through_exchange(&tls, &url).await;
        let url = plain_echo().await;
        let plain = Plain::new(&url).await.unwrap();
        echoes_through_exchange(&plain, &url).await;
        assert_eq!(plain.json_fields(), "");
    }

    #[tokio::test]
    async fn a_certificate_from_another_ca_is_refused() {
        let (url, _) = tls_echo().await;
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let config = client_config(other.cert.pem().as_bytes()).unwrap();
        let target = Tls::with_config(&url, config).await.unwrap();
        assert!(target.connect().await.is_err());
        assert_eq!(target.json_fields(), r#","tls":null"#);
    }

    #[test]
    fn a_ca_file_without_certificates_is_an_error() {
        assert!(client_config(b"not a pem").is_err());
    }
}
