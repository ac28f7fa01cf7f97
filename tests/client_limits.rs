//! Per-client limits (tunnels per IP on a route and on a listener, the handshake rate, the bounded
//! table of addresses) from many source addresses on 127.0.0.0/8, and the per-tunnel traffic limit
//! and max_duration end to end.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::*;

fn config(backend: SocketAddr, listener: &str, route: &str, websocket: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" {listener} }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: echo, upstream: echo, websocket: {websocket} {route} }}]
"#
    )
}

fn limited(running: &wsgate::Running, limit: &str) -> f64 {
    let labels = [("route", "echo"), ("limit", limit)];
    metric(&running.metrics_text(), "wsgate_limited_total", &labels).unwrap_or(0.0)
}

fn retry_after(head: &str) -> Option<u64> {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn tunnels_per_client_ip_on_a_route_past_the_limit_get_429() {
    let (backend, _) = echo_backend().await;
    let yaml = config(backend, "", ", client_limits: { max_tunnels: 2 }", "{}");
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();

    let request = || upgrade_request("/", "");
    let (first, head) = request_from("127.0.0.2", addr, &request()).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_second, head) = request_from("127.0.0.2", addr, &request()).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_, head) = request_from("127.0.0.2", addr, &request()).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert_eq!(retry_after(&head), Some(1), "{head}");
    // Another address has places of its own.
    let (_other, head) = request_from("127.0.0.3", addr, &request()).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(limited(&running, "client_tunnels_route"), 1.0);
    let handshakes = [("route", "echo"), ("result", "limited")];
    let text = running.metrics_text();
    assert_eq!(
        metric(&text, "wsgate_ws_handshakes_total", &handshakes),
        Some(1.0)
    );

    // A tunnel that ends gives its place back.
    drop(first);
    let again = eventually_async("a place freed", || async {
        let (stream, head) = request_from("127.0.0.2", addr, &request()).await;
        head.starts_with("HTTP/1.1 101").then_some(stream)
    })
    .await;
    drop(again);
}

