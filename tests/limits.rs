//! Limits: max_connections per listener, the request head size (431), the per-route tunnel cap, and
//! write_timeout for a peer that stops reading.

mod support;

use std::net::SocketAddr;

use support::*;

fn config(backend: SocketAddr, listener: &str, websocket: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" {listener} }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: echo, upstream: echo, websocket: {websocket} }}]
"#
    )
}

#[tokio::test]
async fn listener_max_connections_answers_503_and_frees_slots() {
    let (backend, _) = echo_backend().await;
    let running = start(&config(backend, ", max_connections: 2", "{}")).await;
    let addr = running.listener_addr("public").unwrap();
    let first = RawClient::connect(addr).await;
    let _second = RawClient::connect(addr).await;
    // Tunnels count as connections: the third is refused.
    let (mut third, head) = raw_request(addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(read_to_end(&mut third).await.is_empty());
    let labels = [("listener", "public")];
    assert_eq!(
        metric(
            &running.metrics_text(),
            "wsgate_listener_connections_rejected_total",
            &labels
        ),
        Some(1.0)
    );
    // When a tunnel ends its slot is free again.
    drop(first);
    tunnels_closed_to(&running, 1).await;
    let _again = RawClient::connect(addr).await;
}

async fn tunnels_closed_to(running: &wsgate::Running, n: usize) {
    eventually("a slot freed", || {
        (running.live_connections() <= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn oversized_request_head_is_431() {
    let (backend, _) = echo_backend().await;
    let running = start(&config(backend, ", max_request_head_size: 8KiB", "{}")).await;
    let addr = running.listener_addr("public").unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let (_, head) = raw_request(addr, &big).await;
    assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
}

#[tokio::test]
async fn route_tunnel_cap_answers_503() {
    let (backend, _) = echo_backend().await;
    let running = start(&config(backend, "", "{ max_connections: 1 }")).await;
    let addr = running.listener_addr("public").unwrap();
    let first = RawClient::connect(addr).await;
    let (_, head) = raw_request(addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    let labels = [("route", "echo"), ("result", "over_capacity")];
    assert_eq!(
        metric(
            &running.metrics_text(),
            "wsgate_ws_handshakes_total",
            &labels
        ),
        Some(1.0)
    );
    drop(first);
    tunnels_closed(&running, "echo").await;
    let _again = RawClient::connect(addr).await;
}

#[tokio::test]
async fn client_that_stops_reading_is_cut_after_write_timeout() {
    // The backend sends 32 MiB at once; the client never reads.
    let flood: Vec<u8> = (0..512)
        .flat_map(|_| frame(0x82, &[7u8; 65535], None))
        .collect();
    let (backend, seen) = raw_backend(switching, flood).await;
    let running = start(&config(backend, "", "{ write_timeout: 300ms }")).await;
    let addr = running.listener_addr("public").unwrap();
    let client = RawClient::connect(addr).await;
    // The backend is told the client went away (within the 5 s bound of `eventually`; when the
    // write timeout fires is for the paused-clock tests of the relay).
    eventually("backend close", || {
        let seen = seen.lock().unwrap();
        parse_frames(&seen.bytes).first().cloned()
    })
    .await;
    let frames = parse_frames(&seen.lock().unwrap().bytes);
    assert_eq!(frames, vec![(0x88, 1001u16.to_be_bytes().to_vec())]);
    tunnels_closed(&running, "echo").await;
    drop(client);
}
