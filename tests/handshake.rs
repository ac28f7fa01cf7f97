//! The handshake on both legs: every rejection with its status and headers, HTTP/1.0 and h2c
//! upgrades proxied as plain HTTP, and upstream answers that must never become a tunnel.

mod support;

use std::net::SocketAddr;

use support::*;

fn config(backend: SocketAddr) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ b: {{ endpoints: ["{backend}"] }} }}
routes:
  - name: ws
    match: {{ path_prefix: "/ws" }}
    upstream: b
    websocket: {{ allowed_origins: ["https://good.example"], subprotocols: ["chat.v1"] }}
  - name: hosted
    match: {{ host: "only.example", path_prefix: "/" }}
    upstream: b
"#
    )
}

/// (case, raw request, expected status, expected headers)
type Rejection = (
    &'static str,
    String,
    &'static str,
    Vec<(&'static str, &'static str)>,
);
/// Builds the backend's raw answer from the correct accept value.
type Respond = fn(&str) -> String;

const ORIGIN: &str = "Origin: https://good.example\r\n";

async fn head_of(addr: SocketAddr, request: &str) -> String {
    raw_request(addr, request).await.1
}

fn has_header(head: &str, name: &str, value: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.eq_ignore_ascii_case(name) && v.trim() == value)
    })
}

#[tokio::test]
async fn client_rejections() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let running = start(&config(backend)).await;
    let addr = running.listener_addr("public").unwrap();
    let key = new_key();
    let base = |method: &str, extra: &str| {
        format!(
            "{method} /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
        )
    };
    let good = format!("Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ORIGIN}");
    let cases: Vec<Rejection> = vec![
        ("POST", base("POST", &good), "405", vec![("allow", "GET")]),
        (
            "version 8",
            base("GET", &good.replace("Version: 13", "Version: 8")),
            "426",
            vec![("sec-websocket-version", "13"), ("upgrade", "websocket")],
        ),
        (
            "no version",
            base("GET", &good.replace("Sec-WebSocket-Version: 13\r\n", "")),
            "426",
            vec![("sec-websocket-version", "13")],
        ),
        (
            "key of 15 bytes",
            base("GET", &good.replace(&key, "AAAAAAAAAAAAAAAAAAAA")),
            "400",
            vec![],
        ),
        (
            "key not base64",
            base("GET", &good.replace(&key, "%%%%not-base64%%%%%%%%")),
            "400",
            vec![],
        ),
        (
            "no key",
            base(
                "GET",
                &good.replace(&format!("Sec-WebSocket-Key: {key}\r\n"), ""),
            ),
            "400",
            vec![],
        ),
        (
            "Connection without upgrade",
            base("GET", &good).replace("Connection: Upgrade", "Connection: keep-alive"),
            "400",
            vec![],
        ),
        (
            "duplicate key",
            base(
                "GET",
                &format!("{good}Sec-WebSocket-Key: {}\r\n", new_key()),
            ),
            "400",
            vec![],
        ),
        (
            "duplicate version",
            base("GET", &format!("{good}Sec-WebSocket-Version: 13\r\n")),
            "400",
            vec![],
        ),
        (
            "body",
            base("GET", &format!("{good}Content-Length: 5\r\n")) + "hello",
            "400",
            vec![],
        ),
        (
            "chunked body",
            base("GET", &format!("{good}Transfer-Encoding: chunked\r\n")) + "0\r\n\r\n",
            "400",
            vec![],
        ),
        (
            "bad subprotocol syntax",
            base("GET", &format!("{good}Sec-WebSocket-Protocol: chat v1\r\n")),
            "400",
            vec![],
        ),
        (
            "Origin not allowed",
            base(
                "GET",
                &good.replace("https://good.example", "https://evil.example"),
            ),
            "403",
            vec![],
        ),
        (
            "no Origin",
            base("GET", &good.replace(ORIGIN, "")),
            "403",
            vec![],
        ),
        (
            "no route",
            base("GET", &good).replace("GET /ws", "GET /elsewhere"),
            "404",
            vec![],
        ),
    ];
    assert!(cases.len() >= 12);
    for (name, request, status, headers) in cases {
        let head = head_of(addr, &request).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{name}: {head}"
        );
        for (header, value) in headers {
            assert!(
                has_header(&head, header, value),
                "{name}: {header} in {head}"
            );
        }
    }
    // None of them reached the backend.
    assert!(seen.lock().unwrap().head.is_empty());
    let text = scrape(running.admin_addr().unwrap()).await;
    let result = |route: &str, r: &str| {
        metric(
            &text,
            "wsgate_ws_handshakes_total",
            &[("route", route), ("result", r)],
        )
    };
    assert_eq!(result("ws", "bad_request"), Some(10.0));
    assert_eq!(result("ws", "version"), Some(2.0));
    assert_eq!(result("ws", "forbidden_origin"), Some(2.0));
    assert_eq!(result("none", "no_route"), Some(1.0));
}

fn plain_ok(_: &str) -> String {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_owned()
}

