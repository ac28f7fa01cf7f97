//! What the hand-written backend leg does with each kind of answer to an upgrade request: a refusal
//! reaches the client as an ordinary response with its body framed as the backend framed it (length,
//! chunked, until close, none), interim responses are skipped, broken heads are 502, and bytes sent
//! right behind a 101 are the tunnel's first.

mod support;

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::*;
use wsgate_proto::head::{parse_response, BodyKind, ChunkedDecoder, HeadLimits};

fn config(backend: SocketAddr) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
upstreams: {{ u: {{ endpoints: ["{backend}"], response_timeout: 5s }} }}
routes: [{{ name: ws, match: {{ path_prefix: "/" }}, upstream: u }}]
"#
    )
}

/// A backend that reads one request head, writes `answer(accept)` in one write, and closes.
async fn one_shot_backend(answer: impl Fn(&str) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = socket.accept().await else {
            return;
        };
        let head = read_head(&mut stream).await;
        let key = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default();
        let accept = wsgate_proto::handshake::accept_key(key.as_bytes());
        let _ = stream.write_all(&answer(&accept)).await;
        let _ = stream.shutdown().await;
        // Held until the client side has read everything: a close-delimited body ends at our FIN.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest)).await;
    });
    addr
}

/// The client's response to an upgrade: status, head and the whole body, decoded from the framing
/// wsgate chose toward the client.
struct Answered {
    status: u16,
    head: String,
    body: Vec<u8>,
    stream: TcpStream,
}

async fn upgrade(addr: SocketAddr) -> Answered {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = upgrade_request("/ws", "");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let limits = HeadLimits::default();
    let head = loop {
        if let Some(head) = parse_response(&buf, limits).unwrap() {
            break head;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
            .await
            .expect("a response head in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before a head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..head.len]).into_owned();
    let mut rest = buf.split_off(head.len);
    let body = match head.body(&http::Method::GET).unwrap() {
        BodyKind::None => Vec::new(),
        BodyKind::Length(n) => {
            while (rest.len() as u64) < n {
                let mut chunk = [0u8; 4096];
                let got = stream.read(&mut chunk).await.unwrap();
                assert!(got > 0, "body cut short: {rest:?}");
                rest.extend_from_slice(&chunk[..got]);
            }
            rest.truncate(n as usize);
            rest
        }
        BodyKind::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut body = Vec::new();
            loop {
                let decoded = decoder.decode(&rest).unwrap();
                body.extend_from_slice(&rest[decoded.data.clone()]);
                rest.drain(..decoded.consumed);
                if decoded.done {
                    break body;
                }
                if decoded.consumed == 0 || rest.is_empty() {
                    let mut chunk = [0u8; 4096];
                    let got = stream.read(&mut chunk).await.unwrap();
                    assert!(got > 0, "chunked body cut short");
                    rest.extend_from_slice(&chunk[..got]);
                }
            }
        }
        BodyKind::UntilClose => {
            stream.read_to_end(&mut rest).await.unwrap();
            rest
        }
    };
    Answered {
        status: head.status.as_u16(),
        head: text,
        body,
        stream,
    }
}

async fn answered(
    answer: impl Fn(&str) -> Vec<u8> + Send + 'static,
) -> (Answered, wsgate::Running) {
    let backend = one_shot_backend(answer).await;
    let running = start(&config(backend)).await;
    let addr = running.listener_addr("public").unwrap();
    (upgrade(addr).await, running)
}

fn handshakes(running: &wsgate::Running, result: &str) -> Option<f64> {
    let text = running.metrics_text();
    metric(
        &text,
        "wsgate_ws_handshakes_total",
        &[("route", "ws"), ("result", result)],
    )
}

/// The client connection still speaks HTTP after a refusal.
async fn still_http(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let next = read_head(stream).await;
    assert!(next.starts_with("HTTP/1.1 "), "{next}");
}

#[tokio::test]
async fn a_refusal_with_content_length_reaches_the_client_whole() {
    let (mut got, running) = answered(|_| {
        // Bytes past the body are not part of it: the connection serves this answer only.
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nX-From: backend\r\n\r\nforbiddenTRAILING"
            .to_vec()
    })
    .await;
    assert_eq!(got.status, 403, "{}", got.head);
    assert!(
        got.head.to_ascii_lowercase().contains("x-from: backend"),
        "{}",
        got.head
    );
    assert_eq!(got.body, b"forbidden");
    assert_eq!(handshakes(&running, "upstream_rejected"), Some(1.0));
    still_http(&mut got.stream).await;
}

#[tokio::test]
async fn a_chunked_refusal_is_decoded_and_framed_again() {
    let (mut got, running) = answered(|_| {
        b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
            .to_vec()
    })
    .await;
    assert_eq!(got.status, 401, "{}", got.head);
    assert_eq!(got.body, b"hello world");
    assert_eq!(handshakes(&running, "upstream_rejected"), Some(1.0));
    still_http(&mut got.stream).await;
}

#[tokio::test]
async fn a_close_delimited_refusal_ends_at_the_backends_close() {
    let (got, _running) = answered(|_| {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\ngoing away, come back later".to_vec()
    })
    .await;
    assert_eq!(got.status, 503, "{}", got.head);
    assert_eq!(got.body, b"going away, come back later");
}

#[tokio::test]
async fn statuses_without_a_body_get_none() {
    for status in ["204 No Content", "304 Not Modified"] {
        let (mut got, _running) = answered(move |_| {
            // A length on a 304 describes the resource, not this response: no body follows.
            format!("HTTP/1.1 {status}\r\nContent-Length: 20\r\n\r\n").into_bytes()
        })
        .await;
        assert_eq!(got.status.to_string(), status[..3], "{}", got.head);
        assert!(got.body.is_empty());
        still_http(&mut got.stream).await;
    }
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let (got, _running) = answered(|_| {
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
          HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope"
            .to_vec()
    })
    .await;
    assert_eq!(got.status, 404, "{}", got.head);
    assert_eq!(got.body, b"nope");
}

#[tokio::test]
async fn a_body_cut_short_ends_the_client_connection() {
    let backend = one_shot_backend(|_| {
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nshort".to_vec()
    })
    .await;
    let running = start(&config(backend)).await;
    let addr = running.listener_addr("public").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(upgrade_request("/ws", "").as_bytes())
        .await
        .unwrap();
    // The 100 announced bytes never come: the connection ends (hyper drops what it had not sent
    // yet), and what the client got is never a response it could take for whole.
    let mut all = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut all))
        .await
        .expect("the client connection ends")
        .unwrap();
    let text = String::from_utf8_lossy(&all);
    if !all.is_empty() {
        assert!(text.starts_with("HTTP/1.1 403 "), "{text}");
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        assert!(body.len() < 100, "{text}");
    }
}

