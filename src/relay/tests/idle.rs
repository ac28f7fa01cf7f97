//! An idle tunnel holds no read buffer, on legs that say when they have bytes (TCP) and on those
//! that must be read to know (a TLS session, or any stream that just answers `Pending`).

use super::super::buffer::held_on_this_thread;
use super::super::test_io::*;
use super::super::test_tls::tls_tunnel;

#[tokio::test(start_paused = true)]
async fn an_idle_tunnel_over_pending_streams_holds_no_read_buffer() {
    let mut t = Tunnel::start(Setup::default());
    relays(&mut t.client, &mut t.upstream, &from_client(TEXT, b"hello")).await;
    relays(&mut t.upstream, &mut t.client, &from_upstream(TEXT, b"hi")).await;
    // Both pumps have polled their quiet sender since (the paused clock runs everything first).
    assert_quiet(&mut t.client).await;
    assert_eq!(held_on_this_thread(), 0);
    assert!(t.is_running());
}

#[tokio::test(start_paused = true)]
async fn an_idle_tls_tunnel_holds_no_read_buffer() {
    let mut t = tls_tunnel(Setup::default()).await;
    let hello = from_client(TEXT, b"hello");
    // Part of a frame is held until the rest comes: the count sees the buffer that holds it.
    send(&mut t.client, &hello[..3]).await;
    assert_quiet(&mut t.upstream).await;
    assert_eq!(held_on_this_thread(), 1);
    send(&mut t.client, &hello[3..]).await;
    assert_eq!(read_bytes(&mut t.upstream, hello.len()).await, hello);
    relays(&mut t.upstream, &mut t.client, &from_upstream(TEXT, b"hi")).await;

    assert_quiet(&mut t.client).await;
    assert_eq!(held_on_this_thread(), 0);
    assert!(t.is_running());
}
