//! wsgate-bench: the load tool and echo backend behind `scripts/bench.sh`. Every mode prints one
//! JSON line. Traffic goes where the URL says (ws:// or wss://; the h2-* modes: wss:// as WebSockets
//! over HTTP/2, RFC 8441); the script only ever points it at 127.0.0.1.

mod cpu;
mod echo;
mod h2idle;
mod h2throughput;
mod h2ws;
mod handshakes;
mod headers;
mod idle;
mod latency;
mod stream;
mod throughput;
mod tls;
mod trickle;
mod ws;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    /// PEM CA certificate(s) that wss:// servers must chain to (SNI and the name checked: the
    /// URL's host).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Mode {
    /// The echo backend: every message comes back, pings as pongs.
    Echo {
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: String,
    },
    /// N connections, K messages of S bytes in flight each: messages/s and MB/s echoed.
    Throughput {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 16)]
        size: usize,
        #[arg(long, default_value_t = 16)]
        inflight: usize,
        #[arg(long, default_value = "1s", value_parser = seconds)]
        warmup: Duration,
        #[arg(long, default_value = "5s", value_parser = seconds)]
        duration: Duration,
        /// Text frames instead of binary (the payload is ASCII).
        #[arg(long)]
        text: bool,
    },
    /// One connection, one message in flight: round-trip p50, p99, p99.9.
    Latency {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 32)]
        size: usize,
        #[arg(long, default_value = "1s", value_parser = seconds)]
        warmup: Duration,
        #[arg(long, default_value = "5s", value_parser = seconds)]
        duration: Duration,
        /// Fixed rate (messages/s), with coordinated-omission correction.
        #[arg(long)]
        rate: Option<u32>,
    },
    /// Opens N connections and holds them (one echo each first).
    Idle {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long, default_value = "10s", value_parser = seconds)]
        hold: Duration,
    },
    /// Throughput of WebSockets over HTTP/2 (RFC 8441): S streams over C connections.
    ///
    /// wss:// only, TLS with ALPN h2. Each stream is one WebSocket, opened by an extended CONNECT
    /// (`:protocol websocket`, answered 200); stream i goes on connection i mod C; K messages of B
    /// bytes in flight on every stream. Prints the throughput line with "protocol":"h2" and
    /// "streams" added.
    H2Throughput {
        /// wss://host:port/path: the extended CONNECT's authority and path.
        #[arg(long)]
        url: String,
        /// HTTP/2 connections (C).
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// WebSocket streams in all (S), at least one per connection.
        #[arg(long, default_value_t = 16)]
        streams: usize,
        /// Message size in bytes (B).
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Messages in flight per stream (K).
        #[arg(long, default_value_t = 16)]
        inflight: usize,
        #[arg(long, default_value = "1s", value_parser = seconds)]
        warmup: Duration,
        #[arg(long, default_value = "5s", value_parser = seconds)]
        duration: Duration,
        /// Text frames instead of binary (the payload is ASCII).
        #[arg(long)]
        text: bool,
    },
    /// Idle WebSockets over HTTP/2 (RFC 8441): opens S streams over C connections and holds them.
    ///
    /// wss:// only, as h2-throughput. Each stream proves its tunnel with one echo; the idle line
    /// (with "protocol":"h2", "connections" and "connections_open" added; "open" counts streams) is
    /// printed once all are open, then the streams are held for --hold.
    H2Idle {
        #[arg(long)]
        url: String,
        /// HTTP/2 connections (C); a server's SETTINGS_MAX_CONCURRENT_STREAMS bounds S / C.
        #[arg(long, default_value_t = 10)]
        connections: usize,
        /// WebSocket streams in all (S), at least one per connection.
        #[arg(long, default_value_t = 1000)]
        streams: usize,
        #[arg(long, default_value = "10s", value_parser = seconds)]
        hold: Duration,
    },
    /// New WebSocket sessions per second, each with one echo and a close handshake.
    Handshakes {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value = "5s", value_parser = seconds)]
        duration: Duration,
        /// "Name: value" added to every upgrade request (repeatable), e.g. "Authorization: Bearer <jwt>".
        #[arg(long = "header", value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// One ws:// WebSocket carrying a message every --interval (0: a flood, --inflight at a time),
    /// each echo read, until SIGTERM, SIGINT or --duration.
    ///
    /// Prints {"mode":"trickle","event":"open","local":"IP:PORT"} once open (its client address, by
    /// which the bench finds the tunnel on wsgate's admin API), then its counts when it stops.
    Trickle {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 32)]
        size: usize,
        #[arg(long, default_value = "10ms", value_parser = seconds)]
        interval: Duration,
        /// Messages in flight when --interval is 0.
        #[arg(long, default_value_t = 16)]
        inflight: usize,
        #[arg(long, default_value = "600s", value_parser = seconds)]
        duration: Duration,
    },
}