#[tokio::test]
async fn broken_heads_are_502() {
    let cases: [(&str, Vec<u8>); 4] = [
        ("garbage", b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
        (
            "bad length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx".to_vec(),
        ),
        ("closed before a head", b"HTTP/1.1 101 Swi".to_vec()),
        ("a head over 64 KiB", {
            let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..2000 {
                head.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "p".repeat(40)).as_bytes());
            }
            head
        }),
    ];
    for (name, answer) in cases {
        let backend = one_shot_backend(move |_| answer.clone()).await;
        let running = start(&config(backend)).await;
        let addr = running.listener_addr("public").unwrap();
        let (_, head) = raw_request(addr, &upgrade_request("/ws", "")).await;
        assert!(head.starts_with("HTTP/1.1 502 "), "{name}: {head}");
        assert_eq!(
            handshakes(&running, "upstream_unavailable"),
            Some(1.0),
            "{name}"
        );
    }
}

#[tokio::test]
async fn frames_sent_right_behind_the_101_are_the_tunnels_first() {
    let backend = one_shot_backend(|accept| {
        // The 101 and a frame in one segment: the frame is read with the head.
        let mut answer = switching(accept).into_bytes();
        answer.extend_from_slice(&frame(0x81, b"first", None));
        answer
    })
    .await;
    let running = start(&config(backend)).await;
    let addr = running.listener_addr("public").unwrap();
    let (mut stream, head) = raw_request(addr, &upgrade_request("/ws", "")).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let first = read_frame(&mut stream).await;
    assert_eq!(first, Some((0x81, b"first".to_vec())));
    assert_eq!(handshakes(&running, "ok"), Some(1.0));
}
