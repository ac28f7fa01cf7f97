//! HTTP/2 toward clients: plain requests proxied to HTTP/1.1 upstreams, and WebSockets over HTTP/2
//! streams (RFC 8441) with every frame checked as on a TCP connection. hyper's HTTP/2 client and
//! tokio-tungstenite on the client side, a tokio-tungstenite or hyper HTTP/1.1 backend.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::h2;
use support::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// A backend that answers with the request line and its headers.
async fn reporting_backend() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = socket.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let mut report =
                        format!("{:?} {} {}\n", req.version(), req.method(), req.uri());
                    for (k, v) in req.headers() {
                        report.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                    }
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    report.push_str(&format!("body: {}", String::from_utf8_lossy(&body)));
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(report))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A plain listener with HTTP/2 by prior knowledge; `/ws` to a WebSocket echo backend with
/// `websocket` as its block, everything else to `http`.
fn config(ws: SocketAddr, http: SocketAddr, websocket: &str) -> String {
    format!(
        r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
    http2: true
admin:
  bind: "127.0.0.1:0"
upstreams:
  echo: {{ endpoints: ["{ws}"], connect_timeout: 1s }}
  http: {{ endpoints: ["{http}"], connect_timeout: 1s }}
routes:
  - name: echo
    match: {{ path_prefix: "/ws" }}
    upstream: echo
    websocket: {websocket}
  - name: web
    match: {{ path_prefix: "/" }}
    upstream: http
"#
    )
}

struct Setup {
    running: wsgate::Running,
    addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
}

async fn setup(websocket: &str) -> Setup {
    let (ws, seen) = echo_backend().await;
    let http = reporting_backend().await;
    let running = start(&config(ws, http, websocket)).await;
    let addr = running.listener_addr("public").unwrap();
    Setup {
        running,
        addr,
        seen,
    }
}

async fn metrics(s: &Setup) -> String {
    scrape(s.running.admin_addr().unwrap()).await
}

#[tokio::test]
async fn a_get_over_http2_reaches_the_backend_as_http1_with_the_authority_as_host() {
    let s = setup("{}").await;
    let mut conn = h2::connect(s.addr).await;
    let (response, body) = h2::get(&mut conn, "app.example:8080", "/page?x=1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let report = String::from_utf8(body.to_vec()).unwrap();
    assert!(report.starts_with("HTTP/1.1 GET /page?x=1\n"), "{report}");
    assert!(report.contains("\nhost: app.example:8080\n"), "{report}");
    assert!(report.contains("\nx-forwarded-proto: http\n"), "{report}");
    assert!(
        report.contains("\nx-forwarded-for: 127.0.0.1\n"),
        "{report}"
    );
    // A second request on the same connection: multiplexed, not a new connection.
    let (again, _) = h2::get(&mut conn, "app.example:8080", "/other").await;
    assert_eq!(again.status(), 200);
    let text = metrics(&s).await;
    let labels = [
        ("route", "web"),
        ("method", "GET"),
        ("status", "200"),
        ("protocol", "h2"),
    ];
    assert_eq!(
        metric(&text, "wsgate_http_requests_total", &labels),
        Some(2.0)
    );
}

#[tokio::test]
async fn http1_still_works_on_a_listener_that_accepts_http2() {
    let s = setup("{}").await;
    let (_stream, head) = raw_request(
        s.addr,
        "GET /plain HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn a_websocket_over_an_http2_stream_is_checked_counted_and_closed_like_one_over_tcp() {
    let s = setup("{ subprotocols: [chat] }").await;
    let mut conn = h2::connect(s.addr).await;
    let (response, mut ws) = h2::websocket(
        &mut conn,
        "app.example",
        "/ws/room",
        &[("sec-websocket-protocol", "chat, other")],
    )
    .await;
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    assert!(response.headers().get("sec-websocket-accept").is_none());
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    ws.close(Some(CloseFrame {
        code: CloseCode::from(4000),
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let close = loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("no close: {other:?}"),
        }
    };
    assert_eq!(close.map(|c| u16::from(c.code)), Some(4000));
    tunnels_closed(&s.running, "echo").await;

    // The backend got an HTTP/1.1 upgrade with a key wsgate chose, and the authority as Host.
    {
        let seen = s.seen.lock().unwrap();
        let header = |name: &str| {
            seen.request_headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("host").as_deref(), Some("app.example"));
        assert_eq!(header("upgrade").as_deref(), Some("websocket"));
        assert_eq!(header("sec-websocket-key").map(|k| k.len()), Some(24));
        assert_eq!(seen.paths, ["/ws/room"]);
    }

    let text = metrics(&s).await;
    let h2 = [("route", "echo"), ("transport", "h2")];
    assert_eq!(metric(&text, "wsgate_ws_connections_total", &h2), Some(1.0));
    let h1 = [("route", "echo"), ("transport", "h1")];
    assert_eq!(metric(&text, "wsgate_ws_connections_total", &h1), Some(0.0));
    let ok = [("route", "echo"), ("result", "ok"), ("transport", "h2")];
    assert_eq!(metric(&text, "wsgate_ws_handshakes_total", &ok), Some(1.0));
    let messages = [
        ("route", "echo"),
        ("direction", "client_to_upstream"),
        ("type", "text"),
    ];
    assert_eq!(
        metric(&text, "wsgate_ws_messages_total", &messages),
        Some(1.0)
    );
    let closes = [
        ("route", "echo"),
        ("direction", "client_to_upstream"),
        ("code", "4xxx"),
    ];
    assert_eq!(metric(&text, "wsgate_ws_closes_total", &closes), Some(1.0));
    let opened = [
        ("route", "echo"),
        ("method", "CONNECT"),
        ("status", "200"),
        ("protocol", "h2"),
    ];
    assert_eq!(
        metric(&text, "wsgate_http_requests_total", &opened),
        Some(1.0)
    );
}

#[tokio::test]
async fn refusals_on_a_stream_have_the_statuses_of_http1_and_leave_the_connection_open() {
    let s = setup(r#"{ allowed_origins: ["https://app.example"] }"#).await;
    let mut conn = h2::connect(s.addr).await;
    let denied = h2::connect_websocket(
        &mut conn,
        "http",
        "a",
        "/ws",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(denied.status(), 403);
    let req = http::Request::connect("http://a/ws")
        .header("sec-websocket-version", "8")
        .header("origin", "https://app.example")
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let version = conn.send_request(req).await.unwrap();
    assert_eq!(version.status(), 426);
    assert_eq!(version.headers()["sec-websocket-version"], "13");
    // The connection still serves.
    let (response, _ws) =
        h2::websocket(&mut conn, "a", "/ws", &[("origin", "https://app.example")]).await;
    assert_eq!(response.status(), 200);
    let text = metrics(&s).await;
    for (result, want) in [("forbidden_origin", 1.0), ("version", 1.0), ("ok", 1.0)] {
        let labels = [("route", "echo"), ("result", result), ("transport", "h2")];
        assert_eq!(
            metric(&text, "wsgate_ws_handshakes_total", &labels),
            Some(want),
            "{result}"
        );
    }
}
