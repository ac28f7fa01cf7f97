//! Keepalive pings find dead peers in both directions, their pongs are not relayed, and the idle
//! timeout counts data frames only. Each test waits for events (pings, echoes, close frames, EOF)
//! within generous bounds; how soon a timer fires is for the paused-clock tests in src/relay/.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
    let (opcode, token) = client.frame().await.expect("a keepalive ping");
    assert_eq!(opcode, 0x89);
    assert_eq!(token.len(), 8);
    // No answer: the tunnel ends (EOF, not our timeout); nothing but pings reached the client (the
    // backend's pongs to its own keepalive pings were not relayed).
    let rest = read_to_eof(&mut client.stream).await;
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
    // tungstenite answers wsgate's pings while it reads; the raw backend never answers.
    let close = loop {
        match tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(u16::from(close.unwrap().code), 1001);
    // The backend was pinged, and did not answer, before the cut.
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
    // Read (so tungstenite answers pings), counting them.
    let pings = Arc::new(AtomicUsize::new(0));
    let counter = pings.clone();
    let reader = tokio::spawn(async move {
        loop {
            match rx.next().await {
                Some(Ok(Message::Ping(_))) => {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                Some(Ok(Message::Text(t))) => return t.to_string(),
                other => panic!("{other:?}"),
            }
        }
    });
    // Six keepalive rounds of silence: each ping comes only after the previous one was answered
    // and a further interval passed, so a tunnel cut for an unanswered ping (after interval +
    // timeout) could not get this far.
    eventually("six keepalive pings", || {
        (pings.load(Ordering::SeqCst) >= 6).then_some(())
    })
    .await;
    tx.send(Message::text("still here")).await.unwrap();
    let echo = tokio::time::timeout(TIMEOUT, reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo, "still here");
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
    let idle = Duration::from_millis(800);
    let (_running, addr) = start_for(backend, "{ idle_timeout: 800ms }").await;
    let mut client = RawClient::connect(addr).await;
    // Data every 100 ms keeps it open for three idle timeouts: every echo comes back (a stall of a
    // whole idle timeout between two frames would cut it; the margin is 8x).
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < 3 * idle {
        client
            .send(&client_frame(0x81, format!("m{i}").as_bytes()))
            .await;
        assert_eq!(
            client.frame().await,
            Some((0x81, format!("m{i}").into_bytes())),
            "data frame {i} did not come back: the tunnel was cut while data flowed"
        );
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Pings (answered by wsgate) do not: the idle close comes while they flow, each answered
    // until then.
    let mut pongs = 0;
    let code = loop {
        client.send(&client_frame(0x89, b"p")).await;
        match client.frame().await {
            Some((0x8A, _)) => pongs += 1,
            Some((0x88, payload)) => break u16::from_be_bytes([payload[0], payload[1]]),
            other => panic!("{other:?}"),
        }
        assert!(pongs < 200, "still open after {pongs} pings");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, 1001);
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

/// Everything until EOF; panics if the connection is still open after a generous bound.
async fn read_to_eof(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    tokio::time::timeout(2 * TIMEOUT, stream.read_to_end(&mut out))
        .await
        .expect("the tunnel ends")
        .ok();
    out
}
