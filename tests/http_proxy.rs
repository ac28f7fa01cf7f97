//! Plain HTTP through wsgate: streamed bodies, hop-by-hop headers removed, X-Forwarded-* set, routing
//! by host and longest prefix, 404 / 502 / 504, keep-alive.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend that answers with its name, the request line, its headers and its body.
async fn reporting_backend(name: &'static str) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = socket.accept().await {
            tokio::spawn(async move {
                let service = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let mut report = format!("{name} {} {}\n", req.method(), req.uri());
                        for (k, v) in req.headers() {
                            report.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                        }
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        report.push('\n');
                        report.push_str(&String::from_utf8_lossy(&body));
                        let mut response = hyper::Response::new(Full::new(Bytes::from(report)));
                        response
                            .headers_mut()
                            .insert("connection", "keep-alive, x-hop".parse().unwrap());
                        response.headers_mut().insert("x-hop", "1".parse().unwrap());
                        Ok::<_, Infallible>(response)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn config(a: SocketAddr, b: SocketAddr, connect_timeout: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams:
  a: {{ endpoints: ["{a}"], connect_timeout: {connect_timeout} }}
  b: {{ endpoints: ["{b}"] }}
routes:
  - {{ name: a-root, match: {{ path_prefix: "/" }}, upstream: a }}
  - {{ name: b-api, match: {{ path_prefix: "/api" }}, upstream: b }}
  - {{ name: b-host, match: {{ host: "b.example" }}, upstream: b }}
  - {{ name: a-host-api, match: {{ host: "b.example", path_prefix: "/api/a" }}, upstream: a }}
  - {{ name: only-host, match: {{ host: "only.example", path_prefix: "/x" }}, upstream: a }}
"#
    )
}

/// Sends one request on `stream` and reads the response head and its Content-Length body.
async fn exchange(stream: &mut TcpStream, request: &str) -> (String, String) {
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(stream).await;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut body))
        .await
        .unwrap()
        .unwrap();
    (head, String::from_utf8(body).unwrap())
}

async fn get(addr: SocketAddr, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    exchange(&mut stream, request).await
}

async fn setup() -> (wsgate::Running, SocketAddr) {
    let a = reporting_backend("A").await;
    let b = reporting_backend("B").await;
    let running = start(&config(a, b, "1s")).await;
    let addr = running.listener_addr("public").unwrap();
    (running, addr)
}

