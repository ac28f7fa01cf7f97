//! The raw HTTP/2 peer of tests/support/h2raw.rs checked against hyper's own HTTP/2 server (with
//! RFC 8441 extended CONNECT enabled), over TCP and TLS, and against the RFC 7541 examples.

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::h2raw::hpack::{decode_int, encode_int};
use support::h2raw::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "h2raw_selftest/hpack.rs"]
mod hpack_cases;

/// A value the server's encoder Huffman-codes, as h2 does for every string.
const CHECK_VALUE: &str = "read back by hand, Huffman and all";

/// Fails the test instead of hanging it.
async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("the test finished within 20 s")
}

async fn handle(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::CONNECT {
        let response = Response::builder()
            .header("x-check", CHECK_VALUE)
            .body(Full::new(Bytes::from_static(b"hello")));
        return Ok(response.unwrap());
    }
    let protocol = req
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let upgrade = hyper::upgrade::on(&mut req);
    // The tunnel echoes every byte until the client ends its side.
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 4096];
        for _ in 0..1000 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) if io.write_all(&buf[..n]).await.is_err() => return,
                Ok(_) => {}
            }
        }
    });
    let response = Response::builder()
        .header("x-protocol", protocol)
        .body(Full::new(Bytes::new()));
    Ok(response.unwrap())
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: S) {
    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .enable_connect_protocol()
        .serve_connection(TokioIo::new(io), service_fn(handle))
        .await;
}

/// hyper's HTTP/2 server (prior knowledge) on 127.0.0.1:0.
async fn h2_server() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = socket.accept().await {
            tokio::spawn(serve(tcp));
        }
    });
    addr
}

async fn connect() -> H2Raw<TcpStream> {
    let tcp = TcpStream::connect(h2_server().await).await.unwrap();
    H2Raw::handshake(tcp).await.expect("HTTP/2 handshake")
}

fn get(path: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "GET".into()),
        (":scheme", "http".into()),
        (":path", path.into()),
        (":authority", "localhost".into()),
    ]
}

fn fields<'a>(owned: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    owned.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

fn value<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// DATA on `stream` until `want` bytes or END_STREAM.
async fn read_body<S: AsyncRead + AsyncWrite + Unpin>(
    h2: &mut H2Raw<S>,
    stream: u32,
    want: usize,
) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..64 {
        let frame = h2.next_on_stream(stream).await.unwrap().expect("a frame");
        assert_eq!(frame.kind, DATA, "{frame:?}");
        body.extend_from_slice(frame.data_payload().unwrap());
        if body.len() >= want || frame.flags & END_STREAM != 0 {
            break;
        }
    }
    body
}

#[tokio::test]
async fn handshake_reads_the_server_settings_and_gets_an_ack() {
    bounded(async {
        let tcp = TcpStream::connect(h2_server().await).await.unwrap();
        let mut h2 = H2Raw::handshake_with(tcp, &[(SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)])
            .await
            .unwrap();
        assert_eq!(h2.server_setting(SETTINGS_ENABLE_CONNECT_PROTOCOL), Some(1));
        assert!(h2
            .server_settings()
            .contains(&(SETTINGS_ENABLE_CONNECT_PROTOCOL, 1)));
        // The server ACKs our SETTINGS (RFC 9113 §6.5.3).
        let ack = h2
            .read_until(|f| f.kind == SETTINGS && f.flags & ACK != 0, 16)
            .await
            .unwrap()
            .expect("a SETTINGS ACK");
        assert!(ack.payload.is_empty());
    })
    .await
}

#[tokio::test]
async fn get_returns_200_and_a_huffman_coded_header() {
    bounded(async {
        let mut h2 = connect().await;
        for stream in [1, 3] {
            h2.headers(stream, &fields(&get("/")), true).await.unwrap();
            let (status, headers) = h2.response_status(stream).await.unwrap();
            assert_eq!(status, 200, "{headers:?}");
            assert_eq!(value(&headers, "x-check"), Some(CHECK_VALUE), "{headers:?}");
            assert_eq!(read_body(&mut h2, stream, 5).await, b"hello");
        }
        assert!(h2.decoder.huffman_strings > 0, "no Huffman string decoded");
        // h2 indexes what it sends, so the second response came partly from the dynamic table.
        assert!(!h2.decoder.dynamic_table().0.is_empty());
    })
    .await
}

