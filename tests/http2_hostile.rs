//! Hostile HTTP/2 clients, driven frame by frame with the raw peer (support/h2raw.rs): rapid reset
//! (streams h2 refuses before they are accepted, and streams wsgate is already working on),
//! CONTINUATION floods and oversized header lists, a WebSocket violation on one stream of a shared
//! connection, malformed extended CONNECTs, and `Upgrade: h2c` on a plain listener. Each is judged
//! by the frames the peer gets and by wsgate's metrics; every loop is bounded and every read has a
//! timeout.

mod support;

#[path = "http2_hostile/peer.rs"]
mod peer;

use peer::*;
use support::h2raw::*;
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// Streams a rapid-reset client opens at most: wsgate must cut it off long before.
const ATTACK_STREAMS: u32 = 5_000;
/// HEADERS + RST_STREAM pairs written at once: more than h2's 20 pending-accept resets.
const BATCH: u32 = 50;

/// Opens streams and resets each at once, `BATCH` pairs per write, a PING after each batch so
/// that a batch is read before the next is sent; stops at the first sign of a cut-off. Returns
/// the streams opened and the GOAWAY that came instead of a PING's ACK, if one did.
async fn reset_before_accept(h2: &mut Peer) -> (u32, Option<Frame>) {
    let mut stream = 1;
    let mut opened = 0;
    while opened < ATTACK_STREAMS {
        let mut bytes = Vec::new();
        for _ in 0..BATCH {
            bytes.extend(
                Frame::headers(stream, &get("/hang/fast"), true)
                    .encode()
                    .unwrap(),
            );
            bytes.extend(Frame::rst_stream(stream, CANCEL).encode().unwrap());
            stream += 2;
            opened += 1;
        }
        bytes.extend(Frame::ping(false, *b"batch-ok").encode().unwrap());
        if h2.write_raw(&bytes).await.is_err() {
            break;
        }
        let ack = h2
            .read_until(
                |f| (f.kind == PING && f.flags & ACK != 0) || f.kind == GOAWAY,
                FRAME_LIMIT,
            )
            .await;
        match ack {
            Ok(Some(f)) if f.kind == PING => {}
            Ok(Some(goaway)) => return (opened, Some(goaway)),
            Ok(None) | Err(_) => break,
        }
    }
    (opened, None)
}

/// A GET of `/fast` on `stream` gets 200 `ok`.
async fn served(h2: &mut Peer, stream: u32) {
    h2.headers(stream, &get("/fast"), true).await.unwrap();
    let (status, _) = h2.response_status(stream).await.unwrap();
    assert_eq!(status, 200);
    let (body, end) = stream_data(h2, stream).await;
    assert_eq!((body.as_slice(), end), (&b"ok"[..], StreamEnd::EndStream));
}

/// The fast loop: every stream is reset while still in h2's accept queue, so h2's own limit
/// (`max_pending_accept_reset_streams`, 20) ends the connection with GOAWAY ENHANCE_YOUR_CALM.
async fn rapid_reset_before_accept() -> Setup {
    let s = setup("").await;
    let mut h2 = s.peer().await;
    let (opened, goaway) = reset_before_accept(&mut h2).await;
    let goaway = goaway.expect("a GOAWAY instead of a PING's ACK");
    // Then the end: nothing but the close follows.
    assert_eq!(until_closed(&mut h2).await.0, None);
    let (last, code, debug) = goaway.goaway_fields().unwrap();
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert_eq!(debug, b"too_many_resets");
    // Cut off in the first batches, far from the loop's end.
    assert!(opened <= 4 * BATCH, "{opened} streams opened");
    assert!(last < 2 * 4 * BATCH, "last stream {last}");
    // Another connection is served as ever.
    served(&mut s.peer().await, 1).await;
    s
}

#[tokio::test]
async fn rapid_resets_before_accept_get_goaway_enhance_your_calm() {
    let s = rapid_reset_before_accept().await;
    s.cut_off_once().await;
}

/// h2's limits all end the connection with the same error (the debug data that tells them apart
/// is only on the wire), so they share one reason.
#[tokio::test]
async fn rapid_resets_before_accept_are_counted_as_enhance_your_calm() {
    let s = rapid_reset_before_accept().await;
    assert_eq!(s.closed_by_reason().await, only("enhance_your_calm"));
}

#[tokio::test]
async fn resets_of_requests_wsgate_works_on_cut_the_connection_off_at_max_client_resets() {
    let s = setup("    http2_settings: { max_client_resets: 5 }").await;
    let mut h2 = s.peer().await;
    let mut stream = 1;
    for n in 1..=5 {
        h2.headers(stream, &get("/hang/slow"), true).await.unwrap();
        // The request reached the backend: wsgate was working on it when the reset came.
        eventually("the backend to get the request", || {
            (s.heads_with("GET /hang/slow") == n).then_some(())
        })
        .await;
        h2.rst_stream(stream, CANCEL).await.unwrap();
        stream += 2;
        if n < 5 {
            still_open(&mut h2, &format!("after {n} resets")).await;
        }
    }
    // wsgate drops the connection itself: no GOAWAY (h2 did not end it), just a FIN.
    assert_eq!(until_closed(&mut h2).await, (None, End::Eof));
    assert_eq!(s.closed_by_reason().await, only("rapid_reset"));
    served(&mut s.peer().await, 1).await;
}

