//! HTTP/2 on one client connection: hyper's server with the listener's settings and RFC 8441
//! (SETTINGS_ENABLE_CONNECT_PROTOCOL), each stream handed to the proxy generation current at that
//! moment, GOAWAY when a drain starts, and the connection cut off when it abuses the protocol.
//!
//! h2 itself refuses CONTINUATION floods, oversized header lists, resets of streams not yet
//! accepted and other floods with GOAWAY ENHANCE_YOUR_CALM; that end is counted here. Streams
//! that were accepted and then reset by the client before wsgate answered (the rest of a rapid
//! reset attack, each of which started real work) are counted per connection, which is cut off
//! past `max_client_resets`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Notify;

use super::http::ClientStream;
use super::{ConnectionSlot, SharedProxy};
use crate::config::{Http2Settings, ListenerConfig};
use crate::metrics::Transport;
use crate::relay::stream_reset::{self, Resettable, StreamReset};

/// Spawns the tasks hyper's HTTP/2 server asks for: one per stream, and one per tunnel's send half,
/// which gets the tunnel's reset handle (stream_reset.rs).
#[derive(Clone, Copy)]
struct Spawn;

impl<F> hyper::rt::Executor<F> for Spawn
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        let reset = stream_reset::take_armed();
        tokio::spawn(Resettable::new(Box::pin(future), reset));
    }
}

pub(super) async fn serve<I: ClientStream>(
    io: TokioIo<I>,
    peer: SocketAddr,
    proxy: SharedProxy,
    config: &ListenerConfig,
    settings: Http2Settings,
    slot: Arc<ConnectionSlot>,
) {
    let mut drain = proxy.load().drain.clone();
    let metrics = proxy.load().metrics.clone();
    let watch = Arc::new(ResetWatch::new(settings.max_client_resets));
    let service = {
        let watch = watch.clone();
        service_fn(move |req| {
            // Boxed apart from hyper's stream task: a stream's request future is kilobytes and
            // short-lived, and inside the task it left holes in the heap beside the tunnels that
            // outlive it (measured RSS per idle WebSocket stream: 5.3 KiB inside, 5.1 apart).
            let answer = Box::pin(
                proxy
                    .load_full()
                    .handle(req, peer, slot.clone(), Transport::H2),
            );
            let stream = Stream::new(watch.clone());
            async move {
                let response = answer.await;
                stream.answered();
                if let Ok(response) = &response {
                    if let Some(reset) = response.extensions().get::<Arc<StreamReset>>() {
                        // hyper spawns the stream's send task in this same poll.
                        stream_reset::arm(reset.clone());
                    }
                }
                response
            }
        })
    };
    let conn = builder(settings).serve_connection(io, service);
    tokio::pin!(conn);
    // A connection that never sends a request is dropped after the handshake timeout, as an
    // HTTP/1.1 one that never sends its head.
    let first_request = tokio::time::sleep(config.handshake_timeout);
    tokio::pin!(first_request);
    let mut waited = false;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            _ = drain.started() => {
                // GOAWAY: streams in flight (tunnels among them, which the drain closes) finish.
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            _ = watch.tripped.notified() => {
                tracing::info!(listener = %config.name, %peer, "HTTP/2 connection cut off: rapid reset");
                metrics.http2_closed(&config.name, "rapid_reset");
                return;
            }
            _ = &mut first_request, if !waited => {
                if !watch.seen_request() {
                    tracing::debug!(listener = %config.name, %peer, "HTTP/2 connection sent no request in time");
                    return;
                }
                waited = true;
            }
        }
    };
    if let Err(e) = result {
        match close_reason(&e) {
            Some(reason) => {
                tracing::info!(listener = %config.name, %peer, error = %e, reason, "HTTP/2 connection cut off");
                metrics.http2_closed(&config.name, reason);
            }
            None => tracing::debug!(%peer, error = %e, "HTTP/2 connection ended with an error"),
        }
    }
}

fn builder(settings: Http2Settings) -> hyper::server::conn::http2::Builder<Spawn> {
    let mut builder = hyper::server::conn::http2::Builder::new(Spawn);
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(settings.max_concurrent_streams)
        .initial_stream_window_size(settings.initial_stream_window_size)
        .initial_connection_window_size(settings.initial_connection_window_size)
        .max_header_list_size(settings.max_header_list_size)
        // h2's defaults, stated: resets of streams not yet accepted, and streams h2 itself had to
        // reset for the client's errors, before GOAWAY ENHANCE_YOUR_CALM.
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(1024);
    builder
}

/// Why h2 ended a connection, as a `reason` of `wsgate_http2_connections_closed_total`, when the
/// client broke the protocol; `None` for an ordinary end (the client went away, an I/O error).
fn close_reason(error: &hyper::Error) -> Option<&'static str> {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            if !h2.is_go_away() || h2.is_remote() {
                return None;
            }
            // Which of h2's limits it was is only in the GOAWAY's debug data on the wire; the error
            // h2 ends the connection with has the code alone.
            return match h2.reason() {
                Some(h2::Reason::ENHANCE_YOUR_CALM) => Some("enhance_your_calm"),
                Some(h2::Reason::NO_ERROR) | None => None,
                Some(_) => Some("protocol_error"),
            };
        }
        source = cause.source();
    }
    None
}

/// Streams of one connection the client reset before wsgate answered them.
struct ResetWatch {
    resets: AtomicU32,
    max: u32,
    requested: AtomicBool,
    tripped: Notify,
}

impl ResetWatch {
    fn new(max: u32) -> Self {
        ResetWatch {
            resets: AtomicU32::new(0),
            max,
            requested: AtomicBool::new(false),
            tripped: Notify::new(),
        }
    }

    fn seen_request(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }
}

/// One stream's request until wsgate has answered it; dropped unanswered, it was reset (or its
/// connection ended, which counts for nothing then).
struct Stream {
    watch: Arc<ResetWatch>,
    answered: bool,
}

impl Stream {
    fn new(watch: Arc<ResetWatch>) -> Self {
        watch.requested.store(true, Ordering::Relaxed);
        Stream {
            watch,
            answered: false,
        }
    }

    fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if !self.answered && self.watch.resets.fetch_add(1, Ordering::Relaxed) + 1 == self.watch.max
        {
            // notify_one keeps the permit if the connection's task is not waiting right now.
            self.watch.tripped.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_trips_once_at_its_limit_and_answered_streams_do_not_count() {
        let watch = Arc::new(ResetWatch::new(3));
        assert!(!watch.seen_request());
        Stream::new(watch.clone()).answered();
        assert!(watch.seen_request());
        drop(Stream::new(watch.clone()));
        drop(Stream::new(watch.clone()));
        assert_eq!(watch.resets.load(Ordering::Relaxed), 2);
        drop(Stream::new(watch.clone()));
        let tripped = watch.tripped.notified();
        tokio::pin!(tripped);
        assert!(
            tripped.as_mut().enable() || {
                // The permit stored by notify_one completes the next `notified()` at once.
                futures_util::FutureExt::now_or_never(tripped).is_some()
            }
        );
    }
}
