//! A negotiated tunnel until it runs: its parameters from the route, and the start of its relay,
//! either in the client connection's own task once hyper has sent the 101 (HTTP/1.1), or in a task
//! of its own once hyper has opened the stream with the 200 (HTTP/2: the connection's task keeps
//! serving its other streams).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{Either, FutureExt, OptionFuture};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::access::ClientPlaces;
use super::Route;
use crate::drain::{DrainSignal, LiveGuard};
use crate::relay::stream_reset::StreamReset;
use crate::relay::{
    self, CloseReason, Ending, H2Stream, LiveTunnel, Policy, TunnelParams, CLOSE_GRACE,
};
use crate::server::ConnectionSlot;
use crate::sessions::Registration;
use crate::upstream::endpoint::TunnelGuard;
use crate::upstream::UpstreamStream;
use wsgate_proto::deflate::Agreed;
use wsgate_proto::tracker::{Limits, Sender};

/// The tunnel's places under the route's `max_connections`, on its endpoint's count, and under the
/// per-client limits: held for as long as it runs.
pub(super) type Places = (LiveGuard, TunnelGuard, ClientPlaces);

/// Its places, and its entry in the registry of live tunnels.
pub(super) type Held = (Places, Registration);

/// The upstream's side of a tunnel: its connection and the bytes read past the 101's head.
pub(super) struct Upstream {
    pub(super) io: UpstreamStream,
    pub(super) rest: Bytes,
}

pub(super) fn params(
    route: &Route,
    drain: DrainSignal,
    tunnel: Arc<LiveTunnel>,
    deflate: Option<Agreed>,
    token_expires: Option<Duration>,
) -> TunnelParams {
    let ws = &route.config.websocket;
    let limits = |sender: Sender| Limits {
        max_frame_size: ws.max_frame_size,
        max_message_size: ws.max_message_size,
        validate_utf8: ws.validate_utf8,
        answer_pings: sender == Sender::Client && ws.ping == crate::config::PingMode::Answer,
        // Each side compresses with its own context-takeover setting (RFC 7692 §7.1.1).
        compression: deflate.map(|d| match sender {
            Sender::Client => d.client_no_context_takeover,
            Sender::Upstream => d.server_no_context_takeover,
        }),
        // rand's thread-local CSPRNG: unpredictable keys, no lock or syscall per frame.
        remask: (sender == Sender::Client && ws.remask)
            .then_some(rand::random::<[u8; 4]> as fn() -> [u8; 4]),
    };
    TunnelParams {
        client_limits: limits(Sender::Client),
        upstream_limits: limits(Sender::Upstream),
        metrics: Arc::clone(&route.metrics),
        close_grace: CLOSE_GRACE,
        drain,
        keepalive: ws.keepalive,
        idle_timeout: ws.idle_timeout,
        write_timeout: ws.write_timeout,
        tunnel,
        held: None,
        policy: {
            let ends = ending(ws, token_expires);
            (ws.rate_limit.is_some() || ends.is_some()).then(|| {
                Box::new(Policy {
                    rate_limit: ws.rate_limit,
                    ends,
                })
            })
        },
    }
}

/// When the tunnel is closed by wsgate: at `max_duration` spread by up to 10% (a cohort that
/// connected together does not reconnect together), or when its token expires, whichever is first.
fn ending(ws: &crate::config::WebSocketConfig, token_expires: Option<Duration>) -> Option<Ending> {
    if ws.max_duration.is_none() && token_expires.is_none() {
        // Most routes: no clock read.
        return None;
    }
    let now = tokio::time::Instant::now();
    let aged = ws.max_duration.map(|max| Ending {
        at: now + max + max.mul_f64(0.1 * rand::random::<f64>()),
        code: ws.max_duration_close_code.as_u16(),
        reason: CloseReason::MaxDuration,
    });
    let expired = token_expires.map(|left| Ending {
        at: now + left,
        code: wsgate_proto::close::CloseCode::POLICY.as_u16(),
        reason: CloseReason::TokenExpired,
    });
    match (aged, expired) {
        (Some(a), Some(e)) => Some(if e.at <= a.at { e } else { a }),
        (a, e) => a.or(e),
    }
}

/// A validated upgrade waiting for hyper to send the 101, after which the connection's own task runs it.
pub struct PendingTunnel {
    pub(super) client: OnUpgrade,
    pub(super) upstream: Upstream,
    /// The tunnel's places under the route's `max_connections`, on its endpoint's count, and
    /// under the per-client limits.
    pub(super) place: Held,
    pub(super) params: TunnelParams,
}

