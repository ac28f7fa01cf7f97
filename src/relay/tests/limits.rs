//! `websocket.rate_limit` (close and throttle), and the tunnel's own end (`max_duration`, a token's
//! expiry), under the paused clock: exact frames, codes, reasons and moments.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::super::test_io::*;
use super::super::CloseReason;
use crate::config::{LimitAction, RateConfig, TrafficLimit};
use crate::metrics::names::WS_RATE_LIMITED;

const SECOND: Duration = Duration::from_secs(1);

fn limited(limit: TrafficLimit) -> Setup {
    Setup {
        rate_limit: Some(limit),
        ..Setup::default()
    }
}

fn messages(per_second: u64, burst: u64, action: LimitAction) -> TrafficLimit {
    TrafficLimit {
        messages: Some(RateConfig { per_second, burst }),
        bytes: None,
        both_directions: false,
        action,
    }
}

fn c2u() -> [(&'static str, &'static str); 1] {
    [("direction", "client_to_upstream")]
}

#[tokio::test(start_paused = true)]
async fn a_client_over_its_message_rate_gets_1008_and_the_upstream_1001() {
    let mut t = Tunnel::start(limited(messages(1, 2, LimitAction::Close)));
    let one = from_client(TEXT, b"one");
    let two = from_client(TEXT, b"two");
    let mut burst = [one.clone(), two.clone()].concat();
    burst.extend(from_client(TEXT, b"three"));
    t.client.write_all(&burst).await.unwrap();

    // The burst passes; the message past it does not.
    assert_eq!(read_bytes(&mut t.upstream, one.len()).await, one);
    assert_eq!(read_bytes(&mut t.upstream, two.len()).await, two);
    let to_upstream = read_frame(&mut t.upstream).await;
    assert_eq!((to_upstream.masked, to_upstream.close_code()), (true, 1001));
    assert_eof(&mut t.upstream).await;
    let to_client = read_frame(&mut t.client).await;
    assert_eq!(
        (to_client.first, to_client.payload),
        (CLOSE, close_payload(1008, "rate limit exceeded"))
    );
    assert_eq!(t.metric(WS_RATE_LIMITED, &c2u()), 1.0);
}

#[tokio::test(start_paused = true)]
async fn within_the_rate_nothing_is_closed() {
    let mut t = Tunnel::start(limited(messages(1, 1, LimitAction::Close)));
    for i in 0..3u8 {
        let message = from_client(BINARY, &[i]);
        t.client.write_all(&message).await.unwrap();
        assert_eq!(read_bytes(&mut t.upstream, message.len()).await, message);
        tokio::time::sleep(SECOND).await;
    }
    assert_eq!(t.metric(WS_RATE_LIMITED, &c2u()), 0.0);
    assert!(t.is_running());
}

#[tokio::test(start_paused = true)]
async fn a_throttled_client_is_read_again_once_its_bytes_refill_and_nothing_is_lost() {
    let limit = TrafficLimit {
        messages: None,
        bytes: Some(RateConfig {
            per_second: 100,
            burst: 100,
        }),
        both_directions: false,
        action: LimitAction::Throttle,
    };
    let mut t = Tunnel::start(limited(limit));
    let frames: Vec<Vec<u8>> = (0..3u8).map(|i| from_client(BINARY, &[i; 100])).collect();
    // The first empties the bucket, the second puts it 100 bytes in debt: both pass at once.
    for frame in &frames[..2] {
        t.client.write_all(frame).await.unwrap();
        assert_eq!(read_bytes(&mut t.upstream, frame.len()).await, *frame);
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
    // The third waits in the socket until the debt is paid.
    t.client.write_all(&frames[2]).await.unwrap();
    assert_eq!(
        read_bytes(&mut t.upstream, frames[2].len()).await,
        frames[2]
    );
    assert_eq!(t.elapsed(), SECOND);
    // Two pauses: after the second frame, and after the third (which put it in debt again).
    assert_eq!(t.metric(WS_RATE_LIMITED, &c2u()), 2.0);
    assert!(t.is_running());
}

#[tokio::test(start_paused = true)]
async fn control_frames_take_nothing_from_the_bucket() {
    let mut t = Tunnel::start(limited(messages(1, 1, LimitAction::Close)));
    for _ in 0..3 {
        t.client.write_all(&from_client(PING, b"p")).await.unwrap();
        let pong = read_frame(&mut t.client).await;
        assert_eq!((pong.first, pong.payload), (PONG, b"p".to_vec()));
    }
    let message = from_client(TEXT, b"still allowed");
    t.client.write_all(&message).await.unwrap();
    assert_eq!(read_bytes(&mut t.upstream, message.len()).await, message);
    assert_eq!(t.metric(WS_RATE_LIMITED, &c2u()), 0.0);
}

#[tokio::test(start_paused = true)]
async fn the_upstream_is_limited_only_with_direction_both() {
    for both in [false, true] {
        let limit = TrafficLimit {
            both_directions: both,
            ..messages(1, 1, LimitAction::Close)
        };
        let mut t = Tunnel::start(limited(limit));
        let burst = [from_upstream(TEXT, b"a"), from_upstream(TEXT, b"b")].concat();
        t.upstream.write_all(&burst).await.unwrap();
        if both {
            assert_eq!(
                read_bytes(&mut t.client, 3).await,
                from_upstream(TEXT, b"a")
            );
            let close = read_frame(&mut t.client).await;
            assert_eq!(close.close_code(), 1001);
            let to_upstream = read_frame(&mut t.upstream).await;
            assert_eq!(
                to_upstream.payload,
                close_payload(1008, "rate limit exceeded")
            );
        } else {
            assert_eq!(read_bytes(&mut t.client, burst.len()).await, burst);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn at_its_end_a_tunnel_closes_both_sides_with_the_code_and_reason() {
    let cases = [
        (1001, CloseReason::MaxDuration, "max duration"),
        (1008, CloseReason::TokenExpired, "token expired"),
    ];
    for (code, reason, text) in cases {
        let mut t = Tunnel::start(Setup {
            ends_after: Some((60 * SECOND, code, reason)),
            ..Setup::default()
        });
        relays(&mut t.client, &mut t.upstream, &from_client(TEXT, b"hi")).await;
        let to_client = read_frame(&mut t.client).await;
        assert_eq!(t.elapsed(), 60 * SECOND);
        assert_eq!(
            (to_client.first, to_client.masked, to_client.payload),
            (CLOSE, false, close_payload(code, text))
        );
        let to_upstream = read_frame(&mut t.upstream).await;
        assert_eq!(
            (to_upstream.masked, to_upstream.payload),
            (true, close_payload(code, text))
        );
        // Both answer: the close handshake completes and the tunnel ends at once.
        t.client
            .write_all(&from_client(CLOSE, &close_payload(code, "")))
            .await
            .unwrap();
        t.upstream
            .write_all(&from_upstream(CLOSE, &close_payload(code, "")))
            .await
            .unwrap();
        t.upstream.shutdown().await.unwrap();
        t.client.shutdown().await.unwrap();
        assert!(t.ended().await < 60 * SECOND + super::super::CLOSE_GRACE);
    }
}
