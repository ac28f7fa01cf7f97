//! Access logs: one JSON event per HTTP request and one per WebSocket session at its end, from the
//! real binary with `--log-format json`; requests the client abandons are logged and counted as 499.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn json_access_events_for_http_and_websocket() {
    let (backend, _) = echo_backend().await;
    let yaml = format!(
        "listeners: [{{ name: public, bind: \"127.0.0.1:0\" }}]\n\
         upstreams: {{ echo: {{ endpoints: [\"{backend}\"] }} }}\n\
         routes: [{{ name: echo, upstream: echo }}]\n"
    );
    let (mut child, lines, _) = spawn_wsgate("access", &yaml, &["--log-format", "json"]);
    let addr = bound_addr(&lines, "public").await;

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

/// A backend that reads one request head, writes `respond`, then holds the connection until wsgate
/// closes it. Returns its address, whether a head arrived, and whether the connection was closed.
async fn holding_backend(
    respond: &'static str,
) -> (std::net::SocketAddr, Arc<AtomicBool>, Arc<AtomicBool>) {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (got_head, closed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (head_flag, closed_flag) = (got_head.clone(), closed.clone());
    tokio::spawn(async move {
        let (mut stream, _) = socket.accept().await.unwrap();
        read_head(&mut stream).await;
        head_flag.store(true, Ordering::SeqCst);
        stream.write_all(respond.as_bytes()).await.unwrap();
        let mut buf = [0u8; 1024];
        // EOF or reset: wsgate gave up the request. TIMEOUT bounds the wait if it never does.
        loop {
            match tokio::time::timeout(TIMEOUT, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed_flag.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(Ok(_)) => {}
                Err(_) => return,
            }
        }
    });
    (addr, got_head, closed)
}

/// wsgate from the binary with JSON logs, an admin listener and one route `slow` to `backend`;
/// `extra` is more top-level YAML.
async fn spawn_for(
    name: &str,
    backend: std::net::SocketAddr,
    extra: &str,
) -> (
    KillOnDrop,
    Arc<std::sync::Mutex<Vec<String>>>,
    std::net::SocketAddr,
    std::net::SocketAddr,
) {
    let yaml = format!(
        "listeners: [{{ name: public, bind: \"127.0.0.1:0\" }}]\n\
         admin: {{ bind: \"127.0.0.1:0\" }}\n\
         upstreams: {{ slow: {{ endpoints: [\"{backend}\"] }} }}\n\
         routes: [{{ name: slow, upstream: slow }}]\n{extra}"
    );
    let (child, lines, _) = spawn_wsgate(name, &yaml, &["--log-format", "json"]);
    let child = KillOnDrop(child);
    let addr = bound_addr(&lines, "public").await;
    let admin = bound_addr(&lines, "admin").await;
    (child, lines, addr, admin)
}

fn requests(metrics: &str, status: &str) -> Option<f64> {
    let labels = [("route", "slow"), ("method", "GET"), ("status", status)];
    metric(metrics, "wsgate_http_requests_total", &labels)
}

/// A client that leaves before the response (a long poll cut short, or an upgrade whose backend has
/// not answered) is logged and counted as 499, once, and the backend's request is cancelled: its
/// connection is closed.
#[tokio::test]
async fn client_gone_before_the_response_is_499_and_cancels_the_upstream() {
    let upgrade = upgrade_request("/poll?since=7", "");
    for request in [
        "GET /poll?since=7 HTTP/1.1\r\nHost: a\r\n\r\n",
        upgrade.as_str(),
        "GET /poll?since=7 HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nten bytes.",
    ] {
        client_gone_before_the_response(request).await;
    }
}

async fn client_gone_before_the_response(request: &str) {
    let (backend, got_head, closed) = holding_backend("").await;
    let (_child, lines, addr, admin) = spawn_for("499", backend, "").await;

    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client.write_all(request.as_bytes()).await.unwrap();
    eventually("the request at the backend", || {
        got_head.load(Ordering::SeqCst).then_some(())
    })
    .await;
    assert_eq!(requests(&scrape(admin).await, "499"), None);
    drop(client);

    // The counter and the duration histogram move one after the other: wait for both.
    let duration = "wsgate_http_request_duration_seconds_count";
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let metrics = scrape(admin).await;
        if requests(&metrics, "499") == Some(1.0)
            && metric(&metrics, duration, &[("route", "slow")]) == Some(1.0)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no 499 in\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    eventually("the backend connection closed", || {
        closed.load(Ordering::SeqCst).then_some(())
    })
    .await;
    // The log line is written by the child's logger thread: wait for it, not for a snapshot.
    let events: Vec<String> = eventually("the access event", || {
        let events = log_lines(&lines, "\"http request\"");
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    for expected in [
        "\"status\":499",
        "\"route\":\"slow\"",
        "\"path\":\"/poll\"",
        &format!("\"endpoint\":\"{backend}\""),
    ] {
        assert!(events[0].contains(expected), "{expected} in {}", events[0]);
    }
    let metrics = scrape(admin).await;
    assert_eq!(requests(&metrics, "499"), Some(1.0), "counted once");
    assert_eq!(requests(&metrics, "502"), None);
}

/// A client that leaves while the body streams got its status: that status is what is logged (as
/// nginx does), never 499, and the rest of the upstream body is abandoned.
#[tokio::test]
async fn client_gone_while_the_body_streams_keeps_its_status() {
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n";
    let (backend, _, closed) = holding_backend(head).await;
    let (_child, lines, addr, admin) = spawn_for("streaming", backend, "").await;

    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut client).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut chunk = [0u8; 10];
    client.read_exact(&mut chunk).await.unwrap();
    assert_eq!(&chunk, b"5\r\nfirst\r\n");
    drop(client);

    eventually("the backend connection closed", || {
        closed.load(Ordering::SeqCst).then_some(())
    })
    .await;
    let metrics = scrape(admin).await;
    assert_eq!(requests(&metrics, "200"), Some(1.0));
    assert_eq!(requests(&metrics, "499"), None);
    // The access event is logged as the request ends, just after the backend sees its close.
    let events: Vec<String> = eventually("the access event", || {
        let events = log_lines(&lines, "\"http request\"");
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("\"status\":200"), "{}", events[0]);
}

/// A request still waiting when the drain deadline ends the process was dropped by wsgate, not left
/// by its client: it is in the drain's `left_open`, not a 499.
#[tokio::test]
async fn requests_cut_by_the_drain_deadline_are_not_499() {
    let (backend, got_head, _) = holding_backend("").await;
    let port = free_port();
    let yaml = format!(
        "listeners: [{{ name: public, bind: \"127.0.0.1:{port}\" }}]\n\
         upstreams: {{ slow: {{ endpoints: [\"{backend}\"] }} }}\n\
         routes: [{{ name: slow, upstream: slow }}]\n\
         shutdown: {{ drain_timeout: 200ms }}\n"
    );
    let path = std::env::temp_dir().join(format!("wsgate-{}-deadline.yaml", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    // Its own child rather than spawn_wsgate's, to read stderr to its very end.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_wsgate"))
        .args(["--log-format", "json", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut client = None;
    for _ in 0..250 {
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
            client = Some(stream);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut client = client.expect("wsgate listening");
    client
        .write_all(b"GET /poll HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    eventually("the request at the backend", || {
        got_head.load(Ordering::SeqCst).then_some(())
    })
    .await;
    signal(&child.0, "-TERM");
    let mut pipe = child.0.stderr.take().unwrap();
    let stderr = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).unwrap();
        text
    })
    .await
    .unwrap();
    assert!(child.0.wait().unwrap().success());
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("\"drained\"") && l.contains("\"left_open\":1")),
        "{stderr}"
    );
    assert!(!stderr.contains("\"http request\""), "{stderr}");
    drop(client);
}