#[tokio::test]
async fn tunnels_per_client_ip_count_across_a_listener() {
    let (backend, _) = echo_backend().await;
    let yaml = config(backend, ", client_limits: { max_tunnels: 1 }", "", "{}");
    let running = start(&yaml).await;
    let addr = running.listener_addr("public").unwrap();
    let (_held, head) = request_from("127.0.0.4", addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_, head) = request_from("127.0.0.4", addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert_eq!(limited(&running, "client_tunnels_listener"), 1.0);
}

#[tokio::test]
async fn the_handshake_rate_per_client_ip_refuses_past_its_burst() {
    let (backend, _) = echo_backend().await;
    let route = ", client_limits: { handshake_rate: { rate: 1, burst: 3 } }";
    let running = start(&config(backend, "", route, "{}")).await;
    let addr = running.listener_addr("public").unwrap();
    let started = Instant::now();
    let mut admitted = 0u64;
    let mut refused = None;
    for _ in 0..20 {
        let (_, head) = request_from("127.0.0.5", addr, &upgrade_request("/", "")).await;
        if head.starts_with("HTTP/1.1 429") {
            refused = Some(head);
            break;
        }
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        admitted += 1;
    }
    let head = refused.expect("a handshake refused within 20");
    // The burst, plus at most what refilled meanwhile at 1 per second.
    let refilled = started.elapsed().as_secs() + 1;
    assert!(
        (3..=3 + refilled).contains(&admitted),
        "{admitted} admitted"
    );
    assert!(retry_after(&head).is_some_and(|s| s >= 1), "{head}");
    assert_eq!(limited(&running, "client_handshake_rate_route"), 1.0);
    // Other addresses have buckets of their own.
    let (_, head) = request_from("127.0.0.6", addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[tokio::test]
async fn a_flood_of_addresses_cannot_grow_the_table_past_its_size() {
    let (backend, _) = echo_backend().await;
    let route = ", client_limits: { max_tunnels: 1, table_size: 16 }";
    let running = start(&config(backend, "", route, "{}")).await;
    let addr = running.listener_addr("public").unwrap();
    let mut open = Vec::new();
    let mut full = 0;
    for i in 1..=40 {
        let ip = format!("127.0.1.{i}");
        let (stream, head) = request_from(&ip, addr, &upgrade_request("/", "")).await;
        if head.starts_with("HTTP/1.1 101") {
            open.push(stream);
        } else {
            // The table is full of other clients: wsgate's state, not this client's doing.
            assert!(head.starts_with("HTTP/1.1 503"), "{head}");
            assert_eq!(retry_after(&head), Some(1), "{head}");
            full += 1;
        }
    }
    // Every entry holds a tunnel: none can be forgotten, so new addresses are refused.
    assert!((1..=16).contains(&open.len()), "{} admitted", open.len());
    assert_eq!(full, 40 - open.len());
    assert_eq!(limited(&running, "client_table_full"), full as f64);

    // Once their tunnels end, idle entries make room for new addresses.
    drop(open);
    eventually_async("new addresses admitted again", || async {
        let (_, head) = request_from("127.0.2.1", addr, &upgrade_request("/", "")).await;
        head.starts_with("HTTP/1.1 101").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_client_over_its_message_rate_is_closed_with_1008() {
    let (backend, seen) = echo_backend().await;
    let websocket = "{ rate_limit: { messages_per_second: 1, burst: 2, action: close } }";
    let running = start(&config(backend, "", "", websocket)).await;
    let addr = running.listener_addr("public").unwrap();
    let mut client = RawClient::connect(addr).await;
    let burst: Vec<u8> = (0..5)
        .flat_map(|i| client_frame(0x81, format!("m{i}").as_bytes()))
        .collect();
    client.send(&burst).await;
    // The sender's close goes out between frames at once: echoes still on their way are not waited for.
    let close = loop {
        let (first, payload) = client.frame().await.expect("a frame");
        if first == 0x88 {
            break payload;
        }
    };
    assert_eq!(&close[..2], &1008u16.to_be_bytes());
    assert_eq!(&close[2..], b"rate limit exceeded");
    // The backend got 1001, as when a client goes away.
    let code = eventually("the backend's close", || {
        seen.lock().unwrap().messages.iter().find_map(|m| match m {
            tokio_tungstenite::tungstenite::Message::Close(frame) => {
                Some(frame.as_ref().map(|f| u16::from(f.code)))
            }
            _ => None,
        })
    })
    .await;
    assert_eq!(code, Some(1001));
    // The burst reached the backend, the message past it did not (nor anything after).
    let passed = texts(&seen);
    assert!(passed.len() >= 2 && passed.len() < 5, "{passed:?}");
    assert_eq!(passed[..2], ["m0", "m1"]);
    let labels = [("route", "echo"), ("direction", "client_to_upstream")];
    let text = running.metrics_text();
    assert_eq!(
        metric(&text, "wsgate_ws_rate_limited_total", &labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn max_duration_closes_a_tunnel_with_1001_to_both() {
    let (backend, _) = echo_backend().await;
    let websocket = "{ max_duration: 1s }";
    let running = start(&config(backend, "", "", websocket)).await;
    let addr = running.listener_addr("public").unwrap();
    let started = Instant::now();
    let mut client = RawClient::connect(addr).await;
    // Waits for the event, not a window: the close comes at 1 to 1.1 s, never before 1 s.
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match client.frame().await {
                Some((0x88, payload)) => break payload,
                Some(_) => continue,
                None => panic!("the tunnel ended without a close frame"),
            }
        }
    })
    .await
    .expect("a close within 10 s");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(&close[..2], &1001u16.to_be_bytes());
    assert_eq!(&close[2..], b"max duration");
    drop(running);
}
