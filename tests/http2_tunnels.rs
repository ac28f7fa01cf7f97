//! WebSocket streams of HTTP/2 connections at their edges: TLS with ALPN, an aborted stream reset
//! with CANCEL, a drain (GOAWAY and each stream's close frame), and a client that stops reading
//! (write_timeout, bounded by flow control). Raw HTTP/2 frames (support::h2raw) where the frames
//! themselves are the assertion.

mod support;

use std::net::SocketAddr;

use support::h2raw::{self, H2Raw};
use support::*;
use tokio::net::TcpStream;

fn plain_h2(backend: SocketAddr, websocket: &str, extra: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: public, bind: "127.0.0.1:0", http2: true }}
admin: {{ bind: "127.0.0.1:0" }}
upstreams:
  echo: {{ endpoints: ["{backend}"], connect_timeout: 1s }}
routes:
  - {{ name: echo, upstream: echo, websocket: {websocket} }}
{extra}
"#
    )
}

/// A raw HTTP/2 client with a large window, so that flow control never holds wsgate back unless
/// a test asks for it.
async fn raw_client(addr: SocketAddr, window: u32) -> H2Raw<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut h2 = H2Raw::handshake_with(tcp, &[(h2raw::SETTINGS_INITIAL_WINDOW_SIZE, window)])
        .await
        .expect("HTTP/2 handshake");
    if window > 65_535 {
        h2.window_update(0, window).await.unwrap();
    }
    h2
}

/// Opens a WebSocket on `stream` and asserts its 200.
async fn open(h2: &mut H2Raw<TcpStream>, stream: u32) {
    h2.connect_websocket(stream, "app.example", "/ws", &[])
        .await
        .unwrap();
    let (status, _) = h2.response_status(stream).await.unwrap();
    assert_eq!(status, 200);
}

/// WebSocket frames and the end of `stream`: DATA payloads until END_STREAM or RST_STREAM.
struct StreamEnd {
    bytes: Vec<u8>,
    end_stream: bool,
    reset: Option<u32>,
    goaway: bool,
}

async fn read_to_end_of(h2: &mut H2Raw<TcpStream>, stream: u32) -> StreamEnd {
    let mut end = StreamEnd {
        bytes: Vec::new(),
        end_stream: false,
        reset: None,
        goaway: false,
    };
    for _ in 0..10_000 {
        let Some(frame) = h2.next_on_stream(stream).await.unwrap() else {
            break;
        };
        match frame.kind {
            h2raw::DATA => {
                end.bytes
                    .extend_from_slice(frame.data_payload().unwrap_or_default());
                if frame.flags & h2raw::END_STREAM != 0 {
                    end.end_stream = true;
                    break;
                }
            }
            h2raw::RST_STREAM => {
                end.reset = frame.rst_code();
                break;
            }
            h2raw::GOAWAY => end.goaway = true,
            _ => {}
        }
    }
    end
}

#[tokio::test]
async fn wsgate_advertises_extended_connect_and_its_settings() {
    let (backend, _seen) = echo_backend().await;
    let yaml = format!(
        r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
    http2: true
    http2_settings: {{ max_concurrent_streams: 77, initial_stream_window_size: 128KiB }}
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: echo, upstream: echo }}]
"#
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let h2 = raw_client(addr, 65_535).await;
    assert_eq!(
        h2.server_setting(h2raw::SETTINGS_ENABLE_CONNECT_PROTOCOL),
        Some(1)
    );
    assert_eq!(
        h2.server_setting(h2raw::SETTINGS_MAX_CONCURRENT_STREAMS),
        Some(77)
    );
    assert_eq!(
        h2.server_setting(h2raw::SETTINGS_INITIAL_WINDOW_SIZE),
        Some(128 * 1024)
    );
    assert_eq!(
        h2.server_setting(h2raw::SETTINGS_MAX_HEADER_LIST_SIZE),
        Some(64 * 1024)
    );
}

