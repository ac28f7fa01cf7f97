//! WebSockets over HTTP/2 (RFC 8441) for the load tool: a TLS connection that negotiated ALPN `h2`,
//! the server's SETTINGS awaited until they enable extended CONNECT, then one `CONNECT` stream with
//! `:protocol websocket` per WebSocket, carrying RFC 6455 frames as DATA (client frames still masked,
//! RFC 8441 §5). Received DATA is released to flow control as soon as it is read, so the receive
//! window never limits a run.

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::ext::Protocol;
use h2::{Ping, RecvStream, SendStream};
use http::{Method, Request, StatusCode, Uri};
use rustls::ClientConfig;

use crate::stream::Connect;
use crate::tls::{self, Tls};
use crate::ws::{self, put_client_frame, Reader, Rng, Url};

/// The receive windows the client announces: far above what a run keeps in flight on a stream
/// (K messages of S bytes), so that the echoes are paced by the proxy, not by WINDOW_UPDATEs.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;
/// How long the TLS and HTTP/2 handshakes, the SETTINGS, or one stream's 200 may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// Why a connection or a stream did not carry a WebSocket.
#[derive(Debug, thiserror::Error)]
pub enum H2Error {
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    #[error("ALPN: the server chose {0:?}, not h2")]
    NotH2(Option<String>),
    #[error("HTTP/2 handshake: {0}")]
    Handshake(#[source] h2::Error),
    #[error("the server's SETTINGS do not enable extended CONNECT (RFC 8441 §3)")]
    NoExtendedConnect,
    #[error("request: {0}")]
    Request(#[source] http::Error),
    #[error("extended CONNECT answered {0}, not 200")]
    Refused(StatusCode),
    #[error("stream: {0}")]
    Stream(#[source] h2::Error),
    #[error("the server ended the stream")]
    Ended,
    #[error("the server sent a close frame")]
    Closed,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

/// HTTP/2 over TLS to one target: opens connections and WebSocket streams on them. Cheap to clone.
#[derive(Clone)]
pub struct H2 {
    tls: Tls,
    uri: Uri,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS as the first connection saw it (`None`: no limit).
    max_streams: Arc<OnceLock<Option<usize>>>,
}

/// One HTTP/2 connection, its frames driven by a task of its own; streams open on clones of it.
#[derive(Clone)]
pub struct Conn(SendRequest<Bytes>);

/// One WebSocket on an HTTP/2 stream.
pub struct WsStream {
    send: SendStream<Bytes>,
    recv: RecvStream,
}

impl H2 {
    /// For a `wss://` URL, with the `--ca` file's certificates trusted and ALPN `h2` alone offered.
    pub async fn new(url: &Url, ca: Option<&Path>) -> Result<Self, String> {
        Self::with_config(url, tls::ca_config(url, ca)?).await
    }

    /// As `new`, from a client config (its ALPN list is replaced by `h2`).
    pub async fn with_config(url: &Url, mut config: ClientConfig) -> Result<Self, String> {
        if !url.tls {
            return Err(format!(
                "{}: the h2 modes need a wss:// URL (HTTP/2 over TLS, ALPN h2)",
                url.authority
            ));
        }
        config.alpn_protocols = vec![b"h2".to_vec()];
        // RFC 8441 §4: the `:scheme` of a WebSocket over TLS is `https`.
        let uri = format!("https://{}{}", url.authority, url.path)
            .parse::<Uri>()
            .map_err(|e| format!("{}{}: {e}", url.authority, url.path))?;
        Ok(H2 {
            tls: Tls::with_config(url, config).await?,
            uri,
            max_streams: Arc::new(OnceLock::new()),
        })
    }

    /// A new connection: TLS with ALPN h2, the HTTP/2 preface, and the server's SETTINGS in force.
    pub async fn connect(&self) -> Result<Conn, H2Error> {
        let stream = within("the TLS handshake", self.tls.connect())
            .await?
            .map_err(H2Error::Connect)?;
        let alpn = stream.get_ref().1.alpn_protocol();
        if alpn != Some(b"h2") {
            return Err(H2Error::NotH2(
                alpn.map(|a| String::from_utf8_lossy(a).into_owned()),
            ));
        }
        let (send, mut connection) = within(
            "the HTTP/2 handshake",
            h2::client::Builder::new()
                .initial_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .handshake::<_, Bytes>(stream),
        )
        .await?
        .map_err(H2Error::Handshake)?;
        let mut ping = connection.ping_pong();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                if !e.is_go_away() || e.reason() != Some(h2::Reason::NO_ERROR) {
                    eprintln!("h2 connection: {e}");
                }
            }
        });
        // The server's SETTINGS are the first frame it sends (RFC 9113 §3.4), so once the answer to
        // our PING is in, they have been read and applied.
        if let Some(ping) = ping.as_mut() {
            within("the server's SETTINGS", ping.ping(Ping::opaque()))
                .await?
                .map_err(H2Error::Handshake)?;
        }
        if !send.is_extended_connect_protocol_enabled() {
            return Err(H2Error::NoExtendedConnect);
        }
        let max = send.current_max_send_streams();
        let _ = self.max_streams.set((max != usize::MAX).then_some(max));
        Ok(Conn(send))
    }

    /// Opens a WebSocket on `conn`: an extended CONNECT answered 200 (RFC 8441 §5). Waits for a free
    /// stream slot when the connection is at the server's concurrency limit.
    pub async fn open(&self, conn: &Conn) -> Result<WsStream, H2Error> {
        let mut request = Request::builder()
            .method(Method::CONNECT)
            .uri(self.uri.clone())
            .header("sec-websocket-version", "13")
            .body(())
            .map_err(H2Error::Request)?;
        request.extensions_mut().insert(Protocol::from("websocket"));
        let mut send = within("a stream slot", conn.0.clone().ready())
            .await?
            .map_err(H2Error::Stream)?;
        let (response, stream) = send.send_request(request, false).map_err(H2Error::Stream)?;
        let response = within("the 200", response)
            .await?
            .map_err(H2Error::Stream)?;
        if response.status() != StatusCode::OK {
            return Err(H2Error::Refused(response.status()));
        }
        Ok(WsStream {
            send: stream,
            recv: response.into_body(),
        })
    }

    /// What the run's JSON line says about the transport: TLS as negotiated, ALPN, the server's
    /// stream limit per connection.
    pub fn json_fields(&self) -> String {
        let max = match self.max_streams.get() {
            Some(Some(n)) => n.to_string(),
            _ => "null".to_string(),
        };
        format!(
            r#"{},"alpn":"h2","server_max_streams":{max}"#,
            self.tls.json_fields()
        )
    }
}

impl WsStream {
    /// Queues `frames` (whole client frames) as one DATA frame; h2 sends them as the send window
    /// allows. Callers bound what they queue by the messages they keep in flight.
    pub fn send(&mut self, frames: Vec<u8>) -> Result<(), H2Error> {
        self.send
            .send_data(Bytes::from(frames), false)
            .map_err(H2Error::Stream)
    }

