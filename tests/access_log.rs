//! Access logs: one JSON event per HTTP request and one per WebSocket session at its end, from the
//! real binary with `--log-format json`.

mod support;

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn json_access_events_for_http_and_websocket() {
    let (backend, _) = echo_backend().await;
    let port = free_port();
    let yaml = format!(
        "listeners: [{{ name: public, bind: \"127.0.0.1:{port}\" }}]\n\
         upstreams: {{ echo: {{ endpoints: [\"{backend}\"] }} }}\n\
         routes: [{{ name: echo, upstream: echo }}]\n"
    );
    let (mut child, lines, _) = spawn_wsgate("access", &yaml, &["--log-format", "json"]);
    eventually("listening", || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("listening"))
            .then_some(())
    })
    .await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut ws = ws_client(addr, "/chat").await;
    ws.send(Message::text("one")).await.unwrap();
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    ws.next().await.unwrap().unwrap();
    ws.next().await.unwrap().unwrap();
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    drop(ws);

    let ws_event = eventually("websocket access event", || {
        lines
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("\"websocket session\""))
            .cloned()
    })
    .await;
    let http_event = lines
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("\"http request\""))
        .cloned()
        .expect("an http access event for the upgrade");
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());

    for expected in [
        "\"target\":\"wsgate::access\"",
        "\"route\":\"echo\"",
        "\"client_frames\":3",
        "\"client_bytes\":6",
        "\"upstream_frames\":3",
        "\"upstream_bytes\":6",
        "\"client_close\":\"Some(1005)\"",
        "\"closed_first\":\"client\"",
        &format!("\"endpoint\":\"{backend}\""),
    ] {
        assert!(ws_event.contains(expected), "{expected} in {ws_event}");
    }
    for expected in [
        "\"status\":101",
        "\"method\":\"GET\"",
        "\"path\":\"/chat\"",
        "\"peer\":\"127.0.0.1:",
    ] {
        assert!(http_event.contains(expected), "{expected} in {http_event}");
    }
}
