//! Real peers on both sides: a tokio-tungstenite client through wsgate to a tokio-tungstenite echo
//! server. Messages arrive byte-identical and in order, fragments and subprotocols work.

mod support;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use support::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn text_and_binary_echo() {
    let (backend, seen) = echo_backend().await;
    let (_running, addr) = start_for(backend, "{}").await;
    let mut ws = ws_client(addr, "/ws").await;
    ws.send(Message::text("héllo wsgate")).await.unwrap();
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    ws.send(Message::text("")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("héllo wsgate")
    );
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text(""));
    assert_eq!(seen.lock().unwrap().messages.len(), 3);
}

#[tokio::test]
async fn thousand_random_messages_both_ways_arrive_identical_and_in_order() {
    let (backend, _) = echo_backend().await;
    let (_running, addr) =
        start_for(backend, "{ max_frame_size: 1MiB, max_message_size: 1MiB }").await;
    let ws = ws_client(addr, "/ws").await;
    let (mut tx, mut rx) = ws.split();
    let mut rng = rand::rng();
    let messages: Vec<Message> = (0..1000)
        .map(|i| {
            let len = rng.random_range(0..=200 * 1024);
            let mut bytes = vec![0u8; len];
            rng.fill(&mut bytes[..]);
            if i % 2 == 0 {
                Message::binary(bytes)
            } else {
                // 1- to 4-byte characters, so code points straddle frame and read boundaries.
                let chars = ['a', 'é', '€', '𝄞'];
                let text: String = bytes[..len / 3]
                    .iter()
                    .map(|b| chars[usize::from(b % 4)])
                    .collect();
                Message::text(text)
            }
        })
        .collect();
    let expected = messages.clone();
    // Send and receive at once, so both directions carry data at the same time.
    let sender = tokio::spawn(async move {
        for m in messages {
            tx.send(m).await.unwrap();
        }
        tx
    });
    for (i, want) in expected.iter().enumerate() {
        let got = tokio::time::timeout(TIMEOUT, rx.next())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        assert!(got == *want, "message {i} differs");
    }
    drop(sender.await.unwrap());
}

#[tokio::test]
async fn fragmented_message_reaches_the_backend_whole() {
    let (backend, seen) = echo_backend().await;
    let (_running, addr) = start_for(backend, "{}").await;
    let mut client = RawClient::connect(addr).await;
    let fragments = [
        client_frame(0x01, "frag".as_bytes()),
        client_frame(0x00, "men".as_bytes()),
        client_frame(0x89, b"mid-ping"),
        client_frame(0x80, "ted €".as_bytes()),
    ];
    for f in &fragments {
        client.send(f).await;
    }
    // The pong for the interleaved ping comes first (answered by wsgate), then the echo.
    assert_eq!(client.frame().await, Some((0x8A, b"mid-ping".to_vec())));
    assert_eq!(
        client.frame().await,
        Some((0x81, "fragmented €".as_bytes().to_vec()))
    );
    let messages = seen.lock().unwrap().messages.clone();
    assert_eq!(messages, vec![Message::text("fragmented €")]);
}

#[tokio::test]
async fn subprotocol_negotiation_through_the_allowlist() {
    let (backend, seen) = echo_backend().await;
    let (_running, addr) = start_for(backend, r#"{ subprotocols: ["chat.v2", "chat.v1"] }"#).await;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "other, chat.v1".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    let offered: Vec<String> = seen
        .lock()
        .unwrap()
        .request_headers
        .iter()
        .filter(|(k, _)| k == "sec-websocket-protocol")
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(offered, vec!["chat.v1"], "the allowlist filtered the offer");
    ws.send(Message::text("hi")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi"));
}

#[tokio::test]
async fn close_handshake_reaches_both_ends() {
    let (backend, seen) = echo_backend().await;
    let (running, addr) = start_for(backend, "{}").await;
    let mut ws = ws_client(addr, "/ws").await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    // The backend's close reply comes back, then the stream ends.
    let reply = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    match reply {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("{other:?}"),
    }
    let end = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    assert!(end.is_none() || matches!(end, Some(Err(_))), "{end:?}");
    drop(ws);
    let closes: Vec<_> = seen
        .lock()
        .unwrap()
        .messages
        .iter()
        .filter(|m| m.is_close())
        .cloned()
        .collect();
    assert_eq!(closes.len(), 1);
    let admin = running.admin_addr().unwrap();
    tunnels_closed(&running, "echo").await;
    let text = scrape(admin).await;
    for direction in ["client_to_upstream", "upstream_to_client"] {
        let labels = [
            ("route", "echo"),
            ("direction", direction),
            ("code", "1000"),
        ];
        assert_eq!(
            metric(&text, "wsgate_ws_closes_total", &labels),
            Some(1.0),
            "{direction}"
        );
    }
}