#[tokio::test]
async fn http10_upgrade_is_proxied_as_plain_http() {
    let (backend, seen) = raw_backend(plain_ok, vec![]).await;
    let running = start(&config(backend)).await;
    let addr = running.listener_addr("public").unwrap();
    let request = format!(
        "GET /ws HTTP/1.0\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        new_key()
    );
    let (mut stream, head) = raw_request(addr, &request).await;
    assert!(head.contains(" 200 "), "{head}");
    assert_eq!(read_to_end(&mut stream).await, b"ok");
    let backend_head = seen.lock().unwrap().head.to_ascii_lowercase();
    assert!(!backend_head.contains("upgrade"), "{backend_head}");
}

#[tokio::test]
async fn h2c_upgrade_never_reaches_the_backend() {
    let (backend, seen) = raw_backend(plain_ok, vec![]).await;
    let running = start(&config(backend)).await;
    let addr = running.listener_addr("public").unwrap();
    let request =
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                   HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let (mut stream, head) = raw_request(addr, request).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let mut body = [0u8; 2];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut body)
        .await
        .unwrap();
    assert_eq!(&body, b"ok");
    let backend_head = seen.lock().unwrap().head.to_ascii_lowercase();
    assert!(
        backend_head.starts_with("get /ws http/1.1"),
        "{backend_head}"
    );
    assert!(!backend_head.contains("upgrade"), "{backend_head}");
    assert!(!backend_head.contains("http2-settings"), "{backend_head}");
}

/// Sends a valid upgrade; returns the client stream and the response head.
async fn upgrade_via(addr: SocketAddr, extra: &str) -> (tokio::net::TcpStream, String) {
    raw_request(addr, &upgrade_request("/ws", &format!("{ORIGIN}{extra}"))).await
}

#[tokio::test]
async fn upstream_200_stays_http() {
    let (backend, seen) = raw_backend(
        |_: &str| "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-From: backend\r\n\r\nhello".to_owned(),
        vec![],
    )
    .await;
    let running = start(&config(backend)).await;
    let addr = running.listener_addr("public").unwrap();
    let (mut stream, head) = upgrade_via(addr, "").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(has_header(&head, "x-from", "backend"), "{head}");
    let mut body = [0u8; 5];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut body)
        .await
        .unwrap();
    assert_eq!(&body, b"hello");
    // The same client connection still speaks HTTP: a follow-up request is parsed as one.
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"GET /elsewhere HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let next = read_head(&mut stream).await;
    assert!(next.starts_with("HTTP/1.1 404 "), "{next}");
    assert!(seen
        .lock()
        .unwrap()
        .head
        .to_ascii_lowercase()
        .contains("sec-websocket-key"));
    let text = running.metrics_text();
    let labels = [("route", "ws"), ("result", "upstream_rejected")];
    assert_eq!(
        metric(&text, "wsgate_ws_handshakes_total", &labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn bad_upstream_101s_are_502_and_never_tunnels() {
    let cases: Vec<(&str, Respond, &str)> = vec![
        (
            "wrong accept",
            |_| switching("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "bad_accept",
        ),
        (
            "subprotocol not offered",
            |accept| {
                switching(accept).replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat.v9\r\n\r\n")
            },
            "bad_subprotocol",
        ),
        (
            "extension not offered",
            |accept| {
                switching(accept).replace(
                    "\r\n\r\n",
                    "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                )
            },
            "bad_extension",
        ),
        (
            "101 to h2c",
            |accept| switching(accept).replace("Upgrade: websocket", "Upgrade: h2c"),
            "upstream_rejected",
        ),
    ];
    for (name, respond, result) in cases {
        let frame_after = frame(0x81, b"smuggled", None);
        let (backend, seen) = raw_backend(respond, frame_after).await;
        let running = start(&config(backend)).await;
        let addr = running.listener_addr("public").unwrap();
        let (mut stream, head) = upgrade_via(addr, "Sec-WebSocket-Protocol: chat.v1\r\n").await;
        assert!(head.starts_with("HTTP/1.1 502 "), "{name}: {head}");
        // The backend connection is closed, and nothing it sent reaches the client.
        eventually(name, || seen.lock().unwrap().closed.then_some(())).await;
        let rest = rest_after_answer(&mut stream, &head).await;
        let text = String::from_utf8_lossy(&rest);
        assert!(!text.contains("smuggled"), "{name}: {text}");
        let metrics = running.metrics_text();
        let labels = [("route", "ws"), ("result", result)];
        assert_eq!(
            metric(&metrics, "wsgate_ws_handshakes_total", &labels),
            Some(1.0),
            "{name}"
        );
    }
}

#[tokio::test]
async fn upstream_refusing_is_502_and_counted() {
    // A port with nothing listening.
    let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = unused.local_addr().unwrap();
    drop(unused);
    let running = start(&config(backend)).await;
    let addr = running.listener_addr("public").unwrap();
    let (_, head) = upgrade_via(addr, "").await;
    assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
    let text = running.metrics_text();
    let labels = [("route", "ws"), ("result", "upstream_unavailable")];
    assert_eq!(
        metric(&text, "wsgate_ws_handshakes_total", &labels),
        Some(1.0)
    );
    let errors = [("upstream", "b"), ("endpoint", &backend.to_string()[..])];
    assert_eq!(
        metric(&text, "wsgate_upstream_connect_errors_total", &errors),
        Some(1.0)
    );
}
