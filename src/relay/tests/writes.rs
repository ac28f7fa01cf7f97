//! Writing toward a peer: a peer that stops reading (write_timeout, backpressure), the bound on pongs
//! owed, and legs that move a few bytes per call.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::super::test_io::*;
use super::super::{BUFFER_SIZE, CLOSE_GRACE, CUT_LINGER};

const PIPE: usize = 1024;

#[tokio::test(start_paused = true)]
async fn write_timeout_cuts_a_client_that_stops_reading() {
    let mut t = Tunnel::start(Setup {
        client_pipe: PIPE,
        write_timeout: Duration::from_secs(2),
        ..Setup::default()
    });
    let frame = from_upstream(BINARY, &[1u8; 10_000]);
    t.upstream.write_all(&frame).await.unwrap();

    // The client reads nothing: after write_timeout without progress the upstream hears 1001.
    let close = read_frame(&mut t.upstream).await;
    assert_eq!((close.masked, close.close_code()), (true, 1001));
    assert_eq!(t.elapsed(), Duration::from_secs(2));
    assert!(t.client_reset.load(Ordering::SeqCst));
    // What fit in the client's pipe, then the end.
    assert_eq!(read_bytes(&mut t.client, PIPE).await, &frame[..PIPE]);
    assert_eof(&mut t.client).await;
    assert_eq!(t.ended().await, Duration::from_secs(2) + CUT_LINGER);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_read_stops_the_upstream() {
    let mut t = Tunnel::start(Setup {
        client_pipe: PIPE,
        upstream_pipe: PIPE,
        ..Setup::default()
    });
    let frames: Vec<u8> = (0..200u8)
        .flat_map(|i| from_upstream(BINARY, &[i; 1_000]))
        .collect();
    let mut sent = 0;
    while let Ok(written) =
        tokio::time::timeout(Duration::from_millis(1), t.upstream.write(&frames[sent..])).await
    {
        sent += written.unwrap();
    }
    // Held up by what the pipes and one read buffer hold, far short of everything.
    assert!(sent <= PIPE + BUFFER_SIZE + PIPE, "{sent} bytes taken");
    assert!(t.is_running());

    // Once the client reads, everything arrives in order.
    let (written, received) = tokio::join!(
        t.upstream.write_all(&frames[sent..]),
        read_bytes(&mut t.client, frames.len())
    );
    written.unwrap();
    assert!(received == frames, "bytes differ");
    assert_quiet(&mut t.client).await;
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// Sends `count` client pings with payloads `payload(i)` in one write; returns the pongs read.
async fn pings(t: &mut Tunnel, count: usize, payload: impl Fn(usize) -> Vec<u8>) -> Vec<Vec<u8>> {
    let bytes: Vec<u8> = (0..count)
        .flat_map(|i| from_client(PING, &payload(i)))
        .collect();
    t.client.write_all(&bytes).await.unwrap();
    let mut pongs = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        let peek = tokio::time::timeout(Duration::from_millis(1), async {
            use tokio::io::AsyncReadExt;
            t.client.read_exact(&mut byte).await
        });
        if peek.await.is_err() {
            return pongs;
        }
        assert_eq!(byte[0], PONG);
        let len = read_bytes(&mut t.client, 1).await[0];
        pongs.push(read_bytes(&mut t.client, usize::from(len)).await);
    }
}

#[tokio::test(start_paused = true)]
async fn past_16_pongs_owed_the_oldest_are_dropped() {
    let mut t = Tunnel::start(Setup::default());
    // The README's bound, spelled out: a change to the constant must show here.
    let pongs = pings(&mut t, 20, |i| vec![i as u8]).await;
    let newest: Vec<Vec<u8>> = (4..20).map(|i| vec![i as u8]).collect();
    assert_eq!(pongs, newest);
    assert_eq!(t.route.client.pongs_dropped.get(), 4);
    assert_eq!(t.route.client.pings_answered.get(), 20);
    assert_quiet(&mut t.upstream).await;
}

#[tokio::test(start_paused = true)]
async fn past_1_kib_of_pongs_owed_the_oldest_are_dropped() {
    let mut t = Tunnel::start(Setup::default());
    // Eight 125-byte payloads are 1,000 bytes; a ninth would pass 1,024.
    let pongs = pings(&mut t, 10, |i| vec![i as u8; 125]).await;
    let newest: Vec<Vec<u8>> = (2..10).map(|i| vec![i as u8; 125]).collect();
    assert_eq!(pongs, newest);
    assert_eq!(t.route.client.pongs_dropped.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn short_reads_short_writes_and_pending_change_no_byte() {
    let mut t = Tunnel::start(Setup {
        chunk: Some(3),
        ..Setup::default()
    });
    let mut from_c = from_client(0x01, b"frag");
    from_c.extend(from_client(0x80, b"mented"));
    from_c.extend(from_client(BINARY, &[9u8; 300]));
    relays(&mut t.client, &mut t.upstream, &from_c).await;

    t.client.write_all(&from_client(PING, b"hi")).await.unwrap();
    assert_eq!(
        read_bytes(&mut t.client, 4).await,
        from_upstream(PONG, b"hi")
    );
    let from_u = from_upstream(TEXT, "ünïcode".as_bytes());
    relays(&mut t.upstream, &mut t.client, &from_u).await;

    let close = from_client(CLOSE, &close_payload(1000, ""));
    relays(&mut t.client, &mut t.upstream, &close).await;
    let reply = from_upstream(CLOSE, &close_payload(1000, ""));
    relays(&mut t.upstream, &mut t.client, &reply).await;
    assert_eof(&mut t.client).await;
    assert_eof(&mut t.upstream).await;
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    assert!(t.ended().await < CLOSE_GRACE);
}

#[tokio::test(start_paused = true)]
async fn bytes_read_past_the_handshake_are_relayed_first() {
    let prefix = from_client(TEXT, b"early");
    let mut t = Tunnel::start(Setup {
        client_prefix: prefix.clone().into(),
        ..Setup::default()
    });
    let next = from_client(TEXT, b"later");
    t.client.write_all(&next).await.unwrap();
    assert_eq!(read_bytes(&mut t.upstream, prefix.len()).await, prefix);
    assert_eq!(read_bytes(&mut t.upstream, next.len()).await, next);
}