impl PendingTunnel {
    /// The relay of this tunnel, on the client's stream that hyper has handed back (it fulfils the
    /// upgrade before its connection future ends, so nothing is awaited here). A plain function
    /// rather than an async one: an async one would keep a copy of `self` beside the relay for the
    /// tunnel's whole life. The four variants (plain or TLS on each leg) share one future's
    /// storage, and TLS streams are boxed, so a tunnel is about the size of a plain one. `slot`
    /// (the client connection) counts until the tunnel ends.
    pub fn into_relay(self: Box<Self>, slot: Arc<ConnectionSlot>) -> impl Future<Output = ()> {
        let PendingTunnel {
            client,
            upstream,
            place,
            mut params,
        } = *self;
        params.held = Some(Box::new((slot, place)));
        let client = match client.now_or_never() {
            Some(Ok(client)) => {
                let client = ClientIo::from(client);
                if client.is_none() {
                    tracing::error!("upgraded connection of an unexpected type");
                }
                client
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                None
            }
            None => {
                tracing::error!("hyper's connection ended before it handed over the upgrade");
                None
            }
        };
        let Upstream { io, rest } = upstream;
        let relay = client.map(|client| match (client, io) {
            (ClientIo::Tcp(c, cp), UpstreamStream::Tcp(u)) => {
                Either::Left(Either::Left(relay::run(c, cp, u, rest, params)))
            }
            (ClientIo::Tcp(c, cp), UpstreamStream::Tls(u)) => {
                Either::Left(Either::Right(relay::run(c, cp, u, rest, params)))
            }
            (ClientIo::Tls(c, cp), UpstreamStream::Tcp(u)) => {
                Either::Right(Either::Left(relay::run(c, cp, u, rest, params)))
            }
            (ClientIo::Tls(c, cp), UpstreamStream::Tls(u)) => {
                Either::Right(Either::Right(relay::run(c, cp, u, rest, params)))
            }
        });
        OptionFuture::from(relay).map(drop)
    }
}

/// The client's stream back from hyper, with any bytes it had read past the HTTP head.
enum ClientIo {
    Tcp(TcpStream, Bytes),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>, Bytes),
}

impl ClientIo {
    fn from(upgraded: Upgraded) -> Option<Self> {
        match take::<TcpStream>(upgraded) {
            Ok((io, read)) => Some(ClientIo::Tcp(io, read)),
            Err(upgraded) => take::<tokio_rustls::server::TlsStream<TcpStream>>(upgraded)
                .ok()
                .map(|(io, read)| ClientIo::Tls(Box::new(io), read)),
        }
    }
}

/// The stream of type `T` inside an upgraded connection, and the bytes hyper read past the head.
fn take<T>(upgraded: Upgraded) -> Result<(T, Bytes), Upgraded>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    upgraded
        .downcast::<TokioIo<T>>()
        .map(|parts| (parts.io.into_inner(), parts.read_buf))
}

/// Runs a tunnel on an HTTP/2 stream in a task of its own, once hyper has sent the stream's 200
/// and handed the stream over. `slot` (the HTTP/2 connection) counts until the tunnel ends.
pub(super) fn spawn_on_stream(
    client: OnUpgrade,
    upstream: Upstream,
    place: Held,
    mut params: TunnelParams,
    slot: Arc<ConnectionSlot>,
    reset: Arc<StreamReset>,
) {
    params.held = Some(Box::new((slot, place)));
    tokio::spawn(stream_tunnel(client, upstream, params, reset));
}

/// The task of a tunnel on an HTTP/2 stream: the relay, once hyper hands the stream over. Built by
/// combinators rather than an async block, which would keep its captures (the parameters, the
/// upstream) beside the relay that took them for the tunnel's whole life.
fn stream_tunnel(
    client: OnUpgrade,
    upstream: Upstream,
    params: TunnelParams,
    reset: Arc<StreamReset>,
) -> impl Future<Output = ()> + Send {
    client
        .then(move |upgraded| {
            let relay = match upgraded {
                Ok(stream) => {
                    let client = H2Stream { stream, reset };
                    let Upstream { io, rest } = upstream;
                    Some(match io {
                        UpstreamStream::Tcp(u) => {
                            Either::Left(relay::run(client, Bytes::new(), u, rest, params))
                        }
                        UpstreamStream::Tls(u) => {
                            Either::Right(relay::run(client, Bytes::new(), u, rest, params))
                        }
                    })
                }
                Err(e) => {
                    tracing::debug!(error = %e, "stream closed before its tunnel started");
                    None
                }
            };
            OptionFuture::from(relay)
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tunnel on an HTTP/2 stream is its task: its future should be about the relay's.
    #[test]
    fn a_stream_tunnel_is_about_its_relay() {
        use crate::listener::tests::returned_size;
        let size = returned_size(stream_tunnel);
        let relay = returned_size(|c: H2Stream, u: TcpStream, p: TunnelParams, _: ()| {
            relay::run(c, Bytes::new(), u, Bytes::new(), p)
        });
        println!("stream tunnel: {size} bytes, relay {relay} bytes");
        assert!(size <= relay + 64, "{size} bytes for a {relay}-byte relay");
    }

    #[tokio::test(start_paused = true)]
    async fn max_duration_is_spread_by_up_to_a_tenth_and_an_earlier_expiry_wins() {
        let ws = crate::config::WebSocketConfig {
            max_duration: Some(Duration::from_secs(100)),
            ..Default::default()
        };
        let now = tokio::time::Instant::now();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let end = ending(&ws, None).expect("an end");
            let after = end.at - now;
            assert!(after >= Duration::from_secs(100) && after <= Duration::from_secs(110));
            assert_eq!((end.code, end.reason), (1001, CloseReason::MaxDuration));
            seen.insert(after.as_secs());
        }
        assert!(seen.len() > 5, "not spread: {seen:?}");
        let expiry = ending(&ws, Some(Duration::from_secs(30))).expect("an end");
        assert_eq!(
            (expiry.at - now, expiry.code),
            (Duration::from_secs(30), 1008)
        );
        assert_eq!(expiry.reason, CloseReason::TokenExpired);
        let default = crate::config::WebSocketConfig::default();
        assert!(ending(&default, None).is_none());
    }
}
