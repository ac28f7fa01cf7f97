//! Load balancing and health: round robin, least connections, sticky hashing, retry on the next
//! endpoint, passive ejection (503 when none is left), response_timeout (504), active health checks.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// An HTTP backend answering its name; `/healthz` answers 200 or 503 as `healthy` says.
async fn named(name: &'static str, healthy: Arc<AtomicBool>) -> (SocketAddr, JoinHandle<()>) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    // Connections live in a JoinSet owned by the task: aborting the task kills them all, as a
    // crashed process would.
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = socket.accept().await {
            let healthy = healthy.clone();
            connections.spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let status =
                        if req.uri().path() == "/healthz" && !healthy.load(Ordering::SeqCst) {
                            503
                        } else {
                            200
                        };
                    async move {
                        let mut response = hyper::Response::new(Full::new(Bytes::from(name)));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

/// A fresh connection per request, so the pool does not decide which endpoint answers.
async fn who(addr: SocketAddr, extra: &str) -> (u16, String) {
    let request = format!("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n{extra}\r\n");
    let (mut stream, head) = raw_request(addr, &request).await;
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = String::from_utf8(read_to_end(&mut stream).await).unwrap();
    (status, body)
}

fn up() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

#[tokio::test]
async fn round_robin_alternates() {
    let (a, _ta) = named("A", up()).await;
    let (b, _tb) = named("B", up()).await;
    let running = start(&upstream_config(&[a, b], "")).await;
    let addr = running.listener_addr("public").unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(who(addr, "").await.1);
    }
    seen.sort();
    assert_eq!(seen, ["A", "A", "B", "B"]);
}

#[tokio::test]
async fn least_connections_counts_open_tunnels() {
    let (a, seen_a) = echo_backend().await;
    let (b, seen_b) = echo_backend().await;
    let running = start(&upstream_config(&[a, b], "    balance: least_connections")).await;
    let addr = running.listener_addr("public").unwrap();
    let mut tunnels = Vec::new();
    for i in 0..6 {
        let mut client = RawClient::connect(addr).await;
        client
            .send(&client_frame(0x81, format!("t{i}").as_bytes()))
            .await;
        client.frame().await.unwrap();
        tunnels.push(client);
    }
    let count = |seen: &Arc<std::sync::Mutex<Seen>>| {
        seen.lock()
            .unwrap()
            .messages
            .iter()
            .filter(|m| m.is_text())
            .count()
    };
    assert_eq!((count(&seen_a), count(&seen_b)), (3, 3));
    // Close the three tunnels on one side: the next three go there.
    let on_a: Vec<usize> = (0..6)
        .filter(|i| {
            let text = format!("t{i}");
            seen_a
                .lock()
                .unwrap()
                .messages
                .iter()
                .any(|m| m.to_text().ok() == Some(text.as_str()))
        })
        .collect();
    for i in on_a.iter().rev() {
        drop(tunnels.remove(*i));
    }
    eventually("A's tunnels closed", || {
        let text = running.metrics_text();
        let labels = [("upstream", "app"), ("endpoint", &a.to_string()[..])];
        (metric(&text, "wsgate_upstream_endpoint_tunnels", &labels) == Some(0.0)).then_some(())
    })
    .await;
    for i in 0..3 {
        let mut client = RawClient::connect(addr).await;
        client
            .send(&client_frame(0x81, format!("u{i}").as_bytes()))
            .await;
        client.frame().await.unwrap();
        tunnels.push(client);
    }
    assert_eq!((count(&seen_a), count(&seen_b)), (6, 3));
}

#[tokio::test]
async fn hash_keeps_a_client_on_one_endpoint() {
    let (a, _ta) = named("A", up()).await;
    let (b, _tb) = named("B", up()).await;
    let (c, _tc) = named("C", up()).await;
    let running = start(&upstream_config(
        &[a, b, c],
        "    balance: hash\n    hash_key: header:X-User",
    ))
    .await;
    let addr = running.listener_addr("public").unwrap();
    let mut owners = std::collections::BTreeSet::new();
    for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        let header = format!("X-User: {user}\r\n");
        let first = who(addr, &header).await.1;
        for _ in 0..5 {
            assert_eq!(who(addr, &header).await.1, first, "{user} moved");
        }
        owners.insert(first);
    }
    assert!(owners.len() >= 2, "all users on one endpoint: {owners:?}");
    // Cookie keys too.
    let running = start(&upstream_config(
        &[a, b, c],
        "    balance: hash\n    hash_key: cookie:sid",
    ))
    .await;
    let addr = running.listener_addr("public").unwrap();
    let cookie = "Cookie: theme=dark; sid=abc123\r\n";
    let first = who(addr, cookie).await.1;
    for _ in 0..5 {
        assert_eq!(who(addr, cookie).await.1, first);
    }
}

#[tokio::test]
async fn killed_endpoint_is_retried_around_and_ejected() {
    let (a, _ta) = named("A", up()).await;
    let (b, tb) = named("B", up()).await;
    let running = start(&upstream_config(
        &[a, b],
        "    max_fails: 1\n    fail_timeout: 30s",
    ))
    .await;
    let addr = running.listener_addr("public").unwrap();
    assert_eq!(who(addr, "").await, (200, "A".into()));
    assert_eq!(who(addr, "").await, (200, "B".into()));
    // B dies mid-test: its next turn fails to connect and is retried on A, then B sits out.
    tb.abort();
    eventually("B refuses", || {
        std::net::TcpStream::connect(b).is_err().then_some(())
    })
    .await;
    for _ in 0..4 {
        assert_eq!(who(addr, "").await, (200, "A".into()));
    }
    let text = running.metrics_text();
    let b_labels = [("upstream", "app"), ("endpoint", &b.to_string()[..])];
    assert_eq!(
        metric(&text, "wsgate_upstream_connect_errors_total", &b_labels),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "wsgate_upstream_endpoint_up", &b_labels),
        Some(0.0)
    );
    let a_labels = [("upstream", "app"), ("endpoint", &a.to_string()[..])];
    assert_eq!(
        metric(&text, "wsgate_upstream_endpoint_up", &a_labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn refused_then_all_ejected_is_503() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = unused.local_addr().unwrap();
    drop(unused);
    let running = start(&upstream_config(&[dead], "    max_fails: 2")).await;
    let addr = running.listener_addr("public").unwrap();
    assert_eq!(who(addr, "").await.0, 502);
    assert_eq!(who(addr, "").await.0, 502);
    // Two failures in a row ejected the only endpoint.
    assert_eq!(who(addr, "").await.0, 503);
    let (_, head) = raw_request(addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
}

#[tokio::test]
async fn silent_backend_is_504_after_response_timeout() {
    // Accepts, reads, never answers.
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((stream, _)) = socket.accept().await {
            held.push(stream);
        }
    });
    let running = start(&upstream_config(&[silent], "    response_timeout: 300ms")).await;
    let addr = running.listener_addr("public").unwrap();
    let started = std::time::Instant::now();
    assert_eq!(who(addr, "").await.0, 504);
    assert!(started.elapsed() < Duration::from_secs(2));
    let (_, head) = raw_request(addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 504 "), "{head}");
}

#[tokio::test]
async fn active_health_checks_take_an_endpoint_out_and_back() {
    let (a, _ta) = named("A", up()).await;
    let b_healthy = up();
    let (b, _tb) = named("B", b_healthy.clone()).await;
    let running = start(&upstream_config(
        &[a, b],
        "    health: { path: /healthz, interval: 250ms, timeout: 200ms }",
    ))
    .await;
    let addr = running.listener_addr("public").unwrap();
    let b_labels = [("upstream", "app"), ("endpoint", &b.to_string()[..])];
    b_healthy.store(false, Ordering::SeqCst);
    eventually("B checked down", || {
        (metric(
            &running.metrics_text(),
            "wsgate_upstream_endpoint_up",
            &b_labels,
        ) == Some(0.0))
        .then_some(())
    })
    .await;
    for _ in 0..4 {
        assert_eq!(who(addr, "").await.1, "A");
    }
    b_healthy.store(true, Ordering::SeqCst);
    eventually("B checked up", || {
        (metric(
            &running.metrics_text(),
            "wsgate_upstream_endpoint_up",
            &b_labels,
        ) == Some(1.0))
        .then_some(())
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(who(addr, "").await.1);
    }
    assert!(seen.contains(&"B".to_owned()), "{seen:?}");
}
