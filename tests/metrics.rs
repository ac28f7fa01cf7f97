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
    assert_eq!(m(frames, c2u, "opcode", "text"), 3.0);
    assert_eq!(m(frames, c2u, "opcode", "continuation"), 1.0);
    assert_eq!(m(frames, c2u, "opcode", "binary"), 2.0);
    assert_eq!(m(frames, c2u, "opcode", "ping"), 1.0);
    assert_eq!(m(frames, c2u, "opcode", "close"), 1.0);
    assert_eq!(m(frames, c2u, "opcode", "pong"), 0.0);
    assert_eq!(m(bytes, c2u, "opcode", "text"), 5.0);
    assert_eq!(m(bytes, c2u, "opcode", "continuation"), 3.0);
    assert_eq!(m(bytes, c2u, "opcode", "binary"), 204.0);
    assert_eq!(m(bytes, c2u, "opcode", "ping"), 2.0);
    assert_eq!(m(bytes, c2u, "opcode", "close"), 2.0);
    assert_eq!(m(messages, c2u, "type", "text"), 3.0);
    assert_eq!(m(messages, c2u, "type", "binary"), 2.0);
    // Backend side: tungstenite echoes each message as one frame, then answers the close.
    assert_eq!(m(frames, u2c, "opcode", "text"), 3.0);
    assert_eq!(m(frames, u2c, "opcode", "continuation"), 0.0);
    assert_eq!(m(frames, u2c, "opcode", "binary"), 2.0);
    assert_eq!(m(frames, u2c, "opcode", "close"), 1.0);
    assert_eq!(m(bytes, u2c, "opcode", "text"), 8.0);
    assert_eq!(m(bytes, u2c, "opcode", "binary"), 204.0);
    assert_eq!(m(messages, u2c, "type", "text"), 3.0);
    assert_eq!(m(messages, u2c, "type", "binary"), 2.0);
    // Pongs wsgate wrote itself are not frames received.
    assert_eq!(m(frames, u2c, "opcode", "pong"), 0.0);
    assert_eq!(m("wsgate_ws_closes_total", c2u, "code", "1000"), 1.0);
    assert_eq!(m("wsgate_ws_closes_total", u2c, "code", "1000"), 1.0);
    let route = [("route", "echo")];
    assert_eq!(
        metric(
            &text,
            "wsgate_ws_pings_answered_total",
            &[("route", "echo"), ("direction", c2u)]
        ),
        1.0
    );
    assert_eq!(metric(&text, "wsgate_ws_connections_total", &route), 1.0);
    assert_eq!(
        metric(&text, "wsgate_ws_connection_duration_seconds_count", &route),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "wsgate_ws_handshakes_total",
            &[("route", "echo"), ("result", "ok")]
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "wsgate_ws_handshake_duration_seconds_count", &route),
        1.0
    );
    let http = [("route", "echo"), ("method", "GET"), ("status", "101")];
    assert_eq!(metric(&text, "wsgate_http_requests_total", &http), 1.0);
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
