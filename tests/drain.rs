//! Graceful shutdown: tunnels get a close frame (1001 or 1012) spread over the drain window and
//! written between frames, nothing a client sent before it is lost, in-flight HTTP finishes, readiness
//! turns to 503, and the drain ends when every connection is done or at its deadline. The tests wait
//! for events (close frames, readiness, the report); when within the window each close is sent is a
//! timer matter, for a paused clock (src/relay/timers.rs `drain_close`), not for wall-clock windows.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message;

fn config(backend: SocketAddr, drain: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" }}]
admin: {{ bind: "127.0.0.1:0" }}
upstreams: {{ echo: {{ endpoints: ["{backend}"] }} }}
routes: [{{ name: echo, upstream: echo }}]
shutdown: {drain}
"#
    )
}

#[tokio::test]
async fn tunnels_get_spread_closes_and_lose_nothing() {
    let (backend, seen) = echo_backend().await;
    let running = start(&config(backend, "{ drain_timeout: 2s, close_code: 1012 }")).await;
    let addr = running.listener_addr("public").unwrap();
    let admin = running.admin_addr().unwrap();

    const TUNNELS: usize = 20;
    let mut clients = Vec::new();
    for i in 0..TUNNELS {
        let mut ws = ws_client(addr, "/ws").await;
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::text(format!("hello {i}"))
        );
        // Sent before the signal, not waited for.
        ws.send(Message::text(format!("before {i}"))).await.unwrap();
        clients.push(ws);
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                loop {
                    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                        Ok(Some(Ok(Message::Close(Some(frame))))) => return u16::from(frame.code),
                        Ok(Some(Ok(_))) => continue,
                        other => panic!("no close frame: {other:?}"),
                    }
                }
            })
        })
        .collect();
    let (report, ()) = tokio::join!(running.drain(), async {
        // Readiness flips once the drain begins, while liveness stays.
        eventually_async("readiness 503", || async {
            let (_, head) = raw_request(admin, "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n").await;
            head.starts_with("HTTP/1.1 503 ").then_some(())
        })
        .await;
        let (_, head) = raw_request(admin, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    });
    // Every tunnel ended before the deadline: by its close handshake, not by the cut.
    assert_eq!(report.left_open, 0);
    for reader in readers {
        assert_eq!(reader.await.unwrap(), 1012);
    }

    let received = texts(&seen);
    for i in 0..TUNNELS {
        assert!(
            received.contains(&format!("before {i}")),
            "lost 'before {i}'"
        );
    }
    // New connections are refused once draining.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn http_request_in_flight_finishes() {
    // A backend that answers once the drain has begun.
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = socket.local_addr().unwrap();
    let (got_request, request_in) = tokio::sync::oneshot::channel();
    let (answer_now, go) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = socket.accept().await.unwrap();
        let _ = read_head(&mut stream).await;
        let _ = got_request.send(());
        let _ = go.await;
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow";
        tokio::io::AsyncWriteExt::write_all(&mut stream, answer.as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let running = start(&config(backend, "{ drain_timeout: 3s }")).await;
    let addr = running.listener_addr("public").unwrap();
    let request = tokio::spawn(async move {
        let (mut stream, head) = raw_request(addr, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n").await;
        let mut body = [0u8; 4];
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut body)
            .await
            .unwrap();
        // After the answer, the drained connection is closed.
        let rest = read_to_end(&mut stream).await;
        (head, body, rest)
    });
    tokio::time::timeout(TIMEOUT, request_in)
        .await
        .unwrap()
        .unwrap();
    let admin = running.admin_addr().unwrap();
    let (report, ()) = tokio::join!(running.drain(), async {
        eventually_async("readiness 503", || async {
            let (_, head) = raw_request(admin, "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n").await;
            head.starts_with("HTTP/1.1 503 ").then_some(())
        })
        .await;
        answer_now.send(()).unwrap();
    });
    // It ended because the request finished, not at the 3 s deadline.
    assert_eq!(report.left_open, 0);
    let (head, body, rest) = request.await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(&body, b"slow");
    assert!(rest.is_empty());
}

#[tokio::test]
async fn deadline_ends_a_drain_that_a_client_ignores() {
    let (backend, _) = raw_backend(switching, vec![]).await;
    let running = start(&config(backend, "{ drain_timeout: 2s }")).await;
    let addr = running.listener_addr("public").unwrap();
    // A raw client that never answers the close.
    let mut client = RawClient::connect(addr).await;
    let (closed, mut close_seen) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let code = read_close(&mut client.stream).await;
        // Handed back, so that it stays open and unanswered until the test ends.
        let _ = closed.send((code, client));
    });
    let report = tokio::time::timeout(2 * TIMEOUT, running.drain())
        .await
        .expect("the drain ends at its deadline");
    // The deadline, not the tunnel's end, ended it: the tunnel was still open, and the drain did
    // not end before the tunnel's close was sent (at most 1.6 s in, of 2 s).
    assert_eq!(report.left_open, 1);
    let (code, _client) = close_seen
        .try_recv()
        .expect("the close came before the deadline");
    assert_eq!(code, Some(1001));
}

#[tokio::test]
async fn sigterm_to_the_binary_closes_every_tunnel_and_exits_0() {
    let (backend, seen) = echo_backend().await;
    let yaml = format!(
        "listeners: [{{ name: public, bind: \"127.0.0.1:0\" }}]\n\
         upstreams: {{ echo: {{ endpoints: [\"{backend}\"] }} }}\n\
         routes: [{{ name: echo, upstream: echo }}]\n\
         shutdown: {{ drain_timeout: 1s }}\n"
    );
    let (mut child, lines, _) = spawn_wsgate("sigterm", &yaml, &[]);
    let addr = bound_addr(&lines, "public").await;
    let mut clients = Vec::new();
    for i in 0..5 {
        let mut ws = ws_client(addr, "/").await;
        ws.send(Message::text(format!("sent before SIGTERM {i}")))
            .await
            .unwrap();
        clients.push(ws);
    }
    signal(&child, "-TERM");
    for mut ws in clients {
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap()
            {
                Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
                Some(Ok(_)) => continue,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(code, 1001);
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let received = texts(&seen);
    for i in 0..5 {
        assert!(
            received.contains(&format!("sent before SIGTERM {i}")),
            "{received:?}"
        );
    }
}
