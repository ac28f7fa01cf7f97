//! After a scripted exchange, the frame, byte, message, connection and close counters have exact
//! values per opcode and direction.

mod support;

use support::*;

#[tokio::test]
async fn counters_after_a_scripted_exchange() {
    let (backend, _) = echo_backend().await;
    let (running, addr) = start_for(backend, "{ ping: answer }").await;
    let mut client = RawClient::connect(addr).await;

    // Client: 3 text frames (one message in two fragments + two whole), 2 binary, 1 ping, close.
    let script = [
        client_frame(0x81, b"abc"),        // text 3
        client_frame(0x01, b"de"),         // text 2, fragment
        client_frame(0x80, b"fgh"),        // continuation 3
        client_frame(0x81, b""),           // text 0
        client_frame(0x82, &[1, 2, 3, 4]), // binary 4
        client_frame(0x82, &[5; 200]),     // binary 200
        client_frame(0x89, b"p!"),         // ping 2, answered
    ];
    for f in &script {
        client.send(f).await;
    }
    // Echoes: "abc", "defgh", "", [1,2,3,4], [5;200] and the pong.
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(client.frame().await.expect("frame"));
    }
    assert!(got.contains(&(0x8A, b"p!".to_vec())), "{got:?}");
    client
        .send(&client_frame(0x88, &1000u16.to_be_bytes()))
        .await;
    assert_eq!(read_close(&mut client.stream).await, Some(1000));
    drop(client);

    let admin = running.admin_addr().unwrap();
    tunnels_closed(&running, "echo").await;
    let text = scrape(admin).await;
    let m = |name: &str, direction: &str, label: &str, value: &str| {
        metric(
            &text,
            name,
            &[("route", "echo"), ("direction", direction), (label, value)],
        )
    };
    let c2u = "client_to_upstream";
    let u2c = "upstream_to_client";
    let frames = "wsgate_ws_frames_total";
    let bytes = "wsgate_ws_frame_payload_bytes_total";
    let messages = "wsgate_ws_messages_total";
    // Client side.
    assert_eq!(m(frames, c2u, "opcode", "text"), Some(3.0));
    assert_eq!(m(frames, c2u, "opcode", "continuation"), Some(1.0));
    assert_eq!(m(frames, c2u, "opcode", "binary"), Some(2.0));
    assert_eq!(m(frames, c2u, "opcode", "ping"), Some(1.0));
    assert_eq!(m(frames, c2u, "opcode", "close"), Some(1.0));
    assert_eq!(m(frames, c2u, "opcode", "pong"), Some(0.0));
    assert_eq!(m(bytes, c2u, "opcode", "text"), Some(5.0));
    assert_eq!(m(bytes, c2u, "opcode", "continuation"), Some(3.0));
    assert_eq!(m(bytes, c2u, "opcode", "binary"), Some(204.0));
    assert_eq!(m(bytes, c2u, "opcode", "ping"), Some(2.0));
    assert_eq!(m(bytes, c2u, "opcode", "close"), Some(2.0));
    assert_eq!(m(messages, c2u, "type", "text"), Some(3.0));
    assert_eq!(m(messages, c2u, "type", "binary"), Some(2.0));
    // Backend side: tungstenite echoes each message as one frame, then answers the close.
    assert_eq!(m(frames, u2c, "opcode", "text"), Some(3.0));
    assert_eq!(m(frames, u2c, "opcode", "continuation"), Some(0.0));
    assert_eq!(m(frames, u2c, "opcode", "binary"), Some(2.0));
    assert_eq!(m(frames, u2c, "opcode", "close"), Some(1.0));
    assert_eq!(m(bytes, u2c, "opcode", "text"), Some(8.0));
    assert_eq!(m(bytes, u2c, "opcode", "binary"), Some(204.0));
    assert_eq!(m(messages, u2c, "type", "text"), Some(3.0));
    assert_eq!(m(messages, u2c, "type", "binary"), Some(2.0));
    // Pongs wsgate wrote itself are not frames received.
    assert_eq!(m(frames, u2c, "opcode", "pong"), Some(0.0));
    assert_eq!(m("wsgate_ws_closes_total", c2u, "code", "1000"), Some(1.0));
    assert_eq!(m("wsgate_ws_closes_total", u2c, "code", "1000"), Some(1.0));
    let route = [("route", "echo")];
    assert_eq!(
        metric(
            &text,
            "wsgate_ws_pings_answered_total",
            &[("route", "echo"), ("direction", c2u)]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "wsgate_ws_connections_total", &route),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "wsgate_ws_connection_duration_seconds_count", &route),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "wsgate_ws_handshakes_total",
            &[("route", "echo"), ("result", "ok")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "wsgate_ws_handshake_duration_seconds_count", &route),
        Some(1.0)
    );
    let http = [("route", "echo"), ("method", "GET"), ("status", "101")];
    assert_eq!(
        metric(&text, "wsgate_http_requests_total", &http),
        Some(1.0)
    );
}