    /// The next DATA the server sent, its bytes handed back to the window at once; `Ended` when
    /// the server ends the stream.
    pub async fn recv(&mut self) -> Result<Bytes, H2Error> {
        match self.recv.data().await {
            None => Err(H2Error::Ended),
            Some(Err(e)) => Err(H2Error::Stream(e)),
            Some(Ok(data)) => {
                self.recv
                    .flow_control()
                    .release_capacity(data.len())
                    .map_err(H2Error::Stream)?;
                Ok(data)
            }
        }
    }

    /// One small message and its echo: proves the tunnel reaches the backend.
    pub async fn echo_once(&mut self, rng: &mut Rng) -> Result<(), H2Error> {
        let mut out = Vec::new();
        put_client_frame(&mut out, ws::OP_BINARY, b"hello", rng);
        self.send(out)?;
        let mut reader = Reader::new(Vec::new());
        loop {
            let data = within("the echo", self.recv()).await??;
            if reader.feed(&data) > 0 {
                return Ok(());
            }
            if reader.closed {
                return Err(H2Error::Closed);
            }
        }
    }
}

async fn within<F: std::future::Future>(what: &'static str, f: F) -> Result<F::Output, H2Error> {
    tokio::time::timeout(PATIENCE, f)
        .await
        .map_err(|_| H2Error::Timeout(what))
}

#[cfg(test)]
#[path = "h2ws_tests.rs"]
mod tests;
