//! permessage-deflate through wsgate (RFC 7692): negotiated only when the route allows it, compressed
//! frames forwarded unchanged, and a decompression bomb stopped at max_message_size.

mod support;

use flate2::{Compress, Compression, FlushCompress};
use support::*;

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

fn compress(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    out.truncate(out.len() - 4);
    out
}

/// A raw backend that accepts permessage-deflate and then sends `after`.
async fn deflate_backend(
    after: Vec<u8>,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<RawSeen>>,
) {
    raw_backend(
        |accept: &str| {
            switching(accept).replace(
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n",
            )
        },
        after,
    )
    .await
}

#[tokio::test]
async fn negotiated_and_forwarded_unchanged() {
    let mut server = Compress::new(Compression::default(), false);
    let from_backend = frame(
        0xC1,
        &compress(&mut server, "compressed by the backend".as_bytes()),
        None,
    );
    let (backend, seen) = deflate_backend(from_backend.clone()).await;
    let (running, addr) = start_for(
        backend,
        "{ extensions: [permessage-deflate], max_message_size: 64KiB, max_frame_size: 64KiB }",
    )
    .await;
    let (mut stream, head) = raw_request(addr, &upgrade_request("/", OFFER)).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains("sec-websocket-extensions: permessage-deflate; server_no_context_takeover"),
        "{head}"
    );
    assert!(seen
        .lock()
        .unwrap()
        .head
        .to_ascii_lowercase()
        .contains("permessage-deflate; client_max_window_bits"));
    // The backend's compressed frame reaches the client byte for byte.
    assert_eq!(
        read_frame(&mut stream).await.unwrap(),
        (0xC1, from_backend[2..].to_vec())
    );
    // Client frames too: a compressed text message in two fragments.
    let mut client = Compress::new(Compression::default(), false);
    let data = compress(&mut client, "κόσμε, compressed by the client".as_bytes());
    let (a, b) = data.split_at(data.len() / 2);
    let sent = [client_frame(0x41, a), client_frame(0x80, b)].concat();
    tokio::io::AsyncWriteExt::write_all(&mut stream, &sent)
        .await
        .unwrap();
    eventually("frames at the backend", || {
        (parse_frames(&seen.lock().unwrap().bytes).len() == 2).then_some(())
    })
    .await;
    assert_eq!(
        parse_frames(&seen.lock().unwrap().bytes),
        vec![(0x41, a.to_vec()), (0x80, b.to_vec())]
    );
    let labels = [
        ("route", "echo"),
        ("direction", "client_to_upstream"),
        ("type", "text"),
    ];
    assert_eq!(
        metric(&running.metrics_text(), "wsgate_ws_messages_total", &labels),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_decompression_bomb_gets_1009() {
    let (backend, seen) = deflate_backend(vec![]).await;
    let (_running, addr) = start_for(
        backend,
        "{ extensions: [permessage-deflate], max_message_size: 64KiB, max_frame_size: 64KiB }",
    )
    .await;
    let (mut stream, head) = raw_request(addr, &upgrade_request("/", OFFER)).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // 8 MiB of zeros: a few KiB on the wire, far under max_frame_size.
    let mut c = Compress::new(Compression::best(), false);
    let bomb = compress(&mut c, &vec![0u8; 8 << 20]);
    assert!(bomb.len() < 16 << 10, "{}", bomb.len());
    tokio::io::AsyncWriteExt::write_all(&mut stream, &client_frame(0xC2, &bomb))
        .await
        .unwrap();
    assert_eq!(read_close(&mut stream).await, Some(1009));
    eventually("backend closed", || {
        seen.lock().unwrap().closed.then_some(())
    })
    .await;
    assert_eq!(
        parse_frames(&seen.lock().unwrap().bytes),
        vec![(0x88, 1001u16.to_be_bytes().to_vec())]
    );
}

#[tokio::test]
async fn not_allowed_means_stripped_and_rsv1_refused() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let (_running, addr) = start_for(backend, "{}").await;
    let (mut stream, head) = raw_request(addr, &upgrade_request("/", OFFER)).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
    assert!(!seen
        .lock()
        .unwrap()
        .head
        .to_ascii_lowercase()
        .contains("sec-websocket-extensions"));
    let mut c = Compress::new(Compression::default(), false);
    tokio::io::AsyncWriteExt::write_all(&mut stream, &client_frame(0xC1, &compress(&mut c, b"hi")))
        .await
        .unwrap();
    assert_eq!(read_close(&mut stream).await, Some(1002));
}

