//! Request smuggling defences at the HTTP layer (RFC 9112 §2.2, §6.1, §6.3): requests two parsers could
//! read differently are refused before any byte reaches a backend, and what is forwarded is re-framed by
//! hyper, so the backend sees exactly one reading. (Upgrade answers that must not become tunnels are in
//! tests/handshake.rs.)

mod support;

use support::*;
use tokio::io::AsyncWriteExt;

fn ok(_: &str) -> String {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_owned()
}

/// Sends `request` through wsgate to a backend that serves one connection and returns the response
/// head, the request head the backend got, and what followed the response. When the answer is not a
/// 200, a marker request `GET /marker` follows on a new connection: the backend records a head
/// before it answers, so once the marker is answered its head is the first the backend got, unless
/// the refused request reached it first.
async fn through(request: &[u8]) -> (String, String, Vec<u8>) {
    let (backend, seen) = raw_backend(ok, vec![]).await;
    let (_running, addr) = start_for(backend, "{}").await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let head = read_head(&mut stream).await;
    let rest = read_to_end(&mut stream).await;
    if !head.starts_with("HTTP/1.1 200 ") {
        let (_, marker) = raw_request(
            addr,
            "GET /marker HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(marker.starts_with("HTTP/1.1 200 "), "marker: {marker}");
    }
    let backend_head = seen.lock().unwrap().head.clone();
    (head, backend_head, rest)
}

#[tokio::test]
async fn refused_before_the_backend() {
    let cases: &[(&str, &[u8])] = &[
        (
            "conflicting Content-Length",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "list-valued Content-Length",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello",
        ),
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n",
        ),
        (
            "coding other than chunked last",
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
    ];
    for (name, request) in cases {
        let (head, backend_head, rest) = through(request).await;
        assert!(head.starts_with("HTTP/1.1 400 "), "{name}: {head}");
        assert!(
            backend_head.starts_with("GET /marker HTTP/1.1\r\n"),
            "{name}: reached the backend: {backend_head}"
        );
        // The connection closes after the 400: no second request is read from it.
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            !rest.contains("HTTP/1.1"),
            "{name}: a second response: {rest}"
        );
    }
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_read_once_then_closed() {
    // RFC 9112 §6.1: Transfer-Encoding wins, Content-Length is dropped, and the connection closes after
    // the response, so the request hidden after the chunked body is never parsed.
    let request =
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
                    0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
    let (head, backend_head, rest) = through(request).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let lower = backend_head.to_ascii_lowercase();
    assert!(
        lower.starts_with("post /a http/1.1\r\n"),
        "{backend_head:?}"
    );
    assert!(
        lower.contains("transfer-encoding: chunked"),
        "{backend_head:?}"
    );
    assert!(
        !lower.contains("content-length"),
        "two framings reached the backend: {backend_head:?}"
    );
    assert!(!lower.contains("smuggled"), "{backend_head:?}");
    let rest = String::from_utf8_lossy(&rest);
    assert!(!rest.contains("HTTP/1.1"), "a second response: {rest}");
}

#[tokio::test]
async fn bare_lf_is_normalised_to_one_reading() {
    let (head, backend_head, _) =
        through(b"GET /x HTTP/1.1\nHost: h\nX-A: 1\nConnection: close\n\n").await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        backend_head.starts_with("GET /x HTTP/1.1\r\n"),
        "{backend_head:?}"
    );
    assert!(backend_head.contains("x-a: 1\r\n"), "{backend_head:?}");
    assert!(
        !backend_head.replace("\r\n", "").contains('\n'),
        "a bare LF reached the backend: {backend_head:?}"
    );
}