#[tokio::test]
async fn extended_connect_gets_200_and_an_echo() {
    bounded(async {
        let mut h2 = connect().await;
        h2.connect_websocket(
            1,
            "localhost",
            "/chat",
            &[("sec-websocket-protocol", "chat")],
        )
        .await
        .unwrap();
        let (status, headers) = h2.response_status(1).await.unwrap();
        assert_eq!(status, 200, "{headers:?}");
        assert_eq!(value(&headers, "x-protocol"), Some("websocket"));
        h2.data(1, b"\x81\x05hello", false).await.unwrap();
        assert_eq!(read_body(&mut h2, 1, 7).await, b"\x81\x05hello");
        h2.rst_stream(1, CANCEL).await.unwrap();
    })
    .await
}

#[tokio::test]
async fn a_malformed_request_gets_rst_stream_and_the_connection_lives_on() {
    bounded(async {
        let mut h2 = connect().await;
        // A connection-specific field: malformed in HTTP/2 (RFC 9113 §8.2.2), a stream error.
        let mut bad = get("/");
        bad.push(("connection", "close".into()));
        h2.headers(1, &fields(&bad), true).await.unwrap();
        let reset = h2.next_on_stream(1).await.unwrap().expect("a frame");
        assert_eq!(reset.kind, RST_STREAM, "{reset:?}");
        assert_eq!(reset.rst_code(), Some(PROTOCOL_ERROR));
        h2.headers(3, &fields(&get("/")), true).await.unwrap();
        assert_eq!(h2.response_status(3).await.unwrap().0, 200);
    })
    .await
}

#[tokio::test]
async fn data_on_stream_zero_gets_goaway_protocol_error() {
    bounded(async {
        let mut h2 = connect().await;
        // DATA belongs to a stream; on stream 0 it is a connection error (RFC 9113 §6.1).
        h2.data(0, b"stray", false).await.unwrap();
        let goaway = h2
            .read_until(|f| f.kind == GOAWAY, 16)
            .await
            .unwrap()
            .expect("a GOAWAY");
        let (last, code, _debug) = goaway.goaway_fields().unwrap();
        assert_eq!((last, code), (0, PROTOCOL_ERROR));
        // After GOAWAY the server closes: EOF within a few frames, not a hang.
        let eof = h2.read_until(|_| false, 16).await;
        assert!(matches!(eof, Ok(None)), "{eof:?}");
    })
    .await
}

#[tokio::test]
async fn ping_is_answered_and_goaway_is_answered_with_goaway() {
    bounded(async {
        let mut h2 = connect().await;
        h2.window_update(0, 1 << 16).await.unwrap();
        h2.ping(*b"12345678").await.unwrap();
        let pong = h2
            .read_until(|f| f.kind == PING, 16)
            .await
            .unwrap()
            .expect("a PING ACK");
        assert_eq!(
            (pong.flags, pong.payload.as_slice()),
            (ACK, &b"12345678"[..])
        );
        // Our GOAWAY with no open stream: the server answers with its own and closes.
        h2.goaway(0, NO_ERROR).await.unwrap();
        let goaway = h2.read_until(|f| f.kind == GOAWAY, 16).await.unwrap();
        let fields = goaway.as_ref().and_then(Frame::goaway_fields);
        assert_eq!(fields, Some((0, NO_ERROR, vec![])), "{goaway:?}");
        let end = h2.read_until(|_| false, 16).await;
        assert!(matches!(end, Ok(None)), "{end:?}");
    })
    .await
}