/// HEADERS without END_HEADERS, then CONTINUATION frames of one small field each.
async fn continuation_flood(h2: &mut Peer, frames: usize) -> std::io::Result<()> {
    let start = encode_headers(&get("/fast"));
    h2.write_frame(&Frame::new(HEADERS, END_STREAM, 1, start))
        .await?;
    let more = encode_headers(&[("x-flood", "again")]);
    for _ in 0..frames {
        h2.write_frame(&Frame::new(CONTINUATION, 0, 1, more.clone()))
            .await?;
    }
    Ok(())
}

async fn header_flood() -> Setup {
    let s = setup("").await;
    let mut h2 = s.peer().await;
    // h2 allows 5 CONTINUATION frames for a 64 KiB header list in 16 KiB frames; a server without
    // a limit would wait for END_HEADERS and the read below would time out.
    continuation_flood(&mut h2, 8).await.unwrap();
    let (goaway, _end) = until_closed(&mut h2).await;
    assert_eq!(
        goaway,
        Some((0, ENHANCE_YOUR_CALM, b"too_many_continuations".to_vec()))
    );
    // The flood goes on; wsgate reads none of it: the writes fail soon.
    let more = encode_headers(&[("x-flood", "again")]);
    let mut written = 0;
    while written < 10_000 {
        if h2
            .write_frame(&Frame::new(CONTINUATION, 0, 1, more.clone()))
            .await
            .is_err()
        {
            break;
        }
        written += 1;
    }
    assert!(written < 10_000, "every write of the flood was taken");
    assert_eq!(s.heads_with("x-flood"), 0);
    s
}

#[tokio::test]
async fn a_continuation_flood_gets_goaway_enhance_your_calm() {
    let s = header_flood().await;
    s.cut_off_once().await;
}

#[tokio::test]
async fn a_header_list_over_max_request_head_size_gets_431_and_the_connection_goes_on() {
    let s = setup("    max_request_head_size: 8KiB").await;
    let mut h2 = s.peer().await;
    assert_eq!(h2.server_setting(SETTINGS_MAX_HEADER_LIST_SIZE), Some(8192));
    // 12 KB of header: over the limit, within h2's abuse limit (4 times it), in one frame.
    let big = "a".repeat(12_000);
    let mut fields = get("/fast").to_vec();
    fields.push(("x-big", &big));
    h2.headers(1, &fields, true).await.unwrap();
    // h2 answers it itself, before wsgate sees a request.
    let (status, _) = h2.response_status(1).await.unwrap();
    assert_eq!(status, 431);
    served(&mut h2, 3).await;
    assert_eq!(s.heads_with("x-big"), 0);
    assert_eq!(s.heads_with("GET /fast"), 1);
}

/// A header list past h2's abuse limit, 4 times SETTINGS_MAX_HEADER_LIST_SIZE.
async fn way_too_large() -> Setup {
    let s = setup("    max_request_head_size: 8KiB").await;
    let mut h2 = s.peer().await;
    served(&mut h2, 1).await;
    // 40 KB, past 32 KiB, in three frames (h2 allows 5 CONTINUATION frames here).
    let huge = "a".repeat(40_000);
    let mut fields = get("/fast").to_vec();
    fields.push(("x-huge", &huge));
    h2.headers(3, &fields, true).await.unwrap();
    let (goaway, _end) = until_closed(&mut h2).await;
    let (last, code, debug) = goaway.expect("a GOAWAY");
    assert_eq!(
        (code, debug.as_slice()),
        (ENHANCE_YOUR_CALM, &b"header_list_way_too_large"[..])
    );
    assert_eq!(last, 1);
    assert_eq!(s.heads_with("x-huge"), 0);
    s
}

#[tokio::test]
async fn a_header_list_past_four_times_the_limit_gets_goaway_enhance_your_calm() {
    let s = way_too_large().await;
    s.cut_off_once().await;
}

#[tokio::test]
async fn header_floods_are_counted_as_enhance_your_calm() {
    let s = header_flood().await;
    assert_eq!(s.closed_by_reason().await, only("enhance_your_calm"));
    let s = way_too_large().await;
    assert_eq!(s.closed_by_reason().await, only("enhance_your_calm"));
}

/// Opens a WebSocket on `stream` and waits for its 200.
async fn websocket(h2: &mut Peer, stream: u32) {
    h2.connect_websocket(stream, "app.example", "/ws", &[])
        .await
        .unwrap();
    let (status, fields) = h2.response_status(stream).await.unwrap();
    assert_eq!(status, 200, "{fields:?}");
}

/// A masked text frame on `stream` comes back as an unmasked one.
async fn echoes(h2: &mut Peer, stream: u32, text: &str) {
    h2.data(stream, &client_frame(0x81, text.as_bytes()), false)
        .await
        .unwrap();
    let frames = ws_frames(h2, stream).await;
    assert_eq!(frames, [(0x81, text.as_bytes().to_vec())]);
}

