//! wsgate-bench: the load tool and echo backend behind `scripts/bench.sh`. Every mode prints one
//! JSON line. Traffic goes where the URL says; the script only ever points it at 127.0.0.1.

mod echo;
mod handshakes;
mod idle;
mod latency;
mod throughput;
mod ws;

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
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
    /// New WebSocket sessions per second, each with one echo and a close handshake.
    Handshakes {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value = "5s", value_parser = seconds)]
        duration: Duration,
    },
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
            throughput::run(throughput::Params {
                url,
                connections,
                size,
                inflight,
                warmup,
                duration,
                text,
            })
            .await
        }
        Mode::Latency {
            url,
            size,
            warmup,
            duration,
            rate,
        } => {
            latency::run(latency::Params {
                url,
                size,
                warmup,
                duration,
                rate,
            })
            .await
        }
        Mode::Idle {
            url,
            connections,
            hold,
        } => idle::run(url, connections, hold).await,
        Mode::Handshakes {
            url,
            concurrency,
            duration,
        } => handshakes::run(url, concurrency, duration).await,
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