#[tokio::test]
async fn admin_endpoints() {
    let (backend, _) = echo_backend().await;
    let (running, _) = start_for(backend, "{}").await;
    let admin = running.admin_addr().unwrap();
    for (path, status) in [("/healthz", "200"), ("/readyz", "200"), ("/nope", "404")] {
        let (_, head) =
            raw_request(admin, &format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n")).await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {head}"
        );
    }
    let text = scrape(admin).await;
    assert!(
        text.contains("# TYPE wsgate_ws_frames_total counter"),
        "{text}"
    );
    assert!(text.contains("# TYPE wsgate_ws_connections_active gauge"));
}

/// A healthy system's dashboard shows 0, not "No data": before any request, every series whose
/// labels the config fixes is exported at 0, and nothing outside the config is.
#[tokio::test]
async fn series_known_from_the_config_exist_at_zero_before_any_traffic() {
    let running = start(
        r#"
listeners:
  - { name: public, bind: "127.0.0.1:0" }
  - { name: tiny, bind: "127.0.0.1:0", max_connections: 1 }
admin: { bind: "127.0.0.1:0" }
upstreams:
  chat: { endpoints: ["127.0.0.1:9001", " 127.0.0.1:9002 "] }
  feed: { endpoints: ["localhost:9003"] }
routes:
  - { name: chat, match: { path_prefix: "/chat" }, upstream: chat }
  - { name: feed, match: { path_prefix: "/feed" }, upstream: feed }
"#,
    )
    .await;
    let text = scrape(running.admin_addr().unwrap()).await;
    preset::assert_known_series(
        &text,
        &preset::Known {
            listeners: &["public", "tiny"],
            // The endpoint label is the trimmed config string.
            upstreams: &[
                ("chat", &["127.0.0.1:9001", "127.0.0.1:9002"]),
                ("feed", &["localhost:9003"]),
            ],
            routes: &["chat", "feed"],
            reloads: [0.0, 0.0],
        },
    );
}

/// The first connect error is a step from an exported 0, so rate() and increase() see it.
#[tokio::test]
async fn a_connect_error_counts_up_from_the_preset_zero() {
    let dead = free_port();
    let running = start(&format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ dead: {{ endpoints: ["127.0.0.1:{dead}"], connect_timeout: 1s }} }}
routes: [{{ name: dead, upstream: dead }}]
"#
    ))
    .await;
    let admin = running.admin_addr().unwrap();
    let endpoint = format!("127.0.0.1:{dead}");
    let labels = [("upstream", "dead"), ("endpoint", endpoint.as_str())];
    let errors = "wsgate_upstream_connect_errors_total";
    assert_eq!(metric(&scrape(admin).await, errors, &labels), Some(0.0));
    let addr = running.listener_addr("public").unwrap();
    let (_, head) = raw_request(addr, &upgrade_request("/", "")).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let text = scrape(admin).await;
    assert_eq!(metric(&text, errors, &labels), Some(1.0));
    let result = [("route", "dead"), ("result", "upstream_unavailable")];
    assert_eq!(
        metric(&text, "wsgate_ws_handshakes_total", &result),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "wsgate_ws_handshakes_total",
            &[("route", "dead"), ("result", "ok")]
        ),
        Some(0.0)
    );
}