/// Runs `$run` with `$target` bound to the connector for `$url`'s scheme: each mode is compiled once
/// for plain TCP and once for TLS, and the choice is made here, once per run.
macro_rules! by_scheme {
    ($url:expr, $ca:expr, |$target:ident| $run:expr) => {
        async {
            let url = ws::parse_url($url)?;
            if url.tls {
                let $target = tls::Tls::new(&url, $ca).await?;
                $run.await
            } else {
                let $target = stream::Plain::new(&url).await?;
                $run.await
            }
        }
        .await
    };
}

/// The HTTP/2 connector for an h2-* mode's URL.
async fn h2_target(url: &str, ca: Option<&std::path::Path>) -> Result<h2ws::H2, String> {
    h2ws::H2::new(&ws::parse_url(url)?, ca).await
}

/// "5s", "500ms" or a bare number of seconds.
fn seconds(s: &str) -> Result<Duration, String> {
    let parse = |v: &str| v.parse::<f64>().map_err(|e| format!("{s}: {e}"));
    let secs = if let Some(ms) = s.strip_suffix("ms") {
        parse(ms)? / 1000.0
    } else {
        parse(s.strip_suffix('s').unwrap_or(s))?
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s}: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let ca = cli.ca.as_deref();
    let result = match cli.mode {
        Mode::Echo { listen } => echo::serve(&listen)
            .await
            .map(|()| String::new())
            .map_err(|e| e.to_string()),
        Mode::Throughput {
            url,
            connections,
            size,
            inflight,
            warmup,
            duration,
            text,
        } => {
            let params = throughput::Params {
                url: url.clone(),
                connections,
                size,
                inflight,
                warmup,
                duration,
                text,
            };
            by_scheme!(&url, ca, |target| throughput::run(params, target))
        }
        Mode::Latency {
            url,
            size,
            warmup,
            duration,
            rate,
        } => {
            let params = latency::Params {
                url: url.clone(),
                size,
                warmup,
                duration,
                rate,
            };
            by_scheme!(&url, ca, |target| latency::run(params, target))
        }
        Mode::Idle {
            url,
            connections,
            hold,
        } => by_scheme!(&url, ca, |target| idle::run(
            url.clone(),
            connections,
            hold,
            target
        )),
        Mode::H2Throughput {
            url,
            connections,
            streams,
            size,
            inflight,
            warmup,
            duration,
            text,
        } => {
            let params = h2throughput::Params {
                url: url.clone(),
                connections,
                streams,
                size,
                inflight,
                warmup,
                duration,
                text,
            };
            match h2_target(&url, ca).await {
                Ok(target) => h2throughput::run(params, target).await,
                Err(e) => Err(e),
            }
        }
        Mode::H2Idle {
            url,
            connections,
            streams,
            hold,
        } => match h2_target(&url, ca).await {
            Ok(target) => h2idle::run(url, connections, streams, hold, target).await,
            Err(e) => Err(e),
        },
        Mode::Handshakes {
            url,
            concurrency,
            duration,
            headers,
        } => match ws::Headers::parse(&headers) {
            Ok(headers) => by_scheme!(&url, ca, |target| handshakes::run(
                url.clone(),
                concurrency,
                duration,
                headers,
                target
            )),
            Err(e) => Err(e),
        },
        Mode::Trickle {
            url,
            size,
            interval,
            inflight,
            duration,
        } => {
            trickle::run(trickle::Params {
                url,
                size,
                interval,
                inflight,
                duration,
            })
            .await
        }
    };
    match result {
        Ok(line) if line.is_empty() => {}
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("wsgate-bench: {e}");
            std::process::exit(1);
        }
    }
}
