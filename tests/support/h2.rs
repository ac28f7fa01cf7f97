//! HTTP/2 clients of the tests: hyper's own client (prior knowledge on plain TCP, or ALPN h2 over
//! TLS), ordinary requests, and WebSockets over extended CONNECT (RFC 8441) as tokio-tungstenite
//! streams, so that the far end is a WebSocket implementation that is not wsgate's.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::TIMEOUT;

pub type H2 = SendRequest<Empty<Bytes>>;
pub type H2WebSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// An HTTP/2 connection over `io`; its driver runs in a task of its own.
pub async fn handshake<I>(io: I) -> H2
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(io))
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// HTTP/2 with prior knowledge to a plain listener.
pub async fn connect(addr: SocketAddr) -> H2 {
    handshake(TcpStream::connect(addr).await.unwrap()).await
}

/// A GET of `path` on `authority`; the response head and its whole body.
pub async fn get(h2: &mut H2, authority: &str, path: &str) -> (Response<()>, Bytes) {
    let req = Request::get(format!("http://{authority}{path}"))
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(TIMEOUT, h2.send_request(req))
        .await
        .expect("response in time")
        .expect("a response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a body").to_bytes();
    (Response::from_parts(parts, ()), body)
}

/// An extended CONNECT for a WebSocket on `path`, with `headers` added; the stream's response.
pub async fn connect_websocket(
    h2: &mut H2,
    scheme: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response<hyper::body::Incoming> {
    let mut req = Request::connect(format!("{scheme}://{authority}{path}"))
        .header("sec-websocket-version", "13")
        .extension(hyper::ext::Protocol::from_static("websocket"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Empty::new()).unwrap();
    // The server's SETTINGS (with ENABLE_CONNECT_PROTOCOL) may not have arrived right after the
    // handshake; h2 refuses an extended CONNECT until they have.
    for _ in 0..100 {
        h2.ready().await.expect("connection ready");
        match h2.send_request(clone_request(&req)).await {
            Ok(response) => return response,
            Err(e) if is_protocol_not_enabled(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => panic!("extended CONNECT failed: {e:?}"),
        }
    }
    panic!("the server never enabled extended CONNECT");
}

/// h2's refusal to send an extended CONNECT before the server's SETTINGS allowed it (it has no
/// error kind of its own, only its message).
fn is_protocol_not_enabled(e: &hyper::Error) -> bool {
    format!("{e:?}").contains("extended")
}

fn clone_request(req: &Request<Empty<Bytes>>) -> Request<Empty<Bytes>> {
    let mut copy = Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .body(Empty::new())
        .unwrap();
    *copy.headers_mut() = req.headers().clone();
    if let Some(p) = req.extensions().get::<hyper::ext::Protocol>() {
        copy.extensions_mut().insert(p.clone());
    }
    copy
}

/// A WebSocket over a new stream of `h2`: asserts the 200, returns it and the client stream.
pub async fn websocket(
    h2: &mut H2,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (Response<()>, H2WebSocket) {
    let response = connect_websocket(h2, "http", authority, path, headers).await;
    assert_eq!(response.status(), StatusCode::OK, "{response:?}");
    let (parts, body) = response.into_parts();
    let upgraded = hyper::upgrade::on(Response::from_parts(parts.clone(), body))
        .await
        .expect("the stream is handed over");
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    (Response::from_parts(parts, ()), ws)
}
