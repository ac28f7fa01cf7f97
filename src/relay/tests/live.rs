//! What `/tunnels` reads off a running tunnel: its counters and state, a close asked for from
//! outside, and taps.

use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::error::RecvError;

use super::super::live::State;
use super::super::test_io::*;
use super::super::CLOSE_GRACE;
use wsgate_proto::frame::OpCode;

#[tokio::test(start_paused = true)]
async fn the_snapshot_counts_frames_messages_bytes_and_pings() {
    let mut t = Tunnel::start(Setup::default());
    relays(&mut t.client, &mut t.upstream, &from_client(TEXT, b"hello")).await;
    // A fragmented message: two frames, one message.
    relays(&mut t.client, &mut t.upstream, &from_client(0x01, b"ab")).await;
    relays(&mut t.client, &mut t.upstream, &from_client(0x80, b"cd")).await;
    relays(
        &mut t.upstream,
        &mut t.client,
        &from_upstream(BINARY, b"xyz"),
    )
    .await;
    send(&mut t.client, &from_client(PING, b"p")).await;
    assert_eq!(read_frame(&mut t.client).await.first, PONG);
    let s = t.live.snapshot();
    assert_eq!(
        (
            s.from_client.frames,
            s.from_client.messages,
            s.from_client.bytes
        ),
        (4, 2, 10)
    );
    assert_eq!(
        (
            s.from_upstream.frames,
            s.from_upstream.messages,
            s.from_upstream.bytes
        ),
        (1, 1, 3)
    );
    assert_eq!(s.pings_answered, 1);
    assert_eq!(s.state, State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_close_from_outside_reaches_both_sides_with_its_code_and_reason() {
    let mut t = Tunnel::start(Setup::default());
    relays(
        &mut t.client,
        &mut t.upstream,
        &from_client(TEXT, b"before"),
    )
    .await;
    t.live.close(4000, "maintenance");
    let to_client = read_frame(&mut t.client).await;
    let to_upstream = read_frame(&mut t.upstream).await;
    for frame in [&to_client, &to_upstream] {
        assert_eq!(frame.close_code(), 4000);
        assert_eq!(&frame.payload[2..], b"maintenance");
    }
    assert!(!to_client.masked && to_upstream.masked);
    assert_eq!(t.live.snapshot().state, State::Closing);
    // Both peers answer; the handshake completes and the tunnel ends.
    send(&mut t.client, &from_client(CLOSE, &close_payload(4000, ""))).await;
    send(
        &mut t.upstream,
        &from_upstream(CLOSE, &close_payload(4000, "")),
    )
    .await;
    assert_eof(&mut t.client).await;
    // The upstream closes its connection, as a server does; the client waits for wsgate to close
    // its own, which it does at once rather than at the close grace (RFC 6455 §7.1.1).
    t.upstream.shutdown().await.unwrap();
    assert!(
        t.ended().await < CLOSE_GRACE,
        "ended before the close grace"
    );
    assert!(t.live.has_ended());
    assert_eq!(t.live.snapshot().state, State::Closed);
    let s = t.live.snapshot();
    // The peers' answers are counted, as any close frame a sender sends.
    assert_eq!((s.from_client.frames, s.from_upstream.frames), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_tap_sees_each_frame_with_its_header_and_unmasked_payload() {
    let mut t = Tunnel::start(Setup::default());
    let mut tap = t.live.tap(3).expect("a running tunnel takes taps");
    relays(&mut t.client, &mut t.upstream, &from_client(TEXT, b"hello")).await;
    relays(
        &mut t.upstream,
        &mut t.client,
        &from_upstream(BINARY, b"xy"),
    )
    .await;
    let first = tap.recv().await.unwrap();
    assert_eq!(first.header.opcode, OpCode::Text);
    assert!(first.header.fin && first.header.mask.is_some());
    assert_eq!(first.header.payload_len, 5);
    assert_eq!(&*first.payload, b"hel");
    let second = tap.recv().await.unwrap();
    assert_eq!(second.header.opcode, OpCode::Binary);
    assert!(second.header.mask.is_none());
    assert_eq!(&*second.payload, b"xy");
    // The tunnel's end closes the tap once what it queued is read.
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    t.ended().await;
    while let Ok(frame) = tap.recv().await {
        // wsgate's own closes to each side are not frames a sender sent: never tapped.
        assert_ne!(frame.header.opcode, OpCode::Close);
    }
    assert!(matches!(tap.recv().await, Err(RecvError::Closed)));
}

#[tokio::test(start_paused = true)]
async fn a_tap_that_does_not_read_loses_lines_and_the_tunnel_goes_on() {
    let mut t = Tunnel::start(Setup::default());
    let mut tap = t.live.tap(0).unwrap();
    let frame = from_client(TEXT, b"x");
    let sent = super::super::tap::TAP_BACKLOG + 10;
    for _ in 0..sent {
        relays(&mut t.client, &mut t.upstream, &frame).await;
    }
    assert!(matches!(tap.recv().await, Err(RecvError::Lagged(10))));
    assert!(tap.recv().await.is_ok());
    // Several taps at once; a tap gone costs nothing.
    let second = t.live.tap(0).unwrap();
    drop(second);
    drop(tap);
    relays(&mut t.client, &mut t.upstream, &frame).await;
    assert_eq!(t.live.snapshot().from_client.frames, sent as u64 + 1);
}

#[tokio::test(start_paused = true)]
async fn an_ended_tunnel_takes_no_tap() {
    let mut t = Tunnel::start(Setup::default());
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    t.ended().await;
    assert!(t.live.tap(0).is_none());
}