/// With the extension allowed, a 101 whose permessage-deflate answer does not fit what the client
/// offered (RFC 7692 §7.1) is a 502, and the backend's connection is closed.
#[tokio::test]
async fn answers_that_do_not_fit_the_offer_get_502() {
    const NO_CLIENT_BITS: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let cases = [
        (OFFER, "permessage-deflate; client_max_window_bits=16"), // out of 8..=15
        (OFFER, "permessage-deflate; server_max_window_bits=7"),
        (OFFER, "permessage-deflate; mystery"),
        (
            OFFER,
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ),
        (OFFER, "permessage-deflate, permessage-deflate"),
        (OFFER, "x-webkit-deflate-frame"),
        // client_max_window_bits in the answer only if the client offered it (§7.1.2.2).
        (
            NO_CLIENT_BITS,
            "permessage-deflate; client_max_window_bits=10",
        ),
    ];
    for (offer, answer) in cases {
        let (backend, seen) = raw_backend(
            move |accept: &str| {
                switching(accept).replace(
                    "\r\n\r\n",
                    &format!("\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n"),
                )
            },
            client_frame(0x81, b"smuggled"),
        )
        .await;
        let (running, addr) = start_for(backend, "{ extensions: [permessage-deflate] }").await;
        let (mut stream, head) = raw_request(addr, &upgrade_request("/", offer)).await;
        assert!(head.starts_with("HTTP/1.1 502 "), "{answer}: {head}");
        // The connection stays HTTP: the backend's frame never reaches the client.
        let after = rest_after_answer(&mut stream, &head).await;
        assert!(!after.windows(8).any(|w| w == b"smuggled"), "{answer}");
        eventually("backend closed", || {
            seen.lock().unwrap().closed.then_some(())
        })
        .await;
        let handshakes = [("route", "echo"), ("result", "bad_extension")];
        assert_eq!(
            metric(
                &running.metrics_text(),
                "wsgate_ws_handshakes_total",
                &handshakes
            ),
            Some(1.0),
            "{answer}"
        );
    }
}

/// Compressed frames still follow every rule: the inflated text of a message is UTF-8 (1007), and
/// RSV1 belongs on the first frame of a data message only (1002 on a continuation or a ping).
/// The backend gets the frames before the bad one and a close 1001, never the bad bytes.
#[tokio::test]
async fn compressed_frames_that_break_a_rule() {
    let mut c = Compress::new(Compression::default(), false);
    let bad_text = compress(&mut c, &[b'a', 0xC0, 0x80]);
    let mut c = Compress::new(Compression::default(), false);
    let good = compress(&mut c, b"first half");
    let cases: [(&str, Vec<u8>, u16, &str); 3] = [
        (
            "invalid UTF-8 inside",
            client_frame(0xC1, &bad_text),
            1007,
            "invalid_utf8",
        ),
        (
            "RSV1 on a continuation",
            [client_frame(0x41, &good), client_frame(0xC0, &good)].concat(),
            1002,
            "reserved_bits",
        ),
        (
            "RSV1 on a ping",
            client_frame(0xC9, b"p"),
            1002,
            "reserved_bits",
        ),
    ];
    for (what, bytes, code, kind) in cases {
        let (backend, seen) = deflate_backend(vec![]).await;
        let (running, addr) = start_for(backend, "{ extensions: [permessage-deflate] }").await;
        let (mut stream, head) = raw_request(addr, &upgrade_request("/", OFFER)).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{what}: {head}");
        tokio::io::AsyncWriteExt::write_all(&mut stream, &bytes)
            .await
            .unwrap();
        assert_eq!(read_close(&mut stream).await, Some(code), "{what}");
        eventually("backend closed", || {
            seen.lock().unwrap().closed.then_some(())
        })
        .await;
        let frames = parse_frames(&seen.lock().unwrap().bytes);
        assert_eq!(
            frames.last(),
            Some(&(0x88, 1001u16.to_be_bytes().to_vec())),
            "{what}"
        );
        // Only a complete first fragment may precede the close.
        assert!(
            frames.len() <= 2 && frames.iter().all(|f| f.0 != 0xC0 && f.0 != 0xC1),
            "{what}"
        );
        let labels = [
            ("route", "echo"),
            ("direction", "client_to_upstream"),
            ("kind", kind),
        ];
        assert_eq!(
            metric(
                &running.metrics_text(),
                "wsgate_ws_protocol_violations_total",
                &labels
            ),
            Some(1.0),
            "{what}"
        );
    }
}
