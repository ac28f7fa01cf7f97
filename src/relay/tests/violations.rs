//! A rule broken by either side: the close codes both ways, the violator's grace, and the cut when
//! part of the bad frame already went out.

use std::sync::atomic::Ordering;

use tokio::io::AsyncWriteExt;

use super::super::test_io::*;
use super::super::{CLOSE_GRACE, CUT_LINGER};
use crate::metrics::names::WS_PROTOCOL_VIOLATIONS;

#[tokio::test(start_paused = true)]
async fn a_client_violation_gets_it_1002_and_the_upstream_1001() {
    let mut t = Tunnel::start(Setup::default());
    let ok = from_client(BINARY, b"fine");
    t.client.write_all(&ok).await.unwrap();
    // Unmasked: a client frame must be masked (RFC 6455 §5.1).
    t.client
        .write_all(&from_upstream(TEXT, b"bad"))
        .await
        .unwrap();

    assert_eq!(read_bytes(&mut t.upstream, ok.len()).await, ok);
    let to_upstream = read_frame(&mut t.upstream).await;
    assert_eq!((to_upstream.masked, to_upstream.close_code()), (true, 1001));
    assert_eof(&mut t.upstream).await;
    let to_client = read_frame(&mut t.client).await;
    assert_eq!(
        to_client,
        Frame {
            first: CLOSE,
            masked: false,
            payload: vec![0x03, 0xea]
        }
    );
    assert_eof(&mut t.client).await;
    let labels = [
        ("direction", "client_to_upstream"),
        ("kind", "unmasked_frame"),
    ];
    assert_eq!(t.metric(WS_PROTOCOL_VIOLATIONS, &labels), 1.0);
    assert!(!t.client_reset.load(Ordering::SeqCst));
    assert!(!t.upstream_reset.load(Ordering::SeqCst));

    // The violator gets the close grace to answer and hang up, not the cut linger.
    t.upstream.shutdown().await.unwrap();
    assert_eq!(t.ended().await, CLOSE_GRACE);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_violation_gets_it_1002_and_the_client_1014() {
    let mut t = Tunnel::start(Setup::default());
    // Masked: a server frame must not be (RFC 6455 §5.1).
    t.upstream
        .write_all(&from_client(TEXT, b"bad"))
        .await
        .unwrap();
    let to_upstream = read_frame(&mut t.upstream).await;
    assert_eq!((to_upstream.masked, to_upstream.close_code()), (true, 1002));
    assert_eof(&mut t.upstream).await;
    let to_client = read_frame(&mut t.client).await;
    assert_eq!((to_client.masked, to_client.close_code()), (false, 1014));
    assert_eof(&mut t.client).await;
    let labels = [
        ("direction", "upstream_to_client"),
        ("kind", "masked_frame"),
    ];
    assert_eq!(t.metric(WS_PROTOCOL_VIOLATIONS, &labels), 1.0);

    // Both hang up: the tunnel ends at once.
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    assert!(t.ended().await < CLOSE_GRACE);
}

/// A text frame longer than the read buffer, valid for its first 1,000 payload bytes.
fn long_text(mask: Option<[u8; 4]>) -> (Vec<u8>, usize) {
    let mut payload = vec![b'a'; 40_000];
    payload[1_000] = 0xff;
    let frame = frame(TEXT, &payload, mask);
    let header = frame.len() - payload.len();
    (frame, header + 1_000)
}

#[tokio::test(start_paused = true)]
async fn a_client_violation_mid_frame_cuts_the_upstream() {
    let mut t = Tunnel::start(Setup::default());
    let (frame, valid) = long_text(Some(KEY));
    t.client.write_all(&frame[..valid]).await.unwrap();
    // Longer than the buffer: it streams, so the valid part is already out.
    assert_eq!(read_bytes(&mut t.upstream, valid).await, &frame[..valid]);
    t.client.write_all(&frame[valid..valid + 1]).await.unwrap();

    // No close frame can follow half a frame: the upstream is reset.
    assert_eof(&mut t.upstream).await;
    assert!(t.upstream_reset.load(Ordering::SeqCst));
    let to_client = read_frame(&mut t.client).await;
    assert_eq!((to_client.masked, to_client.close_code()), (false, 1007));
    assert_eof(&mut t.client).await;
    assert!(!t.client_reset.load(Ordering::SeqCst));
    let labels = [
        ("direction", "client_to_upstream"),
        ("kind", "invalid_utf8"),
    ];
    assert_eq!(t.metric(WS_PROTOCOL_VIOLATIONS, &labels), 1.0);
    // A cut tunnel lingers only for the live side to take its close.
    assert_eq!(t.ended().await, CUT_LINGER);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_violation_mid_frame_cuts_the_client() {
    let mut t = Tunnel::start(Setup::default());
    let (frame, valid) = long_text(None);
    t.upstream.write_all(&frame[..valid]).await.unwrap();
    assert_eq!(read_bytes(&mut t.client, valid).await, &frame[..valid]);
    t.upstream
        .write_all(&frame[valid..valid + 1])
        .await
        .unwrap();

    assert_eof(&mut t.client).await;
    assert!(t.client_reset.load(Ordering::SeqCst));
    let to_upstream = read_frame(&mut t.upstream).await;
    assert_eq!((to_upstream.masked, to_upstream.close_code()), (true, 1007));
    assert_eof(&mut t.upstream).await;
    assert!(!t.upstream_reset.load(Ordering::SeqCst));
    assert_eq!(t.ended().await, CUT_LINGER);
}
