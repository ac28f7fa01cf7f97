//! Tunnels whose both legs are real rustls sessions (over in-memory pipes): each leg is one stream
//! that both pumps use in turn, with no `tokio::io::split` between them.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::super::test_io::*;
use super::super::test_tls::tls_tunnel;
use super::super::CLOSE_GRACE;

#[tokio::test(start_paused = true)]
async fn tls_legs_relay_both_ways_and_close_cleanly() {
    let mut t = tls_tunnel(Setup::default()).await;
    relays(&mut t.client, &mut t.upstream, &from_client(TEXT, b"hello")).await;
    relays(&mut t.upstream, &mut t.client, &from_upstream(TEXT, b"hi")).await;

    let close = from_client(CLOSE, &close_payload(1000, "bye"));
    relays(&mut t.client, &mut t.upstream, &close).await;
    assert_quiet(&mut t.client).await;
    let reply = from_upstream(CLOSE, &close_payload(1000, ""));
    relays(&mut t.upstream, &mut t.client, &reply).await;
    // Both closes through: each leg's session is closed (close_notify, then FIN).
    assert_eof(&mut t.client).await;
    assert_eof(&mut t.upstream).await;
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    assert!(t.ended().await < CLOSE_GRACE, "ended on the TLS closes");
}

#[tokio::test(start_paused = true)]
async fn a_tls_peer_gone_without_a_close_frame_gets_the_other_one_a_close() {
    let mut t = tls_tunnel(Setup::default()).await;
    t.upstream.shutdown().await.unwrap();
    let close = read_frame(&mut t.client).await;
    assert_eq!((close.masked, close.close_code()), (false, 1014));
    assert_eof(&mut t.client).await;
    t.client.shutdown().await.unwrap();
    assert_eq!(t.ended().await, Duration::ZERO);
}

/// Frames far larger than the pipes: a TLS session keeps back records its socket could not take,
/// and the pump flushes them even when it has nothing more to write.
#[tokio::test(start_paused = true)]
async fn large_frames_cross_tls_legs_with_small_pipes() {
    let mut t = tls_tunnel(Setup {
        client_pipe: 1024,
        upstream_pipe: 1024,
        ..Setup::default()
    })
    .await;
    let down = from_upstream(BINARY, &[7u8; 100_000]);
    let up = from_client(BINARY, &[9u8; 100_000]);
    let both = async {
        let ((), received) = tokio::join!(
            send(&mut t.upstream, &down),
            read_bytes(&mut t.client, down.len())
        );
        assert_eq!(received, down);
        let ((), received) = tokio::join!(
            send(&mut t.client, &up),
            read_bytes(&mut t.upstream, up.len())
        );
        assert_eq!(received, up);
    };
    tokio::time::timeout(Duration::from_secs(1), both)
        .await
        .expect("every byte arrives");
}
