//! Keepalive pings find dead peers in both directions, their pongs are not relayed, and the idle
//! timeout counts data frames only.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message;

const KEEPALIVE: &str = "{ keepalive: { interval: 300ms, timeout: 300ms } }";

#[tokio::test]
async fn silent_client_that_never_answers_is_dropped_and_backend_gets_1001() {
    let (backend, seen) = echo_backend().await;
    let (_running, addr) = start_for(backend, KEEPALIVE).await;
    // Reads, but never writes.
    let mut client = RawClient::connect(addr).await;
    let started = Instant::now();
    let (opcode, token) = client.frame().await.expect("a keepalive ping");
    assert_eq!(opcode, 0x89);
    assert_eq!(token.len(), 8);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    // No answer: the tunnel ends; nothing but pings reached the client (the backend's pongs to its
    // own keepalive pings were not relayed).
    let rest = read_to_end(&mut client.stream).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Only pings, then possibly the backend's close reply relayed before the cut.
    let frames = parse_frames(&rest);
    let (last, pings) = frames
        .split_last()
        .map_or((None, &frames[..]), |(l, p)| (Some(l), p));
    assert!(pings.iter().all(|(op, _)| *op == 0x89), "{frames:x?}");
    assert!(
        last.is_none_or(|(op, _)| *op == 0x89 || *op == 0x88),
        "{frames:x?}"
    );
    let closes = eventually("backend close", || {
        let seen = seen.lock().unwrap();
        let closes: Vec<_> = seen
            .messages
            .iter()
            .filter(|m| m.is_close())
            .cloned()
            .collect();
        (!closes.is_empty()).then_some(closes)
    })
    .await;
    match &closes[0] {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("{other:?}"),
    }
    assert!(!seen.lock().unwrap().messages.iter().any(|m| m.is_pong()));
}

#[tokio::test]
async fn dead_backend_is_detected_and_the_client_gets_1001() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let (_running, addr) = start_for(backend, KEEPALIVE).await;
    let mut ws = ws_client(addr, "/ws").await;
    let started = Instant::now();
    // tungstenite answers wsgate's pings while it reads; the raw backend never answers.
    let close = loop {
        match tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(u16::from(close.unwrap().code), 1001);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(550) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    let bytes = seen.lock().unwrap().bytes.clone();
    let frames = parse_frames(&bytes);
    assert_eq!(frames[0].0, 0x89, "{frames:?}");
    assert_eq!(frames[0].1.len(), 8);
    assert_ne!(bytes[1] & 0x80, 0, "pings toward the backend are masked");
}

#[tokio::test]
async fn answered_keepalives_keep_a_quiet_tunnel_and_are_not_relayed() {
    let (backend, seen) = echo_backend().await;
    let (_running, addr) = start_for(
        backend,
        "{ keepalive: { interval: 200ms, timeout: 200ms } }",
    )
    .await;
    let ws = ws_client(addr, "/ws").await;
    let (mut tx, mut rx) = ws.split();
    // Read (so tungstenite answers pings) through 1.2 s of silence.
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        loop {
            match rx.next().await {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(Message::Text(t))) => return (pings, t.to_string()),
                other => panic!("{other:?}"),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    tx.send(Message::text("still here")).await.unwrap();
    let (pings, echo) = tokio::time::timeout(TIMEOUT, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo, "still here");
    assert!(pings >= 3, "{pings} pings");
    let messages = seen.lock().unwrap().messages.clone();
    assert!(
        messages.iter().any(|m| m.is_ping()),
        "the backend was pinged"
    );
    assert!(
        !messages.iter().any(|m| m.is_pong() || m.is_close()),
        "{messages:?}"
    );
}

#[tokio::test]
async fn idle_timeout_counts_data_frames_only() {
    let (backend, seen) = echo_backend().await;
    let (_running, addr) = start_for(backend, "{ idle_timeout: 500ms }").await;
    let mut client = RawClient::connect(addr).await;
    // Data every 200 ms keeps it open.
    for i in 0..5 {
        client
            .send(&client_frame(0x81, format!("m{i}").as_bytes()))
            .await;
        assert_eq!(
            client.frame().await,
            Some((0x81, format!("m{i}").into_bytes()))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Pings (answered by wsgate) do not.
    let quiet = Instant::now();
    let code = loop {
        client.send(&client_frame(0x89, b"p")).await;
        match client.frame().await {
            Some((0x8A, _)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Some((0x88, payload)) => break u16::from_be_bytes([payload[0], payload[1]]),
            other => panic!("{other:?}"),
        }
        assert!(quiet.elapsed() < Duration::from_secs(3), "never closed");
    };
    assert_eq!(code, 1001);
    let elapsed = quiet.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_millis(1000),
        "{elapsed:?}"
    );
    let closes = eventually("backend close", || {
        let seen = seen.lock().unwrap();
        seen.messages.iter().find(|m| m.is_close()).cloned()
    })
    .await;
    match closes {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("{other:?}"),
    }
}
