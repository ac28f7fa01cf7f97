//! Throughput: N connections each keep K messages of S bytes in flight; every echo that comes back
//! is answered with a new message. One task per connection, no locks: reads and writes interleave on
//! readiness, so a full socket buffer on one side never deadlocks the other.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stream::{Connect, Stream};
use crate::ws::{self, put_client_frame, Reader, Rng};

pub struct Params {
    pub url: String,
    pub connections: usize,
    pub size: usize,
    pub inflight: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub text: bool,
}

pub async fn run<C: Connect>(p: Params, target: C) -> Result<String, String> {
    let url = ws::parse_url(&p.url)?;
    let received = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    for i in 0..p.connections {
        let (target, url) = (target.clone(), url.clone());
        let (received, errors) = (received.clone(), errors.clone());
        let (size, inflight, text) = (p.size, p.inflight, p.text);
        tokio::spawn(async move {
            let shape = Shape {
                size,
                inflight,
                text,
            };
            if let Err(e) = connection(&target, &url, i as u64, shape, &received).await {
                errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("throughput connection {i}: {e}");
            }
        });
    }
    let Window {
        messages,
        secs,
        rate,
        tool_cpu,
    } = measure(&received, p.warmup, p.duration).await;
    Ok(format!(
        r#"{{"mode":"throughput","url":"{}","connections":{},"size":{},"inflight":{},"seconds":{:.2},"messages":{},"msgs_per_s":{:.0},"mb_per_s":{:.2},"errors":{}{}{}}}"#,
        p.url,
        p.connections,
        p.size,
        p.inflight,
        secs,
        messages,
        rate,
        rate * p.size as f64 / 1e6,
        errors.load(Ordering::Relaxed),
        tool_cpu,
        target.json_fields()
    ))
}

/// Echoes counted over the measured window, after the warm-up.
pub struct Window {
    pub messages: u64,
    pub secs: f64,
    pub rate: f64,
    /// The load tool's CPU over the window, as a JSON field.
    pub tool_cpu: String,
}

/// Waits out `warmup`, then counts what `received` gains over `duration` (both throughput modes).
pub async fn measure(received: &AtomicU64, warmup: Duration, duration: Duration) -> Window {
    tokio::time::sleep(warmup).await;
    let (start, before) = (Instant::now(), received.load(Ordering::Relaxed));
    let cpu = crate::cpu::seconds();
    tokio::time::sleep(duration).await;
    let messages = received.load(Ordering::Relaxed) - before;
    let tool_cpu = crate::cpu::json_field(cpu);
    let secs = start.elapsed().as_secs_f64();
    Window {
        messages,
        secs,
        rate: messages as f64 / secs,
        tool_cpu,
    }
}

/// What one connection sends: K messages of S bytes in flight, binary or text.
struct Shape {
    size: usize,
    inflight: usize,
    text: bool,
}

async fn connection<C: Connect>(
    target: &C,
    url: &ws::Url,
    seed: u64,
    shape: Shape,
    received: &AtomicU64,
) -> io::Result<()> {
    let Shape {
        size,
        inflight,
        text,
    } = shape;
    let mut rng = Rng::new(seed + 1);
    let stream = target.connect().await?;
    let (mut stream, prefix) = ws::connect(stream, url, &mut rng).await?;
    let opcode = if text { ws::OP_TEXT } else { ws::OP_BINARY };
    let payload = vec![b'x'; size];
    let mut out = Vec::with_capacity(inflight * (size + 14));
    for _ in 0..inflight {
        put_client_frame(&mut out, opcode, &payload, &mut rng);
    }
    let mut written = 0;
    let mut reader = Reader::new(Vec::new());
    let mut buf = vec![0u8; 256 * 1024];
    let mut echoed = reader.feed(&prefix);
    loop {
        for _ in 0..echoed {
            put_client_frame(&mut out, opcode, &payload, &mut rng);
        }
        if echoed > 0 {
            received.fetch_add(echoed, Ordering::Relaxed);
            echoed = 0;
        }
        let progress = stream.exchange(&out[written..], &mut buf).await?;
        written += progress.wrote;
        if written == out.len() {
            out.clear();
            written = 0;
        }
        if let Some(n) = progress.read {
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            echoed = reader.feed(&buf[..n]);
            if reader.closed {
                return Err(io::Error::other("closed by the server"));
            }
        }
    }
}