#[tokio::test]
async fn an_upstream_refusal_is_the_streams_response() {
    let refuse = |_: &str| {
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nX-Why: nope\r\n\r\ndeny".to_owned()
    };
    let (backend, _seen) = raw_backend(refuse, vec![]).await;
    let running = start(&plain_h2(backend, "{}", "")).await;
    let addr = running.listener_addr("public").unwrap();
    let mut h2 = raw_client(addr, 65_535).await;
    h2.connect_websocket(1, "app.example", "/ws", &[])
        .await
        .unwrap();
    let (status, fields) = h2.response_status(1).await.unwrap();
    assert_eq!(status, 403);
    assert!(
        fields.iter().any(|(k, v)| k == "x-why" && v == "nope"),
        "{fields:?}"
    );
    let end = read_to_end_of(&mut h2, 1).await;
    assert_eq!(end.bytes, b"deny");
    assert!(end.end_stream);
    let text = scrape(running.admin_addr().unwrap()).await;
    let labels = [
        ("route", "echo"),
        ("result", "upstream_rejected"),
        ("transport", "h2"),
    ];
    assert_eq!(
        metric(&text, "wsgate_ws_handshakes_total", &labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_wrong_accept_from_the_upstream_is_a_502_on_the_stream() {
    let (backend, _seen) = raw_backend(|_| switching("d3JvbmcgYWNjZXB0IGtleSE="), vec![]).await;
    let running = start(&plain_h2(backend, "{}", "")).await;
    let addr = running.listener_addr("public").unwrap();
    let mut h2 = raw_client(addr, 65_535).await;
    h2.connect_websocket(1, "app.example", "/ws", &[])
        .await
        .unwrap();
    let (status, _) = h2.response_status(1).await.unwrap();
    assert_eq!(status, 502);
    let text = scrape(running.admin_addr().unwrap()).await;
    let labels = [
        ("route", "echo"),
        ("result", "bad_accept"),
        ("transport", "h2"),
    ];
    assert_eq!(
        metric(&text, "wsgate_ws_handshakes_total", &labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_client_ping_on_a_stream_is_answered_by_wsgate() {
    let (backend, seen) = echo_backend().await;
    let running = start(&plain_h2(backend, "{}", "")).await;
    let addr = running.listener_addr("public").unwrap();
    let mut h2 = raw_client(addr, 1 << 20).await;
    open(&mut h2, 1).await;
    h2.data(1, &client_frame(0x89, b"are you there"), false)
        .await
        .unwrap();
    let mut bytes = Vec::new();
    for _ in 0..100 {
        let frame = h2.next_on_stream(1).await.unwrap().expect("a frame");
        bytes.extend_from_slice(frame.data_payload().unwrap_or_default());
        if !parse_frames(&bytes).is_empty() {
            break;
        }
    }
    assert_eq!(parse_frames(&bytes), [(0x8a, b"are you there".to_vec())]);
    let text = scrape(running.admin_addr().unwrap()).await;
    let labels = [("route", "echo"), ("direction", "client_to_upstream")];
    assert_eq!(
        metric(&text, "wsgate_ws_pings_answered_total", &labels),
        Some(1.0)
    );
    assert!(
        seen.lock().unwrap().messages.is_empty(),
        "the ping reached the backend"
    );
}

#[tokio::test]
async fn a_plain_listener_without_http2_does_not_speak_it() {
    let (backend, _seen) = echo_backend().await;
    let yaml = plain_h2(backend, "{}", "").replace(", http2: true", "");
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    // The preface is not an HTTP/1.1 request: the answer is no HTTP/2 SETTINGS.
    assert!(H2Raw::handshake(tcp).await.is_err());
    let (_stream, head) = raw_request(
        addr,
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 "), "{head}");
}

#[tokio::test]
async fn a_stream_aborted_mid_frame_is_reset_with_cancel_not_ended() {
    // The backend sends a 40 KiB text frame whose last byte breaks UTF-8: wsgate has forwarded
    // most of it before it can know, so no close frame can follow; the stream is reset.
    let mut payload = vec![b'a'; 40 * 1024];
    *payload.last_mut().unwrap() = 0xff;
    let bad = frame(0x81, &payload, None);
    let (backend, _seen) = raw_backend(switching, bad).await;
    let running = start(&plain_h2(backend, "{}", "")).await;
    let addr = running.listener_addr("public").unwrap();
    let mut h2 = raw_client(addr, 1 << 20).await;
    open(&mut h2, 1).await;
    let end = read_to_end_of(&mut h2, 1).await;
    assert_eq!(end.reset, Some(h2raw::CANCEL), "{:?}", end.reset);
    assert!(!end.end_stream, "an aborted stream must not end cleanly");
    // Whatever wsgate had forwarded and h2 not yet sent goes with the reset, as a TCP reset
    // discards its unsent bytes.
    // The connection itself is fine: a new stream is served.
    h2.headers(
        3,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "a"),
        ],
        true,
    )
    .await
    .unwrap();
    let (status, _) = h2.response_status(3).await.unwrap();
    assert!(status >= 200, "{status}");
    let text = scrape(running.admin_addr().unwrap()).await;
    let labels = [
        ("route", "echo"),
        ("direction", "upstream_to_client"),
        ("kind", "invalid_utf8"),
    ];
    assert_eq!(
        metric(&text, "wsgate_ws_protocol_violations_total", &labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_drain_sends_goaway_and_each_stream_its_close_frame() {
    let (backend, _seen) = echo_backend().await;
    let yaml = plain_h2(
        backend,
        "{}",
        "shutdown: { drain_timeout: 2s, close_code: 1012 }",
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let mut h2 = raw_client(addr, 1 << 20).await;
    open(&mut h2, 1).await;
    open(&mut h2, 3).await;
    let (report, ends) = tokio::join!(running.drain(), async {
        // Frames of both streams, in whatever order the drain's spread sends them.
        let mut ends = [(1u32, Vec::new(), false), (3u32, Vec::new(), false)];
        let mut goaway = false;
        for _ in 0..1_000 {
            if ends.iter().all(|e| e.2) {
                break;
            }
            let Some(frame) = h2.read_frame().await.unwrap() else {
                break;
            };
            goaway |= frame.kind == h2raw::GOAWAY;
            let Some(end) = ends.iter_mut().find(|e| e.0 == frame.stream) else {
                h2.serve_control(&frame).await.unwrap();
                continue;
            };
            assert_ne!(frame.kind, h2raw::RST_STREAM, "stream {} reset", end.0);
            if let Some(bytes) = frame.data_payload() {
                let answered = !end.1.is_empty();
                end.1.extend_from_slice(bytes);
                if !answered {
                    // The client answers the close, as a browser does, and ends its half.
                    let close = client_frame(0x88, &1012u16.to_be_bytes());
                    h2.data(end.0, &close, true).await.unwrap();
                }
            }
            end.2 |= frame.flags & h2raw::END_STREAM != 0;
        }
        assert!(goaway, "no GOAWAY");
        ends
    });
    for (stream, bytes, ended) in &ends {
        assert!(ended, "stream {stream} did not end");
        let frames = parse_frames(bytes);
        assert_eq!(frames.first().map(|f| f.0), Some(0x88), "{frames:?}");
        assert_eq!(&frames[0].1[..2], &1012u16.to_be_bytes());
    }
    assert_eq!(report.left_open, 0);
}

#[tokio::test]
async fn a_client_that_stops_reading_meets_write_timeout_with_bounded_buffering() {
    let (backend, _seen, outbox) = raw_backend_with_outbox(switching, vec![]).await;
    let running = start(&plain_h2(backend, "{ write_timeout: 1s }", "")).await;
    let addr = running.listener_addr("public").unwrap();
    // A small window that is never opened again: wsgate can send the client 16 KiB, no more.
    let mut h2 = raw_client(addr, 16 * 1024).await;
    open(&mut h2, 1).await;
    // 4 MiB from the backend, far past the window and every buffer on the way.
    let chunk = frame(0x82, &vec![7u8; 64 * 1024], None);
    for _ in 0..64 {
        outbox.send(chunk.clone()).unwrap();
    }
    tunnels_closed(&running, "echo").await;
    let text = scrape(running.admin_addr().unwrap()).await;
    let sent = metric(
        &text,
        "wsgate_ws_frame_payload_bytes_total",
        &[("route", "echo"), ("direction", "upstream_to_client")],
    )
    .unwrap_or(0.0);
    // What the tracker let through is bounded by the buffers, not the 4 MiB sent.
    assert!(sent < 1_048_576.0, "{sent} bytes forwarded");
    drop(h2);
}

mod tls {
    use super::*;
    use std::sync::Arc;

    use rcgen::{CertificateParams, KeyPair};
    use rustls::pki_types::{CertificateDer, ServerName};

    /// A self-signed certificate for `localhost` in a temporary directory.
    fn cert(name: &str) -> (String, String, Vec<u8>) {
        let dir = std::env::temp_dir().join(format!("wsgate-h2-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (
            c.display().to_string(),
            k.display().to_string(),
            cert.der().to_vec(),
        )
    }

    async fn connect(
        addr: SocketAddr,
        der: &[u8],
        alpn: &[&[u8]],
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(der.to_vec())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = TcpStream::connect(addr).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake")
    }

    fn config(backend: SocketAddr, cert: &str, key: &str, http2: &str) -> String {
        format!(
            r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
    tls: {{ cert: "{cert}", key: "{key}" }}
{http2}
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: echo, upstream: echo }}]
"#
        )
    }

    #[tokio::test]
    async fn a_tls_listener_offers_h2_by_default_and_runs_websockets_over_it() {
        let (backend, _seen) = echo_backend().await;
        let (c, k, der) = cert("default");
        let running = start(&config(backend, &c, &k, "")).await;
        let addr = running.listener_addr("public").unwrap();
        let tls = connect(addr, &der, &[b"h2", b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut conn = h2::handshake(tls).await;
        let response = h2::connect_websocket(&mut conn, "https", "localhost", "/", &[]).await;
        assert_eq!(response.status(), 200);
        let upgraded = hyper::upgrade::on(response).await.unwrap();
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        ws.send(Message::text("over tls")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("over tls"));
        let text = scrape(running.admin_addr().unwrap()).await;
        let labels = [("route", "echo"), ("transport", "h2")];
        assert_eq!(
            metric(&text, "wsgate_ws_connections_total", &labels),
            Some(1.0)
        );
        // An HTTP/1.1-only client still gets HTTP/1.1.
        let old = connect(addr, &der, &[b"http/1.1"]).await;
        assert_eq!(old.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    }

    #[tokio::test]
    async fn http2_false_offers_only_http1() {
        let (backend, _seen) = echo_backend().await;
        let (c, k, der) = cert("off");
        let running = start(&config(backend, &c, &k, "    http2: false")).await;
        let addr = running.listener_addr("public").unwrap();
        let tls = connect(addr, &der, &[b"h2", b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    }
}
