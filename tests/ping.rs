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
        2.0
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
