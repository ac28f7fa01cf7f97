//! The tunnel's timers: keepalive pings and their timeout, the idle timeout, the drain close.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::{sleep, Instant};

use super::super::test_io::*;
use super::super::{CLOSE_GRACE, CUT_LINGER};
use crate::config::Keepalive;
use crate::drain::{DrainPlan, DrainSignal};

const SECOND: Duration = Duration::from_secs(1);

fn keepalive() -> Setup {
    Setup {
        keepalive: Some(Keepalive {
            interval: 10 * SECOND,
            timeout: 5 * SECOND,
        }),
        ..Setup::default()
    }
}

/// Reads wsgate's keepalive ping: 8 bytes, masked only toward the upstream.
async fn own_ping(io: &mut tokio::io::DuplexStream, masked: bool) -> Vec<u8> {
    let ping = read_frame(io).await;
    assert_eq!(
        (ping.first, ping.masked, ping.payload.len()),
        (PING, masked, 8)
    );
    ping.payload
}

#[tokio::test(start_paused = true)]
async fn a_silent_upstream_is_pinged_then_dropped_and_the_client_gets_1001() {
    let mut t = Tunnel::start(keepalive());
    let token = own_ping(&mut t.client, false).await;
    assert_eq!(t.elapsed(), 10 * SECOND);
    own_ping(&mut t.upstream, true).await;
    // The client's answer to wsgate's own ping is not relayed.
    t.client
        .write_all(&from_client(PONG, &token))
        .await
        .unwrap();

    let close = read_frame(&mut t.client).await;
    assert_eq!((close.masked, close.close_code()), (false, 1001));
    assert_eq!(t.elapsed(), 15 * SECOND);
    assert_eof(&mut t.client).await;
    assert_eq!(t.ended().await, 15 * SECOND + CUT_LINGER);
    // Nothing but the ping reached the dead side before it was dropped.
    assert_eof(&mut t.upstream).await;
}

#[tokio::test(start_paused = true)]
async fn answered_pings_keep_the_tunnel_open() {
    let mut t = Tunnel::start(keepalive());
    let client_token = own_ping(&mut t.client, false).await;
    let upstream_token = own_ping(&mut t.upstream, true).await;
    sleep(2 * SECOND).await;
    t.client
        .write_all(&from_client(PONG, &client_token))
        .await
        .unwrap();
    t.upstream
        .write_all(&from_upstream(PONG, &upstream_token))
        .await
        .unwrap();
    // The next pings come an interval after each answer, and no close before them.
    own_ping(&mut t.client, false).await;
    assert_eq!(t.elapsed(), 22 * SECOND);
    own_ping(&mut t.upstream, true).await;
    assert!(t.is_running());
}

#[tokio::test(start_paused = true)]
async fn the_idle_timeout_counts_data_frames_only() {
    let mut t = Tunnel::start(Setup {
        idle_timeout: Some(10 * SECOND),
        ..Setup::default()
    });
    sleep(3 * SECOND).await;
    // A ping (answered by wsgate) keeps nothing open.
    t.client.write_all(&from_client(PING, b"p")).await.unwrap();
    assert_eq!(
        read_bytes(&mut t.client, 3).await,
        from_upstream(PONG, b"p")
    );
    sleep(3 * SECOND).await;
    let data = from_client(BINARY, b"data");
    relays(&mut t.client, &mut t.upstream, &data).await;
    sleep(2 * SECOND).await;
    // Nor does an upstream ping, relayed to the client.
    let ping = from_upstream(PING, b"u");
    relays(&mut t.upstream, &mut t.client, &ping).await;

    // Ten seconds after the data frame, both sides get 1001.
    let to_client = read_frame(&mut t.client).await;
    assert_eq!((to_client.masked, to_client.close_code()), (false, 1001));
    assert_eq!(t.elapsed(), 16 * SECOND);
    let to_upstream = read_frame(&mut t.upstream).await;
    assert_eq!((to_upstream.masked, to_upstream.close_code()), (true, 1001));
    // Peers that never answer get the close grace.
    assert_eq!(t.ended().await, 16 * SECOND + CLOSE_GRACE);
}

#[tokio::test(start_paused = true)]
async fn a_drain_close_waits_for_the_frame_in_flight() {
    let (drain_tx, drain) = DrainSignal::channel();
    let mut t = Tunnel::start(Setup {
        drain,
        ..Setup::default()
    });
    // Longer than the read buffer: it streams, the rest to come.
    let frame = from_upstream(BINARY, &[7u8; 40_000]);
    let (head, rest) = frame.split_at(1_000);
    t.upstream.write_all(head).await.unwrap();
    assert_eq!(read_bytes(&mut t.client, head.len()).await, head);

    let plan = DrainPlan {
        started: Instant::now(),
        spread: Duration::ZERO,
        close_code: wsgate_proto::close::CloseCode::RESTART,
    };
    drain_tx.send(Some(plan)).unwrap();
    // No close in the middle of a frame.
    assert_quiet(&mut t.client).await;
    t.upstream.write_all(rest).await.unwrap();
    assert_eq!(read_bytes(&mut t.client, rest.len()).await, rest);
    assert_eq!(read_bytes(&mut t.client, 4).await, [CLOSE, 2, 0x03, 0xf4]);
    assert_eof(&mut t.client).await;

    // The client's reply reaches the upstream as an ordinary relayed close.
    let reply = from_client(CLOSE, &close_payload(1012, ""));
    relays(&mut t.client, &mut t.upstream, &reply).await;
    t.client.shutdown().await.unwrap();
    t.upstream.shutdown().await.unwrap();
    assert!(t.ended().await < CLOSE_GRACE);
}

#[tokio::test(start_paused = true)]
async fn drain_closes_are_spread_over_the_window() {
    // One drain signal, many tunnels: each client gets its close at its own moment of the spread.
    let (drain_tx, drain) = DrainSignal::channel();
    let mut tunnels: Vec<Tunnel> = (0..20)
        .map(|_| {
            Tunnel::start(Setup {
                drain: drain.clone(),
                ..Setup::default()
            })
        })
        .collect();
    let spread = 10 * SECOND;
    let started = Instant::now();
    drain_tx
        .send(Some(DrainPlan {
            started,
            spread,
            close_code: wsgate_proto::close::CloseCode::RESTART,
        }))
        .unwrap();
    // Read concurrently, so that each moment is its own tunnel's, not the latest one read so far.
    let mut moments = futures_util::future::join_all(tunnels.iter_mut().map(|t| async move {
        assert_eq!(read_bytes(&mut t.client, 4).await, [CLOSE, 2, 0x03, 0xf4]);
        t.elapsed()
    }))
    .await;
    moments.sort();
    // Within the window, and spread across it (20 uniform draws all inside one second of each
    // other has a probability near 1e-19).
    assert!(moments[19] <= spread, "{moments:?}");
    assert!(moments[19] - moments[0] > SECOND, "{moments:?}");
}