#[tokio::test]
async fn the_same_peer_works_over_tls_with_alpn_h2() {
    bounded(async {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let der = rustls::pki_types::CertificateDer::from(cert.der().to_vec());
        let private = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], private)
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((tcp, _)) = socket.accept().await {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls).await;
                }
            }
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec()];
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

        let mut h2 = H2Raw::handshake(tls).await.unwrap();
        h2.scheme = "https";
        h2.connect_websocket(1, "localhost", "/chat", &[])
            .await
            .unwrap();
        assert_eq!(h2.response_status(1).await.unwrap().0, 200);
        h2.data(1, b"over tls", false).await.unwrap();
        assert_eq!(read_body(&mut h2, 1, 8).await, b"over tls");
    })
    .await
}

#[test]
fn frames_round_trip_and_a_partial_frame_is_need_more() {
    let frames = [
        Frame::rst_stream(5, CANCEL),
        Frame::goaway(7, ENHANCE_YOUR_CALM, b"calm"),
        Frame::window_update(0, 1234),
        Frame::settings(&[(SETTINGS_ENABLE_CONNECT_PROTOCOL, 1)]),
        Frame::data(3, b"abc", true),
        Frame::headers(1, &[(":method", "GET")], true),
    ];
    for frame in frames {
        let bytes = frame.encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(Frame::parse(&bytes[..cut], MAX_PAYLOAD).unwrap().is_none());
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"next");
        let (parsed, used) = Frame::parse(&longer, MAX_PAYLOAD).unwrap().unwrap();
        assert_eq!((&parsed, used), (&frame, bytes.len()));
    }
    assert_eq!(Frame::rst_stream(5, CANCEL).rst_code(), Some(CANCEL));
    assert_eq!(
        Frame::goaway(7, ENHANCE_YOUR_CALM, b"calm").goaway_fields(),
        Some((7, ENHANCE_YOUR_CALM, b"calm".to_vec()))
    );
    assert_eq!(Frame::window_update(0, 1234).window_increment(), Some(1234));
    // The length guard refuses before the payload arrives; the reserved bit is cleared on read.
    let big = [0x01, 0x00, 0x00, DATA, 0, 0x80, 0, 0, 1];
    assert!(Frame::parse(&big, 1 << 14).is_err());
    let reserved = [0, 0, 0, DATA, 0, 0x80, 0, 0, 1];
    assert_eq!(Frame::parse(&reserved, 16).unwrap().unwrap().0.stream, 1);
}

#[test]
fn header_blocks_split_into_continuation() {
    let frames = Frame::header_block(1, &[7u8; 10], true, 4);
    let kinds: Vec<(u8, u8, usize)> = frames
        .iter()
        .map(|f| (f.kind, f.flags, f.payload.len()))
        .collect();
    assert_eq!(
        kinds,
        [
            (HEADERS, END_STREAM, 4),
            (CONTINUATION, 0, 4),
            (CONTINUATION, END_HEADERS, 2)
        ]
    );
    let padded = Frame::new(HEADERS, PADDED | PRIORITY_FLAG | END_HEADERS, 1, {
        let mut p = vec![2, 0, 0, 0, 0, 16];
        p.extend_from_slice(b"block");
        p.extend_from_slice(&[0, 0]);
        p
    });
    assert_eq!(padded.header_fragment(), Some(&b"block"[..]));
    let lying = Frame::new(HEADERS, PADDED, 1, vec![9, 1]);
    assert_eq!(lying.header_fragment(), None);
}

#[test]
fn hpack_integers_match_rfc_7541_c1() {
    for (value, prefix, bytes) in [
        (10usize, 5u8, &[0x0a][..]),
        (1337, 5, &[0x1f, 0x9a, 0x0a]),
        (42, 8, &[0x2a]),
        (31, 5, &[0x1f, 0x00]),
    ] {
        let mut out = Vec::new();
        encode_int(value, prefix, 0, &mut out);
        assert_eq!(out, bytes, "{value} with a {prefix}-bit prefix");
        let mut at = 0;
        assert_eq!(decode_int(bytes, &mut at, prefix).unwrap(), value);
        assert_eq!(at, bytes.len());
    }
    let mut at = 0;
    let endless = [0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(decode_int(&endless, &mut at, 5).is_err());
}