#[tokio::test]
async fn an_unmasked_frame_closes_its_own_stream_with_1002_and_no_other() {
    let s = setup("").await;
    let mut h2 = s.peer().await;
    websocket(&mut h2, 1).await;
    websocket(&mut h2, 3).await;
    echoes(&mut h2, 3, "before").await;

    // RFC 6455 §5.1: a client frame must be masked.
    h2.data(1, &frame(0x81, b"hi", None), false).await.unwrap();
    let (bytes, end) = stream_data(&mut h2, 1).await;
    let frames = parse_frames(&bytes);
    assert_eq!(
        frames,
        [(0x88, 1002u16.to_be_bytes().to_vec())],
        "{bytes:?}"
    );
    assert_eq!(end, StreamEnd::EndStream);

    echoes(&mut h2, 3, "after").await;
    still_open(&mut h2, "after stream 1 failed").await;
    let violations = [
        ("route", "echo"),
        ("direction", "client_to_upstream"),
        ("kind", "unmasked_frame"),
    ];
    let text = s.running.metrics_text();
    assert_eq!(
        metric(&text, "wsgate_ws_protocol_violations_total", &violations),
        Some(1.0)
    );
    // None of the bad frame reached the backend; its tunnel's upstream got a close 1001 instead,
    // as over TCP (tests/hostile.rs).
    let messages = |s: &Setup| s.ws_seen.lock().unwrap().messages.clone();
    let data: Vec<_> = messages(&s).into_iter().filter(|m| m.is_text()).collect();
    assert_eq!(data, [Message::text("before"), Message::text("after")]);
    eventually("the upstream to get a close 1001", || {
        messages(&s).into_iter().find_map(|m| match m {
            Message::Close(Some(close)) if u16::from(close.code) == 1001 => Some(()),
            _ => None,
        })
    })
    .await;
}

#[tokio::test]
async fn malformed_extended_connects_are_refused_on_their_stream_and_the_connection_goes_on() {
    let s = setup("").await;
    let mut h2 = s.peer().await;
    let connect = |drop: &str, version: &'static str| {
        [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", "/ws"),
            (":authority", "app.example"),
            ("sec-websocket-version", version),
        ]
        .into_iter()
        .filter(|(name, _)| *name != drop)
        .collect::<Vec<_>>()
    };
    // RFC 8441 §4 requires :scheme and :path; h2 refuses the stream before wsgate sees it
    // (RST_STREAM PROTOCOL_ERROR, RFC 9113 §8.1.1), so no status and no handshake metric.
    for (stream, drop) in [(1, ":path"), (3, ":scheme")] {
        h2.headers(stream, &connect(drop, "13"), false)
            .await
            .unwrap();
        let frame = h2.next_on_stream(stream).await.unwrap().expect("a frame");
        assert_eq!(
            (frame.kind, frame.rst_code()),
            (RST_STREAM, Some(PROTOCOL_ERROR)),
            "without {drop}: {frame:?}"
        );
    }
    // An unsupported version is wsgate's to refuse: 426 naming the one it speaks (RFC 6455 §4.4).
    h2.headers(5, &connect("", "8"), false).await.unwrap();
    let (status, fields) = h2.response_status(5).await.unwrap();
    assert_eq!(status, 426, "{fields:?}");
    assert!(fields.contains(&("sec-websocket-version".into(), "13".into())));
    // No version at all: 426 as well, as over HTTP/1.1 (tests/handshake.rs "no version").
    h2.headers(7, &connect("sec-websocket-version", ""), false)
        .await
        .unwrap();
    let (status, fields) = h2.response_status(7).await.unwrap();
    assert_eq!(status, 426, "{fields:?}");
    assert!(fields.contains(&("sec-websocket-version".into(), "13".into())));

    websocket(&mut h2, 9).await;
    echoes(&mut h2, 9, "fine").await;
    let text = s.running.metrics_text();
    let handshakes = |result| {
        let labels = [("route", "echo"), ("result", result), ("transport", "h2")];
        metric(&text, "wsgate_ws_handshakes_total", &labels)
    };
    assert_eq!(handshakes("version"), Some(2.0));
    assert_eq!(handshakes("ok"), Some(1.0));
    assert_eq!(metric(&text, CLOSED, &[("listener", "public")]), Some(0.0));
}

#[tokio::test]
async fn an_h2c_upgrade_on_a_plain_http2_listener_is_answered_as_http1() {
    let s = setup("").await;
    let request = "GET /fast HTTP/1.1\r\nHost: app.example\r\nUpgrade: h2c\r\n\
                   Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let (mut stream, head) = raw_request(s.addr, request).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let mut body = [0u8; 2];
    tokio::time::timeout(
        TIMEOUT,
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut body),
    )
    .await
    .expect("the body in time")
    .unwrap();
    assert_eq!(&body, b"ok");
    let backend = s.heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(backend.starts_with("get /fast http/1.1"), "{backend}");
    assert!(!backend.contains("upgrade"), "{backend}");
    assert!(!backend.contains("http2-settings"), "{backend}");
}
