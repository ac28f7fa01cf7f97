//! Access logs: one JSON event per HTTP request and one per WebSocket session at its end, from the
//! real binary with `--log-format json`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn json_access_events_for_http_and_websocket() {
    let (backend, _) = echo_backend().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!(
        "listeners: [{{ name: public, bind: \"127.0.0.1:{port}\" }}]\n\
         upstreams: {{ echo: {{ endpoints: [\"{backend}\"] }} }}\n\
         routes: [{{ name: echo, upstream: echo }}]\n"
    );
    let path = std::env::temp_dir().join(format!("wsgate-{}-access.yaml", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["--log-format", "json", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
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
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
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