#[tokio::test]
async fn get_with_forwarded_headers_and_no_hop_by_hop() {
    let (running, addr) = setup().await;
    let (head, body) = get(
        addr,
        "GET /page?q=1 HTTP/1.1\r\nHost: site.example:8080\r\nConnection: keep-alive, X-Drop\r\n\
         X-Drop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Keep: yes\r\n\
         X-Forwarded-For: 10.1.2.3\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("x-hop"),
        "hop-by-hop from the backend: {head}"
    );
    assert!(body.starts_with("A GET /page?q=1\n"), "{body}");
    assert!(body.contains("host: site.example:8080\n"), "{body}");
    assert!(body.contains("x-keep: yes\n"));
    assert!(!body.contains("x-drop"), "{body}");
    assert!(!body.contains("keep-alive: timeout"), "{body}");
    assert!(!body.contains("\nte:"), "{body}");
    assert!(
        body.contains("x-forwarded-for: 10.1.2.3, 127.0.0.1\n"),
        "{body}"
    );
    assert!(body.contains("x-forwarded-proto: http\n"));
    assert!(body.contains("x-forwarded-host: site.example:8080\n"));
    let text = running.metrics_text();
    let labels = [("route", "a-root"), ("method", "GET"), ("status", "200")];
    assert_eq!(
        metric(&text, "wsgate_http_requests_total", &labels),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "wsgate_http_request_duration_seconds_count",
            &[("route", "a-root")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn chunked_post_body_is_streamed_through() {
    let (_running, addr) = setup().await;
    let (head, body) = get(
        addr,
        "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(body.starts_with("A POST /upload\n"), "{body}");
    assert!(body.ends_with("\n\nhello world"), "{body}");
    let (_, body) = get(
        addr,
        "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    assert!(body.ends_with("\n\nabc"), "{body}");
}

#[tokio::test]
async fn routing_by_host_and_longest_prefix() {
    let (_running, addr) = setup().await;
    let cases = [
        ("any.example", "/", "A"),
        ("any.example", "/api/v1", "B"),
        ("B.Example:80", "/anything", "B"),
        ("b.example", "/api/a/deep", "A"),
        ("b.example", "/api/b", "B"),
    ];
    for (host, path, expected) in cases {
        let (_, body) = get(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        )
        .await;
        assert!(
            body.starts_with(&format!("{expected} GET {path}")),
            "{host}{path}: {body}"
        );
    }
}

#[tokio::test]
async fn no_route_is_404() {
    let a = reporting_backend("A").await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
upstreams: {{ a: {{ endpoints: ["{a}"] }} }}
routes: [{{ match: {{ host: "only.example", path_prefix: "/x" }}, upstream: a }}]
"#
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let (head, _) = get(addr, "GET /x HTTP/1.1\r\nHost: other.example\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    let (head, _) = get(addr, "GET /y HTTP/1.1\r\nHost: only.example\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    let (head, _) = get(addr, "GET /x/1 HTTP/1.1\r\nHost: only.example\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
}

#[tokio::test]
async fn refused_upstream_is_502() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = unused.local_addr().unwrap();
    drop(unused);
    let b = reporting_backend("B").await;
    let running = start(&config(dead, b, "1s")).await;
    let addr = running.listener_addr("public").unwrap();
    let (head, _) = get(addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 502 "), "{head}");
    let text = running.metrics_text();
    let labels = [("upstream", "a"), ("endpoint", &dead.to_string()[..])];
    assert_eq!(
        metric(&text, "wsgate_upstream_connect_errors_total", &labels),
        Some(1.0)
    );
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so connects hang.
async fn black_hole() -> (tokio::net::TcpListener, Vec<TcpStream>, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            _ => return (listener, held, addr),
        }
    }
    panic!("the accept queue never filled");
}

#[tokio::test]
async fn connect_timeout_is_504() {
    let (_listener, _held, hole) = black_hole().await;
    let b = reporting_backend("B").await;
    let running = start(&config(hole, b, "300ms")).await;
    let addr = running.listener_addr("public").unwrap();
    let started = std::time::Instant::now();
    let (head, _) = get(addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 504 "), "{head}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The same for an upgrade.
    let (_, head) = raw_request(addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 504 "), "{head}");
    let text = running.metrics_text();
    let labels = [("route", "a-root"), ("result", "timeout")];
    assert_eq!(
        metric(&text, "wsgate_ws_handshakes_total", &labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let (_running, addr) = setup().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for path in ["/one", "/api/two", "/three"] {
        let (head, body) = exchange(
            &mut stream,
            &format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        assert!(body.contains(&format!("GET {path}\n")), "{body}");
    }
}

#[tokio::test]
async fn request_head_must_arrive_within_handshake_timeout() {
    let a = reporting_backend("A").await;
    let yaml = format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0", handshake_timeout: 300ms }}]
upstreams: {{ a: {{ endpoints: ["{a}"] }} }}
routes: [{{ upstream: a }}]
"#
    );
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Half a request head, then silence (a slowloris client).
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: h\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let rest = read_to_end(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

/// A chunked body that breaks framing after its head went upstream is the client's fault: 400, not
/// the 502 of a failing backend.
#[tokio::test]
async fn bad_chunk_in_a_streamed_body_is_400() {
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = backend.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = backend.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let running = start(&config(a, a, "1s")).await;
    let addr = running.listener_addr("public").unwrap();
    let (head, _) = get(
        addr,
        "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    let text = running.metrics_text();
    let labels = |status| [("route", "a-root"), ("method", "POST"), ("status", status)];
    assert_eq!(
        metric(&text, "wsgate_http_requests_total", &labels("400")),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "wsgate_http_requests_total", &labels("502")),
        None
    );
}
