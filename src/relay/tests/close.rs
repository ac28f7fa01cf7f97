//! The close handshake, started by either side, and a peer gone without one.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::super::test_io::*;
use super::super::CLOSE_GRACE;
use crate::metrics::names::WS_CLOSES;

#[tokio::test(start_paused = true)]
async fn the_client_starts_the_close_handshake() {
    let mut t = Tunnel::start(Setup::default());
    let hello = from_client(TEXT, b"hello");
    relays(&mut t.client, &mut t.upstream, &hello).await;

    let close = from_client(CLOSE, &close_payload(1000, "bye"));
    relays(&mut t.client, &mut t.upstream, &close).await;
    // Half closed: the client's side stays open for the reply.
    assert_quiet(&mut t.client).await;
    assert!(t.is_running());

    let reply = from_upstream(CLOSE, &close_payload(1000, ""));
    relays(&mut t.upstream, &mut t.client, &reply).await;
    // Both closes through: FIN both ways (RFC 6455 §7.1.1).
    assert_eof(&mut t.client).await;
    assert_eof(&mut t.upstream).await;
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    assert!(t.ended().await < CLOSE_GRACE, "ended on the TCP closes");

    let code = [("code", "1000")];
    let from = |dir| [code[0], ("direction", dir)];
    assert_eq!(t.metric(WS_CLOSES, &from("client_to_upstream")), 1.0);
    assert_eq!(t.metric(WS_CLOSES, &from("upstream_to_client")), 1.0);
}

#[tokio::test(start_paused = true)]
async fn the_upstream_starts_the_close_handshake() {
    let mut t = Tunnel::start(Setup::default());
    let close = from_upstream(CLOSE, &close_payload(4001, "restart"));
    relays(&mut t.upstream, &mut t.client, &close).await;
    assert_quiet(&mut t.upstream).await;

    let reply = from_client(CLOSE, &close_payload(4001, ""));
    relays(&mut t.client, &mut t.upstream, &reply).await;
    assert_eof(&mut t.upstream).await;
    assert_eof(&mut t.client).await;
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    assert!(t.ended().await < CLOSE_GRACE);
    let labels = [("code", "4xxx"), ("direction", "upstream_to_client")];
    assert_eq!(t.metric(WS_CLOSES, &labels), 1.0);
}

#[tokio::test(start_paused = true)]
async fn a_handshake_whose_peers_keep_their_connections_ends_at_the_close_grace() {
    let mut t = Tunnel::start(Setup::default());
    let close = from_client(CLOSE, &close_payload(1000, ""));
    relays(&mut t.client, &mut t.upstream, &close).await;
    let reply = from_upstream(CLOSE, &close_payload(1000, ""));
    relays(&mut t.upstream, &mut t.client, &reply).await;
    // Neither peer closes its TCP connection: the grace runs from the first close frame.
    assert_eq!(t.ended().await, CLOSE_GRACE);
}

#[tokio::test(start_paused = true)]
async fn once_the_handshake_is_done_and_the_upstream_closed_the_client_is_not_waited_for() {
    let mut t = Tunnel::start(Setup::default());
    let close = from_client(CLOSE, &close_payload(1000, ""));
    relays(&mut t.client, &mut t.upstream, &close).await;
    let reply = from_upstream(CLOSE, &close_payload(1000, ""));
    relays(&mut t.upstream, &mut t.client, &reply).await;
    t.upstream.shutdown().await.unwrap();
    // The client keeps its connection open: wsgate, its server, closes first (RFC 6455 §7.1.1).
    assert_eof(&mut t.client).await;
    assert_eq!(t.ended().await, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn frames_after_a_close_are_dropped() {
    let mut t = Tunnel::start(Setup::default());
    let close = from_upstream(CLOSE, &close_payload(1000, ""));
    let mut bytes = close.clone();
    bytes.extend(from_upstream(TEXT, b"late"));
    t.upstream.write_all(&bytes).await.unwrap();
    assert_eq!(read_bytes(&mut t.client, close.len()).await, close);
    assert_quiet(&mut t.client).await;
    let labels = [
        ("direction", "upstream_to_client"),
        ("kind", "data_after_close"),
    ];
    let violations = crate::metrics::names::WS_PROTOCOL_VIOLATIONS;
    assert_eq!(t.metric(violations, &labels), 1.0);
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    assert!(t.ended().await < CLOSE_GRACE);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_gone_without_a_close_frame_gets_the_client_1014() {
    let mut t = Tunnel::start(Setup::default());
    t.upstream.shutdown().await.unwrap();
    let close = read_frame(&mut t.client).await;
    assert_eq!((close.masked, close.close_code()), (false, 1014));
    assert_eof(&mut t.client).await;
    t.client.shutdown().await.unwrap();
    assert_eq!(t.ended().await, Duration::ZERO);
}
