//! Pings: `answer` makes wsgate reply to client pings itself; `forward` relays them; backend pings
//! always reach the client.

mod support;

use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn answered_pings_never_reach_the_backend() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let (running, addr) = start_for(backend, "{ ping: answer }").await;
    let mut client = RawClient::connect(addr).await;
    client.send(&client_frame(0x89, b"are you there?")).await;
    assert_eq!(
        client.frame().await,
        Some((0x8A, b"are you there?".to_vec()))
    );
    // An empty ping too.
    client.send(&client_frame(0x89, b"")).await;
    assert_eq!(client.frame().await, Some((0x8A, vec![])));
    client.send(&client_frame(0x81, b"data")).await;
    eventually("data at the backend", || {
        (!seen.lock().unwrap().bytes.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        parse_frames(&seen.lock().unwrap().bytes),
        vec![(0x81, b"data".to_vec())]
    );
    let text = running.metrics_text();
    let labels = [("route", "echo"), ("direction", "client_to_upstream")];
    assert_eq!(
        metric(&text, "wsgate_ws_pings_answered_total", &labels),
        Some(2.0)
    );
}

#[tokio::test]
async fn forwarded_pings_get_the_backends_pong() {
    let (backend, seen) = echo_backend().await;
    let (_running, addr) = start_for(backend, "{ ping: forward }").await;
    let mut client = RawClient::connect(addr).await;
    client.send(&client_frame(0x89, b"hello backend")).await;
    // tungstenite answers the ping itself with a pong carrying the same payload.
    assert_eq!(
        client.frame().await,
        Some((0x8A, b"hello backend".to_vec()))
    );
    let pings: Vec<Message> = seen.lock().unwrap().messages.clone();
    assert_eq!(pings, vec![Message::Ping(b"hello backend".to_vec().into())]);
}

#[tokio::test]
async fn backend_pings_reach_the_client() {
    let ping = frame(0x89, b"heartbeat", None);
    let (backend, seen) = raw_backend(switching, ping).await;
    let (_running, addr) = start_for(backend, "{ ping: answer }").await;
    let mut client = RawClient::connect(addr).await;
    assert_eq!(client.frame().await, Some((0x89, b"heartbeat".to_vec())));
    client.send(&client_frame(0x8A, b"heartbeat")).await;
    eventually("pong at the backend", || {
        (!seen.lock().unwrap().bytes.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        parse_frames(&seen.lock().unwrap().bytes),
        vec![(0x8A, b"heartbeat".to_vec())]
    );
}

/// Reads `count` frames and returns them.
async fn frames(client: &mut RawClient, count: usize) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(client.frame().await.expect("a frame"));
    }
    out
}

fn pings(range: std::ops::Range<usize>) -> (Vec<u8>, Vec<(u8, Vec<u8>)>) {
    let wire = range
        .clone()
        .flat_map(|i| client_frame(0x89, format!("payload-{i}").as_bytes()))
        .collect();
    let pongs = range
        .map(|i| (0x8A, format!("payload-{i}").into_bytes()))
        .collect();
    (wire, pongs)
}

#[tokio::test]
async fn every_ping_of_a_burst_gets_its_own_pong_in_order() {
    let (backend, seen) = raw_backend(switching, vec![]).await;
    let (running, addr) = start_for(backend, "{ ping: answer }").await;
    let mut client = RawClient::connect(addr).await;
    // Ten pings in one write: one segment on loopback, so wsgate reads them in one go.
    let (wire, want) = pings(0..10);
    client.send(&wire).await;
    assert_eq!(frames(&mut client, 10).await, want);
    // Nothing more is owed: the next frame is the answer to the next ping.
    client.send(&client_frame(0x89, b"after")).await;
    assert_eq!(client.frame().await, Some((0x8A, b"after".to_vec())));
    assert!(
        seen.lock().unwrap().bytes.is_empty(),
        "a ping reached the backend"
    );
    let text = running.metrics_text();
    let labels = [("route", "echo"), ("direction", "client_to_upstream")];
    assert_eq!(
        metric(&text, "wsgate_ws_pings_answered_total", &labels),
        Some(11.0)
    );
    assert_eq!(
        metric(&text, "wsgate_ws_pongs_dropped_total", &labels),
        Some(0.0)
    );
}

#[tokio::test]
async fn past_the_bound_the_newest_pongs_are_kept_and_the_rest_counted() {
    let (backend, _seen) = raw_backend(switching, vec![]).await;
    let (running, addr) = start_for(backend, "{ ping: answer }").await;
    let mut client = RawClient::connect(addr).await;
    // 40 pings in one segment: 16 pongs may be pending (README "Frames"), so the last 16 are
    // answered and the 24 before them dropped.
    let (wire, want) = pings(0..40);
    client.send(&wire).await;
    assert_eq!(frames(&mut client, 16).await, want[24..]);
    client.send(&client_frame(0x89, b"after")).await;
    assert_eq!(client.frame().await, Some((0x8A, b"after".to_vec())));
    let text = running.metrics_text();
    let labels = [("route", "echo"), ("direction", "client_to_upstream")];
    assert_eq!(
        metric(&text, "wsgate_ws_pings_answered_total", &labels),
        Some(41.0)
    );
    assert_eq!(
        metric(&text, "wsgate_ws_pongs_dropped_total", &labels),
        Some(24.0)
    );
}
